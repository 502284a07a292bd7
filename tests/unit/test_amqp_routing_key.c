/*
 * amqp_routing_key(): the subject of a proton-built message, else its
 * "x-routing-key" message annotation (RabbitMQ 4), else "".
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <proton/codec.h>
#include <proton/message.h>

#include "amqp_routing_key.h"

/* A message with these annotations (key symbol -> string value). */
static pn_message_t *
annotated(const char *subject, const char *const *kv, size_t n)
{
	pn_message_t *m = pn_message();
	pn_data_t *d = pn_message_annotations(m);
	size_t i;

	assert_non_null(m);
	if (subject)
		assert_int_equal(pn_message_set_subject(m, subject), 0);
	if (n == 0)
		return m;
	pn_data_put_map(d);
	pn_data_enter(d);
	for (i = 0; i < n; i += 2) {
		pn_data_put_symbol(d, pn_bytes(strlen(kv[i]), kv[i]));
		pn_data_put_string(d, pn_bytes(strlen(kv[i + 1]), kv[i + 1]));
	}
	pn_data_exit(d);
	return m;
}

/* The key as a C string, for comparing (cut at 8 KiB: none here is). */
static const char *
key_of(pn_message_t *m)
{
	static char text[8192];
	pn_bytes_t k;

	assert_true(amqp_routing_key(m, &k));

	assert_true(k.size < sizeof(text));
	assert_non_null(k.start);
	memcpy(text, k.start, k.size);
	text[k.size] = '\0';
	return text;
}

static void
subject_wins(void **state)
{
	const char *kv[] = { "x-routing-key", "from.annotation" };
	pn_message_t *m = annotated("from.subject", kv, 2);

	(void)state;
	assert_string_equal(key_of(m), "from.subject");
	pn_message_free(m);
}

static void
annotation_without_subject(void **state)
{
	const char *kv[] = { "x-exchange", "amq.topic", "x-routing-key",
	    "org.fedoraproject.prod.bodhi.update.comment" };
	pn_message_t *m = annotated(NULL, kv, 4);

	(void)state;
	assert_string_equal(key_of(m),
	    "org.fedoraproject.prod.bodhi.update.comment");
	pn_message_free(m);
}

static void
neither_is_empty(void **state)
{
	const char *kv[] = { "x-exchange", "amq.topic" };
	pn_message_t *m = annotated(NULL, kv, 2), *bare = pn_message();

	(void)state;
	assert_string_equal(key_of(m), "");
	assert_string_equal(key_of(bare), "");
	pn_message_free(m);
	pn_message_free(bare);
}

/* A topic is never cut: a cut one would be another topic. */
static void
long_keys_come_whole(void **state)
{
	static char longer[5000];
	const char *kv[] = { "x-routing-key", longer };
	pn_message_t *a, *b;

	(void)state;
	memset(longer, 'k', sizeof(longer) - 1);
	a = annotated(longer, NULL, 0);
	b = annotated(NULL, kv, 2);
	assert_int_equal(strlen(key_of(a)), sizeof(longer) - 1);
	assert_string_equal(key_of(a), longer);
	assert_int_equal(strlen(key_of(b)), sizeof(longer) - 1);
	assert_string_equal(key_of(b), longer);
	pn_message_free(a);
	pn_message_free(b);
}

/* A key with a NUL inside is refused, not cut at the NUL. */
static void
nul_in_annotation_refused(void **state)
{
	pn_message_t *m = pn_message();
	pn_data_t *d = pn_message_annotations(m);
	pn_bytes_t k;

	(void)state;
	pn_data_put_map(d);
	pn_data_enter(d);
	pn_data_put_symbol(d, pn_bytes(13, "x-routing-key"));
	pn_data_put_string(d, pn_bytes(12, "org.x\0.evil"));
	pn_data_exit(d);
	assert_false(amqp_routing_key(m, &k));
	assert_int_equal(k.size, 12);
	pn_message_free(m);
}

static void
non_string_annotation_is_ignored(void **state)
{
	pn_message_t *m = pn_message();
	pn_data_t *d = pn_message_annotations(m);

	(void)state;
	pn_data_put_map(d);
	pn_data_enter(d);
	pn_data_put_symbol(d, pn_bytes(13, "x-routing-key"));
	pn_data_put_int(d, 42);
	pn_data_exit(d);
	assert_string_equal(key_of(m), "");
	pn_message_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(subject_wins),
		cmocka_unit_test(annotation_without_subject),
		cmocka_unit_test(neither_is_empty),
		cmocka_unit_test(long_keys_come_whole),
		cmocka_unit_test(nul_in_annotation_refused),
		cmocka_unit_test(non_string_annotation_is_ignored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
