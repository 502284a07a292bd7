/*
 * fedmsg-c bus API: publishing and subscribing on fedmsg's ZeroMQ
 * endpoints, interchangeably with Python fedmsg peers.
 *
 * Publishing follows fedmsg.core.FedMsgContext: a passive publisher binds a
 * PUB socket on the first free URL of endpoints[name]; an active one
 * connects to relay_inbound.  Each message is two frames, the topic and the
 * envelope, signed when sign_messages is true.
 *
 * Subscribing follows fedmsg.tail_messages(): one SUB socket connected to
 * every URL of every endpoints entry (except relay_inbound), filtered by
 * topic prefix, validated when validate_signatures is true.
 *
 * Thread rules: a publisher or subscriber is used by one thread at a time
 * (ZeroMQ sockets are not thread-safe).  Different ones may live in
 * different threads.
 */
#ifndef FEDMSG_BUS_H
#define FEDMSG_BUS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include <fedmsg/message.h>

#ifdef __cplusplus
extern "C" {
#endif

struct fm_config;	/* internal; opened from a path by the calls below */

/* What to open.  Zeroed fields take the config's values. */
struct fm_bus_opts {
	const char	*config_path;	/* NULL: $FEDMSG_CONFIG, else /etc/fedmsg.d */
	const struct fm_config *config;	/* in-tree callers: use this config
					   (borrowed; outlives the object) */
	const char	*name;		/* service name; NULL: config "name" */
	int		 active;	/* -1 or 0/1: override config "active" */
	const char	*cert_prefix;	/* cert = certnames["<prefix>.<host>"] */
	/* Active publishers: how long (ms) to wait for the relay to accept the
	 * connection before fm_publisher_open() fails; 0 = 2000. */
	int		 connect_timeout_ms;
	/* -1: sign when sign_messages; 0: never (the caller sends messages
	 * signed elsewhere with fm_publisher_send()); 1: always. */
	int		 sign;
};

#define FM_BUS_OPTS_INIT { NULL, NULL, NULL, -1, NULL, 0, -1 }

/* ---- publishing --------------------------------------------------------- */

struct fm_publisher;

/*
 * Open a publisher: bind or connect, load the signing certificate when
 * sign_messages is true, and sleep post_init_sleep (ZeroMQ's slow joiner).
 * Returns NULL with a reason in err[FM_ERRLEN].
 */
struct fm_publisher *fm_publisher_open(const struct fm_bus_opts *opts,
    char *err);

/*
 * Build, sign and send one message.  topic and modname make the full topic
 * (fm_topic_build); msg_json is the payload as JSON text (NULL: {}).
 * Returns 0, or -1 with err.  The message is queued, not acknowledged:
 * ZeroMQ PUB sockets drop messages no subscriber takes (see README).
 */
int fm_publish(struct fm_publisher *p, const char *topic, const char *modname,
    const char *msg_json, char *err);

/* Send a ready message (e.g. one signed elsewhere) unchanged. */
int fm_publisher_send(struct fm_publisher *p, const struct fm_msg *msg,
    char *err);

/* The URL bound or connected to (owned by the publisher). */
const char *fm_publisher_endpoint(const struct fm_publisher *p);

/* Close, waiting up to zmq_linger ms for queued messages to leave. */
void fm_publisher_close(struct fm_publisher *p);

/* ---- subscribing -------------------------------------------------------- */

struct fm_subscriber;

/* A received message.  msg is a new reference the caller drops. */
struct fm_received {
	struct fm_msg	*msg;
	const char	*endpoint_name;	/* endpoints key; owned by subscriber */
	const char	*endpoint_url;
};

/* Counters since open. */
struct fm_sub_stats {
	uint64_t	 received;	/* accepted and handed over */
	uint64_t	 bad_frames;	/* wrong frame count or oversize */
	uint64_t	 bad_json;	/* body not a JSON object */
	uint64_t	 topic_mismatch;/* topic frame != body topic */
	uint64_t	 invalid;	/* failed signature validation */
};

/*
 * Open a subscriber.  names: NULL-terminated endpoints keys to connect to
 * (NULL: all but relay_inbound).  topics: NULL-terminated topic prefixes
 * (NULL or empty: everything).  validate: -1 config, 0 off, 1 on.
 */
struct fm_subscriber *fm_subscriber_open(const struct fm_bus_opts *opts,
    const char *const *names, const char *const *topics, int validate,
    char *err);

/*
 * Wait up to timeout_ms (-1: forever) for the next acceptable message.
 * Returns 1 with *out filled, 0 on timeout, -1 when interrupted by a
 * signal (errno EINTR) or on a fatal socket error (err set).  Rejected
 * messages are counted and logged, never returned.
 */
int fm_subscriber_recv(struct fm_subscriber *s, int timeout_ms,
    struct fm_received *out, char *err);

void fm_subscriber_stats(const struct fm_subscriber *s, struct fm_sub_stats *st);
void fm_subscriber_close(struct fm_subscriber *s);

#ifdef __cplusplus
}
#endif
#endif /* FEDMSG_BUS_H */
