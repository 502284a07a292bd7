/*
 * brokers/resend_limit.c: refusals counted per send, the pause after each
 * (doubling from RESEND_HOLD_MS), none once given up, a count forgotten
 * when the send is taken, and a full table keeping the oldest tokens (the
 * owner resends the oldest first) unless one has gone stale.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "resend_limit.h"

static void
test_counts_and_pauses(void **state)
{
	struct resend_limit r = { .n = 0 };
	unsigned i;

	(void)state;
	assert_false(resend_limit_holding(&r, 1000));
	for (i = 1; i < RESEND_TRIES; i++) {
		assert_int_equal(resend_limit_count(&r, 7, 1000), i);
		assert_int_equal(r.hold_until, 1000 + (RESEND_HOLD_MS <<
		    (i - 1)));
		assert_true(resend_limit_holding(&r, 1000 + RESEND_HOLD_MS -
		    1));
	}
	assert_false(resend_limit_holding(&r, 1000 + (RESEND_HOLD_MS <<
	    (RESEND_TRIES - 2))));
	/* the last: given up, no pause (the one before has passed) */
	assert_int_equal(resend_limit_count(&r, 7, 9000), RESEND_TRIES);
	assert_false(resend_limit_holding(&r, 9000));
	/* another token counts on its own; a taken one starts over */
	assert_int_equal(resend_limit_count(&r, 8, 9000), 1);
	resend_limit_forget(&r, 7);
	assert_int_equal(resend_limit_count(&r, 7, 9000), 1);
	resend_limit_forget(&r, 99);	/* not counted: nothing happens */
	assert_int_equal(r.n, 2);
}

static void
test_full_table_keeps_the_oldest(void **state)
{
	struct resend_limit r = { .n = 0 };
	uint64_t t;

	(void)state;
	for (t = 100; t < 100 + RESEND_TRACKED; t++)
		assert_int_equal(resend_limit_count(&r, t, 0), 1);
	/* newer than all: not counted (0), but still paused */
	assert_int_equal(resend_limit_count(&r, 1000, 0), 0);
	assert_true(resend_limit_holding(&r, 0));
	/* older: takes the newest one's place */
	assert_int_equal(resend_limit_count(&r, 5, 0), 1);
	assert_int_equal(resend_limit_count(&r, 5, 0), 2);
	assert_int_equal(resend_limit_count(&r, 100 + RESEND_TRACKED - 1, 0),
	    0);
	assert_int_equal(r.n, RESEND_TRACKED);
}

/*
 * Tokens refused once and never again (their messages dropped from a
 * full spool, no verdict ever came) give their places up after
 * RESEND_STALE_MS: a poison message after them is still given up.
 */
static void
test_stale_tokens_give_way(void **state)
{
	struct resend_limit r = { .n = 0 };
	int64_t t0 = 5000, now;
	uint64_t t;
	unsigned i;

	(void)state;
	for (t = 1; t <= RESEND_TRACKED; t++)
		assert_int_equal(resend_limit_count(&r, t, t0), 1);
	/* refused again within the window: token 1 keeps its place */
	assert_int_equal(resend_limit_count(&r, 1, t0 + 10), 2);
	now = t0 + RESEND_STALE_MS - 1;
	assert_int_equal(resend_limit_count(&r, 1000, now), 0);
	now = t0 + RESEND_STALE_MS;
	for (i = 1; i <= RESEND_TRIES; i++, now += RESEND_HOLD_MAX_MS)
		assert_int_equal(resend_limit_count(&r, 1000, now), i);
	assert_int_equal(r.n, RESEND_TRACKED);
	/* the one refused last (token 1) was not the one that gave way */
	assert_int_equal(resend_limit_count(&r, 1, now), 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_and_pauses),
		cmocka_unit_test(test_full_table_keeps_the_oldest),
		cmocka_unit_test(test_stale_tokens_give_way),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
