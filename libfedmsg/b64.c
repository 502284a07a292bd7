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

/*
 * 1 + the value of each base64 character, 0 for the rest: a lookup
 * instead of range tests whose branches mispredict on random text.
 */
static const unsigned char b64_plus1[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
	['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17,
	['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
	['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27,
	['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
	['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37,
	['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47,
	['v'] = 48, ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52,
	['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
	['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62,
	['+'] = 63, ['/'] = 64
};

static int
value(unsigned char c)
{
	return (int)b64_plus1[c] - 1;
}

/* A transcription of CPython's binascii.a2b_base64 in non-strict mode. */
int
b64_decode_lenient_to(const char *s, size_t n, unsigned char *out,
    size_t *outlen, char *err)
{
	unsigned char *o = out;
	unsigned leftchar = 0;
	int quad_pos = 0, pads = 0;
	size_t i, chars = 0;

	for (i = 0; i < n; i++) {
		unsigned char c;
		int v, v1, v2, v3;

		/*
		 * Four data characters from a quad boundary: what the steps
		 * below would do, without the per-character bookkeeping.
		 */
		if (quad_pos == 0 && n - i >= 4) {
			size_t i0 = i;

			/*
			 * One test per quad (a 0 entry is not base64), and the
			 * table's +1s taken off all four at once: sum (v + 1)
			 * 64^k = sum v 64^k + 0x41041.
			 */
			while (n - i >= 4 &&
			    (v = b64_plus1[(unsigned char)s[i]]) != 0 &&
			    (v1 = b64_plus1[(unsigned char)s[i + 1]]) != 0 &&
			    (v2 = b64_plus1[(unsigned char)s[i + 2]]) != 0 &&
			    (v3 = b64_plus1[(unsigned char)s[i + 3]]) != 0) {
				unsigned w = ((unsigned)v << 18) +
				    ((unsigned)v1 << 12) + ((unsigned)v2 << 6) +
				    (unsigned)v3 - 0x41041u;

				o[0] = (unsigned char)(w >> 16);
				o[1] = (unsigned char)(w >> 8);
				o[2] = (unsigned char)w;
				o += 3;
				i += 4;
			}
			if (i != i0) {
				chars += i - i0;
				pads = 0;
			}
		}
		if (i >= n)
			break;
		c = (unsigned char)s[i];

		if (c >= 0x80) {	/* Python: str.encode('ascii') fails first */
			snprintf(err, FM_ERRLEN, "invalid base64: string argument "
			    "should contain only ASCII characters");
			return -1;
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
		return -1;
	}
	if (quad_pos != 0) {
		snprintf(err, FM_ERRLEN, "invalid base64: incorrect padding");
		return -1;
	}
done:
	*outlen = (size_t)(o - out);
	return 0;
}

unsigned char *
b64_decode_lenient(const char *s, size_t n, size_t *outlen, char *err)
{
	unsigned char *out;

	if ((out = malloc(B64_DECODED_MAX(n))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	if (b64_decode_lenient_to(s, n, out, outlen, err) < 0) {
		free(out);
		return NULL;
	}
	return out;
}
