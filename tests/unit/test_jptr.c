/*
 * JSON Pointers (jptr.c) and the JSON writer (jwrite.c): what plugin ABI
 * 1.1's accessors and builder stand on.  Pointer cases follow RFC 6901's
 * own examples (section 5); number conversions were checked against
 * /usr/bin/python3 (int(), float(), ==) when written.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/message.h>

#include "json.h"
#include "jptr.h"
#include "jwrite.h"

/* RFC 6901, section 5. */
static const char rfc[] =
    "{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2,"
    " \"e^f\": 3, \"g|h\": 4, \"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7,"
    " \"m~n\": 8}";

static struct jv_doc *
parse(const char *text, bool borrow)
{
	struct jv_parse_opts o = { 0, borrow };
	char err[FM_ERRLEN];
	struct jv_doc *d = jv_parse(text, strlen(text), &o, err);

	if (d == NULL)
		fail_msg("parse %s: %s", text, err);
	return d;
}

/* The integer at ptr, or fail. */
static int64_t
int_at(const struct jv *root, const char *ptr)
{
	const struct jv *v;
	int64_t n = -999;

	assert_int_equal(jptr_get(root, ptr, &v), JPTR_OK);
	assert_int_equal(jv_as_int64(v, &n), JPTR_OK);
	return n;
}

static void
test_rfc6901_examples(void **state)
{
	struct jv_doc *d = parse(rfc, true);
	const struct jv *root = jv_doc_root(d), *v;

	(void)state;
	assert_int_equal(jptr_get(root, "", &v), JPTR_OK);
	assert_ptr_equal(v, root);
	assert_int_equal(jptr_get(root, "/foo", &v), JPTR_OK);
	assert_int_equal(v->type, JV_ARRAY);
	assert_int_equal(jptr_get(root, "/foo/0", &v), JPTR_OK);
	assert_int_equal(v->len, 3);
	assert_memory_equal(v->u.str, "bar", 3);
	assert_int_equal(int_at(root, "/"), 0);
	assert_int_equal(int_at(root, "/a~1b"), 1);
	assert_int_equal(int_at(root, "/c%d"), 2);
	assert_int_equal(int_at(root, "/e^f"), 3);
	assert_int_equal(int_at(root, "/g|h"), 4);
	assert_int_equal(int_at(root, "/i\\j"), 5);
	assert_int_equal(int_at(root, "/k\"l"), 6);
	assert_int_equal(int_at(root, "/ "), 7);
	assert_int_equal(int_at(root, "/m~0n"), 8);
	jv_doc_free(d);
}

static void
test_absent_and_syntax(void **state)
{
	struct jv_doc *d = parse("{\"a\":{\"b\":[10,20]},\"s\":\"x\"}", true);
	const struct jv *root = jv_doc_root(d), *v;

	(void)state;
	assert_int_equal(jptr_get(root, "/a/b/1", &v), JPTR_OK);
	assert_int_equal(jptr_get(root, "/a/b/2", &v), JPTR_ABSENT);
	assert_int_equal(jptr_get(root, "/a/b/-", &v), JPTR_ABSENT);
	assert_int_equal(jptr_get(root, "/a/b/01", &v), JPTR_ABSENT);
	assert_int_equal(jptr_get(root, "/a/b/x", &v), JPTR_ABSENT);
	assert_int_equal(jptr_get(root, "/a/b/99999999999", &v), JPTR_ABSENT);
	assert_int_equal(jptr_get(root, "/a/c", &v), JPTR_ABSENT);
	assert_int_equal(jptr_get(root, "/s/0", &v), JPTR_ABSENT);
	assert_int_equal(jptr_get(root, "/a/", &v), JPTR_ABSENT);
	assert_int_equal(jptr_get(root, "a", &v), JPTR_SYNTAX);
	assert_int_equal(jptr_get(root, "/a~2", &v), JPTR_SYNTAX);
	assert_int_equal(jptr_get(root, "/a~", &v), JPTR_SYNTAX);
	assert_int_equal(jptr_get(root, NULL, &v), JPTR_SYNTAX);
	assert_int_equal(jptr_check("/ok~0~1"), JPTR_OK);
	jv_doc_free(d);
}

static void
test_escaped_and_long_keys(void **state)
{
	/* keys are compared after JSON unescaping; a token longer than the
	 * stack buffer still finds its member */
	char text[1200], ptr[1200];
	struct jv_doc *d;
	const struct jv *v;

	(void)state;
	memset(ptr, 0, sizeof(ptr));
	ptr[0] = '/';
	memset(ptr + 1, 'k', 600);
	snprintf(text, sizeof(text), "{\"m\\u0073g\":1,\"%s\":2}", ptr + 1);
	d = parse(text, true);
	assert_int_equal(int_at(jv_doc_root(d), "/msg"), 1);
	assert_int_equal(int_at(jv_doc_root(d), ptr), 2);
	ptr[300] = 'x';
	assert_int_equal(jptr_get(jv_doc_root(d), ptr, &v), JPTR_ABSENT);
	jv_doc_free(d);
}

static void
test_numbers(void **state)
{
	/* Python: int("9223372036854775807"), float(2**1024) overflows,
	 * float(12345678901234567890) == 1.2345678901234567e+19 */
	struct jv_doc *d = parse("[9223372036854775807,-9223372036854775808,"
	    "9223372036854775808,3.0,12345678901234567890,true,"
	    "1797693134862315907729305190789024733617976978942306572734300811"
	    "5773267580550096313270847732240753602112011387987139335765878976"
	    "8814416622492847430639474124377767893424865485276302219601246094"
	    "1194530829520850057688381506823424628814739131105408272371633505"
	    "1068606996745289491458662133568300318535684081869779950015049440"
	    "78409932349008385609216]", false);
	const struct jv *r = jv_doc_root(d);
	int64_t n;
	double x;

	(void)state;
	assert_int_equal(jv_as_int64(&r->u.items[0], &n), JPTR_OK);
	assert_true(n == INT64_MAX);
	assert_int_equal(jv_as_int64(&r->u.items[1], &n), JPTR_OK);
	assert_true(n == INT64_MIN);
	assert_int_equal(jv_as_int64(&r->u.items[2], &n), JPTR_RANGE);
	assert_int_equal(jv_as_int64(&r->u.items[3], &n), JPTR_TYPE);
	assert_int_equal(jv_as_double(&r->u.items[3], &x), JPTR_OK);
	assert_true(x == 3.0);
	assert_int_equal(jv_as_double(&r->u.items[4], &x), JPTR_OK);
	assert_true(x == 12345678901234567890.0);
	assert_int_equal(jv_as_int64(&r->u.items[5], &n), JPTR_TYPE);
	assert_int_equal(jv_as_double(&r->u.items[5], &x), JPTR_TYPE);
	assert_int_equal(jv_as_double(&r->u.items[6], &x), JPTR_RANGE);
	jv_doc_free(d);
}

static bool
equal(const char *a, const char *b)
{
	struct jv_doc *x = parse(a, true), *y = parse(b, false);
	bool eq = jv_equal(jv_doc_root(x), jv_doc_root(y));

	jv_doc_free(x);
	jv_doc_free(y);
	return eq;
}

static void
test_equal(void **state)
{
	(void)state;
	/* Python's == on json.loads() results, except that true != 1 */
	assert_true(equal("{\"b\":[1,2],\"a\":\"x\"}", "{\"a\":\"x\",\"b\":[1,2]}"));
	assert_true(equal("1", "1.0"));
	assert_true(equal("100000000000000000000", "1e20"));
	assert_false(equal("100000000000000000001", "1e20"));
	assert_false(equal("9007199254740993", "9007199254740992.0"));
	assert_true(equal("-0", "0.0"));
	assert_false(equal("NaN", "NaN"));
	assert_false(equal("true", "1"));
	assert_false(equal("[1]", "[1,2]"));
	assert_false(equal("{\"a\":1}", "{\"b\":1}"));
	assert_true(equal("\"a\\u0000b\"", "\"a\\u0000b\""));
	assert_false(equal("\"a\\u0000b\"", "\"a\""));
}

/* The writer's text, parsed back and re-emitted canonically. */
static void
check_written(struct jw *w, const char *want)
{
	char err[128];
	size_t len;
	const char *t = jw_finish(w, &len, err, sizeof(err));

	if (t == NULL)
		fail_msg("jw_finish: %s", err);
	assert_int_equal(len, strlen(want));
	assert_string_equal(t, want);
	jw_free(w);
}

static void
test_writer(void **state)
{
	struct jw *w = jw_new();
	struct jv_doc *d = parse("{\"z\":[1,{\"y\":null}]}", true);

	(void)state;
	assert_int_equal(jw_object_begin(w), 0);
	jw_key(w, "s", 1);
	jw_string(w, "a\"b\\c\n\x01\xc3\xa9", 9);
	jw_key(w, "n\0ul", 4);
	jw_int(w, INT64_MIN);
	jw_key(w, "f", 1);
	jw_double(w, 0.1);
	jw_key(w, "nan", 3);
	jw_double(w, NAN);
	jw_key(w, "a", 1);
	jw_array_begin(w);
	jw_bool(w, 1);
	jw_bool(w, 0);
	jw_null(w);
	jw_object_begin(w);
	jw_object_end(w);
	jw_array_end(w);
	jw_key(w, "copy", 4);
	jw_value(w, jv_doc_root(d));
	assert_int_equal(jw_object_end(w), 0);
	check_written(w, "{\"s\":\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\","
	    "\"n\\u0000ul\":-9223372036854775808,\"f\":0.1,\"nan\":NaN,"
	    "\"a\":[true,false,null,{}],\"copy\":{\"z\":[1,{\"y\":null}]}}");
	jv_doc_free(d);
}

/* Misuse: the first error sticks and is what jw_finish reports. */
static void
expect_error(struct jw *w, const char *want)
{
	char err[128];
	size_t len;

	assert_null(jw_finish(w, &len, err, sizeof(err)));
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\", wanted \"%s\"", err, want);
	jw_free(w);
}

static void
test_writer_misuse(void **state)
{
	struct jw *w;
	int i;

	(void)state;
	w = jw_new();
	jw_object_begin(w);
	assert_int_equal(jw_int(w, 1), -1);
	assert_int_equal(jw_key(w, "a", 1), -1);	/* sticks */
	expect_error(w, "without a key");

	w = jw_new();
	jw_array_begin(w);
	assert_int_equal(jw_key(w, "a", 1), -1);
	expect_error(w, "key \"a\" outside an object");

	w = jw_new();
	jw_array_begin(w);
	assert_int_equal(jw_object_end(w), -1);
	expect_error(w, "object end inside an array");

	w = jw_new();
	jw_object_begin(w);
	jw_key(w, "a", 1);
	assert_int_equal(jw_object_end(w), -1);
	expect_error(w, "after a key without a value");

	w = jw_new();
	jw_array_begin(w);
	expect_error(w, "1 container(s) left open");

	w = jw_new();
	expect_error(w, "nothing written");

	w = jw_new();
	jw_null(w);
	assert_int_equal(jw_null(w), -1);
	expect_error(w, "after the complete value");

	w = jw_new();
	assert_int_equal(jw_array_end(w), -1);
	expect_error(w, "no array open");

	w = jw_new();
	for (i = 0; i < 300; i++)
		jw_array_begin(w);
	expect_error(w, "nesting deeper than");

	w = jw_new();
	jw_object_begin(w);
	jw_key(w, "v", 1);
	assert_int_equal(jw_value(w, NULL), -1);
	expect_error(w, "NULL value");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc6901_examples),
		cmocka_unit_test(test_absent_and_syntax),
		cmocka_unit_test(test_escaped_and_long_keys),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_writer_misuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
