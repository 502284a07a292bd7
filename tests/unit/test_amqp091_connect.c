/*
 * The AMQP 0-9-1 connect attempt runs off the caller's thread
 * (brokers/amqp091_connect.c): starting it against a listener that never
 * answers returns at once with the attempt still running; the attempt
 * ends (its descriptor readable) with a clear reason when the peer goes
 * away or the port is closed; an attempt given up while it runs finishes
 * on its own.  The protocol itself is tested against RabbitMQ.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fedmsg/message.h>

#include "amqp091_connect.h"

#define LONG_MS	120000	/* longer than any test waits */

static int
listen_v4(int *port)
{
	struct sockaddr_in a;
	socklen_t sl = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static struct a091_connect *
start_at(int port)
{
	struct a091_connect_req r;
	struct a091_connect *c;
	char p[16], err[FM_ERRLEN];

	snprintf(p, sizeof(p), "%d", port);
	memset(&r, 0, sizeof(r));
	r.url_text = strdup("amqp091://127.0.0.1");
	r.host = strdup("127.0.0.1");
	r.port = strdup(p);
	r.vhost = strdup("/");
	r.timeout_ms = LONG_MS;
	r.heartbeat_s = 60;
	r.prefetch = 10;
	r.nsources = 1;
	r.sources = calloc(1, sizeof(*r.sources));
	assert_non_null(r.sources);
	r.sources[0] = strdup("/queue/q");
	c = a091_connect_start(&r, err);
	assert_non_null(c);
	assert_null(r.host);	/* taken */
	return c;
}

/* Wait (20 s at most) for the attempt's descriptor. */
static bool
ends(struct a091_connect *c)
{
	struct pollfd p = { a091_connect_fd(c), POLLIN, 0 };

	return poll(&p, 1, 20000) == 1 && a091_connect_done(c);
}

static void
silent_listener_does_not_block_the_caller(void **state)
{
	int port, lfd = listen_v4(&port), cfd;
	struct a091_connect *c;
	char err[FM_ERRLEN], **queues = NULL;

	(void)state;
	c = start_at(port);
	/* TCP is up (the backlog), the login waits for a connection.start
	   that never comes: the caller has its thread back meanwhile */
	cfd = accept(lfd, NULL, NULL);
	assert_true(cfd >= 0);
	assert_false(a091_connect_done(c));
	close(cfd);		/* the peer goes: the attempt ends */
	assert_true(ends(c));
	assert_null(a091_connect_finish(c, &queues, err));
	assert_null(queues);
	assert_non_null(strstr(err, "amqp091://127.0.0.1"));
	close(lfd);
}

static void
closed_port_fails_with_the_url(void **state)
{
	int port, lfd = listen_v4(&port);
	struct a091_connect *c;
	char err[FM_ERRLEN], **queues = NULL;

	(void)state;
	close(lfd);
	c = start_at(port);
	assert_true(ends(c));
	assert_null(a091_connect_finish(c, &queues, err));
	assert_non_null(strstr(err, "amqp091://127.0.0.1"));
}

static void
abandoned_attempt_ends_on_its_own(void **state)
{
	int port, lfd = listen_v4(&port), cfd;
	struct a091_connect *c;

	(void)state;
	c = start_at(port);
	cfd = accept(lfd, NULL, NULL);
	assert_true(cfd >= 0);
	a091_connect_abandon(c);	/* the link is freed while it runs */
	close(cfd);			/* the thread ends and frees it */
	close(lfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(silent_listener_does_not_block_the_caller),
		cmocka_unit_test(closed_port_fails_with_the_url),
		cmocka_unit_test(abandoned_attempt_ends_on_its_own),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
