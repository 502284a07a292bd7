/*
 * The parser, the canonical writer and fm_msg_parse() when memory runs
 * out.  Linked with --wrap=malloc,calloc,realloc (Makefile,
 * TEST_LDFLAGS_test_json_oom): the k-th allocation of libfedmsg's own
 * code fails, for every k until a run needs no more than k.  Each failing
 * run must report "out of memory" and leak nothing (LeakSanitizer); the
 * first run that gets all its memory must give the text a run without
 * failures gives.  A path that swallowed a failed allocation, freed twice
 * or went on with a NULL would show here.
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

/* ---- failing allocations ----------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);

static long countdown = -1;	/* allocations left; -1: never fail */
static unsigned long injected;	/* failures given since arm() */

static bool
fail_now(void)
{
	if (countdown < 0)
		return false;
	if (countdown == 0) {
		injected++;
		return true;	/* and every allocation after it */
	}
	countdown--;
	return false;
}

void *
__wrap_malloc(size_t n)
{
	return fail_now() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t k, size_t n)
{
	return fail_now() ? NULL : __real_calloc(k, n);
}

void *
__wrap_realloc(void *p, size_t n)
{
	return fail_now() ? NULL : __real_realloc(p, n);
}

/* Let k allocations succeed, then fail all. */
static void
arm(long k)
{
	countdown = k;
	injected = 0;
}

static void
disarm(void)
{
	countdown = -1;
}

/* ---- inputs -------------------------------------------------------------------------- */

/* A real fedmsg envelope: the first signed vector's message. */
static char *
vector_message(size_t *len)
{
	char err[FM_ERRLEN], *line, *nl, *text;
	const struct jv_parse_opts o = { 0, false };
	struct jv_doc *doc;
	struct buf b = BUF_INIT;

	line = tu_read_file(tu_data_path("vectors/signed.jsonl"), NULL);
	if ((nl = strchr(line, '\n')) != NULL)
		*nl = '\0';
	doc = jv_parse(line, strlen(line), &o, err);
	assert_non_null(doc);
	canon_value(&b, jv_get(jv_doc_root(doc), "message"));
	assert_false(b.oom);
	jv_doc_free(doc);
	free(line);
	text = buf_steal(&b, len);
	assert_non_null(text);
	return text;
}

/*
 * Strings that outgrow the arena's decode tail (escaped newlines every 76
 * bytes, \u escapes, raw UTF-8), an object with more members and an array
 * with more items than their first allocation, a long number, nesting.
 */
static char *
big_document(size_t *len)
{
	struct buf b = BUF_INIT;
	int i;

	buf_adds(&b, "{\"cert\":\"");
	for (i = 0; i < 300; i++)
		buf_adds(&b, "TUlJRHR6Q0NBcCtnQXdJQkFnSUVIenBjZmpBTkJna3Foa2lHOXcwQkFRc0ZBREJzTVFzd0NRWURW"
		    "\\n");
	buf_adds(&b, "\",\"u\":\"");
	for (i = 0; i < 2000; i++)
		buf_adds(&b, i % 3 ? "\\u00e9\\ud83d\\ude00" : "caf\xc3\xa9 ");
	buf_adds(&b, "\",\"many\":{");
	for (i = 0; i < 200; i++)
		buf_printf(&b, "%s\"k%03d\":[%d,%d.5,\"v\\t%d\",null,true]",
		    i ? "," : "", 199 - i, i, i, i);
	buf_adds(&b, "},\"long\":");
	for (i = 0; i < 400; i++)
		buf_addc(&b, (char)('1' + i % 9));
	buf_adds(&b, ",\"deep\":");
	for (i = 0; i < 40; i++)
		buf_adds(&b, "[{\"a\":");
	buf_adds(&b, "1");
	for (i = 0; i < 40; i++)
		buf_adds(&b, "}]");
	buf_adds(&b, ",\"items\":[");
	for (i = 0; i < 1000; i++)
		buf_printf(&b, "%s\"s%d\"", i ? "," : "", i);
	buf_adds(&b, "]}");
	assert_false(b.oom);
	return buf_steal(&b, len);
}

/* ---- the runs ------------------------------------------------------------------------ */

static char *
canon_of(const struct jv_doc *doc, size_t *len)
{
	struct buf b = BUF_INIT;

	canon_value(&b, jv_doc_root(doc));
	assert_false(b.oom);
	return buf_steal(&b, len);
}

/* Parse text with the k-th allocation failing, for every k. */
static void
parse_under_oom(const char *text, size_t len, bool borrow)
{
	const struct jv_parse_opts o = { 0, borrow };
	char err[FM_ERRLEN], *want, *got;
	size_t want_len, got_len;
	struct jv_doc *doc;
	long k;

	doc = jv_parse(text, len, &o, err);
	assert_non_null(doc);
	want = canon_of(doc, &want_len);
	jv_doc_free(doc);
	for (k = 0;; k++) {
		arm(k);
		doc = jv_parse(text, len, &o, err);
		disarm();
		if (doc == NULL) {
			if (injected == 0)
				fail_msg("k=%ld: failed without a failed "
				    "allocation: %s", k, err);
			if (strstr(err, "out of memory") == NULL)
				fail_msg("k=%ld: %s", k, err);
			continue;
		}
		if (injected)
			fail_msg("k=%ld: parsed although an allocation "
			    "failed", k);
		got = canon_of(doc, &got_len);
		assert_int_equal(got_len, want_len);
		assert_memory_equal(got, want, want_len);
		free(got);
		jv_doc_free(doc);
		break;
	}
	assert_true(k > 0);	/* some allocation was made and failed */
	free(want);
}

/* The canonical writer: b->oom, never a partial text taken for whole. */
static void
canon_under_oom(const char *text, size_t len)
{
	const struct jv_parse_opts o = { 0, true };
	char err[FM_ERRLEN], *want;
	size_t want_len;
	struct jv_doc *doc = jv_parse(text, len, &o, err);
	long k;

	assert_non_null(doc);
	want = canon_of(doc, &want_len);
	for (k = 0;; k++) {
		struct buf b = BUF_INIT;

		arm(k);
		canon_value(&b, jv_doc_root(doc));
		disarm();
		if (b.oom) {
			assert_true(injected > 0);
			buf_free(&b);
			continue;
		}
		assert_int_equal(injected, 0);
		assert_int_equal(b.len, want_len);
		assert_memory_equal(b.data, want, want_len);
		buf_free(&b);
		break;
	}
	assert_true(k > 0);
	free(want);
	jv_doc_free(doc);
}

static void
test_parse_envelope(void **state)
{
	size_t len;
	char *text = vector_message(&len);

	(void)state;
	parse_under_oom(text, len, false);
	parse_under_oom(text, len, true);
	free(text);
}

static void
test_parse_big(void **state)
{
	size_t len;
	char *text = big_document(&len);

	(void)state;
	parse_under_oom(text, len, false);
	parse_under_oom(text, len, true);
	free(text);
}

static void
test_canon(void **state)
{
	size_t text_len, env_len;
	char *text = big_document(&text_len), *env = vector_message(&env_len);

	(void)state;
	canon_under_oom(text, text_len);
	canon_under_oom(env, env_len);
	free(text);
	free(env);
}

/* fm_msg_parse(): the message and its doc, then the canonical text. */
static void
test_msg_parse(void **state)
{
	char err[FM_ERRLEN], *text, *c;
	struct fm_msg *m;
	size_t len, clen;
	long k;

	(void)state;
	text = vector_message(&len);
	for (k = 0;; k++) {
		arm(k);
		m = NULL;
		if (fm_msg_parse(text, len, NULL, &m, err) < 0) {
			disarm();
			assert_null(m);
			assert_true(injected > 0);
			assert_non_null(strstr(err, "out of memory"));
			continue;
		}
		c = fm_msg_canonical(m, true, &clen);
		disarm();
		if (c == NULL) {
			assert_true(injected > 0);
			fm_msg_unref(m);
			continue;
		}
		assert_int_equal(injected, 0);
		assert_non_null(fm_msg_topic(m));
		free(c);
		fm_msg_unref(m);
		break;
	}
	assert_true(k > 1);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_envelope),
		cmocka_unit_test(test_parse_big),
		cmocka_unit_test(test_canon),
		cmocka_unit_test(test_msg_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
