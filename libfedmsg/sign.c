/*
 * fedmsg "x509" signing (fedmsg/crypto/x509_ng.py): RSA PKCS#1 v1.5 with
 * SHA-1 over the canonical JSON, base64 wrapped at 76 columns; the
 * certificate field is base64 of the certificate's PEM text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fedmsg/crypto.h>

#include "b64.h"
#include "buf.h"
#include "canon.h"
#include "msg.h"
#include "x509util.h"

struct fm_signer {
	EVP_PKEY	*key;
	char		*cn;
	char		*cert_json;	/* canonical JSON string of the field */
	size_t		 cert_json_len;
};

void
fm_signer_free(struct fm_signer *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_free(s->key);
	free(s->cn);
	free(s->cert_json);
	free(s);
}

struct fm_signer *
fm_signer_load(const char *cert_path, const char *key_path, char *err)
{
	struct fm_signer *s;
	X509 *cert = NULL;
	FILE *f = NULL;
	BIO *mem = NULL;
	struct buf field = BUF_INIT;
	char *pem;
	long pem_len;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	if ((f = fopen(cert_path, "r")) == NULL) {
		snprintf(err, FM_ERRLEN, "%s: cannot open certificate: %m",
		    cert_path);
		goto fail;
	}
	if ((cert = PEM_read_X509(f, NULL, x509_no_password, NULL)) == NULL) {
		snprintf(err, FM_ERRLEN, "%s: not a PEM certificate",
		    cert_path);
		goto fail;
	}
	fclose(f);
	if ((f = fopen(key_path, "r")) == NULL) {
		snprintf(err, FM_ERRLEN, "%s: cannot open private key: %m",
		    key_path);
		goto fail;
	}
	if ((s->key = PEM_read_PrivateKey(f, NULL, x509_no_password,
	    NULL)) == NULL) {
		snprintf(err, FM_ERRLEN, "%s: not an unencrypted PEM private "
		    "key", key_path);
		goto fail;
	}
	fclose(f);
	f = NULL;
	if (!EVP_PKEY_is_a(s->key, "RSA")) {
		snprintf(err, FM_ERRLEN, "%s: not an RSA key (fedmsg's x509 "
		    "signatures are RSA only)", key_path);
		goto fail;
	}
	if (X509_check_private_key(cert, s->key) != 1) {
		snprintf(err, FM_ERRLEN, "%s does not belong to %s", key_path,
		    cert_path);
		goto fail;
	}
	s->cn = x509_first_cn(cert);

	/* Re-encode the first certificate as PEM, as fedmsg does. */
	if ((mem = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509(mem, cert) != 1 ||
	    (pem_len = BIO_get_mem_data(mem, &pem)) <= 0) {
		snprintf(err, FM_ERRLEN, "%s: cannot encode certificate",
		    cert_path);
		goto fail;
	}
	b64_encode_wrapped(&field, pem, (size_t)pem_len);
	{
		struct buf json = BUF_INIT;

		canon_string(&json, field.data, field.len);
		s->cert_json = buf_steal(&json, &s->cert_json_len);
	}
	if (field.oom || s->cert_json == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		goto fail;
	}
	buf_free(&field);
	BIO_free(mem);
	X509_free(cert);
	ERR_clear_error();
	return s;
fail:
	if (f)
		fclose(f);
	buf_free(&field);
	BIO_free(mem);
	X509_free(cert);
	fm_signer_free(s);
	ERR_clear_error();
	return NULL;
}

const char *
fm_signer_cn(const struct fm_signer *s)
{
	return s->cn;
}

static const char *const replaced[] = { "signature", "certificate", "crypto",
    NULL };

int
fm_signer_sign(const struct fm_signer *s, const struct fm_msg *in,
    struct fm_msg **out, char *err)
{
	struct buf canonical = BUF_INIT, sig64 = BUF_INIT, sigjson = BUF_INIT;
	struct buf body = BUF_INIT;
	struct canon_extra ex[3];
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx = NULL;
	int rc = -1;

	*out = NULL;
	ex[0] = (struct canon_extra){ "crypto", "\"x509\"", 6 };
	canon_object_with(&canonical, msg_root(in), replaced, ex, 1);
	if (canonical.oom) {
		snprintf(err, FM_ERRLEN, "out of memory");
		goto done;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(ctx, NULL, EVP_sha1(), NULL, s->key) != 1 ||
	    EVP_PKEY_get_size(s->key) > (int)sizeof(sig) ||
	    EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)canonical.data,
	    canonical.len) != 1) {
		unsigned long e = ERR_get_error();

		snprintf(err, FM_ERRLEN, "RSA/SHA-1 signing failed: %s (is "
		    "SHA-1 disabled by the system crypto policy?)",
		    e ? ERR_reason_error_string(e) : "unknown error");
		goto done;
	}
	b64_encode_wrapped(&sig64, sig, siglen);
	canon_string(&sigjson, sig64.data, sig64.len);
	ex[1] = (struct canon_extra){ "signature", sigjson.data, sigjson.len };
	ex[2] = (struct canon_extra){ "certificate", s->cert_json,
	    s->cert_json_len };
	canon_object_with(&body, msg_root(in), replaced, ex, 3);
	if (sig64.oom || sigjson.oom || body.oom) {
		snprintf(err, FM_ERRLEN, "out of memory");
		goto done;
	}
	/* The signed body is canonical and already size-checked input. */
	rc = fm_msg_parse(body.data, body.len, &(struct fm_limits){
	    body.len, 0 }, out, err);
done:
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	buf_free(&canonical);
	buf_free(&sig64);
	buf_free(&sigjson);
	buf_free(&body);
	return rc;
}
