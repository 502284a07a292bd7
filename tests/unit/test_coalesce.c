/*
 * Unit tests of the bridges' coalescing rule (bridge/coalesce.h): which
 * loop turns are followed by a wait, and how long.  Linked with the
 * bridge's archive (Makefile UNIT_BRIDGE).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "coalesce.h"

/* An idle turn has nothing to gather: no wait, even when one is asked. */
static void
test_idle_turn_does_not_wait(void **state)
{
	const uint64_t taken[] = { 0, 0 };
	const unsigned us[] = { 500, 200 };

	(void)state;
	assert_int_equal(coalesce_wait(taken, us, 2), 0);
	assert_int_equal(coalesce_wait(taken, us, 0), 0);
}

/* A few messages: the bridge's own wait; 1 and COALESCE_FEW - 1 count. */
static void
test_a_few_messages_wait(void **state)
{
	uint64_t taken[] = { 1 };
	const unsigned us[] = { 500 };

	(void)state;
	assert_int_equal(coalesce_wait(taken, us, 1), 500);
	taken[0] = COALESCE_FEW - 1;
	assert_int_equal(coalesce_wait(taken, us, 1), 500);
}

/* A busy bridge must not be slowed, whoever else took a few. */
static void
test_a_busy_bridge_never_waits(void **state)
{
	const uint64_t taken[] = { 3, COALESCE_FEW, 2 };
	const unsigned us[] = { 500, 0, 500 };

	(void)state;
	assert_int_equal(coalesce_wait(taken, us, 3), 0);
}

/* Bridges that ask for no wait (AMQP, zmq -> broker) do not count; of
   the others the shortest wait wins. */
static void
test_the_shortest_asked_wait(void **state)
{
	const uint64_t taken[] = { 4, 2, 7, 0 };
	const unsigned us[] = { 0, 800, 300, 100 };

	(void)state;
	assert_int_equal(coalesce_wait(taken, us, 4), 300);
	assert_int_equal(coalesce_wait(taken, us, 1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_turn_does_not_wait),
		cmocka_unit_test(test_a_few_messages_wait),
		cmocka_unit_test(test_a_busy_bridge_never_waits),
		cmocka_unit_test(test_the_shortest_asked_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
