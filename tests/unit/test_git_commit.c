/*
 * publishers/git_commit.c: the Python behaviours fedmsg-git-hook must
 * reproduce without Python: bytes.decode("utf-8", "replace"),
 * datetime.isoformat() in a commit's offset, and the str.format() subset
 * of url_template.  (The commit object itself is compared with Fedora's
 * hook on real pushes in tests/integration/test_git_hook.py.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "git_commit.h"

static void
check_replace(const char *in, size_t n, const char *want)
{
	size_t len;
	char *out = gc_utf8_replace(in, n, &len);

	assert_non_null(out);
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));
	free(out);
}

#define R "\xef\xbf\xbd"	/* U+FFFD */

/* Python: b"...".decode("utf-8", "replace"), one U+FFFD per maximal
 * invalid subpart. */
static void
test_utf8_replace(void **state)
{
	(void)state;
	check_replace("caf\xc3\xa9", 5, "caf\xc3\xa9");
	check_replace("a\xff" "b", 3, "a" R "b");
	check_replace("\xe2\x82", 2, R);			/* truncated */
	check_replace("\xe2\x82" "x", 3, R "x");
	check_replace("\xed\xa0\x80", 3, R R R);		/* surrogate */
	check_replace("\xc0\xaf", 2, R R);			/* overlong */
	check_replace("\xf4\x90\x80\x80", 4, R R R R);		/* > U+10FFFF */
	check_replace("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80");
	check_replace("\xf0\x9f\x98", 3, R);
	check_replace("", 0, "");
}

static void
test_isoformat(void **state)
{
	char out[32];

	(void)state;
	gc_isoformat(1700000000, 0, out);
	assert_string_equal(out, "2023-11-14T22:13:20+00:00");
	gc_isoformat(1700000000, -270, out);
	assert_string_equal(out, "2023-11-14T17:43:20-04:30");
	gc_isoformat(1700000000, 330, out);
	assert_string_equal(out, "2023-11-15T03:43:20+05:30");
}

static void
test_format_url(void **state)
{
	json_t *f = json_pack("{s:s, s:n, s:s, s:b, s:{}}", "repo", "pkg",
	    "namespace", "rev", "abc", "seen", 1, "stats");
	char err[256], *u;

	(void)state;
	u = gc_format_url("https://x/{repo}/c/{rev}?ns={namespace}&{{x}}={seen}",
	    f, err);
	assert_non_null(u);
	assert_string_equal(u, "https://x/pkg/c/abc?ns=None&{x}=True");
	free(u);
	u = gc_format_url("", f, err);
	assert_non_null(u);
	assert_string_equal(u, "");
	free(u);
	/* Where Python's str.format() would raise: refused, with a reason. */
	assert_null(gc_format_url("{nope}", f, err));
	assert_non_null(strstr(err, "unknown field '{nope}'"));
	assert_null(gc_format_url("{rev:>10}", f, err));
	assert_non_null(strstr(err, "not supported"));
	assert_null(gc_format_url("{rev.x}", f, err));
	assert_null(gc_format_url("{}", f, err));
	assert_null(gc_format_url("a}b", f, err));
	assert_null(gc_format_url("{rev", f, err));
	assert_null(gc_format_url("{stats}", f, err));
	assert_non_null(strstr(err, "not a text"));
	json_decref(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_replace),
		cmocka_unit_test(test_isoformat),
		cmocka_unit_test(test_format_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
