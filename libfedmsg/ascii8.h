/*
 * Skipping the common case of JSON strings, printable ASCII that needs no
 * escape, many bytes at a time: the parser and the canonical writer look
 * at single bytes only where this stops.  SSE2 (every x86-64) compares 16
 * bytes at once; elsewhere a SWAR test takes 8 (a borrow can only flag
 * bytes after a rightly flagged one, so a word is never called plain when
 * it is not).
 */
#ifndef FM_ASCII8_H
#define FM_ASCII8_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define ASCII8_ONES	0x0101010101010101ULL
#define ASCII8_HIGH	0x8080808080808080ULL

/* High bit set in each byte of w equal to c (and maybe in later ones). */
static inline uint64_t
ascii8_eq(uint64_t w, unsigned char c)
{
	uint64_t x = w ^ (ASCII8_ONES * c);

	return (x - ASCII8_ONES) & ~x;
}

/* A byte a JSON string carries as itself: ' '..'~' but '"' and '\\'. */
static inline bool
ascii8_plain(unsigned char c)
{
	return (unsigned)c - 0x20u < 0x5fu && c != '"' && c != '\\';
}

#ifdef __SSE2__
/*
 * A bit for each of the 16 bytes in v that ascii8_plain() refuses (with
 * del, DEL too).  Signed compares: bytes >= 0x80 are negative, so below
 * ' ' too; with del, byte + 1 wraps DEL to -128 (and 0xff to 0), so one
 * compare below '!' takes controls, DEL and non-ASCII.
 */
static inline unsigned
ascii8_stops16(__m128i v, bool del)
{
	__m128i low = del ? _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8(1)),
	    _mm_set1_epi8('!')) : _mm_cmplt_epi8(v, _mm_set1_epi8(' '));

	return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(
	    _mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
	    _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))), low));
}
#endif

/*
 * The first byte from p on (before end) that is a quote, a backslash, a
 * control character, non-ASCII, or with del a DEL (Python's json.dumps
 * escapes it); or a point of the last few bytes (< 16) from which the
 * caller goes on a byte at a time.  With out, the bytes skipped are also
 * copied to *out, which is advanced past them; up to 16 bytes beyond may
 * be written (the caller has room for at least as many bytes as remain).
 */
static inline const unsigned char *
ascii8_skip_copy(const unsigned char *p, const unsigned char *end, bool del,
    char **out)
{
#ifdef __SSE2__
	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		unsigned mask = ascii8_stops16(v, del);

		if (out) {
			/* all 16 stored; only the plain ones count */
			_mm_storeu_si128((__m128i *)(void *)*out, v);
			*out += mask ? __builtin_ctz(mask) : 16;
		}
		if (mask)
			return p + __builtin_ctz(mask);
		p += 16;
	}
#else
	const unsigned char *from = p;

	while (end - p >= 8) {
		uint64_t w;

		memcpy(&w, p, sizeof(w));
		if (((ascii8_eq(w, '"') | ascii8_eq(w, '\\') |
		    (w - ASCII8_ONES * 0x20) | w |
		    (del ? ascii8_eq(w, 0x7f) : 0)) & ASCII8_HIGH) != 0)
			break;
		p += 8;
	}
	if (out) {
		memcpy(*out, from, (size_t)(p - from));
		*out += p - from;
	}
#endif
	return p;
}

/* ascii8_skip_copy() without a copy. */
static inline const unsigned char *
ascii8_skip(const unsigned char *p, const unsigned char *end, bool del)
{
	return ascii8_skip_copy(p, end, del, NULL);
}

#endif
