/*
 * SPNEGO tokens for HTTP Negotiate (negotiate.h) over MIT GSS-API.
 *
 * The credential store names the client keytab and a MEMORY ccache of
 * this client's own: MIT krb5 gets (and, once expired, gets again) the
 * initial ticket from the keytab by itself, and the tickets stay in this
 * process, destroyed with the client.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <krb5.h>

#include "negotiate.h"

#define NEG_MAX_TOKEN	(64 * 1024)	/* bytes of the hub's token */

/* 1.3.6.1.5.5.2: the SPNEGO mechanism, which "Negotiate" means. */
static gss_OID_desc spnego_oid = { 6, (void *)"\x2b\x06\x01\x05\x05\x02" };

struct negotiate {
	char		*principal, *keytab;
	char		 ccache[64];	/* MEMORY:..., when keytab is set */
	gss_ctx_id_t	 ctx;
	gss_name_t	 target;	/* HTTP@host, for the whole context */
};

struct negotiate *
negotiate_new(const char *principal, const char *keytab)
{
	struct negotiate *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->ctx = GSS_C_NO_CONTEXT;
	n->target = GSS_C_NO_NAME;
	n->principal = principal ? strdup(principal) : NULL;
	n->keytab = keytab ? strdup(keytab) : NULL;
	if ((principal && !n->principal) || (keytab && !n->keytab)) {
		negotiate_free(n);
		return NULL;
	}
	snprintf(n->ccache, sizeof(n->ccache), "MEMORY:fedmsg-robosig-%p",
	    (void *)n);
	return n;
}

static void
drop_ctx(struct negotiate *n)
{
	OM_uint32 minor;

	if (n->ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&minor, &n->ctx, GSS_C_NO_BUFFER);
	n->ctx = GSS_C_NO_CONTEXT;
	if (n->target != GSS_C_NO_NAME)
		gss_release_name(&minor, &n->target);
	n->target = GSS_C_NO_NAME;
}

void
negotiate_free(struct negotiate *n)
{
	krb5_context kc;
	krb5_ccache cc;

	if (n == NULL)
		return;
	drop_ctx(n);
	/* the private ccache holds our tickets: gone with us */
	if (n->keytab != NULL && krb5_init_context(&kc) == 0) {
		if (krb5_cc_resolve(kc, n->ccache, &cc) == 0)
			krb5_cc_destroy(kc, cc);
		krb5_free_context(kc);
	}
	free(n->principal);
	free(n->keytab);
	free(n);
}

/* GSS-API's own words for major and minor, appended to buf. */
static void
gss_words(OM_uint32 code, int type, char *buf, size_t size)
{
	OM_uint32 minor, more = 0;
	gss_buffer_desc msg;

	do {
		size_t len = strlen(buf);

		if (gss_display_status(&minor, code, type, GSS_C_NO_OID,
		    &more, &msg) != GSS_S_COMPLETE)
			return;
		snprintf(buf + len, size - len, "%s%.*s", len ? "; " : "",
		    (int)msg.length, (const char *)msg.value);
		gss_release_buffer(&minor, &msg);
	} while (more != 0);
}

/*
 * Transient: the KDC cannot be reached now, or the tickets ran out (a
 * keytab gets new ones; kinit's may be renewed by then).  The rest
 * (unknown principal, wrong key, no ticket at all) needs a person.
 */
static enum neg_rc
neg_fail(struct negotiate *n, const char *what, OM_uint32 major,
    OM_uint32 minor, char *err, size_t errlen)
{
	char words[400] = "";
	enum neg_rc rc = NEG_PERMANENT;
	int32_t m = (int32_t)minor;

	if (m == KRB5_KDC_UNREACH || m == KRB5_REALM_CANT_RESOLVE ||
	    m == ETIMEDOUT || m == ECONNREFUSED ||
	    GSS_ROUTINE_ERROR(major) == GSS_S_CREDENTIALS_EXPIRED ||
	    m == KRB5KRB_AP_ERR_TKT_EXPIRED)
		rc = NEG_TRANSIENT;
	/* GSS_S_FAILURE's text only says to read the minor code's: skip it
	   so the KDC's own words fit in the reason */
	if (minor == 0 || GSS_ROUTINE_ERROR(major) != GSS_S_FAILURE)
		gss_words(major, GSS_C_GSS_CODE, words, sizeof(words));
	if (minor != 0)
		gss_words(minor, GSS_C_MECH_CODE, words, sizeof(words));
	snprintf(err, errlen, "kerberos login as %s (keytab %s): %s: %s",
	    n->principal ? n->principal : "the default principal",
	    n->keytab ? n->keytab : "none: the default ccache", what, words);
	drop_ctx(n);
	return rc;
}

/*
 * Is the principal in the keytab?  GSS-API, asked for a principal the
 * keytab lacks, falls back to a ccache and says only "No credentials
 * cache found".
 */
static enum neg_rc
check_keytab(struct negotiate *n, char *err, size_t errlen)
{
	krb5_context kc;
	krb5_keytab kt = NULL;
	krb5_principal p = NULL;
	krb5_keytab_entry e;
	krb5_error_code ke;
	const char *msg;

	if (n->keytab == NULL || n->principal == NULL)
		return NEG_OK;
	if ((ke = krb5_init_context(&kc)) != 0) {
		snprintf(err, errlen, "kerberos: no krb5 context (krb5 error "
		    "%ld): is krb5.conf readable?", (long)ke);
		return NEG_PERMANENT;
	}
	if ((ke = krb5_parse_name(kc, n->principal, &p)) == 0 &&
	    (ke = krb5_kt_resolve(kc, n->keytab, &kt)) == 0 &&
	    (ke = krb5_kt_get_entry(kc, kt, p, 0, 0, &e)) == 0)
		krb5_free_keytab_entry_contents(kc, &e);
	if (ke != 0) {
		msg = krb5_get_error_message(kc, ke);
		snprintf(err, errlen, "kerberos login as %s: keytab %s: %s",
		    n->principal, n->keytab, msg);
		krb5_free_error_message(kc, msg);
	}
	if (kt != NULL)
		krb5_kt_close(kc, kt);
	krb5_free_principal(kc, p);
	krb5_free_context(kc);
	return ke == 0 ? NEG_OK : NEG_PERMANENT;
}

static enum neg_rc
acquire(struct negotiate *n, gss_cred_id_t *cred, char *err, size_t errlen)
{
	gss_key_value_element_desc el[2] = {
		{ "client_keytab", n->keytab }, { "ccache", n->ccache },
	};
	gss_key_value_set_desc store = { 2, el };
	gss_buffer_desc nb;
	gss_name_t name = GSS_C_NO_NAME;
	gss_OID_set_desc krb5_set = { 1, (gss_OID)gss_mech_krb5 };
	OM_uint32 major, minor, minor2;
	enum neg_rc rc;

	if ((rc = check_keytab(n, err, errlen)) != NEG_OK)
		return rc;
	if (n->principal != NULL) {
		nb.value = n->principal;
		nb.length = strlen(n->principal);
		major = gss_import_name(&minor, &nb,
		    GSS_KRB5_NT_PRINCIPAL_NAME, &name);
		if (GSS_ERROR(major))
			return neg_fail(n, "bad principal", major, minor, err,
			    errlen);
	}
	/*
	 * Kerberos alone first: the ticket lands in the ccache, and a
	 * failure keeps the KDC's reason (SPNEGO's would say only "no
	 * credentials"); then the same store for SPNEGO, which wraps it.
	 */
	major = gss_acquire_cred_from(&minor, name, GSS_C_INDEFINITE,
	    &krb5_set, GSS_C_INITIATE, n->keytab ? &store :
	    GSS_C_NO_CRED_STORE, cred, NULL, NULL);
	if (!GSS_ERROR(major)) {
		gss_release_cred(&minor2, cred);
		major = gss_acquire_cred_from(&minor, name, GSS_C_INDEFINITE,
		    GSS_C_NO_OID_SET, GSS_C_INITIATE, n->keytab ? &store :
		    GSS_C_NO_CRED_STORE, cred, NULL, NULL);
	}
	gss_release_name(&minor2, &name);
	if (GSS_ERROR(major))
		return neg_fail(n, "no credentials", major, minor, err, errlen);
	return NEG_OK;
}

enum neg_rc
negotiate_begin(struct negotiate *n, const char *host, char **b64,
    char *err, size_t errlen)
{
	gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
	gss_ctx_id_t probe = GSS_C_NO_CONTEXT;
	gss_buffer_desc tb, out = GSS_C_EMPTY_BUFFER;
	OM_uint32 major, minor, minor2, flags;	/* minor2: of the cleanups */
	char svc[300];
	enum neg_rc rc;

	*b64 = NULL;
	drop_ctx(n);
	if ((rc = acquire(n, &cred, err, errlen)) != NEG_OK)
		return rc;
	snprintf(svc, sizeof(svc), "HTTP@%s", host);
	tb.value = svc;
	tb.length = strlen(svc);
	major = gss_import_name(&minor, &tb, GSS_C_NT_HOSTBASED_SERVICE,
	    &n->target);
	/*
	 * Kerberos alone first, as in acquire(): the service ticket lands in
	 * the ccache and a failure keeps the krb5 code the verdict needs
	 * (through SPNEGO it comes back renumbered); SPNEGO then wraps the
	 * cached ticket without asking the KDC again.
	 */
	if (!GSS_ERROR(major)) {
		major = gss_init_sec_context(&minor, cred, &probe, n->target,
		    (gss_OID)gss_mech_krb5, 0, 0, GSS_C_NO_CHANNEL_BINDINGS,
		    GSS_C_NO_BUFFER, NULL, &out, NULL, NULL);
		gss_delete_sec_context(&minor2, &probe, GSS_C_NO_BUFFER);
		gss_release_buffer(&minor2, &out);
	}
	if (!GSS_ERROR(major))
		major = gss_init_sec_context(&minor, cred, &n->ctx, n->target,
		    &spnego_oid, GSS_C_MUTUAL_FLAG, 0,
		    GSS_C_NO_CHANNEL_BINDINGS, GSS_C_NO_BUFFER, NULL, &out,
		    &flags, NULL);
	gss_release_cred(&minor2, &cred);
	if (GSS_ERROR(major)) {
		gss_release_buffer(&minor2, &out);
		snprintf(svc, sizeof(svc), "no ticket for HTTP@%.200s", host);
		return neg_fail(n, svc, major, minor, err, errlen);
	}
	*b64 = neg_b64_encode(out.value, out.length);
	gss_release_buffer(&minor2, &out);
	if (*b64 == NULL) {
		snprintf(err, errlen, "out of memory");
		drop_ctx(n);
		return NEG_TRANSIENT;
	}
	return NEG_OK;
}

enum neg_rc
negotiate_end(struct negotiate *n, const char *b64, char *err, size_t errlen)
{
	gss_buffer_desc in, out = GSS_C_EMPTY_BUFFER;
	OM_uint32 major, minor, minor2, flags;
	unsigned char *tok;
	size_t len;

	if (b64 == NULL) {
		snprintf(err, errlen, "kerberos login: the hub sent no "
		    "Negotiate token back (mutual authentication failed)");
		drop_ctx(n);
		return NEG_PERMANENT;
	}
	if ((tok = neg_b64_decode(b64, NEG_MAX_TOKEN, &len)) == NULL) {
		snprintf(err, errlen, "kerberos login: the hub's Negotiate "
		    "token is not base64 (or over %d bytes)", NEG_MAX_TOKEN);
		drop_ctx(n);
		return NEG_PERMANENT;
	}
	if (n->ctx == GSS_C_NO_CONTEXT) {
		free(tok);
		snprintf(err, errlen, "kerberos: no login under way");
		return NEG_PERMANENT;
	}
	in.value = tok;
	in.length = len;
	major = gss_init_sec_context(&minor, GSS_C_NO_CREDENTIAL, &n->ctx,
	    n->target, &spnego_oid, GSS_C_MUTUAL_FLAG, 0,
	    GSS_C_NO_CHANNEL_BINDINGS, &in, NULL, &out, &flags, NULL);
	free(tok);
	gss_release_buffer(&minor2, &out);
	if (major != GSS_S_COMPLETE)
		return neg_fail(n, "the hub's answer does not authenticate it",
		    major == GSS_S_CONTINUE_NEEDED ? GSS_S_DEFECTIVE_TOKEN :
		    major, minor, err, errlen);
	drop_ctx(n);
	return NEG_OK;
}

/* ---- base64 ----------------------------------------------------------- */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
neg_b64_encode(const unsigned char *p, size_t len)
{
	char *s, *o;
	size_t i;

	if (len > SIZE_MAX / 2 || (s = malloc((len + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	for (i = 0, o = s; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		*o++ = b64chars[v >> 18 & 63];
		*o++ = b64chars[v >> 12 & 63];
		*o++ = i + 1 < len ? b64chars[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? b64chars[v & 63] : '=';
	}
	*o = '\0';
	return s;
}

static int
b64val(char c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;

	return p ? (int)(p - b64chars) : -1;
}

unsigned char *
neg_b64_decode(const char *s, size_t max, size_t *len)
{
	size_t n = strlen(s), i, o = 0, pad = 0;
	unsigned char *out;

	if (n == 0 || n % 4 != 0 || n / 4 * 3 > max + 2)
		return NULL;
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	if ((out = malloc(n / 4 * 3)) == NULL)
		return NULL;
	for (i = 0; i < n; i += 4) {
		int a = b64val(s[i]), b = b64val(s[i + 1]), c, d;
		c = (i + 4 == n && pad == 2) ? 0 : b64val(s[i + 2]);
		d = (i + 4 == n && pad >= 1) ? 0 : b64val(s[i + 3]);
		if (a < 0 || b < 0 || c < 0 || d < 0)
			goto bad;
		out[o++] = (unsigned char)(a << 2 | b >> 4);
		if (!(i + 4 == n && pad == 2))
			out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
		if (!(i + 4 == n && pad >= 1))
			out[o++] = (unsigned char)((c & 3) << 6 | d);
	}
	if (o > max)
		goto bad;
	*len = o;
	return out;
bad:
	free(out);
	return NULL;
}
