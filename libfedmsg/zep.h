/*
 * ZeroMQ endpoints the way fedmsg uses them: socket options from config,
 * binding and connecting fedmsg URLs, and the two-frame wire format.
 * Every program shares one ZeroMQ context per process.
 */
#ifndef FM_ZEP_H
#define FM_ZEP_H

#include <stdbool.h>
#include <stddef.h>

#include <zmq.h>

#include <fedmsg/message.h>

struct fm_config;

/* The process-wide context (created on first use with io_threads). */
void *zep_context(const struct fm_config *cfg);
/*
 * Terminate it, after every socket on it is closed: this is when queued
 * messages get their zmq_linger time to leave.  For clean exits.
 */
void zep_shutdown(void);
/* A context of one's own (e.g. a publisher whose close must flush). */
void *zep_context_new(const struct fm_config *cfg);

/* Close sock (NULL is fine) at once: what it still queues is dropped
   (ZMQ_LINGER 0), for sockets whose peers are gone or never mattered. */
void zep_close_now(void *sock);

/*
 * Apply high_water_mark, the TCP keepalive keys and (for SUB/XSUB) the
 * reconnect keys, each only when present in the config, as fedmsg does;
 * and always ZMQ_MAXMSGSIZE = max_message_bytes (ZEP_MAX_SUBSCRIPTION on
 * a PUB or XPUB, which receives only subscriptions), so no peer can make
 * libzmq buffer a bigger frame.  Call it before bind/connect: libzmq
 * copies the options into each connection when it is made.
 */
#define ZEP_MAX_SUBSCRIPTION	4096	/* a topic prefix, with room */
void zep_apply_options(void *sock, const struct fm_config *cfg, bool sub);

/*
 * The URL a passive publisher binds for a configured URL: fedmsg binds
 * tcp://(star):<port> whatever host is named; we keep the host when it is a
 * loopback address so that test and local setups stay local.  Writes into
 * out[len]; returns 0 or -1 when the URL is not tcp://host:port.
 */
int zep_bind_url(const char *url, char *out, size_t len);

/*
 * Create a socket of type in ctx and bind it to the first of urls[0..n) that
 * binds (rewritten with zep_bind_url when rewrite is true).  Returns the
 * socket and the URL used in bound[len], or NULL with err[FM_ERRLEN].
 */
void *zep_bind_first(void *ctx, const struct fm_config *cfg, int type,
    const char *const *urls, size_t n, bool rewrite, char *bound, size_t len,
    char *err);

/* A received fedmsg wire message: two frames. */
struct zep_frames {
	zmq_msg_t	 topic;
	zmq_msg_t	 body;
};

enum zep_rc {
	ZEP_OK = 0,
	ZEP_AGAIN,		/* nothing to read (non-blocking) */
	ZEP_BAD_COUNT,		/* not exactly two frames; drained */
	ZEP_TOO_BIG,		/* a frame above the size limit; drained */
	ZEP_ERROR,		/* socket error or EINTR; errno set */
};

/*
 * Receive one multipart message.  flags: 0 or ZMQ_DONTWAIT.  On ZEP_OK the
 * frames are initialised and must be released with zep_frames_close();
 * otherwise nothing needs releasing.  Extra frames are read and dropped so
 * the next call starts at a message boundary.
 */
enum zep_rc zep_recv(void *sock, int flags, size_t max_body,
    struct zep_frames *f);
void zep_frames_close(struct zep_frames *f);

/*
 * zmq_poll for at most timeout_ms in all (-1: forever), resuming after
 * signals with the time that is left.  Returns zmq_poll's result.
 */
int zep_poll_for(zmq_pollitem_t *items, int n, int timeout_ms);

/* Send topic and body as two frames, never blocking (ZMQ_DONTWAIT). */
int zep_send(void *sock, const char *topic, size_t topic_len,
    const void *body, size_t body_len);

/* Send a message: its topic (from the body) and its exact body bytes. */
int zep_send_msg(void *sock, const struct fm_msg *msg);

/*
 * Does the topic frame agree with the body's topic?  The signature covers
 * the body only, so a mismatching frame is how a forged route would look.
 */
bool zep_topic_matches(const struct zep_frames *f, const struct fm_msg *msg);

#endif
