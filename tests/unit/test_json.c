/*
 * jv_parse() must accept and reject exactly what Python 3.11's
 * json.loads() does (on the UTF-8-decoded text), and keep what fedmsg's
 * signatures depend on.  Every expectation below was checked against
 * /usr/bin/python3 when it was written; canonical texts are
 * json.dumps(json.loads(x), sort_keys=True, separators=(',', ':')).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/message.h>

#include "buf.h"
#include "canon.h"
#include "json.h"
#include "testutil.h"

/* Parse text[0..len) with the given options; fails the test on error. */
static struct jv_doc *
parse_ok(const char *text, size_t len, const struct jv_parse_opts *o)
{
	char err[FM_ERRLEN];
	struct jv_doc *doc = jv_parse(text, len, o, err);

	if (doc == NULL)
		fail_msg("jv_parse(%.60s) failed: %s", text, err);
	return doc;
}

/* Canonical text of a doc's root, malloc'ed. */
static char *
canon_doc(const struct jv_doc *doc, size_t *len)
{
	struct buf b = BUF_INIT;
	char *s;

	canon_value(&b, jv_doc_root(doc));
	s = buf_steal(&b, len);
	assert_non_null(s);
	return s;
}

/* Parse (both borrow modes) and compare the canonical text. */
static void
check_canon(const char *text, size_t len, const char *want)
{
	struct jv_parse_opts borrow = { 0, true };
	struct jv_doc *d1 = parse_ok(text, len, NULL);
	struct jv_doc *d2 = parse_ok(text, len, &borrow);
	char *c1 = canon_doc(d1, NULL), *c2 = canon_doc(d2, NULL);

	if (strcmp(c1, want) != 0)
		fail_msg("input %.60s: canonical %s, want %s", text, c1, want);
	assert_string_equal(c1, c2);
	free(c1);
	free(c2);
	jv_doc_free(d1);
	jv_doc_free(d2);
}

/* Expect a parse failure whose message contains msg and "at byte off". */
static void
check_reject(const char *text, size_t len, const char *msg, size_t off)
{
	struct jv_parse_opts borrow = { 0, true };
	char err[FM_ERRLEN], err2[FM_ERRLEN];
	struct jv_doc *doc = jv_parse(text, len, NULL, err);

	if (doc != NULL) {
		jv_doc_free(doc);
		fail_msg("input %.60s (len %zu) was accepted", text, len);
	}
	if (strstr(err, msg) == NULL || !tu_has_offset(err, off))
		fail_msg("input %.60s: error '%s', want '%s' at byte %zu",
		    text, err, msg, off);
	/* borrow_input must not change the verdict or the reason */
	assert_null(jv_parse(text, len, &borrow, err2));
	assert_string_equal(err, err2);
}

/* ---- numbers ------------------------------------------------------------ */

static const struct {
	const char	*in;
	enum jv_type	 type;
	const char	*canon;
} accepted[] = {
	{ "-0", JV_INT, "0" },
	{ "0", JV_INT, "0" },
	{ "-0.0", JV_FLOAT, "-0.0" },
	{ "0.0", JV_FLOAT, "0.0" },
	{ "1E5", JV_FLOAT, "100000.0" },
	{ "1e5", JV_FLOAT, "100000.0" },
	{ "1E+2", JV_FLOAT, "100.0" },
	{ "1e-2", JV_FLOAT, "0.01" },
	{ "1.5e3", JV_FLOAT, "1500.0" },
	{ "0.1e1", JV_FLOAT, "1.0" },
	{ "1.50", JV_FLOAT, "1.5" },
	{ "1.0000000000000000001", JV_FLOAT, "1.0" },
	{ "1e400", JV_FLOAT, "Infinity" },
	{ "-1e400", JV_FLOAT, "-Infinity" },
	{ "1e-400", JV_FLOAT, "0.0" },
	{ "-1e-400", JV_FLOAT, "-0.0" },
	{ "0e0", JV_FLOAT, "0.0" },
	{ "0E-0", JV_FLOAT, "0.0" },
	{ "-0e5", JV_FLOAT, "-0.0" },
	{ "NaN", JV_FLOAT, "NaN" },
	{ "Infinity", JV_FLOAT, "Infinity" },
	{ "-Infinity", JV_FLOAT, "-Infinity" },
	{ "123456789012345678901234567890", JV_INT,
	  "123456789012345678901234567890" },
	{ "-123456789012345678901234567890", JV_INT,
	  "-123456789012345678901234567890" },
	{ "18446744073709551616", JV_INT, "18446744073709551616" },
	{ "-9223372036854775809", JV_INT, "-9223372036854775809" },
	{ "1.7976931348623157e308", JV_FLOAT, "1.7976931348623157e+308" },
	{ "1.7976931348623159e308", JV_FLOAT, "Infinity" },
	{ "4.9e-324", JV_FLOAT, "5e-324" },
	{ "2e-324", JV_FLOAT, "0.0" },
	{ "3e-324", JV_FLOAT, "5e-324" },
	{ "0.30000000000000004", JV_FLOAT, "0.30000000000000004" },
	{ "100", JV_INT, "100" },
	{ "-7", JV_INT, "-7" },
	{ "2.5E-3", JV_FLOAT, "0.0025" },
	{ "true", JV_TRUE, "true" },
	{ "false", JV_FALSE, "false" },
	{ "null", JV_NULL, "null" },
	{ "[1,-0,0.0,-0.0,1e2]", JV_ARRAY, "[1,0,0.0,-0.0,100.0]" },
	{ " \t\n\r1 \t\n\r", JV_INT, "1" },
	{ "[ 1 , 2 ]", JV_ARRAY, "[1,2]" },
	{ "{ \"a\" : 1 , \"b\" : [ ] }", JV_OBJECT, "{\"a\":1,\"b\":[]}" },
	{ "\n\n{}\n", JV_OBJECT, "{}" },
	{ "[]", JV_ARRAY, "[]" },
	{ "{}", JV_OBJECT, "{}" },
	{ "\"\"", JV_STRING, "\"\"" },
	{ "[[],{},[{}]]", JV_ARRAY, "[[],{},[{}]]" },
	/* Python's float() has no digit limit: this is inf, that is 0.0 */
	{ "[11111111111111111111111111111111111111111111111111111111111111"
	  "1111111111111111111111111111111111111111111e400]", JV_ARRAY,
	  "[Infinity]" },
};

static void
test_accepted(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		char err[FM_ERRLEN];
		struct jv_doc *doc = jv_parse(accepted[i].in,
		    strlen(accepted[i].in), NULL, err);

		if (doc == NULL)
			fail_msg("%s rejected: %s", accepted[i].in, err);
		if (jv_doc_root(doc)->type != accepted[i].type)
			fail_msg("%s: type %d, want %d", accepted[i].in,
			    (int)jv_doc_root(doc)->type, (int)accepted[i].type);
		jv_doc_free(doc);
		check_canon(accepted[i].in, strlen(accepted[i].in),
		    accepted[i].canon);
	}
}

/*
 * Rejections: Python's message (the C parser words a few differently) and
 * the offset.  Offsets are Python's char positions, which are byte
 * positions for these ASCII inputs, except where noted.
 */
static const struct {
	const char	*in;
	size_t		 len;
	const char	*msg;
	size_t		 off;
} rejected[] = {
	{ "1.", 2, "Extra data", 1 },
	{ ".5", 2, "Expecting value", 0 },
	{ "01", 2, "Extra data", 1 },
	{ "1e", 2, "Extra data", 1 },
	{ "1e+", 3, "Extra data", 1 },
	{ "1E-", 3, "Extra data", 1 },
	{ "-", 1, "Expecting value", 0 },
	{ "--1", 3, "Expecting value", 0 },
	{ "+1", 2, "Expecting value", 0 },
	{ "-NaN", 4, "Expecting value", 0 },
	{ "infinity", 8, "Expecting value", 0 },
	{ "nan", 3, "Expecting value", 0 },
	{ "NAN", 3, "Expecting value", 0 },
	{ "-01", 3, "Extra data", 2 },
	{ "00", 2, "Extra data", 1 },
	{ "1.e5", 4, "Extra data", 1 },
	{ "1.5e", 4, "Extra data", 3 },
	{ "[1.]", 4, "Expecting ',' delimiter", 2 },
	{ "[1e]", 4, "Expecting ',' delimiter", 2 },
	{ "[1.5e]", 6, "Expecting ',' delimiter", 4 },
	{ "[-]", 3, "Expecting value", 1 },
	{ "-Inf", 4, "Expecting value", 0 },
	{ "Infinit", 7, "Expecting value", 0 },
	{ "0x10", 4, "Extra data", 1 },
	{ "1_000", 5, "Extra data", 1 },
	{ "nul", 3, "Expecting value", 0 },
	{ "True", 4, "Expecting value", 0 },
	{ "truex", 5, "Extra data", 4 },
	{ "nullnull", 8, "Extra data", 4 },
	/* whitespace is exactly space, \t, \n, \r */
	{ "\f1", 2, "Expecting value", 0 },
	{ "\xc2\xa0" "1", 3, "Expecting value", 0 },
	{ "\v1", 2, "Expecting value", 0 },
	{ "1\f", 2, "Extra data", 1 },
	{ "\xef\xbb\xbf{}", 5, "Expecting value", 0 },	/* BOM */
	{ "", 0, "Expecting value", 0 },
	{ " ", 1, "Expecting value", 1 },
	{ "\n", 1, "Expecting value", 1 },
	{ "[1,]", 4, "Expecting value", 3 },
	{ "{\"a\":1,}", 8, "Expecting property name enclosed in double quotes",
	  7 },
	{ "[", 1, "Expecting value", 1 },
	{ "{", 1, "Expecting property name enclosed in double quotes", 1 },
	{ "{\"a\" 1}", 7, "Expecting ':' delimiter", 5 },
	{ "{1:1}", 5, "Expecting property name enclosed in double quotes", 1 },
	{ "true false", 10, "Extra data", 5 },
	{ "[1]x", 4, "Extra data", 3 },
	{ "[1 2]", 5, "Expecting ',' delimiter", 3 },
	{ "{\"a\":1 \"b\":2}", 13, "Expecting ',' delimiter", 7 },
	{ "]", 1, "Expecting value", 0 },
	{ "}", 1, "Expecting value", 0 },
	{ "{,}", 3, "Expecting property name enclosed in double quotes", 1 },
	{ "[,]", 3, "Expecting value", 1 },
	{ "{\"a\"}", 5, "Expecting ':' delimiter", 4 },
	{ "{\"a\":}", 6, "Expecting value", 5 },
	{ "{'a':1}", 7, "Expecting property name enclosed in double quotes",
	  1 },
	{ "\"abc", 4, "Unterminated string", 0 },
	{ "\"\\\"", 3, "Unterminated string", 0 },
	{ "\"\\", 2, "Unterminated string", 0 },
	{ "\"\\x\"", 4, "Invalid \\escape", 1 },
	{ "\"\\U0041\"", 8, "Invalid \\escape", 1 },
	/* Python reports these at the 'u' (2); the C parser at the '\' */
	{ "\"\\u12\"", 6, "Invalid \\uXXXX escape", 1 },
	{ "\"\\u12G4\"", 8, "Invalid \\uXXXX escape", 1 },
	{ "\"\\u 123\"", 8, "Invalid \\uXXXX escape", 1 },
	{ "\"\\u-123\"", 8, "Invalid \\uXXXX escape", 1 },
	{ "1\0", 2, "Extra data", 1 },
	{ "\0" "1", 2, "Expecting value", 0 },
	{ "[1,,2]", 6, "Expecting value", 3 },
	{ "{\"a\":1,,\"b\":2}", 14,
	  "Expecting property name enclosed in double quotes", 7 },
	{ "[1];", 4, "Extra data", 3 },
	{ "\"a\"b\"", 5, "Extra data", 3 },
	{ "[1,2", 4, "Expecting ',' delimiter", 4 },
	{ "{\"a\":1", 6, "Expecting ',' delimiter", 6 },
	{ "{\"a\"", 4, "Expecting ':' delimiter", 4 },
};

static void
test_rejected(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++)
		check_reject(rejected[i].in, rejected[i].len, rejected[i].msg,
		    rejected[i].off);
}

/* ---- objects ------------------------------------------------------------ */

static void
test_duplicate_keys(void **state)
{
	static const char many[] = "{\"b\":1,\"a\":2,\"b\":3,\"a\":4,\"c\":5,"
	    "\"a\":6}";
	struct jv_doc *doc;
	const struct jv *root, *v;

	(void)state;
	check_canon("{\"a\":1,\"b\":2,\"a\":3}", 19, "{\"a\":3,\"b\":2}");
	check_canon(many, strlen(many), "{\"a\":6,\"b\":3,\"c\":5}");
	/* already sorted input with a duplicate */
	check_canon("{\"a\":1,\"a\":2}", 13, "{\"a\":2}");
	check_canon("{\"a\":[1],\"a\":{}}", 16, "{\"a\":{}}");
	/* a duplicate with a different spelling of the same key */
	check_canon("{\"\\u0061\":1,\"a\":2,\"\\u0062\":3,\"b\":4}", 35,
	    "{\"a\":2,\"b\":4}");
	check_canon("{\"a\":1,\"\\u0061\":2}", 18, "{\"a\":2}");

	doc = parse_ok(many, strlen(many), NULL);
	root = jv_doc_root(doc);
	assert_int_equal(root->type, JV_OBJECT);
	assert_int_equal(root->len, 3);
	v = jv_get(root, "a");
	assert_non_null(v);
	assert_int_equal(v->type, JV_INT);
	assert_memory_equal(v->u.str, "6", 1);
	assert_null(jv_get(root, "d"));
	assert_null(jv_get(root, ""));
	jv_doc_free(doc);
}

/* Does text parse (both borrow modes) with a duplicate flagged as want? */
static void
check_dup(const char *text, const char *want_key, size_t want_at)
{
	struct jv_parse_opts borrow = { 0, true };
	const struct jv_parse_opts *modes[] = { NULL, &borrow };
	size_t i;

	for (i = 0; i < 2; i++) {
		struct jv_doc *doc = parse_ok(text, strlen(text), modes[i]);
		const char *key = NULL;
		size_t key_len = 0, at = 0;
		bool dup = jv_doc_duplicate(doc, &key, &key_len, &at);

		if (want_key == NULL && dup)
			fail_msg("%s: duplicate %.*s flagged", text, (int)key_len,
			    key);
		if (want_key != NULL && (!dup || key_len != strlen(want_key) ||
		    memcmp(key, want_key, key_len) != 0 || at != want_at))
			fail_msg("%s: want duplicate %s at %zu, got %s %.*s at %zu",
			    text, want_key, want_at, dup ? "yes" : "no",
			    (int)key_len, key ? key : "", at);
		/* the NULL out-pointers are optional */
		assert_int_equal(jv_doc_duplicate(doc, NULL, NULL, NULL), dup);
		jv_doc_free(doc);
	}
}

/* Duplicates are flagged at any depth, after decoding escapes. */
static void
test_duplicate_flagged(void **state)
{
	(void)state;
	check_dup("{\"a\":1,\"b\":2}", NULL, 0);
	check_dup("{\"b\":1,\"a\":2}", NULL, 0);	/* unsorted, no duplicate */
	check_dup("[{\"a\":1},{\"a\":2}]", NULL, 0);	/* siblings */
	check_dup("{\"a\":{\"a\":{\"a\":1}}}", NULL, 0);	/* nested */
	check_dup("{\"a\\u0000\":1,\"a\":2}", NULL, 0);	/* NUL differs */
	check_dup("{\"\\ud800\":1,\"\\udc00\":2}", NULL, 0);
	check_dup("{\"a\":1,\"a\":2}", "a", 0);
	check_dup("  {\"b\":1,\"a\":2,\"b\":3}", "b", 2);
	check_dup("{\"msg\":{},\"m\\u0073g\":{}}", "msg", 0);
	check_dup("{\"\\u006d\\u0073\\u0067\":1,\"msg\":2}", "msg", 0);
	/* a surrogate pair equals the raw UTF-8 of its code point */
	check_dup("{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}",
	    "\xf0\x9f\x98\x80", 0);
	/* lone surrogates compare as code points, as in Python */
	check_dup("{\"\\udc00\":1,\"\\uDC00\":2}", "\xed\xb0\x80", 0);
	/* inside msg, and in an array of objects */
	check_dup("{\"msg\":{\"action\":\"x\",\"action\":\"y\"},\"z\":1}",
	    "action", 7);
	check_dup("{\"msg\":[1,{\"k\":1},{\"k\":1,\"k\":2}]}", "k", 18);
	/* empty keys */
	check_dup("{\"\":1,\"\":2}", "", 0);
}

static void
test_key_order(void **state)
{
	static const struct {
		const char *in, *canon;
	} cases[] = {
		/* NUL inside keys: a prefix sorts first */
		{ "{\"a\\u0000b\":1,\"a\":2,\"a\\u0000\":3,\"\":4}",
		  "{\"\":4,\"a\":2,\"a\\u0000\":3,\"a\\u0000b\":1}" },
		/* code point order, not UTF-16: U+E000..FFFF before astral */
		{ "{\"\\ud83d\\ude00\":1,\"\\ue000\":2,\"\\uffff\":3,\"z\":4,"
		  "\"\\u00e9\":5,\"\\ud7ff\":6}",
		  "{\"z\":4,\"\\u00e9\":5,\"\\ud7ff\":6,\"\\ue000\":2,"
		  "\"\\uffff\":3,\"\\ud83d\\ude00\":1}" },
		/* the same with raw UTF-8 keys */
		{ "{\"\xf0\x9f\x98\x80\":1,\"\xee\x80\x80\":2,\"\xef\xbf\xbf\":3}",
		  "{\"\\ue000\":2,\"\\uffff\":3,\"\\ud83d\\ude00\":1}" },
		/* lone surrogates sort by code point too */
		{ "{\"\\udc00\":1,\"\\ud800\":2,\"\\ue000\":3,\"\\ud7ff\":4,"
		  "\"\\ud800\\udc00\":5}",
		  "{\"\\ud7ff\":4,\"\\ud800\":2,\"\\udc00\":1,\"\\ue000\":3,"
		  "\"\\ud800\\udc00\":5}" },
		/* not locale collation */
		{ "{\"a\":1,\"_\":2,\"B\":3,\"10\":4,\"9\":5,\"ab\":6,\"a \":7}",
		  "{\"10\":4,\"9\":5,\"B\":3,\"_\":2,\"a\":1,\"a \":7,"
		  "\"ab\":6}" },
		/* every level is sorted; arrays keep their order */
		{ "{\"x\":{\"b\":1,\"a\":{\"d\":1,\"c\":2}},\"w\":[{\"z\":1,"
		  "\"y\":2}],\"v\":[3,1,2]}",
		  "{\"v\":[3,1,2],\"w\":[{\"y\":2,\"z\":1}],\"x\":{\"a\":"
		  "{\"c\":2,\"d\":1},\"b\":1}}" },
		/* no normalisation: e + U+0301 sorts before U+00E9 */
		{ "{\"\xc3\xa9\":1,\"e\xcc\x81\":2}",
		  "{\"e\\u0301\":2,\"\\u00e9\":1}" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_canon(cases[i].in, strlen(cases[i].in), cases[i].canon);
}

static void
test_key_lookup_with_nul(void **state)
{
	static const char in[] = "{\"a\\u0000b\":1,\"a\":2,\"a\\u0000\":3}";
	struct jv_doc *doc = parse_ok(in, strlen(in), NULL);
	const struct jv *root = jv_doc_root(doc), *v;

	(void)state;
	assert_int_equal(root->len, 3);
	assert_int_equal(root->u.members[0].key_len, 1);
	assert_int_equal(root->u.members[1].key_len, 2);
	assert_int_equal(root->u.members[2].key_len, 3);
	assert_memory_equal(root->u.members[2].key, "a\0b", 3);
	v = jv_getn(root, "a\0b", 3);
	assert_non_null(v);
	assert_memory_equal(v->u.str, "1", 1);
	v = jv_getn(root, "a\0", 2);
	assert_non_null(v);
	assert_memory_equal(v->u.str, "3", 1);
	/* jv_get stops at the NUL */
	v = jv_get(root, "a");
	assert_non_null(v);
	assert_memory_equal(v->u.str, "2", 1);
	assert_null(jv_getn(root, "a\0c", 3));
	/* not an object */
	assert_null(jv_get(root->u.members[0].value.type ==
	    JV_INT ? &root->u.members[0].value : NULL, "a"));
	assert_null(jv_get(NULL, "a"));
	jv_doc_free(doc);
}

/* Many keys in reverse order plus duplicates: sorting and last-wins. */
static void
test_large_object(void **state)
{
	struct buf in = BUF_INIT, want = BUF_INIT;
	struct jv_doc *doc;
	char *got;
	int i;

	(void)state;
	buf_addc(&in, '{');
	for (i = 4999; i >= 0; i--)
		buf_printf(&in, "\"k%05d\":%d,", i, i);
	for (i = 0; i < 5000; i += 7)
		buf_printf(&in, "\"k%05d\":\"dup%d\",", i, i);
	buf_adds(&in, "\"k00001\":true}");
	buf_addc(&want, '{');
	for (i = 0; i < 5000; i++) {
		if (i)
			buf_addc(&want, ',');
		if (i == 1)
			buf_printf(&want, "\"k%05d\":true", i);
		else if (i % 7 == 0)
			buf_printf(&want, "\"k%05d\":\"dup%d\"", i, i);
		else
			buf_printf(&want, "\"k%05d\":%d", i, i);
	}
	buf_addc(&want, '}');
	assert_false(in.oom || want.oom);
	check_canon(in.data, in.len, want.data);
	doc = parse_ok(in.data, in.len, NULL);
	assert_int_equal(jv_doc_root(doc)->len, 5000);
	got = canon_doc(doc, NULL);
	assert_string_equal(got, want.data);
	free(got);
	jv_doc_free(doc);
	buf_free(&in);
	buf_free(&want);
}

/* ---- strings ------------------------------------------------------------ */

/* Parse a JSON string and compare its WTF-8 bytes. */
static void
check_string(const char *in, const char *bytes, size_t n)
{
	struct jv_doc *doc = parse_ok(in, strlen(in), NULL);
	const struct jv *v = jv_doc_root(doc);

	assert_int_equal(v->type, JV_STRING);
	if (v->len != n || memcmp(v->u.str, bytes, n) != 0)
		fail_msg("%s: got %u bytes", in, v->len);
	jv_doc_free(doc);
}

static void
test_lone_surrogates(void **state)
{
	(void)state;
	check_string("\"\\ud800\"", "\xed\xa0\x80", 3);
	check_string("\"\\udc00\"", "\xed\xb0\x80", 3);
	check_string("\"\\udfff\"", "\xed\xbf\xbf", 3);
	check_string("\"\\ud800x\"", "\xed\xa0\x80x", 4);
	check_string("\"\\ud800\\u0041\"", "\xed\xa0\x80" "A", 4);
	check_string("\"\\ud800\\n\"", "\xed\xa0\x80\n", 4);
	check_string("\"\\ud800\\udc00\"", "\xf0\x90\x80\x80", 4);
	check_string("\"\\uD83D\\uDE00\"", "\xf0\x9f\x98\x80", 4);
	check_string("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf", 4);
	check_string("\"\\udc00\\ud800\"", "\xed\xb0\x80\xed\xa0\x80", 6);
	check_string("\"\\ud800\\ud800\\udc00\"",
	    "\xed\xa0\x80\xf0\x90\x80\x80", 7);
	/* high followed by a raw (unescaped) character or the end */
	check_string("\"\\ud83d\xc3\xa9\"", "\xed\xa0\xbd\xc3\xa9", 5);
}

/* A high surrogate followed by a broken or cut \u escape. */
static void
test_surrogate_bad_tail(void **state)
{
	(void)state;
	check_reject("\"\\ud83d\\u12\"", 12, "Invalid \\uXXXX escape", 7);
	check_reject("\"\\ud83d\\", 8, "Unterminated string", 0);
}

static void
test_lone_surrogates_canonical(void **state)
{
	static const char arr[] = "[\"\\ud800\",\"\\udc00\",\"\\ud800x\","
	    "\"\\ud800\\u0041\",\"\\ud800\\udc00\",\"\\uD83D\\uDE00\","
	    "\"\\udbff\\udfff\",\"\\udc00\\ud800\",\"\\ud800\\ud800\\udc00\","
	    "\"\\ud83d\"]";

	(void)state;
	check_canon(arr, strlen(arr), "[\"\\ud800\",\"\\udc00\",\"\\ud800x\","
	    "\"\\ud800A\",\"\\ud800\\udc00\",\"\\ud83d\\ude00\","
	    "\"\\udbff\\udfff\",\"\\udc00\\ud800\",\"\\ud800\\ud800\\udc00\","
	    "\"\\ud83d\"]");
}

static void
test_escapes(void **state)
{
	static const char in[] = "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f"
	    "\\u007f\\u0080\\u00ff\\u0100\\u07ff\\u0800\\uabcd\\uABCD\\ufeff"
	    "\\uffff\"";

	(void)state;
	check_canon(in, strlen(in), "\"\\\"\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f"
	    "\\u007f\\u0080\\u00ff\\u0100\\u07ff\\u0800\\uabcd\\uabcd\\ufeff"
	    "\\uffff\"");
	check_string("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8);
	check_string("\"a\\u0000b\"", "a\0b", 3);
	check_string("\"\\u0000\"", "\0", 1);
	check_string("\"\\u00E9\\u00e9\"", "\xc3\xa9\xc3\xa9", 4);
	check_string("\"\\u0041\\u07FF\\u0800\\uFFFF\"",
	    "A\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 9);
	/* raw DEL and raw non-ASCII are fine */
	check_string("\"\x7f\"", "\x7f", 1);
	check_string("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
	    "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
}

/*
 * The parser and the canonical writer skip runs of plain ASCII eight bytes
 * at a time (ascii8.h): a byte that needs a look is still seen at every
 * offset of a word and next to word boundaries.
 */
static void
test_string_word_runs(void **state)
{
	static const char a20[] = "aaaaaaaaaaaaaaaaaaaa";
	static const struct {
		const char	*in, *canon;
	} sp[] = {
		{ "\\n", "\\n" }, { "\\\"", "\\\"" }, { "\\\\", "\\\\" },
		{ "\xc3\xa9", "\\u00e9" }, { "\x7f", "\\u007f" },
		{ "\\u0001", "\\u0001" }, { "~", "~" }, { " ", " " },
		{ "\xf0\x9f\x98\x80", "\\ud83d\\ude00" },
	};
	char text[96], want[96];
	size_t i, n;
	int k;

	(void)state;
	for (i = 0; i < sizeof(sp) / sizeof(sp[0]); i++)
		for (k = 0; k <= 20; k++) {
			n = (size_t)snprintf(text, sizeof(text), "[\"%.*s%s%.*s\"]",
			    k, a20, sp[i].in, 20 - k, a20);
			snprintf(want, sizeof(want), "[\"%.*s%s%.*s\"]", k, a20,
			    sp[i].canon, 20 - k, a20);
			check_canon(text, n, want);
		}
	for (k = 0; k <= 20; k++) {
		n = (size_t)snprintf(text, sizeof(text), "[\"%.*s\x01%.*s\"]",
		    k, a20, 20 - k, a20);
		check_reject(text, n, "Invalid control character",
		    (size_t)k + 2);
		n = (size_t)snprintf(text, sizeof(text), "[\"%.*s\xff%.*s\"]",
		    k, a20, 20 - k, a20);
		check_reject(text, n, "invalid UTF-8", (size_t)k + 2);
		/* unterminated, the end inside a word */
		n = (size_t)snprintf(text, sizeof(text), "[\"%.*s", k, a20);
		check_reject(text, n, "Unterminated string", 1);
	}
}

/*
 * Escaped strings are decoded 16 bytes a step up to each backslash: runs
 * of every length between escapes (a PEM certificate has one every 64
 * bytes) come out whole, and the last bytes too.
 */
static void
test_decode_runs(void **state)
{
	struct buf in = BUF_INIT, want = BUF_INIT;
	struct jv_doc *doc;
	const struct jv *v;
	int run, line, i;

	(void)state;
	for (run = 0; run <= 40; run++) {
		in.len = want.len = 0;
		buf_addc(&in, '"');
		for (line = 0; line < 5; line++) {
			for (i = 0; i < run; i++) {
				buf_addc(&in, (char)('A' + (line * 7 + i) % 26));
				buf_addc(&want, (char)('A' + (line * 7 + i) % 26));
			}
			buf_add(&in, line % 2 ? "\\n" : "\\u00e9", line % 2 ?
			    2 : 6);
			buf_add(&want, line % 2 ? "\n" : "\xc3\xa9", line % 2 ?
			    1 : 2);
		}
		for (i = 0; i < run; i++) {
			buf_addc(&in, 'z');
			buf_addc(&want, 'z');
		}
		buf_addc(&in, '"');
		doc = parse_ok(in.data, in.len, NULL);
		v = jv_doc_root(doc);
		assert_int_equal(v->type, JV_STRING);
		if (v->len != want.len || memcmp(v->u.str, want.data,
		    want.len) != 0)
			fail_msg("run %d: decoded %u bytes, want %zu", run,
			    v->len, want.len);
		assert_int_equal(v->u.str[v->len], '\0');
		jv_doc_free(doc);
	}
	buf_free(&in);
	buf_free(&want);
}

/*
 * Long escaped strings, decoded in one pass into the arena's tail, which
 * they outgrow: escapes and UTF-8 sequences of every kind at every offset
 * from the bound of a bulk copy, with more input after the string (so the
 * bound is the room left, not the end), borrowed or not.
 */
static void
test_decode_long(void **state)
{
	static const struct {
		const char *in, *out;
	} piece[] = {
		{ "\\n", "\n" }, { "\\\"", "\"" }, { "\\\\", "\\" },
		{ "\\/", "/" }, { "\\u00e9", "\xc3\xa9" },
		{ "\\ud83d\\ude00", "\xf0\x9f\x98\x80" }, { "\xc3\xa9", "\xc3\xa9" },
		{ "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" }, { "\x7f", "\x7f" },
		{ "\\udc00", "\xed\xb0\x80" },
	};
	struct jv_parse_opts borrow = { 0, true };
	struct buf in = BUF_INIT, want = BUF_INIT;
	uint32_t seed = 7;
	size_t target, k;
	int b;

	(void)state;
	for (target = 100; target < 40000; target = target * 3 / 2)
		for (b = 0; b < 2; b++) {
			struct jv_doc *doc;
			const struct jv *v;

			in.len = want.len = 0;
			buf_add(&in, "[\"", 2);
			/* a plain head, up to 5 KB, before the first escape */
			for (k = 0; k < target * 37 % 5000 % (target / 2); k++) {
				buf_addc(&in, 'h');
				buf_addc(&want, 'h');
			}
			while (want.len < target) {
				size_t run, i = (seed >> 16) % 10;

				seed = seed * 1103515245u + 12345u;
				run = (seed >> 16) % 40;
				seed = seed * 1103515245u + 12345u;
				for (k = 0; k < run; k++) {
					buf_addc(&in, (char)('a' + k % 26));
					buf_addc(&want, (char)('a' + k % 26));
				}
				buf_add(&in, piece[i].in, strlen(piece[i].in));
				buf_add(&want, piece[i].out, strlen(piece[i].out));
			}
			buf_add(&in, "\",\"", 3);
			for (k = 0; k < 3 * target; k++)
				buf_addc(&in, 't');
			buf_add(&in, "\"]", 2);
			doc = parse_ok(in.data, in.len, b ? &borrow : NULL);
			v = jv_doc_root(doc);
			assert_int_equal(v->type, JV_ARRAY);
			v = &v->u.items[0];
			if (v->len != want.len || memcmp(v->u.str, want.data,
			    want.len) != 0 || v->u.str[v->len] != '\0')
				fail_msg("%zu bytes: decoded %u bytes, want %zu",
				    target, v->len, want.len);
			assert_false(v->plain);
			jv_doc_free(doc);
		}
	buf_free(&in);
	buf_free(&want);
}

/*
 * Base64-like fields: runs of one length between escaped newlines (the
 * decoder tries each next line as long as the last), the last one shorter,
 * with an odd byte or escape put at every place of one line, or a control
 * character that must be refused where it is.
 */
static void
test_decode_lines(void **state)
{
	static const size_t lens[] = { 15, 16, 17, 31, 64, 76, 255, 256, 257 };
	static const struct {
		const char *in, *out;
	} odd[] = { { "", "" }, { "\x7f", "\x7f" }, { "\xc3\xa9", "\xc3\xa9" },
	    { "\\\"", "\"" }, { "\\t", "\t" }, { "\\n", "\n" },
	    { "\\u0041", "A" } };
	struct jv_parse_opts borrow = { 0, true };
	struct buf in = BUF_INIT, want = BUF_INIT;
	size_t li, k, at, line, i;
	int b;

	(void)state;
	/* b: borrowed or not; and the odd piece inserted, or in place of as
	 * many bytes (a line of the same length holding it) */
	for (li = 0; li < sizeof(lens) / sizeof(lens[0]); li++)
		for (k = 0; k < sizeof(odd) / sizeof(odd[0]); k++)
			for (at = 0; at <= lens[li]; at += k ? 1 : 1000)
				for (b = 0; b < 4; b++) {
					struct jv_doc *doc;
					const struct jv *v;
					size_t skip = 0;

					in.len = want.len = 0;
					buf_add(&in, "[\"", 2);
					for (line = 0; line < 5; line++) {
						for (i = 0; i < (line == 4 ?
						    lens[li] / 2 : lens[li]); i++) {
							char c = (char)('A' +
							    (line + i) % 26);

							if (line == 2 && i == at) {
								buf_adds(&in,
								    odd[k].in);
								buf_adds(&want,
								    odd[k].out);
								if (b >= 2)
									skip = strlen(
									    odd[k].in);
							}
							if (skip) {
								skip--;
								continue;
							}
							buf_addc(&in, c);
							buf_addc(&want, c);
						}
						if (line < 4) {
							buf_add(&in, "\\n", 2);
							buf_addc(&want, '\n');
						}
					}
					buf_add(&in, "\",1]", 4);
					doc = parse_ok(in.data, in.len,
					    b % 2 ? &borrow : NULL);
					v = &jv_doc_root(doc)->u.items[0];
					if (v->len != want.len ||
					    memcmp(v->u.str, want.data,
					    want.len) != 0)
						fail_msg("line %zu, odd %zu at %zu: "
						    "decoded %u bytes, want %zu",
						    lens[li], k, at, v->len,
						    want.len);
					jv_doc_free(doc);
				}
	/* a control character in a line like the last: refused there */
	for (at = 0; at < 76; at++) {
		char text[256];
		size_t n = 0;

		text[n++] = '"';
		for (line = 0; line < 2; line++) {
			for (i = 0; i < 76; i++)
				text[n++] = line == 1 && i == at ? '\x01' : 'Q';
			text[n++] = '\\';
			text[n++] = 'n';
		}
		text[n++] = '"';
		check_reject(text, n, "Invalid control character", 1 + 78 + at);
	}
	buf_free(&in);
	buf_free(&want);
}

/* One pass reports a string's errors in the order of its text, as Python. */
static void
test_string_error_order(void **state)
{
	(void)state;
	check_reject("\"\\x\x01\"", 5, "Invalid \\escape", 1);
	check_reject("\"\\x\\", 4, "Invalid \\escape", 1);
	check_reject("\"ab\\nc\x01\"", 8, "Invalid control character", 6);
	check_reject("\"ab\\nc", 6, "Unterminated string", 0);
	check_reject("\"ab\\n\xff\"", 7, "invalid UTF-8", 5);
	check_reject("\"ab\\n\\", 6, "Unterminated string", 0);
}

/* Parse {"S":"S"} for S = head, odd, tail; check the plain flags and text. */
static void
check_short(const char *head, size_t at, const char *odd, const char *tail,
    const struct jv_parse_opts *opts, bool plain, size_t want_len)
{
	char text[160];
	size_t n = (size_t)snprintf(text, sizeof(text), "{\"%.*s%s%s\":"
	    "\"%.*s%s%s\"}", (int)at, head, odd, tail, (int)at, head, odd,
	    tail);
	struct jv_doc *doc = parse_ok(text, n, opts);
	const struct jv_member *m = &jv_doc_root(doc)->u.members[0];

	assert_int_equal(jv_doc_root(doc)->len, 1);
	if (m->key_plain != plain || m->value.plain != plain)
		fail_msg("%s: plain %d/%d, want %d", text, m->key_plain,
		    m->value.plain, plain);
	assert_int_equal(m->key_len, want_len);
	assert_int_equal(m->value.len, want_len);
	assert_memory_equal(m->key, m->value.u.str, want_len);
	jv_doc_free(doc);
}

/*
 * Strings of every length around the 16 bytes the inline path looks at,
 * as keys and values, borrowed or not, with and without a byte at each
 * place that makes them not plain.
 */
static void
test_short_strings(void **state)
{
	static const struct {
		const char *text;
		size_t decoded;
	} odd[] = { { "", 0 }, { "\x7f", 1 }, { "\xc3\xa9", 2 }, { "\\n", 1 },
	    { "\\\"", 1 } };
	struct jv_parse_opts borrow = { 0, true };
	char body[32];
	size_t len, k, at;

	(void)state;
	for (len = 0; len <= 20; len++) {
		for (at = 0; at < len; at++)
			body[at] = (char)('a' + at % 26);
		body[len] = '\0';
		for (k = 0; k < sizeof(odd) / sizeof(odd[0]); k++)
			for (at = 0; at <= len; at++) {
				check_short(body, at, odd[k].text, body + at,
				    NULL, k == 0, len + odd[k].decoded);
				check_short(body, at, odd[k].text, body + at,
				    &borrow, k == 0, len + odd[k].decoded);
			}
	}
}

/* The value a float lexeme parses to, bit for bit what strtod gives. */
static void
check_float(const char *lexeme)
{
	struct jv_doc *doc = parse_ok(lexeme, strlen(lexeme), NULL);
	const struct jv *v = jv_doc_root(doc);
	double want = strtod(lexeme, NULL);

	assert_int_equal(v->type, JV_FLOAT);
	if (memcmp(&v->u.num, &want, sizeof(want)) != 0)
		fail_msg("%s: parsed %.17g, strtod %.17g", lexeme, v->u.num,
		    want);
	jv_doc_free(doc);
}

/*
 * Floats with few digits and a small exponent skip strtod (one exact
 * multiplication or division); at and past the edges of that path, and
 * for random lexemes, the value is still strtod's.
 */
static void
test_float_fast_path(void **state)
{
	static const char *const edges[] = {
		"0.0", "-0.0", "0.125", "-0.125", "1717171717.123456",
		"9007199254740992.0", "9007199254740993.0",
		"9007199254740991.5", "1e22", "1e23", "1.5e-22", "1e-23",
		"123456789012345678.9", "1234567890123456789.0",
		"0.000000000000000000000000000001", "0.1", "0.2", "0.3",
		"2.5E-3", "5e+2", "-7E-0", "4.35", "1.7976931348623157e308",
		"4.9e-324", "0e999", "-0.0e-5", "0.00000000000000000001e20",
	};
	char lex[64];
	unsigned seed = 12345;
	size_t i;
	int n, d, k;

	(void)state;
	for (i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		check_float(edges[i]);
	for (n = 0; n < 20000; n++) {
		int digits = 1 + (int)((seed = seed * 1103515245u + 12345u) >>
		    16) % 20;
		int point = (int)((seed = seed * 1103515245u + 12345u) >> 16) %
		    digits;
		char *o = lex;

		if (n & 1)
			*o++ = '-';
		for (d = 0; d < digits; d++) {
			seed = seed * 1103515245u + 12345u;
			*o++ = (char)('0' + (d == 0 && point > 0 ? 1 + (seed >>
			    16) % 9 : (seed >> 16) % 10));
			if (d == point)
				*o++ = '.';
		}
		if (o[-1] == '.')
			*o++ = '0';
		seed = seed * 1103515245u + 12345u;
		k = (int)((seed >> 16) % 61) - 30;
		if (n % 3 == 0)
			o += sprintf(o, "e%d", k);
		*o = '\0';
		check_float(lex);
	}
}

static void
test_control_chars(void **state)
{
	char in[8], msg[64];
	int c;

	(void)state;
	for (c = 0; c < 0x20; c++) {
		in[0] = '"';
		in[1] = 'a';
		in[2] = (char)c;
		in[3] = '"';
		snprintf(msg, sizeof(msg), "Invalid control character");
		check_reject(in, 4, msg, 2);
		/* as a key too */
		memcpy(in, "{\"", 2);
		in[2] = (char)c;
		memcpy(in + 3, "\":1}", 4);
		check_reject(in, 7, msg, 2);
	}
	/* escaped, they are fine */
	check_canon("\"\\u0001\\u001F\"", 14, "\"\\u0001\\u001f\"");
}

static void
test_invalid_utf8(void **state)
{
	static const struct {
		const char	*in;
		size_t		 len, off;
	} bad[] = {
		{ "\"\xc0\x80\"", 4, 1 },		/* overlong NUL */
		{ "\"\xc1\xbf\"", 4, 1 },		/* overlong */
		{ "\"\xe0\x80\x80\"", 5, 1 },		/* overlong */
		{ "\"\xe0\x9f\xbf\"", 5, 1 },		/* overlong */
		{ "\"\xf0\x80\x80\x80\"", 6, 1 },	/* overlong */
		{ "\"\xf0\x8f\xbf\xbf\"", 6, 1 },	/* overlong */
		{ "\"\xed\xa0\x80\"", 5, 1 },		/* U+D800 encoded */
		{ "\"\xed\xbf\xbf\"", 5, 1 },		/* U+DFFF encoded */
		{ "\"\xed\xa0\xbd\xed\xb8\x80\"", 8, 1 },	/* CESU-8 pair */
		{ "\"\xf4\x90\x80\x80\"", 6, 1 },	/* > U+10FFFF */
		{ "\"\xf5\x80\x80\x80\"", 6, 1 },
		{ "\"\xf8\x88\x80\x80\x80\"", 7, 1 },
		{ "\"\xfe\"", 3, 1 },
		{ "\"\xff\"", 3, 1 },
		{ "\"\x80\"", 3, 1 },			/* lone continuation */
		{ "\"ab\xbf\"", 5, 3 },
		{ "\"\xc3\"", 3, 1 },			/* truncated */
		{ "\"\xc3" "A\"", 4, 1 },
		{ "\"\xe2\x82\"", 4, 1 },
		{ "\"\xe2\x82" "A\"", 5, 1 },
		{ "\"\xf0\x9f\x98\"", 5, 1 },
		{ "\"\xf0\x9f\x98" "A\"", 6, 1 },
		{ "\"\xe2\x82", 3, 1 },		/* at the end of input */
		{ "\"\xf0\x9f", 3, 1 },
		{ "\"\xc3", 2, 1 },
		{ "{\"k\xff\":1}", 7, 3 },		/* in a key */
		{ "[\"ok\",\"\xc3\xa9\xc3\"]", 12, 9 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_reject(bad[i].in, bad[i].len, "invalid UTF-8", bad[i].off);
}

static void
test_valid_utf8_boundaries(void **state)
{
	static const struct {
		const char *in, *canon;
	} ok[] = {
		{ "\"\xc2\x80\"", "\"\\u0080\"" },
		{ "\"\xdf\xbf\"", "\"\\u07ff\"" },
		{ "\"\xe0\xa0\x80\"", "\"\\u0800\"" },
		{ "\"\xed\x9f\xbf\"", "\"\\ud7ff\"" },
		{ "\"\xee\x80\x80\"", "\"\\ue000\"" },
		{ "\"\xef\xbf\xbf\"", "\"\\uffff\"" },
		{ "\"\xf0\x90\x80\x80\"", "\"\\ud800\\udc00\"" },
		{ "\"\xf4\x8f\xbf\xbf\"", "\"\\udbff\\udfff\"" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		check_canon(ok[i].in, strlen(ok[i].in), ok[i].canon);
}

/* ---- limits ------------------------------------------------------------- */

static char *
nested(size_t depth, const char *open, const char *close, const char *mid)
{
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < depth; i++)
		buf_adds(&b, open);
	buf_adds(&b, mid);
	for (i = 0; i < depth; i++)
		buf_adds(&b, close);
	assert_false(b.oom);
	return buf_steal(&b, NULL);
}

static void
test_depth(void **state)
{
	struct jv_parse_opts o = { 0, false };
	char err[FM_ERRLEN], *s;
	struct jv_doc *doc;

	(void)state;
	s = nested(1000, "[", "]", "1");
	jv_doc_free(parse_ok(s, strlen(s), NULL));
	free(s);
	s = nested(1001, "[", "]", "1");
	check_reject(s, strlen(s), "nesting deeper than 1000 levels", 1000);
	free(s);
	s = nested(1000, "{\"a\":", "}", "{}");	/* 1001 levels */
	check_reject(s, strlen(s), "nesting deeper than 1000 levels", 5000);
	free(s);
	s = nested(999, "{\"a\":", "}", "[]");	/* 1000 levels */
	jv_doc_free(parse_ok(s, strlen(s), NULL));
	free(s);

	/* custom limits */
	o.max_depth = 5;
	s = nested(5, "[", "]", "");
	jv_doc_free(parse_ok(s, strlen(s), &o));
	free(s);
	s = nested(6, "[", "]", "");
	assert_null(jv_parse(s, strlen(s), &o, err));
	assert_non_null(strstr(err, "nesting deeper than 5 levels"));
	assert_true(tu_has_offset(err, 5));
	free(s);
	o.max_depth = 1;
	jv_doc_free(parse_ok("[1,2]", 5, &o));
	jv_doc_free(parse_ok("{\"a\":1}", 7, &o));
	jv_doc_free(parse_ok("1", 1, &o));
	assert_null(jv_parse("[[]]", 4, &o, err));
	assert_null(jv_parse("[{}]", 4, &o, err));
	/* siblings do not add up */
	o.max_depth = 2;
	jv_doc_free(parse_ok("[[],[],{\"a\":1}]", 15, &o));
	doc = jv_parse("[[],[[]]]", 9, &o, err);
	assert_null(doc);
	assert_true(tu_has_offset(err, 5));
}

static void
test_int_digits(void **state)
{
	char *s = malloc(FM_MAX_INT_DIGITS + 8), err[FM_ERRLEN], *c;
	struct jv_doc *doc;
	size_t i;

	(void)state;
	assert_int_equal(FM_MAX_INT_DIGITS, 4300);
	assert_non_null(s);
	s[0] = '7';
	for (i = 1; i < FM_MAX_INT_DIGITS; i++)
		s[i] = (char)('0' + i % 10);
	doc = parse_ok(s, FM_MAX_INT_DIGITS, NULL);
	assert_int_equal(jv_doc_root(doc)->type, JV_INT);
	c = canon_doc(doc, NULL);
	assert_int_equal(strlen(c), FM_MAX_INT_DIGITS);
	assert_memory_equal(c, s, FM_MAX_INT_DIGITS);
	free(c);
	jv_doc_free(doc);
	s[FM_MAX_INT_DIGITS] = '1';
	assert_null(jv_parse(s, FM_MAX_INT_DIGITS + 1, NULL, err));
	assert_non_null(strstr(err, "4301 digits"));
	assert_non_null(strstr(err, "4300"));
	assert_true(tu_has_offset(err, 0));
	/* the sign does not count */
	memmove(s + 1, s, FM_MAX_INT_DIGITS + 1);
	s[0] = '-';
	doc = parse_ok(s, FM_MAX_INT_DIGITS + 1, NULL);
	jv_doc_free(doc);
	assert_null(jv_parse(s, FM_MAX_INT_DIGITS + 2, NULL, err));
	assert_non_null(strstr(err, "4301 digits"));
	/* inside an array the offset is where the number starts */
	memmove(s + 1, s, FM_MAX_INT_DIGITS + 2);
	s[0] = '[';
	s[FM_MAX_INT_DIGITS + 3] = ']';
	check_reject(s, FM_MAX_INT_DIGITS + 4, "more than the limit", 1);
	free(s);
}

static void
test_big_int_exact(void **state)
{
	char s[402];
	struct jv_doc *doc;
	char *c;
	int i;

	(void)state;
	s[0] = '-';
	for (i = 1; i <= 400; i++)
		s[i] = (char)('1' + (i * 7) % 9);
	s[401] = '\0';
	doc = parse_ok(s, 401, NULL);
	c = canon_doc(doc, NULL);
	assert_string_equal(c, s);
	free(c);
	jv_doc_free(doc);
	check_canon(s + 1, 400, s + 1);
	check_canon("[340282366920938463463374607431768211456,"
	    "-340282366920938463463374607431768211456]", 82,
	    "[340282366920938463463374607431768211456,"
	    "-340282366920938463463374607431768211456]");
}

/* ---- borrow_input ------------------------------------------------------- */

static void
test_borrow(void **state)
{
	static const char *const inputs[] = {
		"{\"plain\":\"text\",\"esc\":\"a\\nb\",\"n\":-0,\"big\":"
		"123456789012345678901234567890,\"f\":1.50,\"u\":\"\xc3\xa9\"}",
		"[\"\",\"\\u0000\",\"x\",[\"y\",{\"z\":\"\\ud800\"}]]",
		"\"only a string\"",
		"{\"b\":\"dup\",\"a\":1,\"b\":\"last\"}",
	};
	struct jv_parse_opts borrow = { 0, true }, copy = { 0, false };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		size_t len = strlen(inputs[i]);
		/* a private copy, so the borrowed pointers can be checked */
		char *text = strdup(inputs[i]);
		struct jv_doc *d1 = parse_ok(text, len, &borrow);
		struct jv_doc *d2 = parse_ok(text, len, &copy);
		char *c1 = canon_doc(d1, NULL), *c2 = canon_doc(d2, NULL);

		assert_string_equal(c1, c2);
		free(c1);
		free(c2);
		jv_doc_free(d1);
		jv_doc_free(d2);
		free(text);
	}
	{
		/* unescaped strings point into the input, escaped ones not */
		static const char in[] = "{\"k\":\"plain\",\"e\":\"a\\tb\"}";
		char *text = strdup(in);
		struct jv_doc *d1 = parse_ok(text, strlen(in), &borrow);
		struct jv_doc *d2 = parse_ok(text, strlen(in), &copy);
		const struct jv *p1 = jv_get(jv_doc_root(d1),
		    "k");
		const struct jv *p2 = jv_get(jv_doc_root(d2),
		    "k");
		const struct jv *e1 = jv_get(jv_doc_root(d1),
		    "e");

		assert_ptr_equal(p1->u.str, text + 6);
		assert_true(p2->u.str < text || p2->u.str >= text + sizeof(in));
		assert_true(e1->u.str < text || e1->u.str >= text + sizeof(in));
		assert_memory_equal(e1->u.str, "a\tb", 3);
		/* a copy survives the input */
		memset(text, 'X', strlen(in));
		assert_memory_equal(p2->u.str, "plain", 5);
		jv_doc_free(d1);
		jv_doc_free(d2);
		free(text);
	}
}

/* Input not NUL-terminated: the parser must stay inside len. */
static void
test_no_overread(void **state)
{
	static const char *const inputs[] = {
		"\"abc", "\"\\", "\"\\u12", "\"\\ud800\\u", "123", "-", "1.",
		"1e", "tru", "Infinit", "-Infinit", "[1,", "{\"a\"", "{\"a\":",
		"\"\xe2\x82", "\"\xf0", "NaN",
	};
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		for (n = 0; n <= strlen(inputs[i]); n++) {
			/* exactly n bytes on the heap, ASan catches overreads */
			char *p = malloc(n ? n : 1), err[FM_ERRLEN];
			struct jv_doc *doc;

			memcpy(p, inputs[i], n);
			doc = jv_parse(p, n, NULL, err);
			jv_doc_free(doc);
			free(p);
		}
	}
}

/* ---- helpers ------------------------------------------------------------ */

static void
test_is_falsy(void **state)
{
	static const char *const falsy[] = { "null", "false", "0", "-0",
	    "0.0", "-0.0", "0e5", "1e-400", "\"\"", "[]", "{}", " [ ] " };
	static const char *const truthy[] = { "true", "1", "-1", "0.1",
	    "NaN", "Infinity", "-Infinity", "\"0\"", "\" \"", "\"\\u0000\"",
	    "[0]", "[[]]", "{\"a\":0}", "10", "5e-324" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(falsy) / sizeof(falsy[0]); i++) {
		struct jv_doc *d = parse_ok(falsy[i], strlen(falsy[i]), NULL);

		if (!jv_is_falsy(jv_doc_root(d)))
			fail_msg("%s should be falsy", falsy[i]);
		jv_doc_free(d);
	}
	for (i = 0; i < sizeof(truthy) / sizeof(truthy[0]); i++) {
		struct jv_doc *d = parse_ok(truthy[i], strlen(truthy[i]),
		    NULL);

		if (jv_is_falsy(jv_doc_root(d)))
			fail_msg("%s should be truthy", truthy[i]);
		jv_doc_free(d);
	}
}

static void
test_large_array(void **state)
{
	struct buf in = BUF_INIT;
	struct jv_doc *doc;
	char *c;
	int i;

	(void)state;
	buf_addc(&in, '[');
	for (i = 0; i < 100000; i++)
		buf_printf(&in, "%s%d", i ? "," : "", i);
	buf_addc(&in, ']');
	doc = parse_ok(in.data, in.len, NULL);
	assert_int_equal(jv_doc_root(doc)->len, 100000);
	c = canon_doc(doc, NULL);
	assert_string_equal(c, in.data);
	free(c);
	jv_doc_free(doc);
	buf_free(&in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_rejected),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_duplicate_flagged),
		cmocka_unit_test(test_key_order),
		cmocka_unit_test(test_key_lookup_with_nul),
		cmocka_unit_test(test_large_object),
		cmocka_unit_test(test_lone_surrogates),
		cmocka_unit_test(test_surrogate_bad_tail),
		cmocka_unit_test(test_lone_surrogates_canonical),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_control_chars),
		cmocka_unit_test(test_string_word_runs),
		cmocka_unit_test(test_decode_runs),
		cmocka_unit_test(test_decode_long),
		cmocka_unit_test(test_decode_lines),
		cmocka_unit_test(test_string_error_order),
		cmocka_unit_test(test_short_strings),
		cmocka_unit_test(test_float_fast_path),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_valid_utf8_boundaries),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_int_digits),
		cmocka_unit_test(test_big_int_exact),
		cmocka_unit_test(test_borrow),
		cmocka_unit_test(test_no_overread),
		cmocka_unit_test(test_is_falsy),
		cmocka_unit_test(test_large_array),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
