/*
 * AMQP 0-9-1 field tables <-> JSON (brokers/amqp091_table.c): headers a
 * publisher sent (any field type rabbitmq-c decodes) become JSON without
 * losing the other headers over one JSON cannot hold, and nesting is
 * bounded the same way in both directions.  The wire itself is tested
 * against RabbitMQ (test_bridge_amqp091.py).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp091_table.h"

#define LIMIT	16	/* the nesting amqp091_table.h accepts */

static amqp_table_entry_t
entry(const char *key, amqp_field_value_t v)
{
	amqp_table_entry_t e;

	e.key = amqp_cstring_bytes(key);
	e.value = v;
	return e;
}

static amqp_field_value_t
f64(double d)
{
	amqp_field_value_t v;

	v.kind = AMQP_FIELD_KIND_F64;
	v.value.f64 = d;
	return v;
}

static void
assert_json(json_t *j, const char *want)
{
	char *got;

	assert_non_null(j);
	got = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* One header JSON cannot hold (NaN, infinity, bytes that are not UTF-8)
 * is null; the others are kept with their types. */
static void
test_to_json_keeps_every_header(void **state)
{
	amqp_table_entry_t e[8];
	amqp_field_value_t v;
	amqp_table_t t;
	json_t *j;

	(void)state;
	e[0] = entry("nan", f64(NAN));
	e[1] = entry("inf", f64(-INFINITY));
	v.kind = AMQP_FIELD_KIND_F32;
	v.value.f32 = INFINITY;
	e[2] = entry("inf32", v);
	v.kind = AMQP_FIELD_KIND_I32;
	v.value.i32 = -5;
	e[3] = entry("i32", v);
	v.kind = AMQP_FIELD_KIND_DECIMAL;
	v.value.decimal.decimals = 2;
	v.value.decimal.value = 12345;
	e[4] = entry("decimal", v);
	v.kind = AMQP_FIELD_KIND_UTF8;
	v.value.bytes = amqp_cstring_bytes("caf\xc3\xa9");
	e[5] = entry("text", v);
	v.kind = AMQP_FIELD_KIND_BYTES;
	v.value.bytes = amqp_cstring_bytes("\xff\xfe");
	e[6] = entry("binary", v);
	v.kind = AMQP_FIELD_KIND_BOOLEAN;
	v.value.boolean = 1;
	e[7] = entry("yes", v);
	t.num_entries = 8;
	t.entries = e;
	j = amqp091_table_to_json(&t);
	assert_json(j, "{\"binary\":null,\"decimal\":123.45,\"i32\":-5,"
	    "\"inf\":null,\"inf32\":null,\"nan\":null,\"text\":\"caf\xc3\xa9\","
	    "\"yes\":true}");
	json_decref(j);
}

/* {"k": {"k": ... 1}}: depth tables, the innermost value at depth. */
static json_t *
nested_objects(int depth)
{
	json_t *j = json_integer(1);

	while (depth-- > 0) {
		json_t *o = json_object();

		json_object_set_new(o, "k", j);
		j = o;
	}
	return j;
}

/* [[ ... [1] ... ]] inside one table: arrays count as tables do. */
static json_t *
nested_arrays(int depth)
{
	json_t *j = json_integer(1), *o;

	while (--depth > 0) {
		json_t *a = json_array();

		json_array_append_new(a, j);
		j = a;
	}
	o = json_object();
	json_object_set_new(o, "k", j);
	return o;
}

static void
test_nesting_bound_both_ways(void **state)
{
	json_t *(*make[2])(int) = { nested_objects, nested_arrays };
	amqp_pool_t pool;
	amqp_table_t t;
	int k, depth;

	(void)state;
	for (k = 0; k < 2; k++) {
		for (depth = LIMIT - 1; depth <= LIMIT + 2; depth++) {
			json_t *j = make[k](depth), *back;
			int rc;

			init_amqp_pool(&pool, 4096);
			rc = amqp091_table_from_json(j, &pool, &t);
			if (depth > LIMIT) {
				assert_int_equal(rc, -1);
			} else {
				assert_int_equal(rc, 0);
				back = amqp091_table_to_json(&t);
				assert_non_null(back);
				assert_true(json_equal(back, j));
				json_decref(back);
				if (depth == LIMIT) {
					/* one level more, built by hand */
					amqp_table_entry_t e;
					amqp_table_t outer;

					e.key = amqp_cstring_bytes("k");
					e.value.kind = AMQP_FIELD_KIND_TABLE;
					e.value.value.table = t;
					outer.num_entries = 1;
					outer.entries = &e;
					assert_null(amqp091_table_to_json(
					    &outer));
				}
			}
			empty_amqp_pool(&pool);
			json_decref(j);
		}
	}
}

/*
 * Field values as pika (fedora-messaging's client) writes them: a
 * decimal's value is signed (Decimal("-1.5"): scale 1, value -15), and
 * an unsigned 64-bit value above INT64_MAX stays positive.  Decoded by
 * rabbitmq-c itself, from the bytes on the wire.
 */
static void
test_signed_decimal_and_big_unsigned(void **state)
{
	static const unsigned char wire[] = {
	    0x00, 0x00, 0x00, 0x13,			/* table: 19 octets */
	    0x01, 'd', 'D', 0x01, 0xff, 0xff, 0xff, 0xf1,	/* -1.5 */
	    0x01, 'u', 'L', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
	};
	amqp_bytes_t b = { sizeof(wire), (void *)wire };
	amqp_pool_t pool;
	amqp_table_t t;
	size_t off = 0;
	json_t *j;

	(void)state;
	init_amqp_pool(&pool, 4096);
	assert_int_equal(amqp_decode_table(b, &pool, &t, &off), 0);
	assert_int_equal(t.num_entries, 2);
	j = amqp091_table_to_json(&t);
	assert_non_null(j);
	assert_true(json_number_value(json_object_get(j, "d")) == -1.5);
	assert_true(json_number_value(json_object_get(j, "u")) ==
	    18446744073709551614.0);
	json_decref(j);
	empty_amqp_pool(&pool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_to_json_keeps_every_header),
		cmocka_unit_test(test_nesting_bound_both_ways),
		cmocka_unit_test(test_signed_decimal_and_big_unsigned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
