/*
 * Unit tests for fedmsg-tail --broker --topic on AMQP 0-9-1
 * (tools/topic_binding.h): a prefix becomes a routing-key pattern taken
 * at a word, and a prefix another one covers gets no binding of its own
 * (a message must not arrive twice through two private queues).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "topic_binding.h"

/* patterns joined by spaces, for one comparison */
static void
expect(const char *const *prefixes, size_t n, const char *want)
{
	char **got = topic_bindings(prefixes, n), text[512] = "";
	size_t i;

	assert_non_null(got);
	for (i = 0; got[i]; i++) {
		if (i)
			strcat(text, " ");
		strcat(text, got[i]);
	}
	assert_string_equal(text, want);
	topic_bindings_free(got);
}

static void
test_none_is_everything(void **state)
{
	(void)state;
	expect(NULL, 0, "#");
}

static void
test_prefix_at_a_word(void **state)
{
	const char *p[] = { "org.fedoraproject.prod.bodhi",
	    "org.fedoraproject.prod.git." };

	(void)state;
	expect(p, 2, "org.fedoraproject.prod.bodhi.# "
	    "org.fedoraproject.prod.git.#");
}

static void
test_covered_prefixes_bind_once(void **state)
{
	const char *p[] = { "a.b.c", "a.b", "a.bc", "a.b.", "a.b" };
	const char *q[] = { "a.b", "", "x" };

	(void)state;
	/* a.b.c and the repeats are inside a.b; a.bc is not */
	expect(p, 5, "a.b.# a.bc.#");
	/* an empty prefix is everything */
	expect(q, 3, "#");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_none_is_everything),
		cmocka_unit_test(test_prefix_at_a_word),
		cmocka_unit_test(test_covered_prefixes_bind_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
