/*
 * resultsdb: a small HTTP client for ResultsDB's API v2.0 on libcurl.
 * One handle per consumer (keep-alive: the connection is reused), used
 * under the caller's lock.  TLS: a CA file, an optional client
 * certificate and key, optional Kerberos/GSSAPI (SPNEGO) authentication.
 */
#ifndef RESULTSDB_HTTP_H
#define RESULTSDB_HTTP_H

#include <stddef.h>

#define RDB_MAX_RESPONSE	(4u << 20)	/* bytes of a response kept */

struct rdb_http_opts {
	const char	*ca;		/* CA file, or NULL: the system's */
	const char	*cert, *key;	/* client certificate, or NULL */
	int		 gssapi;	/* Negotiate (Kerberos) */
	long		 timeout_s;	/* whole request */
	long		 connect_timeout_s;
};

struct rdb_http;

struct rdb_http *rdb_http_new(const struct rdb_http_opts *o);
void rdb_http_free(struct rdb_http *h);

/*
 * GET (body NULL) or POST (body: JSON text) url.  Returns the HTTP status,
 * or 0 when there was no answer (unreachable, timeout, TLS error: err
 * says which).  *resp (malloc'd, NUL-terminated, caller frees; may be
 * NULL) gets the response body.
 */
long rdb_http_request(struct rdb_http *h, const char *url, const char *body,
    char **resp, char *err, size_t errlen);

/* URL-encode s (malloc'd, caller frees). */
char *rdb_http_escape(struct rdb_http *h, const char *s);

#endif
