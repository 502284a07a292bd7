/*
 * Unit tests of the window of msg_ids seen lately (libfedmsg/id_window.h),
 * the bridges' loop prevention and the hub's de-duplication: an id is
 * remembered for at least half a window of later ids and forgotten after
 * a whole one, what was never added is not found, and memory stays two
 * fixed tables.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "id_window.h"

/* A msg_id in fedmsg's shape: year, then a UUID. */
static void
msg_id(char *out, size_t n, unsigned i)
{
	snprintf(out, n, "2026-%08x-1c2d-4e5f-8a9b-%012x", i * 2654435761u,
	    i);
}

static bool
has_id(const struct id_window *w, unsigned i)
{
	char id[64];

	msg_id(id, sizeof(id), i);
	return id_window_has(w, id_window_key(id));
}

static void
add_id(struct id_window *w, unsigned i)
{
	char id[64];

	msg_id(id, sizeof(id), i);
	id_window_add(w, id_window_key(id));
}

/* Every id is found right after it is added and for half a window more. */
static void
test_found_within_half_window(void **state)
{
	struct id_window *w = id_window_new(2000);
	unsigned i, j;

	(void)state;
	assert_non_null(w);
	for (i = 0; i < 5000; i++) {
		assert_false(has_id(w, i));
		add_id(w, i);
		assert_true(has_id(w, i));
		if (i % 250 == 0)
			for (j = i >= 1000 ? i - 1000 : 0; j <= i; j++)
				assert_true(has_id(w, j));
	}
	id_window_free(w);
}

/* A whole window later an id is forgotten: memory is bounded. */
static void
test_forgotten_after_window(void **state)
{
	struct id_window *w = id_window_new(200);
	unsigned i;

	(void)state;
	add_id(w, 7);
	for (i = 1000; i < 1200; i++)
		add_id(w, i);
	assert_false(has_id(w, 7));
	id_window_free(w);
}

/* Adding again does not take another slot or push anything out. */
static void
test_add_twice(void **state)
{
	struct id_window *w = id_window_new(6);
	uint64_t a = id_window_key("a"), b = id_window_key("b");
	uint64_t c = id_window_key("c");

	(void)state;
	id_window_add(w, a);
	id_window_add(w, a);
	id_window_add(w, a);
	id_window_add(w, b);
	id_window_add(w, c);
	assert_true(id_window_has(w, a) && id_window_has(w, b) &&
	    id_window_has(w, c));
	id_window_free(w);
}

/* id_window_seen: false the first time (and remembers), true after. */
static void
test_seen(void **state)
{
	struct id_window *w = id_window_new(1);

	(void)state;
	assert_false(id_window_seen(w, "2026-a"));
	assert_true(id_window_seen(w, "2026-a"));
	assert_false(id_window_seen(w, "2026-b"));
	assert_true(id_window_seen(w, "2026-b"));
	id_window_free(w);
}

/* Keys are never 0 (a free slot) and differ for ids differing anywhere. */
static void
test_keys(void **state)
{
	char id[64], other[64];
	size_t i, len;

	(void)state;
	assert_int_not_equal(id_window_key(""), 0);
	msg_id(id, sizeof(id), 42);
	for (len = 0; id[len]; len++)
		;
	for (i = 0; i < len; i++) {
		snprintf(other, sizeof(other), "%s", id);
		other[i] = other[i] == 'f' ? 'e' : 'f';
		assert_true(id_window_key(other) != id_window_key(id));
	}
	snprintf(other, sizeof(other), "%s", id);
	other[len - 1] = '\0';
	assert_true(id_window_key(other) != id_window_key(id));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found_within_half_window),
		cmocka_unit_test(test_forgotten_after_window),
		cmocka_unit_test(test_add_twice),
		cmocka_unit_test(test_seen),
		cmocka_unit_test(test_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
