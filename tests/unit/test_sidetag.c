/*
 * consumers/robosignatory/sidetag.c: Fedora's side-tag names match their
 * templates and map to the right "to" tag; near misses (no number, a
 * leading zero, a sign, a suffix, another number the second time) and
 * names too long do not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../consumers/robosignatory/sidetag.c"

#define PAT	"f41-build-side-<seq_id>"

static int
m(const char *pattern, const char *from_t, const char *to_t,
    const char *tag, char *to_out)
{
	return sidetag_match(pattern, from_t, to_t, "f41-signing-pending",
	    "f41-updates-testing-pending", tag, to_out, SIDETAG_MAX);
}

static void
test_fedora_names(void **state)
{
	char to[SIDETAG_MAX];

	(void)state;
	assert_int_equal(m(PAT, "<sidetag>-signing-pending",
	    "<sidetag>-testing-pending", "f41-build-side-12345-signing-pending",
	    to), 1);
	assert_string_equal(to, "f41-build-side-12345-testing-pending");
	assert_int_equal(m(PAT, "<sidetag>-pending-signing", "<sidetag>-testing",
	    "f41-build-side-7-pending-signing", to), 1);
	assert_string_equal(to, "f41-build-side-7-testing");
	/* <from>/<to> are the entry's tags */
	assert_int_equal(m("<from>-side-<seq_id>", "<sidetag>", "<to>-<seq_id>",
	    "f41-signing-pending-side-90", to), 1);
	assert_string_equal(to, "f41-updates-testing-pending-90");
	/* a digit right after the number in the template */
	assert_int_equal(m("s-<seq_id>", "<sidetag>0", "<sidetag>", "s-1200",
	    to), 1);
	assert_string_equal(to, "s-120");
}

static void
test_near_misses(void **state)
{
	static const char *const no[] = {
		"f41-build-side--signing-pending",
		"f41-build-side-0-signing-pending",
		"f41-build-side-012-signing-pending",
		"f41-build-side-+12-signing-pending",
		"f41-build-side-12-signing-pending-x",
		"f41-build-side-12x-signing-pending",
		"f41-signing-pending",
		"f41-build-side-1234567890123456789-signing-pending",
		"",
	};
	char to[SIDETAG_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (m(PAT, "<sidetag>-signing-pending", "<sidetag>-testing",
		    no[i], to) != 0)
			fail_msg("matched: '%s'", no[i]);
	/* the same number wherever <seq_id> is */
	assert_int_equal(m("a-<seq_id>", "<sidetag>-<seq_id>", "<sidetag>",
	    "a-12-12", to), 1);
	assert_int_equal(m("a-<seq_id>", "<sidetag>-<seq_id>", "<sidetag>",
	    "a-12-13", to), 0);
	assert_int_equal(m("a-<seq_id>", "<sidetag>-<seq_id>", "<sidetag>",
	    "a-12-123", to), 0);
	/* a template without <seq_id> is no side tag */
	assert_int_equal(m("fixed", "<sidetag>", "x", "fixed", to), 0);
}

static void
test_too_long(void **state)
{
	char big[SIDETAG_MAX + 8], to[8];

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(m(big, "<sidetag>", "x", "a", to), -1);
	/* to_out too small for the filled-in "to" */
	assert_int_equal(sidetag_match("s-<seq_id>", "<sidetag>",
	    "<sidetag>-testing", "f", "t", "s-5", to, sizeof(to)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fedora_names),
		cmocka_unit_test(test_near_misses),
		cmocka_unit_test(test_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
