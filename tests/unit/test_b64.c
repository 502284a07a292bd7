/*
 * Base64 as fedmsg needs it: the encoder writes M2Crypto's layout (76
 * columns, a final newline: Python's base64.encodebytes), the decoder is
 * Python's lenient base64.b64decode(s).  Expected values were produced
 * with /usr/bin/python3.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/message.h>

#include "b64.h"
#include "buf.h"
#include "testutil.h"

static char *
encode(const void *p, size_t n, size_t *len)
{
	struct buf b = BUF_INIT;
	char *s;

	b64_encode_wrapped(&b, p, n);
	s = buf_steal(&b, len);
	assert_non_null(s);
	return s;
}

/* A plain reference: unwrapped standard base64 with padding. */
static void
ref_b64(const unsigned char *p, size_t n, struct buf *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		buf_addc(out, a[p[i] >> 2]);
		buf_addc(out, a[(p[i] & 3) << 4 | p[i + 1] >> 4]);
		buf_addc(out, a[(p[i + 1] & 15) << 2 | p[i + 2] >> 6]);
		buf_addc(out, a[p[i + 2] & 63]);
	}
	if (n - i == 1) {
		buf_addc(out, a[p[i] >> 2]);
		buf_addc(out, a[(p[i] & 3) << 4]);
		buf_adds(out, "==");
	} else if (n - i == 2) {
		buf_addc(out, a[p[i] >> 2]);
		buf_addc(out, a[(p[i] & 3) << 4 | p[i + 1] >> 4]);
		buf_addc(out, a[(p[i + 1] & 15) << 2]);
		buf_addc(out, '=');
	}
}

/* base64.encodebytes(bytes(range(256))) */
static const char range256[] =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\n"
    "OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3Bx\n"
    "cnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmq\n"
    "q6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj\n"
    "5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w==\n";

static void
test_encode_fedmsg_layout(void **state)
{
	unsigned char data[256];
	size_t i, len, lines = 0;
	char *s;

	(void)state;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)i;
	s = encode(data, sizeof(data), &len);
	assert_string_equal(s, range256);
	/* an RSA-2048 signature: 344 characters in 5 lines */
	assert_int_equal(len, 344 + 5);
	for (i = 0; i < len; i++)
		lines += s[i] == '\n';
	assert_int_equal(lines, 5);
	free(s);
	/* RSA-4096: 684 characters in 9 lines */
	{
		unsigned char big[512];

		memset(big, 0xa5, sizeof(big));
		s = encode(big, sizeof(big), &len);
		assert_int_equal(len, 684 + 9);
		assert_int_equal(s[76], '\n');
		assert_int_equal(s[len - 1], '\n');
		assert_int_equal(s[len - 2], '=');
		free(s);
	}
}

static void
test_encode_padding(void **state)
{
	char *s;

	(void)state;
	s = encode("", 0, NULL);
	assert_string_equal(s, "");		/* no newline for nothing */
	free(s);
	s = encode("A", 1, NULL);
	assert_string_equal(s, "QQ==\n");
	free(s);
	s = encode("AB", 2, NULL);
	assert_string_equal(s, "QUI=\n");
	free(s);
	s = encode("ABC", 3, NULL);
	assert_string_equal(s, "QUJD\n");
	free(s);
	s = encode("\0\0\0\xff", 4, NULL);
	assert_string_equal(s, "AAAA/w==\n");
	free(s);
	s = encode("\xfb\xff\xbf", 3, NULL);
	assert_string_equal(s, "+/+/\n");
	free(s);
}

/* Every length 0..400 against the reference, wrapped at 76. */
static void
test_encode_lengths(void **state)
{
	unsigned char data[400];
	size_t n, i;

	(void)state;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 131 + 7);
	for (n = 0; n <= sizeof(data); n++) {
		struct buf ref = BUF_INIT, want = BUF_INIT;
		size_t len;
		char *got = encode(data, n, &len);

		ref_b64(data, n, &ref);
		for (i = 0; i < ref.len; i += 76) {
			size_t k = ref.len - i < 76 ? ref.len - i : 76;

			buf_add(&want, ref.data + i, k);
			buf_addc(&want, '\n');
		}
		if (n == 0)
			assert_int_equal(len, 0);
		else
			assert_string_equal(got, want.data);
		/* exact multiples of 57 bytes end one full line, no blank one */
		if (n && n % 57 == 0)
			assert_int_equal(len, n / 57 * 77);
		free(got);
		buf_free(&ref);
		buf_free(&want);
	}
}

/* Appending keeps what the buffer held. */
static void
test_encode_appends(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	buf_adds(&b, "sig=");
	b64_encode_wrapped(&b, "AB", 2);
	assert_string_equal(b.data, "sig=QUI=\n");
	buf_free(&b);
}

/* ---- decoding ----------------------------------------------------------- */

static const struct {
	const char	*in;
	size_t		 len;
	const char	*out;	/* NULL: an error */
	size_t		 outlen;
	const char	*err;	/* Python's message (case-insensitive) */
} dec[] = {
	{ "", 0, "", 0, NULL },
	{ "QQ==", 4, "A", 1, NULL },
	{ "QUI=", 4, "AB", 2, NULL },
	{ "QUJD", 4, "ABC", 3, NULL },
	{ "QUJDRA==", 8, "ABCD", 4, NULL },
	{ "QQ", 2, NULL, 0, "Incorrect padding" },
	{ "QUI", 3, NULL, 0, "Incorrect padding" },
	{ "Q", 1, NULL, 0, "number of data characters (1) cannot be 1 more "
	  "than a multiple of 4" },
	{ "QUJDR", 5, NULL, 0, "number of data characters (5) cannot be 1 "
	  "more than a multiple of 4" },
	{ "Q\nU\nJ\nD", 7, "ABC", 3, NULL },
	{ " QUJD ", 6, "ABC", 3, NULL },
	{ "QU*JD", 5, "ABC", 3, NULL },
	{ "QQ==QUJD", 8, "A", 1, NULL },
	{ "QUI=QUJD", 8, "AB", 2, NULL },
	{ "QQ=", 3, NULL, 0, "Incorrect padding" },
	{ "Q===", 4, NULL, 0, "number of data characters (1) cannot be 1 more "
	  "than a multiple of 4" },
	{ "====", 4, "", 0, NULL },
	{ "=", 1, "", 0, NULL },
	{ "=QUJD", 5, "ABC", 3, NULL },
	{ "QU=JD", 5, "ABC", 3, NULL },
	{ "QUJD=", 5, "ABC", 3, NULL },
	{ "QUJD==", 6, "ABC", 3, NULL },
	{ "QUJDQQ", 6, NULL, 0, "Incorrect padding" },
	{ "QUJDQ", 5, NULL, 0, "number of data characters (5) cannot be 1 "
	  "more than a multiple of 4" },
	{ "QQ=\n=", 5, "A", 1, NULL },
	{ "QQ=x=", 5, "A\x0c", 2, NULL },
	{ "Q=Q==", 5, "A", 1, NULL },
	{ "AB=C=", 5, "\x00\x10", 2, NULL },
	{ "QQ==\0garbage", 12, "A", 1, NULL },
	{ "QUJ=D", 5, "AB", 2, NULL },
	{ "QUI==", 5, "AB", 2, NULL },
	{ "QUI===", 6, "AB", 2, NULL },
	{ "QQ===", 5, "A", 1, NULL },
	{ "Q=Q", 3, NULL, 0, "Incorrect padding" },
	{ "QUJDRA", 6, NULL, 0, "Incorrect padding" },
	{ "QUJDRA=", 7, NULL, 0, "Incorrect padding" },
	{ "QUJDRUY", 7, NULL, 0, "Incorrect padding" },
	{ "-_-_", 4, "", 0, NULL },
	{ "QU-JD", 5, "ABC", 3, NULL },
	{ "\r\n\t QUJD\r\n", 10, "ABC", 3, NULL },
	{ "!!!!", 4, "", 0, NULL },
	{ "QUJD!", 5, "ABC", 3, NULL },
	{ "QUJDR===", 8, NULL, 0, "number of data characters (5) cannot be 1 "
	  "more than a multiple of 4" },
	{ "QUJDRR==", 8, "ABCE", 4, NULL },
	{ "QUJDRRR=", 8, "ABCE\x14", 5, NULL },
	{ "QUJDRRRR", 8, "ABCE\x14Q", 6, NULL },
	{ "QQ==\nQUI=", 9, "A", 1, NULL },
	{ "QUJDRA==ZZZZ", 12, "ABCD", 4, NULL },
	{ "Q Q = =", 7, "A", 1, NULL },
	{ "QR==", 4, "A", 1, NULL },
	{ "QUJ=QQ==", 8, "AB", 2, NULL },
	{ "QUJD\nQUJD\nQQ=", 13, NULL, 0, "Incorrect padding" },
	{ "QUJDQUJDQUJDQ", 13, NULL, 0, "number of data characters (13) "
	  "cannot be 1 more than a multiple of 4" },
};

static void
test_decode_python(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(dec) / sizeof(dec[0]); i++) {
		char err[FM_ERRLEN] = "";
		size_t outlen = 12345;
		/* exactly len bytes on the heap, so ASan sees overreads */
		char *in = malloc(dec[i].len ? dec[i].len : 1);
		unsigned char *out;

		memcpy(in, dec[i].in, dec[i].len);
		out = b64_decode_lenient(in, dec[i].len, &outlen, err);
		free(in);
		if (dec[i].out == NULL) {
			if (out != NULL)
				fail_msg("case %zu (%s): decoded, Python says %s",
				    i, dec[i].in, dec[i].err);
			if (strcasestr(err, dec[i].err) == NULL)
				fail_msg("case %zu (%s): error '%s', want '%s'",
				    i, dec[i].in, err, dec[i].err);
			continue;
		}
		if (out == NULL)
			fail_msg("case %zu (%s): %s", i, dec[i].in, err);
		assert_int_equal(outlen, dec[i].outlen);
		assert_memory_equal(out, dec[i].out, outlen);
		free(out);
	}
}

/* Round trip: what the encoder writes, the decoder reads, whatever the wrap. */
static void
test_decode_round_trip(void **state)
{
	unsigned char data[600];
	size_t n, i;

	(void)state;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 73 + 11);
	for (n = 0; n <= sizeof(data); n += n < 70 ? 1 : 13) {
		struct buf rewrapped = BUF_INIT;
		char err[FM_ERRLEN];
		size_t len, outlen;
		char *s = encode(data, n, &len);
		unsigned char *out = b64_decode_lenient(s, len, &outlen, err);

		if (out == NULL)
			fail_msg("n=%zu: %s", n, err);
		assert_int_equal(outlen, n);
		if (n)
			assert_memory_equal(out, data, n);
		free(out);
		/* re-wrapped at 64 with CRLF and spaces: still the same */
		for (i = 0; i < len; i++) {
			if (s[i] == '\n')
				continue;
			buf_addc(&rewrapped, s[i]);
			if (rewrapped.len % 66 == 64)
				buf_adds(&rewrapped, "\r\n");
			if (i % 9 == 0)
				buf_addc(&rewrapped, ' ');
		}
		out = b64_decode_lenient(rewrapped.data ? rewrapped.data : "",
		    rewrapped.len, &outlen, err);
		if (out == NULL)
			fail_msg("n=%zu rewrapped: %s", n, err);
		assert_int_equal(outlen, n);
		if (n)
			assert_memory_equal(out, data, n);
		free(out);
		buf_free(&rewrapped);
		free(s);
	}
}

/* Truncating a valid encoding gives exactly Python's three outcomes. */
static void
test_decode_truncated(void **state)
{
	const char *full = "QUJDREVGR0g=";	/* "ABCDEFGH" */
	size_t n;

	(void)state;
	for (n = 0; n <= strlen(full); n++) {
		char err[FM_ERRLEN];
		size_t outlen;
		unsigned char *out = b64_decode_lenient(full, n, &outlen, err);
		size_t chars = n > 11 ? 11 : n;

		if (chars % 4 == 0 || n == 12) {
			assert_non_null(out);
			assert_int_equal(outlen, n == 12 ? 8 : chars / 4 * 3);
			free(out);
		} else if (chars % 4 == 1) {
			assert_null(out);
			assert_non_null(strstr(err, "1 more than a multiple"));
		} else {
			assert_null(out);
			assert_non_null(strcasestr(err, "incorrect padding"));
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_fedmsg_layout),
		cmocka_unit_test(test_encode_padding),
		cmocka_unit_test(test_encode_lengths),
		cmocka_unit_test(test_encode_appends),
		cmocka_unit_test(test_decode_python),
		cmocka_unit_test(test_decode_round_trip),
		cmocka_unit_test(test_decode_truncated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
