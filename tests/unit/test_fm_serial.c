/*
 * Unit tests for fedmsg-tail --broker --json (tools/fm_serial.h):
 * fedora-messaging's serialised form, keys sorted and separated as
 * Python's json.dumps writes them, typed 0-9-1 headers kept, text
 * properties as headers elsewhere, a body that is not JSON refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <fedmsg/message.h>

#include "fm_serial.h"

#include "testutil.h"

static void
test_amqp091_typed_headers(void **state)
{
	struct broker_in in;
	char err[FM_ERRLEN], *got;

	(void)state;
	memset(&in, 0, sizeof(in));
	in.body = "{\"who\":\"caf\xc3\xa9\",\"n\":1}";
	in.len = strlen(in.body);
	in.message_id = "6b4f2c1e";
	in.headers_json = "{\"sent-at\":\"2024-05-02T14:03:11+00:00\","
	    "\"fedora_messaging_severity\":20,\"priority\":3}";
	in.source = "/queue/q1";
	got = fm_serial_dumps(&in, "org.fedoraproject.dev.x", err);
	assert_non_null(got);
	/* json.dumps(m, ensure_ascii=False, sort_keys=True) */
	assert_string_equal(got, "{\"body\": {\"n\": 1, \"who\": "
	    "\"caf\xc3\xa9\"}, \"headers\": {\"fedora_messaging_severity\": "
	    "20, \"priority\": 3, \"sent-at\": \"2024-05-02T14:03:11+00:00\"}, "
	    "\"id\": \"6b4f2c1e\", \"priority\": 3, \"queue\": \"q1\", \"topic\": "
	    "\"org.fedoraproject.dev.x\"}");
	free(got);
}

static void
test_text_properties(void **state)
{
	struct broker_prop props[] = { { "topic", "a.b" }, { "n", "7" } };
	struct broker_in in;
	char err[FM_ERRLEN], *got;

	(void)state;
	memset(&in, 0, sizeof(in));
	in.body = "{}";
	in.len = 2;
	in.props = props;
	in.nprops = 2;
	got = fm_serial_dumps(&in, "a.b", err);
	assert_non_null(got);
	assert_string_equal(got, "{\"body\": {}, \"headers\": {\"n\": \"7\", "
	    "\"topic\": \"a.b\"}, \"id\": null, \"priority\": 0, "
	    "\"queue\": null, \"topic\": \"a.b\"}");
	free(got);
}

/* What Python's json.dumps writes where jansson would not. */
static void
test_python_spelling(void **state)
{
	struct broker_in in;
	char err[FM_ERRLEN], *got;

	(void)state;
	memset(&in, 0, sizeof(in));
	/* an integer past 64 bits, 0.1, 1e16, DEL, a lone surrogate, U+2028,
	   a control character, keys in code point order */
	in.body = "{\"z\":123456789012345678901,\"f\":0.1,\"g\":1e16,"
	    "\"s\":\"a\x7f\\ud800\xe2\x80\xa8\\u0001/\",\"\xc3\xa9\":[1, 2.50]}";
	in.len = strlen(in.body);
	in.headers_json = "{}";
	got = fm_serial_dumps(&in, "t", err);
	assert_non_null(got);
	assert_string_equal(got, "{\"body\": {\"f\": 0.1, \"g\": 1e+16, "
	    "\"s\": \"a\x7f\\ud800\xe2\x80\xa8\\u0001/\", "
	    "\"z\": 123456789012345678901, \"\xc3\xa9\": [1, 2.5]}, "
	    "\"headers\": {}, \"id\": null, \"priority\": 0, "
	    "\"queue\": null, \"topic\": \"t\"}");
	free(got);
}

static void
test_not_json(void **state)
{
	struct broker_in in;
	char err[FM_ERRLEN];

	(void)state;
	memset(&in, 0, sizeof(in));
	in.body = "{\"a\":";
	in.len = strlen(in.body);
	err[0] = '\0';
	assert_null(fm_serial_dumps(&in, "a.b", err));
	assert_non_null(strstr(err, "not JSON"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_amqp091_typed_headers),
		cmocka_unit_test(test_text_properties),
		cmocka_unit_test(test_python_spelling),
		cmocka_unit_test(test_not_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
