/*
 * consumers/exec/exec.c's value checks compiled into this test, so that
 * they run under ASan+UBSan (the plugin itself is a release build), with
 * float-cast-overflow on (-fsanitize=undefined leaves it out): {timestamp}
 * of NaN, infinities, 1e30 or negative values must be refused before any
 * conversion, never converted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>

#include "../../consumers/exec/exec.c"

static void
test_timestamp_values(void **state)
{
	static const struct {
		double		 ts;
		const char	*want;		/* NULL: refused */
	} cases[] = {
		{ 0, "0" }, { -0.0, "0" }, { 1700000000, "1700000000" },
		{ 1700000000.25, "1700000000.25" }, { 0.5, "0.5" },
		{ 1e-7, "0" }, { 12.000001, "12.000001" },
		{ 999999999999999.0, "999999999999999" },
		{ 99999999999999.5, "99999999999999.5" },
		{ 1e15, NULL }, { 1e30, NULL }, { DBL_MAX, NULL },
		{ -1, NULL }, { -1e30, NULL }, { -DBL_MAX, NULL },
		{ -DBL_MIN, NULL }, { NAN, NULL }, { -NAN, NULL },
		{ INFINITY, NULL }, { -INFINITY, NULL },
	};
	char buf[64];
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(buf, 'x', sizeof(buf));
		rc = fmt_timestamp(buf, sizeof(buf), cases[i].ts);
		if (cases[i].want == NULL) {
			if (rc != -1)
				fail_msg("%g accepted as '%s'", cases[i].ts, buf);
			continue;
		}
		if (rc != 0 || strcmp(buf, cases[i].want) != 0)
			fail_msg("%.17g: rc %d '%s', want '%s'", cases[i].ts, rc,
			    rc == 0 ? buf : "", cases[i].want);
	}
}

static void
test_id_values(void **state)
{
	static const char *const good[] = { "", "a", "org.fedoraproject.prod."
	    "buildsys.build.state.change", "2024-0e6f0f4a-5a4e-4e8a-9d0b",
	    "ID:host-1234-1:1:1:1", "a_b-c.d:e", "-rf" };
	static const char *const bad[] = { "a b", "a/b", "..", "a..b",
	    "$(x)", "a;b", "a\nb", "caf\xc3\xa9", "a*", "~x", "a'b" };
	size_t i;

	(void)state;
	/* "-rf" is of the set: the '-' rule is make_argv()'s */
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!id_ok(good[i]))
			fail_msg("'%s' refused", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (id_ok(bad[i]))
			fail_msg("'%s' accepted", bad[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timestamp_values),
		cmocka_unit_test(test_id_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
