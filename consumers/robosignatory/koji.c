/*
 * Koji over libcurl (koji.h).  The response is capped at XR_MAX_INPUT
 * while it arrives, so a hub that streams forever costs a bounded buffer
 * and a timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "koji.h"
#include "negotiate.h"

#define KOJI_AUTH_EXPIRED	1007	/* koji.AuthExpired's faultCode */

struct koji {
	CURL		*curl;
	char		*url, *cert, *serverca;
	long		 timeout;
	char		*session_id, *session_key;
	unsigned long	 callnum, calls;
	struct negotiate *neg;		/* authmethod "kerberos", or NULL */
	char		*neg_reply;	/* the hub's Negotiate token */
};

struct body {
	char	*s;
	size_t	 len, cap;
	int	 too_big;
};

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = size * n;

	if (b->len + len > XR_MAX_INPUT) {
		b->too_big = 1;
		return 0;	/* curl aborts the transfer */
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 8192;
		char *s;

		while (cap < b->len + len + 1)
			cap *= 2;
		if ((s = realloc(b->s, cap)) == NULL)
			return 0;
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->len, p, len);
	b->len += len;
	b->s[b->len] = '\0';
	return len;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

struct koji *
koji_new(const char *url, const char *cert, const char *serverca, long timeout)
{
	struct koji *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return NULL;
	k->url = strdup(url);
	k->cert = dup_or_null(cert);
	k->serverca = dup_or_null(serverca);
	k->timeout = timeout;
	k->curl = curl_easy_init();
	if (k->url == NULL || k->curl == NULL || (cert && !k->cert) ||
	    (serverca && !k->serverca)) {
		koji_free(k);
		return NULL;
	}
	return k;
}

void
koji_free(struct koji *k)
{
	if (k == NULL)
		return;
	if (k->curl != NULL)
		curl_easy_cleanup(k->curl);
	free(k->url);
	free(k->cert);
	free(k->serverca);
	free(k->session_id);
	free(k->session_key);
	negotiate_free(k->neg);
	free(k->neg_reply);
	free(k);
}

int
koji_set_kerberos(struct koji *k, const char *principal, const char *keytab)
{
	negotiate_free(k->neg);
	k->neg = negotiate_new(principal, keytab);
	return k->neg != NULL ? 0 : -1;
}

/* Keep the token of "WWW-Authenticate: Negotiate <token>". */
static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	static const char name[] = "www-authenticate:";
	struct koji *k = arg;
	size_t len = size * n, i = sizeof(name) - 1, end;

	if (len < i || strncasecmp(p, name, i) != 0)
		return len;
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (len - i < 10 || strncasecmp(p + i, "Negotiate ", 10) != 0)
		return len;
	for (i += 10; i < len && p[i] == ' '; i++)
		;
	for (end = i; end < len && p[end] != '\r' && p[end] != '\n' &&
	    p[end] != ' '; end++)
		;
	free(k->neg_reply);
	k->neg_reply = strndup(p + i, end - i);
	return len;
}

unsigned long
koji_calls(const struct koji *k)
{
	return k->calls;
}

/* authz: an Authorization header line, or NULL. */
static enum koji_rc
post(struct koji *k, const char *url, const struct xr_buf *req,
    const char *authz, struct xr_value **out, char *err, size_t errlen)
{
	struct curl_slist *hdr = curl_slist_append(NULL,
	    "Content-Type: text/xml"), *h2;
	struct body b = { 0 };
	char cerr[CURL_ERROR_SIZE] = "";
	CURLcode cc;
	long status = 0;
	int rc;

	k->calls++;
	curl_easy_reset(k->curl);
	curl_easy_setopt(k->curl, CURLOPT_URL, url);
	curl_easy_setopt(k->curl, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(k->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k->curl, CURLOPT_TIMEOUT, k->timeout);
	curl_easy_setopt(k->curl, CURLOPT_CONNECTTIMEOUT, k->timeout);
	if (authz != NULL && hdr != NULL &&
	    (h2 = curl_slist_append(hdr, authz)) != NULL)
		hdr = h2;
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, hdr);
	if (authz != NULL) {
		free(k->neg_reply);
		k->neg_reply = NULL;
		curl_easy_setopt(k->curl, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(k->curl, CURLOPT_HEADERDATA, k);
	}
	curl_easy_setopt(k->curl, CURLOPT_POSTFIELDS, req->s);
	curl_easy_setopt(k->curl, CURLOPT_POSTFIELDSIZE, (long)req->len);
	curl_easy_setopt(k->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(k->curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(k->curl, CURLOPT_ERRORBUFFER, cerr);
	if (k->cert != NULL) {
		curl_easy_setopt(k->curl, CURLOPT_SSLCERT, k->cert);
		curl_easy_setopt(k->curl, CURLOPT_SSLKEY, k->cert);
	}
	if (k->serverca != NULL)
		curl_easy_setopt(k->curl, CURLOPT_CAINFO, k->serverca);
	cc = curl_easy_perform(k->curl);
	curl_slist_free_all(hdr);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "koji %s: %s", k->url, b.too_big ?
		    "response too large" : cerr[0] ? cerr :
		    curl_easy_strerror(cc));
		free(b.s);
		return KOJI_TRANSIENT;
	}
	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status == 401 && authz != NULL) {	/* our ticket: no use again */
		snprintf(err, errlen, "koji %s: the hub refused the Kerberos "
		    "login (HTTP 401)", k->url);
		free(b.s);
		return KOJI_FAULT;
	}
	if (status != 200) {
		snprintf(err, errlen, "koji %s: HTTP %ld", k->url, status);
		free(b.s);
		return KOJI_TRANSIENT;
	}
	rc = xr_parse_response(b.s ? b.s : "", b.len, out, err, errlen);
	free(b.s);
	if (rc < 0)	/* a proxy's error page, a truncated answer: retry */
		return KOJI_TRANSIENT;
	if (rc == 1) {
		snprintf(err, errlen, "koji fault: %.200s",
		    xr_get_str(*out, "faultString"));
		return KOJI_FAULT;
	}
	return KOJI_OK;
}

static enum koji_rc
neg_rc(enum neg_rc rc)
{
	return rc == NEG_OK ? KOJI_OK : rc == NEG_TRANSIENT ? KOJI_TRANSIENT :
	    KOJI_FAULT;
}

/*
 * "Authorization: Negotiate <token>" for HTTP@<the url's host> (*hdr to
 * free), as gssapi_login's requests-gssapi sends to .../ssllogin.
 */
static enum koji_rc
negotiate_header(struct koji *k, char **hdr, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *host = NULL, *tok = NULL;
	enum neg_rc rc = NEG_PERMANENT;
	size_t len;

	*hdr = NULL;
	if (u == NULL || curl_url_set(u, CURLUPART_URL, k->url, 0) != CURLUE_OK
	    || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(err, errlen, "koji %s: no host in the url", k->url);
		goto out;
	}
	len = strlen(host);	/* [::1] -> ::1 */
	if (len > 2 && host[0] == '[' && host[len - 1] == ']') {
		memmove(host, host + 1, len - 2);
		host[len - 2] = '\0';
	}
	if ((rc = negotiate_begin(k->neg, host, &tok, err, errlen)) != NEG_OK)
		goto out;
	if ((*hdr = malloc(strlen(tok) + 32)) == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = NEG_TRANSIENT;
		goto out;
	}
	sprintf(*hdr, "Authorization: Negotiate %s", tok);
out:
	free(tok);
	curl_free(host);
	curl_url_cleanup(u);
	return neg_rc(rc);
}

/*
 * sslLogin at .../ssllogin: the session for the calls that need one;
 * authenticated by the client certificate (authmethod "ssl") or by HTTP
 * Negotiate (authmethod "kerberos": koji's gssapi_login).
 */
static enum koji_rc
login(struct koji *k, char *err, size_t errlen)
{
	struct xr_buf req;
	struct xr_value *v = NULL;
	char url[2048], *authz = NULL;
	enum koji_rc rc;
	const char *key;
	int64_t id;

	free(k->session_id);
	k->session_id = NULL;
	if (k->neg != NULL &&
	    (rc = negotiate_header(k, &authz, err, errlen)) != KOJI_OK)
		return rc;	/* no ticket: the hub is not asked */
	xr_call_begin(&req, "sslLogin");
	if (xr_call_end(&req) < 0) {
		xr_buf_free(&req);
		free(authz);
		snprintf(err, errlen, "out of memory");
		return KOJI_TRANSIENT;
	}
	snprintf(url, sizeof(url), "%s/ssllogin", k->url);
	rc = post(k, url, &req, authz, &v, err, errlen);
	xr_buf_free(&req);
	free(authz);
	if (rc == KOJI_OK && k->neg != NULL)	/* is it the hub we meant? */
		rc = neg_rc(negotiate_end(k->neg, k->neg_reply, err, errlen));
	if (rc == KOJI_OK) {
		char n[32];

		if (xr_get_int(v, "session-id", &id) < 0 ||
		    (key = xr_get_str(v, "session-key")) == NULL) {
			snprintf(err, errlen, "koji sslLogin: no session");
			rc = KOJI_FAULT;
		} else {
			snprintf(n, sizeof(n), "%lld", (long long)id);
			free(k->session_id);
			free(k->session_key);
			k->session_id = strdup(n);
			{
				char *e = curl_easy_escape(k->curl, key, 0);

				k->session_key = e ? strdup(e) : NULL;
				curl_free(e);
			}
			k->callnum = 0;
			if (k->session_id == NULL || k->session_key == NULL) {
				snprintf(err, errlen, "out of memory");
				rc = KOJI_TRANSIENT;
			}
		}
	}
	xr_free(v);
	return rc;
}

enum koji_rc
koji_login(struct koji *k, char *err, size_t errlen)
{
	return k->session_id != NULL ? KOJI_OK : login(k, err, errlen);
}

enum koji_rc
koji_call(struct koji *k, const struct xr_buf *req, int auth,
    struct xr_value **out, char *err, size_t errlen)
{
	char url[2048];
	enum koji_rc rc;
	int64_t code;
	int again;

	*out = NULL;
	if (!auth)
		return post(k, k->url, req, NULL, out, err, errlen);
	for (again = 1;; again--) {
		if (k->session_id == NULL &&
		    (rc = login(k, err, errlen)) != KOJI_OK)
			return rc;
		snprintf(url, sizeof(url), "%s?session-id=%s&session-key=%s"
		    "&callnum=%lu", k->url, k->session_id, k->session_key,
		    k->callnum++);
		rc = post(k, url, req, NULL, out, err, errlen);
		if (rc == KOJI_OK)
			return rc;
		free(k->session_id);	/* a new session next time */
		k->session_id = NULL;
		/* the hub expired the session: log in again, once, as koji's
		   renew_expired_session does */
		if (!again || rc != KOJI_FAULT ||
		    xr_get_int(*out, "faultCode", &code) < 0 ||
		    code != KOJI_AUTH_EXPIRED)
			return rc;
		xr_free(*out);
		*out = NULL;
	}
}
