/*
 * AMQP 0-9-1 field tables <-> JSON (amqp091_table.h), for message headers
 * and declaration arguments.  Types survive the trip both ways as far as
 * JSON has them: integers stay integers (fedora-messaging's severity must
 * be one), booleans stay booleans.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "amqp091_table.h"

#define MAX_DEPTH	16	/* nested tables/arrays accepted */

static int value_from_json(json_t *v, amqp_pool_t *pool,
    amqp_field_value_t *out, int depth);
static int table_from_json(json_t *obj, amqp_pool_t *pool, amqp_table_t *out,
    int depth);

static int
array_from_json(json_t *arr, amqp_pool_t *pool, amqp_array_t *out, int depth)
{
	size_t i, n = json_array_size(arr);

	out->num_entries = (int)n;
	out->entries = n ? amqp_pool_alloc(pool, n * sizeof(*out->entries)) :
	    NULL;
	if (n && out->entries == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if (value_from_json(json_array_get(arr, i), pool,
		    &out->entries[i], depth + 1) < 0)
			return -1;
	return 0;
}

static int
value_from_json(json_t *v, amqp_pool_t *pool, amqp_field_value_t *out,
    int depth)
{
	if (depth > MAX_DEPTH)
		return -1;
	switch (json_typeof(v)) {
	case JSON_STRING:
		out->kind = AMQP_FIELD_KIND_UTF8;
		out->value.bytes.len = json_string_length(v);
		out->value.bytes.bytes = (void *)json_string_value(v);
		return 0;
	case JSON_INTEGER:
		out->kind = AMQP_FIELD_KIND_I64;
		out->value.i64 = json_integer_value(v);
		return 0;
	case JSON_REAL:
		out->kind = AMQP_FIELD_KIND_F64;
		out->value.f64 = json_real_value(v);
		return 0;
	case JSON_TRUE:
	case JSON_FALSE:
		out->kind = AMQP_FIELD_KIND_BOOLEAN;
		out->value.boolean = json_is_true(v);
		return 0;
	case JSON_NULL:
		out->kind = AMQP_FIELD_KIND_VOID;
		return 0;
	case JSON_ARRAY:
		out->kind = AMQP_FIELD_KIND_ARRAY;
		return array_from_json(v, pool, &out->value.array, depth);
	case JSON_OBJECT:
		out->kind = AMQP_FIELD_KIND_TABLE;
		return table_from_json(v, pool, &out->value.table, depth);
	}
	return -1;
}

/* obj as a table whose values are at depth + 1 (the limit counts
   tables and arrays alike). */
static int
table_from_json(json_t *obj, amqp_pool_t *pool, amqp_table_t *out, int depth)
{
	const char *key;
	json_t *v;
	int n = 0;

	out->num_entries = 0;
	out->entries = NULL;
	if (obj == NULL || json_object_size(obj) == 0)
		return 0;
	if (!json_is_object(obj))
		return -1;
	out->entries = amqp_pool_alloc(pool, json_object_size(obj) *
	    sizeof(*out->entries));
	if (out->entries == NULL)
		return -1;
	json_object_foreach(obj, key, v) {
		/* AMQP keys are short strings: 128 bytes at most by spec */
		if (strlen(key) > 128)
			return -1;
		out->entries[n].key = amqp_cstring_bytes(key);
		if (value_from_json(v, pool, &out->entries[n].value,
		    depth + 1) < 0)
			return -1;
		n++;
	}
	out->num_entries = n;
	return 0;
}

int
amqp091_table_from_json(json_t *obj, amqp_pool_t *pool, amqp_table_t *out)
{
	return table_from_json(obj, pool, out, 0);
}

static json_t *value_to_json(const amqp_field_value_t *v, int depth);

/* JSON has no NaN or infinity (jansson refuses them): null, as for bytes
   that are not UTF-8, so that one such header does not lose the others. */
static json_t *
real_to_json(double d)
{
	return isfinite(d) ? json_real(d) : json_null();
}

static json_t *
table_to_json(const amqp_table_t *t, int depth)
{
	json_t *o = json_object();
	int i;

	if (o == NULL || depth > MAX_DEPTH) {
		json_decref(o);
		return NULL;
	}
	for (i = 0; i < t->num_entries; i++) {
		char key[257];
		json_t *v = value_to_json(&t->entries[i].value, depth + 1);
		size_t n = t->entries[i].key.len < 256 ? t->entries[i].key.len :
		    256;

		if (v == NULL) {
			json_decref(o);
			return NULL;
		}
		memcpy(key, t->entries[i].key.bytes, n);
		key[n] = '\0';
		json_object_set_new(o, key, v);
	}
	return o;
}

static json_t *
value_to_json(const amqp_field_value_t *v, int depth)
{
	json_t *a;
	int i;

	if (depth > MAX_DEPTH)
		return NULL;
	switch (v->kind) {
	case AMQP_FIELD_KIND_BOOLEAN:
		return json_boolean(v->value.boolean);
	case AMQP_FIELD_KIND_I8:
		return json_integer(v->value.i8);
	case AMQP_FIELD_KIND_U8:
		return json_integer(v->value.u8);
	case AMQP_FIELD_KIND_I16:
		return json_integer(v->value.i16);
	case AMQP_FIELD_KIND_U16:
		return json_integer(v->value.u16);
	case AMQP_FIELD_KIND_I32:
		return json_integer(v->value.i32);
	case AMQP_FIELD_KIND_U32:
		return json_integer(v->value.u32);
	case AMQP_FIELD_KIND_I64:
		return json_integer(v->value.i64);
	case AMQP_FIELD_KIND_U64:
	case AMQP_FIELD_KIND_TIMESTAMP:
		/* above JSON's (jansson's) integers: a number all the same */
		if (v->value.u64 > (uint64_t)INT64_MAX)
			return real_to_json((double)v->value.u64);
		return json_integer((json_int_t)v->value.u64);
	case AMQP_FIELD_KIND_F32:
		return real_to_json(v->value.f32);
	case AMQP_FIELD_KIND_F64:
		return real_to_json(v->value.f64);
	case AMQP_FIELD_KIND_DECIMAL: {
		/* signed, as pika and the Java client write and read it
		 * (rabbitmq-c keeps it in a uint32_t) */
		double d = (int32_t)v->value.decimal.value;
		unsigned k;

		for (k = 0; k < v->value.decimal.decimals && k < 20; k++)
			d /= 10;
		return real_to_json(d);
	}
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES:
		/* not UTF-8 (binary 'x'): null rather than a broken string */
		a = json_stringn(v->value.bytes.bytes, v->value.bytes.len);
		return a ? a : json_null();
	case AMQP_FIELD_KIND_ARRAY:
		if ((a = json_array()) == NULL)
			return NULL;
		for (i = 0; i < v->value.array.num_entries; i++) {
			json_t *e = value_to_json(&v->value.array.entries[i],
			    depth + 1);

			if (e == NULL) {
				json_decref(a);
				return NULL;
			}
			json_array_append_new(a, e);
		}
		return a;
	case AMQP_FIELD_KIND_TABLE:
		return table_to_json(&v->value.table, depth);
	case AMQP_FIELD_KIND_VOID:
	default:
		return json_null();
	}
}

json_t *
amqp091_table_to_json(const amqp_table_t *t)
{
	return table_to_json(t, 0);
}
