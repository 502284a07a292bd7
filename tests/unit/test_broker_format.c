/*
 * Unit tests for the message formats on a broker (brokers/broker_format.h):
 * what fedmsg-bridge and fedmsg-logger --broker put in a broker_out for
 * "fedmsg", "fedora-messaging" and "umb", on AMQP and on STOMP.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fedmsg/message.h>

#include "broker_format.h"

#include "testutil.h"

static const char env_text[] =
    "{\"i\":1,\"msg_id\":\"2024-6b4f2c1e\",\"timestamp\":1714658591,"
    "\"topic\":\"org.fedoraproject.dev.x.y\",\"username\":\"u\","
    "\"msg\":{\"name\":\"bash\",\"seq\":7,\"big\":123456789012345678901,"
    "\"ok\":true,\"ratio\":2.5,\"text\":\"a:b\\nc\",\"nested\":{\"a\":1},"
    "\"msg_id\":\"own\",\"timestamp\":1,\"agent\":\"alice\"}}";

static struct fm_msg *
parse(void)
{
	char err[FM_ERRLEN];
	struct fm_msg *m = NULL;

	if (fm_msg_parse(env_text, strlen(env_text), NULL, &m, err) < 0)
		fail_msg("test message does not parse: %s", err);
	return m;
}

static const char *
prop(const struct broker_out *out, const char *name)
{
	size_t i;

	for (i = 0; i < out->nprops; i++)
		if (strcmp(out->props[i].name, name) == 0)
			return out->props[i].value;
	return NULL;
}

static int
make(enum broker_format f, const char *proto, struct broker_form *form,
    struct broker_out *out, struct fm_msg *m)
{
	struct broker_form_opts o = { f, proto, "host/b", NULL };
	char err[FM_ERRLEN];

	memset(out, 0, sizeof(*out));
	out->message_id = fm_msg_id(m);
	return broker_form_make(form, &o, m, env_text, strlen(env_text), out,
	    err);
}

static void
test_names(void **state)
{
	(void)state;
	assert_int_equal(broker_format_from_name("fedmsg"),
	    BROKER_FORMAT_FEDMSG);
	assert_int_equal(broker_format_from_name("fedora-messaging"),
	    BROKER_FORMAT_FEDORA_MESSAGING);
	assert_int_equal(broker_format_from_name("umb"), BROKER_FORMAT_UMB);
	assert_int_equal(broker_format_from_name("UMB"), -1);
	assert_int_equal(broker_format_from_name(""), -1);
}

static void
test_fedmsg(void **state)
{
	struct fm_msg *m = parse();
	struct broker_form form;
	struct broker_out out;

	(void)state;
	assert_int_equal(make(BROKER_FORMAT_FEDMSG, "amqp", &form, &out, m), 0);
	assert_ptr_equal(out.body, env_text);		/* the exact bytes */
	assert_null(out.headers_json);
	assert_string_equal(prop(&out, "topic"), "org.fedoraproject.dev.x.y");
	assert_string_equal(prop(&out, BROKER_ORIGIN_PROP), "host/b");
	assert_string_equal(prop(&out, "seq"), "7");
	assert_string_equal(prop(&out, "ok"), "true");
	assert_null(prop(&out, "text"));		/* a line feed */
	assert_null(prop(&out, "timestamp"));		/* reserved */
	assert_null(prop(&out, "nested"));
	broker_form_free(&form);
	fm_msg_unref(m);
}

static void
test_umb_amqp_typed(void **state)
{
	struct fm_msg *m = parse();
	struct broker_form form;
	struct broker_out out;
	json_t *h;

	(void)state;
	assert_int_equal(make(BROKER_FORMAT_UMB, "amqp", &form, &out, m), 0);
	/* the payload only, as written (jansson cannot hold "big") */
	assert_true(out.len > 0 && out.body[0] == '{');
	assert_non_null(strstr(out.body, "\"name\":\"bash\""));
	assert_null(strstr(out.body, "org.fedoraproject"));
	assert_string_equal(prop(&out, "msg_id"), "2024-6b4f2c1e");
	assert_string_equal(prop(&out, "topic"), "org.fedoraproject.dev.x.y");
	assert_null(prop(&out, "seq"));			/* typed, below */
	h = json_loads(out.headers_json, 0, NULL);
	assert_non_null(h);
	assert_true(json_is_integer(json_object_get(h, "seq")));
	assert_int_equal(json_integer_value(json_object_get(h, "seq")), 7);
	assert_true(json_is_true(json_object_get(h, "ok")));
	assert_true(json_is_real(json_object_get(h, "ratio")));
	/* past 64 bits: its text */
	assert_string_equal(json_string_value(json_object_get(h, "big")),
	    "123456789012345678901");
	assert_string_equal(json_string_value(json_object_get(h, "text")),
	    "a:b\nc");
	assert_null(json_object_get(h, "msg_id"));	/* not the payload's */
	assert_null(json_object_get(h, "timestamp"));
	assert_null(json_object_get(h, "nested"));
	json_decref(h);
	broker_form_free(&form);
	fm_msg_unref(m);
}

static void
test_umb_stomp_text(void **state)
{
	struct fm_msg *m = parse();
	struct broker_form form;
	struct broker_out out;

	(void)state;
	assert_int_equal(make(BROKER_FORMAT_UMB, "stomp", &form, &out, m), 0);
	assert_null(out.headers_json);
	assert_string_equal(prop(&out, "seq"), "7");
	assert_string_equal(prop(&out, "text"), "a:b\nc");  /* escaped later */
	assert_string_equal(prop(&out, "msg_id"), "2024-6b4f2c1e");
	broker_form_free(&form);
	fm_msg_unref(m);
}

static void
test_fedora_messaging(void **state)
{
	struct fm_msg *m = parse();
	struct broker_form form;
	struct broker_out out;
	json_t *h;

	(void)state;
	assert_int_equal(make(BROKER_FORMAT_FEDORA_MESSAGING, "amqp091", &form,
	    &out, m), 0);
	assert_int_equal(out.nprops, 0);
	h = json_loads(out.headers_json, 0, NULL);
	assert_non_null(h);
	assert_string_equal(json_string_value(json_object_get(h,
	    "fedora_messaging_schema")), "base.message");
	assert_int_equal(json_integer_value(json_object_get(h,
	    "fedora_messaging_severity")), 20);
	assert_string_equal(json_string_value(json_object_get(h, "sent-at")),
	    "2024-05-02T14:03:11+00:00");
	assert_true(json_is_true(json_object_get(h,
	    "fedora_messaging_user_alice")));
	assert_string_equal(json_string_value(json_object_get(h,
	    BROKER_ORIGIN_PROP)), "host/b");
	json_decref(h);
	broker_form_free(&form);
	fm_msg_unref(m);
}

static void
test_fedora_messaging_stomp_text(void **state)
{
	static const char text[] = "{\"topic\":\"org.fedoraproject.dev.a.b\","
	    "\"msg_id\":\"2024-x\",\"timestamp\":1714658591,"
	    "\"headers\":{\"extra\":7,\"ratio\":0.5,\"on\":false,"
	    "\"priority\":5,\"destination\":\"/topic/evil\",\"list\":[1]},"
	    "\"msg\":{\"user\":\"bob\"}}";
	struct broker_form_opts o = { BROKER_FORMAT_FEDORA_MESSAGING, "stomp",
	    "host/b", "custom.v1" };
	struct broker_form form;
	struct broker_out out;
	struct fm_msg *m = NULL;
	char err[FM_ERRLEN];
	size_t i, n;

	(void)state;
	assert_int_equal(fm_msg_parse(text, strlen(text), NULL, &m, err), 0);
	memset(&out, 0, sizeof(out));
	assert_int_equal(broker_form_make(&form, &o, m, text, strlen(text),
	    &out, err), 0);
	assert_string_equal(out.body, "{\"user\":\"bob\"}");
	assert_string_equal(prop(&out, "topic"), "org.fedoraproject.dev.a.b");
	assert_string_equal(prop(&out, "fedora_messaging_schema"),
	    "custom.v1");
	assert_string_equal(prop(&out, "fedora_messaging_severity"), "20");
	assert_string_equal(prop(&out, "sent-at"),
	    "2024-05-02T14:03:11+00:00");
	assert_string_equal(prop(&out, "fedora_messaging_user_bob"), "true");
	assert_string_equal(prop(&out, BROKER_ORIGIN_PROP), "host/b");
	/* the envelope's headers as text; ours win; reserved ones stay out */
	assert_string_equal(prop(&out, "extra"), "7");
	assert_string_equal(prop(&out, "ratio"), "0.5");
	assert_string_equal(prop(&out, "on"), "false");
	assert_string_equal(prop(&out, "priority"), "0");
	assert_null(prop(&out, "destination"));
	assert_null(prop(&out, "list"));
	for (i = n = 0; i < out.nprops; i++)
		n += strcmp(out.props[i].name, "priority") == 0;
	assert_int_equal(n, 1);
	broker_form_free(&form);
	fm_msg_unref(m);
}

static void
test_no_msg(void **state)
{
	static const char text[] = "{\"topic\":\"a.b\",\"msg_id\":\"2024-x\"}";
	struct broker_form_opts o = { BROKER_FORMAT_UMB, "amqp", NULL, NULL };
	struct broker_form form;
	struct broker_out out;
	struct fm_msg *m = NULL;
	char err[FM_ERRLEN];

	(void)state;
	assert_int_equal(fm_msg_parse(text, strlen(text), NULL, &m, err), 0);
	memset(&out, 0, sizeof(out));
	assert_int_equal(broker_form_make(&form, &o, m, text, strlen(text),
	    &out, err), -2);
	assert_non_null(strstr(err, "msg"));
	broker_form_free(&form);
	fm_msg_unref(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_fedmsg),
		cmocka_unit_test(test_umb_amqp_typed),
		cmocka_unit_test(test_umb_stomp_text),
		cmocka_unit_test(test_fedora_messaging),
		cmocka_unit_test(test_fedora_messaging_stomp_text),
		cmocka_unit_test(test_no_msg),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
