/*
 * fedmsg's canonical JSON (libfedmsg/canon.c; README "Canonical JSON"):
 * float repr against a table made by Python, string escapes for every code
 * point class, round trips against json.dumps(json.loads(x), sort_keys=True,
 * separators=(',', ':')) precomputed in tests/data/canon_cases.tsv, and
 * canon_object_with().
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

#include "buf.h"
#include "canon.h"
#include "json.h"
#include "testutil.h"

/* ---- floats ------------------------------------------------------------- */

static double
from_bits(uint64_t b)
{
	double x;

	memcpy(&x, &b, sizeof(x));
	return x;
}

/* Every line of floats.tsv: "<16 hex digits of the bits>\t<repr>". */
static void
test_float_table(void **state)
{
	char *data = tu_read_file(tu_data_path("floats.tsv"), NULL);
	char *line, *save = NULL, out[PYFLOAT_MAX];
	size_t n = 0, bad = 0, pow2 = 0;

	(void)state;
	for (line = strtok_r(data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(line, '\t'), *end;
		uint64_t bits;
		double x;
		size_t len;

		assert_non_null(tab);
		assert_int_equal(tab - line, 16);
		*tab = '\0';
		bits = strtoull(line, &end, 16);
		assert_true(end == tab);
		x = from_bits(bits);
		len = canon_float(x, out);
		if (len != strlen(out) || strcmp(out, tab + 1) != 0) {
			if (bad++ < 20)
				print_error("%s: canon_float %s, Python %s\n",
				    line, out, tab + 1);
		}
		if ((bits & 0x000fffffffffffffULL) == 0)
			pow2++;
		n++;
	}
	free(data);
	if (bad)
		fail_msg("%zu of %zu floats differ from Python's repr", bad, n);
	/* the table covers every power of two, both signs */
	assert_true(pow2 >= 2 * 2046);
	assert_true(n > 30000);
}

/* Each repr also parses back (as JSON) to the same double. */
static void
test_float_table_parses_back(void **state)
{
	char *data = tu_read_file(tu_data_path("floats.tsv"), NULL);
	char *line, *save = NULL, err[FM_ERRLEN];

	(void)state;
	for (line = strtok_r(data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(line, '\t');
		const char *repr = tab + 1;
		struct jv_doc *doc;
		uint64_t bits = strtoull(line, NULL, 16), got;
		const struct jv *v;

		doc = jv_parse(repr, strlen(repr), NULL, err);
		if (doc == NULL)
			fail_msg("%s: %s", repr, err);
		v = jv_doc_root(doc);
		if (v->type != JV_FLOAT)
			fail_msg("%s parsed as type %d", repr, (int)v->type);
		memcpy(&got, &v->u.num, sizeof(got));
		if (got != bits)
			fail_msg("%s parsed to %016llx, want %016llx", repr,
			    (unsigned long long)got, (unsigned long long)bits);
		jv_doc_free(doc);
	}
	free(data);
}

/*
 * A decimal of at most 15 significant digits is the only one of that
 * length that reads back as its double, and none shorter does, so it is
 * Python's repr of that double: r / 10^k for random r and k, in the range
 * of canon_float's short-decimal path and around its edges.
 */
static void
test_float_short_decimals(void **state)
{
	static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6,
	    1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
	    1e18, 1e19 };
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	char got[PYFLOAT_MAX], want[64], ds[24];
	size_t n = 0;
	int i;

	(void)state;
	for (i = 0; i < 300000; i++) {
		unsigned long long r;
		int k, nd, len;
		double x;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		nd = 1 + (int)((seed >> 33) % 15);		/* digits of r */
		k = (int)((seed >> 17) % 20);
		r = (seed >> 40) % 1000000;
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		r = (r * 1000000000ULL + (seed >> 34) % 1000000000ULL) %
		    (unsigned long long)pow10[nd];
		if (r == 0 || (k > 0 && r % 10 == 0))
			continue;
		x = (double)r / pow10[k];
		if (x < 1e-4 || x >= 1e16)
			continue;	/* repr in exponent notation */
		len = snprintf(ds, sizeof(ds), "%llu", r);
		if (k == 0)
			snprintf(want, sizeof(want), "%s.0", ds);
		else if (len > k)
			snprintf(want, sizeof(want), "%.*s.%s", len - k, ds,
			    ds + len - k);
		else
			snprintf(want, sizeof(want), "0.%.*s%s", k - len,
			    "0000000000000000000", ds);
		canon_float(x, got);
		if (strcmp(got, want) != 0)
			fail_msg("%llu / 10^%d: got %s, want %s", r, k, got, want);
		canon_float(-x, got);
		assert_true(got[0] == '-' && strcmp(got + 1, want) == 0);
		n++;
	}
	assert_true(n > 100000);
}

static void
test_float_specials(void **state)
{
	static const struct {
		double		 x;
		const char	*want;
	} cases[] = {
		{ 0.0, "0.0" },
		{ 1.0, "1.0" },
		{ -1.0, "-1.0" },
		{ 0.1, "0.1" },
		{ 1e-07, "1e-07" },
		{ 1e22, "1e+22" },
		{ 1e16, "1e+16" },
		{ 1e15, "1000000000000000.0" },
		{ 9999999999999998.0, "9999999999999998.0" },
		{ 0.0001, "0.0001" },
		{ 0.00001, "1e-05" },
		{ 3.0, "3.0" },
		{ 1234567.891, "1234567.891" },
		{ 0.1 + 0.2, "0.30000000000000004" },
		{ 1.0 / 3, "0.3333333333333333" },
		{ 5e-324, "5e-324" },
		{ 1.7976931348623157e308, "1.7976931348623157e+308" },
		{ 123456789012345678.0, "1.2345678901234568e+17" },
		{ 1180591620717411303424.0, "1.1805916207174113e+21" },
		{ 1e100, "1e+100" },
		{ -2.2250738585072014e-308, "-2.2250738585072014e-308" },
	};
	char out[PYFLOAT_MAX];
	size_t i;

	(void)state;
	assert_int_equal(canon_float(NAN, out), 3);
	assert_string_equal(out, "NaN");
	assert_int_equal(canon_float(-NAN, out), 3);
	assert_string_equal(out, "NaN");
	assert_int_equal(canon_float(from_bits(0x7ff0000000000001ULL), out), 3);
	assert_string_equal(out, "NaN");
	assert_int_equal(canon_float(from_bits(0xfff8000000000abcULL), out), 3);
	assert_string_equal(out, "NaN");
	assert_int_equal(canon_float(INFINITY, out), 8);
	assert_string_equal(out, "Infinity");
	assert_int_equal(canon_float(-INFINITY, out), 9);
	assert_string_equal(out, "-Infinity");
	assert_int_equal(canon_float(-0.0, out), 4);
	assert_string_equal(out, "-0.0");
	assert_int_equal(canon_float(0.0, out), 3);
	assert_string_equal(out, "0.0");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = canon_float(cases[i].x, out);

		assert_string_equal(out, cases[i].want);
		assert_int_equal(n, strlen(cases[i].want));
	}
}

/* The longest reprs fit in PYFLOAT_MAX with room to spare. */
static void
test_float_longest(void **state)
{
	char out[PYFLOAT_MAX + 8];
	size_t n;

	(void)state;
	memset(out, 'Z', sizeof(out));
	n = canon_float(-2.2250738585072014e-308, out);
	assert_int_equal(n, 24);
	assert_int_equal(out[n], '\0');
	n = canon_float(-0.00012345678901234567, out);
	assert_string_equal(out, "-0.00012345678901234567");
	n = canon_float(-1234567890123456.7, out);
	assert_string_equal(out, "-1234567890123456.8");
	assert_true(n < PYFLOAT_MAX);
	assert_int_equal(out[PYFLOAT_MAX], 'Z');
}

/* ---- strings ------------------------------------------------------------ */

static char *
canon_str(const char *s, size_t len)
{
	struct buf b = BUF_INIT;
	char *out;

	canon_string(&b, s, len);
	out = buf_steal(&b, NULL);
	assert_non_null(out);
	return out;
}

/* WTF-8 encoding of one code point (surrogates too); returns the length. */
static size_t
wtf8(unsigned cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The spec's escape table (3.1, "String"), written out independently. */
static void
spec_escape(unsigned cp, char *o)
{
	switch (cp) {
	case '"': strcpy(o, "\\\""); return;
	case '\\': strcpy(o, "\\\\"); return;
	case 0x08: strcpy(o, "\\b"); return;
	case 0x09: strcpy(o, "\\t"); return;
	case 0x0a: strcpy(o, "\\n"); return;
	case 0x0c: strcpy(o, "\\f"); return;
	case 0x0d: strcpy(o, "\\r"); return;
	default: break;
	}
	if (cp >= 0x20 && cp <= 0x7e)
		sprintf(o, "%c", (char)cp);
	else if (cp < 0x10000)
		sprintf(o, "\\u%04x", cp);
	else
		sprintf(o, "\\u%04x\\u%04x", 0xd800 + ((cp - 0x10000) >> 10),
		    0xdc00 + ((cp - 0x10000) & 0x3ff));
}

/* Every BMP code point (surrogates included) and a sweep of the astral. */
static void
test_string_every_code_point(void **state)
{
	struct buf in = BUF_INIT, want = BUF_INIT;
	char enc[4], esc[16], *got;
	unsigned cp;

	(void)state;
	buf_addc(&want, '"');
	for (cp = 0; cp <= 0x10ffff; cp += cp < 0x10000 ? 1 : 7) {
		buf_add(&in, enc, wtf8(cp, enc));
		spec_escape(cp, esc);
		buf_adds(&want, esc);
	}
	buf_add(&in, enc, wtf8(0x10ffff, enc));
	spec_escape(0x10ffff, esc);
	buf_adds(&want, esc);
	buf_addc(&want, '"');
	assert_false(in.oom || want.oom);
	got = canon_str(in.data, in.len);
	assert_int_equal(strlen(got), want.len);
	assert_string_equal(got, want.data);
	free(got);
	/* one at a time, each as its own string */
	for (cp = 0; cp < 0x800; cp++) {
		char one[32];

		spec_escape(cp, esc);
		snprintf(one, sizeof(one), "\"%s\"", esc);
		got = canon_str(enc, wtf8(cp, enc));
		assert_string_equal(got, one);
		free(got);
	}
	buf_free(&in);
	buf_free(&want);
}

static void
test_string_classes(void **state)
{
	static const struct {
		const char	*in;
		size_t		 len;
		const char	*want;
	} cases[] = {
		{ "", 0, "\"\"" },
		{ "\"", 1, "\"\\\"\"" },
		{ "\\", 1, "\"\\\\\"" },
		{ "\b\t\n\f\r", 5, "\"\\b\\t\\n\\f\\r\"" },
		{ "\x01\x0b\x0e\x1f", 4, "\"\\u0001\\u000b\\u000e\\u001f\"" },
		{ "\0", 1, "\"\\u0000\"" },
		{ "a\0b", 3, "\"a\\u0000b\"" },
		{ "\x7f", 1, "\"\\u007f\"" },
		{ "/", 1, "\"/\"" },
		{ " ~", 2, "\" ~\"" },
		{ "\xc2\x80", 2, "\"\\u0080\"" },
		{ "\xc3\xa9", 2, "\"\\u00e9\"" },
		{ "\xe2\x82\xac", 3, "\"\\u20ac\"" },
		{ "\xef\xbb\xbf", 3, "\"\\ufeff\"" },
		{ "\xef\xbf\xbf", 3, "\"\\uffff\"" },
		{ "\xf0\x9f\x98\x80", 4, "\"\\ud83d\\ude00\"" },
		{ "\xf0\x90\x80\x80", 4, "\"\\ud800\\udc00\"" },
		{ "\xf4\x8f\xbf\xbf", 4, "\"\\udbff\\udfff\"" },
		/* lone surrogates (WTF-8 from the parser) */
		{ "\xed\xa0\x80", 3, "\"\\ud800\"" },
		{ "\xed\xbf\xbf", 3, "\"\\udfff\"" },
		{ "\xed\xa0\xbdx", 4, "\"\\ud83dx\"" },
		{ "\xed\xb0\x80\xed\xa0\x80", 6, "\"\\udc00\\ud800\"" },
		{ "e\xcc\x81", 3, "\"e\\u0301\"" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = canon_str(cases[i].in, cases[i].len);

		assert_string_equal(got, cases[i].want);
		free(got);
	}
}

/* Lone surrogates that came from parsed input are re-emitted as escapes. */
static void
test_string_parsed_surrogates(void **state)
{
	static const char in[] = "[\"\\ud800\",\"\\uDC00\",\"a\\udbffb\","
	    "\"\\ud83d\\ude00\",\"\\ud83d\\u0020\\ude00\"]";
	struct buf b = BUF_INIT;
	struct jv_doc *doc;
	char err[FM_ERRLEN], *got;

	(void)state;
	doc = jv_parse(in, strlen(in), NULL, err);
	assert_non_null(doc);
	canon_value(&b, jv_doc_root(doc));
	got = buf_steal(&b, NULL);
	assert_string_equal(got, "[\"\\ud800\",\"\\udc00\",\"a\\udbffb\","
	    "\"\\ud83d\\ude00\",\"\\ud83d \\ude00\"]");
	free(got);
	jv_doc_free(doc);
}

/* Appending to a buffer that already holds text keeps it. */
static void
test_string_appends(void **state)
{
	struct buf b = BUF_INIT;
	char *got;
	int i;

	(void)state;
	buf_adds(&b, "x=");
	for (i = 0; i < 200; i++)
		canon_string(&b, "\xc3\xa9\n", 3);
	got = buf_steal(&b, NULL);
	assert_int_equal(strlen(got), 2 + 200 * 10);
	assert_memory_equal(got, "x=\"\\u00e9\\n\"\"\\u00e9\\n\"", 22);
	free(got);
}

/* ---- round trips against Python ----------------------------------------- */

static void
test_canon_cases(void **state)
{
	char *data = tu_read_file(tu_data_path("canon_cases.tsv"), NULL);
	char *line, *save = NULL;
	size_t n = 0;

	(void)state;
	for (line = strtok_r(data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *tab, err[FM_ERRLEN];
		unsigned char *in;
		size_t len;
		int borrow;

		if (line[0] == '#')
			continue;
		tab = strchr(line, '\t');
		assert_non_null(tab);
		in = tu_unhex(line, (size_t)(tab - line), &len);
		for (borrow = 0; borrow < 2; borrow++) {
			struct jv_parse_opts o = { 0, borrow != 0 };
			struct jv_doc *doc = jv_parse((char *)in, len, &o, err);
			struct buf b = BUF_INIT;

			if (doc == NULL)
				fail_msg("case %zu (%.40s...): %s", n, line, err);
			canon_value(&b, jv_doc_root(doc));
			assert_false(b.oom);
			if (strcmp(b.data, tab + 1) != 0)
				fail_msg("case %zu (%.60s...):\n got %.300s\nwant "
				    "%.300s", n, line, b.data, tab + 1);
			buf_free(&b);
			jv_doc_free(doc);
		}
		free(in);
		n++;
	}
	free(data);
	assert_true(n > 300);
}

/*
 * The parser marks strings that need no escape (struct jv.plain) and the
 * writer copies those as they are: a DEL, a non-ASCII character or an
 * escape anywhere, in the 16-byte blocks or the tail, must still come out
 * escaped, in keys (canon_value and canon_object_with) and in values.
 */
static void
test_parsed_plain_strings(void **state)
{
	static const struct {
		const char	*src;	/* as it appears in the JSON text */
		const char	*val;	/* the string's bytes */
	} specials[] = {
		{ "\x7f", "\x7f" },
		{ "\xc3\xa9", "\xc3\xa9" },
		{ "\\u007f", "\x7f" },
		{ "\\n", "\n" },
		{ "\\\"", "\"" },
		{ "\\/", "/" },
		{ "~", "~" },
	};
	size_t k, n, pos;
	int borrow;

	(void)state;
	for (k = 0; k < sizeof(specials) / sizeof(specials[0]); k++)
	for (n = 1; n <= 40; n++)
	for (pos = 0; pos < n; pos++)
	for (borrow = 0; borrow < 2; borrow++) {
		struct jv_parse_opts o = { 0, borrow != 0 };
		struct buf str = BUF_INIT, src = BUF_INIT, val = BUF_INIT;
		struct buf want = BUF_INIT, got = BUF_INIT, got2 = BUF_INIT;
		struct jv_doc *doc;
		char err[FM_ERRLEN];
		size_t i;

		for (i = 0; i < n; i++) {
			buf_adds(&str, i == pos ? specials[k].src : "a");
			buf_adds(&val, i == pos ? specials[k].val : "a");
		}
		buf_printf(&src, "{\"%s\": [\"%s\", \"%s\"]}", str.data,
		    str.data, str.data);
		buf_addc(&want, '{');
		canon_string(&want, val.data, val.len);
		buf_adds(&want, ":[");
		canon_string(&want, val.data, val.len);
		buf_addc(&want, ',');
		canon_string(&want, val.data, val.len);
		buf_adds(&want, "]}");

		doc = jv_parse(src.data, src.len, &o, err);
		if (doc == NULL)
			fail_msg("%s: %s", src.data, err);
		canon_value(&got, jv_doc_root(doc));
		canon_object_with(&got2, jv_doc_root(doc), NULL, NULL, 0);
		if (strcmp(got.data, want.data) != 0 ||
		    strcmp(got2.data, want.data) != 0)
			fail_msg("special %zu at %zu of %zu:\n got %s\n"
			    " got %s\nwant %s", k, pos, n, got.data, got2.data,
			    want.data);
		jv_doc_free(doc);
		buf_free(&str);
		buf_free(&src);
		buf_free(&val);
		buf_free(&want);
		buf_free(&got);
		buf_free(&got2);
	}
}

/* Canonical text is a fixed point: parsing and re-emitting it is identity. */
static void
test_canon_idempotent(void **state)
{
	char *data = tu_read_file(tu_data_path("canon_cases.tsv"), NULL);
	char *line, *save = NULL, err[FM_ERRLEN];

	(void)state;
	for (line = strtok_r(data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		const char *canon;
		struct jv_doc *doc;
		struct buf b = BUF_INIT;

		if (line[0] == '#')
			continue;
		canon = strchr(line, '\t') + 1;
		doc = jv_parse(canon, strlen(canon), NULL, err);
		if (doc == NULL)
			fail_msg("%.60s: %s", canon, err);
		canon_value(&b, jv_doc_root(doc));
		assert_string_equal(b.data, canon);
		buf_free(&b);
		jv_doc_free(doc);
	}
	free(data);
}

/* ---- canon_object_with -------------------------------------------------- */

static char *
with(const char *json, const char *const *skip,
    const struct canon_extra *ex, size_t nex)
{
	struct jv_doc *doc = NULL;
	struct buf b = BUF_INIT;
	char err[FM_ERRLEN], *out;

	if (json) {
		doc = jv_parse(json, strlen(json), NULL, err);
		if (doc == NULL)
			fail_msg("%s: %s", json, err);
	}
	canon_object_with(&b, doc ? jv_doc_root(doc) : NULL, skip, ex, nex);
	out = buf_steal(&b, NULL);
	jv_doc_free(doc);
	return out;
}

#define EX(k, t) { (k), (t), sizeof(t) - 1 }

static void
test_object_with(void **state)
{
	static const char obj[] = "{\"e\":5,\"a\":1,\"c\":[3],"
	    "\"signature\":\"s\",\"certificate\":\"c\",\"x\":{\"signature\":1}}";
	static const char *const creds[] = { "signature", "certificate", NULL };
	static const char *const none[] = { NULL };
	static const char *const absent[] = { "zz", "", "a\xc3\xa9", NULL };
	const struct canon_extra ins[] = { EX("d", "4"), EX("b", "\"two\""),
	    EX("z", "null"), EX("0", "0") };
	const struct canon_extra rep[] = { EX("c", "{}"), EX("signature",
	    "\"new\"") };
	const struct canon_extra pre[] = { EX("a", "0"), EX("ab", "1") };
	char *got;

	(void)state;
	/* no skip, no extras: plain canonical text */
	got = with(obj, NULL, NULL, 0);
	assert_string_equal(got, "{\"a\":1,\"c\":[3],\"certificate\":\"c\","
	    "\"e\":5,\"signature\":\"s\",\"x\":{\"signature\":1}}");
	free(got);
	got = with(obj, none, NULL, 0);
	assert_string_equal(got, "{\"a\":1,\"c\":[3],\"certificate\":\"c\","
	    "\"e\":5,\"signature\":\"s\",\"x\":{\"signature\":1}}");
	free(got);
	got = with(obj, absent, NULL, 0);
	assert_string_equal(got, "{\"a\":1,\"c\":[3],\"certificate\":\"c\","
	    "\"e\":5,\"signature\":\"s\",\"x\":{\"signature\":1}}");
	free(got);
	/* skip: top level only */
	got = with(obj, creds, NULL, 0);
	assert_string_equal(got, "{\"a\":1,\"c\":[3],\"e\":5,"
	    "\"x\":{\"signature\":1}}");
	free(got);
	/* extras in any order are inserted in key order */
	got = with(obj, creds, ins, 4);
	assert_string_equal(got, "{\"0\":0,\"a\":1,\"b\":\"two\",\"c\":[3],"
	    "\"d\":4,\"e\":5,\"x\":{\"signature\":1},\"z\":null}");
	free(got);
	/* an extra replaces the member; also one whose key is skipped */
	got = with(obj, creds, rep, 2);
	assert_string_equal(got, "{\"a\":1,\"c\":{},\"e\":5,\"signature\":"
	    "\"new\",\"x\":{\"signature\":1}}");
	free(got);
	got = with(obj, NULL, rep, 2);
	assert_string_equal(got, "{\"a\":1,\"c\":{},\"certificate\":\"c\","
	    "\"e\":5,\"signature\":\"new\",\"x\":{\"signature\":1}}");
	free(got);
	/* prefixes: "a" < "ab" < "abc" */
	got = with("{\"abc\":2,\"a\":9}", NULL, pre, 2);
	assert_string_equal(got, "{\"a\":0,\"ab\":1,\"abc\":2}");
	free(got);
	/* NUL and non-ASCII keys of the object against extras */
	got = with("{\"a\\u0000\":1,\"\\u00e9\":2,\"\\ud83d\\ude00\":3}", NULL,
	    pre, 1);
	assert_string_equal(got, "{\"a\":0,\"a\\u0000\":1,\"\\u00e9\":2,"
	    "\"\\ud83d\\ude00\":3}");
	free(got);
	{
		const struct canon_extra hi[] = { EX("\xc3\xa9", "1"),
		    EX("~", "2") };

		got = with("{\"\\uffff\":3,\"a\":0}", NULL, hi, 2);
		assert_string_equal(got, "{\"a\":0,\"~\":2,\"\\u00e9\":1,"
		    "\"\\uffff\":3}");
		free(got);
	}
	/* NULL object */
	got = with(NULL, NULL, NULL, 0);
	assert_string_equal(got, "{}");
	free(got);
	got = with(NULL, creds, ins, 4);
	assert_string_equal(got, "{\"0\":0,\"b\":\"two\",\"d\":4,\"z\":null}");
	free(got);
	/* everything skipped */
	got = with("{\"signature\":1,\"certificate\":2}", creds, NULL, 0);
	assert_string_equal(got, "{}");
	free(got);
	got = with("{}", creds, rep, 1);
	assert_string_equal(got, "{\"c\":{}}");
	free(got);
}

/* More extras than supported fail closed (the buffer is marked OOM). */
static void
test_object_with_too_many(void **state)
{
	struct canon_extra ex[17];
	char keys[17][4];
	struct buf b = BUF_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < 17; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%02zu", 16 - i);
		ex[i] = (struct canon_extra){ keys[i], "1", 1 };
	}
	canon_object_with(&b, NULL, NULL, ex, 16);
	assert_false(b.oom);
	assert_int_equal(b.len, 2 + 16 * 7 + 15);
	assert_memory_equal(b.data, "{\"k01\":1,\"k02\":1,", 17);
	buf_free(&b);
	canon_object_with(&b, NULL, NULL, ex, 17);
	assert_true(b.oom);
	assert_null(buf_steal(&b, NULL));
}

/* ---- buf ---------------------------------------------------------------- */

static void
test_buf(void **state)
{
	struct buf b = BUF_INIT;
	size_t len = 99;
	char *s;
	int i;

	(void)state;
	s = buf_steal(&b, &len);
	assert_non_null(s);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);
	for (i = 0; i < 1000; i++)
		assert_int_equal(buf_printf(&b, "%d,", i), 0);
	assert_int_equal(buf_add(&b, "\0x", 2), 0);
	assert_int_equal(b.data[b.len], '\0');
	assert_int_equal(b.data[b.len - 1], 'x');
	assert_memory_equal(b.data, "0,1,2,", 6);
	s = buf_steal(&b, &len);
	assert_int_equal(len, 3890 + 2);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(s);
	/* an impossible reservation marks the buffer and sticks */
	assert_null(buf_reserve(&b, (size_t)-1 / 2));
	assert_true(b.oom);
	assert_int_equal(buf_adds(&b, "x"), -1);
	assert_null(buf_steal(&b, NULL));
	assert_false(b.oom);
	assert_int_equal(buf_addc(&b, 'y'), 0);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_float_table),
		cmocka_unit_test(test_float_table_parses_back),
		cmocka_unit_test(test_float_short_decimals),
		cmocka_unit_test(test_float_specials),
		cmocka_unit_test(test_float_longest),
		cmocka_unit_test(test_string_every_code_point),
		cmocka_unit_test(test_string_classes),
		cmocka_unit_test(test_string_parsed_surrogates),
		cmocka_unit_test(test_string_appends),
		cmocka_unit_test(test_canon_cases),
		cmocka_unit_test(test_canon_idempotent),
		cmocka_unit_test(test_parsed_plain_strings),
		cmocka_unit_test(test_object_with),
		cmocka_unit_test(test_object_with_too_many),
		cmocka_unit_test(test_buf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
