/*
 * A connection to a message broker, whatever the protocol: AMQP 1.0
 * (amqp.c, qpid-proton), AMQP 0-9-1 (amqp091.c, rabbitmq-c) or STOMP
 * (stomp_link.c).  The bridge and the
 * hub's broker transport are written against this interface only.
 *
 * Everything runs on one thread: the owner polls broker_poll_item() (a
 * file descriptor) with its other sockets, calls broker_handle() when it
 * is ready or its timeout (broker_timeout_ms) passes, and gets events back
 * through the callbacks.  Sending is asynchronous: a message is the
 * owner's (in its spool) until on_sent() reports the broker's verdict.
 */
#ifndef FM_BROKER_H
#define FM_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

/* What to do with a received message once its consumers are done. */
enum settle {
	SETTLE_ACCEPT,		/* done with it */
	SETTLE_RELEASE,		/* not processed: redeliver (AMQP released,
				   STOMP NACK) */
	SETTLE_FAILED,		/* processing failed: redeliver, counting the
				   attempt (AMQP modified with delivery-failed,
				   released on RabbitMQ 3.x; STOMP NACK) */
	SETTLE_REJECT,		/* never redeliver (dead-letter) */
};

/* One name/value property (AMQP application property, STOMP header). */
struct broker_prop {
	const char	*name;
	const char	*value;		/* NUL-terminated text */
};

/* What to send. */
struct broker_out {
	const char		*address;	/* destination */
	const char		*body;		/* JSON text */
	size_t			 len;
	const char		*message_id;	/* msg_id, or NULL */
	const char		*subject;	/* fedmsg topic, or NULL */
	int64_t			 creation_ms;	/* 0: none */
	const struct broker_prop *props;
	size_t			 nprops;
	/*
	 * Typed headers as a JSON object text (integers stay integers),
	 * added after props; NULL: none.  AMQP 0-9-1: headers; AMQP 1.0:
	 * application properties (scalars only); STOMP ignores it.
	 */
	const char		*headers_json;
};

/* What arrived.  Pointers are valid during on_message() only. */
struct broker_in {
	const char		*source;	/* the subscription it came from */
	const char		*destination;	/* where it was sent (topic) */
	const char		*body;
	size_t			 len;
	const char		*message_id;
	const char		*subject;
	const struct broker_prop *props;	/* text-valued properties */
	size_t			 nprops;
	const char		*headers_json;	/* AMQP 0-9-1: every header,
						   typed, as a JSON object;
						   NULL elsewhere */
};

/* The broker's verdict on something we sent. */
enum broker_outcome {
	BROKER_ACCEPTED,	/* it has it: drop it from the spool */
	BROKER_REFUSED,		/* not taken this time (0-9-1 nack, AMQP 1.0
				   released/modified): retry later */
	BROKER_LOST,		/* the connection dropped before a verdict */
	BROKER_UNROUTABLE,	/* taken, but no queue was bound for it
				   (AMQP 0-9-1 basic.return of a mandatory
				   publish; AMQP 1.0 "released" 4 times, as
				   RabbitMQ 4 answers): retrying would not
				   help */
	BROKER_REJECTED,	/* refused for good (AMQP 1.0 "rejected",
				   e.g. too big or not authorised; "modified"
				   4 times): why holds the broker's error
				   condition; resending would not help */
};

struct broker_delivery;		/* a received message awaiting settlement */

struct broker_callbacks {
	void	*ctx;
	void	(*on_up)(void *ctx);
	void	(*on_down)(void *ctx, const char *why);
	void	(*on_sent)(void *ctx, uint64_t token, enum broker_outcome o,
		    const char *why);
	void	(*on_message)(void *ctx, const struct broker_in *in,
		    struct broker_delivery *d);
};

struct broker_tls {
	const char	*ca;		/* trusted CA file; NULL: system default */
	const char	*cert, *key;	/* client certificate (EXTERNAL auth) */
	const char	*hostname;	/* name to verify; NULL: the URL's host */
};

struct broker_opts {
	const char *const *urls;	/* failover list, tried in turn */
	size_t		 nurls;
	const char	*user;		/* NULL: anonymous or certificate */
	const char	*password;	/* secret text (read from a file) */
	/*
	 * Credentials travel only over TLS: a user or password with a plain
	 * amqp:// or stomp:// URL is refused unless this is set (config key
	 * allow_plaintext_credentials), and then logged loudly.  A failover
	 * list that mixes TLS and plain URLs is always refused.
	 */
	bool		 allow_plaintext_credentials;
	const char	*vhost;		/* AMQP open hostname / STOMP host */
	struct broker_tls tls;
	unsigned	 heartbeat_ms;	/* idle timeout / heart-beat; 0: 60000 */
	unsigned	 credit;	/* prefetch for receiving; 0: 100 */
	unsigned	 confirm_timeout_ms; /* a send unconfirmed this long
					   (STOMP RECEIPT; AMQP: no settlement
					   while some are due) ends the
					   connection; 0: 30 s */
	unsigned	 connect_timeout_ms; /* TCP (every address), TLS and
					   the protocol's open; 0: 10 s AMQP,
					   15 s STOMP */
	unsigned	 max_in_flight;	/* unsettled sends; 0: 1000 */
	size_t		 max_message;	/* bigger deliveries are refused early;
					   0: 64 MiB */
	const char	*name;		/* for logs and the container id */
	/*
	 * AMQP 0-9-1: the config object holding "exchanges", "queues",
	 * "bindings" and "passive_declares" as fedora-messaging's TOML has
	 * them; declared (or checked) at every connect.  Copied.
	 */
	struct json_t	*topology;
};

struct broker;
struct json_t;

struct broker_ops {
	const char	*proto;
	/* The fd to poll and its events (ZMQ_POLLIN/OUT); fd -1 when idle. */
	void	(*poll_item)(struct broker *b, zmq_pollitem_t *item);
	/* Do I/O and timers; revents from the poll (0 on timeout). */
	void	(*handle)(struct broker *b, short revents, int64_t now_ms);
	/* ms until handle() must run anyway (-1: no timer). */
	int	(*timeout_ms)(struct broker *b, int64_t now_ms);
	/* Can a message to this address be sent now (connected, credit)? */
	bool	(*can_send)(struct broker *b, const char *address);
	/*
	 * Queue a message; on_sent(token) follows.  -1: not now (keep it and
	 * try later); -2: never (it cannot be encoded for this broker).
	 */
	int	(*send)(struct broker *b, const struct broker_out *m,
		    uint64_t token);
	/* Receive from source (kept across reconnects). */
	int	(*subscribe)(struct broker *b, const char *source);
	void	(*settle)(struct broker *b, struct broker_delivery *d,
		    enum settle how);
	/* Withhold (true) or grant (false) credit on receivers. */
	void	(*pause)(struct broker *b, bool paused);
	bool	(*is_up)(struct broker *b);
	void	(*free)(struct broker *b);
};

struct broker {
	const struct broker_ops *ops;
};

/*
 * A link for bo->urls[0]'s scheme (amqp, amqps: AMQP 1.0; amqp091,
 * amqps091: AMQP 0-9-1; stomp, stomp+ssl).
 * Returns NULL with err[FM_ERRLEN].  Strings in bo are copied.
 */
struct broker *broker_new(const struct broker_opts *bo,
    const struct broker_callbacks *cb, char *err);

/*
 * Fill bo's user, password (from password_file, into *secret, which the
 * caller frees with broker_secret_free), allow_plaintext_credentials,
 * vhost, tls {ca, cert, key, hostname}, heartbeat (s), credit,
 * confirm_timeout and connect_timeout (s) from a config object.  Strings
 * point into obj.  A password_file that group or others may read is
 * refused.  Returns 0 or -1.
 */
int broker_opts_from_json(struct json_t *obj, struct broker_opts *bo,
    char **secret, char *err);
/* Wipe and free a secret (NULL is fine). */
void broker_secret_free(char *secret);

/* amqp://, amqps:// URLs (amqp.c). */
struct broker *amqp_broker_new(const struct broker_opts *o,
    const struct broker_callbacks *cb, char *err);

/* amqp091://, amqps091:// URLs (amqp091.c). */
struct broker *amqp091_broker_new(const struct broker_opts *o,
    const struct broker_callbacks *cb, char *err);

/* stomp://, stomp+ssl:// URLs (stomp_link.c). */
struct broker *stomp_broker_new(const struct broker_opts *o,
    const struct broker_callbacks *cb, char *err);

/*
 * A destination from an address template ("address" of a bridge or the
 * hub): the first "{topic}" replaced by topic, e.g. "/topic/{topic}".
 * malloc'ed; NULL when out of memory.  (address.c)
 */
char *broker_address(const char *tmpl, const char *topic);

/*
 * The reverse, for a received message: its destination without the
 * address prefixes ("/topic/", "topic://", "/exchange/amq.topic/", ...;
 * an ActiveMQ "Consumer.<sa>.<name>." before "VirtualTopic."): a pointer
 * into dest.  (address.c)
 */
const char *broker_address_topic(const char *dest);

#endif
