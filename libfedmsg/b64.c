#include <stdio.h>
#include <stdlib.h>

#include <fedmsg/message.h>

#include "b64.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
b64_encode_wrapped(struct buf *b, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i, col = 0;
	char q[4];

	for (i = 0; i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16;
		size_t k, left = n - i;

		if (left > 1)
			v |= (unsigned)s[i + 1] << 8;
		if (left > 2)
			v |= s[i + 2];
		q[0] = alphabet[(v >> 18) & 63];
		q[1] = alphabet[(v >> 12) & 63];
		q[2] = left > 1 ? alphabet[(v >> 6) & 63] : '=';
		q[3] = left > 2 ? alphabet[v & 63] : '=';
		for (k = 0; k < 4; k++) {
			buf_addc(b, q[k]);
			if (++col == 76) {
				buf_addc(b, '\n');
				col = 0;
			}
		}
	}
	if (col != 0)
		buf_addc(b, '\n');
}

static int
value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* A transcription of CPython's binascii.a2b_base64 in non-strict mode. */
unsigned char *
b64_decode_lenient(const char *s, size_t n, size_t *outlen, char *err)
{
	unsigned char *out, *o;
	unsigned leftchar = 0;
	int quad_pos = 0, pads = 0;
	size_t i, chars = 0;

	if ((out = malloc(n / 4 * 3 + 3)) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	o = out;
	for (i = 0; i < n; i++) {
		unsigned char c;
		int v, v1, v2, v3;

		/*
		 * Four data characters from a quad boundary: what the steps
		 * below would do, without the per-character bookkeeping.
		 */
		while (quad_pos == 0 && n - i >= 4 &&
		    (v = value((unsigned char)s[i])) >= 0 &&
		    (v1 = value((unsigned char)s[i + 1])) >= 0 &&
		    (v2 = value((unsigned char)s[i + 2])) >= 0 &&
		    (v3 = value((unsigned char)s[i + 3])) >= 0) {
			*o++ = (unsigned char)(((unsigned)v << 2) |
			    ((unsigned)v1 >> 4));
			*o++ = (unsigned char)((((unsigned)v1 & 0x0f) << 4) |
			    ((unsigned)v2 >> 2));
			*o++ = (unsigned char)((((unsigned)v2 & 0x03) << 6) |
			    (unsigned)v3);
			chars += 4;
			pads = 0;
			i += 4;
		}
		if (i >= n)
			break;
		c = (unsigned char)s[i];

		if (c >= 0x80) {	/* Python: str.encode('ascii') fails first */
			snprintf(err, FM_ERRLEN, "invalid base64: string argument "
			    "should contain only ASCII characters");
			free(out);
			return NULL;
		}
		if (c == '=') {
			if (quad_pos >= 2 && quad_pos + ++pads >= 4)
				goto done;	/* a full pad sequence ends the input */
			continue;
		}
		if ((v = value(c)) < 0)
			continue;
		pads = 0;
		chars++;
		switch (quad_pos) {
		case 0:
			quad_pos = 1;
			leftchar = (unsigned)v;
			break;
		case 1:
			quad_pos = 2;
			*o++ = (unsigned char)((leftchar << 2) | ((unsigned)v >> 4));
			leftchar = (unsigned)v & 0x0f;
			break;
		case 2:
			quad_pos = 3;
			*o++ = (unsigned char)((leftchar << 4) | ((unsigned)v >> 2));
			leftchar = (unsigned)v & 0x03;
			break;
		default:
			quad_pos = 0;
			*o++ = (unsigned char)((leftchar << 6) | (unsigned)v);
			leftchar = 0;
			break;
		}
	}
	if (quad_pos == 1) {
		snprintf(err, FM_ERRLEN, "invalid base64: number of data "
		    "characters (%zu) cannot be 1 more than a multiple of 4",
		    chars);
		free(out);
		return NULL;
	}
	if (quad_pos != 0) {
		snprintf(err, FM_ERRLEN, "invalid base64: incorrect padding");
		free(out);
		return NULL;
	}
done:
	*outlen = (size_t)(o - out);
	return out;
}
