/*
 * A non-blocking STOMP 1.2 / 1.1 client session for an event loop: the
 * link of the bridges and of the hub to a STOMP broker (stomp_link.c).
 *
 * The session owns one socket at a time (plain TCP or TLS) and never
 * blocks, except for the DNS lookup of a host name at connect time
 * (getaddrinfo; numeric addresses do not block).  The caller's loop:
 *
 *	for (;;) {
 *		int64_t now = stomp_now_ms();
 *		struct pollfd pfd = { stomp_fd(s), stomp_events(s), 0 };
 *		int t = stomp_timeout_ms(s, now);	// -1 = no timer
 *
 *		poll(&pfd, pfd.fd >= 0, t);		// or a zmq_pollitem_t
 *		stomp_handle(s, pfd.revents, stomp_now_ms());
 *	}
 *
 * stomp_handle() may be called at any time (revents 0 = timers only).
 * When stomp_fd() is -1 (between connections) leave the descriptor out of
 * the poll set and only honour the timeout.  Times are milliseconds of a
 * monotonic clock (stomp_now_ms()).
 *
 * Life cycle: stomp_start() connects to the first URL; whatever goes wrong
 * (refused, TLS failure, ERROR frame, dead peer, protocol error, receipt
 * timeout) is logged, reported through on_error() with a clear text, the
 * connection is closed and the next URL (round robin) is tried after a
 * capped exponential backoff with jitter.  The session never gives up,
 * never exits, and never falls back from TLS to plain text.  After every
 * CONNECTED all subscriptions are sent again, then on_connected() runs.
 *
 * Delivery: stomp_send() only queues; with a receipt id, on_receipt()
 * reports when the broker has the message.  When the session that
 * on_connected() announced ends, on_disconnected() runs: every receipt not
 * yet reported will never be (re-send those messages after the next
 * on_connected()), and every ack token of that session is stale (the broker
 * redelivers those messages).
 *
 * Messages that arrive after stomp_disconnect() are dropped unacknowledged
 * (the broker redelivers them to a client-ack subscription).
 *
 * Callbacks run inside stomp_handle().  They may call stomp_send(),
 * stomp_ack(), stomp_nack(), stomp_subscribe(), stomp_unsubscribe() and
 * stomp_disconnect(), but not stomp_free().  Single-threaded.
 */
#ifndef FM_STOMP_H
#define FM_STOMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stomp_frame.h"

/* Defaults for the zero fields of struct stomp_opts. */
#define STOMP_DEFAULT_PORT		61613	/* stomp:// */
#define STOMP_DEFAULT_TLS_PORT		61612	/* stomp+ssl:// (ActiveMQ) */
#define STOMP_DEFAULT_CONNECT_TIMEOUT	15000	/* TCP + TLS + CONNECTED */
#define STOMP_DEFAULT_RECEIPT_TIMEOUT	30000
#define STOMP_DEFAULT_FRAME_TIMEOUT	60000	/* one incomplete frame */
#define STOMP_DEFAULT_RECONNECT_MIN	500
#define STOMP_DEFAULT_RECONNECT_MAX	60000
#define STOMP_DEFAULT_OUT_MAX		(8u * 1024 * 1024)
#define STOMP_DEFAULT_MAX_INFLIGHT	1000

enum stomp_state {
	STOMP_ST_DISCONNECTED,	/* no socket: reconnect pending, or stopped */
	STOMP_ST_CONNECTING,	/* TCP connect in progress */
	STOMP_ST_TLS_HANDSHAKE,
	STOMP_ST_STOMP_CONNECTING, /* CONNECT sent, waiting for CONNECTED */
	STOMP_ST_CONNECTED,
	STOMP_ST_DISCONNECTING,	/* DISCONNECT sent, waiting for its RECEIPT */
};

struct stomp_callbacks {
	/* CONNECTED arrived and the subscriptions went out. */
	void	(*on_connected)(void *arg, const struct stomp_frame *connected);
	/*
	 * A MESSAGE.  ack_token is NULL when the subscription does not ack
	 * (ack:auto); otherwise pass it (or a strdup of it, later) to
	 * stomp_ack()/stomp_nack().  The frame is valid during the call.
	 */
	void	(*on_message)(void *arg, const struct stomp_frame *msg,
		    const char *ack_token);
	/* The broker has processed the frame sent with this receipt id. */
	void	(*on_receipt)(void *arg, const char *receipt_id);
	/* Something failed; the connection is being closed. */
	void	(*on_error)(void *arg, const char *text);
	/*
	 * An ERROR frame on a connected session (before on_error and the
	 * close): receipt_id is its receipt-id header, the frame it answers
	 * (NULL when it names none); text its message (and body's first
	 * line).  Optional.
	 */
	void	(*on_error_frame)(void *arg, const char *receipt_id,
		    const char *text);
	/* The session on_connected() announced has ended. */
	void	(*on_disconnected)(void *arg, const char *reason);
};

struct stomp_opts {
	/*
	 * Broker URLs, NULL-terminated: "stomp://host:port",
	 * "stomp+ssl://host:port" (also "stomp+tls://", "ssl://", "tcp://"),
	 * "[v6addr]:port" for IPv6; each entry may be a comma-separated list
	 * or ActiveMQ's "failover:(url,url,...)" form.  Tried round robin.
	 */
	const char *const *urls;
	const char	*login;		/* NULL: not sent (UMB: certificates) */
	const char	*passcode;
	/*
	 * login/passcode go over TLS URLs only, unless this is set (the
	 * config's allow_plaintext_credentials; logged loudly).  A list that
	 * mixes TLS and plain URLs is always refused: a failed TLS attempt
	 * would fail over to plain text.
	 */
	bool		 allow_plaintext_login;
	const char	*vhost;		/* "host" header; NULL = the URL's host
					   (RabbitMQ wants "/") */
	/* More CONNECT headers: name, value, ..., NULL (e.g. client-id). */
	const char *const *connect_headers;

	/* TLS, for stomp+ssl:// URLs */
	const char	*ca_file;	/* trust; both NULL = system default */
	const char	*ca_dir;
	const char	*cert_file;	/* client certificate chain (PEM) */
	const char	*key_file;	/* its key (PEM); NULL = in cert_file */
	/* Name for SNI and certificate verification instead of the URL's
	   host (e.g. "localhost" when connecting to 127.0.0.1). */
	const char	*tls_verify_name;

	/* Heart-beats wanted, ms; 0 = none.  (cx, cy) of the spec. */
	unsigned	 hb_send_ms;
	unsigned	 hb_recv_ms;

	/* Timers, ms; 0 = the default. */
	unsigned	 connect_timeout_ms;
	unsigned	 receipt_timeout_ms;
	unsigned	 frame_timeout_ms;
	unsigned	 reconnect_min_ms;
	unsigned	 reconnect_max_ms;

	size_t		 out_max;	/* bytes of queued SENDs */
	size_t		 max_inflight;	/* SENDs waiting for their RECEIPT */
	struct stomp_limits limits;	/* for frames from the broker */

	struct stomp_callbacks cb;
	void		*arg;		/* passed to the callbacks */
};

struct stomp_stats {
	uint64_t	 connects;	/* CONNECTED received */
	uint64_t	 failures;	/* attempts or sessions that failed */
	uint64_t	 frames_in, frames_out;
	uint64_t	 bytes_in, bytes_out;
	uint64_t	 heartbeats_in, heartbeats_out;
	uint64_t	 messages, receipts;
};

struct stomp;

/*
 * Check the options and make a session (not connected yet).  Returns NULL
 * with a reason in err[FM_ERRLEN]: no or bad URL, TLS and plain URLs mixed,
 * a login or passcode over plain text without allow_plaintext_login, a TLS
 * file that cannot be loaded, a CR/LF in login, passcode or vhost.  The
 * strings are copied (the passcode is wiped when the session is freed).
 */
struct stomp *stomp_new(const struct stomp_opts *o, char *err);
/* Close at once (no DISCONNECT, no callbacks) and free.  NULL is fine. */
void stomp_free(struct stomp *s);

/* Connect now (again, after a completed stomp_disconnect()). */
void stomp_start(struct stomp *s, int64_t now_ms);

/* The descriptor to poll, or -1; the poll events it wants (POLLIN...). */
int stomp_fd(const struct stomp *s);
short stomp_events(const struct stomp *s);
/* Milliseconds until stomp_handle() must run anyway; -1 = no timer. */
int stomp_timeout_ms(const struct stomp *s, int64_t now_ms);
/* Do the I/O revents allow, then the timers; runs the callbacks. */
void stomp_handle(struct stomp *s, short revents, int64_t now_ms);

/*
 * Subscribe (now if connected, and after every reconnect).  ack is
 * "auto", "client" or "client-individual" (NULL = client-individual);
 * headers: more name, value, ..., NULL (activemq.prefetchSize,
 * prefetch-count, selector, durable...).  Returns -1 (errno EEXIST) when
 * the id is in use, EINVAL for a bad argument.
 */
int stomp_subscribe(struct stomp *s, const char *destination,
    const char *id, const char *ack, const char *const *headers);
int stomp_unsubscribe(struct stomp *s, const char *id);

/*
 * Whether a SUBSCRIBE of this connection still awaits its RECEIPT (each
 * asks for one, with a receipt id of SUB_RECEIPT and the subscription id,
 * which on_receipt() never sees).  A broker handles a connection's frames
 * in order and answers a SUBSCRIBE at once, so an ERROR naming no receipt
 * meanwhile is about a SUBSCRIBE, not about a SEND written after it.
 */
#define SUB_RECEIPT	"subscribe-"
bool stomp_subscribing(const struct stomp *s);

/*
 * Queue a SEND with content-length (plus the headers given: name, value,
 * ..., NULL, a NULL value leaving that header out; a content-length among
 * them is replaced).  Note: ActiveMQ makes a JMS BytesMessage of a SEND
 * with content-length (AMQP 1.0 consumers then get a binary body); pass
 * "amq-msg-type", "text" for a TextMessage.  STOMP 1.1 cannot carry a CR
 * in a header (EINVAL).  With receipt_id
 * (not NULL) the broker confirms through on_receipt(receipt_id).
 * Returns 0, or -1 with errno: ENOTCONN (not connected: keep it in the
 * spool and send it after on_connected()), ENOBUFS (output buffer or
 * in-flight window full: retry after some on_receipt() or output),
 * EMSGSIZE (can never fit out_max), EINVAL (cannot be encoded).
 */
int stomp_send(struct stomp *s, const char *destination,
    const char *const *headers, const void *body, size_t len,
    const char *receipt_id);

/*
 * Acknowledge a message by its token: ACK id:<ack> (1.2) or ACK
 * message-id + subscription (1.1).  Returns -1 with errno ENOTCONN, or
 * ESTALE when the token belongs to an earlier connection (nothing is sent:
 * the broker will redeliver), EINVAL for a malformed token.
 */
int stomp_ack(struct stomp *s, const char *ack_token);
int stomp_nack(struct stomp *s, const char *ack_token);
/* A NACK with requeue:false: "never again" where the broker honours it
 * (RabbitMQ); ActiveMQ applies its redelivery policy and DLQ. */
int stomp_reject(struct stomp *s, const char *ack_token);

/*
 * Graceful close: DISCONNECT with a receipt after what is queued, wait for
 * the RECEIPT (receipt timeout at most), close, stay disconnected (until
 * stomp_start()).  on_disconnected() runs when done.
 */
void stomp_disconnect(struct stomp *s, int64_t now_ms);

enum stomp_state stomp_state(const struct stomp *s);
const char *stomp_state_name(enum stomp_state st);
/* "1.2" or "1.1" once CONNECTED, else NULL. */
const char *stomp_version(const struct stomp *s);
/* The URL in use (or last tried), as given. */
const char *stomp_url(const struct stomp *s);
/* The text of the last failure (kept after reconnecting), "" if none. */
const char *stomp_last_error(const struct stomp *s);
/* Negotiated heart-beat periods, ms (0 = none). */
void stomp_heartbeats(const struct stomp *s, unsigned *send_ms,
    unsigned *recv_ms);
void stomp_stats(const struct stomp *s, struct stomp_stats *st);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t stomp_now_ms(void);

/*
 * ---- The session without I/O ----
 *
 * stomp.c is the protocol only, like qpid-proton's connection driver:
 * bytes in, callbacks and bytes out, timers on the caller's clock.
 * stomp_new() puts a transport under it (stomp_conn.c: URLs and failover,
 * TCP, TLS, reconnecting: the functions above that poll); an owner of its
 * own (a test, another transport) drives a bare session:
 *
 *	s = stomp_session_new(&opts, &hooks, owner, err);
 *	stomp_session_target(s, "stomp://b:61613", "b", false);
 *	stomp_session_attach(s, now);	// a connection attempt begins
 *	stomp_session_open(s, now);	// bytes can flow: CONNECT is queued
 *	stomp_session_input(s, data, n, now);	// what the broker sent
 *	p = stomp_session_output(s, &n);	// what to send to it...
 *	stomp_session_output_done(s, written, now);	// ...and what went
 *	stomp_session_tick(s, now);	// when stomp_session_timeout_ms() says
 *
 * The session closes a connection by itself (ERROR, protocol error,
 * timeouts, the DISCONNECT receipt): its generation changes and
 * hooks.closed() runs, before on_disconnected().  The owner reports its
 * own failures with stomp_session_fail() and the end of input with
 * stomp_session_input_end().  opts.urls and the TLS and reconnect fields
 * are the transport's: a bare session ignores them.
 */
struct stomp_hooks {
	/* The connection ended: drop the stream; if running, reconnect.
	   connected_at: when CONNECTED came (0: never). */
	void	(*closed)(void *owner, int64_t now, int64_t connected_at);
	/* stomp_free() is freeing the session: free the owner. */
	void	(*free)(void *owner);
};

struct stomp *stomp_session_new(const struct stomp_opts *o,
    const struct stomp_hooks *hooks, void *owner, char *err);
void *stomp_session_owner(const struct stomp *s);
/* The peer, for messages and the default "host" header.  -1: no memory. */
int stomp_session_target(struct stomp *s, const char *url_text,
    const char *host, bool tls);
void stomp_session_attach(struct stomp *s, int64_t now);
/* The transport does a TLS handshake (the state shows it). */
void stomp_session_handshaking(struct stomp *s);
void stomp_session_open(struct stomp *s, int64_t now);
void stomp_session_input(struct stomp *s, const void *data, size_t n,
    int64_t now);
/* The input ended: EOF (ioerr NULL) or a read error. */
void stomp_session_input_end(struct stomp *s, int64_t now,
    const char *ioerr);
/* Bytes to write, or NULL (*len 0): valid until the next session call. */
const void *stomp_session_output(const struct stomp *s, size_t *len);
void stomp_session_output_done(struct stomp *s, size_t n, int64_t now);
int stomp_session_timeout_ms(const struct stomp *s, int64_t now_ms);
void stomp_session_tick(struct stomp *s, int64_t now);
/* A failure of the owner's: logged, on_error(), the connection closed. */
void stomp_session_fail(struct stomp *s, int64_t now, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* End the connection without an error (no callbacks but closed() and
   on_disconnected()). */
void stomp_session_close(struct stomp *s, int64_t now, const char *reason);
/* Bumped whenever a connection ends: compare around calls that run
   callbacks. */
uint64_t stomp_session_generation(const struct stomp *s);
/* stomp_start() .. stomp_disconnect(): reconnect when a connection ends. */
bool stomp_session_running(const struct stomp *s);
void stomp_session_set_running(struct stomp *s, bool running);

#endif
