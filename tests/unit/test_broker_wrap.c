/*
 * broker_wrap(): a broker payload as the envelope fedmsg-migration-tools'
 * AmqpToZmq makes (msg_id "<year>-<message_id>" from the year of sent-at,
 * so a redelivery keeps it; an id that starts with a year kept; typed
 * headers kept; no message_id or no topic refused), and the plain rules
 * (text properties as headers, a fedmsg-shaped id kept).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker_wrap.h"

static const struct fm_limits lim;

static json_t *
wrapped(const struct broker_in *in, bool fm, const char *topic, char *err)
{
	struct broker_wrap_opts o = { topic, "amqp-bridge", 7, fm, &lim, NULL };
	struct fm_msg *m = broker_wrap(in, &o, err);
	json_t *j;
	size_t len;
	const char *body;

	if (m == NULL)
		return NULL;
	body = fm_msg_body(m, &len);
	j = json_loadb(body, len, 0, NULL);
	fm_msg_unref(m);
	assert_non_null(j);
	return j;
}

static const char *
str(json_t *j, const char *k)
{
	return json_string_value(json_object_get(j, k));
}

static void
test_fedora_messaging(void **state)
{
	struct broker_in in;
	char err[FM_ERRLEN];
	json_t *j, *h;

	(void)state;
	memset(&in, 0, sizeof(in));
	in.body = "{\"seq\": 1}";
	in.len = strlen(in.body);
	in.message_id = "0c1a0b5e-1111-2222-3333-444455556666";
	in.headers_json = "{\"sent-at\": \"2019-07-30T19:12:22+00:00\", "
	    "\"fedora_messaging_severity\": 20, \"x-received-from\": []}";
	j = wrapped(&in, true, "org.fedoraproject.prod.x", err);
	assert_non_null(j);
	assert_string_equal(str(j, "topic"), "org.fedoraproject.prod.x");
	assert_string_equal(str(j, "msg_id"),
	    "2019-0c1a0b5e-1111-2222-3333-444455556666");
	assert_string_equal(str(j, "username"), "amqp-bridge");
	assert_int_equal(json_integer_value(json_object_get(j, "timestamp")),
	    1564513942);
	assert_int_equal(json_integer_value(json_object_get(j, "i")), 7);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j,
	    "msg"), "seq")), 1);
	h = json_object_get(j, "headers");
	assert_true(json_is_integer(json_object_get(h,
	    "fedora_messaging_severity")));
	assert_null(json_object_get(h, "x-received-from"));
	json_decref(j);

	/* an id that already starts with a year is kept */
	in.message_id = "2018-abc";
	j = wrapped(&in, true, "t", err);
	assert_string_equal(str(j, "msg_id"), "2018-abc");
	json_decref(j);

	/* refused: no message_id, no topic */
	in.message_id = NULL;
	assert_null(wrapped(&in, true, "t", err));
	assert_non_null(strstr(err, "message_id"));
	in.message_id = "x";
	assert_null(wrapped(&in, true, "", err));
	assert_non_null(strstr(err, "no topic"));
}

static void
test_plain(void **state)
{
	struct broker_prop props[] = { { "build", "42" } };
	struct broker_in in;
	char err[FM_ERRLEN];
	json_t *j;

	(void)state;
	memset(&in, 0, sizeof(in));
	in.body = "[1, 2]";
	in.len = strlen(in.body);
	in.props = props;
	in.nprops = 1;
	in.message_id = "not-fedmsg-shaped";
	j = wrapped(&in, false, "t", err);
	assert_non_null(j);
	assert_string_equal(str(json_object_get(j, "headers"), "build"), "42");
	assert_int_equal(strlen(str(j, "msg_id")), FM_MSG_ID_LEN);
	assert_string_not_equal(str(j, "msg_id") + 5, "not-fedmsg-shaped");
	json_decref(j);
}

/*
 * An empty body, as AMQP 1.0 hands over a binary of size 0: a pointer
 * into the library's buffer with no NUL after it.  It must be refused
 * without reading past it (ASan: stack-buffer-overflow otherwise).
 */
static void
test_empty_body(void **state)
{
	const char not_terminated[1] = { '{' };
	struct broker_in in;
	char err[FM_ERRLEN];
	bool fm;

	(void)state;
	for (fm = false; ; fm = true) {
		memset(&in, 0, sizeof(in));
		in.body = not_terminated;
		in.len = 0;
		in.message_id = "2026-0e6f0f4a-5a4e-4e8a-9d0b-3c1a2b3c4d5e";
		err[0] = '\0';
		assert_null(wrapped(&in, fm, "t", err));
		assert_string_equal(err, "the body is empty, not JSON");
		in.body = NULL;
		assert_null(wrapped(&in, fm, "t", err));
		assert_string_equal(err, "the body is empty, not JSON");
		if (fm)
			break;
	}
}

static void
test_sent_at(void **state)
{
	(void)state;
	assert_int_equal(broker_parse_sent_at("1970-01-02T00:00:00+00:00"),
	    86400);
	assert_int_equal(broker_parse_sent_at("1970-01-02T00:00:00.123Z"),
	    86400);
	assert_int_equal(broker_parse_sent_at("1970-01-02T00:00:00+02:00"), 0);
	assert_int_equal(broker_parse_sent_at("yesterday"), 0);
	assert_int_equal(broker_parse_sent_at(NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fedora_messaging),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_empty_body),
		cmocka_unit_test(test_sent_at),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
