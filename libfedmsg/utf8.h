/*
 * The one UTF-8 decoder of the tree.  Strict like Python's decoder: no
 * overlong forms, nothing past U+10FFFF, no encoded surrogates; with
 * UTF8_SURROGATES, U+D800..U+DFFF encoded in 3 bytes are accepted too
 * (WTF-8: how json.c keeps a lone "\ud800" escape in a string).
 * Inline: the JSON parser and canon_string() call it per character.
 */
#ifndef FM_UTF8_H
#define FM_UTF8_H

#include <stddef.h>

#define UTF8_SURROGATES	0x1u

/*
 * Decode the sequence at s (n > 0 bytes left): its length 1-4 with the
 * code point in *cp, or 0 when it is not valid.
 */
static inline size_t
utf8_decode(const unsigned char *s, size_t n, unsigned *cp, unsigned flags)
{
	unsigned c = s[0], min;
	size_t len, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, c &= 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, c &= 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, c &= 0x07, min = 0x10000;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff ||
	    (c >= 0xd800 && c <= 0xdfff && !(flags & UTF8_SURROGATES)))
		return 0;
	*cp = c;
	return len;
}

/* Offset of the first invalid sequence in s[0..n) (strict), or n. */
size_t utf8_invalid_at(const void *s, size_t n);

#endif
