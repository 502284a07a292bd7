/*
 * consumers/robosignatory/negotiate.c without a KDC: the base64 of the
 * Negotiate header (RFC 4648 vectors, refusals of what is not padded
 * base64 or too long), and the failures a login must report clearly and
 * as permanent before anything goes on the wire: a keytab that is not
 * there, a principal it does not hold, a principal that does not parse,
 * and a hub answer without a token (no mutual authentication).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../consumers/robosignatory/negotiate.c"

static void
test_b64_vectors(void **state)
{
	static const char *const vec[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" },
		{ "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	unsigned char bin[] = { 0x00, 0xff, 0xfe, 0x80, 0x7f };
	unsigned char *d;
	size_t i, len;
	char *e;

	(void)state;
	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		e = neg_b64_encode((const unsigned char *)vec[i][0],
		    strlen(vec[i][0]));
		assert_string_equal(e, vec[i][1]);
		free(e);
		if (vec[i][1][0] == '\0')
			continue;
		d = neg_b64_decode(vec[i][1], 64, &len);
		assert_non_null(d);
		assert_int_equal(len, strlen(vec[i][0]));
		assert_memory_equal(d, vec[i][0], len);
		free(d);
	}
	e = neg_b64_encode(bin, sizeof(bin));
	d = neg_b64_decode(e, 64, &len);
	assert_int_equal(len, sizeof(bin));
	assert_memory_equal(d, bin, len);
	free(d);
	free(e);
}

static void
test_b64_refused(void **state)
{
	static const char *const bad[] = {
		"", "Zg", "Zg=", "Z===", "Zm9v\n", "Zm 9", "Zg==Zm9v", "Zm9*",
		"=Zm9", "Zm=v",
	};
	unsigned char *d;
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(neg_b64_decode(bad[i], 64, &len));
	/* the bound: 6 bytes allowed, "foobar" is 6, "foobarx" 7 */
	d = neg_b64_decode("Zm9vYmFy", 6, &len);
	assert_non_null(d);
	free(d);
	assert_null(neg_b64_decode("Zm9vYmFyeA==", 6, &len));
}

static void
test_keytab_failures(void **state)
{
	struct negotiate *n;
	char err[512], *tok = NULL;

	(void)state;
	n = negotiate_new("robosig/localhost@FEDMSG.TEST",
	    "/nonexistent/robosig.keytab");
	assert_int_equal(negotiate_begin(n, "localhost", &tok, err,
	    sizeof(err)), NEG_PERMANENT);
	assert_null(tok);
	assert_non_null(strstr(err, "kerberos login as robosig/localhost@"
	    "FEDMSG.TEST: keytab /nonexistent/robosig.keytab: "));
	negotiate_free(n);

	n = negotiate_new("robosig@@", "/nonexistent/robosig.keytab");
	assert_int_equal(negotiate_begin(n, "localhost", &tok, err,
	    sizeof(err)), NEG_PERMANENT);
	assert_non_null(strstr(err, "robosig@@"));
	negotiate_free(n);
}

static void
test_no_mutual_auth(void **state)
{
	struct negotiate *n = negotiate_new(NULL, NULL);
	char err[512];

	(void)state;
	/* a hub that sent no token, or garbage, is refused before GSS-API
	   sees it; a token with no login under way too */
	assert_int_equal(negotiate_end(n, NULL, err, sizeof(err)),
	    NEG_PERMANENT);
	assert_non_null(strstr(err, "mutual authentication failed"));
	assert_int_equal(negotiate_end(n, "not base64!", err, sizeof(err)),
	    NEG_PERMANENT);
	assert_non_null(strstr(err, "is not base64"));
	assert_int_equal(negotiate_end(n, "Zm9v", err, sizeof(err)),
	    NEG_PERMANENT);
	assert_string_equal(err, "kerberos: no login under way");
	negotiate_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_vectors),
		cmocka_unit_test(test_b64_refused),
		cmocka_unit_test(test_keytab_failures),
		cmocka_unit_test(test_no_mutual_auth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
