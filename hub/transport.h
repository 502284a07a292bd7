/*
 * The hub's bus, behind one interface: ZeroMQ (transport_zmq.c, the
 * default, no broker) today; the AMQP 1.0 and STOMP backends of bridge/
 * implement the same operations.
 *
 * Everything here runs on the hub's main thread.  A transport shows the
 * main loop what to wait for (poll_items: ZeroMQ sockets or plain fds),
 * hands over received messages one at a time, and settles each delivery
 * once the hub knows its verdict.  Brokers get real settlement (accept,
 * release for redelivery, reject) and flow control (pause stops granting
 * credit, so the broker keeps the messages); ZeroMQ has neither.
 */
#ifndef FM_TRANSPORT_H
#define FM_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include <zmq.h>

#include <fedmsg/message.h>

#include "broker.h"		/* enum settle */

struct fm_config;

/* A received message's delivery, owned by the transport; NULL for ZeroMQ. */
struct delivery;

/* Counters a transport keeps about what it refused before the hub saw it. */
struct transport_stats {
	uint64_t	 received;
	uint64_t	 bad_frames;
	uint64_t	 bad_json;
	uint64_t	 topic_mismatch;
	uint64_t	 published;
	uint64_t	 publish_failed;
	uint64_t	 publish_unroutable;	/* broker: taken, no queue bound
						   (AMQP 0-9-1 basic.return) */
	uint64_t	 publish_queued;	/* broker: waited for the address
						   (link, credit, connection) */
	uint64_t	 publish_queue_full;	/* broker: refused, too many
						   waited for the address */
	uint64_t	 publish_resent;	/* broker: lost with a connection
						   before confirmed, sent again */
	uint64_t	 wrapped;	/* broker_authenticated: payloads
					   wrapped in an envelope */
};

struct transport;

struct transport_ops {
	const char	*name;
	/* Start receiving on these topic prefixes ("" = everything). */
	int	(*subscribe)(struct transport *t, const char *const *prefixes,
		    char *err);
	/* Fill up to max poll items; returns how many. */
	int	(*poll_items)(struct transport *t, zmq_pollitem_t *items, int max);
	/*
	 * After the poll: the same items with their revents (n as returned by
	 * poll_items), for transports that do their own I/O.
	 */
	void	(*io)(struct transport *t, const zmq_pollitem_t *items, int n,
		    int64_t now_ms);
	/*
	 * Take one received message if there is one: returns 1 with a new
	 * reference in *msg and the delivery in *d, 0 when nothing waits, -1
	 * on a fatal error (err set).
	 */
	int	(*receive)(struct transport *t, struct fm_msg **msg,
		    struct delivery **d, char *err);
	/* Settle a delivery; a no-op for NULL. */
	void	(*settle)(struct transport *t, struct delivery *d,
		    enum settle how);
	/* Stop (true) or resume (false) taking messages from the bus. */
	void	(*pause)(struct transport *t, bool paused);
	/* Send a ready (signed) message; 0 or -1 with err. */
	int	(*publish)(struct transport *t, const struct fm_msg *msg,
		    char *err);
	/* Periodic work; returns the ms until it wants to run again (-1: never). */
	int	(*tick)(struct transport *t, int64_t now_ms);
	void	(*stats)(const struct transport *t, struct transport_stats *st);
	void	(*free)(struct transport *t);
	/*
	 * Optional (NULL: never): true when the message receive() returned
	 * last was wrapped by the transport from a source whose broker
	 * identity is the trust (hub.broker_authenticated), so there is no
	 * signature to check.
	 */
	bool	(*vouched)(const struct transport *t);
	/*
	 * Optional (NULL: none ever): published messages not yet confirmed
	 * by the bus (waiting to be sent, or sent and unconfirmed), so that
	 * the hub keeps doing I/O for them when it stops.
	 */
	size_t	(*unconfirmed)(const struct transport *t);
};

struct transport {
	const struct transport_ops *ops;
};

/*
 * A broker transport (AMQP 1.0 or STOMP, per the URL scheme): receives
 * from `source` with credit, settles with the consumers' verdicts, and
 * publishes to `address` ("{topic}" replaced).  Configured by the "hub"
 * object's keys bus, source, address, user, password_file, vhost, tls,
 * credit.  Returns NULL with err[FM_ERRLEN].
 */
struct json_t;
struct transport *transport_broker_new(const struct fm_config *cfg,
    struct json_t *hubcfg, char *err);

/*
 * The ZeroMQ transport: SUB sockets on every endpoints URL (except
 * relay_inbound), and a publisher (bound on endpoints[pub_name], or
 * connected to relay_inbound when active) for what consumers publish.
 * pub_name NULL: no publishing.  Returns NULL with err[FM_ERRLEN].
 */
struct transport *transport_zmq_new(const struct fm_config *cfg,
    const char *pub_name, bool active, const char *cert_prefix, char *err);

#endif
