/*
 * The network part shared by the broker clients (amqp.c, stomp_conn.c):
 *
 *  - broker URLs: scheme, user info, host (names, IPv4, "[v6]"), port
 *    defaults, and the failover lists configs use ("a,b",
 *    "failover:(a,b)?options");
 *  - a non-blocking TCP connect that tries every resolved address in turn
 *    (the time left is shared among the addresses still to try, so one
 *    silent address does not use it all);
 *  - a capped exponential backoff with jitter between attempts;
 *  - TLS (OpenSSL): the context from CA / client certificate and key, SNI
 *    and name (or IP address) verification, never a fallback to plain
 *    text; and a byte stream over a socket, with or without TLS, that
 *    never blocks and never raises SIGPIPE.
 *
 * Nothing here knows a broker protocol.  Single-threaded per object.
 */
#ifndef FM_NET_H
#define FM_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

struct addrinfo;

/* ---- URLs ---------------------------------------------------------------- */

struct net_scheme {
	const char	*name;		/* without "://", matched ignoring case */
	bool		 tls;
};

/* What one protocol accepts. */
struct net_proto {
	const char	*label;		/* "STOMP": for error texts */
	const struct net_scheme *schemes; /* ends with a NULL name */
	const char	*plain, *secure; /* the schemes of the normal form */
	unsigned short	 port, tls_port; /* defaults */
	bool		 bare_ok;	/* "host:port" without a scheme: plain */
};

struct net_url {
	char	*text;		/* normal form for logs: scheme://host:port
				   ("[v6]"), without user info */
	char	*user;		/* from "user@", or NULL */
	char	*host;		/* without the brackets */
	char	*port;		/* decimal */
	char	*path;		/* "/..." before any '?' or '#', still
				   percent-encoded; NULL when absent */
	bool	 tls;
};

/*
 * Parse one URL, [scheme://][user@]host[:port][/path][?query] (the path
 * is kept in u->path, the query ignored).  A password in the URL is
 * refused: secrets belong in password_file.  Returns 0, or -1 with a
 * reason in err[FM_ERRLEN] that quotes the URL, its password shown as
 * "***" (net_url_shown).
 */
int net_url_parse(const struct net_proto *p, const char *s, size_t n,
    struct net_url *u, char *err);
void net_url_free(struct net_url *u);

/*
 * s[0..n) as an error message may quote it: in each "user:password@"
 * after a "://" (a failover list has several) the password is "***".
 * Writes a NUL-terminated text of at most cap bytes into out; returns
 * out.
 */
const char *net_url_shown(const char *s, size_t n, char *out, size_t cap);

/*
 * Append the URLs of one config entry: one URL, a comma-separated list,
 * or "failover:(url,url,...)?options" (also without the parentheses).
 */
int net_urls_add(const struct net_proto *p, const char *entry,
    struct net_url **v, size_t *n, char *err);
void net_urls_free(struct net_url *v, size_t n);

/* How a client names itself and its schemes in the clear-text rules. */
struct net_clear_rules {
	const char	*who;		/* log prefix: "bridge", "stomp" */
	const char	*tls_scheme;	/* "amqps://" */
	const char	*plain_scheme;	/* "amqp://" */
	const char	*what;		/* "the login and passcode go in clear" */
};

/*
 * The clear-text rules of every broker client, on its URL list: a list
 * mixing TLS and plain URLs is refused (a refused TLS handshake would
 * fail over to plain text); credentials (creds, or a user@ in a plain
 * URL) over plain text need allow, and are then logged as INSECURE.
 * Returns 0, or -1 with the reason in err[FM_ERRLEN].
 */
int net_urls_check_clear(const struct net_url *v, size_t n, bool creds,
    bool allow, const struct net_clear_rules *r, char *err);

/* ---- connecting ---------------------------------------------------------- */

enum net_result {
	NET_PENDING,		/* poll net_conn_fd() for POLLOUT */
	NET_UP,			/* connected: take the socket */
	NET_FAILED,		/* every address failed: see err */
};

struct net_conn {
	int		 fd;		/* -1 when idle */
	struct addrinfo	*ai, *next;
	size_t		 left;		/* addresses not tried yet */
	int64_t		 deadline;	/* for all the addresses */
	int64_t		 addr_deadline;	/* the current one; 0: none */
	const char	*label;		/* the URL, for err */
	char		 err[256];
};

void net_conn_init(struct net_conn *c);
/*
 * Resolve host (getaddrinfo: blocks for a DNS name, not for an address)
 * and connect to its addresses in turn, the first that accepts wins.
 * When more than one address is left, each gets an equal share of the
 * time left before timeout_ms; the last one has no timer of its own (the
 * caller's overall timer ends it).  label names the target in err.
 */
enum net_result net_conn_start(struct net_conn *c, const char *host,
    const char *port, const char *label, unsigned timeout_ms, int64_t now);
/* The same with addresses resolved already (freed with freeaddrinfo). */
enum net_result net_conn_start_ai(struct net_conn *c, struct addrinfo *ai,
    const char *label, unsigned timeout_ms, int64_t now);
/* After a poll (revents 0: timers only). */
enum net_result net_conn_handle(struct net_conn *c, short revents,
    int64_t now);
/* ms until net_conn_handle() must run anyway; -1: none. */
int net_conn_timeout_ms(const struct net_conn *c, int64_t now);
/* The connected socket (non-blocking, TCP_NODELAY, keep-alive). */
int net_conn_take(struct net_conn *c);
void net_conn_close(struct net_conn *c);

/* ---- backoff ------------------------------------------------------------- */

struct net_backoff {
	unsigned	 min_ms, max_ms;
	unsigned	 attempt;	/* failures in a row */
	uint32_t	 rng;
};

void net_backoff_init(struct net_backoff *b, unsigned min_ms,
    unsigned max_ms);
/* The next delay: min * 2^attempt capped at max, uniform in [d/2, d]. */
int64_t net_backoff_next(struct net_backoff *b);
void net_backoff_reset(struct net_backoff *b);

/* ---- TLS ----------------------------------------------------------------- */

struct net_tls_opts {
	const char	*ca_file, *ca_dir;	/* both NULL: the system store */
	const char	*cert_file;		/* client chain (PEM) */
	const char	*key_file;		/* NULL: in cert_file */
};

/*
 * A client context: TLS 1.2 or later, peer verification on, the files
 * loaded and checked (the key matches the certificate).  NULL with a
 * reason naming the file in err[FM_ERRLEN].
 */
SSL_CTX *net_tls_ctx_new(const struct net_tls_opts *o, char *err);

/* ---- a byte stream: a socket, with or without TLS ------------------------ */

struct net_stream {
	int		 fd;
	SSL		*ssl;		/* NULL: plain TCP */
	bool		 hs_want_write;	/* handshake waits for POLLOUT */
	bool		 rd_want_write;	/* SSL_read waits for POLLOUT */
	bool		 wr_want_read;	/* SSL_write waits for POLLIN */
	size_t		 tls_wlen;	/* SSL_write to retry with this size */
	char		 err[256];	/* the last failure */
};

/* Plain stream over a connected socket (owned from now on). */
void net_stream_init(struct net_stream *st, int fd);
/*
 * Start TLS on it: SNI and verification of name (a host name, or an IP
 * address literal checked against the certificate's IP entries).
 * Returns -1 with st->err.
 */
int net_stream_tls(struct net_stream *st, SSL_CTX *ctx, const char *name);
/*
 * Drive the handshake: NET_UP when done, NET_PENDING (poll
 * net_stream_events()), NET_FAILED with st->err (certificate
 * verification names the reason and the expected name; a peer that is
 * not TLS is said so).  label names the peer in err.
 */
enum net_result net_stream_handshake(struct net_stream *st,
    const char *label, const char *name);
/* >0 read, 0 would block, -1 EOF, -2 error (st->err). */
ssize_t net_stream_read(struct net_stream *st, void *p, size_t n);
/* >0 written, 0 would block, -1 error (st->err).  Pass at least the
   length of a write that returned 0 again (TLS retries it). */
ssize_t net_stream_write(struct net_stream *st, const void *p, size_t n);
/* More decrypted bytes are buffered (read again without a poll). */
bool net_stream_pending(const struct net_stream *st);
void net_stream_close(struct net_stream *st);

#endif
