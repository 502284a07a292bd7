/*
 * JSON Pointer resolution (jptr.h).  Objects in a parsed doc are sorted by
 * key bytes, so a member is a binary search; a token with escapes is
 * decoded into a small stack buffer first (a longer one into the heap,
 * which real field names never need); a token without one is the key.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jptr.h"

int
jptr_check(const char *ptr)
{
	const char *p;

	if (ptr == NULL || (*ptr != '\0' && *ptr != '/'))
		return JPTR_SYNTAX;
	for (p = ptr; *p; p++)
		if (*p == '~' && p[1] != '0' && p[1] != '1')
			return JPTR_SYNTAX;
	return JPTR_OK;
}

/* Decode one reference token [s, e) into out (room for e - s bytes). */
static size_t
unescape(const char *s, const char *e, char *out)
{
	size_t n = 0;

	while (s < e) {
		if (*s == '~') {
			out[n++] = s[1] == '0' ? '~' : '/';
			s += 2;
		} else {
			out[n++] = *s++;
		}
	}
	return n;
}

/* An array index token: "0" or [1-9][0-9]*, within uint32. */
static bool
index_of(const char *s, const char *e, uint32_t *out)
{
	uint64_t n = 0;

	if (s == e || (*s == '0' && e - s > 1))
		return false;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return false;
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > UINT32_MAX)
			return false;
	}
	*out = (uint32_t)n;
	return true;
}

int
jptr_get(const struct jv *root, const char *ptr, const struct jv **out)
{
	const struct jv *v = root;
	const char *s = ptr;
	bool tilde;

	if (ptr == NULL || (*ptr != '\0' && *ptr != '/'))
		return JPTR_SYNTAX;
	/* most pointers have no '~': then every token is its own key */
	if ((tilde = strchr(ptr, '~') != NULL) && jptr_check(ptr) != JPTR_OK)
		return JPTR_SYNTAX;
	while (*s == '/') {
		const char *tok = s + 1, *e = strchrnul(tok, '/');
		size_t n = (size_t)(e - tok);
		uint32_t i;

		if (v->type == JV_OBJECT) {
			if (tilde && memchr(tok, '~', n) != NULL) {
				char small[256], *key = small;

				if (n > sizeof(small) &&
				    (key = malloc(n)) == NULL)
					return JPTR_ABSENT;	/* cannot look */
				n = unescape(tok, e, key);
				v = jv_getn(v, key, n);
				if (key != small)
					free(key);
			} else {
				v = jv_getn(v, tok, n);
			}
		} else if (v->type == JV_ARRAY) {
			v = index_of(tok, e, &i) && i < v->len ?
			    &v->u.items[i] : NULL;
		} else {
			v = NULL;
		}
		if (v == NULL)
			return JPTR_ABSENT;
		s = e;
	}
	*out = v;
	return JPTR_OK;
}

/* Integer text may be borrowed from the input (not NUL-terminated). */
int
jv_as_int64(const struct jv *v, int64_t *out)
{
	char text[24];		/* "-9223372036854775808" and a NUL */
	long long n;
	char *end;

	if (v->type != JV_INT)
		return JPTR_TYPE;
	if (v->len >= sizeof(text))
		return JPTR_RANGE;
	memcpy(text, v->u.str, v->len);
	text[v->len] = '\0';
	errno = 0;
	n = strtoll(text, &end, 10);
	if (errno == ERANGE || *end != '\0')
		return JPTR_RANGE;
	*out = n;
	return JPTR_OK;
}

int
jv_as_double(const struct jv *v, double *out)
{
	char small[64], *text = small;
	double d;

	if (v->type == JV_FLOAT) {
		*out = v->u.num;
		return JPTR_OK;
	}
	if (v->type != JV_INT)
		return JPTR_TYPE;
	if (v->len >= sizeof(small) && (text = malloc(v->len + 1)) == NULL)
		return JPTR_RANGE;
	memcpy(text, v->u.str, v->len);
	text[v->len] = '\0';
	/* strtod rounds correctly, as Python's int -> float does; Python
	 * raises OverflowError where strtod gives inf. */
	d = strtod(text, NULL);
	if (text != small)
		free(text);
	if (isinf(d))
		return JPTR_RANGE;
	*out = d;
	return JPTR_OK;
}

static bool
is_number(const struct jv *v)
{
	return v->type == JV_INT || v->type == JV_FLOAT;
}

int
jv_equal(const struct jv *a, const struct jv *b)
{
	uint32_t i;

	if (is_number(a) && is_number(b)) {
		double x, y;

		if (a->type == JV_INT && b->type == JV_INT)
			return a->len == b->len &&
			    memcmp(a->u.str, b->u.str, a->len) == 0;
		/* int vs float, or two floats: Python compares exactly. */
		if (jv_as_double(a, &x) != JPTR_OK ||
		    jv_as_double(b, &y) != JPTR_OK || x != y)
			return 0;
		if (a->type == JV_INT || b->type == JV_INT) {
			/* the int rounded to y; equal only if y is exactly
			 * that int: glibc prints a double's exact value */
			const struct jv *iv = a->type == JV_INT ? a : b;
			char exact[400];
			int n = snprintf(exact, sizeof(exact), "%.0f", y);

			if (strcmp(exact, "-0") == 0)
				n = snprintf(exact, sizeof(exact), "0");
			return n > 0 && (size_t)n == iv->len &&
			    memcmp(exact, iv->u.str, iv->len) == 0;
		}
		return 1;
	}
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case JV_NULL:
	case JV_FALSE:
	case JV_TRUE:
		return 1;
	case JV_STRING:
		return a->len == b->len &&
		    memcmp(a->u.str, b->u.str, a->len) == 0;
	case JV_ARRAY:
		if (a->len != b->len)
			return 0;
		for (i = 0; i < a->len; i++)
			if (!jv_equal(&a->u.items[i], &b->u.items[i]))
				return 0;
		return 1;
	case JV_OBJECT:
		/* both sorted by key bytes, each key once */
		if (a->len != b->len)
			return 0;
		for (i = 0; i < a->len; i++) {
			const struct jv_member *m = &a->u.members[i],
			    *n = &b->u.members[i];

			if (m->key_len != n->key_len ||
			    memcmp(m->key, n->key, m->key_len) != 0 ||
			    !jv_equal(&m->value, &n->value))
				return 0;
		}
		return 1;
	default:
		return 0;
	}
}
