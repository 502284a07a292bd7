/*
 * Base64 the way fedmsg needs it.  The decoder is Python's lenient
 * base64.b64decode(): characters outside the alphabet are skipped and the
 * padding rules of binascii.a2b_base64 apply.  The encoder wraps at 76
 * columns and ends with a newline, as M2Crypto did (OpenSSL BIOs wrap at
 * 64, so they cannot be used).
 */
#ifndef FM_B64_H
#define FM_B64_H

#include <stddef.h>

#include "buf.h"

/* Append base64 of p[0..n) in 76-column lines, each ending in '\n'. */
void b64_encode_wrapped(struct buf *b, const void *p, size_t n);

/* The most bytes n characters of base64 decode to. */
#define B64_DECODED_MAX(n)	((n) / 4 * 3 + 3)

/*
 * Decode s[0..n) into out, which has room for B64_DECODED_MAX(n) bytes;
 * returns 0 with the length in *outlen, or -1 with a reason in
 * err[FM_ERRLEN] ("Incorrect padding", ...).
 */
int b64_decode_lenient_to(const char *s, size_t n, unsigned char *out,
    size_t *outlen, char *err);

/* The same into a malloc'ed buffer; NULL with a reason in err. */
unsigned char *b64_decode_lenient(const char *s, size_t n, size_t *outlen,
    char *err);

#endif
