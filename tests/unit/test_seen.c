/*
 * Unit tests of the bridges' loop-prevention window (bridge/seen.h):
 * what is added is found for at least a window of later adds, what was
 * never added is not, and memory stays two fixed tables.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "seen.h"

/* A msg_id in fedmsg's shape: year, then a UUID. */
static void
msg_id(char *out, size_t n, unsigned i)
{
	snprintf(out, n, "2026-%08x-1c2d-4e5f-8a9b-%012x", i * 2654435761u,
	    i);
}

static void
test_found_within_window(void **state)
{
	struct seen *s = seen_new(1000);
	char id[64];
	unsigned i;

	(void)state;
	assert_non_null(s);
	for (i = 0; i < 1000; i++) {
		msg_id(id, sizeof(id), i);
		assert_false(seen_has(s, seen_key(id)));
		seen_add(s, seen_key(id));
		assert_true(seen_has(s, seen_key(id)));
	}
	/* the whole window is still there, a generation later too */
	for (i = 1000; i < 2000; i++) {
		msg_id(id, sizeof(id), i);
		seen_add(s, seen_key(id));
	}
	for (i = 0; i < 2000; i++) {
		msg_id(id, sizeof(id), i);
		assert_true(seen_has(s, seen_key(id)));
	}
	seen_free(s);
}

/* Two windows later an id is forgotten: memory is bounded. */
static void
test_forgotten_after_two_windows(void **state)
{
	struct seen *s = seen_new(100);
	char id[64];
	unsigned i;

	(void)state;
	msg_id(id, sizeof(id), 7);
	seen_add(s, seen_key(id));
	for (i = 1000; i < 1200; i++) {
		char other[64];

		msg_id(other, sizeof(other), i);
		seen_add(s, seen_key(other));
	}
	assert_false(seen_has(s, seen_key(id)));
	seen_free(s);
}

/* Adding again does not take another slot or push anything out. */
static void
test_add_twice(void **state)
{
	struct seen *s = seen_new(3);
	uint64_t a = seen_key("a"), b = seen_key("b"), c = seen_key("c");

	(void)state;
	seen_add(s, a);
	seen_add(s, a);
	seen_add(s, a);
	seen_add(s, b);
	seen_add(s, c);
	assert_true(seen_has(s, a) && seen_has(s, b) && seen_has(s, c));
	seen_free(s);
}

/* Keys are never 0 (a free slot) and differ for ids differing anywhere. */
static void
test_keys(void **state)
{
	char id[64], other[64];
	size_t i, len;

	(void)state;
	assert_int_not_equal(seen_key(""), 0);
	msg_id(id, sizeof(id), 42);
	for (len = 0; id[len]; len++)
		;
	for (i = 0; i < len; i++) {
		snprintf(other, sizeof(other), "%s", id);
		other[i] = other[i] == 'f' ? 'e' : 'f';
		assert_true(seen_key(other) != seen_key(id));
	}
	snprintf(other, sizeof(other), "%s", id);
	other[len - 1] = '\0';
	assert_true(seen_key(other) != seen_key(id));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found_within_window),
		cmocka_unit_test(test_forgotten_after_two_windows),
		cmocka_unit_test(test_add_twice),
		cmocka_unit_test(test_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
