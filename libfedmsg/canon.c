/*
 * fedmsg's canonical JSON.  Every rule here mirrors CPython's C encoder for
 * json.dumps(sort_keys=True, separators=(',', ':')) with its defaults
 * (ensure_ascii, allow_nan); see README.md, "Canonical JSON".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ascii8.h"
#include "canon.h"
#include "utf8.h"

/* Split "%.*e" output "d[.ddd]e[+-]XX" into digit characters and exponent. */
static int
split_e(const char *tmp, char *digits, int *e)
{
	int nd = 0;

	for (; *tmp != 'e'; tmp++)
		if (*tmp != '.')
			digits[nd++] = *tmp;
	*e = atoi(tmp + 1);
	return nd;
}

static bool
reads_back(const char *digits, int nd, int e, double x)
{
	char tmp[48];

	snprintf(tmp, sizeof(tmp), "%c.%.*se%d", digits[0], nd - 1, digits + 1, e);
	return strtod(tmp, NULL) == x;
}

/*
 * The n-digit neighbour of digits (same length) one unit in the last place
 * up (dir 1) or down (dir -1), exponent adjusted across powers of ten.
 */
static void
step(char *d, int n, int *e, int dir)
{
	int i;

	if (dir > 0) {
		for (i = n - 1; i >= 0 && d[i] == '9'; i--)
			d[i] = '0';
		if (i >= 0) {
			d[i]++;
		} else {		/* 99.9 -> 100 */
			d[0] = '1';
			(*e)++;
		}
	} else {
		for (i = n - 1; i >= 0 && d[i] == '0'; i--)
			d[i] = '9';
		d[i]--;			/* d[0] >= '1' for a normalised x */
		if (d[0] == '0') {	/* 1.00 -> 0.99 -> 9.99e-1 */
			memmove(d, d + 1, (size_t)n - 1);
			d[n - 1] = '9';
			(*e)--;
		}
	}
}

/*
 * An n-digit decimal that reads back as x (x > 0), nearest to x, if any.
 * glibc's "%.*e" is correctly rounded, so it gives the nearest n-digit
 * value; only next to a power of two, where the gap below x is half the
 * gap above, can that one miss while a neighbour still reads back.
 */
static bool
candidate(double x, int n, char *digits, int *e)
{
	char tmp[48], nb[20];
	int ne;

	snprintf(tmp, sizeof(tmp), "%.*e", n - 1, x);
	split_e(tmp, digits, e);
	if (strtod(tmp, NULL) == x)
		return true;
	for (int dir = 1; dir >= -1; dir -= 2) {
		memcpy(nb, digits, (size_t)n);
		ne = *e;
		step(nb, n, &ne, dir);
		if (reads_back(nb, n, ne, x)) {
			memcpy(digits, nb, (size_t)n);
			*e = ne;
			return true;
		}
	}
	return false;
}

/*
 * Most floats in messages are short decimals (timestamps, versions): x =
 * r / 10^k for an integer r < 10^15.  For the smallest such k, x * 10^k
 * rounds to r (its error is below 1/4 while r < 2^50), and r / 10^k == x
 * in double arithmetic says the decimal reads back as x (both operands
 * exact, the quotient correctly rounded, as strtod).  No shorter decimal
 * reads back (it would be found at a smaller k) and no other of <= 15
 * digits does (see canon_float), so this is Python's repr.  Writes it in
 * fixed notation (x in [1e-4, 1e15)) and returns its length, or 0.
 */
static size_t
short_decimal(double x, char *o)
{
	static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6,
	    1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
	    1e18 };
	char digits[20];
	unsigned long long r;
	int k, nd = 0, i;
	char *start = o;

	if (!(x >= 1e-4 && x < 1e15))
		return 0;
	for (k = 0;; k++) {
		double y;

		if (k >= (int)(sizeof(pow10) / sizeof(pow10[0])) ||
		    (y = x * pow10[k]) >= 1e15)
			return 0;
		r = (unsigned long long)(y + 0.5);	/* y >= 0 */
		if ((double)r / pow10[k] == x)
			break;
	}
	do {
		digits[nd++] = (char)('0' + r % 10);
		r /= 10;
	} while (r);
	/* digits holds r backwards; k of them go after the point */
	if (nd <= k) {
		*o++ = '0';
		*o++ = '.';
		for (i = k - nd; i > 0; i--)
			*o++ = '0';
		while (nd > 0)
			*o++ = digits[--nd];
	} else {
		while (nd > k)
			*o++ = digits[--nd];
		*o++ = '.';
		if (k == 0)
			*o++ = '0';
		while (nd > 0)
			*o++ = digits[--nd];
	}
	*o = '\0';
	return (size_t)(o - start);
}

/*
 * Python's repr(float): the shortest digit string that reads back as x
 * (the nearest such, as David Gay's dtoa mode 0), in fixed notation when
 * the decimal exponent e is in [-4, 16), else as d.ddde+XX.  Whether some
 * n-digit string reads back is monotonic in n, so n is found by bisection.
 * First 15 digits (DBL_DIG): no two decimals of 15 significant digits read
 * back as the same double, so when one does, it is the only one, and any
 * shorter string that reads back is it without its trailing zeros: the
 * answer in one probe, for most floats in messages.  (Not for subnormal
 * doubles: they carry fewer digits.)
 */
size_t
canon_float(double x, char out[PYFLOAT_MAX])
{
	char digits[20], best[20];
	int lo = 1, hi = 17, e, best_e = 0, nd, i;
	bool found = false;
	char *o = out;

	if (isnan(x))
		return (size_t)snprintf(out, PYFLOAT_MAX, "NaN");
	if (isinf(x))
		return (size_t)snprintf(out, PYFLOAT_MAX, "%sInfinity",
		    x < 0 ? "-" : "");
	if (x == 0.0)
		return (size_t)snprintf(out, PYFLOAT_MAX, "%s0.0",
		    signbit(x) ? "-" : "");
	if (x < 0) {
		*o++ = '-';
		x = -x;
	}
	if ((nd = (int)short_decimal(x, o)) > 0)
		return (size_t)(o - out) + (size_t)nd;
	if (!isnormal(x))
		;			/* bisect over all of 1..17 */
	else if (candidate(x, 15, digits, &e)) {
		memcpy(best, digits, 15);
		best_e = e;
		found = true;
		lo = hi = 15;
	} else
		lo = 16;
	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (candidate(x, mid, digits, &e)) {
			/* the last success is the answer: keep it, no re-run */
			hi = mid;
			memcpy(best, digits, (size_t)mid);
			best_e = e;
			found = true;
		} else
			lo = mid + 1;
	}
	if (found) {
		memcpy(digits, best, (size_t)lo);
		e = best_e;
	} else
		candidate(x, lo, digits, &e);	/* 17 digits always read back */
	nd = lo;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;

	if (e >= -4 && e < 16) {
		if (e < 0) {
			*o++ = '0';
			*o++ = '.';
			for (i = -1; i > e; i--)
				*o++ = '0';
			memcpy(o, digits, (size_t)nd);
			o += nd;
		} else {
			for (i = 0; i <= e; i++)
				*o++ = i < nd ? digits[i] : '0';
			*o++ = '.';
			if (nd > e + 1) {
				memcpy(o, digits + e + 1, (size_t)(nd - e - 1));
				o += nd - e - 1;
			} else {
				*o++ = '0';
			}
		}
	} else {
		*o++ = digits[0];
		if (nd > 1) {
			*o++ = '.';
			memcpy(o, digits + 1, (size_t)(nd - 1));
			o += nd - 1;
		}
		o += snprintf(o, 8, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
	}
	*o = '\0';
	return (size_t)(o - out);
}

static const char hexdig[] = "0123456789abcdef";

static char *
put_u(char *o, unsigned u)
{
	o[0] = '\\';
	o[1] = 'u';
	o[2] = hexdig[(u >> 12) & 15];
	o[3] = hexdig[(u >> 8) & 15];
	o[4] = hexdig[(u >> 4) & 15];
	o[5] = hexdig[u & 15];
	return o + 6;
}

/*
 * The writer below keeps its place in a local cursor o, not in b->len,
 * and sets b->len once at the end: a store to b->len for every comma
 * and string made each append wait for the last one's store to be read
 * back.  Each step returns the cursor past what it wrote, or NULL when
 * out of memory (b->oom is then set and the caller stops).
 */

/* buf_room()'s growing path: b->len catches up with o first. */
static char *
room_grow(struct buf *b, char *o, size_t n)
{
	b->len = (size_t)(o - b->data);
	if (buf_reserve(b, n) == NULL)
		return NULL;
	return b->data + b->len;
}

/* Room at o for n bytes and the NUL after them: o, or where it moved. */
static inline char *
room(struct buf *b, char *o, size_t n)
{
	if ((size_t)(b->data + b->cap - o) > n)
		return o;
	return room_grow(b, o, n);
}

/* The cursor at the end of b's contents, with some room; or NULL. */
static char *
walk_start(struct buf *b)
{
	return buf_reserve(b, 64);
}

/* Close a walk: b holds what was written up to o (NULL: nothing more). */
static void
walk_end(struct buf *b, char *o)
{
	if (o == NULL) {
		b->oom = true;
		return;
	}
	b->len = (size_t)(o - b->data);
	b->data[b->len] = '\0';
}

static char *
string_to(struct buf *b, char *o, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str, *end = s + len;

	/* worst case: every byte a 6-byte escape, plus the quotes */
	if (len > ((size_t)-1) / 8 || (o = room(b, o, len * 6 + 2)) == NULL)
		return NULL;
	*o++ = '"';
	while (s < end) {
		unsigned c;
		size_t used;

		/* o has room: 6 bytes for every byte of s left */
		s = ascii8_skip_copy(s, end, true, &o);
		/* the tail under 16 bytes (most keys are all tail) */
		while (s < end && ascii8_plain(*s))
			*o++ = (char)*s++;
		if (s >= end)
			break;
		c = *s;
		switch (c) {
		case '"': *o++ = '\\'; *o++ = '"'; s++; continue;
		case '\\': *o++ = '\\'; *o++ = '\\'; s++; continue;
		case '\b': *o++ = '\\'; *o++ = 'b'; s++; continue;
		case '\t': *o++ = '\\'; *o++ = 't'; s++; continue;
		case '\n': *o++ = '\\'; *o++ = 'n'; s++; continue;
		case '\f': *o++ = '\\'; *o++ = 'f'; s++; continue;
		case '\r': *o++ = '\\'; *o++ = 'r'; s++; continue;
		default:
			break;
		}
		if (c < 0x80) {		/* other controls and DEL */
			o = put_u(o, c);
			s++;
			continue;
		}
		/* Our parser's strings are WTF-8; anything else comes out as
		 * U+FFFD, a byte at a time, never read out of bounds. */
		if ((used = utf8_decode(s, (size_t)(end - s), &c,
		    UTF8_SURROGATES)) == 0) {
			c = 0xfffd;
			used = 1;
		}
		s += used;
		if (c >= 0x10000) {
			c -= 0x10000;
			o = put_u(o, 0xd800 | (c >> 10));
			o = put_u(o, 0xdc00 | (c & 0x3ff));
		} else {
			o = put_u(o, c);
		}
	}
	*o++ = '"';
	return o;
}

void
canon_string(struct buf *b, const char *str, size_t len)
{
	char *o = walk_start(b);

	walk_end(b, o ? string_to(b, o, str, len) : NULL);
}

/*
 * A string known to need no escapes (struct jv.plain): quotes around it,
 * after sep (',', '{', '[') unless 0, and before colon (':') unless 0.
 */
static inline char *
plain_to(struct buf *b, char *o, char sep, const char *s, size_t len,
    char colon)
{
	if ((o = room(b, o, len + 4)) == NULL)
		return NULL;
	if (sep)
		*o++ = sep;
	o[0] = '"';
	/* most are keys and short values: fixed-size copies the compiler
	 * inlines (overlapping at need) instead of a memcpy call */
	if (len >= 8 && len <= 16) {
		memcpy(o + 1, s, 8);
		memcpy(o + 1 + len - 8, s + len - 8, 8);
	} else if (len >= 4 && len < 8) {
		memcpy(o + 1, s, 4);
		memcpy(o + 1 + len - 4, s + len - 4, 4);
	} else if (len < 4) {
		for (size_t i = 0; i < len; i++)
			o[1 + i] = s[i];
	} else {
		memcpy(o + 1, s, len);
	}
	o[len + 1] = '"';
	o += len + 2;
	if (colon)
		*o++ = colon;
	return o;
}

/* One byte at o (room for it checked). */
static inline char *
byte_to(struct buf *b, char *o, char c)
{
	if ((o = room(b, o, 1)) == NULL)
		return NULL;
	*o = c;
	return o + 1;
}

/* A member's key and its colon, after sep unless 0. */
static inline char *
key_to(struct buf *b, char *o, char sep, const char *key, size_t len,
    bool plain)
{
	if (plain)
		return plain_to(b, o, sep, key, len, ':');
	if (sep && (o = byte_to(b, o, sep)) == NULL)
		return NULL;
	if ((o = string_to(b, o, key, len)) == NULL)
		return NULL;
	return byte_to(b, o, ':');
}

static char *value_to(struct buf *, char *, const struct jv *);

/*
 * value_to() after sep unless 0, with the commonest value, a plain
 * string, without a call.
 */
static inline char *
item_to(struct buf *b, char *o, char sep, const struct jv *v)
{
	if (v->type == JV_STRING && v->plain)
		return plain_to(b, o, sep, v->u.str, v->len, 0);
	if (sep && (o = byte_to(b, o, sep)) == NULL)
		return NULL;
	return value_to(b, o, v);
}

static char *
value_to(struct buf *b, char *o, const struct jv *v)
{
	uint32_t i;

	switch (v->type) {
	case JV_NULL:
	case JV_TRUE:
		if ((o = room(b, o, 4)) == NULL)
			return NULL;
		memcpy(o, v->type == JV_NULL ? "null" : "true", 4);
		return o + 4;
	case JV_FALSE:
		if ((o = room(b, o, 5)) == NULL)
			return NULL;
		memcpy(o, "false", 5);
		return o + 5;
	case JV_INT:
		if ((o = room(b, o, v->len)) == NULL)
			return NULL;
		memcpy(o, v->u.str, v->len);
		return o + v->len;
	case JV_FLOAT:
		/* canon_float() writes its NUL too, in room()'s extra byte */
		if ((o = room(b, o, PYFLOAT_MAX - 1)) == NULL)
			return NULL;
		return o + canon_float(v->u.num, o);
	case JV_STRING:
		if (v->plain)
			return plain_to(b, o, 0, v->u.str, v->len, 0);
		return string_to(b, o, v->u.str, v->len);
	case JV_ARRAY:
		if (v->len == 0 && (o = byte_to(b, o, '[')) == NULL)
			return NULL;
		for (i = 0; i < v->len; i++)
			if ((o = item_to(b, o, i ? ',' : '[', &v->u.items[i])) ==
			    NULL)
				return NULL;
		return byte_to(b, o, ']');
	case JV_OBJECT:
		if (v->len == 0 && (o = byte_to(b, o, '{')) == NULL)
			return NULL;
		for (i = 0; i < v->len; i++) {
			const struct jv_member *m = &v->u.members[i];

			if ((o = key_to(b, o, i ? ',' : '{', m->key, m->key_len,
			    m->key_plain)) == NULL ||
			    (o = item_to(b, o, 0, &m->value)) == NULL)
				return NULL;
		}
		return byte_to(b, o, '}');
	}
	return o;
}

void
canon_value(struct buf *b, const struct jv *v)
{
	char *o = walk_start(b);

	walk_end(b, o ? value_to(b, o, v) : NULL);
}

/* Compare a member key (bytes) with a NUL-free C string key. */
static int
keycmp(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b), n = alen < blen ? alen : blen;
	int c = memcmp(a, b, n);

	return c ? c : (alen > blen) - (alen < blen);
}

static bool
listed(const char *key, size_t len, const char *const *list)
{
	for (; list && *list; list++)
		if ((len ? key[0] : '\0') == (*list)[0] &&	/* most differ here */
		    keycmp(key, len, *list) == 0)
			return true;
	return false;
}

#define MAX_EXTRAS 16

void
canon_object_with(struct buf *b, const struct jv *obj,
    const char *const *skip, const struct canon_extra *extras, size_t nextras)
{
	const struct canon_extra *ex[MAX_EXTRAS];
	uint32_t i = 0, n = obj ? obj->len : 0;
	size_t j, k;
	char sep = '{', *o;

	if (nextras > MAX_EXTRAS) {
		b->oom = true;	/* a programming error; fail closed */
		return;
	}
	/* Insertion-sort the few extras by key. */
	for (j = 0; j < nextras; j++) {
		for (k = j; k > 0 && strcmp(ex[k - 1]->key, extras[j].key) > 0; k--)
			ex[k] = ex[k - 1];
		ex[k] = &extras[j];
	}
	o = walk_start(b);
	for (j = 0; o != NULL && (i < n || j < nextras);) {
		const struct jv_member *m = i < n ? &obj->u.members[i] : NULL;
		int c = m == NULL ? 1 : j == nextras ? -1 :
		    keycmp(m->key, m->key_len, ex[j]->key);

		if (c <= 0) {
			i++;
			/* an extra of the same key replaces the member */
			if (c == 0 || listed(m->key, m->key_len, skip))
				continue;
		}
		if (c < 0) {
			if ((o = key_to(b, o, sep, m->key, m->key_len,
			    m->key_plain)) != NULL)
				o = item_to(b, o, 0, &m->value);
		} else {
			const char *key = ex[j]->key;

			if ((o = key_to(b, o, sep, key, strlen(key), false)) !=
			    NULL && (o = room(b, o, ex[j]->text_len)) != NULL) {
				memcpy(o, ex[j]->text, ex[j]->text_len);
				o += ex[j]->text_len;
			}
			j++;
		}
		sep = ',';
	}
	if (o != NULL && sep == '{')
		o = byte_to(b, o, '{');
	walk_end(b, o ? byte_to(b, o, '}') : NULL);
}
