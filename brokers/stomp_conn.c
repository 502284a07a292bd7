/*
 * The transport under a STOMP session (stomp.h): the broker URLs and
 * failover (round robin, capped backoff with jitter), the non-blocking
 * TCP connect and TLS of net.h, and the poll interface (stomp_fd,
 * stomp_events, stomp_timeout_ms, stomp_handle) that moves bytes between
 * the socket and the I/O-free session of stomp.c.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include <fedmsg/message.h>

#include "log.h"
#include "net.h"
#include "stomp.h"

#define READ_BUDGET	(1024 * 1024)	/* per stomp_handle(), then yield */

static const struct net_scheme stomp_schemes[] = {
	{ "stomp", false }, { "tcp", false },
	{ "stomp+ssl", true }, { "stomp+tls", true },
	{ "stomp+nio+ssl", true }, { "ssl", true },
	{ "tls", true }, { "stomps", true },
	{ NULL, false },
};

static const struct net_proto stomp_proto = {
	"STOMP", stomp_schemes, "stomp", "stomp+ssl",
	STOMP_DEFAULT_PORT, STOMP_DEFAULT_TLS_PORT, true,
};

struct conn {
	struct stomp	*s;
	struct net_url	*urls;
	size_t		 nurls, cur;
	SSL_CTX		*ctx;
	char		*verify_name;
	unsigned	 connect_to;
	struct net_backoff bo;
	int64_t		 reconnect_at;
	struct net_conn	 nc;		/* while connecting */
	struct net_stream st;		/* once connected */
	bool		 read_more;
	char		 rbuf[16384];
};

static const char *
tls_name(const struct conn *c)
{
	return c->verify_name ? c->verify_name : c->urls[c->cur].host;
}

static void
conn_drop(struct conn *c)
{
	net_conn_close(&c->nc);
	net_stream_close(&c->st);
	c->read_more = false;
}

/* The session ended a connection: close it, plan the next attempt. */
static void
on_closed(void *owner, int64_t now, int64_t connected_at)
{
	struct conn *c = owner;

	conn_drop(c);
	if (stomp_session_running(c->s)) {
		/* a session that lasted resets the backoff */
		if (connected_at && now - connected_at >= (int64_t)(
		    c->bo.max_ms < 30000 ? c->bo.max_ms : 30000))
			net_backoff_reset(&c->bo);
		c->reconnect_at = now + net_backoff_next(&c->bo);
		c->cur = (c->cur + 1) % c->nurls;
		log_debug("stomp: next attempt: %s in %lld ms",
		    c->urls[c->cur].text, (long long)(c->reconnect_at - now));
	} else
		c->reconnect_at = 0;
}

static void
on_free(void *owner)
{
	struct conn *c = owner;

	if (c == NULL)
		return;
	conn_drop(c);
	net_urls_free(c->urls, c->nurls);
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	free(c->verify_name);
	free(c);
}

static const struct stomp_hooks hooks = { on_closed, on_free };

struct stomp *
stomp_new(const struct stomp_opts *o, char *err)
{
	struct net_tls_opts to = { o->ca_file, o->ca_dir, o->cert_file,
	    o->key_file };
	struct conn *c;
	struct stomp *s;
	bool tls = false;
	size_t i;

	if (o->urls == NULL || o->urls[0] == NULL) {
		snprintf(err, FM_ERRLEN, "no STOMP broker URL");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	net_conn_init(&c->nc);
	net_stream_init(&c->st, -1);
	if ((s = stomp_session_new(o, &hooks, c, err)) == NULL) {
		free(c);
		return NULL;
	}
	c->s = s;
	for (i = 0; o->urls[i]; i++)
		if (net_urls_add(&stomp_proto, o->urls[i], &c->urls, &c->nurls,
		    err) < 0)
			goto fail;
	if (c->nurls == 0) {
		snprintf(err, FM_ERRLEN, "no STOMP broker URL");
		goto fail;
	}
	for (i = 0; i < c->nurls; i++)
		tls |= c->urls[i].tls;
	{
		const struct net_clear_rules r = { "stomp", "stomp+ssl://",
		    "plain stomp://", "the login and passcode go in clear" };

		if (net_urls_check_clear(c->urls, c->nurls, o->login ||
		    o->passcode, o->allow_plaintext_login, &r, err) < 0)
			goto fail;
	}
	if ((o->tls_verify_name &&
	    (c->verify_name = strdup(o->tls_verify_name)) == NULL) ||
	    stomp_session_target(s, c->urls[0].text, c->urls[0].host,
	    c->urls[0].tls) < 0) {
		snprintf(err, FM_ERRLEN, "out of memory");
		goto fail;
	}
	if (tls && (c->ctx = net_tls_ctx_new(&to, err)) == NULL)
		goto fail;
	c->connect_to = o->connect_timeout_ms ? o->connect_timeout_ms :
	    STOMP_DEFAULT_CONNECT_TIMEOUT;
	net_backoff_init(&c->bo, o->reconnect_min_ms ? o->reconnect_min_ms :
	    STOMP_DEFAULT_RECONNECT_MIN, o->reconnect_max_ms ?
	    o->reconnect_max_ms : STOMP_DEFAULT_RECONNECT_MAX);
	return s;
fail:
	stomp_free(s);
	return NULL;
}

/* ---- connecting ---------------------------------------------------------- */

static void
flush(struct conn *c, int64_t now)
{
	const void *p;
	size_t n;
	ssize_t w;
	uint64_t gen = stomp_session_generation(c->s);

	while ((p = stomp_session_output(c->s, &n)) != NULL) {
		w = net_stream_write(&c->st, p, n);
		if (w < 0) {
			stomp_session_fail(c->s, now, "write to %s: %s",
			    c->urls[c->cur].text, c->st.err);
			return;
		}
		if (w == 0)
			break;
		stomp_session_output_done(c->s, (size_t)w, now);
		if (stomp_session_generation(c->s) != gen)
			return;
	}
}

static void
stream_up(struct conn *c, int64_t now)
{
	stomp_session_open(c->s, now);
	flush(c, now);
}

static void
handshake(struct conn *c, int64_t now)
{
	const struct net_url *u = &c->urls[c->cur];

	switch (net_stream_handshake(&c->st, u->text, tls_name(c))) {
	case NET_UP:
		log_debug("stomp: %s: %s, %s", u->text,
		    SSL_get_version(c->st.ssl),
		    SSL_get_cipher_name(c->st.ssl));
		stream_up(c, now);
		break;
	case NET_PENDING:
		break;
	case NET_FAILED:
		stomp_session_fail(c->s, now, "%s", c->st.err);
		break;
	}
}

/* TCP is up: TLS or straight to CONNECT. */
static void
tcp_connected(struct conn *c, int64_t now)
{
	const struct net_url *u = &c->urls[c->cur];

	net_stream_init(&c->st, net_conn_take(&c->nc));
	if (!u->tls) {
		stream_up(c, now);
		return;
	}
	if (net_stream_tls(&c->st, c->ctx, tls_name(c)) < 0) {
		stomp_session_fail(c->s, now, "TLS setup for %s: %s", u->text,
		    c->st.err);
		return;
	}
	stomp_session_handshaking(c->s);
	handshake(c, now);
}

static void
connect_result(struct conn *c, enum net_result r, int64_t now)
{
	if (r == NET_UP)
		tcp_connected(c, now);
	else if (r == NET_FAILED)
		stomp_session_fail(c->s, now, "%s", c->nc.err);
}

static void
start_attempt(struct conn *c, int64_t now)
{
	const struct net_url *u = &c->urls[c->cur];

	c->reconnect_at = 0;
	if (stomp_session_target(c->s, u->text, u->host, u->tls) < 0) {
		stomp_session_attach(c->s, now);
		stomp_session_fail(c->s, now, "out of memory");
		return;
	}
	stomp_session_attach(c->s, now);
	log_debug("stomp: connecting to %s", u->text);
	connect_result(c, net_conn_start(&c->nc, u->host, u->port, u->text,
	    c->connect_to, now), now);
}

/* ---- input --------------------------------------------------------------- */

static void
do_read(struct conn *c, int64_t now)
{
	uint64_t gen = stomp_session_generation(c->s);
	size_t budget = READ_BUDGET;
	ssize_t n;

	c->read_more = false;
	for (;;) {
		n = net_stream_read(&c->st, c->rbuf, sizeof(c->rbuf));
		if (n == 0)
			break;
		if (n < 0) {
			stomp_session_input_end(c->s, now, n == -1 ? NULL :
			    c->st.err);
			return;
		}
		stomp_session_input(c->s, c->rbuf, (size_t)n, now);
		if (stomp_session_generation(c->s) != gen)
			return;
		if ((size_t)n >= budget) {
			c->read_more = true;
			break;
		}
		budget -= (size_t)n;
	}
	if (net_stream_pending(&c->st))
		c->read_more = true;
}

/* ---- the loop interface -------------------------------------------------- */

void
stomp_start(struct stomp *s, int64_t now_ms)
{
	struct conn *c = stomp_session_owner(s);

	stomp_session_set_running(s, true);
	if (stomp_state(s) != STOMP_ST_DISCONNECTED)
		return;
	net_backoff_reset(&c->bo);
	start_attempt(c, now_ms);
}

int
stomp_fd(const struct stomp *s)
{
	const struct conn *c = stomp_session_owner(s);

	if (c == NULL)
		return -1;
	return c->nc.fd >= 0 ? c->nc.fd : c->st.fd;
}

short
stomp_events(const struct stomp *s)
{
	const struct conn *c = stomp_session_owner(s);
	size_t n;

	if (c == NULL)
		return 0;
	switch (stomp_state(s)) {
	case STOMP_ST_DISCONNECTED:
		return 0;
	case STOMP_ST_CONNECTING:
		return c->nc.fd >= 0 ? POLLOUT : 0;
	case STOMP_ST_TLS_HANDSHAKE:
		return c->st.hs_want_write ? POLLOUT : POLLIN;
	default:
		stomp_session_output(s, &n);
		return (short)(POLLIN | (n > 0 || c->st.rd_want_write ?
		    POLLOUT : 0));
	}
}

static void
min_ms(int *best, int t)
{
	if (t >= 0 && (*best < 0 || t < *best))
		*best = t;
}

int
stomp_timeout_ms(const struct stomp *s, int64_t now_ms)
{
	const struct conn *c = stomp_session_owner(s);
	int t = stomp_session_timeout_ms(s, now_ms);

	if (c == NULL)
		return t;
	if (c->read_more)
		return 0;
	if (stomp_state(s) == STOMP_ST_DISCONNECTED &&
	    stomp_session_running(s) && c->reconnect_at)
		min_ms(&t, c->reconnect_at <= now_ms ? 0 :
		    c->reconnect_at - now_ms > INT_MAX ? INT_MAX :
		    (int)(c->reconnect_at - now_ms));
	if (stomp_state(s) == STOMP_ST_CONNECTING)
		min_ms(&t, net_conn_timeout_ms(&c->nc, now_ms));
	return t;
}

void
stomp_handle(struct stomp *s, short revents, int64_t now_ms)
{
	struct conn *c = stomp_session_owner(s);
	uint64_t gen = stomp_session_generation(s);
	size_t n;

	switch (stomp_state(s)) {
	case STOMP_ST_DISCONNECTED:
		break;
	case STOMP_ST_CONNECTING:
		connect_result(c, net_conn_handle(&c->nc, revents, now_ms),
		    now_ms);
		break;
	case STOMP_ST_TLS_HANDSHAKE:
		if (revents & (POLLIN | POLLOUT | POLLERR | POLLHUP))
			handshake(c, now_ms);
		break;
	default:
		if ((revents & (POLLIN | POLLERR | POLLHUP)) || c->read_more ||
		    (c->st.rd_want_write && (revents & POLLOUT)))
			do_read(c, now_ms);
		if (stomp_session_generation(s) == gen &&
		    stomp_session_output(s, &n) && (revents & POLLOUT ||
		    (c->st.wr_want_read && (revents & POLLIN))))
			flush(c, now_ms);
		break;
	}
	if (stomp_session_generation(s) != gen &&
	    stomp_state(s) != STOMP_ST_DISCONNECTED)
		return;		/* a callback started a new connection */
	gen = stomp_session_generation(s);
	if (stomp_state(s) == STOMP_ST_DISCONNECTED) {
		if (stomp_session_running(s) && c->reconnect_at &&
		    now_ms >= c->reconnect_at)
			start_attempt(c, now_ms);
		return;
	}
	stomp_session_tick(s, now_ms);
	/* write what the callbacks and timers queued, without a poll round */
	if (stomp_session_generation(s) == gen && stomp_session_output(s, &n) &&
	    !c->st.wr_want_read)
		flush(c, now_ms);
}
