/*
 * publishers/hook_broker.c: git_hook.broker settings refused with a clear
 * reason, and a broker that is down leaves every record with its source
 * (nothing acknowledged) within the deadline.  Deliveries to real brokers:
 * tests/integration/test_git_hook_broker.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <jansson.h>

#include "clock.h"
#include "hook_broker.h"

static void
refused(const char *json, const char *why)
{
	char err[FM_ERRLEN] = "";
	json_t *o = json_loads(json, 0, NULL);
	struct hook_broker *b;

	assert_non_null(o);
	b = hb_new(o, err);
	assert_null(b);
	if (strstr(err, why) == NULL)
		fail_msg("%s: got \"%s\", want \"%s\"", json, err, why);
	json_decref(o);
}

static void
test_settings_refused(void **state)
{
	(void)state;
	refused("[]", "must be an object");
	refused("{}", "git_hook.broker.url");
	refused("{\"url\": 5}", "git_hook.broker.url");
	refused("{\"url\": [\"stomp://h\", 1]}", "git_hook.broker.url");
	refused("{\"url\": \"stomp://h\", \"format\": \"xml\"}",
	    "format must be");
	refused("{\"url\": \"stomp://h\", \"adress\": \"x\"}",
	    "unknown key \"adress\"");
	refused("{\"url\": \"stomp://h\", \"heartbeat\": \"x\"}",
	    "heartbeat");
	refused("{\"url\": \"stomp://h\", \"password_file\": \"/nonexistent\"}",
	    "password_file /nonexistent");
}

/* A source of n records that counts what was acknowledged. */
struct src {
	int	next, n, acked;
};

static int
src_next(void *ctx, uint64_t *token, const void **data, size_t *len)
{
	static const char body[] = "{\"topic\": \"t\", \"msg\": {}}";
	struct src *s = ctx;

	if (s->next == s->n)
		return 0;
	*token = (uint64_t)s->next++;
	*data = body;
	*len = sizeof(body) - 1;
	return 1;
}

static void
src_ack(void *ctx, uint64_t token)
{
	(void)token;
	((struct src *)ctx)->acked++;
}

/* A loopback port nobody listens on (bound, then closed). */
static int
closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void
test_broker_down_keeps_everything(void **state)
{
	static const char *const schemes[] = { "stomp", "amqp", "amqp091" };
	struct fm_limits lim = { 0 };	/* defaults */
	char err[FM_ERRLEN], json[200];
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		struct src s = { .n = 2 };
		struct hb_source src = { &s, src_next, src_ack };
		struct hook_broker *b;
		uint64_t dropped = 9;
		json_t *o;

		snprintf(json, sizeof(json), "{\"url\": \"%s://127.0.0.1:%d\"}",
		    schemes[i], closed_port());
		o = json_loads(json, 0, NULL);
		assert_non_null(b = hb_new(o, err));
		/* returns at the latest at the deadline, nothing accepted */
		assert_int_equal(hb_deliver(b, &lim, &src,
		    clock_ms() + 500, &dropped), 0);
		assert_int_equal(s.acked, 0);
		assert_int_equal(dropped, 0);
		hb_free(b);
		json_decref(o);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings_refused),
		cmocka_unit_test(test_broker_down_keeps_everything),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
