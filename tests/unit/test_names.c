/* names_split: the --only / --with-consumers lists. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "names.h"

static void
splits_at_commas_and_skips_empty_names(void **state)
{
	char list[] = "a,,bc,d,";
	const char *out[5];
	char err[FM_ERRLEN];

	(void)state;
	assert_int_equal(names_split(list, out, 5, err), 3);
	assert_string_equal(out[0], "a");
	assert_string_equal(out[1], "bc");
	assert_string_equal(out[2], "d");
	assert_null(out[3]);
}

static void
too_many_names_is_an_error_not_a_cut(void **state)
{
	char list[] = "a,b,c,d";
	const char *out[4];
	char err[FM_ERRLEN] = "";

	(void)state;
	assert_int_equal(names_split(list, out, 4, err), -1);
	assert_string_equal(err, "more than 3 names in the list");
}

static void
exactly_cap_minus_one_names_fit(void **state)
{
	char list[] = "a,b,c";
	const char *out[4];
	char err[FM_ERRLEN];

	(void)state;
	assert_int_equal(names_split(list, out, 4, err), 3);
	assert_null(out[3]);
}

static void
an_empty_list_is_an_error(void **state)
{
	char list[] = ",,";
	const char *out[4];
	char err[FM_ERRLEN] = "";

	(void)state;
	assert_int_equal(names_split(list, out, 4, err), -1);
	assert_string_equal(err, "an empty list of names");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(splits_at_commas_and_skips_empty_names),
		cmocka_unit_test(too_many_names_is_an_error_not_a_cut),
		cmocka_unit_test(exactly_cap_minus_one_names_fit),
		cmocka_unit_test(an_empty_list_is_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
