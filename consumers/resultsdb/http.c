/* resultsdb: HTTP to ResultsDB with libcurl (see http.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "http.h"

struct rdb_http {
	CURL			*curl;
	struct curl_slist	*headers;
};

struct sink {
	char	*buf;
	size_t	 len;
	int	 over;
};

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t add = size * n;
	char *nb;

	if (s->over || s->len + add > RDB_MAX_RESPONSE) {
		s->over = 1;	/* keep reading, keep nothing more */
		return add;
	}
	if ((nb = realloc(s->buf, s->len + add + 1)) == NULL)
		return 0;	/* aborts the transfer */
	s->buf = nb;
	memcpy(s->buf + s->len, p, add);
	s->len += add;
	s->buf[s->len] = '\0';
	return add;
}

struct rdb_http *
rdb_http_new(const struct rdb_http_opts *o)
{
	static int global_done;
	struct rdb_http *h;

	/* once, from init() on the hub's main thread */
	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
			return NULL;
		global_done = 1;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	if ((h->curl = curl_easy_init()) == NULL) {
		free(h);
		return NULL;
	}
	h->headers = curl_slist_append(NULL,
	    "Content-Type: application/json");
	h->headers = curl_slist_append(h->headers, "Accept: application/json");
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(h->curl, CURLOPT_USERAGENT,
	    "resultsdb_updater (fedmsg-c)");
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);	/* threads */
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, o->timeout_s);
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT,
	    o->connect_timeout_s);
	curl_easy_setopt(h->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L);
	if (o->ca)
		curl_easy_setopt(h->curl, CURLOPT_CAINFO, o->ca);
	if (o->cert)
		curl_easy_setopt(h->curl, CURLOPT_SSLCERT, o->cert);
	if (o->key)
		curl_easy_setopt(h->curl, CURLOPT_SSLKEY, o->key);
	if (o->gssapi) {
		curl_easy_setopt(h->curl, CURLOPT_HTTPAUTH, CURLAUTH_NEGOTIATE);
		curl_easy_setopt(h->curl, CURLOPT_USERPWD, ":");
	}
	return h;
}

void
rdb_http_free(struct rdb_http *h)
{
	if (h == NULL)
		return;
	curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->headers);
	free(h);
}

long
rdb_http_request(struct rdb_http *h, const char *url, const char *body,
    char **resp, char *err, size_t errlen)
{
	struct sink s = { NULL, 0, 0 };
	char cerr[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode rc;

	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &s);
	if (body != NULL) {
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE,
		    (long)strlen(body));
	} else {
		curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	}
	rc = curl_easy_perform(h->curl);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s", cerr[0] ? cerr :
		    curl_easy_strerror(rc));
		free(s.buf);
		s.buf = NULL;
	} else {
		curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
		err[0] = '\0';
	}
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, NULL);
	if (resp)
		*resp = s.buf;
	else
		free(s.buf);
	return status;
}

char *
rdb_http_escape(struct rdb_http *h, const char *s)
{
	char *e = curl_easy_escape(h->curl, s, 0), *out;

	if (e == NULL)
		return NULL;
	out = strdup(e);
	curl_free(e);
	return out;
}
