/*
 * A JSON parser that reads exactly what Python's json.loads() reads and
 * keeps what fedmsg's signatures depend on: int vs float, integers of any
 * length, NUL and lone surrogates in strings, NaN and Infinity.
 *
 * Values are built in an arena owned by the doc.  While a container is
 * being parsed its children sit on a scratch stack and are copied into the
 * arena when it closes, so each container is one contiguous array.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/message.h>

#include "ascii8.h"
#include "json.h"
#include "utf8.h"

/* ---- arena --------------------------------------------------------------- */

struct chunk {
	struct chunk	*next;
	size_t		 used, size;
	max_align_t	 data[];
};

struct jv_doc {
	struct chunk		*chunks;
	struct jv	 root;
	/* the first duplicated key found, and where its object starts */
	const char		*dup_key;
	uint32_t		 dup_key_len;
	size_t			 dup_at;
	bool			 dup;
	struct chunk		*first;	/* in the doc's allocation: not freed alone */
};

/* The first arena chunk comes with the doc: one malloc per parse, not two. */
#define FIRST_CHUNK	4096
#define FIRST_AT	((sizeof(struct jv_doc) + _Alignof(max_align_t) - 1) / \
			    _Alignof(max_align_t) * _Alignof(max_align_t))

/* The newest chunk, with at least need bytes free (a new one if not). */
static struct chunk *
arena_room(struct jv_doc *doc, size_t need)
{
	struct chunk *c = doc->chunks;

	if (c == NULL || c->size - c->used < need) {
		size_t size = c ? c->size * 2 : 4096;

		if (size > 1024 * 1024)
			size = 1024 * 1024;
		if (size < need)
			size = need;
		if ((c = malloc(sizeof(*c) + size)) == NULL)
			return NULL;
		c->size = size;
		c->used = 0;
		c->next = doc->chunks;
		doc->chunks = c;
	}
	return c;
}

static void *
arena_alloc(struct jv_doc *doc, size_t n)
{
	size_t need = (n + 15) & ~(size_t)15;
	struct chunk *c = arena_room(doc, need);

	if (c == NULL)
		return NULL;
	c->used += need;
	return (char *)c->data + c->used - need;
}

/*
 * The free tail of the newest chunk, *room >= n bytes, for something whose
 * size is known only once written there; arena_commit() then takes what
 * it used.  Nothing else may be allocated in between.
 */
static char *
arena_tail(struct jv_doc *doc, size_t n, size_t *room)
{
	struct chunk *c = arena_room(doc, (n + 15) & ~(size_t)15);

	if (c == NULL)
		return NULL;
	*room = c->size - c->used;
	return (char *)c->data + c->used;
}

static void
arena_commit(struct jv_doc *doc, size_t n)
{
	doc->chunks->used += (n + 15) & ~(size_t)15;
}

/*
 * Move the first used bytes of an uncommitted tail (from arena_tail()) to
 * a new tail of at least n > *room bytes, and free the chunk the old one
 * was in if it held nothing else: a long string keeps one chunk, not all
 * those it grew through.
 */
static char *
arena_tail_grow(struct jv_doc *doc, char *tail, size_t used, size_t n,
    size_t *room)
{
	struct chunk *old = doc->chunks;
	char *grown;

	/* n > *room: arena_tail() puts a new chunk in front of old */
	if ((grown = arena_tail(doc, n, room)) == NULL)
		return NULL;
	memcpy(grown, tail, used);
	if (tail == (char *)old->data && old != doc->first) {
		doc->chunks->next = old->next;
		free(old);
	}
	return grown;
}

void
jv_doc_free(struct jv_doc *doc)
{
	struct chunk *c, *next;

	if (doc == NULL)
		return;
	for (c = doc->chunks; c != NULL; c = next) {
		next = c->next;
		if (c != doc->first)
			free(c);
	}
	free(doc);
}

const struct jv *
jv_doc_root(const struct jv_doc *doc)
{
	return &doc->root;
}

/* ---- parser state ----------------------------------------------------- */

struct parser {
	const unsigned char	*s, *p, *end;
	struct jv_doc		*doc;
	size_t			 depth, max_depth;
	bool			 borrow;
	char			*err;
	/* scratch stacks for open containers: the first ones in the parser
	 * itself (an envelope fits), then on the heap */
	struct jv	*vals;
	size_t			 nvals, capvals;
	struct jv_member	*mems;
	size_t			 nmems, capmems;
	struct jv		 vals0[32];
	struct jv_member	 mems0[32];
};

/* Grow a scratch stack of cap elements of size sz (in place at first). */
static void *
stack_grow(void *cur, const void *inline_stack, size_t cap, size_t sz)
{
	void *p;

	if (cur != inline_stack)
		return realloc(cur, cap * 2 * sz);
	if ((p = malloc(cap * 2 * sz)) != NULL)
		memcpy(p, cur, cap * sz);
	return p;
}

static int
fail(struct parser *ps, const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct parser *ps, const unsigned char *at, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ps->err[0] != '\0')
		return -1;	/* keep the first, innermost reason */
	va_start(ap, fmt);
	n = vsnprintf(ps->err, FM_ERRLEN, fmt, ap);
	va_end(ap);
	if (n >= 0 && n < FM_ERRLEN)
		snprintf(ps->err + n, (size_t)(FM_ERRLEN - n), " at byte %zu",
		    (size_t)(at - ps->s));
	return -1;
}

static int
oom(struct parser *ps)
{
	return fail(ps, ps->p, "out of memory");
}

static inline void
skip_ws(struct parser *ps)
{
	const unsigned char *p = ps->p, *end = ps->end;

	/* most calls stop at once, on a byte above ' ' */
	while (p < end && *p <= ' ' && (*p == ' ' || *p == '\t' ||
	    *p == '\n' || *p == '\r'))
		p++;
	ps->p = p;
}

static int parse_value(struct parser *, struct jv *);

static int
hex4(const unsigned char *p, unsigned *out)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		unsigned c = p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

static char *
put_cp(char *o, unsigned cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		/* lone surrogates too: their WTF-8 form */
		*o++ = (char)(0xe0 | cp >> 12);
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18);
		*o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

static int decode_string(struct parser *, const unsigned char *,
    const unsigned char *, const unsigned char *, const char **,
    uint32_t *);

/*
 * Parse a string starting at the opening quote into (*str, *len); *plain
 * tells whether it is printable ASCII without escapes (struct jv.plain).
 * At the first backslash decode_string() takes over.
 */
static int
parse_string(struct parser *ps, const char **str, uint32_t *len, bool *plain)
{
	const unsigned char *start = ps->p, *p = ps->p + 1, *end = ps->end;
	const unsigned char *body = p;
	bool ascii = true;
	char *out;

	for (;;) {
		p = ascii8_skip(p, end, true);
		if (p >= end)
			return fail(ps, start, "Unterminated string");
		if (*p == '"')
			break;
		if (*p == '\\') {
			*plain = false;
			return decode_string(ps, start, body, p, str, len);
		}
		if (*p < 0x20)
			return fail(ps, p, "Invalid control character in string");
		if (*p >= 0x80) {
			unsigned cp;
			size_t n = utf8_decode(p, (size_t)(end - p), &cp, 0);

			if (n == 0)
				return fail(ps, p, "invalid UTF-8");
			ascii = false;
			p += n;
			continue;
		}
		/* DEL (valid, escaped when written) or the tail's bytes */
		ascii &= *p != 0x7f;
		p++;
	}
	*plain = ascii;
	if ((size_t)(p - body) > UINT32_MAX)
		return fail(ps, start, "string too long");
	ps->p = p + 1;
	*len = (uint32_t)(p - body);
	if (ps->borrow) {
		*str = (const char *)body;
		return 0;
	}
	if ((out = arena_alloc(ps->doc, *len + (size_t)1)) == NULL)
		return oom(ps);
	memcpy(out, body, *len);
	out[*len] = '\0';
	*str = out;
	return 0;
}

/*
 * parse_string() for the commonest string, inline: borrowed, printable
 * ASCII and closed within the 16 bytes after its quote (keys and short
 * values); the rest goes to parse_string().  Most of an envelope's fifty
 * strings are such, and a call saved and restored registers for each.
 */
static inline int
parse_short_string(struct parser *ps, const char **str, uint32_t *len,
    bool *plain)
{
#ifdef __SSE2__
	const unsigned char *body = ps->p + 1;

	if (ps->borrow && ps->end - body >= 16) {
		unsigned mask = ascii8_stops16(_mm_loadu_si128(
		    (const __m128i *)(const void *)body), true);

		if (mask != 0) {
			unsigned n = (unsigned)__builtin_ctz(mask);

			if (body[n] == '"') {
				*str = (const char *)body;
				*len = n;
				*plain = true;
				ps->p = body + n + 1;
				return 0;
			}
		}
	}
#endif
	return parse_string(ps, str, len, plain);
}

/* Room asked for beyond the part already scanned; doubled when outgrown. */
#define DECODE_ROOM	4096
/*
 * Kept free past the bound of a bulk copy: an escape or a UTF-8 sequence
 * begun before the bound may write up to 4 bytes past it.
 */
#define DECODE_SLACK	16

/* The longest run between escaped newlines next_line() is tried on. */
#define LINE_MAX_GUESS	256

/*
 * Whether p starts a run of n (>= 16) plain bytes and then an escaped
 * newline; the run is copied to o either way (the caller's room allows
 * it).  Base64 and PEM fields (a certificate, a signature) have one every
 * 76 or 64 bytes: after one such run, testing whether the next is as long
 * takes a branch that predicts well, where scanning to each backslash
 * took an exit mispredicted once a line.
 */
static inline bool
next_line(const unsigned char *p, size_t n, char *o)
{
#ifdef __SSE2__
	unsigned stops = 0;
	size_t k;

	for (k = 0; k + 16 <= n; k += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)
		    (p + k));

		stops |= ascii8_stops16(v, true);
		_mm_storeu_si128((__m128i *)(void *)(o + k), v);
	}
	if (k < n) {	/* the last bytes, in a block that overlaps */
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)
		    (p + n - 16));

		stops |= ascii8_stops16(v, true);
		_mm_storeu_si128((__m128i *)(void *)(o + n - 16), v);
	}
	return stops == 0 && p[n] == '\\' && p[n + 1] == 'n';
#else
	(void)p;
	(void)n;
	(void)o;
	return false;
#endif
}

/*
 * The rest of parse_string() for a string with escapes, from the first one
 * at p (body..p is checked): checked and decoded in one pass, into the
 * arena's free tail.  (Two passes, one to find the end and one to decode,
 * read a certificate field twice.)  Errors come in the order of the text,
 * as from Python's scanner.  What is written never outruns what is read,
 * as an escape never grows, so the tail is outgrown only when it is
 * shorter than the rest of the input.  Out of line, so that the common
 * plain string's call saves fewer registers.
 */
static __attribute__((noinline)) int
decode_string(struct parser *ps, const unsigned char *start,
    const unsigned char *body, const unsigned char *p, const char **str,
    uint32_t *len)
{
	/* run: where the current line began; tried: the end of the last
	 * line next_line() refused */
	const unsigned char *end = ps->end, *run = body, *tried = body;
	size_t room, rest = (size_t)(end - p), want, line = 0;
	char *out, *o;

	want = (size_t)(p - body) + (rest < DECODE_ROOM ? rest : DECODE_ROOM) +
	    2 * DECODE_SLACK;
	if ((out = arena_tail(ps->doc, want, &room)) == NULL)
		return oom(ps);
	memcpy(out, body, (size_t)(p - body));
	o = out + (p - body);
	for (;;) {
		/* free bytes, less the NUL's */
		size_t left = room - 1 - (size_t)(o - out);
		const unsigned char *lim;

		rest = (size_t)(end - p);
		if (rest <= left) {
			lim = end;
		} else if (left >= 2 * DECODE_SLACK) {
			lim = p + left - DECODE_SLACK;
		} else {
			/* outgrown: move to a tail about twice as big */
			size_t used = (size_t)(o - out);

			want = used + (rest < room ? rest : room) +
			    2 * DECODE_SLACK;
			if ((out = arena_tail_grow(ps->doc, out, used, want,
			    &room)) == NULL)
				return oom(ps);
			o = out + used;
			continue;
		}
		while (p < lim) {
			unsigned cp, lo;

			/* failed tries never overlap: each byte is read at
			 * most twice */
			if (line && p >= tried && (size_t)(lim - p) >= line + 2) {
				if (next_line(p, line, o)) {
					o[line] = '\n';
					o += line + 1;
					p += line + 2;
					run = p;
					continue;
				}
				tried = p + line;
				line = 0;
			}
			p = ascii8_skip_copy(p, lim, true, &o);
			if (p >= lim)
				break;
			if (*p == '"')
				goto done;
			if (*p < 0x20)
				return fail(ps, p,
				    "Invalid control character in string");
			if (*p >= 0x80) {
				size_t n = utf8_decode(p, (size_t)(end - p), &cp,
				    0);

				if (n == 0)
					return fail(ps, p, "invalid UTF-8");
				memcpy(o, p, n);
				o += n;
				p += n;
				continue;
			}
			if (*p != '\\') {	/* DEL, or a byte of the tail */
				*o++ = (char)*p++;
				continue;
			}
			if (end - p < 2)
				return fail(ps, start, "Unterminated string");
			switch (p[1]) {
			case '"': *o++ = '"'; p += 2; continue;
			case '\\': *o++ = '\\'; p += 2; continue;
			case '/': *o++ = '/'; p += 2; continue;
			case 'b': *o++ = '\b'; p += 2; continue;
			case 'f': *o++ = '\f'; p += 2; continue;
			case 'n':
				/* a run between newlines: the next may be as long */
				line = p - run >= 16 && p - run <= LINE_MAX_GUESS ?
				    (size_t)(p - run) : 0;
				*o++ = '\n';
				p += 2;
				run = p;
				continue;
			case 'r': *o++ = '\r'; p += 2; continue;
			case 't': *o++ = '\t'; p += 2; continue;
			case 'u':
				break;
			default:
				return fail(ps, p, "Invalid \\escape");
			}
			if (end - p < 6 || hex4(p + 2, &cp) < 0)
				return fail(ps, p, "Invalid \\uXXXX escape");
			p += 6;
			/* A high surrogate followed by an escaped low one is
			 * one code point. */
			if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 &&
			    p[0] == '\\' && p[1] == 'u' &&
			    hex4(p + 2, &lo) == 0 && lo >= 0xdc00 &&
			    lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
				p += 6;
			}
			o = put_cp(o, cp);
		}
		if (p >= end)
			return fail(ps, start, "Unterminated string");
	}
done:
	if ((size_t)(p - body) > UINT32_MAX)
		return fail(ps, start, "string too long");
	ps->p = p + 1;
	*o = '\0';
	*str = out;
	*len = (uint32_t)(o - out);
	arena_commit(ps->doc, (size_t)(o - out) + 1);
	return 0;
}

/*
 * A float lexeme (already validated) whose digits, without the point, make
 * an integer w <= 2^53 and whose power of ten k is within 22 either way:
 * both are exact doubles, so one multiplication or division rounds once
 * and gives what strtod gives (Clinger's fast path).  Timestamps and
 * ratios are such floats; false for the rest, which strtod takes.
 */
static bool
fast_float(const unsigned char *p, const unsigned char *end, double *out)
{
	static const double pow10[] = {
		1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
		1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21,
		1e22
	};
	bool neg = false, eneg = false;
	uint64_t w = 0;
	int digits = 0, k = 0, e = 0;
	double d;

#if FLT_EVAL_METHOD != 0
	return false;	/* x87 double rounding would break the one rounding */
#endif
	if (*p == '-') {
		neg = true;
		p++;
	}
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		w = w * 10 + (unsigned)(*p - '0');
		digits += w != 0;	/* leading zeros are not significant */
	}
	if (p < end && *p == '.')
		for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
			w = w * 10 + (unsigned)(*p - '0');
			digits += w != 0;
			k--;
		}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (*p == '+' || *p == '-')
			eneg = *p++ == '-';
		for (; p < end && *p >= '0' && *p <= '9'; p++)
			if ((e = e * 10 + (*p - '0')) > 1000)
				return false;
		k += eneg ? -e : e;
	}
	/* 19 digits cannot wrap a uint64_t */
	if (digits > 19 || w > (uint64_t)1 << 53 || k < -22 || k > 22)
		return false;
	d = (double)w;
	d = k >= 0 ? d * pow10[k] : d / pow10[-k];
	*out = neg ? -d : d;
	return true;
}

static int
parse_number(struct parser *ps, struct jv *v)
{
	const unsigned char *start = ps->p, *p = ps->p, *end = ps->end;
	const unsigned char *digits;
	bool is_float = false;
	size_t n;

	if (p < end && *p == '-')
		p++;
	digits = p;
	if (p < end && *p == '0') {
		p++;
	} else if (p < end && *p >= '1' && *p <= '9') {
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	} else {
		return fail(ps, start, "Expecting value");
	}
	/* Like Python: '.' or 'e' not followed by digits ends the number. */
	if (p + 1 < end && *p == '.' && p[1] >= '0' && p[1] <= '9') {
		is_float = true;
		p += 2;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		const unsigned char *q = p + 1;

		if (q < end && (*q == '+' || *q == '-'))
			q++;
		if (q < end && *q >= '0' && *q <= '9') {
			while (q < end && *q >= '0' && *q <= '9')
				q++;
			is_float = true;
			p = q;
		}
	}
	n = (size_t)(p - start);
	ps->p = p;
	if (is_float) {
		char small[64], *tmp = small;

		if (fast_float(start, p, &v->u.num)) {
			v->type = JV_FLOAT;
			v->len = 0;
			return 0;
		}

		if (n >= sizeof(small) && (tmp = malloc(n + 1)) == NULL)
			return oom(ps);
		memcpy(tmp, start, n);
		tmp[n] = '\0';
		/* Correctly rounded in glibc; overflow gives +-inf as in Python. */
		v->u.num = strtod(tmp, NULL);
		if (tmp != small)
			free(tmp);
		v->type = JV_FLOAT;
		v->len = 0;
		return 0;
	}
	if ((size_t)(p - digits) > FM_MAX_INT_DIGITS)
		return fail(ps, start, "integer has %zu digits, more than the "
		    "limit of %u", (size_t)(p - digits), FM_MAX_INT_DIGITS);
	v->type = JV_INT;
	if (n == 2 && start[0] == '-' && start[1] == '0') {
		v->u.str = "0";		/* Python has no integer -0 */
		v->len = 1;
	} else if (ps->borrow) {
		v->u.str = (const char *)start;
		v->len = (uint32_t)n;
	} else {
		char *s = arena_alloc(ps->doc, n + 1);

		if (s == NULL)
			return oom(ps);
		memcpy(s, start, n);
		s[n] = '\0';
		v->u.str = s;
		v->len = (uint32_t)n;
	}
	return 0;
}

static bool
match(struct parser *ps, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, lit, n) == 0) {
		ps->p += n;
		return true;
	}
	return false;
}

/*
 * Make room for one more value or member on the scratch stacks.  Values
 * are parsed straight into their slot: parsed into a local and then copied
 * whole, each cost a failed store-to-load forward (the parser writes a
 * value field by field; the copy read them as one 16-byte load), 30 % of
 * parse_value's samples under perf.
 */
static int
reserve_val(struct parser *ps)
{
	if (ps->nvals == ps->capvals) {
		void *p = stack_grow(ps->vals, ps->vals0, ps->capvals,
		    sizeof(*ps->vals));

		if (p == NULL)
			return oom(ps);
		ps->vals = p;
		ps->capvals *= 2;
	}
	return 0;
}

static int
reserve_mem(struct parser *ps)
{
	if (ps->nmems == ps->capmems) {
		void *p = stack_grow(ps->mems, ps->mems0, ps->capmems,
		    sizeof(*ps->mems));

		if (p == NULL)
			return oom(ps);
		ps->mems = p;
		ps->capmems *= 2;
	}
	return 0;
}

/* Whether the next value is an array or object (which pushes on the
 * scratch stacks). */
static inline bool
container_next(const struct parser *ps)
{
	return ps->p < ps->end && (*ps->p == '{' || *ps->p == '[');
}

static int
keycmp(const struct jv_member *a, const struct jv_member *b)
{
	size_t n = a->key_len < b->key_len ? a->key_len : b->key_len, i;
	const unsigned char *x = (const unsigned char *)a->key;
	const unsigned char *y = (const unsigned char *)b->key;

	/* keys are short: a byte loop beats a memcmp call; most differ in
	 * the first byte */
	for (i = 0; i < n; i++)
		if (x[i] != y[i])
			return (int)x[i] - (int)y[i];
	return (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

/* Stable merge sort, so that among equal keys the last one stays last. */
static void
sort_members(struct jv_member *m, struct jv_member *tmp, size_t n)
{
	size_t mid, i, j, k;

	if (n < 2)
		return;
	mid = n / 2;
	sort_members(m, tmp, mid);
	sort_members(m + mid, tmp, n - mid);
	if (keycmp(&m[mid - 1], &m[mid]) <= 0)
		return;
	memcpy(tmp, m, n * sizeof(*m));
	for (i = 0, j = mid, k = 0; k < n; k++) {
		if (j >= n || (i < mid && keycmp(&tmp[i], &tmp[j]) <= 0))
			m[k] = tmp[i++];
		else
			m[k] = tmp[j++];
	}
}

/*
 * Sort members by key and drop all but the last of equal keys, noting the
 * first duplicate in the doc.  Keys are compared decoded, so "m\u0073g"
 * and "msg" are the same key, as in Python.  Strictly increasing keys (what
 * json.dumps(sort_keys=True) sends) cost one linear pass.
 */
static int
normalize_object(struct parser *ps, struct jv_member *m, uint32_t *np,
    const unsigned char *start)
{
	size_t n = *np, i, out;
	bool sorted = true;

	for (i = 1; i < n; i++)
		if (keycmp(&m[i - 1], &m[i]) >= 0) {
			sorted = false;
			break;
		}
	if (sorted)
		return 0;
	{
		struct jv_member *tmp = malloc(n * sizeof(*tmp));

		if (tmp == NULL)
			return oom(ps);
		sort_members(m, tmp, n);
		free(tmp);
	}
	for (i = 0, out = 0; i < n; i++) {
		if (i + 1 < n && keycmp(&m[i], &m[i + 1]) == 0) {
			if (!ps->doc->dup) {
				ps->doc->dup = true;
				ps->doc->dup_key = m[i].key;
				ps->doc->dup_key_len = m[i].key_len;
				ps->doc->dup_at = (size_t)(start - ps->s);
			}
			continue;	/* a later duplicate follows */
		}
		m[out++] = m[i];
	}
	*np = (uint32_t)out;
	return 0;
}

static int
parse_array(struct parser *ps, struct jv *v)
{
	size_t base = ps->nvals, n, i;
	struct jv tmp;

	ps->p++;	/* '[' */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		goto done;
	}
	for (;;) {
		if (reserve_val(ps) < 0)
			return -1;
		i = ps->nvals++;
		if (container_next(ps)) {
			if (parse_value(ps, &tmp) < 0)
				return -1;
			ps->vals[i] = tmp;	/* the stack may have moved */
		} else if (parse_value(ps, &ps->vals[i]) < 0)
			return -1;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			skip_ws(ps);
			continue;
		}
		if (ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			break;
		}
		return fail(ps, ps->p, "Expecting ',' delimiter");
	}
done:
	n = ps->nvals - base;
	v->type = JV_ARRAY;
	v->len = (uint32_t)n;
	v->u.items = NULL;
	if (n) {
		if ((v->u.items = arena_alloc(ps->doc, n * sizeof(tmp))) == NULL)
			return oom(ps);
		memcpy(v->u.items, ps->vals + base, n * sizeof(tmp));
	}
	ps->nvals = base;
	return 0;
}

static int
parse_object(struct parser *ps, struct jv *v)
{
	size_t base = ps->nmems, n, i;
	const unsigned char *start = ps->p;
	struct jv_member *m;
	struct jv tmp;

	ps->p++;	/* '{' */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		goto done;
	}
	for (;;) {
		if (ps->p >= ps->end || *ps->p != '"')
			return fail(ps, ps->p, "Expecting property name "
			    "enclosed in double quotes");
		if (reserve_mem(ps) < 0)
			return -1;
		i = ps->nmems++;
		m = &ps->mems[i];
		if (parse_short_string(ps, &m->key, &m->key_len,
		    &m->key_plain) < 0)
			return -1;
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != ':')
			return fail(ps, ps->p, "Expecting ':' delimiter");
		ps->p++;
		skip_ws(ps);
		if (container_next(ps)) {
			if (parse_value(ps, &tmp) < 0)
				return -1;
			ps->mems[i].value = tmp;	/* the stack may have moved */
		} else if (parse_value(ps, &m->value) < 0)
			return -1;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			skip_ws(ps);
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			break;
		}
		return fail(ps, ps->p, "Expecting ',' delimiter");
	}
done:
	n = ps->nmems - base;
	v->type = JV_OBJECT;
	v->u.members = NULL;
	v->len = (uint32_t)n;
	if (n) {
		if ((v->u.members = arena_alloc(ps->doc, n * sizeof(*m))) ==
		    NULL)
			return oom(ps);
		memcpy(v->u.members, ps->mems + base, n * sizeof(*m));
		if (normalize_object(ps, v->u.members, &v->len, start) < 0)
			return -1;
	}
	ps->nmems = base;
	return 0;
}

static int
parse_value(struct parser *ps, struct jv *v)
{
	bool plain = false;	/* parse_string leaves it on failure */
	int rc;

	if (ps->p >= ps->end)
		return fail(ps, ps->p, "Expecting value");
	switch (*ps->p) {
	case '"':
		v->type = JV_STRING;
		rc = parse_short_string(ps, &v->u.str, &v->len, &plain);
		v->plain = plain;
		return rc;
	case '{':
	case '[':
		if (++ps->depth > ps->max_depth)
			return fail(ps, ps->p, "nesting deeper than %zu levels",
			    ps->max_depth);
		rc = *ps->p == '{' ? parse_object(ps, v) : parse_array(ps, v);
		ps->depth--;
		return rc;
	case 'n':
		if (match(ps, "null")) {
			v->type = JV_NULL;
			return 0;
		}
		break;
	case 't':
		if (match(ps, "true")) {
			v->type = JV_TRUE;
			return 0;
		}
		break;
	case 'f':
		if (match(ps, "false")) {
			v->type = JV_FALSE;
			return 0;
		}
		break;
	case 'N':
		if (match(ps, "NaN")) {
			v->type = JV_FLOAT;
			v->u.num = NAN;
			return 0;
		}
		break;
	case 'I':
		if (match(ps, "Infinity")) {
			v->type = JV_FLOAT;
			v->u.num = INFINITY;
			return 0;
		}
		break;
	case '-':
		if (match(ps, "-Infinity")) {
			v->type = JV_FLOAT;
			v->u.num = -INFINITY;
			return 0;
		}
		return parse_number(ps, v);
	default:
		if (*ps->p >= '0' && *ps->p <= '9')
			return parse_number(ps, v);
		break;
	}
	return fail(ps, ps->p, "Expecting value");
}

struct jv_doc *
jv_parse(const char *text, size_t len, const struct jv_parse_opts *opts,
    char *err)
{
	struct parser ps;
	struct jv_doc *doc;
	int rc;

	err[0] = '\0';
	if ((doc = malloc(FIRST_AT + sizeof(struct chunk) + FIRST_CHUNK)) ==
	    NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	memset(doc, 0, sizeof(*doc));
	doc->first = (struct chunk *)(void *)((char *)doc + FIRST_AT);
	doc->first->next = NULL;
	doc->first->used = 0;
	doc->first->size = FIRST_CHUNK;
	doc->chunks = doc->first;
	memset(&ps, 0, offsetof(struct parser, vals0));
	ps.vals = ps.vals0;
	ps.capvals = sizeof(ps.vals0) / sizeof(ps.vals0[0]);
	ps.mems = ps.mems0;
	ps.capmems = sizeof(ps.mems0) / sizeof(ps.mems0[0]);
	if (text == NULL)
		text = "";
	ps.s = ps.p = (const unsigned char *)text;
	ps.end = ps.s + len;
	ps.doc = doc;
	ps.err = err;
	ps.max_depth = opts && opts->max_depth ? opts->max_depth :
	    FM_DEFAULT_MAX_JSON_DEPTH;
	ps.borrow = opts && opts->borrow_input;

	skip_ws(&ps);
	rc = parse_value(&ps, &doc->root);
	if (rc == 0) {
		skip_ws(&ps);
		if (ps.p != ps.end)
			rc = fail(&ps, ps.p, "Extra data");
	}
	if (ps.vals != ps.vals0)
		free(ps.vals);
	if (ps.mems != ps.mems0)
		free(ps.mems);
	if (rc < 0) {
		jv_doc_free(doc);
		return NULL;
	}
	return doc;
}

bool
jv_doc_duplicate(const struct jv_doc *doc, const char **key,
    size_t *key_len, size_t *at)
{
	if (!doc->dup)
		return false;
	if (key)
		*key = doc->dup_key;
	if (key_len)
		*key_len = doc->dup_key_len;
	if (at)
		*at = doc->dup_at;
	return true;
}

const struct jv *
jv_getn(const struct jv *obj, const char *key, size_t key_len)
{
	struct jv_member k;
	size_t lo = 0, hi;

	if (obj == NULL || obj->type != JV_OBJECT)
		return NULL;
	k.key = key;
	k.key_len = (uint32_t)key_len;
	hi = obj->len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = keycmp(&obj->u.members[mid], &k);

		if (c == 0)
			return &obj->u.members[mid].value;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct jv *
jv_get(const struct jv *obj, const char *key)
{
	return jv_getn(obj, key, strlen(key));
}

bool
jv_is_falsy(const struct jv *v)
{
	switch (v->type) {
	case JV_NULL:
	case JV_FALSE:
		return true;
	case JV_INT:
		return v->len == 1 && v->u.str[0] == '0';
	case JV_FLOAT:
		return v->u.num == 0.0;
	case JV_STRING:
	case JV_ARRAY:
	case JV_OBJECT:
		return v->len == 0;
	default:
		return false;
	}
}
