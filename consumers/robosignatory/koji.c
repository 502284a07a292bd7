/*
 * Koji over libcurl (koji.h).  The response is capped at XR_MAX_INPUT
 * while it arrives, so a hub that streams forever costs a bounded buffer
 * and a timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "koji.h"

struct koji {
	CURL		*curl;
	char		*url, *cert, *serverca;
	long		 timeout;
	char		*session_id, *session_key;
	unsigned long	 callnum, calls;
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
	free(k);
}

unsigned long
koji_calls(const struct koji *k)
{
	return k->calls;
}

static enum koji_rc
post(struct koji *k, const char *url, const struct xr_buf *req,
    struct xr_value **out, char *err, size_t errlen)
{
	struct curl_slist *hdr = curl_slist_append(NULL,
	    "Content-Type: text/xml");
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
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, hdr);
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

/* sslLogin: the session for the calls that need one. */
static enum koji_rc
login(struct koji *k, char *err, size_t errlen)
{
	struct xr_buf req;
	struct xr_value *v = NULL;
	char url[2048];
	enum koji_rc rc;
	const char *key;
	int64_t id;

	xr_call_begin(&req, "sslLogin");
	if (xr_call_end(&req) < 0) {
		xr_buf_free(&req);
		snprintf(err, errlen, "out of memory");
		return KOJI_TRANSIENT;
	}
	snprintf(url, sizeof(url), "%s/ssllogin", k->url);
	rc = post(k, url, &req, &v, err, errlen);
	xr_buf_free(&req);
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
koji_call(struct koji *k, const struct xr_buf *req, int auth,
    struct xr_value **out, char *err, size_t errlen)
{
	char url[2048];
	enum koji_rc rc;

	*out = NULL;
	if (!auth)
		return post(k, k->url, req, out, err, errlen);
	if (k->session_id == NULL && (rc = login(k, err, errlen)) != KOJI_OK)
		return rc;
	snprintf(url, sizeof(url), "%s?session-id=%s&session-key=%s&callnum=%lu",
	    k->url, k->session_id, k->session_key, k->callnum++);
	rc = post(k, url, req, out, err, errlen);
	if (rc != KOJI_OK) {	/* a new session next time */
		free(k->session_id);
		k->session_id = NULL;
	}
	return rc;
}
