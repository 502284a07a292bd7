/*
 * fedmsg "x509" signing and validation: every fm_verdict with the vector
 * PKI in tests/data/vectors/certs, CA/CRL loading and reloading, the
 * certificate cache, threads, and the 54 vectors of signed.jsonl (verdicts
 * and signature bytes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fedmsg/crypto.h>
#include <fedmsg/message.h>

#include "b64.h"
#include "buf.h"
#include "canon.h"
#include "json.h"
#include "log.h"
#include "msg.h"
#include "testutil.h"

#define ALPHA_CN	"alpha-app01.vectors.example.org"
#define BETA_CN		"beta-pkgs02.vectors.example.org"
#define TOPIC		"org.fedoraproject.dev.test.thing"
/* 2044-06-01: after crl.pem's nextUpdate (2043-12-27) */
#define IN_2044		INT64_C(2348352000)
/* 2046-06-01: inside notyet-app05's validity (2045..2048) */
#define IN_2046		INT64_C(2411424000)

enum { ALPHA, BETA, REVOKED, EXPIRED, NOTYET, NOCN, UNTRUSTED, NSIGNERS };

static const char *const signer_names[NSIGNERS] = {
	"alpha-app01.vectors.example.org", "beta-pkgs02.vectors.example.org",
	"revoked-app03.vectors.example.org", "expired-app04.vectors.example.org",
	"notyet-app05.vectors.example.org", "no-common-name", "untrusted-signed",
};

static struct fm_signer *signers[NSIGNERS];
static char tmpdir[64];

static const char *
tmp_path(const char *name)
{
	static char paths[2][256];
	static int k;

	k ^= 1;
	snprintf(paths[k], sizeof(paths[k]), "%s/%s", tmpdir, name);
	return paths[k];
}

static void
write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* Replace dst atomically with a copy of src (a new inode, as tools do). */
static void
install_file(const char *src, const char *dst)
{
	char tmp[300];
	size_t n;
	char *data = tu_read_file(src, &n);

	snprintf(tmp, sizeof(tmp), "%s.new", dst);
	write_file(tmp, data, n);
	assert_int_equal(rename(tmp, dst), 0);
	free(data);
}

static int
group_setup(void **state)
{
	char err[FM_ERRLEN], cmd[2048];
	int i;

	(void)state;
	for (i = 0; i < NSIGNERS; i++) {
		signers[i] = fm_signer_load(
		    tu_cert_path(signer_names[i], ".crt"),
		    tu_cert_path(signer_names[i], ".key"), err);
		if (signers[i] == NULL) {
			fprintf(stderr, "fm_signer_load %s: %s\n",
			    signer_names[i], err);
			return -1;
		}
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fm-test-validate.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	/*
	 * A CRL of the vector CA that revokes nothing, made now with the
	 * openssl CLI (crl.pem revokes revoked-app03).
	 */
	{
		FILE *f = fopen(tmp_path("ca.cnf"), "w");

		if (f == NULL)
			return -1;
		fprintf(f, "[ ca ]\ndefault_ca = d\n[ d ]\n"
		    "database = %s/index.txt\ncrlnumber = %s/crlnumber\n"
		    "default_md = sha256\ndefault_crl_days = 3650\n",
		    tmpdir, tmpdir);
		fclose(f);
		write_file(tmp_path("index.txt"), "", 0);
		write_file(tmp_path("crlnumber"), "01\n", 3);
	}
	snprintf(cmd, sizeof(cmd), "openssl ca -batch -gencrl -config %s/ca.cnf "
	    "-keyfile '%s' -cert '%s' -out %s/crl-empty.pem >/dev/null 2>&1",
	    tmpdir, tu_cert_path("ca", ".key"), tu_cert_path("ca", ".crt"),
	    tmpdir);
	if (system(cmd) != 0) {
		fprintf(stderr, "cannot make a CRL: %s\n", cmd);
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	static const char *const files[] = { "ca.cnf", "index.txt",
	    "crlnumber", "crlnumber.old", "index.txt.attr", "crl-empty.pem",
	    "crl.pem", "ca.pem", "junk" };
	size_t i;
	int k;

	(void)state;
	for (k = 0; k < NSIGNERS; k++)
		fm_signer_free(signers[k]);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(tmp_path(files[i]));
	rmdir(tmpdir);
	return 0;
}

/* ---- building messages -------------------------------------------------- */

static struct fm_msg *
parse_text(const char *text, size_t len)
{
	struct fm_msg *m = NULL;
	char err[FM_ERRLEN];

	if (fm_msg_parse(text, len, NULL, &m, err) != 0)
		fail_msg("fm_msg_parse: %s", err);
	return m;
}

static struct fm_msg *
unsigned_msg(const char *topic, int64_t ts)
{
	struct fm_msg_fields f = { .topic = topic, .msg_json =
	    "{\"x\":1,\"note\":\"caf\\u00e9\"}", .msg_id =
	    "2026-0e6f0f4a-5a4e-4e8a-9d0b-3c1a2b3c4d5e", .i = 1,
	    .timestamp = ts, .username = "tester" };
	struct fm_msg *m = NULL;
	char err[FM_ERRLEN];

	if (fm_msg_build(&f, NULL, &m, err) != 0)
		fail_msg("fm_msg_build: %s", err);
	return m;
}

static struct fm_msg *
sign(int who, const struct fm_msg *in)
{
	struct fm_msg *out = NULL;
	char err[FM_ERRLEN];

	if (fm_signer_sign(signers[who], in, &out, err) != 0)
		fail_msg("fm_signer_sign: %s", err);
	return out;
}

/* A message signed by who on topic at time ts. */
static struct fm_msg *
signed_msg(int who, const char *topic, int64_t ts)
{
	struct fm_msg *u = unsigned_msg(topic, ts), *s = sign(who, u);

	fm_msg_unref(u);
	return s;
}

/* A copy of m without the keys in skip and with extras set. */
static struct fm_msg *
edit(const struct fm_msg *m, const char *const *skip,
    const struct canon_extra *ex, size_t nex)
{
	struct buf b = BUF_INIT;
	struct fm_msg *out;

	canon_object_with(&b, msg_root(m), skip, ex, nex);
	assert_false(b.oom);
	out = parse_text(b.data, b.len);
	buf_free(&b);
	return out;
}

#define EX(k, t) { (k), (t), sizeof(t) - 1 }

static struct fm_validator *
validator(const char *crl, bool allow_x509, unsigned max_age,
    unsigned max_future)
{
	struct fm_validator_config cfg = { 0 };
	struct fm_validator *v;
	char err[FM_ERRLEN];
	char ca[4096], crlp[4096];

	snprintf(ca, sizeof(ca), "%s", tu_cert_path("ca", ".crt"));
	if (crl)
		snprintf(crlp, sizeof(crlp), "%s", crl[0] == '/' ? crl :
		    tu_cert_path(crl, ".pem"));
	cfg.ca_path = ca;
	cfg.crl_path = crl ? crlp : NULL;
	cfg.allow_x509 = allow_x509;
	cfg.max_age = max_age;
	cfg.max_future = max_future;
	if ((v = fm_validator_new(&cfg, err)) == NULL)
		fail_msg("fm_validator_new: %s", err);
	return v;
}

/* Check a verdict and that the reason contains want_reason. */
static void
expect(struct fm_validator *v, const struct fm_msg *m, enum fm_verdict want,
    const char *want_reason)
{
	char reason[FM_ERRLEN];
	enum fm_verdict got = fm_validator_check(v, m, reason);

	if (got != want)
		fail_msg("verdict %s (%s), want %s", fm_verdict_name(got),
		    reason, fm_verdict_name(want));
	if (want_reason && strstr(reason, want_reason) == NULL)
		fail_msg("reason '%s' lacks '%s'", reason, want_reason);
}

static void
expect_at(struct fm_validator *v, const struct fm_msg *m, int64_t now,
    enum fm_verdict want, const char *want_reason)
{
	char reason[FM_ERRLEN];
	enum fm_verdict got = fm_validator_check_at(v, m, now, reason);

	if (got != want)
		fail_msg("at %lld: verdict %s (%s), want %s", (long long)now,
		    fm_verdict_name(got), reason, fm_verdict_name(want));
	if (want_reason && strstr(reason, want_reason) == NULL)
		fail_msg("reason '%s' lacks '%s'", reason, want_reason);
}

/* ---- tests -------------------------------------------------------------- */

static void
test_verdict_names(void **state)
{
	static const char *const want[FM_VERDICT_COUNT] = {
		"valid", "unsigned", "bad_field", "bad_backend", "bad_base64",
		"bad_certificate", "untrusted_certificate", "bad_signature",
		"no_common_name", "routing_policy", "stale", "future",
		"duplicate_key",
	};
	int i, j;

	(void)state;
	assert_int_equal(FM_VALID, 0);
	for (i = 0; i < FM_VERDICT_COUNT; i++) {
		assert_non_null(fm_verdict_name((enum fm_verdict)i));
		assert_string_equal(fm_verdict_name((enum fm_verdict)i), want[i]);
		for (j = 0; j < i; j++)
			assert_string_not_equal(fm_verdict_name(
			    (enum fm_verdict)i), fm_verdict_name(
			    (enum fm_verdict)j));
	}
	assert_string_equal(fm_verdict_name(FM_VERDICT_COUNT), "unknown");
	assert_string_equal(fm_verdict_name((enum fm_verdict)-1), "unknown");
}

static void
test_validator_new_errors(void **state)
{
	struct fm_validator_config cfg = { 0 };
	char err[FM_ERRLEN], ca[4096];

	(void)state;
	/* no CA: never a download fallback */
	cfg.allow_x509 = true;
	assert_null(fm_validator_new(&cfg, err));
	assert_non_null(strstr(err, "no CA configured"));
	cfg.ca_path = "";
	assert_null(fm_validator_new(&cfg, err));
	assert_non_null(strstr(err, "no CA configured"));
	/* a missing CA file, with its path */
	cfg.ca_path = "/nonexistent/fedmsg/ca.crt";
	assert_null(fm_validator_new(&cfg, err));
	assert_non_null(strstr(err, "/nonexistent/fedmsg/ca.crt"));
	assert_non_null(strstr(err, "No such file"));
	/* a CA file without a certificate */
	cfg.ca_path = tu_cert_path("crl", ".pem");
	assert_null(fm_validator_new(&cfg, err));
	assert_non_null(strstr(err, "no PEM certificate"));
	/* a missing CRL, and a CRL file without a CRL */
	snprintf(ca, sizeof(ca), "%s", tu_cert_path("ca", ".crt"));
	cfg.ca_path = ca;
	cfg.crl_path = "/nonexistent/crl.pem";
	assert_null(fm_validator_new(&cfg, err));
	assert_non_null(strstr(err, "/nonexistent/crl.pem"));
	cfg.crl_path = tu_cert_path("ca", ".crt");
	assert_null(fm_validator_new(&cfg, err));
	assert_non_null(strstr(err, "no PEM CRL"));
	/* an empty CRL path means no CRL */
	cfg.crl_path = "";
	fm_validator_free(fm_validator_new(&cfg, err));
	fm_validator_free(NULL);
}

static void
test_valid(void **state)
{
	struct fm_validator *v = validator("crl", true, 0, 0);
	struct fm_msg *a = signed_msg(ALPHA, TOPIC, 1700000000);
	struct fm_msg *b = signed_msg(BETA, TOPIC, 1700000000);

	(void)state;
	assert_string_equal(fm_signer_cn(signers[ALPHA]), ALPHA_CN);
	assert_string_equal(fm_signer_cn(signers[BETA]), BETA_CN);
	assert_string_equal(fm_msg_crypto(a), "x509");
	expect(v, a, FM_VALID, "signed by " ALPHA_CN);
	expect(v, b, FM_VALID, "signed by " BETA_CN);
	expect(v, a, FM_VALID, NULL);		/* cached */
	/* reason may be NULL */
	assert_int_equal(fm_validator_check(v, a, NULL), FM_VALID);
	fm_msg_unref(a);
	fm_msg_unref(b);
	fm_validator_free(v);
}

static void
test_unsigned(void **state)
{
	struct fm_validator *v = validator("crl", true, 0, 0);
	struct fm_msg *m = unsigned_msg(TOPIC, 1700000000);

	(void)state;
	expect(v, m, FM_INVALID_UNSIGNED, "unsigned");
	fm_msg_unref(m);
	m = parse_text("{}", 2);
	expect(v, m, FM_INVALID_UNSIGNED, NULL);
	fm_msg_unref(m);
	fm_validator_free(v);
}

static void
test_missing_fields(void **state)
{
	static const char *const no_sig[] = { "signature", NULL };
	static const char *const no_cert[] = { "certificate", NULL };
	static const char *const no_crypto_sig[] = { "crypto", "signature",
	    NULL };
	static const char *const no_crypto_cert[] = { "crypto", "certificate",
	    NULL };
	struct fm_validator *v = validator("crl", true, 0, 0);
	struct fm_msg *s = signed_msg(ALPHA, TOPIC, 1700000000), *m;

	(void)state;
	m = edit(s, no_sig, NULL, 0);
	expect(v, m, FM_INVALID_FIELD, "no 'signature' field");
	fm_msg_unref(m);
	m = edit(s, no_cert, NULL, 0);
	expect(v, m, FM_INVALID_FIELD, "no 'certificate' field");
	fm_msg_unref(m);
	/* no crypto: a certificate means x509 ... */
	m = edit(s, no_crypto_sig, NULL, 0);
	expect(v, m, FM_INVALID_FIELD, "no 'signature' field");
	fm_msg_unref(m);
	/* ... a lone signature means gpg */
	m = edit(s, no_crypto_cert, NULL, 0);
	expect(v, m, FM_INVALID_BACKEND, "gpg");
	fm_msg_unref(m);
	fm_msg_unref(s);
	fm_validator_free(v);
}

static void
test_field_types(void **state)
{
	static const struct canon_extra bad[][1] = {
		{ EX("signature", "123") }, { EX("signature", "null") },
		{ EX("signature", "[\"QUJD\"]") },
		{ EX("certificate", "{}") }, { EX("certificate", "true") },
	};
	struct fm_validator *v = validator("crl", true, 0, 0);
	struct fm_msg *s = signed_msg(ALPHA, TOPIC, 1700000000), *m;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = edit(s, NULL, bad[i], 1);
		expect(v, m, FM_INVALID_FIELD, "is not a string");
		fm_msg_unref(m);
	}
	fm_msg_unref(s);
	fm_validator_free(v);
}

static void
test_backends(void **state)
{
	static const struct {
		struct canon_extra	 ex;
		const char		*reason;
	} cases[] = {
		{ EX("crypto", "\"gpg\""), "'gpg'" },
		{ EX("crypto", "\"x509_ng\""), "unknown" },
		{ EX("crypto", "\"X509\""), "unknown" },
		{ EX("crypto", "\"\""), "unknown" },
		{ EX("crypto", "\"x509\\u0000\""), "unknown" },
		{ EX("crypto", "509"), "unknown" },
		{ EX("crypto", "null"), "unknown" },
		{ EX("crypto", "[\"x509\"]"), "unknown" },
	};
	struct fm_validator *v = validator("crl", true, 0, 0);
	struct fm_msg *s = signed_msg(ALPHA, TOPIC, 1700000000), *m;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		m = edit(s, NULL, &cases[i].ex, 1);
		expect(v, m, FM_INVALID_BACKEND, cases[i].reason);
		fm_msg_unref(m);
	}
	/* a gpg-only message (signature, no certificate, crypto gpg) */
	{
		static const char gpg[] = "{\"crypto\":\"gpg\",\"signature\":"
		    "\"QUJD\",\"msg\":{}}";

		m = parse_text(gpg, sizeof(gpg) - 1);
	}
	expect(v, m, FM_INVALID_BACKEND, "'gpg'");
	fm_msg_unref(m);
	fm_validator_free(v);

	/* x509 itself disallowed */
	v = validator("crl", false, 0, 0);
	expect(v, s, FM_INVALID_BACKEND, "crypto_validate_backends");
	m = unsigned_msg(TOPIC, 1);
	expect(v, m, FM_INVALID_UNSIGNED, NULL);	/* still unsigned first */
	fm_msg_unref(m);
	fm_msg_unref(s);
	fm_validator_free(v);
}

static void
test_bad_base64(void **state)
{
	static const struct {
		struct canon_extra	 ex;
		const char		*reason;
	} cases[] = {
		{ EX("signature", "\"QUJDRA\""), "signature: invalid base64: "
		  "incorrect padding" },
		{ EX("signature", "\"QUJDR\\n\""), "1 more than a multiple" },
		{ EX("certificate", "\"QUJDRA=\""), "certificate: invalid "
		  "base64" },
		{ EX("certificate", "\"Q\""), "certificate: invalid base64" },
	};
	struct fm_validator *v = validator("crl", true, 0, 0);
	struct fm_msg *s = signed_msg(ALPHA, TOPIC, 1700000000), *m;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		m = edit(s, NULL, &cases[i].ex, 1);
		expect(v, m, FM_INVALID_BASE64, cases[i].reason);
		fm_msg_unref(m);
	}
	fm_msg_unref(s);
	fm_validator_free(v);
}

/* The certificate field with the base64 of text. */
static struct fm_msg *
with_certificate_text(const struct fm_msg *s, const char *text, size_t n)
{
	struct buf b64 = BUF_INIT, json = BUF_INIT;
	struct canon_extra ex;
	struct fm_msg *m;

	b64_encode_wrapped(&b64, text, n);
	canon_string(&json, b64.data ? b64.data : "", b64.len);
	ex = (struct canon_extra){ "certificate", json.data, json.len };
	m = edit(s, NULL, &ex, 1);
	buf_free(&b64);
	buf_free(&json);
	return m;
}

static void
test_bad_certificate(void **state)
{
	static const char junk_pem[] = "-----BEGIN CERTIFICATE-----\n"
	    "SGVsbG8sIHdvcmxkIQ==\n-----END CERTIFICATE-----\n";
	struct fm_validator *v = validator("crl", true, 0, 0);
	struct fm_msg *s = signed_msg(ALPHA, TOPIC, 1700000000), *m;
	char *crl;
	size_t n;

	(void)state;
	m = with_certificate_text(s, "hello", 5);
	expect(v, m, FM_INVALID_CERT, "not a PEM X.509 certificate");
	fm_msg_unref(m);
	m = with_certificate_text(s, "", 0);
	expect(v, m, FM_INVALID_CERT, NULL);
	fm_msg_unref(m);
	m = with_certificate_text(s, junk_pem, sizeof(junk_pem) - 1);
	expect(v, m, FM_INVALID_CERT, NULL);
	fm_msg_unref(m);
	/* a PEM CRL is not a certificate either */
	crl = tu_read_file(tu_cert_path("crl", ".pem"), &n);
	m = with_certificate_text(s, crl, n);
	expect(v, m, FM_INVALID_CERT, NULL);
	fm_msg_unref(m);
	free(crl);
	fm_msg_unref(s);
	fm_validator_free(v);
}

/*
 * A certificate field that decodes to an encrypted PEM block: OpenSSL's
 * default passphrase callback would prompt on the terminal and wait.  Run
 * in a child whose controlling terminal is a pty that never types.
 */
static void
test_encrypted_pem_does_not_prompt(void **state)
{
	static const char pem[] = "-----BEGIN CERTIFICATE-----\n"
	    "Proc-Type: 4,ENCRYPTED\n"
	    "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
	    "-----END CERTIFICATE-----\n";
	struct fm_validator *v = validator("crl", true, 0, 0);
	struct fm_msg *s = signed_msg(ALPHA, TOPIC, 1700000000), *m;
	char shown[256];
	size_t nshown = 0;
	int master, status = 0, waited;
	ssize_t n;
	pid_t pid;

	(void)state;
	m = with_certificate_text(s, pem, sizeof(pem) - 1);
	if ((pid = forkpty(&master, NULL, NULL, NULL)) < 0)
		skip();		/* no pty here: nothing to prompt on */
	if (pid == 0)
		_exit(fm_validator_check(v, m, NULL) == FM_INVALID_CERT ? 0 :
		    1);
	(void)fcntl(master, F_SETFL, O_NONBLOCK);
	for (waited = 0; waited < 500; waited++) {	/* 5 s */
		while (nshown < sizeof(shown) - 1 && (n = read(master,
		    shown + nshown, sizeof(shown) - 1 - nshown)) > 0)
			nshown += (size_t)n;
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(10000);
	}
	shown[nshown] = '\0';
	close(master);
	if (waited == 500) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("the validator waits on the terminal: '%s'", shown);
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	expect(v, m, FM_INVALID_CERT, "not a PEM X.509 certificate");
	fm_msg_unref(m);
	fm_msg_unref(s);
	fm_validator_free(v);
}

static void
test_chain_failures(void **state)
{
	static const struct {
		int		 who;
		const char	*crl;
		const char	*reason;
	} cases[] = {
		{ REVOKED, "crl", "certificate revoked" },
		{ EXPIRED, "crl", "certificate has expired" },
		{ NOTYET, "crl", "certificate is not yet valid" },
		{ UNTRUSTED, "crl", "unable to get local issuer certificate" },
		{ ALPHA, "crl-stale", "CRL has expired" },
		{ BETA, "crl-stale", "CRL has expired" },
		{ EXPIRED, NULL, "certificate has expired" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fm_validator *v = validator(cases[i].crl, true, 0, 0);
		struct fm_msg *m = signed_msg(cases[i].who, TOPIC, 1700000000);

		expect(v, m, FM_INVALID_CHAIN, cases[i].reason);
		/* a cached negative verdict says the same */
		expect(v, m, FM_INVALID_CHAIN, cases[i].reason);
		fm_msg_unref(m);
		fm_validator_free(v);
	}
	/* without a CRL a revoked certificate passes, as in fedmsg */
	{
		struct fm_validator *v = validator(NULL, true, 0, 0);
		struct fm_msg *m = signed_msg(REVOKED, TOPIC, 1700000000);

		expect(v, m, FM_VALID, NULL);
		fm_msg_unref(m);
		fm_validator_free(v);
	}
}

/* m with field key replaced by the JSON string of text[0..n). */
static struct fm_msg *
with_string_field(const struct fm_msg *m, const char *key, const char *text,
    size_t n)
{
	struct buf json = BUF_INIT;
	struct canon_extra ex;
	struct fm_msg *out;

	canon_string(&json, text, n);
	ex = (struct canon_extra){ key, json.data, json.len };
	out = edit(m, NULL, &ex, 1);
	buf_free(&json);
	return out;
}

/* Message s with its signature field replaced by sig[0..len): verdict. */
static void
expect_signature(struct fm_validator *v, const struct fm_msg *s,
    const char *sig, size_t len, enum fm_verdict want, const char *reason)
{
	struct fm_msg *m = with_string_field(s, "signature", sig, len);

	expect(v, m, want, reason);
	fm_msg_unref(m);
}

static void
test_tampered(void **state)
{
	const struct canon_extra changes[] = {
		EX("i", "2"), EX("timestamp", "1700000000.0"),
		EX("topic", "\"org.fedoraproject.dev.test.other\""),
		EX("extra", "1"), EX("msg", "{\"x\":1,\"note\":\"cafe\"}"),
		EX("username", "\"mallory\""),
	};
	static const char *const no_crypto[] = { "crypto", NULL };
	struct fm_validator *v = validator("crl", true, 0, 0);
	struct fm_msg *s = signed_msg(ALPHA, TOPIC, 1700000000), *b, *m;
	const struct jv *sig, *cert;
	struct buf q = BUF_INIT;
	struct canon_extra ex;
	size_t i;
	char *t;

	(void)state;
	for (i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		m = edit(s, NULL, &changes[i], 1);
		expect(v, m, FM_INVALID_SIGNATURE, "does not match");
		fm_msg_unref(m);
	}
	/* crypto removed: still x509 by the certificate, but signed over */
	m = edit(s, no_crypto, NULL, 0);
	expect(v, m, FM_INVALID_SIGNATURE, NULL);
	fm_msg_unref(m);

	/* one base64 character of the signature changed */
	sig = jv_get(msg_root(s), "signature");
	t = malloc(sig->len + 1000);
	memcpy(t, sig->u.str, sig->len);
	t[10] = t[10] == 'A' ? 'B' : 'A';
	expect_signature(v, s, t, sig->len, FM_INVALID_SIGNATURE, NULL);
	/*
	 * Signatures longer than the validator's stack buffer: junk that the
	 * lenient decoder skips before the real one (valid), and a 3 KB one
	 * (does not match)
	 */
	memset(t, '*', 1000);
	memcpy(t + 1000, sig->u.str, sig->len);
	expect_signature(v, s, t, sig->len + 1000, FM_VALID, NULL);
	free(t);
	t = malloc(4096);
	memset(t, 'Q', 4096);
	expect_signature(v, s, t, 4096, FM_INVALID_SIGNATURE,
	    "does not match");
	free(t);

	/* another trusted signer's certificate with alpha's signature */
	b = signed_msg(BETA, TOPIC, 1700000000);
	cert = jv_get(msg_root(b), "certificate");
	canon_string(&q, cert->u.str, cert->len);
	ex = (struct canon_extra){ "certificate", q.data, q.len };
	m = edit(s, NULL, &ex, 1);
	expect(v, m, FM_INVALID_SIGNATURE, NULL);
	fm_msg_unref(m);
	buf_free(&q);
	fm_msg_unref(b);

	/* re-spacing and re-spelling do not matter */
	{
		size_t len;
		const char *body = fm_msg_body(s, &len);
		struct buf sp = BUF_INIT;

		for (i = 0; i < len; i++) {
			buf_addc(&sp, body[i]);
			if (body[i] == ',' || body[i] == ':')
				buf_adds(&sp, " \n\t");
		}
		m = parse_text(sp.data, sp.len);
		expect(v, m, FM_VALID, NULL);
		fm_msg_unref(m);
		buf_free(&sp);
	}
	fm_msg_unref(s);
	fm_validator_free(v);
}

static void
test_no_common_name(void **state)
{
	struct fm_validator *v = validator("crl", true, 0, 0);
	struct fm_msg *m = signed_msg(NOCN, TOPIC, 1700000000);

	(void)state;
	assert_null(fm_signer_cn(signers[NOCN]));
	expect(v, m, FM_INVALID_NO_CN, "no commonName");
	fm_validator_allow(v, TOPIC, ALPHA_CN);
	expect(v, m, FM_INVALID_NO_CN, NULL);
	fm_msg_unref(m);
	fm_validator_free(v);
}

static struct fm_validator *
routing_validator(bool nitpicky)
{
	struct fm_validator_config cfg = { 0 };
	struct fm_validator *v;
	char err[FM_ERRLEN], ca[4096], crl[4096];

	snprintf(ca, sizeof(ca), "%s", tu_cert_path("ca", ".crt"));
	snprintf(crl, sizeof(crl), "%s", tu_cert_path("crl", ".pem"));
	cfg.ca_path = ca;
	cfg.crl_path = crl;
	cfg.allow_x509 = true;
	cfg.routing_nitpicky = nitpicky;
	v = fm_validator_new(&cfg, err);
	assert_non_null(v);
	return v;
}

static void
test_routing(void **state)
{
	struct fm_msg *a = signed_msg(ALPHA, TOPIC, 1700000000);
	struct fm_msg *other = signed_msg(ALPHA,
	    "org.fedoraproject.dev.test.other", 1700000000);
	struct fm_msg *notopic, *numtopic, *tmp;
	static const char *const skip_topic[] = { "topic", NULL };
	const struct canon_extra num = EX("topic", "42");
	struct fm_validator *v;

	(void)state;
	tmp = edit(a, skip_topic, NULL, 0);
	notopic = sign(ALPHA, tmp);
	fm_msg_unref(tmp);
	tmp = edit(a, NULL, &num, 1);
	numtopic = sign(ALPHA, tmp);
	fm_msg_unref(tmp);
	assert_null(fm_msg_topic(notopic));
	assert_null(fm_msg_topic(numtopic));

	/* allowed */
	v = routing_validator(false);
	assert_int_equal(fm_validator_allow(v, TOPIC, BETA_CN), 0);
	assert_int_equal(fm_validator_allow(v, TOPIC, ALPHA_CN), 0);
	expect(v, a, FM_VALID, NULL);
	/* a topic not in the policy, not nitpicky: allowed */
	expect(v, other, FM_VALID, NULL);
	expect(v, notopic, FM_VALID, NULL);
	/* a topic that is not a string is refused, not skipped */
	expect(v, numtopic, FM_INVALID_FIELD, "'topic' is not a string");
	fm_validator_free(v);

	/* violation: only beta may send */
	v = routing_validator(false);
	assert_int_equal(fm_validator_allow(v, TOPIC, BETA_CN), 0);
	expect(v, a, FM_INVALID_ROUTING, ALPHA_CN);
	expect(v, other, FM_VALID, NULL);
	fm_validator_free(v);

	/* a CN substring is not enough; neither is a prefix or case */
	v = routing_validator(false);
	assert_int_equal(fm_validator_allow(v, TOPIC, "alpha-app01"), 0);
	assert_int_equal(fm_validator_allow(v, TOPIC, ALPHA_CN "x"), 0);
	assert_int_equal(fm_validator_allow(v, TOPIC,
	    "ALPHA-APP01.vectors.example.org"), 0);
	expect(v, a, FM_INVALID_ROUTING, NULL);
	fm_validator_free(v);

	/* a topic nobody may send on */
	v = routing_validator(false);
	assert_int_equal(fm_validator_allow(v, TOPIC, NULL), 0);
	expect(v, a, FM_INVALID_ROUTING, NULL);
	fm_validator_free(v);

	/* nitpicky: a topic missing from the policy is refused */
	v = routing_validator(true);
	assert_int_equal(fm_validator_allow(v, TOPIC, ALPHA_CN), 0);
	expect(v, a, FM_VALID, NULL);
	expect(v, other, FM_INVALID_ROUTING, "not in routing_policy");
	expect(v, notopic, FM_INVALID_ROUTING, NULL);
	expect(v, numtopic, FM_INVALID_FIELD, NULL);
	fm_validator_free(v);
	/* nitpicky with an empty policy refuses everything */
	v = routing_validator(true);
	expect(v, a, FM_INVALID_ROUTING, NULL);
	fm_validator_free(v);

	/* many topics, added in any order, are all found */
	v = routing_validator(true);
	{
		char t[64];
		int i;

		for (i = 50; i >= 0; i--) {
			snprintf(t, sizeof(t), "org.fedoraproject.dev.t%02d", i);
			assert_int_equal(fm_validator_allow(v, t, BETA_CN), 0);
		}
		assert_int_equal(fm_validator_allow(v, TOPIC, BETA_CN), 0);
		assert_int_equal(fm_validator_allow(v, TOPIC, ALPHA_CN), 0);
		for (i = 0; i <= 50; i += 7) {
			snprintf(t, sizeof(t), "org.fedoraproject.dev.t%02d", i);
			assert_int_equal(fm_validator_allow(v, t, ALPHA_CN), 0);
		}
	}
	expect(v, a, FM_VALID, NULL);
	fm_validator_free(v);

	fm_msg_unref(a);
	fm_msg_unref(other);
	fm_msg_unref(notopic);
	fm_msg_unref(numtopic);
}

/* The body text of m with text inserted after its opening brace. */
static struct fm_msg *
prepend(const struct fm_msg *m, const char *text)
{
	struct buf b = BUF_INIT;
	struct fm_msg *out = NULL;
	char err[FM_ERRLEN];
	size_t len;
	const char *body = fm_msg_body(m, &len);

	assert_int_equal(body[0], '{');
	buf_addc(&b, '{');
	buf_adds(&b, text);
	buf_add(&b, body + 1, len - 1);
	assert_false(b.oom);
	/* fm_msg_parse() refuses these; check the validator's own verdict */
	if (msg_parse(b.data, b.len, NULL, MSG_KEEP_DUPLICATES, &out, err) != 0)
		fail_msg("msg_parse: %s", err);
	buf_free(&b);
	return out;
}

/*
 * The duplicate-key forgery: fields put in front of a genuine signed
 * body.  The signature still matches the last copies (what we parse); a
 * reader keeping the first copy would act on the attacker's.  Every
 * validating path (hub, relay, tail, both bridge directions, fedmsg-verify)
 * calls fm_validator_check(), so this verdict is theirs.
 */
static void
test_duplicate_keys(void **state)
{
	static const char *const forgeries[] = {
		"\"msg\":{\"action\":\"delete-everything\"},\"msg_id\":"
		    "\"--evil\",\"topic\":\"org.fedoraproject.prod.EVIL\",",
		"\"m\\u0073g\":{\"action\":\"delete-everything\"},",
		"\"topic\":\"org.fedoraproject.dev.test.other\",",
		"\"\\u0074opic\":\"org.fedoraproject.dev.test.other\",",
	};
	struct fm_validator *v = routing_validator(false);
	struct fm_msg *s = signed_msg(ALPHA, TOPIC, 1700000000), *m, *tmp;
	struct buf b = BUF_INIT;
	char err[FM_ERRLEN];
	size_t i, len;
	const char *body;

	(void)state;
	assert_int_equal(fm_validator_allow(v, TOPIC, ALPHA_CN), 0);
	expect(v, s, FM_VALID, NULL);
	for (i = 0; i < sizeof(forgeries) / sizeof(forgeries[0]); i++) {
		m = prepend(s, forgeries[i]);
		expect(v, m, FM_INVALID_DUPLICATE_KEY, "duplicate key");
		/* and the envelope layer refuses it outright */
		body = fm_msg_body(m, &len);
		tmp = (struct fm_msg *)1;
		assert_int_equal(fm_msg_parse(body, len, NULL, &tmp, err), -1);
		assert_null(tmp);
		assert_non_null(strstr(err, "duplicate key"));
		fm_msg_unref(m);
	}
	/* a duplicate nested inside msg: the signature covers the last copy */
	body = fm_msg_body(s, &len);
	{
		const char *at = strstr(body, "\"msg\":{");

		assert_non_null(at);
		at += 7;
		buf_add(&b, body, (size_t)(at - body));
		buf_adds(&b, "\"x\":\"evil\",");
		buf_add(&b, at, len - (size_t)(at - body));
	}
	if (msg_parse(b.data, b.len, NULL, MSG_KEEP_DUPLICATES, &tmp, err) != 0)
		fail_msg("msg_parse: %s", err);
	expect(v, tmp, FM_INVALID_DUPLICATE_KEY, "\"x\"");
	fm_msg_unref(tmp);
	buf_free(&b);
	fm_msg_unref(s);
	fm_validator_free(v);
}

/*
 * A topic present but not a string, or holding NUL, would skip
 * routing_policy (fm_msg_topic() is NULL for it): refused as bad_field.
 */
static void
test_topic_types(void **state)
{
	static const char *const topics[] = {
		"[\"org.fedoraproject.dev.test.thing\"]", "42", "null", "true",
		"{\"t\":1}", "\"org.fedoraproject.dev.test.thing\\u0000x\"",
	};
	struct fm_validator *v = routing_validator(false);
	struct fm_msg *s = signed_msg(ALPHA, TOPIC, 1700000000), *m, *tmp;
	size_t i;

	(void)state;
	/* only beta may publish on TOPIC */
	assert_int_equal(fm_validator_allow(v, TOPIC, BETA_CN), 0);
	expect(v, s, FM_INVALID_ROUTING, NULL);
	for (i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		struct canon_extra ex = { "topic", topics[i], strlen(topics[i]) };

		tmp = edit(s, NULL, &ex, 1);
		m = sign(ALPHA, tmp);
		fm_msg_unref(tmp);
		assert_null(fm_msg_topic(m));
		expect(v, m, FM_INVALID_FIELD, i + 1 < sizeof(topics) /
		    sizeof(topics[0]) ? "'topic' is not a string" :
		    "'topic' holds a NUL character");
		fm_msg_unref(m);
	}
	fm_msg_unref(s);
	fm_validator_free(v);
}

static void
test_freshness(void **state)
{
	int64_t now = (int64_t)time(NULL);
	struct fm_validator *v;
	struct fm_msg *old = signed_msg(ALPHA, TOPIC, now - 600);
	struct fm_msg *fresh = signed_msg(ALPHA, TOPIC, now);
	struct fm_msg *future = signed_msg(ALPHA, TOPIC, now + 600);
	struct fm_msg *ancient = signed_msg(ALPHA, TOPIC, 1);
	static const char *const skip_ts[] = { "timestamp", NULL };
	const struct canon_extra fts = EX("timestamp", "\"1700000000\"");
	struct fm_msg *nots, *strts, *tmp;

	(void)state;
	nots = sign(ALPHA, (tmp = edit(fresh, skip_ts, NULL, 0)));
	fm_msg_unref(tmp);
	strts = sign(ALPHA, (tmp = edit(fresh, NULL, &fts, 1)));
	fm_msg_unref(tmp);

	/* off by default (fedmsg's behaviour) */
	v = validator("crl", true, 0, 0);
	expect(v, old, FM_VALID, NULL);
	expect(v, future, FM_VALID, NULL);
	expect(v, ancient, FM_VALID, NULL);
	expect(v, nots, FM_VALID, NULL);
	expect(v, strts, FM_VALID, NULL);
	fm_validator_free(v);

	/* max_age only: max_future gets its default, 60 s */
	v = validator("crl", true, 300, 0);
	expect(v, fresh, FM_VALID, NULL);
	expect(v, old, FM_INVALID_STALE, "validate_max_age 300");
	expect(v, ancient, FM_INVALID_STALE, NULL);
	expect(v, future, FM_INVALID_FUTURE, "validate_max_future 60");
	expect_at(v, future, now + 600 - 60, FM_VALID, NULL);
	expect_at(v, future, now + 600 - 61, FM_INVALID_FUTURE, NULL);
	expect(v, nots, FM_INVALID_STALE, "no numeric timestamp");
	expect(v, strts, FM_INVALID_STALE, "no numeric timestamp");
	/* the window edges, with the clock given */
	expect_at(v, old, now - 600 + 300, FM_VALID, NULL);
	expect_at(v, old, now - 600 + 301, FM_INVALID_STALE, NULL);
	fm_validator_free(v);

	/* max_age with the future limit lifted on purpose */
	v = validator("crl", true, 300, UINT_MAX);
	expect(v, future, FM_VALID, NULL);
	expect(v, old, FM_INVALID_STALE, NULL);
	fm_validator_free(v);

	/* max_future only */
	v = validator("crl", true, 0, 300);
	expect(v, fresh, FM_VALID, NULL);
	expect(v, future, FM_INVALID_FUTURE, "validate_max_future 300");
	expect(v, old, FM_VALID, NULL);
	expect_at(v, future, now + 600 - 300, FM_VALID, NULL);
	expect_at(v, future, now + 600 - 301, FM_INVALID_FUTURE, NULL);
	fm_validator_free(v);

	/* both; and the signature is checked before freshness */
	v = validator("crl", true, 300, 300);
	expect(v, old, FM_INVALID_STALE, NULL);
	expect(v, future, FM_INVALID_FUTURE, NULL);
	tmp = edit(old, NULL, &fts, 1);
	expect(v, tmp, FM_INVALID_SIGNATURE, NULL);
	fm_msg_unref(tmp);
	fm_validator_free(v);

	fm_msg_unref(old);
	fm_msg_unref(fresh);
	fm_msg_unref(future);
	fm_msg_unref(ancient);
	fm_msg_unref(nots);
	fm_msg_unref(strts);
}

/* Non-finite timestamps never pass an enabled freshness check. */
static void
test_freshness_nonfinite(void **state)
{
	static const char *const lits[] = { "NaN", "Infinity", "-Infinity",
	    "1e400" };
	struct fm_validator *v = validator("crl", true, 300, 300);
	struct fm_validator *off = validator("crl", true, 0, 0);
	struct fm_msg *fresh = signed_msg(ALPHA, TOPIC, (int64_t)time(NULL));
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
		struct canon_extra ex = { "timestamp", lits[i],
		    strlen(lits[i]) };
		struct fm_msg *u = edit(fresh, NULL, &ex, 1), *m = sign(ALPHA, u);
		char reason[FM_ERRLEN];
		enum fm_verdict got = fm_validator_check(v, m, reason);

		if (got != FM_INVALID_STALE && got != FM_INVALID_FUTURE)
			fail_msg("timestamp %s: %s (%s)", lits[i],
			    fm_verdict_name(got), reason);
		expect(off, m, FM_VALID, NULL);
		fm_msg_unref(u);
		fm_msg_unref(m);
	}
	fm_msg_unref(fresh);
	fm_validator_free(v);
	fm_validator_free(off);
}

static void
test_check_at(void **state)
{
	struct fm_validator *v = validator("crl", true, 0, 0);
	struct fm_msg *a = signed_msg(ALPHA, TOPIC, 1700000000);
	struct fm_msg *n = signed_msg(NOTYET, TOPIC, 1700000000);
	struct fm_msg *e = signed_msg(EXPIRED, TOPIC, 1700000000);
	int64_t now = (int64_t)time(NULL);

	(void)state;
	expect_at(v, a, now, FM_VALID, NULL);
	/* in 2044 crl.pem is past its nextUpdate */
	expect_at(v, a, IN_2044, FM_INVALID_CHAIN, "CRL has expired");
	/* and back: the cached verdicts follow the clock */
	expect_at(v, a, now, FM_VALID, NULL);
	expect_at(v, a, IN_2044, FM_INVALID_CHAIN, "CRL has expired");
	/* before the CRL was issued */
	expect_at(v, a, INT64_C(1600000000), FM_INVALID_CHAIN, NULL);
	/* 2020-06-01: the expired cert was valid then, but not the CRL */
	expect_at(v, e, INT64_C(1590969600), FM_INVALID_CHAIN, NULL);
	fm_validator_free(v);

	/* without a CRL, dates are those of the certificates only */
	v = validator(NULL, true, 0, 0);
	expect_at(v, a, IN_2044, FM_VALID, NULL);
	expect_at(v, n, IN_2046, FM_VALID, NULL);	/* 2045..2048 */
	expect_at(v, n, IN_2044, FM_INVALID_CHAIN, "not yet valid");
	expect_at(v, n, now, FM_INVALID_CHAIN, "not yet valid");
	expect_at(v, e, now, FM_INVALID_CHAIN, "expired");
	/* in 2020 the leaf was valid but the CA (2024..) was not */
	expect_at(v, e, INT64_C(1590969600), FM_INVALID_CHAIN, "not yet valid");
	fm_validator_free(v);
	fm_msg_unref(a);
	fm_msg_unref(n);
	fm_msg_unref(e);
}

/*
 * A certificate that is not yet valid becomes valid at its notBefore,
 * not when the negative verdict cached a second earlier runs out.
 */
static void
test_not_yet_valid_edge(void **state)
{
	struct fm_validator *v = validator(NULL, true, 0, 0);
	struct fm_msg *n = signed_msg(NOTYET, TOPIC, 1700000000);
	struct tm tm;
	int64_t nb;
	X509 *cert;
	FILE *f;

	(void)state;
	assert_non_null(f = fopen(tu_cert_path(signer_names[NOTYET], ".crt"),
	    "r"));
	assert_non_null(cert = PEM_read_X509(f, NULL, NULL, NULL));
	fclose(f);
	assert_int_equal(ASN1_TIME_to_tm(X509_get0_notBefore(cert), &tm), 1);
	nb = (int64_t)timegm(&tm);
	X509_free(cert);
	expect_at(v, n, nb - 1, FM_INVALID_CHAIN, "not yet valid");
	expect_at(v, n, nb, FM_VALID, NULL);
	expect_at(v, n, nb + 1, FM_VALID, NULL);
	/* and a first look right at the edge, from a fresh validator */
	fm_validator_free(v);
	v = validator(NULL, true, 0, 0);
	expect_at(v, n, nb - 30, FM_INVALID_CHAIN, "not yet valid");
	expect_at(v, n, nb - 1, FM_INVALID_CHAIN, "not yet valid");
	expect_at(v, n, nb, FM_VALID, NULL);
	fm_msg_unref(n);
	fm_validator_free(v);
}

static struct fm_validator *
tmp_crl_validator(unsigned interval)
{
	struct fm_validator_config cfg = { 0 };
	struct fm_validator *v;
	char err[FM_ERRLEN], ca[4096], crl[256];

	snprintf(ca, sizeof(ca), "%s", tu_cert_path("ca", ".crt"));
	snprintf(crl, sizeof(crl), "%s", tmp_path("crl.pem"));
	cfg.ca_path = ca;
	cfg.crl_path = crl;
	cfg.allow_x509 = true;
	cfg.reload_check_interval = interval;
	if ((v = fm_validator_new(&cfg, err)) == NULL)
		fail_msg("%s", err);
	return v;
}

static void
test_crl_reload(void **state)
{
	struct fm_msg *r = signed_msg(REVOKED, TOPIC, 1700000000);
	struct fm_msg *a = signed_msg(ALPHA, TOPIC, 1700000000);
	struct fm_validator *v;

	(void)state;
	install_file(tu_cert_path("crl", ".pem"), tmp_path("crl.pem"));
	v = tmp_crl_validator(3600);
	expect(v, r, FM_INVALID_CHAIN, "certificate revoked");
	expect(v, a, FM_VALID, NULL);
	/* a CRL without the revocation: not seen until a reload */
	install_file(tmp_path("crl-empty.pem"), tmp_path("crl.pem"));
	expect(v, r, FM_INVALID_CHAIN, "certificate revoked");
	fm_validator_reload(v);
	expect(v, r, FM_VALID, NULL);
	expect(v, a, FM_VALID, NULL);
	/* and back: revoked again, valid verdicts dropped too */
	install_file(tu_cert_path("crl", ".pem"), tmp_path("crl.pem"));
	fm_validator_reload(v);
	expect(v, r, FM_INVALID_CHAIN, "certificate revoked");
	/* a stale CRL after a reload fails everybody */
	install_file(tu_cert_path("crl-stale", ".pem"), tmp_path("crl.pem"));
	fm_validator_reload(v);
	expect(v, a, FM_INVALID_CHAIN, "CRL has expired");
	/* a broken file keeps the last good CRL (with a warning) */
	write_file(tmp_path("crl.pem"), "junk\n", 5);
	fm_validator_reload(v);
	expect(v, a, FM_INVALID_CHAIN, "CRL has expired");
	install_file(tmp_path("crl-empty.pem"), tmp_path("crl.pem"));
	fm_validator_reload(v);
	expect(v, a, FM_VALID, NULL);
	/* a vanished file too */
	unlink(tmp_path("crl.pem"));
	fm_validator_reload(v);
	expect(v, r, FM_VALID, NULL);
	fm_validator_free(v);
	fm_msg_unref(r);
	fm_msg_unref(a);
}

/* With the default stat interval (1 s) a changed CRL is noticed by itself. */
static void
test_crl_reload_auto(void **state)
{
	struct fm_msg *r = signed_msg(REVOKED, TOPIC, 1700000000);
	struct fm_validator *v;
	struct timespec ts = { 1, 100000000 };

	(void)state;
	install_file(tmp_path("crl-empty.pem"), tmp_path("crl.pem"));
	v = tmp_crl_validator(0);
	expect(v, r, FM_VALID, NULL);
	install_file(tu_cert_path("crl", ".pem"), tmp_path("crl.pem"));
	nanosleep(&ts, NULL);
	expect(v, r, FM_INVALID_CHAIN, "certificate revoked");
	fm_validator_free(v);
	fm_msg_unref(r);
}

/* The CA file is watched as well. */
static void
test_ca_reload(void **state)
{
	struct fm_validator_config cfg = { 0 };
	struct fm_msg *a = signed_msg(ALPHA, TOPIC, 1700000000);
	struct fm_msg *u = signed_msg(UNTRUSTED, TOPIC, 1700000000);
	struct fm_validator *v;
	char err[FM_ERRLEN], ca[256];

	(void)state;
	install_file(tu_cert_path("ca", ".crt"), tmp_path("ca.pem"));
	snprintf(ca, sizeof(ca), "%s", tmp_path("ca.pem"));
	cfg.ca_path = ca;
	cfg.allow_x509 = true;
	cfg.reload_check_interval = 3600;
	v = fm_validator_new(&cfg, err);
	assert_non_null(v);
	expect(v, a, FM_VALID, NULL);
	expect(v, u, FM_INVALID_CHAIN, NULL);
	install_file(tu_cert_path("untrusted-ca", ".crt"), tmp_path("ca.pem"));
	fm_validator_reload(v);
	expect(v, a, FM_INVALID_CHAIN, NULL);
	expect(v, u, FM_VALID, "signed by " ALPHA_CN);	/* the impostor */
	fm_validator_free(v);
	fm_msg_unref(a);
	fm_msg_unref(u);
}

static void
test_cache(void **state)
{
	struct fm_validator_config cfg = { 0 };
	struct fm_msg *m[4];
	static const enum fm_verdict want[4] = { FM_VALID, FM_VALID,
	    FM_INVALID_CHAIN, FM_INVALID_SIGNATURE };
	const struct canon_extra ch = EX("i", "99");
	struct fm_validator *v;
	char err[FM_ERRLEN], ca[4096], crl[4096];
	int round, k;

	(void)state;
	m[0] = signed_msg(ALPHA, TOPIC, 1700000000);
	m[1] = signed_msg(BETA, TOPIC, 1700000000);
	m[2] = signed_msg(REVOKED, TOPIC, 1700000000);
	m[3] = edit(m[0], NULL, &ch, 1);	/* alpha's cert, bad signature */
	snprintf(ca, sizeof(ca), "%s", tu_cert_path("ca", ".crt"));
	snprintf(crl, sizeof(crl), "%s", tu_cert_path("crl", ".pem"));
	cfg.ca_path = ca;
	cfg.crl_path = crl;
	cfg.allow_x509 = true;
	for (cfg.cert_cache_size = 1; cfg.cert_cache_size <= 3;
	    cfg.cert_cache_size++) {
		v = fm_validator_new(&cfg, err);
		assert_non_null(v);
		for (round = 0; round < 6; round++)
			for (k = 0; k < 4; k++)
				expect(v, m[(k + round) % 4], want[(k + round) %
				    4], NULL);
		fm_validator_free(v);
	}
	for (k = 0; k < 4; k++)
		fm_msg_unref(m[k]);
}


/*
 * The certificate field of m spelled differently (k-th variant): the
 * lenient base64 decoder skips characters outside its alphabet, so "!" at
 * a few places gives the same certificate in a new text.
 */
static struct fm_msg *
respelled(const struct fm_msg *m, unsigned k)
{
	const struct jv *cert = jv_get(msg_root(m), "certificate");
	struct buf b = BUF_INIT;
	struct fm_msg *out;
	size_t i;

	for (i = 0; i < cert->len; i++) {
		if (i % 64 == 0 && ((k >> ((i / 64) % 16)) & 1))
			buf_addc(&b, '!');
		buf_addc(&b, cert->u.str[i]);
	}
	for (i = 0; i < k / 65536 + 1; i++)
		buf_addc(&b, '!');
	out = with_string_field(m, "certificate", b.data, b.len);
	buf_free(&b);
	return out;
}

/* A self-signed certificate (serial n), base64 of its PEM, in b. */
static void
junk_cert_b64(EVP_PKEY *key, long n, struct buf *b)
{
	X509 *x = X509_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char cn[64], *pem;
	long len;

	assert_non_null(x);
	assert_non_null(bio);
	snprintf(cn, sizeof(cn), "junk-%ld.example.org", n);
	ASN1_INTEGER_set(X509_get_serialNumber(x), n);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), -86400);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	assert_int_equal(PEM_write_bio_X509(bio, x), 1);
	len = BIO_get_mem_data(bio, &pem);
	b->len = 0;
	b64_encode_wrapped(b, pem, (size_t)len);
	BIO_free(bio);
	X509_free(x);
}

/*
 * The spelling cache places a certificate field by a hash of its length
 * and its tail: a field that differs only earlier lands in the same slot
 * and must not borrow the trusted verdict (issue 18's cache may not be
 * poisonable).
 */
static void
test_spelling_collision(void **state)
{
	struct fm_validator *v = validator("crl", true, 0, 0);
	struct fm_msg *s = signed_msg(ALPHA, TOPIC, 1700000000), *m;
	const struct jv *cert = jv_get(msg_root(s), "certificate");
	char reason[FM_ERRLEN], *text;
	enum fm_verdict got;

	(void)state;
	expect(v, s, FM_VALID, NULL);	/* its spelling is now cached */
	assert_true(cert->len > 200);
	text = malloc(cert->len);
	assert_non_null(text);
	memcpy(text, cert->u.str, cert->len);
	text[120] = text[120] == 'A' ? 'B' : 'A';	/* another DER */
	m = with_string_field(s, "certificate", text, cert->len);
	got = fm_validator_check(v, m, reason);
	if (got == FM_VALID)
		fail_msg("a different certificate field took the cached "
		    "verdict: %s", reason);
	expect(v, s, FM_VALID, NULL);
	fm_msg_unref(m);
	free(text);
	fm_msg_unref(s);
	fm_validator_free(v);
}

/*
 * A flood of rejected certificates (one bad certificate in endless
 * spellings, many distinct bad certificates, garbage) neither re-judges a
 * known bad certificate per spelling nor evicts a trusted entry.
 */
static void
test_cache_flood(void **state)
{
	struct fm_validator_config cfg = { 0 };
	struct fm_validator_stats st0, st;
	struct fm_msg *a = signed_msg(ALPHA, TOPIC, 1700000000);
	struct fm_msg *r = signed_msg(REVOKED, TOPIC, 1700000000), *m;
	struct fm_validator *v;
	EVP_PKEY *key;
	struct buf b = BUF_INIT;
	char err[FM_ERRLEN], ca[4096], crl[4096];
	unsigned k;

	(void)state;
	snprintf(ca, sizeof(ca), "%s", tu_cert_path("ca", ".crt"));
	snprintf(crl, sizeof(crl), "%s", tu_cert_path("crl", ".pem"));
	cfg.ca_path = ca;
	cfg.crl_path = crl;
	cfg.allow_x509 = true;
	cfg.cert_cache_size = 8;
	v = fm_validator_new(&cfg, err);
	assert_non_null(v);

	expect(v, a, FM_VALID, NULL);
	fm_validator_stats(v, &st0);
	assert_int_equal(st0.chain_checks, 1);
	assert_int_equal(st0.trusted_entries, 1);

	/* 100 distinct untrusted certificates, and undecodable junk */
	key = EVP_EC_gen("P-256");
	assert_non_null(key);
	for (k = 0; k < 100; k++) {
		junk_cert_b64(key, (long)k + 1, &b);
		m = with_string_field(a, "certificate", b.data, b.len);
		expect(v, m, FM_INVALID_CHAIN, NULL);
		fm_msg_unref(m);
		m = with_string_field(a, "certificate", b.data + 40,
		    b.len - 40);
		expect(v, m, FM_INVALID_CERT, NULL);
		fm_msg_unref(m);
	}
	EVP_PKEY_free(key);
	buf_free(&b);
	fm_validator_stats(v, &st);

	/* the trusted entry is still there: no new chain check */
	st0 = st;
	expect(v, a, FM_VALID, "signed by " ALPHA_CN);
	fm_validator_stats(v, &st);
	if (st.chain_checks != st0.chain_checks)
		fail_msg("the trusted certificate was evicted by junk");
	assert_int_equal(st.cache_hits, st0.cache_hits + 1);
	assert_int_equal(st.trusted_entries, 1);
	assert_true(st.negative_entries <= 64);

	st0 = st;
	/* one revoked certificate, 300 spellings: judged once */
	for (k = 0; k < 300; k++) {
		m = respelled(r, k);
		expect(v, m, FM_INVALID_CHAIN, "certificate revoked");
		fm_msg_unref(m);
	}
	fm_validator_stats(v, &st);
	if (st.chain_checks != st0.chain_checks + 1)
		fail_msg("300 spellings of one certificate: %llu chain checks",
		    (unsigned long long)st.chain_checks);
	/* a known signer in a new spelling is a cache hit as well */
	m = respelled(a, 7);
	expect(v, m, FM_VALID, NULL);
	fm_msg_unref(m);
	fm_validator_stats(v, &st);
	assert_int_equal(st.chain_checks, st0.chain_checks + 1);

	fm_msg_unref(a);
	fm_msg_unref(r);
	fm_validator_free(v);
}

/*
 * Certificate field texts are kept only for messages whose signature
 * verified, and only up to a size: a forger padding a signer's public
 * certificate (the base64 decoder skips '!') with a bad signature adds
 * none, however many and however long.
 */
static void
test_spellings_only_from_signers(void **state)
{
	struct fm_validator_config cfg = { 0 };
	struct fm_validator_stats st0, st;
	struct fm_msg *a = signed_msg(ALPHA, TOPIC, 1700000000), *forged, *m;
	const struct canon_extra ch = EX("i", "99");
	const struct jv *cert;
	struct fm_validator *v;
	struct buf b = BUF_INIT;
	char err[FM_ERRLEN], ca[4096];
	unsigned k;

	(void)state;
	snprintf(ca, sizeof(ca), "%s", tu_cert_path("ca", ".crt"));
	cfg.ca_path = ca;
	cfg.allow_x509 = true;
	cfg.cert_cache_size = 8;
	assert_non_null(v = fm_validator_new(&cfg, err));
	cert = jv_get(msg_root(a), "certificate");
	expect(v, a, FM_VALID, NULL);
	fm_validator_stats(v, &st0);
	assert_int_equal(st0.spelling_entries, 1);
	assert_int_equal(st0.spelling_bytes, cert->len);

	forged = edit(a, NULL, &ch, 1);		/* alpha's cert, bad signature */
	for (k = 0; k < 64; k++) {
		m = respelled(forged, k * 4099 + 1);
		expect(v, m, FM_INVALID_SIGNATURE, NULL);
		fm_msg_unref(m);
	}
	/* 64 KiB of padding, signature and all */
	buf_add(&b, cert->u.str, cert->len);
	for (k = 0; k < 65536; k++)
		buf_addc(&b, '!');
	m = with_string_field(forged, "certificate", b.data, b.len);
	expect(v, m, FM_INVALID_SIGNATURE, NULL);
	fm_msg_unref(m);
	fm_validator_stats(v, &st);
	assert_int_equal(st.spelling_entries, 1);
	assert_int_equal(st.spelling_bytes, st0.spelling_bytes);

	/* the signer's own message in that long spelling: valid, not kept */
	m = with_string_field(a, "certificate", b.data, b.len);
	expect(v, m, FM_VALID, NULL);
	fm_msg_unref(m);
	fm_validator_stats(v, &st);
	assert_int_equal(st.spelling_entries, 1);
	/* and in a short new one: kept */
	m = respelled(a, 5);
	expect(v, m, FM_VALID, NULL);
	fm_msg_unref(m);
	fm_validator_stats(v, &st);
	assert_true(st.spelling_entries == 2 || st.spelling_bytes !=
	    st0.spelling_bytes);	/* a new slot, or the same one reused */

	buf_free(&b);
	fm_msg_unref(forged);
	fm_msg_unref(a);
	fm_validator_free(v);
}

struct thread_arg {
	struct fm_validator	*v;
	struct fm_msg		*m[4];
	enum fm_verdict		 want[4];
	int			 offset, errors;
};

static void *
thread_main(void *p)
{
	struct thread_arg *t = p;
	int i;

	for (i = 0; i < 200; i++) {
		int k = (i + t->offset) % 4;
		char reason[FM_ERRLEN];

		if (fm_validator_check(t->v, t->m[k], reason) != t->want[k])
			t->errors++;
		if (i == 100 && t->offset == 0)
			fm_validator_reload(t->v);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct thread_arg args[2];
	pthread_t th[2];
	struct fm_msg *m[4];
	const struct canon_extra ch = EX("i", "99");
	struct fm_validator *v;
	int i, k;

	(void)state;
	m[0] = signed_msg(ALPHA, TOPIC, 1700000000);
	m[1] = signed_msg(REVOKED, TOPIC, 1700000000);
	m[2] = edit(m[0], NULL, &ch, 1);
	m[3] = signed_msg(EXPIRED, TOPIC, 1700000000);
	v = validator("crl", true, 0, 0);
	for (i = 0; i < 2; i++) {
		for (k = 0; k < 4; k++)
			args[i].m[k] = m[k];
		args[i].want[0] = FM_VALID;
		args[i].want[1] = FM_INVALID_CHAIN;
		args[i].want[2] = FM_INVALID_SIGNATURE;
		args[i].want[3] = FM_INVALID_CHAIN;
		args[i].v = v;
		args[i].offset = i;
		args[i].errors = 0;
		assert_int_equal(pthread_create(&th[i], NULL, thread_main,
		    &args[i]), 0);
	}
	for (i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].errors, 0);
	}
	fm_validator_free(v);
	for (k = 0; k < 4; k++)
		fm_msg_unref(m[k]);
}

/* ---- signing ------------------------------------------------------------ */

/* ---- the verify-once cache ------------------------------------------------ */

static struct fm_validator_stats
stats_of(struct fm_validator *v)
{
	struct fm_validator_stats st;

	fm_validator_stats(v, &st);
	return st;
}

/*
 * A message seen again is answered from the cache with the same verdict
 * and reason; everything but the RSA operation is still checked, so a
 * hit past the freshness window or outside the routing policy fails.
 */
static void
test_verified_hit(void **state)
{
	/* inside the CRL's dates */
	const int64_t t0 = (int64_t)time(NULL);
	struct fm_validator *v = validator("crl", true, 600, 0);
	struct fm_msg *a = signed_msg(ALPHA, TOPIC, t0);
	struct fm_msg *b = signed_msg(BETA, TOPIC, t0);
	struct fm_validator_stats st;

	(void)state;
	expect_at(v, a, t0 + 10, FM_VALID, "signed by " ALPHA_CN);
	st = stats_of(v);
	assert_int_equal(st.verified_hits, 0);
	assert_int_equal(st.verified_entries, 1);
	expect_at(v, a, t0 + 20, FM_VALID, "signed by " ALPHA_CN);
	assert_int_equal(stats_of(v).verified_hits, 1);
	/* the same bytes later: stale, from the cache or not */
	expect_at(v, a, t0 + 1000, FM_INVALID_STALE, "old");
	assert_int_equal(stats_of(v).verified_hits, 2);
	/* a policy that now excludes the signer */
	assert_int_equal(fm_validator_allow(v, TOPIC, BETA_CN), 0);
	expect_at(v, b, t0 + 10, FM_VALID, "signed by " BETA_CN);
	expect_at(v, a, t0 + 10, FM_INVALID_ROUTING, ALPHA_CN);
	assert_int_equal(stats_of(v).verified_hits, 3);
	fm_msg_unref(a);
	fm_msg_unref(b);
	fm_validator_free(v);
}

/*
 * Same signature (and certificate) over other bytes, and the same bytes
 * and signature under another signer's certificate: both miss the entry
 * of the genuine message and fail.  (A cache of one set, so that only the
 * comparison of the whole key can tell them apart.)
 */
static void
test_verified_not_borrowed(void **state)
{
	static const char *const no_i[] = { "i", NULL };
	static const struct canon_extra i2[] = { EX("i", "2") };
	struct fm_validator_config cfg = { 0 };
	struct fm_validator *v;
	char err[FM_ERRLEN], ca[4096];
	struct fm_msg *a = signed_msg(ALPHA, TOPIC, 1700000000);
	struct fm_msg *b = signed_msg(BETA, TOPIC, 1700000000), *m;
	const struct jv *bcert = jv_get(msg_root(b), "certificate");
	struct fm_validator_stats st;
	int k;

	(void)state;
	snprintf(ca, sizeof(ca), "%s", tu_cert_path("ca", ".crt"));
	cfg.ca_path = ca;
	cfg.allow_x509 = true;
	cfg.verified_cache_size = 4;
	assert_non_null(v = fm_validator_new(&cfg, err));
	for (k = 0; k < 2; k++)		/* verified, then a hit */
		expect(v, a, FM_VALID, "signed by " ALPHA_CN);
	m = edit(a, no_i, i2, 1);
	assert_string_equal(jv_get(msg_root(m), "signature")->u.str,
	    jv_get(msg_root(a), "signature")->u.str);
	expect(v, m, FM_INVALID_SIGNATURE, "does not match");
	fm_msg_unref(m);
	m = with_string_field(a, "certificate", bcert->u.str, bcert->len);
	expect(v, m, FM_INVALID_SIGNATURE, "does not match");
	fm_msg_unref(m);
	st = stats_of(v);
	assert_int_equal(st.verified_hits, 1);
	assert_int_equal(st.verified_entries, 1);
	fm_msg_unref(a);
	fm_msg_unref(b);
	fm_validator_free(v);
}

/* A certificate revoked by a reloaded CRL is not served from the cache. */
static void
test_verified_revoked(void **state)
{
	struct fm_msg *r = signed_msg(REVOKED, TOPIC, 1700000000);
	struct fm_validator *v;

	(void)state;
	install_file(tmp_path("crl-empty.pem"), tmp_path("crl.pem"));
	v = tmp_crl_validator(3600);
	expect(v, r, FM_VALID, NULL);
	expect(v, r, FM_VALID, NULL);
	assert_int_equal(stats_of(v).verified_hits, 1);
	install_file(tu_cert_path("crl", ".pem"), tmp_path("crl.pem"));
	fm_validator_reload(v);
	expect(v, r, FM_INVALID_CHAIN, "certificate revoked");
	assert_int_equal(stats_of(v).verified_hits, 1);
	assert_int_equal(stats_of(v).verified_entries, 0);
	fm_validator_free(v);
	fm_msg_unref(r);
}

/* Off: every message costs its RSA verification; bounded: never more. */
static void
test_verified_off_and_bounded(void **state)
{
	struct fm_validator_config cfg = { 0 };
	struct fm_validator *v;
	struct fm_msg *m;
	char err[FM_ERRLEN], ca[4096];
	int i;

	(void)state;
	snprintf(ca, sizeof(ca), "%s", tu_cert_path("ca", ".crt"));
	cfg.ca_path = ca;
	cfg.allow_x509 = true;
	cfg.verified_cache_size = FM_VERIFIED_CACHE_OFF;
	assert_non_null(v = fm_validator_new(&cfg, err));
	m = signed_msg(ALPHA, TOPIC, 1700000000);
	expect(v, m, FM_VALID, NULL);
	expect(v, m, FM_VALID, NULL);
	assert_int_equal(stats_of(v).verified_hits, 0);
	assert_int_equal(stats_of(v).verified_entries, 0);
	fm_msg_unref(m);
	fm_validator_free(v);

	cfg.verified_cache_size = 8;
	assert_non_null(v = fm_validator_new(&cfg, err));
	for (i = 0; i < 40; i++) {
		m = signed_msg(ALPHA, TOPIC, 1700000000 + i);
		expect(v, m, FM_VALID, NULL);
		fm_msg_unref(m);
		assert_true(stats_of(v).verified_entries <= 8);
	}
	assert_true(stats_of(v).verified_entries > 0);
	fm_validator_free(v);
}

static void
test_signer_load_errors(void **state)
{
	char err[FM_ERRLEN];

	(void)state;
	assert_null(fm_signer_load("/nonexistent.crt", tu_cert_path(
	    signer_names[ALPHA], ".key"), err));
	assert_non_null(strstr(err, "/nonexistent.crt"));
	assert_null(fm_signer_load(tu_cert_path(signer_names[ALPHA], ".crt"),
	    "/nonexistent.key", err));
	assert_non_null(strstr(err, "/nonexistent.key"));
	/* a key that is not the certificate's */
	assert_null(fm_signer_load(tu_cert_path(signer_names[ALPHA], ".crt"),
	    tu_cert_path(signer_names[BETA], ".key"), err));
	assert_non_null(strstr(err, "does not belong"));
	/* files swapped */
	assert_null(fm_signer_load(tu_cert_path(signer_names[ALPHA], ".key"),
	    tu_cert_path(signer_names[ALPHA], ".crt"), err));
	assert_non_null(strstr(err, "not a PEM certificate"));
	fm_signer_free(NULL);
}

static void
test_signer_sign(void **state)
{
	struct fm_msg *u = unsigned_msg(TOPIC, 1700000000), *s1, *s2, *s3;
	const struct jv *sig, *cert;
	const char *body;
	size_t len, i, lines = 0;

	(void)state;
	s1 = sign(ALPHA, u);
	s2 = sign(ALPHA, u);
	/* deterministic, canonical, in fedmsg's key order */
	assert_string_equal(fm_msg_body(s1, NULL), fm_msg_body(s2, NULL));
	body = fm_msg_body(s1, &len);
	{
		char *c = fm_msg_canonical(s1, false, NULL);

		assert_string_equal(c, body);
		free(c);
	}
	assert_memory_equal(body, "{\"certificate\":\"LS0tLS1CRUdJTi", 30);
	assert_non_null(strstr(body, "\",\"crypto\":\"x509\",\"i\":1,\"msg\":"));
	assert_non_null(strstr(body, "},\"msg_id\":\"2026-"));
	assert_non_null(strstr(body, "\",\"signature\":\""));
	assert_non_null(strstr(body, ",\"timestamp\":1700000000,\"topic\":"));
	/* 76-column base64 with a final newline: 344 chars in 5 lines */
	sig = jv_get(msg_root(s1), "signature");
	assert_int_equal(sig->len, 344 + 5);
	for (i = 0; i < sig->len; i++)
		lines += sig->u.str[i] == '\n';
	assert_int_equal(lines, 5);
	assert_int_equal(sig->u.str[76], '\n');
	assert_int_equal(sig->u.str[sig->len - 1], '\n');
	cert = jv_get(msg_root(s1), "certificate");
	assert_int_equal(cert->u.str[76], '\n');
	assert_int_equal(cert->u.str[cert->len - 1], '\n');
	/* re-signing a signed message replaces its credentials */
	s3 = sign(ALPHA, s1);
	assert_string_equal(fm_msg_body(s3, NULL), body);
	fm_msg_unref(s3);
	s3 = sign(BETA, s1);
	{
		struct fm_validator *v = validator("crl", true, 0, 0);

		expect(v, s3, FM_VALID, "signed by " BETA_CN);
		fm_validator_free(v);
	}
	sig = jv_get(msg_root(s3), "signature");
	assert_int_equal(sig->len, 684 + 9);	/* RSA-4096 */
	fm_msg_unref(s3);
	fm_msg_unref(s1);
	fm_msg_unref(s2);
	fm_msg_unref(u);
}

/* ---- the vectors -------------------------------------------------------- */

static const struct {
	const char	*name;
	enum fm_verdict	 verdict;
} vector_verdicts[] = {
	{ "tamper_body_value_changed", FM_INVALID_SIGNATURE },
	{ "tamper_topic_changed", FM_INVALID_SIGNATURE },
	{ "tamper_i_changed", FM_INVALID_SIGNATURE },
	{ "tamper_timestamp_int_to_float", FM_INVALID_SIGNATURE },
	{ "tamper_crypto_field_removed", FM_INVALID_SIGNATURE },
	{ "tamper_crypto_field_gpg", FM_INVALID_BACKEND },
	{ "tamper_crypto_field_unknown", FM_INVALID_BACKEND },
	{ "tamper_extra_top_level_field", FM_INVALID_SIGNATURE },
	{ "tamper_signature_one_char", FM_INVALID_SIGNATURE },
	{ "missing_signature", FM_INVALID_FIELD },
	{ "missing_certificate", FM_INVALID_FIELD },
	{ "tamper_certificate_swapped", FM_INVALID_SIGNATURE },
	{ "datagrepper_mutated", FM_INVALID_SIGNATURE },
	{ "cert_revoked_in_crl", FM_INVALID_CHAIN },
	{ "cert_expired", FM_INVALID_CHAIN },
	{ "cert_not_yet_valid", FM_INVALID_CHAIN },
	{ "cert_from_untrusted_ca", FM_INVALID_CHAIN },
	{ "cert_without_common_name", FM_INVALID_NO_CN },
	{ "crl_stale_rejects_good_cert", FM_INVALID_CHAIN },
	{ "routing_policy_violation", FM_INVALID_ROUTING },
	{ "routing_nitpicky_topic_not_in_policy", FM_INVALID_ROUTING },
	{ "routing_policy_cn_substring_not_enough", FM_INVALID_ROUTING },
	{ "python_int_keys_unverifiable", FM_INVALID_SIGNATURE },
	{ "persistent_store_seq_id_breaks_signature", FM_INVALID_SIGNATURE },
};

static char *
rec_str(const struct jv *rec, const char *key, size_t *len)
{
	const struct jv *v = jv_get(rec, key);
	char *s;

	if (v == NULL || v->type != JV_STRING)
		return NULL;
	s = malloc(v->len + 1);
	assert_non_null(s);
	memcpy(s, v->u.str, v->len);
	s[v->len] = '\0';
	if (len)
		*len = v->len;
	return s;
}

static struct fm_validator *
vector_validator(const struct jv *rec)
{
	struct fm_validator_config cfg = { 0 };
	const struct jv *policy = jv_get(rec, "routing_policy");
	const struct jv *nitpicky = jv_get(rec, "routing_nitpicky");
	char *ca = rec_str(rec, "ca_cert", NULL), *crl = rec_str(rec, "crl",
	    NULL);
	char ca_path[4096], crl_path[4096], err[FM_ERRLEN];
	struct fm_validator *v;
	uint32_t i, j;

	assert_non_null(ca);
	snprintf(ca_path, sizeof(ca_path), "%s/vectors/%s", tu_data_dir(), ca);
	cfg.ca_path = ca_path;
	if (crl) {
		snprintf(crl_path, sizeof(crl_path), "%s/vectors/%s",
		    tu_data_dir(), crl);
		cfg.crl_path = crl_path;
	}
	cfg.allow_x509 = true;
	cfg.routing_nitpicky = nitpicky && nitpicky->type == JV_TRUE;
	v = fm_validator_new(&cfg, err);
	if (v == NULL)
		fail_msg("%s", err);
	for (i = 0; policy && policy->type == JV_OBJECT && i < policy->len;
	    i++) {
		const struct jv_member *t = &policy->u.members[i];
		char *topic = strndup(t->key, t->key_len);

		assert_int_equal(t->value.type, JV_ARRAY);
		if (t->value.len == 0)
			fm_validator_allow(v, topic, NULL);
		for (j = 0; j < t->value.len; j++) {
			const struct jv *cn = &t->value.u.items[j];
			char *c = strndup(cn->u.str, cn->len);

			assert_int_equal(fm_validator_allow(v, topic, c), 0);
			free(c);
		}
		free(topic);
	}
	free(ca);
	free(crl);
	return v;
}

/* Each vector judged as fedmsg judged it, for the expected reason. */
static void
test_vectors(void **state)
{
	char *data = tu_read_file(tu_data_path("vectors/signed.jsonl"), NULL);
	char *line, *save = NULL, err[FM_ERRLEN];
	size_t n = 0, nvalid = 0, k;

	(void)state;
	for (line = strtok_r(data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		struct jv_doc *doc = jv_parse(line, strlen(line), NULL, err);
		const struct jv *rec, *valid;
		struct fm_validator *v;
		struct fm_msg *m;
		char *name, *body, reason[FM_ERRLEN];
		enum fm_verdict got;
		size_t len;

		assert_non_null(doc);
		rec = jv_doc_root(doc);
		name = rec_str(rec, "name", NULL);
		body = rec_str(rec, "wire_body", &len);
		valid = jv_get(rec, "valid");
		m = parse_text(body, len);
		v = vector_validator(rec);
		got = fm_validator_check(v, m, reason);
		if ((got == FM_VALID) != (valid->type == JV_TRUE))
			fail_msg("vector %s: %s (%s), fedmsg said %s", name,
			    fm_verdict_name(got), reason, valid->type ==
			    JV_TRUE ? "valid" : "invalid");
		if (got == FM_VALID)
			nvalid++;
		for (k = 0; k < sizeof(vector_verdicts) /
		    sizeof(vector_verdicts[0]); k++)
			if (strcmp(vector_verdicts[k].name, name) == 0 &&
			    vector_verdicts[k].verdict != got)
				fail_msg("vector %s: %s (%s), want %s", name,
				    fm_verdict_name(got), reason,
				    fm_verdict_name(vector_verdicts[k].verdict));
		fm_validator_free(v);
		fm_msg_unref(m);
		free(name);
		free(body);
		jv_doc_free(doc);
		n++;
	}
	free(data);
	assert_int_equal(n, 54);
	assert_int_equal(nvalid, 54 - sizeof(vector_verdicts) /
	    sizeof(vector_verdicts[0]));
}

/* Decoded base64 of a string member of m. */
static unsigned char *
decoded(const struct fm_msg *m, const char *key, size_t *len)
{
	const struct jv *f = jv_get(msg_root(m), key);
	char err[FM_ERRLEN];
	unsigned char *p;

	assert_non_null(f);
	p = b64_decode_lenient(f->u.str, f->len, len, err);
	assert_non_null(p);
	return p;
}

/*
 * Re-signing each valid vector with its key gives fedmsg's signature and
 * certificate bytes, and for a canonical wire body the same body.
 */
static void
test_vectors_resign(void **state)
{
	static const char *const creds[] = { "signature", "certificate", NULL };
	char *data = tu_read_file(tu_data_path("vectors/signed.jsonl"), NULL);
	char *line, *save = NULL, err[FM_ERRLEN];
	size_t n = 0, same_body = 0;

	(void)state;
	for (line = strtok_r(data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		struct jv_doc *doc = jv_parse(line, strlen(line), NULL, err);
		const struct jv *rec = jv_doc_root(doc);
		char *name, *body, *key, crt[4096], keyp[4096], *canon;
		unsigned char *a, *b;
		size_t len, alen, blen;
		struct fm_signer *s;
		struct fm_msg *m, *u, *r;

		if (jv_get(rec, "valid")->type != JV_TRUE) {
			jv_doc_free(doc);
			continue;
		}
		name = rec_str(rec, "name", NULL);
		body = rec_str(rec, "wire_body", &len);
		key = rec_str(rec, "signed_with", NULL);
		snprintf(keyp, sizeof(keyp), "%s/vectors/%s", tu_data_dir(), key);
		snprintf(crt, sizeof(crt), "%s", keyp);
		assert_non_null(strstr(crt, ".key"));
		memcpy(strstr(crt, ".key"), ".crt", 4);
		s = fm_signer_load(crt, keyp, err);
		if (s == NULL)
			fail_msg("%s: %s", name, err);
		m = parse_text(body, len);
		u = edit(m, creds, NULL, 0);
		if (fm_signer_sign(s, u, &r, err) != 0)
			fail_msg("%s: %s", name, err);
		a = decoded(m, "signature", &alen);
		b = decoded(r, "signature", &blen);
		if (alen != blen || memcmp(a, b, alen) != 0)
			fail_msg("vector %s: signature differs", name);
		free(a);
		free(b);
		a = decoded(m, "certificate", &alen);
		b = decoded(r, "certificate", &blen);
		if (alen != blen || memcmp(a, b, alen) != 0)
			fail_msg("vector %s: certificate differs", name);
		free(a);
		free(b);
		canon = fm_msg_canonical(m, false, NULL);
		/* (the rewrapped one has fedmsg's bytes in another layout) */
		if (strcmp(canon, body) == 0 &&
		    strcmp(name, "valid_signature_rewrapped") != 0) {
			if (strcmp(fm_msg_body(r, NULL), body) != 0)
				fail_msg("vector %s: re-signed body differs:"
				    "\n%s\n%s", name, fm_msg_body(r, NULL), body);
			same_body++;
		}
		free(canon);
		fm_msg_unref(r);
		fm_msg_unref(u);
		fm_msg_unref(m);
		fm_signer_free(s);
		free(name);
		free(body);
		free(key);
		jv_doc_free(doc);
		n++;
	}
	free(data);
	assert_int_equal(n, 30);
	assert_true(same_body >= 25);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdict_names),
		cmocka_unit_test(test_validator_new_errors),
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_unsigned),
		cmocka_unit_test(test_missing_fields),
		cmocka_unit_test(test_field_types),
		cmocka_unit_test(test_backends),
		cmocka_unit_test(test_bad_base64),
		cmocka_unit_test(test_bad_certificate),
		cmocka_unit_test(test_encrypted_pem_does_not_prompt),
		cmocka_unit_test(test_chain_failures),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_no_common_name),
		cmocka_unit_test(test_routing),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_topic_types),
		cmocka_unit_test(test_freshness),
		cmocka_unit_test(test_freshness_nonfinite),
		cmocka_unit_test(test_check_at),
		cmocka_unit_test(test_not_yet_valid_edge),
		cmocka_unit_test(test_crl_reload),
		cmocka_unit_test(test_crl_reload_auto),
		cmocka_unit_test(test_ca_reload),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_spelling_collision),
		cmocka_unit_test(test_cache_flood),
		cmocka_unit_test(test_spellings_only_from_signers),
		cmocka_unit_test(test_verified_hit),
		cmocka_unit_test(test_verified_not_borrowed),
		cmocka_unit_test(test_verified_revoked),
		cmocka_unit_test(test_verified_off_and_bounded),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_signer_load_errors),
		cmocka_unit_test(test_signer_sign),
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_vectors_resign),
	};

	log_init("test_validate", FM_LOG_WARN);	/* no "reloaded" chatter */
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
