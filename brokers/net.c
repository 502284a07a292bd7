/*
 * Broker URLs, non-blocking connect, backoff, TLS (see net.h).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <fedmsg/message.h>

#include "log.h"
#include "net.h"

/* ---- URLs ---------------------------------------------------------------- */

void
net_url_free(struct net_url *u)
{
	free(u->text);
	free(u->user);
	free(u->host);
	free(u->port);
	free(u->path);
	memset(u, 0, sizeof(*u));
}

void
net_urls_free(struct net_url *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		net_url_free(&v[i]);
	free(v);
}

/* Characters a host name may hold (IDNs arrive as punycode). */
static bool
host_ok(const char *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' &&
		    h[i] <= 'Z') || (h[i] >= '0' && h[i] <= '9') ||
		    h[i] == '.' || h[i] == '-' || h[i] == '_'))
			return false;
	return true;
}

/* "[...]" content: an IPv6 address, optionally with a %zone. */
static bool
v6_ok(const char *h, size_t n)
{
	unsigned char a[sizeof(struct in6_addr)];
	char t[INET6_ADDRSTRLEN + 1];
	const char *pct = memchr(h, '%', n);
	size_t al = pct ? (size_t)(pct - h) : n;

	if (al == 0 || al >= sizeof(t) || (pct && pct + 1 == h + n))
		return false;
	memcpy(t, h, al);
	t[al] = '\0';
	return inet_pton(AF_INET6, t, a) == 1;
}

const char *
net_url_shown(const char *s, size_t n, char *out, size_t cap)
{
	const char *end = s + n;
	size_t o = 0;

	if (cap == 0)
		return out;
	while (s < end && o + 1 < cap) {
		const char *auth, *stop, *at, *colon;

		if (end - s < 3 || memcmp(s, "://", 3) != 0) {
			out[o++] = *s++;
			continue;
		}
		/* up to the next URL of a list: a '/' in a password must not
		 * end the search for its '@' (hiding too much is harmless) */
		auth = s + 3;
		stop = auth + strcspn(auth, ",)( \t");
		if (stop > end)
			stop = end;
		for (at = stop; at > auth && at[-1] != '@'; at--)
			;
		colon = at > auth ? memchr(auth, ':', (size_t)(at - auth)) :
		    NULL;
		if (colon == NULL) {
			out[o++] = *s++;
			continue;
		}
		/* "://user" as written, then ":***@" for the password */
		while (s < colon && o + 1 < cap)
			out[o++] = *s++;
		for (const char *m = ":***@"; *m && o + 1 < cap; m++)
			out[o++] = *m;
		s = at;
	}
	out[o] = '\0';
	return out;
}

int
net_url_parse(const struct net_proto *p, const char *s, size_t n,
    struct net_url *u, char *err)
{
	const char *orig = s, *end = s + n, *at, *h, *he, *pp = NULL;
	const struct net_scheme *sc;
	char num[8], *ep;
	long port;
	bool v6 = false;
	const char *why = NULL;
	char shown[512];

	memset(u, 0, sizeof(*u));
	for (sc = p->schemes; sc->name; sc++) {
		size_t l = strlen(sc->name);

		if (n >= l + 3 && strncasecmp(s, sc->name, l) == 0 &&
		    memcmp(s + l, "://", 3) == 0) {
			s += l + 3;
			u->tls = sc->tls;
			break;
		}
	}
	if (sc->name == NULL && (memmem(s, n, "://", 3) != NULL ||
	    !p->bare_ok)) {
		snprintf(err, FM_ERRLEN, "unsupported %s URL scheme in '%s' "
		    "(use %s:// or %s://)", p->label, net_url_shown(orig, n,
		    shown, sizeof(shown)), p->plain, p->secure);
		return -1;
	}
	/* the authority ends at the path, query or fragment */
	for (h = s; h < end && *h != '/' && *h != '?' && *h != '#'; h++)
		;
	if (h < end && *h == '/') {
		const char *pe = h;

		while (pe < end && *pe != '?' && *pe != '#')
			pe++;
		if ((u->path = strndup(h, (size_t)(pe - h))) == NULL)
			goto oom;
	}
	end = h;
	h = s;
	for (at = end; at > h && at[-1] != '@'; at--)
		;
	if (at > h) {
		const char *ue = at - 1, *colon = memchr(h, ':',
		    (size_t)(ue - h));

		if (colon) {
			why = "a password does not belong in a URL: use "
			    "password_file";
			goto bad;
		}
		if (ue == h) {
			why = "empty user name before '@'";
			goto bad;
		}
		/* user names are freer than host names (e-mail style) */
		if (strcspn(h, " \t\r\n/") < (size_t)(ue - h)) {
			why = "bad user name";
			goto bad;
		}
		if ((u->user = strndup(h, (size_t)(ue - h))) == NULL)
			goto oom;
		h = at;
	}
	if (h < end && *h == '[') {
		if ((he = memchr(h, ']', (size_t)(end - h))) == NULL) {
			why = "no ']' after an IPv6 address";
			goto bad;
		}
		h++;
		if (!v6_ok(h, (size_t)(he - h))) {
			why = "not an IPv6 address in '[...]'";
			goto bad;
		}
		v6 = true;
		if (he + 1 < end) {
			if (he[1] != ':') {
				why = "junk after ']'";
				goto bad;
			}
			pp = he + 2;
		}
	} else {
		he = memchr(h, ':', (size_t)(end - h));
		if (he) {
			pp = he + 1;
			if (memchr(pp, ':', (size_t)(end - pp))) {
				why = "an IPv6 address needs brackets: "
				    "[addr]:port";
				goto bad;
			}
		} else
			he = end;
		if (he > h && !host_ok(h, (size_t)(he - h))) {
			why = "bad character in the host";
			goto bad;
		}
	}
	if (he == h) {
		why = "no host";
		goto bad;
	}
	if (pp) {
		size_t pl = (size_t)(end - pp);

		if (pl < 1 || pl > 5 || strspn(pp, "0123456789") < pl) {
			why = "the port must be a number from 1 to 65535";
			goto bad;
		}
		memcpy(num, pp, pl);
		num[pl] = '\0';
		port = strtol(num, &ep, 10);
		if (*ep || port < 1 || port > 65535) {
			why = "the port must be a number from 1 to 65535";
			goto bad;
		}
	} else
		port = u->tls ? p->tls_port : p->port;
	if ((u->host = strndup(h, (size_t)(he - h))) == NULL ||
	    asprintf(&u->port, "%ld", port) < 0) {
		u->port = NULL;
		goto oom;
	}
	if (asprintf(&u->text, "%s://%s%s%s:%ld", u->tls ? p->secure : p->plain,
	    v6 ? "[" : "", u->host, v6 ? "]" : "", port) < 0) {
		u->text = NULL;
		goto oom;
	}
	return 0;
bad:
	net_url_free(u);
	snprintf(err, FM_ERRLEN, "bad %s URL '%s' (%s; want %s://host:port "
	    "or %s://host:port)", p->label, net_url_shown(orig, n, shown,
	    sizeof(shown)), why, p->plain, p->secure);
	return -1;
oom:
	net_url_free(u);
	snprintf(err, FM_ERRLEN, "out of memory");
	return -1;
}

int
net_urls_add(const struct net_proto *pr, const char *entry,
    struct net_url **v, size_t *nv, char *err)
{
	const char *p = entry, *end, *c, *e;
	struct net_url *nu;

	if (strncasecmp(p, "failover:", 9) == 0) {
		p += 9;
		if (*p == '(') {
			p++;
			if ((end = strchr(p, ')')) == NULL) {
				char shown[512];

				snprintf(err, FM_ERRLEN, "bad failover URL "
				    "'%s' (no closing ')')", net_url_shown(
				    entry, strlen(entry), shown,
				    sizeof(shown)));
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
		if ((c = memchr(p, ',', (size_t)(end - p))) == NULL)
			c = end;
		for (e = c; e > p && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		if ((nu = realloc(*v, (*nv + 1) * sizeof(*nu))) == NULL) {
			snprintf(err, FM_ERRLEN, "out of memory");
			return -1;
		}
		*v = nu;
		if (net_url_parse(pr, p, (size_t)(e - p), &nu[*nv], err) < 0)
			return -1;
		(*nv)++;
		p = c;
	}
	return 0;
}

/* ---- connecting ---------------------------------------------------------- */

void
net_conn_init(struct net_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

void
net_conn_close(struct net_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->ai)
		freeaddrinfo(c->ai);
	c->ai = c->next = NULL;
	c->left = 0;
	c->addr_deadline = 0;
}

int
net_conn_take(struct net_conn *c)
{
	int fd = c->fd;

	c->fd = -1;
	net_conn_close(c);
	return fd;
}

/* Try the next addresses until one is in progress or connected. */
static enum net_result
try_next(struct net_conn *c, int64_t now)
{
	struct addrinfo *a;
	int one = 1;

	while ((a = c->next) != NULL) {
		c->next = a->ai_next;
		c->left--;
		c->addr_deadline = 0;
		c->fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, a->ai_protocol);
		if (c->fd < 0) {
			snprintf(c->err, sizeof(c->err), "cannot connect to "
			    "%s: socket: %s", c->label, strerror(errno));
			continue;
		}
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		if (connect(c->fd, a->ai_addr, a->ai_addrlen) == 0)
			return NET_UP;
		if (errno == EINPROGRESS) {
			/* a share of the time left, unless it is the last */
			if (c->left > 0 && c->deadline > now)
				c->addr_deadline = now + (c->deadline - now) /
				    (int64_t)(c->left + 1);
			return NET_PENDING;
		}
		snprintf(c->err, sizeof(c->err), "cannot connect to %s: %s",
		    c->label, strerror(errno));
		close(c->fd);
		c->fd = -1;
	}
	net_conn_close(c);
	return NET_FAILED;
}

enum net_result
net_conn_start(struct net_conn *c, const char *host, const char *port,
    const char *label, unsigned timeout_ms, int64_t now)
{
	struct addrinfo hints, *ai;
	int r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((r = getaddrinfo(host, port, &hints, &ai)) != 0) {
		net_conn_close(c);
		snprintf(c->err, sizeof(c->err), "cannot resolve %s: %s", host,
		    r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return NET_FAILED;
	}
	return net_conn_start_ai(c, ai, label, timeout_ms, now);
}

enum net_result
net_conn_start_ai(struct net_conn *c, struct addrinfo *ai, const char *label,
    unsigned timeout_ms, int64_t now)
{
	struct addrinfo *a;

	net_conn_close(c);
	c->label = label;
	c->deadline = now + timeout_ms;
	c->ai = c->next = ai;
	for (a = ai; a; a = a->ai_next)
		c->left++;
	snprintf(c->err, sizeof(c->err), "cannot connect to %s: no address",
	    label);
	return try_next(c, now);
}

enum net_result
net_conn_handle(struct net_conn *c, short revents, int64_t now)
{
	socklen_t l = sizeof(int);
	int e = 0;

	if (c->fd < 0)
		return NET_FAILED;
	if (revents & (POLLOUT | POLLERR | POLLHUP)) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
			e = errno;
		if (e == 0)
			return NET_UP;
		if (e != EINPROGRESS && e != EALREADY) {
			snprintf(c->err, sizeof(c->err), "cannot connect to "
			    "%s: %s", c->label, strerror(e));
			close(c->fd);
			c->fd = -1;
			return try_next(c, now);
		}
	}
	if (c->addr_deadline && now >= c->addr_deadline) {
		snprintf(c->err, sizeof(c->err), "cannot connect to %s: %s",
		    c->label, strerror(ETIMEDOUT));
		close(c->fd);
		c->fd = -1;
		return try_next(c, now);
	}
	return NET_PENDING;
}

int
net_conn_timeout_ms(const struct net_conn *c, int64_t now)
{
	if (c->fd < 0 || c->addr_deadline == 0)
		return -1;
	return c->addr_deadline <= now ? 0 : c->addr_deadline - now > 3600000 ?
	    3600000 : (int)(c->addr_deadline - now);
}

/* ---- backoff ------------------------------------------------------------- */

void
net_backoff_init(struct net_backoff *b, unsigned min_ms, unsigned max_ms)
{
	struct timespec ts;

	b->min_ms = min_ms ? min_ms : 1;
	b->max_ms = max_ms < b->min_ms ? b->min_ms : max_ms;
	b->attempt = 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	b->rng = (uint32_t)getpid() ^ (uint32_t)ts.tv_nsec ^
	    (uint32_t)(uintptr_t)b;
	if (b->rng == 0)
		b->rng = 0x9e3779b9u;
}

int64_t
net_backoff_next(struct net_backoff *b)
{
	uint64_t d = b->min_ms, half;
	unsigned k;

	for (k = 0; k < b->attempt && d < b->max_ms; k++)
		d *= 2;
	if (d > b->max_ms)
		d = b->max_ms;
	if (b->attempt < 64)
		b->attempt++;
	b->rng ^= b->rng << 13;		/* xorshift32: jitter, not secrets */
	b->rng ^= b->rng >> 17;
	b->rng ^= b->rng << 5;
	half = d / 2;
	return (int64_t)(half + b->rng % (d - half + 1));
}

void
net_backoff_reset(struct net_backoff *b)
{
	b->attempt = 0;
}

/* ---- TLS ----------------------------------------------------------------- */

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

SSL_CTX *
net_tls_ctx_new(const struct net_tls_opts *o, char *err)
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
	/* the protocols on top delimit their frames: a missing close_notify
	   is an EOF, not an attack on the data already read */
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
			ERR_clear_error();
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

/*
 * A socket BIO that writes with MSG_NOSIGNAL: a peer that goes away must
 * not kill the process with SIGPIPE, whatever the caller's signal setup.
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
	    BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "fedmsg-c socket");

	if (m == NULL)
		return;
	BIO_meth_set_write(m, nosig_write);
	BIO_meth_set_read(m, nosig_read);
	BIO_meth_set_ctrl(m, nosig_ctrl);
	BIO_meth_set_create(m, nosig_create);
	nosig_method = m;
}

static bool
is_ip_literal(const char *h)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1;
}

/* ---- the stream ---------------------------------------------------------- */

void
net_stream_init(struct net_stream *st, int fd)
{
	memset(st, 0, sizeof(*st));
	st->fd = fd;
}

void
net_stream_close(struct net_stream *st)
{
	if (st->ssl)
		SSL_free(st->ssl);
	if (st->fd >= 0)
		close(st->fd);
	net_stream_init(st, -1);
}

int
net_stream_tls(struct net_stream *st, SSL_CTX *ctx, const char *name)
{
	X509_VERIFY_PARAM *vp;
	BIO *bio;
	char e[160];

	ERR_clear_error();
	if (pthread_once(&nosig_once, nosig_init) != 0 ||
	    nosig_method == NULL) {
		snprintf(st->err, sizeof(st->err), "cannot make a BIO method");
		return -1;
	}
	if ((st->ssl = SSL_new(ctx)) == NULL ||
	    (bio = BIO_new(nosig_method)) == NULL) {
		ssl_errtext(e, sizeof(e));
		snprintf(st->err, sizeof(st->err), "%s", e);
		return -1;
	}
	BIO_set_data(bio, (void *)(intptr_t)st->fd);
	SSL_set_bio(st->ssl, bio, bio);
	vp = SSL_get0_param(st->ssl);
	X509_VERIFY_PARAM_set_hostflags(vp,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (is_ip_literal(name)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1)
			goto bad_name;
	} else if (X509_VERIFY_PARAM_set1_host(vp, name, 0) != 1 ||
	    SSL_set_tlsext_host_name(st->ssl, name) != 1)
		goto bad_name;
	return 0;
bad_name:
	ERR_clear_error();
	snprintf(st->err, sizeof(st->err), "cannot verify against '%s'", name);
	return -1;
}

enum net_result
net_stream_handshake(struct net_stream *st, const char *label,
    const char *name)
{
	long vr;
	int r, e;
	char t[160];
	bool mismatch;

	ERR_clear_error();
	errno = 0;
	if ((r = SSL_connect(st->ssl)) == 1) {
		st->hs_want_write = false;
		return NET_UP;
	}
	switch ((e = SSL_get_error(st->ssl, r))) {
	case SSL_ERROR_WANT_READ:
		st->hs_want_write = false;
		return NET_PENDING;
	case SSL_ERROR_WANT_WRITE:
		st->hs_want_write = true;
		return NET_PENDING;
	}
	if ((vr = SSL_get_verify_result(st->ssl)) != X509_V_OK) {
		ERR_clear_error();
		mismatch = vr == X509_V_ERR_HOSTNAME_MISMATCH ||
		    vr == X509_V_ERR_IP_ADDRESS_MISMATCH;
		snprintf(st->err, sizeof(st->err), "TLS certificate "
		    "verification failed for %s: %s%s%s%s", label,
		    X509_verify_cert_error_string(vr), mismatch ?
		    " (expected '" : "", mismatch ? name : "", mismatch ?
		    "')" : "");
		return NET_FAILED;
	}
	if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0) {
		snprintf(st->err, sizeof(st->err), "TLS handshake with %s "
		    "failed: %s", label, errno ? strerror(errno) :
		    "connection closed by the peer (not a TLS port?)");
		return NET_FAILED;
	}
	ssl_errtext(t, sizeof(t));
	snprintf(st->err, sizeof(st->err), "TLS handshake with %s failed: %s",
	    label, t);
	return NET_FAILED;
}

ssize_t
net_stream_read(struct net_stream *st, void *p, size_t n)
{
	ssize_t r;

	if (st->ssl == NULL) {
		r = recv(st->fd, p, n, 0);
		if (r > 0)
			return r;
		if (r == 0)
			return -1;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		snprintf(st->err, sizeof(st->err), "%s", strerror(errno));
		return -2;
	}
	ERR_clear_error();
	errno = 0;
	st->rd_want_write = false;
	r = SSL_read(st->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
	if (r > 0)
		return r;
	switch (SSL_get_error(st->ssl, (int)r)) {
	case SSL_ERROR_WANT_WRITE:
		st->rd_want_write = true;
		/* FALLTHROUGH */
	case SSL_ERROR_WANT_READ:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return -1;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_last_error() == 0) {
			if (errno == 0)
				return -1;	/* EOF without close_notify */
			snprintf(st->err, sizeof(st->err), "%s",
			    strerror(errno));
			return -2;
		}
		/* FALLTHROUGH */
	default:
		ssl_errtext(st->err, sizeof(st->err));
		return -2;
	}
}

#define TLS_WCHUNK	16384

ssize_t
net_stream_write(struct net_stream *st, const void *p, size_t n)
{
	ssize_t w;

	if (st->ssl == NULL) {
		w = send(st->fd, p, n, MSG_NOSIGNAL);
		if (w >= 0)
			return w;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		snprintf(st->err, sizeof(st->err), "%s", strerror(errno));
		return -1;
	}
	/* a retried SSL_write must have the same length */
	if (st->tls_wlen)
		n = st->tls_wlen;
	else if (n > TLS_WCHUNK)
		n = TLS_WCHUNK;
	ERR_clear_error();
	st->wr_want_read = false;
	w = SSL_write(st->ssl, p, (int)n);
	if (w > 0) {
		st->tls_wlen = 0;
		return w;
	}
	switch (SSL_get_error(st->ssl, (int)w)) {
	case SSL_ERROR_WANT_READ:
		st->wr_want_read = true;
		/* FALLTHROUGH */
	case SSL_ERROR_WANT_WRITE:
		st->tls_wlen = n;
		return 0;
	case SSL_ERROR_SYSCALL:
		snprintf(st->err, sizeof(st->err), "%s",
		    errno ? strerror(errno) : "connection closed");
		ERR_clear_error();
		return -1;
	default:
		ssl_errtext(st->err, sizeof(st->err));
		return -1;
	}
}

bool
net_stream_pending(const struct net_stream *st)
{
	return st->ssl && SSL_pending(st->ssl) > 0;
}

int
net_urls_check_clear(const struct net_url *v, size_t n, bool creds,
    bool allow, const struct net_clear_rules *r, char *err)
{
	const struct net_url *plain = NULL;
	size_t i, ntls = 0;

	for (i = 0; i < n; i++) {
		if (v[i].tls)
			ntls++;
		else if (plain == NULL)
			plain = &v[i];
	}
	if (plain == NULL)
		return 0;
	if (ntls) {
		snprintf(err, FM_ERRLEN, "the URL list mixes %s and %s (%s): a "
		    "failed TLS handshake would fall back to plain text; list "
		    "only one kind", r->tls_scheme, r->plain_scheme,
		    plain->text);
		return -1;
	}
	if (!creds && plain->user == NULL)
		return 0;
	if (!allow) {
		snprintf(err, FM_ERRLEN, "user/password_file over plain %s would "
		    "send them in clear: use %s (or set "
		    "allow_plaintext_credentials: true)", plain->text,
		    r->tls_scheme);
		return -1;
	}
	log_warn("%s: INSECURE: allow_plaintext_credentials is set: %s to %s",
	    r->who, r->what, plain->text);
	return 0;
}
