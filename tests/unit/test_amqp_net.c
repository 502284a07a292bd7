/*
 * The AMQP link's way to its broker, through bridge/net.c: an
 * "amqp://user@[::1]:port" URL reaches a listener on ::1 (amqp.c used to
 * take the host for "[" and never connect), a failover list moves on from
 * a refusing URL, and bad URLs or TLS files are refused at creation with
 * a clear reason.  The listener only checks that the AMQP protocol header
 * arrives; the protocol itself is tested against brokers (integration).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
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

#include "broker.h"
#include "log.h"

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
listen_v6(int *port)
{
	struct sockaddr_in6 a;
	socklen_t sl = sizeof(a);
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin6_family = AF_INET6;
	a.sin6_addr = in6addr_loopback;
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
	*port = ntohs(a.sin6_port);
	return fd;
}

/* A port nothing listens on (bound, then closed). */
static int
dead_port(void)
{
	int p, fd = listen_v6(&p);

	close(fd);
	return p;
}

static void on_up(void *c) { (void)c; }
static void on_down(void *c, const char *w) { (void)c; (void)w; }
static void
on_sent(void *c, uint64_t t, enum broker_outcome o, const char *w)
{
	(void)c; (void)t; (void)o; (void)w;
}
static void
on_message(void *c, const struct broker_in *in, struct broker_delivery *d)
{
	(void)c; (void)in; (void)d;
}

static const struct broker_callbacks cbs = {
	NULL, on_up, on_down, on_sent, on_message,
};

/* Run the link until the listener has read "AMQP" from it (10 s). */
static bool
reaches(struct broker *b, int lfd)
{
	int64_t end = now_ms() + 10000;
	int cfd = -1;
	char hdr[8];
	bool ok = false;

	while (now_ms() < end && !ok) {
		zmq_pollitem_t items[2];
		int t;

		b->ops->poll_item(b, &items[0]);
		items[1].socket = NULL;
		items[1].fd = cfd >= 0 ? cfd : lfd;
		items[1].events = ZMQ_POLLIN;
		items[1].revents = 0;
		t = b->ops->timeout_ms(b, now_ms());
		zmq_poll(items, 2, t < 0 || t > 100 ? 100 : t);
		b->ops->handle(b, items[0].revents, now_ms());
		if (!(items[1].revents & ZMQ_POLLIN))
			continue;
		if (cfd < 0)
			cfd = accept(lfd, NULL, NULL);
		else
			ok = recv(cfd, hdr, 4, MSG_PEEK) == 4 &&
			    memcmp(hdr, "AMQP", 4) == 0;
	}
	if (cfd >= 0)
		close(cfd);
	return ok;
}

static void
test_ipv6_url_with_user(void **state)
{
	int port, lfd = listen_v6(&port);
	char url[64];
	const char *urls[] = { url };
	struct broker_opts o;
	struct broker *b;
	char err[FM_ERRLEN];

	(void)state;
	snprintf(url, sizeof(url), "amqp://svc@[::1]:%d/vhost", port);
	memset(&o, 0, sizeof(o));
	o.urls = urls;
	o.nurls = 1;
	/* the user in the URL is a credential: not over plain text ... */
	assert_null(broker_new(&o, &cbs, err));
	assert_non_null(strstr(err, "would send them in clear"));
	/* ... unless the config says so */
	o.allow_plaintext_credentials = true;
	b = broker_new(&o, &cbs, err);
	if (b == NULL)
		fail_msg("%s", err);
	assert_true(reaches(b, lfd));
	b->ops->free(b);
	close(lfd);
}

static void
test_failover_list(void **state)
{
	int port, lfd = listen_v6(&port), dead = dead_port();
	char url[128];
	const char *urls[] = { url };
	struct broker_opts o;
	struct broker *b;
	char err[FM_ERRLEN];

	(void)state;
	snprintf(url, sizeof(url), "failover:(amqp://[::1]:%d,"
	    "amqp://[::1]:%d)", dead, port);
	memset(&o, 0, sizeof(o));
	o.urls = urls;
	o.nurls = 1;
	b = broker_new(&o, &cbs, err);
	if (b == NULL)
		fail_msg("%s", err);
	assert_true(reaches(b, lfd));
	b->ops->free(b);
	close(lfd);
}

static void
test_bad_urls_refused(void **state)
{
	static const struct {
		const char *url, *err;
	} t[] = {
		{ "amqp://u:secret@h", "password_file" },
		{ "amqp://[::1", "no ']'" },
		{ "amqp://h:70000", "the port must be" },
		{ "amqps://h", "cannot load TLS CA /nonexistent/ca.pem" },
	};
	struct broker_opts o;
	char err[FM_ERRLEN];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *urls[] = { t[i].url };

		memset(&o, 0, sizeof(o));
		o.urls = urls;
		o.nurls = 1;
		o.user = "someone";	/* freed by the link on failure: must
					   not be the caller's */
		o.tls.ca = "/nonexistent/ca.pem";
		err[0] = '\0';
		assert_null(broker_new(&o, &cbs, err));
		if (strstr(err, t[i].err) == NULL)
			fail_msg("%s: '%s' lacks '%s'", t[i].url, err,
			    t[i].err);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv6_url_with_user),
		cmocka_unit_test(test_failover_list),
		cmocka_unit_test(test_bad_urls_refused),
	};

	log_init("test_amqp_net", getenv("AMQP_TEST_VERBOSE") ? FM_LOG_DEBUG :
	    FM_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
