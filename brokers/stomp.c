/*
 * Non-blocking STOMP client session (see stomp.h).
 *
 * One connection at a time; everything is driven by stomp_handle() with
 * the caller's clock.  Whatever ends a connection goes through fail() (an
 * error: logged, on_error(), reconnect later) or close_conn() (the common
 * path: socket, TLS, parser, output, receipts are dropped and the
 * connection generation is bumped, which makes old ack tokens stale and
 * tells every loop in here to stop touching the connection).
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <fedmsg/message.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "stomp.h"
#include "stomp_frame.h"

#define READ_BUDGET	(1024 * 1024)	/* per stomp_handle(), then yield */
#define TLS_WCHUNK	16384
#define OUT_KEEP_CAP	(1024 * 1024)	/* free a drained output buffer above */

struct url {
	char	*text;		/* normalized, for logs */
	char	*host;		/* without [] */
	char	*port;
	bool	 tls;
};

struct sub {
	char	*id;
	char	*dest;
	char	*ack;
	char	**hdrs;		/* name, value, ..., NULL */
};

struct receipt {
	char	*id;		/* NULL once answered (out of order) */
	int64_t	 deadline;	/* 0 = not started yet */
};

struct stomp {
	/* configuration */
	struct url	*urls;
	size_t		 nurls, cur;
	char		*login, *passcode, *vhost;
	char		**connect_hdrs;
	SSL_CTX		*ctx;
	char		*verify_name;
	unsigned	 cx, cy;
	unsigned	 connect_to, receipt_to, frame_to, rmin, rmax;
	size_t		 out_max, max_inflight;
	struct stomp_limits lim;
	struct stomp_callbacks cb;
	void		*arg;

	/* the connection */
	enum stomp_state st;
	bool		 running;	/* reconnect when the connection ends */
	bool		 announced;	/* on_connected() ran for it */
	uint64_t	 gen;		/* bumped at every close */
	int		 fd;
	struct addrinfo	*ai, *ai_next;
	char		 conn_err[FM_ERRLEN];	/* last per-address failure */
	char		 ioerr[FM_ERRLEN];	/* last read/write failure */
	SSL		*ssl;
	bool		 hs_want_write;	/* handshake waits for POLLOUT */
	bool		 rd_want_write;	/* SSL_read waits for POLLOUT */
	bool		 wr_want_read;	/* SSL_write waits for POLLIN */
	size_t		 tls_wlen;	/* SSL_write to retry with this size */
	struct stomp_parser *parser;
	uint64_t	 hb_seen;
	struct buf	 out;
	size_t		 out_off;
	char		 version[4];
	unsigned	 hb_tx, hb_rx;
	int64_t		 deadline;	/* connect or DISCONNECT receipt */
	int64_t		 reconnect_at;
	int64_t		 last_rx, last_tx;
	int64_t		 connected_at;
	int64_t		 partial_since;
	uint64_t	 partial_frames;
	bool		 read_more;
	unsigned	 attempt;	/* failures in a row, for the backoff */
	struct receipt	*rc;
	size_t		 rc_head, rc_len, rc_cap;
	size_t		 rc_new;	/* at the tail, timer not started */
	char		*disc_receipt;

	struct sub	*subs;
	size_t		 nsubs;

	struct buf	 token;
	char		 err[FM_ERRLEN];
	uint32_t	 rng;
	struct stomp_stats stats;
	char		 rbuf[16384];
};

static const char *const state_names[] = {
	"disconnected", "connecting", "TLS handshake", "STOMP connecting",
	"connected", "disconnecting",
};

const char *
stomp_state_name(enum stomp_state st)
{
	return (unsigned)st < sizeof(state_names) / sizeof(state_names[0]) ?
	    state_names[st] : "?";
}

int64_t
stomp_now_ms(void)
{
	return clock_ms();
}

/* ---- small helpers ----------------------------------------------------- */

static char **
strv_dup(const char *const *v)
{
	size_t i, n = 0;
	char **d;

	while (v && v[n])
		n++;
	if ((d = calloc(n + 1, sizeof(*d))) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if ((d[i] = strdup(v[i])) == NULL) {
			while (i > 0)
				free(d[--i]);
			free(d);
			return NULL;
		}
	return d;
}

static void
strv_free(char **v)
{
	size_t i;

	for (i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static size_t
strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

static bool
has_crlf(const char *s)
{
	return s && strpbrk(s, "\r\n") != NULL;
}

static uint32_t
rnd(struct stomp *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 17;
	s->rng ^= s->rng << 5;
	return s->rng;
}

static bool
in_session(const struct stomp *s)
{
	return s->st == STOMP_ST_STOMP_CONNECTING ||
	    s->st == STOMP_ST_CONNECTED || s->st == STOMP_ST_DISCONNECTING;
}

static size_t
out_pending(const struct stomp *s)
{
	return s->out.len - s->out_off;
}

/* ---- URLs -------------------------------------------------------------- */

static void
url_free(struct url *u)
{
	free(u->text);
	free(u->host);
	free(u->port);
}

/* One URL: [scheme://]host[:port][/path][?query]. */
static int
url_parse(const char *s, size_t n, struct url *u, char *err)
{
	static const struct {
		const char	*scheme;
		bool		 tls;
	} schemes[] = {
		{ "stomp://", false }, { "tcp://", false },
		{ "stomp+ssl://", true }, { "stomp+tls://", true },
		{ "stomp+nio+ssl://", true }, { "ssl://", true },
		{ "tls://", true }, { "stomps://", true },
	};
	const char *orig = s, *end = s + n, *h, *he, *p = NULL, *pe = NULL;
	char *ep;
	size_t i;
	long port;

	memset(u, 0, sizeof(*u));
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t l = strlen(schemes[i].scheme);

		if (n >= l && strncasecmp(s, schemes[i].scheme, l) == 0) {
			s += l;
			u->tls = schemes[i].tls;
			break;
		}
	}
	if (i == sizeof(schemes) / sizeof(schemes[0]) &&
	    memmem(s, n, "://", 3) != NULL) {
		snprintf(err, FM_ERRLEN, "unsupported STOMP URL scheme in "
		    "'%.*s' (use stomp:// or stomp+ssl://)", (int)n, s);
		return -1;
	}
	for (h = s; h < end && *h != '/' && *h != '?'; h++)
		;
	end = h;
	h = s;
	if (h < end && *h == '[') {
		if ((he = memchr(h, ']', (size_t)(end - h))) == NULL)
			goto bad;
		h++;
		if (he + 1 < end) {
			if (he[1] != ':')
				goto bad;
			p = he + 2;
			pe = end;
		}
	} else {
		he = memchr(h, ':', (size_t)(end - h));
		if (he) {
			p = he + 1;
			pe = end;
		} else
			he = end;
	}
	if (he == h)
		goto bad;
	if (p) {
		char num[8];

		if (pe - p < 1 || pe - p > 5)
			goto bad;
		memcpy(num, p, (size_t)(pe - p));
		num[pe - p] = '\0';
		port = strtol(num, &ep, 10);
		if (*ep || port < 1 || port > 65535)
			goto bad;
	} else
		port = u->tls ? STOMP_DEFAULT_TLS_PORT : STOMP_DEFAULT_PORT;
	if ((u->host = strndup(h, (size_t)(he - h))) == NULL ||
	    asprintf(&u->port, "%ld", port) < 0 ||
	    asprintf(&u->text, "%s://%s%s%s:%ld", u->tls ? "stomp+ssl" :
	    "stomp", strchr(u->host, ':') ? "[" : "", u->host,
	    strchr(u->host, ':') ? "]" : "", port) < 0) {
		u->port = u->text = NULL;
		url_free(u);
		snprintf(err, FM_ERRLEN, "out of memory");
		return -1;
	}
	return 0;
bad:
	snprintf(err, FM_ERRLEN, "bad STOMP URL '%.*s' (want "
	    "stomp://host:port or stomp+ssl://host:port)", (int)n, orig);
	return -1;
}

/* An entry: a URL, a comma list, or failover:(a,b,...)?options. */
static int
urls_add(struct stomp *s, const char *entry, char *err)
{
	const char *p = entry, *end, *c;
	struct url *nu;

	if (strncasecmp(p, "failover:", 9) == 0) {
		p += 9;
		if (*p == '(') {
			p++;
			if ((end = strchr(p, ')')) == NULL) {
				snprintf(err, FM_ERRLEN, "bad failover URL "
				    "'%s' (no closing ')')", entry);
				return -1;
			}
		} else
			end = p + strcspn(p, "?");
	} else
		end = p + strlen(p);
	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		if (p == end)
			break;
		c = memchr(p, ',', (size_t)(end - p));
		if (c == NULL)
			c = end;
		{
			const char *e = c;

			while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if ((nu = realloc(s->urls, (s->nurls + 1) *
			    sizeof(*nu))) == NULL) {
				snprintf(err, FM_ERRLEN, "out of memory");
				return -1;
			}
			s->urls = nu;
			if (url_parse(p, (size_t)(e - p), &s->urls[s->nurls],
			    err) < 0)
				return -1;
			s->nurls++;
		}
		p = c;
	}
	return 0;
}

/* ---- TLS ----------------------------------------------------------------- */

/*
 * A socket BIO that writes with MSG_NOSIGNAL: a broker that goes away
 * must not kill the process with SIGPIPE, whatever the caller's signal
 * setup.
 */
static BIO_METHOD *nosig_method;
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static int
nosig_write(BIO *b, const char *data, int len)
{
	ssize_t n;

	BIO_clear_retry_flags(b);
	n = send((int)(intptr_t)BIO_get_data(b), data, (size_t)len,
	    MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static int
nosig_read(BIO *b, char *data, int len)
{
	ssize_t n;

	BIO_clear_retry_flags(b);
	n = recv((int)(intptr_t)BIO_get_data(b), data, (size_t)len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		BIO_set_retry_read(b);
	return (int)n;
}

static long
nosig_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_C_GET_FD:
		if (ptr)
			*(int *)ptr = (int)(intptr_t)BIO_get_data(b);
		return (long)(intptr_t)BIO_get_data(b);
	default:
		return 0;
	}
}

static int
nosig_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void
nosig_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() |
	    BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "stomp socket");

	if (m == NULL)
		return;
	BIO_meth_set_write(m, nosig_write);
	BIO_meth_set_read(m, nosig_read);
	BIO_meth_set_ctrl(m, nosig_ctrl);
	BIO_meth_set_create(m, nosig_create);
	nosig_method = m;
}

static void
ssl_errtext(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	if (e == 0)
		snprintf(buf, len, "unknown error");
	else if (r)
		snprintf(buf, len, "%s", r);
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}

static SSL_CTX *
tls_ctx_new(const struct stomp_opts *o, char *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char e[160];

	if (ctx == NULL) {
		ssl_errtext(e, sizeof(e));
		snprintf(err, FM_ERRLEN, "TLS setup: %s", e);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* STOMP frames are self-delimiting: a missing close_notify is EOF */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	if (o->ca_file || o->ca_dir) {
		if (SSL_CTX_load_verify_locations(ctx, o->ca_file,
		    o->ca_dir) != 1) {
			ssl_errtext(e, sizeof(e));
			snprintf(err, FM_ERRLEN, "cannot load TLS CA %s: %s",
			    o->ca_file ? o->ca_file : o->ca_dir, e);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ssl_errtext(e, sizeof(e));
		snprintf(err, FM_ERRLEN, "cannot load the system CA store: %s",
		    e);
		goto fail;
	}
	if (o->cert_file) {
		const char *key = o->key_file ? o->key_file : o->cert_file;

		if (SSL_CTX_use_certificate_chain_file(ctx,
		    o->cert_file) != 1) {
			ssl_errtext(e, sizeof(e));
			snprintf(err, FM_ERRLEN, "cannot load TLS client "
			    "certificate %s: %s", o->cert_file, e);
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, key,
		    SSL_FILETYPE_PEM) != 1) {
			ssl_errtext(e, sizeof(e));
			snprintf(err, FM_ERRLEN, "cannot load TLS client key "
			    "%s: %s", key, e);
			goto fail;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			ssl_errtext(e, sizeof(e));
			snprintf(err, FM_ERRLEN, "TLS client key %s does not "
			    "match certificate %s", key, o->cert_file);
			goto fail;
		}
	} else if (o->key_file) {
		snprintf(err, FM_ERRLEN, "TLS key_file without cert_file");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* ---- life cycle -------------------------------------------------------- */

static void
receipts_clear(struct stomp *s)
{
	size_t i;

	for (i = 0; i < s->rc_len; i++)
		free(s->rc[(s->rc_head + i) % s->rc_cap].id);
	s->rc_head = s->rc_len = s->rc_new = 0;
	free(s->disc_receipt);
	s->disc_receipt = NULL;
}

static void
sub_free(struct sub *sb)
{
	free(sb->id);
	free(sb->dest);
	free(sb->ack);
	strv_free(sb->hdrs);
}

struct stomp *
stomp_new(const struct stomp_opts *o, char *err)
{
	struct stomp *s;
	bool tls = false;
	size_t i;

	if (o->urls == NULL || o->urls[0] == NULL) {
		snprintf(err, FM_ERRLEN, "no STOMP broker URL");
		return NULL;
	}
	if (has_crlf(o->login) || has_crlf(o->passcode) ||
	    has_crlf(o->vhost)) {
		snprintf(err, FM_ERRLEN, "STOMP login, passcode and host may "
		    "not contain CR or LF");
		return NULL;
	}
	for (i = 0; o->connect_headers && o->connect_headers[i]; i += 2)
		if (o->connect_headers[i + 1] == NULL ||
		    has_crlf(o->connect_headers[i]) ||
		    has_crlf(o->connect_headers[i + 1]) ||
		    strchr(o->connect_headers[i], ':') ||
		    !*o->connect_headers[i]) {
			snprintf(err, FM_ERRLEN, "bad STOMP CONNECT header "
			    "'%s'", o->connect_headers[i]);
			return NULL;
		}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	s->fd = -1;
	for (i = 0; o->urls[i]; i++)
		if (urls_add(s, o->urls[i], err) < 0)
			goto fail;
	if (s->nurls == 0) {
		snprintf(err, FM_ERRLEN, "no STOMP broker URL");
		goto fail;
	}
	for (i = 0; i < s->nurls; i++)
		tls |= s->urls[i].tls;
	if ((o->login && (s->login = strdup(o->login)) == NULL) ||
	    (o->passcode && (s->passcode = strdup(o->passcode)) == NULL) ||
	    (o->vhost && (s->vhost = strdup(o->vhost)) == NULL) ||
	    (o->tls_verify_name &&
	    (s->verify_name = strdup(o->tls_verify_name)) == NULL) ||
	    (s->connect_hdrs = strv_dup(o->connect_headers)) == NULL ||
	    (s->parser = stomp_parser_new(&o->limits)) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		goto fail;
	}
	if (tls && (s->ctx = tls_ctx_new(o, err)) == NULL)
		goto fail;
	if (tls && (pthread_once(&nosig_once, nosig_init) != 0 ||
	    nosig_method == NULL)) {
		snprintf(err, FM_ERRLEN, "TLS setup: cannot make a BIO method");
		goto fail;
	}
	s->lim = o->limits;
	s->cx = o->hb_send_ms;
	s->cy = o->hb_recv_ms;
#define DEF(v, d) ((v) ? (v) : (d))
	s->connect_to = DEF(o->connect_timeout_ms,
	    STOMP_DEFAULT_CONNECT_TIMEOUT);
	s->receipt_to = DEF(o->receipt_timeout_ms,
	    STOMP_DEFAULT_RECEIPT_TIMEOUT);
	s->frame_to = DEF(o->frame_timeout_ms, STOMP_DEFAULT_FRAME_TIMEOUT);
	s->rmin = DEF(o->reconnect_min_ms, STOMP_DEFAULT_RECONNECT_MIN);
	s->rmax = DEF(o->reconnect_max_ms, STOMP_DEFAULT_RECONNECT_MAX);
	s->out_max = DEF(o->out_max, STOMP_DEFAULT_OUT_MAX);
	s->max_inflight = DEF(o->max_inflight, STOMP_DEFAULT_MAX_INFLIGHT);
#undef DEF
	if (s->rmax < s->rmin)
		s->rmax = s->rmin;
	s->cb = o->cb;
	s->arg = o->arg;
	s->rng = (uint32_t)getpid() ^ (uint32_t)stomp_now_ms() ^
	    (uint32_t)(uintptr_t)s;
	if (s->rng == 0)
		s->rng = 0x9e3779b9u;
	return s;
fail:
	stomp_free(s);
	return NULL;
}

/* Drop the connection; no callbacks. */
static void
drop_conn(struct stomp *s)
{
	if (s->ssl) {
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	if (s->ai) {
		freeaddrinfo(s->ai);
		s->ai = s->ai_next = NULL;
	}
	if (s->parser)
		stomp_parser_reset(s->parser);
	s->hb_seen = 0;
	if (s->out.oom || s->out.cap > OUT_KEEP_CAP)
		buf_free(&s->out);
	s->out.len = s->out_off = 0;
	s->hs_want_write = s->rd_want_write = s->wr_want_read = false;
	s->tls_wlen = 0;
	receipts_clear(s);
	s->version[0] = '\0';
	s->hb_tx = s->hb_rx = 0;
	s->partial_since = 0;
	s->read_more = false;
	s->gen++;
	s->st = STOMP_ST_DISCONNECTED;
}

void
stomp_free(struct stomp *s)
{
	size_t i;

	if (s == NULL)
		return;
	drop_conn(s);
	for (i = 0; i < s->nurls; i++)
		url_free(&s->urls[i]);
	free(s->urls);
	for (i = 0; i < s->nsubs; i++)
		sub_free(&s->subs[i]);
	free(s->subs);
	free(s->rc);
	free(s->login);
	free(s->passcode);
	free(s->vhost);
	free(s->verify_name);
	strv_free(s->connect_hdrs);
	if (s->ctx)
		SSL_CTX_free(s->ctx);
	stomp_parser_free(s->parser);
	buf_free(&s->out);
	buf_free(&s->token);
	free(s);
}

static int64_t
backoff(struct stomp *s)
{
	uint64_t d = s->rmin, half;
	unsigned k;

	for (k = 0; k < s->attempt && d < s->rmax; k++)
		d *= 2;
	if (d > s->rmax)
		d = s->rmax;
	if (s->attempt < 64)
		s->attempt++;
	half = d / 2;
	return (int64_t)(half + rnd(s) % (d - half + 1));
}

/*
 * End the connection (reason for on_disconnected) and, unless stopped,
 * schedule the next attempt on the next URL.
 */
static void
close_conn(struct stomp *s, int64_t now, const char *reason)
{
	bool was = s->announced;
	char why[FM_ERRLEN];

	snprintf(why, sizeof(why), "%s", reason);
	drop_conn(s);
	s->announced = false;
	if (s->running) {
		/* a session that lasted resets the backoff */
		if (s->connected_at && now - s->connected_at >=
		    (int64_t)(s->rmax < 30000 ? s->rmax : 30000))
			s->attempt = 0;
		s->reconnect_at = now + backoff(s);
		s->cur = (s->cur + 1) % s->nurls;
		log_debug("stomp: next attempt: %s in %lld ms",
		    s->urls[s->cur].text, (long long)(s->reconnect_at - now));
	} else
		s->reconnect_at = 0;
	s->connected_at = 0;
	if (was && s->cb.on_disconnected)
		s->cb.on_disconnected(s->arg, why);
}

static void fail(struct stomp *, int64_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* A failure: log, on_error(), close, reconnect later. */
static void
fail(struct stomp *s, int64_t now, const char *fmt, ...)
{
	uint64_t gen = s->gen;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	log_warn("stomp: %s", s->err);
	s->stats.failures++;
	if (s->cb.on_error)
		s->cb.on_error(s->arg, s->err);
	if (s->gen == gen && s->st != STOMP_ST_DISCONNECTED)
		close_conn(s, now, s->err);
}

/* ---- output -------------------------------------------------------------- */

/* Make room: drop what was written from the front of the buffer. */
static void
out_compact(struct stomp *s)
{
	if (s->out_off == 0 || s->tls_wlen)
		return;
	if (s->out_off == s->out.len) {
		s->out.len = s->out_off = 0;
	} else if (s->out_off >= 65536 && s->out_off >= s->out.len / 2) {
		memmove(s->out.data, s->out.data + s->out_off,
		    s->out.len - s->out_off);
		s->out.len -= s->out_off;
		s->out_off = 0;
	}
}

/* Queue a control frame (not subject to out_max). */
static int
queue(struct stomp *s, const char *command, const char *const *hdrs,
    unsigned flags)
{
	const char *why = NULL;

	out_compact(s);
	if (stomp_frame_build(&s->out, command, hdrs, NULL, 0, flags,
	    &why) < 0) {
		log_warn("stomp: cannot encode %s: %s", command, why);
		if (s->out.oom) {
			buf_free(&s->out);
			s->out_off = 0;
		}
		errno = EINVAL;
		return -1;
	}
	s->stats.frames_out++;
	return 0;
}

/* Returns >0 written, 0 would block, -1 error (s->ioerr set). */
static ssize_t
io_write(struct stomp *s, const char *p, size_t n)
{
	ssize_t w;

	if (s->ssl == NULL) {
		w = send(s->fd, p, n, MSG_NOSIGNAL);
		if (w >= 0)
			return w;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		snprintf(s->ioerr, sizeof(s->ioerr), "%s", strerror(errno));
		return -1;
	}
	if (s->tls_wlen)
		n = s->tls_wlen;
	else if (n > TLS_WCHUNK)
		n = TLS_WCHUNK;
	ERR_clear_error();
	s->wr_want_read = false;
	w = SSL_write(s->ssl, p, (int)n);
	if (w > 0) {
		s->tls_wlen = 0;
		return w;
	}
	switch (SSL_get_error(s->ssl, (int)w)) {
	case SSL_ERROR_WANT_READ:
		s->wr_want_read = true;
		/* FALLTHROUGH */
	case SSL_ERROR_WANT_WRITE:
		s->tls_wlen = n;
		return 0;
	case SSL_ERROR_SYSCALL:
		snprintf(s->ioerr, sizeof(s->ioerr), "%s",
		    errno ? strerror(errno) : "connection closed");
		ERR_clear_error();
		return -1;
	default:
		ssl_errtext(s->ioerr, sizeof(s->ioerr));
		return -1;
	}
}

static void
do_write(struct stomp *s, int64_t now)
{
	ssize_t w;

	while (out_pending(s) > 0) {
		w = io_write(s, s->out.data + s->out_off, out_pending(s));
		if (w < 0) {
			fail(s, now, "write to %s: %s", s->urls[s->cur].text,
			    s->ioerr);
			return;
		}
		if (w == 0)
			break;
		s->out_off += (size_t)w;
		s->stats.bytes_out += (uint64_t)w;
		s->last_tx = now;
	}
	if (out_pending(s) == 0 && s->tls_wlen == 0) {
		s->out.len = s->out_off = 0;
		if (s->out.cap > OUT_KEEP_CAP)
			buf_free(&s->out);
	}
}

/* ---- connecting ---------------------------------------------------------- */

static void send_connect(struct stomp *, int64_t);
static void tls_handshake(struct stomp *, int64_t);
static void start_attempt(struct stomp *, int64_t);

static bool
is_ip_literal(const char *h)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1;
}

/* TCP is up: TLS or straight to CONNECT. */
static void
tcp_connected(struct stomp *s, int64_t now)
{
	const struct url *u = &s->urls[s->cur];
	const char *name = s->verify_name ? s->verify_name : u->host;
	X509_VERIFY_PARAM *vp;
	BIO *bio;
	char e[160];

	freeaddrinfo(s->ai);
	s->ai = s->ai_next = NULL;
	if (!u->tls) {
		send_connect(s, now);
		return;
	}
	ERR_clear_error();
	if ((s->ssl = SSL_new(s->ctx)) == NULL ||
	    (bio = BIO_new(nosig_method)) == NULL) {
		ssl_errtext(e, sizeof(e));
		fail(s, now, "TLS setup for %s: %s", u->text, e);
		return;
	}
	BIO_set_data(bio, (void *)(intptr_t)s->fd);
	SSL_set_bio(s->ssl, bio, bio);
	vp = SSL_get0_param(s->ssl);
	X509_VERIFY_PARAM_set_hostflags(vp,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (is_ip_literal(name)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1) {
			fail(s, now, "TLS: cannot verify against '%s'", name);
			return;
		}
	} else if (X509_VERIFY_PARAM_set1_host(vp, name, 0) != 1 ||
	    SSL_set_tlsext_host_name(s->ssl, name) != 1) {
		fail(s, now, "TLS: cannot verify against '%s'", name);
		return;
	}
	s->st = STOMP_ST_TLS_HANDSHAKE;
	tls_handshake(s, now);
}

static void
tls_handshake(struct stomp *s, int64_t now)
{
	const struct url *u = &s->urls[s->cur];
	const char *name = s->verify_name ? s->verify_name : u->host;
	long vr;
	int r, e;
	char t[160];

	ERR_clear_error();
	errno = 0;
	if ((r = SSL_connect(s->ssl)) == 1) {
		log_debug("stomp: %s: %s, %s", u->text, SSL_get_version(s->ssl),
		    SSL_get_cipher_name(s->ssl));
		s->hs_want_write = false;
		send_connect(s, now);
		return;
	}
	switch ((e = SSL_get_error(s->ssl, r))) {
	case SSL_ERROR_WANT_READ:
		s->hs_want_write = false;
		return;
	case SSL_ERROR_WANT_WRITE:
		s->hs_want_write = true;
		return;
	}
	if ((vr = SSL_get_verify_result(s->ssl)) != X509_V_OK) {
		ERR_clear_error();
		fail(s, now, "TLS certificate verification failed for %s: "
		    "%s%s%s%s", u->text, X509_verify_cert_error_string(vr),
		    vr == X509_V_ERR_HOSTNAME_MISMATCH ||
		    vr == X509_V_ERR_IP_ADDRESS_MISMATCH ?
		    " (expected '" : "",
		    vr == X509_V_ERR_HOSTNAME_MISMATCH ||
		    vr == X509_V_ERR_IP_ADDRESS_MISMATCH ? name : "",
		    vr == X509_V_ERR_HOSTNAME_MISMATCH ||
		    vr == X509_V_ERR_IP_ADDRESS_MISMATCH ? "')" : "");
		return;
	}
	if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0) {
		fail(s, now, "TLS handshake with %s failed: %s", u->text,
		    errno ? strerror(errno) : "connection closed by the peer "
		    "(not a TLS port?)");
		return;
	}
	ssl_errtext(t, sizeof(t));
	fail(s, now, "TLS handshake with %s failed: %s", u->text, t);
}

/* Try the next resolved address; fail the attempt when none is left. */
static void
try_addresses(struct stomp *s, int64_t now)
{
	const struct url *u = &s->urls[s->cur];
	struct addrinfo *a;
	int one = 1;

	while ((a = s->ai_next) != NULL) {
		s->ai_next = a->ai_next;
		s->fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, a->ai_protocol);
		if (s->fd < 0) {
			snprintf(s->conn_err, sizeof(s->conn_err), "socket: %s",
			    strerror(errno));
			continue;
		}
		setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(s->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		if (connect(s->fd, a->ai_addr, a->ai_addrlen) == 0) {
			tcp_connected(s, now);
			return;
		}
		if (errno == EINPROGRESS) {
			s->st = STOMP_ST_CONNECTING;
			return;
		}
		snprintf(s->conn_err, sizeof(s->conn_err), "%s",
		    strerror(errno));
		close(s->fd);
		s->fd = -1;
	}
	s->st = STOMP_ST_CONNECTING;	/* so that fail() closes */
	fail(s, now, "cannot connect to %s: %s", u->text, s->conn_err);
}

static void
start_attempt(struct stomp *s, int64_t now)
{
	const struct url *u = &s->urls[s->cur];
	struct addrinfo hints;
	int r;

	s->reconnect_at = 0;
	s->deadline = now + s->connect_to;
	s->conn_err[0] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	log_debug("stomp: connecting to %s", u->text);
	if ((r = getaddrinfo(u->host, u->port, &hints, &s->ai)) != 0) {
		s->ai = NULL;
		s->st = STOMP_ST_CONNECTING;
		fail(s, now, "cannot resolve %s: %s", u->host,
		    r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return;
	}
	s->ai_next = s->ai;
	snprintf(s->conn_err, sizeof(s->conn_err), "no address");
	try_addresses(s, now);
}

static void
connect_done(struct stomp *s, int64_t now)
{
	int e = 0;
	socklen_t l = sizeof(e);

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
		e = errno;
	if (e == EINPROGRESS || e == EALREADY)
		return;
	if (e == 0) {
		tcp_connected(s, now);
		return;
	}
	snprintf(s->conn_err, sizeof(s->conn_err), "%s", strerror(e));
	close(s->fd);
	s->fd = -1;
	try_addresses(s, now);
}

static void
send_connect(struct stomp *s, int64_t now)
{
	const struct url *u = &s->urls[s->cur];
	const char *hdrs[16 + 1];
	char hb[32];
	size_t i, n = 0, extra = strv_len(s->connect_hdrs);
	const char **h = hdrs;
	int r;

	if (extra + 12 + 1 > sizeof(hdrs) / sizeof(hdrs[0]) &&
	    (h = calloc(extra + 13, sizeof(*h))) == NULL) {
		fail(s, now, "out of memory");
		return;
	}
	snprintf(hb, sizeof(hb), "%u,%u", s->cx, s->cy);
	h[n++] = "accept-version";
	h[n++] = "1.1,1.2";
	h[n++] = "host";
	h[n++] = s->vhost ? s->vhost : u->host;
	h[n++] = "login";
	h[n++] = s->login;
	h[n++] = "passcode";
	h[n++] = s->passcode;
	h[n++] = "heart-beat";
	h[n++] = hb;
	for (i = 0; i < extra; i++)
		h[n++] = s->connect_hdrs[i];
	h[n] = NULL;
	s->st = STOMP_ST_STOMP_CONNECTING;
	s->last_rx = s->last_tx = now;
	r = queue(s, "CONNECT", h, 0);
	if (h != hdrs)
		free(h);
	if (r != 0) {
		fail(s, now, "cannot encode CONNECT");
		return;
	}
	do_write(s, now);
}

/* ---- received frames ----------------------------------------------------- */

static struct sub *
find_sub(struct stomp *s, const char *id)
{
	size_t i;

	for (i = 0; id && i < s->nsubs; i++)
		if (strcmp(s->subs[i].id, id) == 0)
			return &s->subs[i];
	return NULL;
}

static int
send_subscribe(struct stomp *s, const struct sub *sb)
{
	size_t i, n = 0, extra = strv_len(sb->hdrs);
	const char **h = calloc(extra + 7, sizeof(*h));
	int r;

	if (h == NULL)
		return -1;
	h[n++] = "destination";
	h[n++] = sb->dest;
	h[n++] = "id";
	h[n++] = sb->id;
	h[n++] = "ack";
	h[n++] = sb->ack;
	for (i = 0; i < extra; i++)
		h[n++] = sb->hdrs[i];
	r = queue(s, "SUBSCRIBE", h, 0);
	free(h);
	return r;
}

/* "sx,sy" */
static void
parse_heartbeat(const char *v, unsigned long *sx, unsigned long *sy)
{
	char *e;

	*sx = *sy = 0;
	if (v == NULL)
		return;
	*sx = strtoul(v, &e, 10);
	if (*e != ',') {
		*sx = 0;
		return;
	}
	*sy = strtoul(e + 1, &e, 10);
	if (*e) {
		*sx = *sy = 0;
		return;
	}
	if (*sx > UINT_MAX / 4)
		*sx = UINT_MAX / 4;
	if (*sy > UINT_MAX / 4)
		*sy = UINT_MAX / 4;
}

static void
on_connected_frame(struct stomp *s, const struct stomp_frame *f, int64_t now)
{
	const char *v = stomp_frame_value(f, "version");
	const char *srv = stomp_frame_value(f, "server");
	unsigned long sx, sy;
	uint64_t gen = s->gen;
	size_t i;

	if (v == NULL || strcmp(v, "1.0") == 0) {
		fail(s, now, "%s speaks only STOMP 1.0; 1.1 or 1.2 needed",
		    s->urls[s->cur].text);
		return;
	}
	if (strcmp(v, "1.2") != 0 && strcmp(v, "1.1") != 0) {
		fail(s, now, "%s answered with STOMP version '%s'; 1.1 or 1.2 "
		    "needed", s->urls[s->cur].text, v);
		return;
	}
	snprintf(s->version, sizeof(s->version), "%s", v);
	parse_heartbeat(stomp_frame_value(f, "heart-beat"), &sx, &sy);
	s->hb_tx = s->cx && sy ? (unsigned)(s->cx > sy ? s->cx : sy) : 0;
	s->hb_rx = s->cy && sx ? (unsigned)(s->cy > sx ? s->cy : sx) : 0;
	s->st = STOMP_ST_CONNECTED;
	s->connected_at = now;
	s->last_rx = now;
	s->stats.connects++;
	log_info("stomp: connected to %s (STOMP %s%s%s, heart-beats "
	    "send %u ms, receive %u ms)", s->urls[s->cur].text, s->version,
	    srv ? ", " : "", srv ? srv : "", s->hb_tx, s->hb_rx);
	for (i = 0; i < s->nsubs; i++)
		if (send_subscribe(s, &s->subs[i]) < 0) {
			fail(s, now, "cannot encode SUBSCRIBE %s",
			    s->subs[i].id);
			return;
		}
	s->announced = true;
	if (s->cb.on_connected)
		s->cb.on_connected(s->arg, f);
	if (s->gen == gen)
		do_write(s, now);
}

/* ERROR frame text: "message: first line of the body". */
static void
error_text(const struct stomp_frame *f, char *buf, size_t len)
{
	const struct stomp_header *m = stomp_frame_header(f, "message");
	size_t bl = f->body_len, ml = 0;
	const char *nl;

	if ((nl = memchr(f->body, '\n', bl)) != NULL)
		bl = (size_t)(nl - f->body);
	if ((nl = memchr(f->body, '\0', bl)) != NULL)
		bl = (size_t)(nl - f->body);
	if (m) {
		ml = m->value_len;
		if ((nl = memchr(m->value, '\0', ml)) != NULL)
			ml = (size_t)(nl - m->value);
	}
	if (m && bl && (ml != bl || memcmp(m->value, f->body, bl) != 0))
		snprintf(buf, len, "%.*s: %.*s", (int)ml, m->value, (int)bl,
		    f->body);
	else if (m)
		snprintf(buf, len, "%.*s", (int)ml, m->value);
	else if (bl)
		snprintf(buf, len, "%.*s", (int)bl, f->body);
	else
		snprintf(buf, len, "(no message)");
}

/*
 * The token: "<gen>|2|<ack>" (STOMP 1.2 id) or
 * "<gen>|1|<len>|<message-id><subscription>" (1.1).
 */
static const char *
make_token(struct stomp *s, const struct stomp_frame *f)
{
	const char *sid = stomp_frame_value(f, "subscription");
	const char *ack = stomp_frame_value(f, "ack");
	const char *mid = stomp_frame_value(f, "message-id");
	struct sub *sb = find_sub(s, sid);

	if (sb && strcmp(sb->ack, "auto") == 0)
		return NULL;
	s->token.len = 0;
	if (strcmp(s->version, "1.2") == 0 && ack)
		buf_printf(&s->token, "%llu|2|%s", (unsigned long long)s->gen,
		    ack);
	else if (mid && sid)
		buf_printf(&s->token, "%llu|1|%zu|%s%s",
		    (unsigned long long)s->gen, strlen(mid), mid, sid);
	else {
		log_warn("stomp: MESSAGE without %s; cannot be acknowledged",
		    strcmp(s->version, "1.2") == 0 ? "ack header" :
		    "message-id/subscription");
		return NULL;
	}
	return s->token.oom ? NULL : s->token.data;
}

static void
on_receipt_frame(struct stomp *s, const struct stomp_frame *f, int64_t now)
{
	const char *id = stomp_frame_value(f, "receipt-id");
	size_t i, k;

	if (id == NULL) {
		log_warn("stomp: RECEIPT without receipt-id");
		return;
	}
	if (s->disc_receipt && strcmp(id, s->disc_receipt) == 0) {
		log_info("stomp: disconnected from %s", s->urls[s->cur].text);
		close_conn(s, now, "disconnected");
		return;
	}
	for (i = 0; i < s->rc_len; i++) {
		k = (s->rc_head + i) % s->rc_cap;
		if (s->rc[k].id && strcmp(s->rc[k].id, id) == 0)
			break;
	}
	if (i == s->rc_len) {
		log_debug("stomp: RECEIPT for unknown id '%s'", id);
		return;
	}
	free(s->rc[k].id);
	s->rc[k].id = NULL;
	while (s->rc_len && s->rc[s->rc_head].id == NULL) {
		s->rc_head = (s->rc_head + 1) % s->rc_cap;
		s->rc_len--;
	}
	s->stats.receipts++;
	if (s->cb.on_receipt)
		s->cb.on_receipt(s->arg, id);
}

static void
dispatch(struct stomp *s, const struct stomp_frame *f, int64_t now)
{
	char text[FM_ERRLEN - 64];

	s->stats.frames_in++;
	if (strcmp(f->command, "ERROR") == 0) {
		const char *rid = stomp_frame_value(f, "receipt-id");

		error_text(f, text, sizeof(text));
		if (s->st == STOMP_ST_STOMP_CONNECTING)
			fail(s, now, "%s refused the connection: %s",
			    s->urls[s->cur].text, text);
		else if (rid)
			fail(s, now, "ERROR from %s (answering receipt "
			    "'%.40s'): %s", s->urls[s->cur].text, rid, text);
		else
			fail(s, now, "ERROR from %s: %s",
			    s->urls[s->cur].text, text);
		return;
	}
	if (s->st == STOMP_ST_STOMP_CONNECTING) {
		if (strcmp(f->command, "CONNECTED") == 0)
			on_connected_frame(s, f, now);
		else
			fail(s, now, "%s sent %s before CONNECTED",
			    s->urls[s->cur].text, f->command);
		return;
	}
	if (strcmp(f->command, "MESSAGE") == 0) {
		const char *tok;

		if (s->st != STOMP_ST_CONNECTED) {
			log_debug("stomp: MESSAGE while disconnecting dropped");
			return;
		}
		s->stats.messages++;
		tok = make_token(s, f);
		if (s->cb.on_message)
			s->cb.on_message(s->arg, f, tok);
	} else if (strcmp(f->command, "RECEIPT") == 0)
		on_receipt_frame(s, f, now);
	else
		log_warn("stomp: unexpected %s frame from %s ignored",
		    f->command, s->urls[s->cur].text);
}

/* ---- input --------------------------------------------------------------- */

/* Returns >0 read, 0 would block, -1 EOF, -2 error (s->ioerr set). */
static ssize_t
io_read(struct stomp *s, char *p, size_t n)
{
	ssize_t r;

	if (s->ssl == NULL) {
		r = recv(s->fd, p, n, 0);
		if (r > 0)
			return r;
		if (r == 0)
			return -1;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		snprintf(s->ioerr, sizeof(s->ioerr), "%s", strerror(errno));
		return -2;
	}
	ERR_clear_error();
	errno = 0;
	s->rd_want_write = false;
	r = SSL_read(s->ssl, p, (int)n);
	if (r > 0)
		return r;
	switch (SSL_get_error(s->ssl, (int)r)) {
	case SSL_ERROR_WANT_WRITE:
		s->rd_want_write = true;
		/* FALLTHROUGH */
	case SSL_ERROR_WANT_READ:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return -1;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_last_error() == 0) {
			if (errno == 0)
				return -1;	/* EOF without close_notify */
			snprintf(s->ioerr, sizeof(s->ioerr), "%s",
			    strerror(errno));
			return -2;
		}
		/* FALLTHROUGH */
	default:
		ssl_errtext(s->ioerr, sizeof(s->ioerr));
		return -2;
	}
}

static void
do_read(struct stomp *s, int64_t now)
{
	const struct url *u = &s->urls[s->cur];
	uint64_t gen = s->gen, hb;
	size_t budget = READ_BUDGET;
	struct stomp_frame f;
	enum stomp_result r;
	ssize_t n;

	s->read_more = false;
	for (;;) {
		n = io_read(s, s->rbuf, sizeof(s->rbuf));
		if (n == 0)
			break;
		if (n == -1) {
			if (s->st == STOMP_ST_DISCONNECTING) {
				close_conn(s, now, "disconnected");
				return;
			}
			if (s->st == STOMP_ST_STOMP_CONNECTING)
				fail(s, now, "%s closed the connection before "
				    "CONNECTED (%s?)", u->text, u->tls ?
				    "not a STOMP port" :
				    "TLS-only port or not a STOMP port");
			else
				fail(s, now, "%s closed the connection",
				    u->text);
			return;
		}
		if (n < 0) {
			if (s->st == STOMP_ST_STOMP_CONNECTING)
				fail(s, now, "read from %s before CONNECTED: "
				    "%s (%s?)", u->text, s->ioerr, u->tls ?
				    "not a STOMP port" :
				    "TLS-only port or not a STOMP port");
			else
				fail(s, now, "read from %s: %s", u->text,
				    s->ioerr);
			return;
		}
		s->stats.bytes_in += (uint64_t)n;
		s->last_rx = now;
		if (stomp_parser_feed(s->parser, s->rbuf, (size_t)n) < 0) {
			fail(s, now, "from %s: %s", u->text,
			    stomp_parser_error(s->parser));
			return;
		}
		while ((r = stomp_parser_next(s->parser, &f)) == STOMP_FRAME) {
			dispatch(s, &f, now);
			if (s->gen != gen)
				return;
		}
		hb = stomp_parser_heartbeats(s->parser);
		s->stats.heartbeats_in += hb - s->hb_seen;
		s->hb_seen = hb;
		if (r == STOMP_ERROR) {
			fail(s, now, "protocol error from %s: %s", u->text,
			    stomp_parser_error(s->parser));
			return;
		}
		if ((size_t)n >= budget) {
			s->read_more = true;
			break;
		}
		budget -= (size_t)n;
	}
	if (s->ssl && SSL_pending(s->ssl) > 0)
		s->read_more = true;
	if (stomp_parser_partial(s->parser) == 0)
		s->partial_since = 0;
	else if (s->partial_since == 0 ||
	    s->partial_frames != stomp_parser_frames(s->parser)) {
		s->partial_since = now;
		s->partial_frames = stomp_parser_frames(s->parser);
	}
}

/* ---- the loop interface -------------------------------------------------- */

void
stomp_start(struct stomp *s, int64_t now_ms)
{
	if (s->st != STOMP_ST_DISCONNECTED) {
		s->running = true;
		return;
	}
	s->running = true;
	s->attempt = 0;
	start_attempt(s, now_ms);
}

int
stomp_fd(const struct stomp *s)
{
	return s->fd;
}

short
stomp_events(const struct stomp *s)
{
	short ev = 0;

	switch (s->st) {
	case STOMP_ST_DISCONNECTED:
		return 0;
	case STOMP_ST_CONNECTING:
		return POLLOUT;
	case STOMP_ST_TLS_HANDSHAKE:
		return s->hs_want_write ? POLLOUT : POLLIN;
	default:
		ev = POLLIN;
		if (out_pending(s) > 0 || s->rd_want_write)
			ev |= POLLOUT;
		return ev;
	}
}

static void
min_at(int64_t *best, int64_t t)
{
	if (*best < 0 || t < *best)
		*best = t;
}

int
stomp_timeout_ms(const struct stomp *s, int64_t now_ms)
{
	int64_t at = -1;

	if (s->read_more)
		return 0;
	switch (s->st) {
	case STOMP_ST_DISCONNECTED:
		if (s->running && s->reconnect_at)
			min_at(&at, s->reconnect_at);
		break;
	case STOMP_ST_CONNECTING:
	case STOMP_ST_TLS_HANDSHAKE:
	case STOMP_ST_STOMP_CONNECTING:
	case STOMP_ST_DISCONNECTING:
		min_at(&at, s->deadline);
		break;
	case STOMP_ST_CONNECTED:
		break;
	}
	if (s->st == STOMP_ST_CONNECTED || s->st == STOMP_ST_DISCONNECTING) {
		if (s->hb_rx)
			min_at(&at, s->last_rx + 2 * (int64_t)s->hb_rx);
		/* a beat is only due on an idle output */
		if (s->hb_tx && out_pending(s) == 0)
			min_at(&at, s->last_tx + s->hb_tx / 2);
		if (s->rc_len)
			min_at(&at, s->rc[s->rc_head].deadline ?
			    s->rc[s->rc_head].deadline : now_ms);
	}
	if (in_session(s) && s->partial_since)
		min_at(&at, s->partial_since + s->frame_to);
	if (at < 0)
		return -1;
	if (at <= now_ms)
		return 0;
	return at - now_ms > INT_MAX ? INT_MAX : (int)(at - now_ms);
}

static void
timers(struct stomp *s, int64_t now)
{
	const struct url *u = &s->urls[s->cur];
	size_t i;

	switch (s->st) {
	case STOMP_ST_DISCONNECTED:
		if (s->running && s->reconnect_at && now >= s->reconnect_at)
			start_attempt(s, now);
		return;
	case STOMP_ST_CONNECTING:
	case STOMP_ST_TLS_HANDSHAKE:
	case STOMP_ST_STOMP_CONNECTING:
		if (now >= s->deadline)
			fail(s, now, "timed out after %u ms connecting to %s "
			    "(%s)", s->connect_to, u->text,
			    stomp_state_name(s->st));
		else if (s->st == STOMP_ST_STOMP_CONNECTING &&
		    s->partial_since &&
		    now - s->partial_since >= s->frame_to)
			fail(s, now, "%s sent an incomplete frame and nothing "
			    "more for %u ms", u->text, s->frame_to);
		return;
	case STOMP_ST_DISCONNECTING:
		if (now >= s->deadline) {
			log_warn("stomp: no RECEIPT for DISCONNECT from %s "
			    "within %u ms; closing", u->text, s->receipt_to);
			close_conn(s, now, "disconnected (no RECEIPT)");
			return;
		}
		break;
	case STOMP_ST_CONNECTED:
		break;
	}
	if (s->hb_rx && now - s->last_rx >= 2 * (int64_t)s->hb_rx) {
		fail(s, now, "no data from %s for %lld ms (heart-beat every "
		    "%u ms): connection dead", u->text,
		    (long long)(now - s->last_rx), s->hb_rx);
		return;
	}
	if (s->partial_since && now - s->partial_since >= s->frame_to) {
		fail(s, now, "%s sent an incomplete frame (%zu octets) and "
		    "nothing to complete it for %u ms", u->text,
		    stomp_parser_partial(s->parser), s->frame_to);
		return;
	}
	/* receipt timers start here, on the caller's clock */
	for (i = s->rc_len - (s->rc_new < s->rc_len ? s->rc_new : s->rc_len);
	    i < s->rc_len; i++)
		s->rc[(s->rc_head + i) % s->rc_cap].deadline = now +
		    s->receipt_to;
	s->rc_new = 0;
	if (s->rc_len && now >= s->rc[s->rc_head].deadline) {
		fail(s, now, "no RECEIPT for '%s' from %s within %u ms",
		    s->rc[s->rc_head].id, u->text, s->receipt_to);
		return;
	}
	if (s->hb_tx && out_pending(s) == 0 &&
	    now - s->last_tx >= s->hb_tx / 2) {
		out_compact(s);
		if (buf_addc(&s->out, '\n') == 0)
			s->stats.heartbeats_out++;
	}
}

void
stomp_handle(struct stomp *s, short revents, int64_t now_ms)
{
	uint64_t gen = s->gen;

	switch (s->st) {
	case STOMP_ST_DISCONNECTED:
		break;
	case STOMP_ST_CONNECTING:
		if (revents & (POLLOUT | POLLERR | POLLHUP))
			connect_done(s, now_ms);
		break;
	case STOMP_ST_TLS_HANDSHAKE:
		if (revents & (POLLIN | POLLOUT | POLLERR | POLLHUP))
			tls_handshake(s, now_ms);
		break;
	default:
		if ((revents & (POLLIN | POLLERR | POLLHUP)) || s->read_more ||
		    (s->rd_want_write && (revents & POLLOUT)))
			do_read(s, now_ms);
		if (s->gen == gen && in_session(s) && out_pending(s) &&
		    (revents & POLLOUT || (s->wr_want_read &&
		    (revents & POLLIN))))
			do_write(s, now_ms);
		break;
	}
	if (s->gen != gen && s->st != STOMP_ST_DISCONNECTED)
		return;		/* a callback started a new connection */
	gen = s->gen;
	timers(s, now_ms);
	if (s->gen == gen && s->out.oom) {
		fail(s, now_ms, "out of memory");
		return;
	}
	/* write what the callbacks and timers queued, without a poll round */
	if (s->gen == gen && in_session(s) && out_pending(s) &&
	    !s->wr_want_read)
		do_write(s, now_ms);
}

/* ---- the caller's requests ----------------------------------------------- */

int
stomp_subscribe(struct stomp *s, const char *destination, const char *id,
    const char *ack, const char *const *headers)
{
	struct sub sb, *ns;
	size_t i;

	if (ack == NULL)
		ack = "client-individual";
	if (destination == NULL || !*destination || id == NULL || !*id ||
	    (strcmp(ack, "auto") != 0 && strcmp(ack, "client") != 0 &&
	    strcmp(ack, "client-individual") != 0)) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; headers && headers[i]; i += 2)
		if (headers[i + 1] == NULL) {
			errno = EINVAL;
			return -1;
		}
	if (find_sub(s, id)) {
		errno = EEXIST;
		return -1;
	}
	memset(&sb, 0, sizeof(sb));
	if ((sb.id = strdup(id)) == NULL ||
	    (sb.dest = strdup(destination)) == NULL ||
	    (sb.ack = strdup(ack)) == NULL ||
	    (sb.hdrs = strv_dup(headers)) == NULL ||
	    (ns = realloc(s->subs, (s->nsubs + 1) * sizeof(*ns))) == NULL) {
		sub_free(&sb);
		errno = ENOMEM;
		return -1;
	}
	s->subs = ns;
	if (s->st == STOMP_ST_CONNECTED && send_subscribe(s, &sb) < 0) {
		sub_free(&sb);
		errno = EINVAL;
		return -1;
	}
	s->subs[s->nsubs++] = sb;
	return 0;
}

int
stomp_unsubscribe(struct stomp *s, const char *id)
{
	struct sub *sb = find_sub(s, id);
	const char *h[] = { "id", id, NULL };

	if (sb == NULL) {
		errno = ENOENT;
		return -1;
	}
	if (s->st == STOMP_ST_CONNECTED)
		queue(s, "UNSUBSCRIBE", h, 0);
	sub_free(sb);
	*sb = s->subs[--s->nsubs];
	return 0;
}

static int
receipt_push(struct stomp *s, const char *id)
{
	struct receipt *n;
	size_t i;
	char *d;

	if ((d = strdup(id)) == NULL)
		return -1;
	if (s->rc_len == s->rc_cap) {
		size_t cap = s->rc_cap ? s->rc_cap * 2 : 16;

		if ((n = calloc(cap, sizeof(*n))) == NULL) {
			free(d);
			return -1;
		}
		for (i = 0; i < s->rc_len; i++)
			n[i] = s->rc[(s->rc_head + i) % s->rc_cap];
		free(s->rc);
		s->rc = n;
		s->rc_cap = cap;
		s->rc_head = 0;
	}
	s->rc[(s->rc_head + s->rc_len) % s->rc_cap].id = d;
	s->rc[(s->rc_head + s->rc_len) % s->rc_cap].deadline = 0;
	s->rc_len++;
	s->rc_new++;
	return 0;
}

int
stomp_send(struct stomp *s, const char *destination,
    const char *const *headers, const void *body, size_t len,
    const char *receipt_id)
{
	size_t i, n = 0, extra = 0, mark, flen;
	const char **h, *why = NULL;
	int r;

	if (s->st != STOMP_ST_CONNECTED) {
		errno = ENOTCONN;
		return -1;
	}
	if (destination == NULL || !*destination ||
	    (receipt_id && (!*receipt_id || has_crlf(receipt_id)))) {
		errno = EINVAL;
		return -1;
	}
	if (receipt_id && s->rc_len >= s->max_inflight) {
		errno = ENOBUFS;
		return -1;
	}
	while (headers && headers[extra]) {
		/* STOMP 1.1 has no escape for CR */
		if (strcmp(s->version, "1.1") == 0 &&
		    (strchr(headers[extra], '\r') ||
		    (headers[extra + 1] && strchr(headers[extra + 1], '\r')))) {
			errno = EINVAL;
			return -1;
		}
		extra += 2;
	}
	if ((h = calloc(extra + 5, sizeof(*h))) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	h[n++] = "destination";
	h[n++] = destination;
	if (receipt_id) {
		h[n++] = "receipt";
		h[n++] = receipt_id;
	}
	for (i = 0; i < extra; i++)
		h[n++] = headers[i];
	h[n] = NULL;
	out_compact(s);
	mark = s->out.len;
	r = stomp_frame_build(&s->out, "SEND", h, body ? body : "",
	    body ? len : 0, STOMP_W_CONTENT_LENGTH, &why);
	free(h);
	if (r < 0) {
		if (s->out.oom) {
			/* the queue is lost: start over */
			fail(s, stomp_now_ms(), "out of memory queueing SEND");
			errno = ENOMEM;
			return -1;
		}
		log_warn("stomp: cannot encode SEND to %s: %s", destination,
		    why);
		errno = EINVAL;
		return -1;
	}
	flen = s->out.len - mark;
	if (flen > s->out_max || out_pending(s) > s->out_max) {
		s->out.len = mark;
		s->out.data[mark] = '\0';
		errno = flen > s->out_max ? EMSGSIZE : ENOBUFS;
		return -1;
	}
	if (receipt_id && receipt_push(s, receipt_id) < 0) {
		s->out.len = mark;
		s->out.data[mark] = '\0';
		errno = ENOMEM;
		return -1;
	}
	s->stats.frames_out++;
	return 0;
}

static int
ack_frame(struct stomp *s, const char *command, const char *token,
    bool requeue)
{
	unsigned long long gen;
	char *e, *mid = NULL;
	const char *p;
	size_t ml;
	int r;

	if (token == NULL) {
		errno = EINVAL;
		return -1;
	}
	gen = strtoull(token, &e, 10);
	if (e == token || e[0] != '|' || (e[1] != '1' && e[1] != '2') ||
	    e[2] != '|') {
		errno = EINVAL;
		return -1;
	}
	if (gen != s->gen) {
		errno = ESTALE;
		return -1;
	}
	if (s->st != STOMP_ST_CONNECTED) {
		errno = ENOTCONN;
		return -1;
	}
	p = e + 3;
	if (e[1] == '2') {
		/* RabbitMQ reads requeue:false; ActiveMQ its redelivery policy */
		const char *h[] = { "id", p, requeue ? NULL : "requeue", "false",
		    NULL };

		return queue(s, command, h, 0);
	}
	ml = strtoul(p, &e, 10);
	if (e == p || *e != '|' || strlen(e + 1) < ml ||
	    (mid = strndup(e + 1, ml)) == NULL) {
		errno = EINVAL;
		return -1;
	}
	{
		const char *h[] = {
			"message-id", mid, "subscription", e + 1 + ml,
			requeue ? NULL : "requeue", "false", NULL,
		};

		r = queue(s, command, h, 0);
	}
	free(mid);
	return r;
}

int
stomp_ack(struct stomp *s, const char *ack_token)
{
	return ack_frame(s, "ACK", ack_token, true);
}

int
stomp_nack(struct stomp *s, const char *ack_token)
{
	return ack_frame(s, "NACK", ack_token, true);
}

int
stomp_reject(struct stomp *s, const char *ack_token)
{
	return ack_frame(s, "NACK", ack_token, false);
}

void
stomp_disconnect(struct stomp *s, int64_t now_ms)
{
	char id[48];

	s->running = false;
	s->reconnect_at = 0;
	switch (s->st) {
	case STOMP_ST_DISCONNECTED:
	case STOMP_ST_DISCONNECTING:
		return;
	case STOMP_ST_CONNECTED:
		snprintf(id, sizeof(id), "disconnect-%llu",
		    (unsigned long long)s->gen);
		{
			const char *h[] = { "receipt", id, NULL };

			if (queue(s, "DISCONNECT", h, 0) == 0 &&
			    (s->disc_receipt = strdup(id)) != NULL) {
				s->st = STOMP_ST_DISCONNECTING;
				s->deadline = now_ms + s->receipt_to;
				return;
			}
		}
		/* FALLTHROUGH */
	default:
		close_conn(s, now_ms, "disconnected");
	}
}

/* ---- queries ------------------------------------------------------------ */

enum stomp_state
stomp_state(const struct stomp *s)
{
	return s->st;
}

const char *
stomp_version(const struct stomp *s)
{
	return s->version[0] ? s->version : NULL;
}

const char *
stomp_url(const struct stomp *s)
{
	return s->urls[s->cur].text;
}

const char *
stomp_last_error(const struct stomp *s)
{
	return s->err;
}

void
stomp_heartbeats(const struct stomp *s, unsigned *send_ms, unsigned *recv_ms)
{
	if (send_ms)
		*send_ms = s->hb_tx;
	if (recv_ms)
		*recv_ms = s->hb_rx;
}

void
stomp_stats(const struct stomp *s, struct stomp_stats *st)
{
	*st = s->stats;
}
