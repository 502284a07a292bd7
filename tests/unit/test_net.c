/*
 * bridge/net.c: the broker URL parser (a table of good and bad URLs for
 * STOMP's and AMQP's schemes), failover lists, the connect over every
 * address (listeners on ::1 and 127.0.0.1: a first address that refuses
 * or stays silent, a second that accepts), the backoff's bounds and the
 * TLS context's errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fedmsg/message.h>

#include "net.h"

static const struct net_scheme stomp_schemes[] = {
	{ "stomp", false }, { "tcp", false }, { "stomp+ssl", true },
	{ "ssl", true }, { NULL, false },
};
static const struct net_proto stomp = {
	"STOMP", stomp_schemes, "stomp", "stomp+ssl", 61613, 61612, true,
};
static const struct net_scheme amqp_schemes[] = {
	{ "amqp", false }, { "amqps", true }, { NULL, false },
};
static const struct net_proto amqp = {
	"AMQP", amqp_schemes, "amqp", "amqps", 5672, 5671, false,
};

static bool
has(const char *s, const char *sub)
{
	return s && strstr(s, sub) != NULL;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- URLs ---------------------------------------------------------------- */

static void
test_url_table(void **state)
{
	static const struct {
		const struct net_proto *p;
		const char	*in;
		const char	*text;		/* NULL: refused */
		const char	*host, *port, *user;
		bool		 tls;
		const char	*err;		/* part of the error */
	} t[] = {
		{ &stomp, "stomp://a.example:1", "stomp://a.example:1",
		    "a.example", "1", NULL, false, NULL },
		{ &stomp, "STOMP+SSL://b", "stomp+ssl://b:61612", "b", "61612",
		    NULL, true, NULL },
		{ &stomp, "ssl://b:7/path?x=y", "stomp+ssl://b:7", "b", "7",
		    NULL, true, NULL },
		{ &stomp, "b.example:61613", "stomp://b.example:61613",
		    "b.example", "61613", NULL, false, NULL },
		{ &stomp, "stomp://[::1]:5", "stomp://[::1]:5", "::1", "5",
		    NULL, false, NULL },
		{ &stomp, "stomp://[fe80::1%lo]", "stomp://[fe80::1%lo]:61613",
		    "fe80::1%lo", "61613", NULL, false, NULL },
		{ &stomp, "[::ffff:127.0.0.1]:9",
		    "stomp://[::ffff:127.0.0.1]:9", "::ffff:127.0.0.1", "9",
		    NULL, false, NULL },
		{ &stomp, "stomp://me@h:2", "stomp://h:2", "h", "2", "me",
		    false, NULL },
		{ &amqp, "amqps://svc@[::1]", "amqps://[::1]:5671", "::1",
		    "5671", "svc", true, NULL },
		{ &amqp, "amqp://a@b.example@h/vhost", "amqp://h:5672", "h",
		    "5672", "a@b.example", false, NULL },
		{ &amqp, "amqp://127.0.0.1:65535", "amqp://127.0.0.1:65535",
		    "127.0.0.1", "65535", NULL, false, NULL },
		/* refused, with a clear reason */
		{ &stomp, "http://a:1", NULL, NULL, NULL, NULL, false,
		    "unsupported STOMP URL scheme in 'http://a:1'" },
		{ &amqp, "a.example:5672", NULL, NULL, NULL, NULL, false,
		    "unsupported AMQP URL scheme in 'a.example:5672' (use "
		    "amqp:// or amqps://)" },
		{ &stomp, "stomp://a:99999", NULL, NULL, NULL, NULL, false,
		    "bad STOMP URL 'stomp://a:99999' (the port must be" },
		{ &stomp, "stomp://a:0", NULL, NULL, NULL, NULL, false,
		    "the port must be" },
		{ &stomp, "stomp://a:", NULL, NULL, NULL, NULL, false,
		    "the port must be" },
		{ &stomp, "stomp://a:1x", NULL, NULL, NULL, NULL, false,
		    "the port must be" },
		{ &stomp, "stomp://:1", NULL, NULL, NULL, NULL, false,
		    "no host" },
		{ &stomp, "stomp://", NULL, NULL, NULL, NULL, false,
		    "no host" },
		{ &stomp, "stomp://::1:5", NULL, NULL, NULL, NULL, false,
		    "needs brackets" },
		{ &stomp, "stomp://[::1", NULL, NULL, NULL, NULL, false,
		    "no ']'" },
		{ &stomp, "stomp://[nothex]:1", NULL, NULL, NULL, NULL, false,
		    "not an IPv6 address" },
		{ &stomp, "stomp://[::1]x", NULL, NULL, NULL, NULL, false,
		    "junk after ']'" },
		{ &stomp, "stomp://a b:1", NULL, NULL, NULL, NULL, false,
		    "bad character in the host" },
		{ &amqp, "amqp://u:secret@h", NULL, NULL, NULL, NULL, false,
		    "password_file" },
		{ &amqp, "amqp://@h", NULL, NULL, NULL, NULL, false,
		    "empty user name" },
	};
	char err[FM_ERRLEN];
	struct net_url u;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r;

		err[0] = '\0';
		r = net_url_parse(t[i].p, t[i].in, strlen(t[i].in), &u, err);
		if (t[i].text == NULL) {
			if (r == 0 || !has(err, t[i].err))
				fail_msg("'%s': want an error with '%s', got "
				    "%d '%s'", t[i].in, t[i].err, r, err);
			/* a parse error leaves nothing to free */
			assert_null(u.host);
			continue;
		}
		if (r != 0)
			fail_msg("'%s': %s", t[i].in, err);
		assert_string_equal(u.text, t[i].text);
		assert_string_equal(u.host, t[i].host);
		assert_string_equal(u.port, t[i].port);
		if (t[i].user)
			assert_string_equal(u.user, t[i].user);
		else
			assert_null(u.user);
		assert_int_equal(u.tls, t[i].tls);
		net_url_free(&u);
	}
}

/* The path is kept, still encoded, without the query (AMQP's vhost). */
static void
test_url_path(void **state)
{
	static const struct net_scheme sc[] = { { "amqp091", false },
	    { NULL, false } };
	static const struct net_proto p = { "AMQP 0-9-1", sc, "amqp091",
	    "amqps091", 5672, 5671, false };
	static const struct {
		const char	*in, *path;
	} t[] = {
		{ "amqp091://h", NULL },
		{ "amqp091://h:1/", "/" },
		{ "amqp091://u@h/%2f?heartbeat=5", "/%2f" },
		{ "amqp091://h/fedora#x", "/fedora" },
		{ "amqp091://h?x=/y", NULL },
	};
	char err[FM_ERRLEN];
	struct net_url u;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (net_url_parse(&p, t[i].in, strlen(t[i].in), &u, err) < 0)
			fail_msg("'%s': %s", t[i].in, err);
		if (t[i].path)
			assert_string_equal(u.path, t[i].path);
		else
			assert_null(u.path);
		net_url_free(&u);
	}
}

static void
test_url_lists(void **state)
{
	static const struct {
		const char	*in;
		const char	*texts;	/* joined by ' '; NULL: refused */
	} t[] = {
		{ "stomp://a:1", "stomp://a:1" },
		{ "stomp://a:1, stomp+ssl://[::1]:2 ,b:3",
		    "stomp://a:1 stomp+ssl://[::1]:2 stomp://b:3" },
		{ "failover:(stomp://a:1,ssl://b:2)?randomize=false",
		    "stomp://a:1 stomp+ssl://b:2" },
		{ "failover:stomp://a:1,stomp://b:2?x=1",
		    "stomp://a:1 stomp://b:2" },
		{ "FAILOVER:( stomp://a:1 )", "stomp://a:1" },
		{ ",,", "" },
		{ "failover:(stomp://a:1", NULL },
		{ "stomp://a:1,http://b", NULL },
	};
	char err[FM_ERRLEN], got[512];
	struct net_url *v;
	size_t i, k, n;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		v = NULL;
		n = 0;
		if (net_urls_add(&stomp, t[i].in, &v, &n, err) < 0) {
			if (t[i].texts)
				fail_msg("'%s': %s", t[i].in, err);
			net_urls_free(v, n);
			continue;
		}
		if (t[i].texts == NULL)
			fail_msg("'%s' accepted", t[i].in);
		got[0] = '\0';
		for (k = 0; k < n; k++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got),
			    "%s%s", k ? " " : "", v[k].text);
		assert_string_equal(got, t[i].texts);
		net_urls_free(v, n);
	}
	v = NULL;
	n = 0;
	assert_int_equal(net_urls_add(&stomp, "failover:(a:1", &v, &n, err),
	    -1);
	assert_true(has(err, "no closing ')'"));
	net_urls_free(v, n);
}

/*
 * A refused URL is quoted in the error, which goes to the logs: never
 * with its password, in any of the refusals (a password in the URL, a
 * bad host, an unknown scheme, an unclosed failover list).
 */
static void
test_password_never_in_errors(void **state)
{
	static const char *const in[] = {
		"stomp://alice:Tr0ub4dor@broker.example",
		"stomp://alice:Tr0ub4dor@bro ker:1",
		"http://alice:Tr0ub4dor@broker.example",
		"failover:(stomp://alice:Tr0ub4dor@a:1,stomp://b:2",
		"failover:(stomp://a:1,stomp://bob:Tr0ub4dor@b:2",
		"stomp://alice:pa/Tr0ub4dor@broker.example",
	};
	char err[FM_ERRLEN], out[64];
	struct net_url *v;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		v = NULL;
		n = 0;
		assert_int_equal(net_urls_add(&stomp, in[i], &v, &n, err), -1);
		net_urls_free(v, n);
		if (strstr(err, "Tr0ub4dor"))
			fail_msg("'%s': the error shows the password: %s",
			    in[i], err);
		assert_true(has(err, ":***@"));
	}
	assert_string_equal(net_url_shown("amqp://u@h,amqps://u:p@h2/x", 27,
	    out, sizeof(out)), "amqp://u@h,amqps://u:***@h2/x");
	assert_string_equal(net_url_shown("amqps://u:p@h", 13, out, 8),
	    "amqps:/");
}

/* ---- connect ----------------------------------------------------------- */

static int
listener(int family, int port, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		a->sin6_port = htons((uint16_t)port);
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->sin_port = htons((uint16_t)port);
		sl = sizeof(*a);
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
		close(fd);
		return -1;
	}
	assert_int_equal(listen(fd, backlog), 0);
	return fd;
}

static int
port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	return ss.ss_family == AF_INET6 ?
	    ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) :
	    ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A port free on both ::1 and 127.0.0.1. */
static int
free_port(void)
{
	int i;

	for (i = 0; i < 50; i++) {
		int a = listener(AF_INET, 0, 1), p = port_of(a);
		int b = listener(AF_INET6, p, 1);

		close(a);
		if (b >= 0) {
			close(b);
			return p;
		}
	}
	fail_msg("no port free on both ::1 and 127.0.0.1");
	return -1;
}

/* "first" then "second", as a resolver would hand them out. */
static struct addrinfo *
two_addresses(const char *first, const char *second, int port)
{
	struct addrinfo hints, *a, *b, *t;
	char ps[8];

	snprintf(ps, sizeof(ps), "%d", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	assert_int_equal(getaddrinfo(first, ps, &hints, &a), 0);
	assert_int_equal(getaddrinfo(second, ps, &hints, &b), 0);
	for (t = a; t->ai_next; t = t->ai_next)
		;
	t->ai_next = b;		/* glibc frees node by node */
	return a;
}

/* Poll until the connect is decided (deadline 10 s). */
static enum net_result
run_conn(struct net_conn *c, enum net_result r)
{
	int64_t end = now_ms() + 10000;

	while (r == NET_PENDING && now_ms() < end) {
		struct pollfd p = { c->fd, POLLOUT, 0 };
		int t = net_conn_timeout_ms(c, now_ms());

		poll(&p, 1, t < 0 || t > 200 ? 200 : t);
		r = net_conn_handle(c, p.revents, now_ms());
	}
	return r;
}

static int
peer_family(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	assert_int_equal(getpeername(fd, (struct sockaddr *)&ss, &sl), 0);
	return ss.ss_family;
}

static void
test_connect_refused_then_accepted(void **state)
{
	int order, port;

	(void)state;
	/* both orders: the first address refuses, the second accepts */
	for (order = 0; order < 2; order++) {
		const char *refuse = order ? "127.0.0.1" : "::1";
		const char *accept = order ? "::1" : "127.0.0.1";
		int fam = order ? AF_INET6 : AF_INET, l, fd;
		struct net_conn c;
		enum net_result r;

		port = free_port();
		l = listener(fam, port, 8);
		assert_true(l >= 0);
		net_conn_init(&c);
		r = net_conn_start_ai(&c, two_addresses(refuse, accept, port),
		    "test", 5000, now_ms());
		r = run_conn(&c, r);
		if (r != NET_UP)
			fail_msg("order %d: %s", order, c.err);
		/* the refusal was seen on the way */
		assert_true(has(c.err, "Connection refused"));
		fd = net_conn_take(&c);
		assert_true(fd >= 0);
		assert_int_equal(peer_family(fd), fam);
		assert_int_equal(c.fd, -1);
		close(fd);
		close(l);
	}
}

static void
test_connect_all_refused(void **state)
{
	int port = free_port();
	struct net_conn c;
	enum net_result r;

	(void)state;
	net_conn_init(&c);
	r = net_conn_start_ai(&c, two_addresses("::1", "127.0.0.1", port),
	    "stomp://x:1", 5000, now_ms());
	r = run_conn(&c, r);
	assert_int_equal(r, NET_FAILED);
	assert_true(has(c.err, "cannot connect to stomp://x:1: Connection "
	    "refused"));
	assert_int_equal(c.fd, -1);
	net_conn_close(&c);
	/* a name that does not resolve */
	r = net_conn_start(&c, "nonexistent.invalid", "1", "x", 1000,
	    now_ms());
	assert_int_equal(r, NET_FAILED);
	assert_true(has(c.err, "cannot resolve nonexistent.invalid"));
}

/*
 * A first address that never answers (its accept queue is full, so the
 * kernel drops the SYN) gets half the time; then the second is tried.
 */
static void
test_connect_silent_then_accepted(void **state)
{
	int port = free_port(), silent, ok, fill[4], nf = 0, i;
	struct net_conn c;
	enum net_result r;
	int64_t t0;

	(void)state;
	silent = listener(AF_INET6, port, 0);
	ok = listener(AF_INET, port, 8);
	assert_true(silent >= 0 && ok >= 0);
	/* fill the accept queue of the silent one */
	for (i = 0; i < 4; i++) {
		struct sockaddr_in6 a;

		memset(&a, 0, sizeof(a));
		a.sin6_family = AF_INET6;
		a.sin6_addr = in6addr_loopback;
		a.sin6_port = htons((uint16_t)port);
		fill[nf] = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fill[nf], (struct sockaddr *)&a, sizeof(a));
		nf++;
	}
	usleep(100000);
	net_conn_init(&c);
	t0 = now_ms();
	r = net_conn_start_ai(&c, two_addresses("::1", "127.0.0.1", port),
	    "test", 1000, t0);
	assert_int_equal(r, NET_PENDING);
	/* the first address has a timer of its own: half the time */
	assert_true(net_conn_timeout_ms(&c, t0) > 0);
	assert_true(net_conn_timeout_ms(&c, t0) <= 500);
	r = run_conn(&c, r);
	if (r != NET_UP)
		fail_msg("%s", c.err);
	i = net_conn_take(&c);
	assert_int_equal(peer_family(i), AF_INET);
	/* the second (last) address has no timer of its own */
	close(i);
	for (i = 0; i < nf; i++)
		close(fill[i]);
	close(silent);
	close(ok);
}

/* ---- backoff, TLS ------------------------------------------------------ */

static void
test_backoff(void **state)
{
	struct net_backoff b;
	int i;

	(void)state;
	net_backoff_init(&b, 100, 1000);
	for (i = 0; i < 12; i++) {
		unsigned d = 100u << (i < 4 ? i : 4);
		int64_t v = net_backoff_next(&b);

		if (d > 1000)
			d = 1000;
		if (v < (int64_t)d / 2 || v > (int64_t)d)
			fail_msg("attempt %d: %lld not in %u..%u", i,
			    (long long)v, d / 2, d);
	}
	net_backoff_reset(&b);
	assert_true(net_backoff_next(&b) <= 100);
	/* max below min: min wins */
	net_backoff_init(&b, 500, 10);
	assert_true(net_backoff_next(&b) <= 500);
}

static void
test_tls_ctx_errors(void **state)
{
	struct net_tls_opts o = { "/nonexistent/ca.pem", NULL, NULL, NULL };
	char err[FM_ERRLEN];
	SSL_CTX *ctx;

	(void)state;
	assert_null(net_tls_ctx_new(&o, err));
	assert_true(has(err, "cannot load TLS CA /nonexistent/ca.pem"));
	o.ca_file = NULL;
	o.key_file = "/nonexistent/key.pem";
	assert_null(net_tls_ctx_new(&o, err));
	assert_true(has(err, "key_file without cert_file"));
	o.key_file = NULL;
	o.cert_file = "/nonexistent/cert.pem";
	assert_null(net_tls_ctx_new(&o, err));
	assert_true(has(err, "cannot load TLS client certificate "
	    "/nonexistent/cert.pem"));
	o.cert_file = NULL;
	ctx = net_tls_ctx_new(&o, err);		/* the system store */
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER);
	SSL_CTX_free(ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_table),
		cmocka_unit_test(test_url_path),
		cmocka_unit_test(test_url_lists),
		cmocka_unit_test(test_password_never_in_errors),
		cmocka_unit_test(test_connect_refused_then_accepted),
		cmocka_unit_test(test_connect_all_refused),
		cmocka_unit_test(test_connect_silent_then_accepted),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_tls_ctx_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
