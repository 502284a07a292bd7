/*
 * libFuzzer target: what the parser accepts survives a round trip.  Any
 * input jv_parse() accepts is re-serialised with the canonical emitter;
 * that text must parse again to the same tree (types, int digits, float
 * bits, string bytes, keys), hold no duplicate key, and an object must
 * never keep two members with one key.  The duplicate flag must be set
 * exactly when some object had fewer members than keys in the input,
 * which is counted here independently (a scan of the input's keys).
 * Any difference calls abort().  tests/integration/test_json_differential
 * compares the same parse with Python's json.loads over the corpora.
 *
 *   make build/fuzz/fuzz_json_roundtrip
 *   build/fuzz/fuzz_json_roundtrip tests/fuzz/corpus/fuzz_json
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/message.h>

#include "buf.h"
#include "canon.h"
#include "json.h"

#include "fuzz_die.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	return c ? c : (an > bn) - (an < bn);
}

/* Same value, same types; NaN equals NaN, -0.0 differs from 0.0. */
static bool
same(const struct jv *a, const struct jv *b)
{
	uint32_t i;

	if (a->type != b->type)
		return false;
	/* len is only defined for these */
	if ((a->type == JV_INT || a->type == JV_STRING || a->type == JV_ARRAY ||
	    a->type == JV_OBJECT) && a->len != b->len)
		return false;
	switch (a->type) {
	case JV_NULL:
	case JV_TRUE:
	case JV_FALSE:
		return true;
	case JV_FLOAT:
		if (isnan(a->u.num) || isnan(b->u.num))
			return isnan(a->u.num) && isnan(b->u.num);
		return memcmp(&a->u.num, &b->u.num, sizeof(double)) == 0;
	case JV_INT:
	case JV_STRING:
		return memcmp(a->u.str, b->u.str, a->len) == 0;
	case JV_ARRAY:
		for (i = 0; i < a->len; i++)
			if (!same(&a->u.items[i], &b->u.items[i]))
				return false;
		return true;
	case JV_OBJECT:
		for (i = 0; i < a->len; i++) {
			const struct jv_member *x = &a->u.members[i];
			const struct jv_member *y = &b->u.members[i];

			if (cmp_bytes(x->key, x->key_len, y->key, y->key_len) ||
			    !same(&x->value, &y->value))
				return false;
		}
		return true;
	}
	return false;
}

/* Objects hold strictly increasing keys (so each key once). */
static void
check_sorted(const struct jv *v)
{
	uint32_t i;

	if (v->type == JV_ARRAY)
		for (i = 0; i < v->len; i++)
			check_sorted(&v->u.items[i]);
	if (v->type != JV_OBJECT)
		return;
	for (i = 0; i < v->len; i++) {
		const struct jv_member *m = &v->u.members[i];

		if (i > 0 && cmp_bytes(m[-1].key, m[-1].key_len, m->key,
		    m->key_len) >= 0)
			die("object keys not strictly increasing", m->key);
		check_sorted(&m->value);
	}
}

/* Members in the tree (after de-duplication). */
static size_t
count_members(const struct jv *v)
{
	size_t n = 0;
	uint32_t i;

	if (v->type == JV_ARRAY)
		for (i = 0; i < v->len; i++)
			n += count_members(&v->u.items[i]);
	if (v->type == JV_OBJECT)
		for (i = 0; i < v->len; i++)
			n += 1 + count_members(&v->u.members[i].value);
	return n;
}

/*
 * Members in the accepted input text: every string followed (after
 * whitespace) by ':' is a key.  Valid JSON is assumed (it parsed).
 */
static size_t
count_keys(const unsigned char *p, size_t n)
{
	size_t i, keys = 0;

	for (i = 0; i < n; i++) {
		if (p[i] != '"')
			continue;
		for (i++; i < n && p[i] != '"'; i++)
			if (p[i] == '\\')
				i++;
		for (i++; i < n && (p[i] == ' ' || p[i] == '\t' ||
		    p[i] == '\n' || p[i] == '\r'); i++)
			;
		if (i < n && p[i] == ':')
			keys++;
		i--;
	}
	return keys;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jv_parse_opts borrow = { 0, true }, copy = { 0, false };
	struct buf b = BUF_INIT;
	struct jv_doc *d1, *d2;
	char err[FM_ERRLEN], *text;
	const char *key;
	size_t key_len, at;
	bool dup;

	if ((text = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	if ((d1 = jv_parse(text, size, &borrow, err)) == NULL) {
		free(text);
		return 0;
	}
	check_sorted(jv_doc_root(d1));
	dup = jv_doc_duplicate(d1, &key, &key_len, &at);
	if (dup != (count_keys(data, size) != count_members(jv_doc_root(d1))))
		die(dup ? "duplicate flagged, yet every key was kept" :
		    "a key was dropped, yet no duplicate flagged", text);
	if (dup && (at >= size || data[at] != '{'))
		die("duplicate's object offset is not a '{'", text);

	canon_value(&b, jv_doc_root(d1));
	if (b.oom)
		die("canon_value", "out of memory");
	if ((d2 = jv_parse(b.data, b.len, &copy, err)) == NULL)
		die("canonical text does not parse", err);
	if (!same(jv_doc_root(d1), jv_doc_root(d2)))
		die("canonical text parses to another tree", b.data);
	if (jv_doc_duplicate(d2, NULL, NULL, NULL))
		die("canonical text holds a duplicate key", b.data);
	jv_doc_free(d2);
	jv_doc_free(d1);
	buf_free(&b);
	free(text);
	return 0;
}
