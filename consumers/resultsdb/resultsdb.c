/*
 * resultsdb: the ResultsDB-Updater service as a consumer plugin.  CI
 * results on the bus (CI messages 0.x, the "resultsdb" format, the old
 * platformci metrics; mapping.c) become ResultsDB results POSTed to
 * "api_url" (http.c), once.
 *
 * Idempotence.  ResultsDB's API has no client reference, so every
 * message's group gets a UUID derived from the message id (msg_id, else
 * the "message-id" header, else a hash of the payload) and the group's
 * ref_url; before each POST the plugin asks ResultsDB for results of that
 * group and test case (GET /results?groups=U&testcases=N) and skips the
 * POST when the result is already there.  A redelivered or replayed
 * message thus adds nothing.  (ResultsDB-Updater made a random group
 * UUID; it was never a field anyone matched on.)  The "resultsdb" single
 * format reuses the group found by its ref_url as ResultsDB-Updater does,
 * so there the check is on that group and the test case.
 *
 * Verdicts: ResultsDB unreachable or 5xx -> RETRY (the hub backs off; on
 * a broker the message waits in the queue); a 4xx, or a message
 * ResultsDB-Updater would reject -> DROP with the reason logged, and
 * published as "resultsdb_updater.error" when "errors" is "publish".
 *
 * Config ("config" of the consumer entry):
 *	api_url		required: "https://resultsdb.example.com/api/v2.0"
 *	ca, cert, key	TLS: CA file; client certificate and key
 *	gssapi		bool: Kerberos (SPNEGO) authentication
 *	timeout		seconds of one request (default 15)
 *	connect_timeout	seconds (default 5)
 *	retries		in-place retries of a GET that got no answer or
 *			a 5xx, with doubling backoff from 0.2 s (default 2),
 *			before RETRY.  A POST is never resent in place: its
 *			result may be stored though the answer timed out or
 *			was a 5xx, so it goes back through RETRY and the
 *			look for results already there
 *	errors		"log" (default) or "publish"
 *	private_testcases {glob: JMSXUserID}: only that publisher may
 *			publish results of matching test cases
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <fedmsg/plugin.h>
#include <fedmsg/plugin_config.h>

#include "http.h"
#include "mapping.h"

#define MAX_PRIVATE	32

struct rdb {
	const struct fm_host	*host;
	void			*hctx;
	pthread_mutex_t		 lock;	/* the curl handle; threads > 1 */
	struct rdb_http		*http;
	char			*api_url, *ca, *cert, *key, *errors;
	bool			 gssapi;
	long long		 timeout, connect_timeout, retries;
	struct rdb_private	 priv[MAX_PRIVATE];
	size_t			 npriv;
};

static void
free_config(struct rdb *r)
{
	size_t i;

	free(r->api_url);
	free(r->ca);
	free(r->cert);
	free(r->key);
	free(r->errors);
	for (i = 0; i < r->npriv; i++) {
		free(r->priv[i].glob);
		free(r->priv[i].publisher);
	}
	r->npriv = 0;
}

static int
read_config(struct rdb *r)
{
	struct fm_config c, sub;
	size_t i, n;
	int rc;

	r->timeout = 15;
	r->connect_timeout = 5;
	r->retries = 2;
	if (fm_config_open(&c, r->host, r->hctx) != 0 ||
	    fm_config_string(&c, "api_url", &r->api_url) < 0 ||
	    fm_config_string(&c, "ca", &r->ca) < 0 ||
	    fm_config_string(&c, "cert", &r->cert) < 0 ||
	    fm_config_string(&c, "key", &r->key) < 0 ||
	    fm_config_bool(&c, "gssapi", &r->gssapi) < 0 ||
	    fm_config_int(&c, "timeout", 1, 3600, &r->timeout) < 0 ||
	    fm_config_int(&c, "connect_timeout", 1, 600,
	    &r->connect_timeout) < 0 ||
	    fm_config_int(&c, "retries", 0, 10, &r->retries) < 0 ||
	    fm_config_string(&c, "errors", &r->errors) < 0 ||
	    (rc = fm_config_object(&c, "private_testcases", &sub)) < 0) {
		r->host->log(r->hctx, FM_LOG_ERR, "config: %s", c.err);
		return -1;
	}
	if (r->api_url == NULL) {
		r->host->log(r->hctx, FM_LOG_ERR, "config: 'api_url' is "
		    "required (ResultsDB's API: https://host/api/v2.0)");
		return -1;
	}
	while ((n = strlen(r->api_url)) > 0 && r->api_url[n - 1] == '/')
		r->api_url[n - 1] = '\0';	/* ".../api/v2.0/" */
	if (r->errors != NULL && strcmp(r->errors, "log") != 0 &&
	    strcmp(r->errors, "publish") != 0) {
		r->host->log(r->hctx, FM_LOG_ERR, "config: 'errors' must be "
		    "\"log\" or \"publish\", not \"%s\"", r->errors);
		return -1;
	}
	if (rc == 0) {
		for (i = 0; i < fm_config_size(&sub); i++) {
			char *k = fm_config_key(&sub, i), *v = NULL;

			if (k == NULL)
				return -1;
			if (r->npriv == MAX_PRIVATE ||
			    fm_config_string(&sub, k, &v) < 0) {
				r->host->log(r->hctx, FM_LOG_ERR, "config: "
				    "private_testcases: %s", r->npriv ==
				    MAX_PRIVATE ? "too many" : sub.err);
				free(k);
				return -1;
			}
			r->priv[r->npriv].glob = k;
			r->priv[r->npriv++].publisher = v;
		}
	}
	fm_config_warn_unknown(&c);
	return 0;
}

/* ----- identity of a message and of its groups ------------------------ */

static uint64_t
fnv1a(uint64_t h, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* A UUID (RFC 9562 version 8: custom) from the message id and a group's
 * ref_url: the same message always names the same group. */
static void
group_uuid(const char *id, const char *ref, char out[37])
{
	uint64_t a = fnv1a(0xcbf29ce484222325ULL, id, strlen(id) + 1);
	uint64_t b = fnv1a(0x84222325cbf29ce4ULL, id, strlen(id) + 1);

	a = fnv1a(a, ref, strlen(ref));
	b = fnv1a(b ^ a, ref, strlen(ref));
	a = (a & ~0xF000ULL) | 0x8000ULL;			/* version 8 */
	b = (b & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL; /* variant */
	snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx",
	    (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xFFFF,
	    (unsigned)a & 0xFFFF, (unsigned)(b >> 48),
	    (unsigned long long)(b & 0xFFFFFFFFFFFFULL));
}

/* ----- HTTP with bounded retries -------------------------------------- */

/* A GET retried in place (doubling from 0.2 s) while it gets no answer
 * or a 5xx; a POST (body) once. */
static long
request(struct rdb *r, const char *url, const char *body, char **resp,
    char *err, size_t errlen)
{
	long st = 0, i;
	struct timespec ts;

	for (i = 0; i <= r->retries; i++) {
		if (i > 0) {
			long ms = 200L << (i - 1);

			ts.tv_sec = ms / 1000;
			ts.tv_nsec = (ms % 1000) * 1000000L;
			nanosleep(&ts, NULL);
		}
		if (resp)
			*resp = NULL;
		st = rdb_http_request(r->http, url, body, resp, err, errlen);
		if (st >= 500)
			snprintf(err, errlen, "HTTP %ld", st);
		if ((st != 0 && st < 500) || body != NULL)
			break;
		if (i < r->retries && resp) {
			free(*resp);
			*resp = NULL;
		}
	}
	return st;
}

/* "data" of a ResultsDB list answer (or NULL) */
static json_t *
list_data(const char *resp, json_t **doc)
{
	*doc = resp ? json_loads(resp, 0, NULL) : NULL;
	return json_is_array(json_object_get(*doc, "data")) ?
	    json_object_get(*doc, "data") : NULL;
}

enum step { STEP_OK, STEP_RETRY, STEP_DROP };

/* The uuid of the first group with this description, or "" */
static enum step
find_group(struct rdb *r, const char *desc, char *uuid, size_t size,
    char *why, size_t whylen)
{
	char *e = rdb_http_escape(r->http, desc), *url = NULL, *resp = NULL;
	char err[256];
	json_t *doc = NULL, *data, *u;
	long st;

	uuid[0] = '\0';
	if (e == NULL || asprintf(&url, "%s/groups?description=%s",
	    r->api_url, e) < 0) {
		free(e);
		snprintf(why, whylen, "out of memory");
		return STEP_RETRY;
	}
	free(e);
	st = request(r, url, NULL, &resp, err, sizeof(err));
	free(url);
	if (st == 0 || st >= 500) {
		snprintf(why, whylen, "ResultsDB: %s", err);
		free(resp);
		return STEP_RETRY;
	}
	data = list_data(resp, &doc);
	free(resp);
	if (st != 200 || data == NULL) {
		snprintf(why, whylen, "ResultsDB answered GET /groups with "
		    "HTTP %ld", st);
		json_decref(doc);
		return st >= 400 ? STEP_DROP : STEP_RETRY;
	}
	u = json_object_get(json_array_get(data, 0), "uuid");
	if (json_is_string(u))
		snprintf(uuid, size, "%s", json_string_value(u));
	json_decref(doc);
	return STEP_OK;
}

/* How many results of this test case the group already holds. */
static enum step
count_existing(struct rdb *r, const char *uuid, const char *testcase,
    size_t *n, char *why, size_t whylen)
{
	char *et = rdb_http_escape(r->http, testcase), *url = NULL;
	char *resp = NULL, err[256];
	json_t *doc = NULL, *data;
	long st;

	if (et == NULL || asprintf(&url, "%s/results?groups=%s&testcases=%s"
	    "&limit=%d", r->api_url, uuid, et, RDB_MAX_RESULTS + 1) < 0) {
		free(et);
		snprintf(why, whylen, "out of memory");
		return STEP_RETRY;
	}
	free(et);
	st = request(r, url, NULL, &resp, err, sizeof(err));
	free(url);
	if (st == 0 || st >= 500) {
		snprintf(why, whylen, "ResultsDB: %s", err);
		free(resp);
		return STEP_RETRY;
	}
	data = list_data(resp, &doc);
	free(resp);
	if (st != 200 || data == NULL) {
		snprintf(why, whylen, "ResultsDB answered GET /results with "
		    "HTTP %ld", st);
		json_decref(doc);
		return st >= 400 ? STEP_DROP : STEP_RETRY;
	}
	*n = json_array_size(data);
	json_decref(doc);
	return STEP_OK;
}

/* POST one result. */
static enum step
post(struct rdb *r, json_t *payload, char *why, size_t whylen)
{
	char *body = json_dumps(payload, JSON_COMPACT | JSON_ENSURE_ASCII);
	char *url = NULL, *resp = NULL, err[256];
	json_t *doc;
	long st;

	if (body == NULL || asprintf(&url, "%s/results", r->api_url) < 0) {
		free(body);
		snprintf(why, whylen, "out of memory");
		return STEP_RETRY;
	}
	st = request(r, url, body, &resp, err, sizeof(err));
	free(url);
	if (st == 201 || st == 200) {
		free(resp);
		free(body);
		return STEP_OK;
	}
	if (st == 0 || st >= 500) {
		snprintf(why, whylen, "ResultsDB: %s", err);
		free(resp);
		free(body);
		return STEP_RETRY;
	}
	/* 4xx: ResultsDB refused this result (its "message" says why) */
	doc = resp ? json_loads(resp, 0, NULL) : NULL;
	snprintf(why, whylen, "Failed to create result: %s; Payload: %.200s",
	    json_is_string(json_object_get(doc, "message")) ?
	    json_string_value(json_object_get(doc, "message")) :
	    (resp ? resp : "HTTP error"), body);
	json_decref(doc);
	free(resp);
	free(body);
	return st >= 400 && st < 500 ? STEP_DROP : STEP_RETRY;
}

/* ----- consume ---------------------------------------------------------- */

static void
warn(void *arg, const char *fmt, ...)
{
	struct rdb *r = arg;
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	r->host->log(r->hctx, FM_LOG_WARN, "%s", buf);
}

/* A JSON value of the envelope, parsed by jansson (NULL when absent). */
static json_t *
envelope_value(struct rdb *r, struct fm_msg *msg, const char *ptr)
{
	const struct fm_json *doc = r->host->msg_json(msg);
	size_t len;
	char *text;
	json_t *v;

	if (r->host->json_text(doc, ptr, NULL, 0, &len) != FM_JSON_OK &&
	    r->host->json_type(doc, ptr) == FM_JSON_ABSENT)
		return NULL;
	if ((text = malloc(len + 1)) == NULL)
		return NULL;
	if (r->host->json_text(doc, ptr, text, len + 1, NULL) != FM_JSON_OK) {
		free(text);
		return NULL;
	}
	v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	free(text);
	return v;
}

static void
report_drop(struct rdb *r, struct fm_msg *msg, const char *id,
    const char *why)
{
	const struct fm_host *h = r->host;
	const char *topic = h->msg_topic(msg);
	struct fm_builder *b;

	h->log(r->hctx, FM_LOG_WARN, "[%s]: Invalid message rejected: %s",
	    id, why);
	if (r->errors == NULL || strcmp(r->errors, "publish") != 0)
		return;
	b = h->builder_new();
	h->build_object_begin(b);
	h->build_key(b, "msg_id", 6);
	h->build_string(b, id, strlen(id));
	h->build_key(b, "topic", 5);
	if (topic)
		h->build_string(b, topic, strlen(topic));
	else
		h->build_null(b);
	h->build_key(b, "reason", 6);
	h->build_string(b, why, strlen(why));
	h->build_object_end(b);
	if (h->publish_built(r->hctx, "resultsdb_updater", "error", b) != 0)
		h->log(r->hctx, FM_LOG_WARN, "[%s]: error not published", id);
}

/* The message's identity for idempotence. */
static char *
message_id(struct rdb *r, struct fm_msg *msg, json_t *headers, json_t *body)
{
	const char *id = r->host->msg_id(msg);
	json_t *h = json_object_get(headers, "message-id");
	char *s, buf[40];

	if (id != NULL && id[0] != '\0')
		return strdup(id);
	if (json_is_string(h) && json_string_length(h) > 0)
		return strdup(json_string_value(h));
	s = json_dumps(body, JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_COMPACT);
	snprintf(buf, sizeof(buf), "body-%016llx", (unsigned long long)
	    fnv1a(0xcbf29ce484222325ULL, s ? s : "", s ? strlen(s) : 0));
	free(s);
	return strdup(buf);
}

static enum step
deliver(struct rdb *r, struct rdb_results *res, const char *id, char *why,
    size_t whylen)
{
	char looked[128] = "";
	enum step st;
	size_t i, j;

	if (res->lookup_group && res->n > 0) {
		json_t *d = json_object_get(res->r[0].group, "description");

		st = find_group(r, json_is_string(d) ? json_string_value(d) :
		    "", looked, sizeof(looked), why, whylen);
		if (st != STEP_OK)
			return st;
	}
	for (i = 0; i < res->n; i++) {
		struct rdb_result *x = &res->r[i];
		json_t *ref = json_object_get(x->group, "ref_url");
		char uuid[128];
		size_t have = 0, nth = 0;

		if (ref == NULL)
			ref = json_object_get(x->group, "url");
		if (looked[0] != '\0')
			snprintf(uuid, sizeof(uuid), "%s", looked);
		else
			group_uuid(id, json_is_string(ref) ?
			    json_string_value(ref) : "", uuid);
		json_object_set_new(x->group, "uuid", json_string(uuid));
		/* the nth result of this test case in this message */
		for (j = 0; j < i; j++)
			nth += strcmp(res->r[j].testcase, x->testcase) == 0;
		st = count_existing(r, uuid, x->testcase, &have, why, whylen);
		if (st != STEP_OK)
			return st;
		if (have > nth) {
			r->host->log(r->hctx, FM_LOG_INFO, "[%s]: result %s "
			    "already in ResultsDB (group %s): not posted "
			    "again", id, x->testcase, uuid);
			continue;
		}
		if ((st = post(r, x->payload, why, whylen)) != STEP_OK)
			return st;
	}
	return STEP_OK;
}

static int
rdb_consume(void *state, struct fm_msg *msg)
{
	struct rdb *r = state;
	const struct fm_host *h = r->host;
	struct rdb_results *res = NULL;
	struct rdb_input in;
	json_t *body, *headers;
	char why[RDB_WHYLEN], *id, *topic = NULL;
	enum rdb_map_rc mrc;
	enum step st = STEP_OK;
	int rc = FM_CONSUME_OK;

	body = envelope_value(r, msg, "/msg");
	headers = envelope_value(r, msg, "/headers");
	id = message_id(r, msg, headers, body);
	if (id == NULL || (res = calloc(1, sizeof(*res))) == NULL) {
		rc = FM_CONSUME_RETRY;
		goto out;
	}
	memset(&in, 0, sizeof(in));
	in.topic = h->msg_topic(msg);
	/* fedmsg-bridge names a UMB message by its destination without
	 * "/topic/"; ResultsDB-Updater (on STOMP) saw it with the prefix,
	 * and its topic checks expect it */
	if (in.topic != NULL && strncmp(in.topic, "VirtualTopic.", 13) == 0 &&
	    asprintf(&topic, "/topic/%s", in.topic) > 0)
		in.topic = topic;
	in.body = body;
	in.headers = json_is_object(headers) ? headers : NULL;
	in.priv = r->priv;
	in.npriv = r->npriv;
	in.warn = warn;
	in.warn_arg = r;
	mrc = rdb_map(&in, res, why);
	switch (mrc) {
	case RDB_MAP_IGNORED:
		h->log(r->hctx, FM_LOG_DEBUG, "[%s]: %s", id, why);
		goto out;
	case RDB_MAP_REJECTED:
		report_drop(r, msg, id, why);
		rc = FM_CONSUME_DROP;
		goto out;
	case RDB_MAP_NOMEM:
		rc = FM_CONSUME_RETRY;
		goto out;
	case RDB_MAP_OK:
		break;
	}
	pthread_mutex_lock(&r->lock);
	st = deliver(r, res, id, why, sizeof(why));
	pthread_mutex_unlock(&r->lock);
	if (st == STEP_RETRY) {
		h->log(r->hctx, FM_LOG_WARN, "[%s]: will retry (attempt %u): "
		    "%s", id, h->msg_attempt(msg), why);
		rc = FM_CONSUME_RETRY;
	} else if (st == STEP_DROP) {
		report_drop(r, msg, id, why);
		rc = FM_CONSUME_DROP;
	} else {
		h->log(r->hctx, FM_LOG_DEBUG, "[%s]: %zu result(s) in "
		    "ResultsDB", id, res->n);
	}
	rdb_results_free(res);
out:
	free(topic);
	free(res);
	free(id);
	json_decref(body);
	json_decref(headers);
	return rc;
}

static void
rdb_free(struct rdb *r)
{
	rdb_http_free(r->http);
	free_config(r);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static int
rdb_init(const struct fm_host *host, void *hctx, void **state)
{
	struct rdb *r = calloc(1, sizeof(*r));
	struct rdb_http_opts o;

	if (r == NULL)
		return -1;
	r->host = host;
	r->hctx = hctx;
	pthread_mutex_init(&r->lock, NULL);
	if (read_config(r) != 0) {
		rdb_free(r);
		return -1;
	}
	o.ca = r->ca;
	o.cert = r->cert;
	o.key = r->key;
	o.gssapi = r->gssapi;
	o.timeout_s = r->timeout;
	o.connect_timeout_s = r->connect_timeout;
	if ((r->http = rdb_http_new(&o)) == NULL) {
		host->log(hctx, FM_LOG_ERR, "libcurl could not start");
		rdb_free(r);
		return -1;
	}
	*state = r;
	return 0;
}

static void
rdb_fini(void *state)
{
	rdb_free(state);
}

/* The CI buses ResultsDB-Updater listens to (a consumer entry's "topics"
 * replaces these). */
static const char *const rdb_topics[] = {
	"/topic/VirtualTopic.eng.ci.*",
	"/topic/VirtualTopic.eng.platformci.*",
	"/topic/VirtualTopic.qe.ci.*",
	/* the same through fedmsg-bridge (no "/topic/") */
	"VirtualTopic.eng.ci.*",
	"VirtualTopic.eng.platformci.*",
	"VirtualTopic.qe.ci.*",
	"org.centos.prod.ci.*",
	"org.fedoraproject.prod.ci.*",
	NULL,
};

static const struct fm_plugin plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"resultsdb", "0.1.0", NULL, rdb_topics,
	rdb_init, rdb_consume, NULL, rdb_fini,
};

FM_PLUGIN_DEFINE(plugin)
