/*
 * The fedmsg envelope: fm_msg_parse() and its accessors, fm_msg_build()
 * (fedmsg's FedMsgContext.publish()), fm_topic_build() (spec 2.2),
 * fm_msg_canonical() and fm_msg_member_json().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fedmsg/message.h>

#include "buf.h"
#include "json.h"
#include "msg.h"
#include "testutil.h"

static struct fm_msg *
parse_ok(const char *body, size_t len)
{
	struct fm_msg *m = (struct fm_msg *)1;
	char err[FM_ERRLEN];

	if (fm_msg_parse(body, len, NULL, &m, err) != 0)
		fail_msg("fm_msg_parse(%.60s): %s", body, err);
	assert_non_null(m);
	return m;
}

static struct fm_msg *
parse_s(const char *body)
{
	return parse_ok(body, strlen(body));
}

/* ---- parsing ------------------------------------------------------------ */

static void
test_parse_keeps_bytes(void **state)
{
	static const char body[] = " {\"topic\" : \"a.b\",\n\"msg\":{\"z\":1, "
	    "\"a\":1.50},\"i\":1, \"e\":\"\\u00e9\\/\"} \r\n";
	struct fm_msg *m = parse_ok(body, sizeof(body) - 1);
	size_t len = 0;
	const char *raw = fm_msg_body(m, &len);
	char *c;

	(void)state;
	assert_int_equal(len, sizeof(body) - 1);
	assert_memory_equal(raw, body, len);
	assert_int_equal(raw[len], '\0');
	assert_ptr_not_equal(raw, body);	/* a copy */
	assert_non_null(fm_msg_body(m, NULL));
	c = fm_msg_canonical(m, false, &len);
	assert_string_equal(c, "{\"e\":\"\\u00e9/\",\"i\":1,\"msg\":{\"a\":1.5,"
	    "\"z\":1},\"topic\":\"a.b\"}");
	assert_int_equal(len, strlen(c));
	free(c);
	fm_msg_unref(m);
}

static void
test_parse_body_with_nul(void **state)
{
	static const char body[] = "{\"a\":\"x\\u0000y\"}";
	struct fm_msg *m = parse_ok(body, sizeof(body) - 1);
	char err[FM_ERRLEN], *c;
	struct fm_msg *bad = (struct fm_msg *)1;

	(void)state;
	c = fm_msg_member_json(m, "a", NULL);
	assert_string_equal(c, "\"x\\u0000y\"");
	free(c);
	fm_msg_unref(m);
	/* a raw NUL byte is not JSON whitespace */
	assert_int_equal(fm_msg_parse("{}\0", 3, NULL, &bad, err), -1);
	assert_null(bad);
	assert_non_null(strstr(err, "Extra data"));
	assert_true(tu_has_offset(err, 2));
}

static void
test_parse_accessors(void **state)
{
	struct fm_msg *m;

	(void)state;
	m = parse_s("{\"topic\":\"org.x.\\u00e9\",\"msg_id\":\"2024-abc\","
	    "\"username\":\"alice\",\"crypto\":\"x509\",\"i\":7,"
	    "\"timestamp\":1700000000}");
	assert_string_equal(fm_msg_topic(m), "org.x.\xc3\xa9");
	assert_string_equal(fm_msg_id(m), "2024-abc");
	assert_string_equal(fm_msg_username(m), "alice");
	assert_string_equal(fm_msg_crypto(m), "x509");
	fm_msg_unref(m);

	/* absent */
	m = parse_s("{}");
	assert_null(fm_msg_topic(m));
	assert_null(fm_msg_id(m));
	assert_null(fm_msg_username(m));
	assert_null(fm_msg_crypto(m));
	fm_msg_unref(m);

	/* not strings */
	m = parse_s("{\"topic\":1,\"msg_id\":null,\"username\":[\"a\"],"
	    "\"crypto\":{\"x509\":1}}");
	assert_null(fm_msg_topic(m));
	assert_null(fm_msg_id(m));
	assert_null(fm_msg_username(m));
	assert_null(fm_msg_crypto(m));
	fm_msg_unref(m);

	/* strings holding NUL */
	m = parse_s("{\"topic\":\"a\\u0000b\",\"msg_id\":\"\\u0000\","
	    "\"username\":\"x\\u0000\",\"crypto\":\"x509\\u0000\"}");
	assert_null(fm_msg_topic(m));
	assert_null(fm_msg_id(m));
	assert_null(fm_msg_username(m));
	assert_null(fm_msg_crypto(m));
	fm_msg_unref(m);

	/* empty strings are strings */
	m = parse_s("{\"topic\":\"\",\"crypto\":\"x509\",\"username\":7}");
	assert_string_equal(fm_msg_topic(m), "");
	assert_string_equal(fm_msg_crypto(m), "x509");
	assert_null(fm_msg_username(m));
	fm_msg_unref(m);

	/* nested fields do not count */
	m = parse_s("{\"msg\":{\"topic\":\"inner\"}}");
	assert_null(fm_msg_topic(m));
	fm_msg_unref(m);
}

static void
test_parse_seq(void **state)
{
	static const struct {
		const char	*body;
		bool		 ok;
		int64_t		 want;
	} cases[] = {
		{ "{\"i\":7}", true, 7 },
		{ "{\"i\":0}", true, 0 },
		{ "{\"i\":-0}", true, 0 },
		{ "{\"i\":-42}", true, -42 },
		{ "{\"i\":9223372036854775807}", true, INT64_MAX },
		{ "{\"i\":-9223372036854775808}", true, INT64_MIN },
		{ "{\"i\":9223372036854775808}", false, 0 },
		{ "{\"i\":-9223372036854775809}", false, 0 },
		{ "{\"i\":123456789012345678901234567890}", false, 0 },
		{ "{\"i\":1.0}", false, 0 },
		{ "{\"i\":1e3}", false, 0 },
		{ "{\"i\":\"5\"}", false, 0 },
		{ "{\"i\":true}", false, 0 },
		{ "{\"i\":null}", false, 0 },
		{ "{}", false, 0 },
		{ "{\"msg\":{\"i\":1}}", false, 0 },
	};
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct fm_msg *m = parse_s(cases[k].body);
		int64_t i = 12345;

		if (fm_msg_seq(m, &i) != cases[k].ok)
			fail_msg("%s: fm_msg_seq gave %d", cases[k].body,
			    !cases[k].ok);
		if (cases[k].ok)
			assert_true(i == cases[k].want);
		else
			assert_true(i == 12345);	/* untouched */
		fm_msg_unref(m);
	}
}

static void
test_parse_timestamp(void **state)
{
	static const struct {
		const char	*body;
		bool		 ok;
		double		 want;
	} cases[] = {
		{ "{\"timestamp\":1700000000}", true, 1700000000.0 },
		{ "{\"timestamp\":1700000000.25}", true, 1700000000.25 },
		{ "{\"timestamp\":-5}", true, -5.0 },
		{ "{\"timestamp\":0}", true, 0.0 },
		{ "{\"timestamp\":1E9}", true, 1e9 },
		{ "{\"timestamp\":18446744073709551616}", true,
		  18446744073709551616.0 },
		{ "{\"timestamp\":\"1700000000\"}", false, 0 },
		{ "{\"timestamp\":null}", false, 0 },
		{ "{\"timestamp\":[1]}", false, 0 },
		{ "{}", false, 0 },
	};
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct fm_msg *m = parse_s(cases[k].body);
		double ts = -1;

		if (fm_msg_timestamp(m, &ts) != cases[k].ok)
			fail_msg("%s: fm_msg_timestamp gave %d", cases[k].body,
			    !cases[k].ok);
		if (cases[k].ok)
			assert_true(ts == cases[k].want);
		fm_msg_unref(m);
	}
}

static void
test_parse_errors(void **state)
{
	static const struct {
		const char	*body;
		const char	*err;
	} cases[] = {
		{ "[]", "not a JSON object" },
		{ "\"x\"", "not a JSON object" },
		{ "1", "not a JSON object" },
		{ "null", "not a JSON object" },
		{ "", "Expecting value" },
		{ "{", "Expecting property name" },
		{ "{}{}", "Extra data" },
		{ "{\"a\":\"\xff\"}", "invalid UTF-8" },
		{ "{\"a\":01}", "Expecting ',' delimiter" },
	};
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct fm_msg *m = (struct fm_msg *)1;
		char err[FM_ERRLEN];

		assert_int_equal(fm_msg_parse(cases[k].body,
		    strlen(cases[k].body), NULL, &m, err), -1);
		assert_null(m);
		if (strstr(err, cases[k].err) == NULL)
			fail_msg("%s: error '%s', want '%s'", cases[k].body,
			    err, cases[k].err);
	}
}

/*
 * A duplicate key anywhere is refused by fm_msg_parse(), which every path
 * (hub, relay, tail, bridges both ways, replay) parses with: readers that
 * keep the first copy would act on what no signature covered.
 */
static void
test_parse_duplicate_keys(void **state)
{
	static const char *const bodies[] = {
		"{\"topic\":\"a\",\"topic\":\"b\"}",
		"{\"msg\":{\"action\":\"delete\"},\"topic\":\"t\",\"msg\":{}}",
		"{\"m\\u0073g\":1,\"msg\":2}",
		"{\"msg\":{\"a\":1,\"b\":2,\"a\":3}}",
		"{\"msg\":[{\"x\":1},{\"y\":[{\"z\":1,\"z\":1}]}]}",
		"{\"\":1,\"\":1}",
	};
	static const char *const keys[] = {
		"\"topic\"", "\"msg\"", "\"msg\"", "\"a\"", "\"z\"", "\"\"",
	};
	struct fm_msg *m;
	char err[FM_ERRLEN], why[FM_ERRLEN];
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(bodies) / sizeof(bodies[0]); k++) {
		m = (struct fm_msg *)1;
		assert_int_equal(fm_msg_parse(bodies[k], strlen(bodies[k]), NULL,
		    &m, err), -1);
		assert_null(m);
		if (strstr(err, "duplicate key ") == NULL ||
		    strstr(err, keys[k]) == NULL)
			fail_msg("%s: error '%s', want duplicate key %s",
			    bodies[k], err, keys[k]);
		/* a tool may still parse it, to say why it is invalid */
		assert_int_equal(msg_parse(bodies[k], strlen(bodies[k]), NULL,
		    MSG_KEEP_DUPLICATES, &m, why), 0);
		assert_true(msg_duplicate(m, why));
		assert_string_equal(why, err);
		assert_true(msg_duplicate(m, NULL));
		fm_msg_unref(m);
	}
	/* without duplicates: the flag is off, both ways */
	assert_int_equal(msg_parse("{\"a\":{\"a\":1}}", 13, NULL,
	    MSG_KEEP_DUPLICATES, &m, err), 0);
	assert_false(msg_duplicate(m, why));
	fm_msg_unref(m);
	/* a long key is cut in the reason, which stays one line */
	{
		struct buf b = BUF_INIT;
		int i;

		buf_adds(&b, "{\"");
		for (i = 0; i < 300; i++)
			buf_addc(&b, 'k');
		buf_adds(&b, "\\n\":1,\"");
		for (i = 0; i < 300; i++)
			buf_addc(&b, 'k');
		buf_adds(&b, "\\n\":2}");
		assert_int_equal(fm_msg_parse(b.data, b.len, NULL, &m, err), -1);
		assert_non_null(strstr(err, "duplicate key \"kkk"));
		assert_non_null(strstr(err, "..."));
		assert_null(strchr(err, '\n'));
		buf_free(&b);
	}
}

static void
test_parse_limits(void **state)
{
	struct fm_limits lim = { 10, 0 };
	struct fm_msg *m = NULL;
	char err[FM_ERRLEN], *big;
	size_t n;

	(void)state;
	/* exactly at the limit is fine, one more byte is not */
	assert_int_equal(fm_msg_parse("{\"a\":1234}", 10, &lim, &m, err), 0);
	fm_msg_unref(m);
	assert_int_equal(fm_msg_parse("{\"a\":12345}", 11, &lim, &m, err), -1);
	assert_null(m);
	assert_non_null(strstr(err, "too large"));
	assert_non_null(strstr(err, "11 bytes"));
	assert_non_null(strstr(err, "limit 10"));

	/* the default limit: 8 MiB */
	n = FM_DEFAULT_MAX_MESSAGE_BYTES + 1;
	big = malloc(n);
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	assert_int_equal(fm_msg_parse(big, n, NULL, &m, err), -1);
	assert_non_null(strstr(err, "limit 8388608"));
	lim.max_message_bytes = 0;
	assert_int_equal(fm_msg_parse(big, n, &lim, &m, err), -1);
	assert_int_equal(fm_msg_parse(big + 1, n - 1, NULL, &m, err), -1);
	assert_non_null(strstr(err, "Expecting value"));	/* not size */
	big[1] = '{';
	assert_int_equal(fm_msg_parse(big + 1, n - 1, NULL, &m, err), 0);
	fm_msg_unref(m);
	free(big);

	/* depth */
	lim.max_message_bytes = 0;
	lim.max_json_depth = 3;
	assert_int_equal(fm_msg_parse("{\"a\":[{}]}", 10, &lim, &m, err), 0);
	fm_msg_unref(m);
	assert_int_equal(fm_msg_parse("{\"a\":[{\"b\":[]}]}", 16, &lim, &m,
	    err), -1);
	assert_non_null(strstr(err, "nesting deeper than 3 levels"));
}

static void
test_refcount(void **state)
{
	struct fm_msg *m = parse_s("{\"topic\":\"t\"}");

	(void)state;
	assert_ptr_equal(fm_msg_ref(m), m);
	assert_ptr_equal(fm_msg_ref(m), m);
	fm_msg_unref(m);
	fm_msg_unref(m);
	assert_string_equal(fm_msg_topic(m), "t");	/* still alive */
	fm_msg_unref(m);
	fm_msg_unref(NULL);
}

/* ---- canonical text ----------------------------------------------------- */

static void
test_canonical(void **state)
{
	static const char body[] = "{\"topic\":\"t\",\"signature\":\"c2ln\\n\","
	    "\"certificate\":\"Y2VydA==\\n\",\"crypto\":\"x509\",\"msg\":"
	    "{\"signature\":1,\"certificate\":{\"x\":2}},\"i\":1}";
	struct fm_msg *m = parse_s(body);
	size_t len = 0;
	char *c;

	(void)state;
	c = fm_msg_canonical(m, false, &len);
	assert_string_equal(c, "{\"certificate\":\"Y2VydA==\\n\",\"crypto\":"
	    "\"x509\",\"i\":1,\"msg\":{\"certificate\":{\"x\":2},"
	    "\"signature\":1},\"signature\":\"c2ln\\n\",\"topic\":\"t\"}");
	assert_int_equal(len, strlen(c));
	free(c);
	/* without credentials: only the top-level ones go */
	c = fm_msg_canonical(m, true, NULL);
	assert_string_equal(c, "{\"crypto\":\"x509\",\"i\":1,\"msg\":"
	    "{\"certificate\":{\"x\":2},\"signature\":1},\"topic\":\"t\"}");
	free(c);
	fm_msg_unref(m);

	m = parse_s("{}");
	c = fm_msg_canonical(m, true, &len);
	assert_string_equal(c, "{}");
	assert_int_equal(len, 2);
	free(c);
	fm_msg_unref(m);
}

static void
test_member_json(void **state)
{
	struct fm_msg *m = parse_s("{\"msg\":{\"b\":[1.50,-0],\"a\":\"\\u00E9\"},"
	    "\"headers\":{\"x-h\":\"v\"},\"i\":12,\"n\":null,\"s\":\"str\"}");
	size_t len = 0;
	char *c;

	(void)state;
	c = fm_msg_member_json(m, "msg", &len);
	assert_string_equal(c, "{\"a\":\"\\u00e9\",\"b\":[1.5,0]}");
	assert_int_equal(len, strlen(c));
	free(c);
	c = fm_msg_member_json(m, "headers", NULL);
	assert_string_equal(c, "{\"x-h\":\"v\"}");
	free(c);
	c = fm_msg_member_json(m, "i", NULL);
	assert_string_equal(c, "12");
	free(c);
	c = fm_msg_member_json(m, "n", NULL);
	assert_string_equal(c, "null");
	free(c);
	c = fm_msg_member_json(m, "s", NULL);
	assert_string_equal(c, "\"str\"");
	free(c);
	assert_null(fm_msg_member_json(m, "absent", NULL));
	fm_msg_unref(m);
}

/* ---- topics and ids ----------------------------------------------------- */

static void
test_topic_build(void **state)
{
	static const struct {
		const char *prefix, *env, *mod, *topic, *want;
	} cases[] = {
		{ "org.fedoraproject", "prod", "bodhi", "update.request.testing",
		  "org.fedoraproject.prod.bodhi.update.request.testing" },
		{ "org.fedoraproject", "dev", "bodhi", NULL,
		  "org.fedoraproject.dev.bodhi.unspecified" },
		{ "org.fedoraproject", "dev", "bodhi", "",
		  "org.fedoraproject.dev.bodhi.unspecified" },
		/* the prefix test is on modname.topic, so a topic that starts
		 * with the prefix is still prefixed */
		{ "org.fedoraproject", "prod", "bodhi", "org.fedoraproject.x",
		  "org.fedoraproject.prod.bodhi.org.fedoraproject.x" },
		/* a modname that starts with it is not */
		{ "org.fedoraproject", "prod", "org.fedoraproject.stg.wiki", "y",
		  "org.fedoraproject.stg.wiki.y" },
		/* a plain string prefix test, no dot boundary */
		{ "org.fedoraproject", "prod", "org.fedoraprojectX", "y",
		  "org.fedoraprojectX.y" },
		/* ... on the joined string */
		{ "org.fedoraproject", "prod", "org", "fedoraproject.z",
		  "org.fedoraproject.z" },
		/* an empty prefix matches everything */
		{ "", "prod", "mod", "t", "mod.t" },
		{ "p", "", "m", "t", "p..m.t" },
		{ "org.fedoraproject", "prod", "bodhi", "\xc3\xa9t\xc3\xa9",
		  "org.fedoraproject.prod.bodhi.\xc3\xa9t\xc3\xa9" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *t = fm_topic_build(cases[i].prefix, cases[i].env,
		    cases[i].mod, cases[i].topic);

		assert_non_null(t);
		assert_string_equal(t, cases[i].want);
		free(t);
	}
}

static const char id_re[] = "^[0-9]{4}-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-"
    "[89ab][0-9a-f]{3}-[0-9a-f]{12}$";

static void
check_id(regex_t *re, const char *id)
{
	time_t now = time(NULL);
	struct tm tm;
	int year;

	if (regexec(re, id, 0, NULL, 0) != 0)
		fail_msg("msg_id %s does not match %s", id, id_re);
	assert_int_equal(strlen(id), FM_MSG_ID_LEN);
	localtime_r(&now, &tm);
	year = atoi(id);
	assert_true(year == tm.tm_year + 1900 || year == tm.tm_year + 1899);
}

static int
strptrcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_msg_id_new(void **state)
{
	char ids[500][FM_MSG_ID_LEN + 1], *sorted[500];
	regex_t re;
	size_t i;

	(void)state;
	assert_int_equal(regcomp(&re, id_re, REG_EXTENDED | REG_NOSUB), 0);
	for (i = 0; i < 500; i++) {
		assert_int_equal(fm_msg_id_new(ids[i]), 0);
		check_id(&re, ids[i]);
		sorted[i] = ids[i];
	}
	qsort(sorted, 500, sizeof(sorted[0]), strptrcmp);
	for (i = 1; i < 500; i++)
		assert_string_not_equal(sorted[i - 1], sorted[i]);
	regfree(&re);
}

/* ---- building ----------------------------------------------------------- */

static struct fm_msg *
build_ok(const struct fm_msg_fields *f)
{
	struct fm_msg *m = NULL;
	char err[FM_ERRLEN];

	if (fm_msg_build(f, NULL, &m, err) != 0)
		fail_msg("fm_msg_build: %s", err);
	assert_non_null(m);
	return m;
}

static void
test_build_basic(void **state)
{
	struct fm_msg_fields f = {
		.topic = "org.fedoraproject.dev.bodhi.update",
		.msg_json = "{ \"b\": [1, 2.50], \"a\": \"\\u00E9\" }",
		.msg_id = "2024-00000000-0000-4000-8000-000000000000",
		.i = 3,
		.timestamp = 1700000000,
		.username = "vecgen",
	};
	struct fm_msg *m = build_ok(&f);
	size_t len;
	const char *body = fm_msg_body(m, &len);
	char *c;
	int64_t i;
	double ts;

	(void)state;
	/* canonical: sorted keys, compact, ASCII */
	assert_string_equal(body, "{\"i\":3,\"msg\":{\"a\":\"\\u00e9\",\"b\":"
	    "[1,2.5]},\"msg_id\":\"2024-00000000-0000-4000-8000-000000000000\","
	    "\"timestamp\":1700000000,\"topic\":"
	    "\"org.fedoraproject.dev.bodhi.update\",\"username\":\"vecgen\"}");
	c = fm_msg_canonical(m, false, NULL);
	assert_string_equal(c, body);
	free(c);
	assert_string_equal(fm_msg_topic(m),
	    "org.fedoraproject.dev.bodhi.update");
	assert_string_equal(fm_msg_username(m), "vecgen");
	assert_null(fm_msg_crypto(m));
	assert_true(fm_msg_seq(m, &i) && i == 3);
	assert_true(fm_msg_timestamp(m, &ts) && ts == 1700000000.0);
	fm_msg_unref(m);

	/* a msg_len shorter than the text */
	f.msg_json = "[1,2]garbage";
	f.msg_len = 5;
	f.i = -1;
	m = build_ok(&f);
	c = fm_msg_member_json(m, "msg", NULL);
	assert_string_equal(c, "[1,2]");
	free(c);
	assert_true(fm_msg_seq(m, &i) && i == -1);
	fm_msg_unref(m);
}

static void
test_build_falsy_payloads(void **state)
{
	static const char *const falsy[] = { "null", "{}", "[]", "\"\"", "0",
	    "0.0", "-0.0", "false", "-0", " {} ", "0e0" };
	static const struct {
		const char *in, *want;
	} truthy[] = {
		{ "true", "true" }, { "1", "1" }, { "[0]", "[0]" },
		{ "\"0\"", "\"0\"" }, { "{\"a\":null}", "{\"a\":null}" },
		{ "NaN", "NaN" }, { "-1e-400", "{}" }, { "1e-400", "{}" },
		{ "\"x\"", "\"x\"" }, { "[[]]", "[[]]" },
	};
	struct fm_msg_fields f = { .topic = "t", .msg_id = "id", .i = 1,
	    .timestamp = 5, .username = "u" };
	struct fm_msg *m;
	size_t k;
	char *c;

	(void)state;
	m = build_ok(&f);		/* msg_json NULL */
	c = fm_msg_member_json(m, "msg", NULL);
	assert_string_equal(c, "{}");
	free(c);
	fm_msg_unref(m);
	for (k = 0; k < sizeof(falsy) / sizeof(falsy[0]); k++) {
		f.msg_json = falsy[k];
		m = build_ok(&f);
		c = fm_msg_member_json(m, "msg", NULL);
		if (strcmp(c, "{}") != 0)
			fail_msg("payload %s became %s, want {}", falsy[k], c);
		free(c);
		fm_msg_unref(m);
	}
	/* (1e-400 is the float 0.0, so falsy too) */
	for (k = 0; k < sizeof(truthy) / sizeof(truthy[0]); k++) {
		f.msg_json = truthy[k].in;
		m = build_ok(&f);
		c = fm_msg_member_json(m, "msg", NULL);
		if (strcmp(c, truthy[k].want) != 0)
			fail_msg("payload %s became %s, want %s", truthy[k].in,
			    c, truthy[k].want);
		free(c);
		fm_msg_unref(m);
	}
}

static void
test_build_headers(void **state)
{
	struct fm_msg_fields f = { .topic = "t", .msg_json = "{\"x\":1}",
	    .headers_json = "{\"z\":1,\"a\":{\"d\":2,\"c\":[]}}", .msg_id = "id",
	    .i = 2, .timestamp = 9, .username = "u" };
	struct fm_msg *m = build_ok(&f);
	char err[FM_ERRLEN];

	(void)state;
	assert_string_equal(fm_msg_body(m, NULL), "{\"headers\":{\"a\":{\"c\":[],"
	    "\"d\":2},\"z\":1},\"i\":2,\"msg\":{\"x\":1},\"msg_id\":\"id\","
	    "\"timestamp\":9,\"topic\":\"t\",\"username\":\"u\"}");
	fm_msg_unref(m);
	f.headers_json = "{}";
	m = build_ok(&f);
	assert_non_null(strstr(fm_msg_body(m, NULL), "\"headers\":{},"));
	fm_msg_unref(m);
	f.headers_json = "[1]";
	m = (struct fm_msg *)1;
	assert_int_equal(fm_msg_build(&f, NULL, &m, err), -1);
	assert_null(m);
	assert_non_null(strstr(err, "headers"));
	f.headers_json = "{";
	assert_int_equal(fm_msg_build(&f, NULL, &m, err), -1);
	assert_non_null(strstr(err, "Expecting property name"));
}

static void
test_build_generated_fields(void **state)
{
	struct fm_msg_fields f = { .topic = "t" };
	time_t before = time(NULL), after;
	struct fm_msg *m;
	regex_t re;
	double ts;
	int64_t i;

	(void)state;
	assert_int_equal(regcomp(&re, id_re, REG_EXTENDED | REG_NOSUB), 0);
	setenv("LOGNAME", "logname-user", 1);
	m = build_ok(&f);
	after = time(NULL);
	check_id(&re, fm_msg_id(m));
	assert_string_equal(fm_msg_username(m), "logname-user");
	assert_true(fm_msg_timestamp(m, &ts));
	assert_true(ts >= (double)before && ts <= (double)after);
	assert_true(fm_msg_seq(m, &i) && i == 0);
	fm_msg_unref(m);
	/* getpass.getuser() order: LOGNAME, USER, LNAME, USERNAME */
	unsetenv("LOGNAME");
	setenv("USER", "user-user", 1);
	m = build_ok(&f);
	assert_string_equal(fm_msg_username(m), "user-user");
	fm_msg_unref(m);
	setenv("LOGNAME", "", 1);	/* empty ones are skipped */
	m = build_ok(&f);
	assert_string_equal(fm_msg_username(m), "user-user");
	fm_msg_unref(m);
	regfree(&re);
}

static void
test_build_strings(void **state)
{
	struct fm_msg_fields f = { .topic = "a.\xc3\xa9.\"q\"\\\n\x01",
	    .msg_id = "id\x7f", .i = 1, .timestamp = 1,
	    .username = "\xf0\x9f\x98\x80" };
	struct fm_msg *m = build_ok(&f);
	struct fm_msg *bad = (struct fm_msg *)1;
	char err[FM_ERRLEN];

	(void)state;
	assert_string_equal(fm_msg_body(m, NULL), "{\"i\":1,\"msg\":{},"
	    "\"msg_id\":\"id\\u007f\",\"timestamp\":1,\"topic\":"
	    "\"a.\\u00e9.\\\"q\\\"\\\\\\n\\u0001\",\"username\":"
	    "\"\\ud83d\\ude00\"}");
	assert_string_equal(fm_msg_topic(m), f.topic);
	fm_msg_unref(m);

	/* invalid UTF-8 anywhere is refused */
	f.topic = "org.bad.\xff";
	assert_int_equal(fm_msg_build(&f, NULL, &bad, err), -1);
	assert_null(bad);
	assert_non_null(strstr(err, "topic"));
	assert_non_null(strstr(err, "invalid UTF-8"));
	f.topic = "org.bad.\xed\xa0\x80";	/* an encoded surrogate */
	assert_int_equal(fm_msg_build(&f, NULL, &bad, err), -1);
	assert_non_null(strstr(err, "invalid UTF-8"));
	f.topic = "ok";
	f.username = "\xc3";
	assert_int_equal(fm_msg_build(&f, NULL, &bad, err), -1);
	assert_non_null(strstr(err, "username"));
	f.username = "u";
	f.msg_id = "\xc0\x80";
	assert_int_equal(fm_msg_build(&f, NULL, &bad, err), -1);
	assert_non_null(strstr(err, "msg_id"));
	f.msg_id = "id";
	f.msg_json = "{\"a\":\"\xe2\x82\"}";
	assert_int_equal(fm_msg_build(&f, NULL, &bad, err), -1);
	assert_non_null(strstr(err, "invalid UTF-8"));
	f.msg_json = "{\"a\":1} x";
	assert_int_equal(fm_msg_build(&f, NULL, &bad, err), -1);
	assert_non_null(strstr(err, "Extra data"));
	/* empty or missing topic */
	f.msg_json = NULL;
	f.topic = "";
	assert_int_equal(fm_msg_build(&f, NULL, &bad, err), -1);
	assert_non_null(strstr(err, "topic"));
	f.topic = NULL;
	assert_int_equal(fm_msg_build(&f, NULL, &bad, err), -1);
}

static void
test_build_limits(void **state)
{
	struct fm_msg_fields f = { .topic = "t", .msg_json = "[[[[1]]]]",
	    .msg_id = "id", .i = 1, .timestamp = 1, .username = "u" };
	struct fm_limits lim = { 0, 4 };
	struct fm_msg *m = NULL;
	char err[FM_ERRLEN];

	(void)state;
	/* the payload alone has depth 4; in the envelope it is 5 */
	assert_int_equal(fm_msg_build(&f, &lim, &m, err), -1);
	assert_non_null(strstr(err, "nesting deeper than 4"));
	lim.max_json_depth = 5;
	assert_int_equal(fm_msg_build(&f, &lim, &m, err), 0);
	fm_msg_unref(m);
	lim.max_message_bytes = 50;
	assert_int_equal(fm_msg_build(&f, &lim, &m, err), -1);
	assert_non_null(strstr(err, "limit 50"));
}

/* ---- the vectors -------------------------------------------------------- */

/* A string member of a jsonl record as a malloc'ed NUL-terminated copy. */
static char *
rec_str(const struct jv *rec, const char *key, size_t *len)
{
	const struct jv *v = jv_get(rec, key);
	char *s;

	if (v == NULL || v->type != JV_STRING)
		return NULL;
	s = malloc(v->len + 1);
	assert_non_null(s);
	memcpy(s, v->u.str, v->len);
	s[v->len] = '\0';
	if (len)
		*len = v->len;
	return s;
}

/*
 * For every vector whose canonical text is that of its message, the
 * canonical JSON of the parsed wire body without credentials is that text.
 */
static void
test_vectors_canonical(void **state)
{
	char *data = tu_read_file(tu_data_path("vectors/signed.jsonl"), NULL);
	char *line, *save = NULL, err[FM_ERRLEN];
	size_t n = 0;

	(void)state;
	for (line = strtok_r(data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		struct jv_doc *doc = jv_parse(line, strlen(line), NULL, err);
		const struct jv *rec, *match;
		char *body, *canonical, *name, *got;
		size_t body_len;
		struct fm_msg *m;

		assert_non_null(doc);
		rec = jv_doc_root(doc);
		name = rec_str(rec, "name", NULL);
		body = rec_str(rec, "wire_body", &body_len);
		canonical = rec_str(rec, "canonical", NULL);
		match = jv_get(rec, "canonical_matches_message");
		assert_non_null(body);
		m = parse_ok(body, body_len);
		assert_memory_equal(fm_msg_body(m, NULL), body, body_len);
		if (match && match->type == JV_TRUE) {
			got = fm_msg_canonical(m, true, NULL);
			if (strcmp(got, canonical) != 0)
				fail_msg("vector %s: canonical differs", name);
			free(got);
			n++;
		}
		fm_msg_unref(m);
		free(name);
		free(body);
		free(canonical);
		jv_doc_free(doc);
	}
	free(data);
	assert_true(n >= 40);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_keeps_bytes),
		cmocka_unit_test(test_parse_body_with_nul),
		cmocka_unit_test(test_parse_accessors),
		cmocka_unit_test(test_parse_seq),
		cmocka_unit_test(test_parse_timestamp),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_duplicate_keys),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_refcount),
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_member_json),
		cmocka_unit_test(test_topic_build),
		cmocka_unit_test(test_msg_id_new),
		cmocka_unit_test(test_build_basic),
		cmocka_unit_test(test_build_falsy_payloads),
		cmocka_unit_test(test_build_headers),
		cmocka_unit_test(test_build_generated_fields),
		cmocka_unit_test(test_build_strings),
		cmocka_unit_test(test_build_limits),
		cmocka_unit_test(test_vectors_canonical),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
