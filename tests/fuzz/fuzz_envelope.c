/*
 * libFuzzer target: a body frame as the hub receives it.  Parses it with
 * fm_msg_parse() (1 MiB limit, default depth), reads every accessor, and
 * checks that fedmsg's canonical JSON is a fixed point: the canonical text
 * (with and without credentials) parses again and re-emits byte for byte.
 * Any difference calls abort().  The raw bytes also go through the lenient
 * base64 decoder, as a certificate or signature field would.
 *
 *   make build/fuzz/fuzz_envelope
 *   build/fuzz/fuzz_envelope tests/fuzz/corpus/fuzz_envelope
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/message.h>

#include "b64.h"

#include "fuzz_die.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Canonical text must be 7-bit ASCII without control characters. */
static void
check_ascii(const char *s, size_t n)
{
	size_t i;

	if (strlen(s) != n)
		die("canonical text", "NUL inside or wrong length");
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			die("canonical text", "not printable ASCII");
}

/* canonical(m, unsigned_) re-parsed and re-emitted must not change. */
static void
check_fixed_point(const struct fm_msg *m, bool unsigned_)
{
	/* escapes can grow the text up to 6x: no size limit for the re-parse */
	struct fm_limits big = { SIZE_MAX, 0 };
	struct fm_msg *m2 = NULL;
	char err[FM_ERRLEN], *c1, *c2, *c3;
	size_t n1, n2, n3;

	if ((c1 = fm_msg_canonical(m, unsigned_, &n1)) == NULL)
		die("fm_msg_canonical", "NULL");
	check_ascii(c1, n1);
	if (fm_msg_parse(c1, n1, &big, &m2, err) != 0)
		die("canonical text does not parse", err);
	if ((c2 = fm_msg_canonical(m2, false, &n2)) == NULL ||
	    (c3 = fm_msg_canonical(m2, true, &n3)) == NULL)
		die("fm_msg_canonical", "NULL on re-parse");
	if (n1 != n2 || memcmp(c1, c2, n1) != 0)
		die("not idempotent", c1);
	/* without credentials, dropping them again changes nothing */
	if (unsigned_ && (n1 != n3 || memcmp(c1, c3, n1) != 0))
		die("unsigned text still has credentials", c1);
	free(c1);
	free(c2);
	free(c3);
	fm_msg_unref(m2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fm_limits lim = { 1024 * 1024, 0 };
	struct fm_msg *m = NULL;
	const char *f;
	char err[FM_ERRLEN], *s;
	unsigned char *dec;
	size_t n, blen;
	int64_t i;
	double ts;

	if ((dec = b64_decode_lenient((const char *)data, size, &n, err)) != NULL) {
		if (n > size)
			die("base64", "decoded more bytes than it read");
		free(dec);
	}

	if (fm_msg_parse(data, size, &lim, &m, err) != 0) {
		if (m != NULL || memchr(err, '\0', FM_ERRLEN) == NULL)
			die("fm_msg_parse", "bad failure");
		return 0;
	}
	if (memcmp(fm_msg_body(m, &blen), data, size) != 0 || blen != size)
		die("fm_msg_body", "not the received bytes");
	/* accessors: NUL-free strings or NULL */
	if ((f = fm_msg_topic(m)) != NULL)
		(void)strlen(f);
	if ((f = fm_msg_id(m)) != NULL)
		(void)strlen(f);
	if ((f = fm_msg_username(m)) != NULL)
		(void)strlen(f);
	if ((f = fm_msg_crypto(m)) != NULL)
		(void)strlen(f);
	(void)fm_msg_seq(m, &i);
	(void)fm_msg_timestamp(m, &ts);
	if ((s = fm_msg_member_json(m, "msg", &n)) != NULL) {
		check_ascii(s, n);
		free(s);
	}
	if ((s = fm_msg_member_json(m, "headers", &n)) != NULL) {
		check_ascii(s, n);
		free(s);
	}

	check_fixed_point(m, false);
	check_fixed_point(m, true);
	fm_msg_ref(m);
	fm_msg_unref(m);
	fm_msg_unref(m);
	return 0;
}
