/*
 * Eight bytes at a time through the common case of JSON strings: printable
 * ASCII that needs no escape.  The parser and the canonical writer skip
 * such runs with these tests and look at single bytes only around the
 * rest.  (SWAR: a borrow can only flag bytes after a byte that is rightly
 * flagged, so a word is never called plain when it is not.)
 */
#ifndef FM_ASCII8_H
#define FM_ASCII8_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define ASCII8_ONES	0x0101010101010101ULL
#define ASCII8_HIGH	0x8080808080808080ULL

/* The 8 bytes at p (unaligned), in memory order. */
static inline uint64_t
ascii8_load(const void *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

/* High bit set in each byte of w equal to c (and maybe in later ones). */
static inline uint64_t
ascii8_eq(uint64_t w, unsigned char c)
{
	uint64_t x = w ^ (ASCII8_ONES * c);

	return (x - ASCII8_ONES) & ~x;
}

/* No quote, backslash, control character or non-ASCII byte in w. */
static inline bool
ascii8_plain(uint64_t w)
{
	return ((ascii8_eq(w, '"') | ascii8_eq(w, '\\') |
	    (w - ASCII8_ONES * 0x20) | w) & ASCII8_HIGH) == 0;
}

/* As ascii8_plain, and no DEL (which Python's json.dumps escapes). */
static inline bool
ascii8_plain_nodel(uint64_t w)
{
	return ascii8_plain(w) && (ascii8_eq(w, 0x7f) & ASCII8_HIGH) == 0;
}

#endif
