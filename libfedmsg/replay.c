/*
 * Replay of recent messages and gap detection (replay.h).
 *
 * The store keeps references to the published messages in arrival order
 * (a FIFO list), bounded by count and body bytes, with three indexes: a
 * sorted array by "i", a sorted array by timestamp (both ordered by
 * arrival among equal keys) and a hash table by msg_id.  Publishers
 * number their messages 1, 2, 3, ... and stamp them with the clock, so
 * both sorted arrays grow at the end and shrink at the front: adding and
 * evicting are O(1) in the usual case and O(n) memmove otherwise.
 *
 * The server answers one request at a time on a REP socket, polling with a
 * short timeout so that replay_server_stop() returns promptly.
 *
 * The gap tracker asks for exactly the missing range (fedmsg asks for the
 * already-seen "last" too) and uses every message of the reply (fedmsg
 * uses the first).
 */
#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <zmq.h>

#include "clock.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "replay.h"
#include "zep.h"

/* Requests above this are answered with an error. */
#define REPLAY_MAX_REQUEST	(64u * 1024)
/* Frames above this drop the requester's connection (never delivered). */
#define REPLAY_MAX_FRAME	(1024 * 1024)
/* Poll period of the server thread: the latency of replay_server_stop(). */
#define REPLAY_POLL_MS		200
/* A stuck requester cannot hold a reply longer than this. */
#define REPLAY_SEND_TIMEOUT_MS	1000
/* The most messages one gap query asks for. */
#define GAP_MAX_REQUEST		10000

static const char no_match[] = "There was no match for the given query";

/* ---- store ------------------------------------------------------------ */

struct entry {
	struct fm_msg	*msg;
	struct entry	*newer;		/* FIFO: the next added */
	struct entry	*id_next;	/* msg_id hash chain */
	uint64_t	 arrival;	/* order of addition, from 1 */
	uint64_t	 mark;		/* query generation taking it */
	int64_t		 seq;		/* "i", when has_seq */
	double		 ts;		/* timestamp, when has_ts */
	size_t		 bytes;		/* body length */
	uint64_t	 id_hash;	/* when msg_id is set */
	bool		 has_seq, has_ts;
};

/* Entries sorted by a key then arrival; live in v[head, head + len). */
struct sidx {
	struct entry	**v;
	size_t		 head, len, cap;
	/* does e sort before key?  key is an entry when inserting */
	bool		(*before)(const struct entry *e, const void *key);
};

struct replay_store {
	pthread_mutex_t	 lock;
	size_t		 max_msgs, max_bytes;
	size_t		 count, bytes;
	struct entry	*oldest, *newest;
	uint64_t	 arrivals;
	uint64_t	 gen;
	struct sidx	 by_seq, by_ts;
	struct entry	**ids;		/* buckets; nids a power of 2 */
	size_t		 nids, nid_entries;
};

static bool
seq_entry_before(const struct entry *e, const void *key)
{
	const struct entry *k = key;

	return e->seq < k->seq || (e->seq == k->seq && e->arrival < k->arrival);
}

static bool
seq_value_before(const struct entry *e, const void *key)
{
	return e->seq < *(const int64_t *)key;
}

static bool
ts_entry_before(const struct entry *e, const void *key)
{
	const struct entry *k = key;

	return e->ts < k->ts || (e->ts == k->ts && e->arrival < k->arrival);
}

static bool
ts_value_before(const struct entry *e, const void *key)
{
	return e->ts < *(const double *)key;
}

/* The first position whose entry does not sort before key. */
static size_t
sidx_lower(const struct sidx *x,
    bool (*before)(const struct entry *, const void *), const void *key)
{
	size_t lo = 0, hi = x->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (before(x->v[x->head + mid], key))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
sidx_insert(struct sidx *x, struct entry *e)
{
	size_t pos;

	if (x->head + x->len == x->cap) {
		if (x->head > 0 && x->head >= x->len) {
			memmove(x->v, x->v + x->head, x->len * sizeof(*x->v));
			x->head = 0;
		} else {
			size_t cap = x->cap ? x->cap * 2 : 64;
			struct entry **v = realloc(x->v, cap * sizeof(*v));

			if (v == NULL)
				return -1;
			x->v = v;
			x->cap = cap;
		}
	}
	if (x->len == 0 || x->before(x->v[x->head + x->len - 1], e))
		pos = x->len;		/* the usual case: the newest */
	else
		pos = sidx_lower(x, x->before, e);
	memmove(x->v + x->head + pos + 1, x->v + x->head + pos,
	    (x->len - pos) * sizeof(*x->v));
	x->v[x->head + pos] = e;
	x->len++;
	return 0;
}

static void
sidx_remove(struct sidx *x, struct entry *e)
{
	size_t pos;

	if (x->len > 0 && x->v[x->head] == e)
		pos = 0;		/* the usual case: the oldest */
	else
		pos = sidx_lower(x, x->before, e);
	if (pos >= x->len || x->v[x->head + pos] != e)
		return;			/* not indexed (insert failed) */
	if (pos == 0) {
		x->head++;
	} else {
		memmove(x->v + x->head + pos, x->v + x->head + pos + 1,
		    (x->len - pos - 1) * sizeof(*x->v));
	}
	if (--x->len == 0)
		x->head = 0;
}

/* FNV-1a. */
static uint64_t
hash_bytes(const char *s, size_t n)
{
	uint64_t h = 14695981039346656037ull;

	while (n-- > 0) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ull;
	}
	return h;
}

static void
ids_insert(struct replay_store *st, struct entry *e)
{
	size_t b;

	if (st->nid_entries >= st->nids) {
		size_t n = st->nids ? st->nids * 2 : 256, i;
		struct entry **t = calloc(n, sizeof(*t));

		if (t != NULL) {
			for (i = 0; i < st->nids; i++) {
				struct entry *p, *next;

				for (p = st->ids[i]; p; p = next) {
					next = p->id_next;
					p->id_next = t[p->id_hash & (n - 1)];
					t[p->id_hash & (n - 1)] = p;
				}
			}
			free(st->ids);
			st->ids = t;
			st->nids = n;
		} else if (st->nids == 0) {
			return;	/* not indexed; found by nothing */
		}
	}
	b = e->id_hash & (st->nids - 1);
	e->id_next = st->ids[b];
	st->ids[b] = e;
	st->nid_entries++;
}

static void
ids_remove(struct replay_store *st, struct entry *e)
{
	struct entry **pp;

	if (st->nids == 0)
		return;
	for (pp = &st->ids[e->id_hash & (st->nids - 1)]; *pp;
	    pp = &(*pp)->id_next) {
		if (*pp == e) {
			*pp = e->id_next;
			st->nid_entries--;
			return;
		}
	}
}

struct replay_store *
replay_store_new(size_t max_msgs, size_t max_bytes)
{
	struct replay_store *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	if (pthread_mutex_init(&st->lock, NULL) != 0) {
		free(st);
		return NULL;
	}
	st->max_msgs = max_msgs;
	st->max_bytes = max_bytes;
	st->by_seq.before = seq_entry_before;
	st->by_ts.before = ts_entry_before;
	return st;
}

static void
evict_oldest(struct replay_store *st)
{
	struct entry *e = st->oldest;

	st->oldest = e->newer;
	if (st->oldest == NULL)
		st->newest = NULL;
	if (e->has_seq)
		sidx_remove(&st->by_seq, e);
	if (e->has_ts)
		sidx_remove(&st->by_ts, e);
	if (fm_msg_id(e->msg))
		ids_remove(st, e);
	st->count--;
	st->bytes -= e->bytes;
	fm_msg_unref(e->msg);
	free(e);
}

void
replay_store_add(struct replay_store *st, struct fm_msg *msg)
{
	struct entry *e;
	const char *id;

	if (st == NULL || msg == NULL)
		return;
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		log_warn("replay store: out of memory; message not kept");
		return;
	}
	fm_msg_body(msg, &e->bytes);
	if (st->max_msgs == 0 || e->bytes > st->max_bytes) {
		log_debug("replay store: a message of %zu bytes is not kept "
		    "(limits %zu messages, %zu bytes)", e->bytes,
		    st->max_msgs, st->max_bytes);
		free(e);
		return;
	}
	e->has_seq = fm_msg_seq(msg, &e->seq);
	e->has_ts = fm_msg_timestamp(msg, &e->ts) && !isnan(e->ts);
	if ((id = fm_msg_id(msg)) != NULL)
		e->id_hash = hash_bytes(id, strlen(id));

	pthread_mutex_lock(&st->lock);
	while (st->count > 0 && (st->count >= st->max_msgs ||
	    st->bytes + e->bytes > st->max_bytes))
		evict_oldest(st);
	e->msg = fm_msg_ref(msg);
	e->arrival = ++st->arrivals;
	if (e->has_seq && sidx_insert(&st->by_seq, e) < 0)
		log_warn("replay store: out of memory; message %" PRId64
		    " not found by seq_id", e->seq);
	if (e->has_ts && sidx_insert(&st->by_ts, e) < 0)
		log_warn("replay store: out of memory; message not found by "
		    "time");
	if (id)
		ids_insert(st, e);
	if (st->newest)
		st->newest->newer = e;
	else
		st->oldest = e;
	st->newest = e;
	st->count++;
	st->bytes += e->bytes;
	pthread_mutex_unlock(&st->lock);
}

void
replay_store_free(struct replay_store *st)
{
	if (st == NULL)
		return;
	while (st->oldest)
		evict_oldest(st);
	free(st->by_seq.v);
	free(st->by_ts.v);
	free(st->ids);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

/* ---- queries ---------------------------------------------------------- */

/*
 * A JSON integer as int64, saturating; *exact is false when it was out of
 * range (then it can bound a range but equals no message's "i").
 */
static void
int_value(const struct jv *v, int64_t *n, bool *exact)
{
	char tmp[32];
	char *end;
	long long x;

	*exact = false;
	if (v->len >= sizeof(tmp)) {
		*n = v->u.str[0] == '-' ? INT64_MIN : INT64_MAX;
		return;
	}
	memcpy(tmp, v->u.str, v->len);
	tmp[v->len] = '\0';
	errno = 0;
	x = strtoll(tmp, &end, 10);
	*n = x;
	*exact = errno == 0 && *end == '\0';
}

static bool
is_number(const struct jv *v)
{
	return v->type == JV_INT || (v->type == JV_FLOAT && !isnan(v->u.num));
}

static double
num_value(const struct jv *v)
{
	char tmp[64];

	if (v->type == JV_FLOAT)
		return v->u.num;
	if (v->len >= sizeof(tmp))
		return v->u.str[0] == '-' ? -INFINITY : INFINITY;
	memcpy(tmp, v->u.str, v->len);
	tmp[v->len] = '\0';
	return strtod(tmp, NULL);
}

/* Is member m's key exactly s?  (Keys may hold NUL bytes.) */
static bool
key_is(const struct jv_member *m, const char *s)
{
	return m->key_len == strlen(s) && memcmp(m->key, s, m->key_len) == 0;
}

static bool
is_int_list(const struct jv *v, size_t n)
{
	uint32_t k;

	if (v->type != JV_ARRAY || (n && v->len != n))
		return false;
	for (k = 0; k < v->len; k++)
		if (v->u.items[k].type != JV_INT)
			return false;
	return true;
}

/* Check a query object's keys and value types; fedmsg's texts first. */
static int
query_check(const struct jv *q, char *err)
{
	uint32_t k, j;

	for (k = 0; k < q->len; k++) {
		const struct jv_member *m = &q->u.members[k];
		static const char *const known[] = { "msg_id", "msg_ids",
		    "seq_id", "seq_id_range", "seq_ids", "time", NULL };
		char key[101];
		size_t n;

		for (j = 0; known[j]; j++)
			if (key_is(m, known[j]))
				break;
		if (known[j])
			continue;
		/* Show the key readably: no control bytes, whole characters. */
		n = m->key_len < sizeof(key) - 1 ? m->key_len : sizeof(key) - 1;
		if (n < m->key_len)
			while (n > 0 &&
			    ((unsigned char)m->key[n] & 0xc0) == 0x80)
				n--;
		for (j = 0; j < n; j++) {
			unsigned char c = (unsigned char)m->key[j];

			key[j] = c < 0x20 || c == 0x7f ? '?' : (char)c;
		}
		key[n] = '\0';
		snprintf(err, FM_ERRLEN, "Unsupported field: \"%s\"%s", key,
		    n < m->key_len ? " (cut)" : "");
		return -1;
	}
	for (k = 0; k < q->len; k++) {
		const struct jv_member *m = &q->u.members[k];
		const struct jv *v = &m->value;

		if (key_is(m, "seq_id") && v->type != JV_INT) {
			snprintf(err, FM_ERRLEN, "seq_id must be an integer");
			return -1;
		}
		if (key_is(m, "seq_ids") && !is_int_list(v, 0)) {
			snprintf(err, FM_ERRLEN, "seq_ids must be a list of "
			    "integers");
			return -1;
		}
		if (key_is(m, "seq_id_range") && !is_int_list(v, 2)) {
			snprintf(err, FM_ERRLEN, "seq_id_range must be a list "
			    "of two integers [first, last]");
			return -1;
		}
		if (key_is(m, "msg_id") && v->type != JV_STRING) {
			snprintf(err, FM_ERRLEN, "msg_id must be a string");
			return -1;
		}
		if (key_is(m, "msg_ids")) {
			bool ok = v->type == JV_ARRAY;

			for (j = 0; ok && j < v->len; j++)
				ok = v->u.items[j].type == JV_STRING;
			if (!ok) {
				snprintf(err, FM_ERRLEN, "msg_ids must be a "
				    "list of strings");
				return -1;
			}
		}
		if (key_is(m, "time") && (v->type != JV_ARRAY ||
		    v->len != 2 || !is_number(&v->u.items[0]) ||
		    !is_number(&v->u.items[1]))) {
			snprintf(err, FM_ERRLEN, "time must be a list of two "
			    "numbers [t0, t1]");
			return -1;
		}
	}
	return 0;
}

/* A match taken out of the store for sorting outside the lock. */
struct hit {
	struct fm_msg	*msg;
	int64_t		 seq;
	uint64_t	 arrival;
	bool		 has_seq;
};

struct hits {
	struct hit	*v;
	size_t		 n, cap;
	bool		 oom;
};

static void
take(struct replay_store *st, struct hits *h, struct entry *e)
{
	if (e->mark == st->gen || h->oom)
		return;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		struct hit *v = realloc(h->v, cap * sizeof(*v));

		if (v == NULL) {
			h->oom = true;
			return;
		}
		h->v = v;
		h->cap = cap;
	}
	e->mark = st->gen;
	h->v[h->n++] = (struct hit){ fm_msg_ref(e->msg), e->seq, e->arrival,
	    e->has_seq };
}

static void
take_seq_range(struct replay_store *st, struct hits *h, int64_t lo, int64_t hi)
{
	const struct sidx *x = &st->by_seq;
	size_t p;

	if (lo > hi)
		return;
	for (p = sidx_lower(x, seq_value_before, &lo);
	    p < x->len && x->v[x->head + p]->seq <= hi; p++)
		take(st, h, x->v[x->head + p]);
}

static void
take_seq(struct replay_store *st, struct hits *h, const struct jv *v)
{
	int64_t n;
	bool exact;

	int_value(v, &n, &exact);
	if (exact)
		take_seq_range(st, h, n, n);
}

static void
take_msg_id(struct replay_store *st, struct hits *h, const struct jv *v)
{
	struct entry *e;

	if (st->nids == 0)
		return;
	for (e = st->ids[hash_bytes(v->u.str, v->len) & (st->nids - 1)]; e;
	    e = e->id_next) {
		const char *id = fm_msg_id(e->msg);

		if (strlen(id) == v->len && memcmp(id, v->u.str, v->len) == 0)
			take(st, h, e);
	}
}

static void
take_time(struct replay_store *st, struct hits *h, double lo, double hi)
{
	const struct sidx *x = &st->by_ts;
	size_t p;

	if (!(lo <= hi))
		return;
	for (p = sidx_lower(x, ts_value_before, &lo);
	    p < x->len && x->v[x->head + p]->ts <= hi; p++)
		take(st, h, x->v[x->head + p]);
}

static int
hit_cmp(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;

	/* by "i"; messages without one after those with one */
	if (x->has_seq != y->has_seq)
		return x->has_seq ? -1 : 1;
	if (x->has_seq && x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->arrival < y->arrival ? -1 : x->arrival > y->arrival;
}

ssize_t
replay_store_query(struct replay_store *st, const char *query, size_t len,
    struct fm_msg ***out, char *err)
{
	struct jv_parse_opts opts = { 64, false };
	struct jv_doc *doc;
	const struct jv *q;
	struct hits h = { NULL, 0, 0, false };
	struct fm_msg **res = NULL;
	char perr[FM_ERRLEN];
	uint32_t k, j;
	size_t i;

	*out = NULL;
	if ((doc = jv_parse(query, len, &opts, perr)) == NULL) {
		snprintf(err, FM_ERRLEN, "query is not valid JSON: %s", perr);
		return -1;
	}
	q = jv_doc_root(doc);
	if (q->type != JV_OBJECT) {
		snprintf(err, FM_ERRLEN, "query is not a JSON object");
		jv_doc_free(doc);
		return -1;
	}
	if (query_check(q, err) < 0) {
		jv_doc_free(doc);
		return -1;
	}

	pthread_mutex_lock(&st->lock);
	st->gen++;
	for (k = 0; k < q->len; k++) {
		const struct jv_member *m = &q->u.members[k];
		const struct jv *v = &m->value;
		int64_t lo, hi;
		bool exact;

		if (key_is(m, "seq_id")) {
			take_seq(st, &h, v);
		} else if (key_is(m, "seq_ids")) {
			for (j = 0; j < v->len; j++)
				take_seq(st, &h, &v->u.items[j]);
		} else if (key_is(m, "seq_id_range")) {
			int_value(&v->u.items[0], &lo, &exact);
			int_value(&v->u.items[1], &hi, &exact);
			take_seq_range(st, &h, lo, hi);
		} else if (key_is(m, "msg_id")) {
			take_msg_id(st, &h, v);
		} else if (key_is(m, "msg_ids")) {
			for (j = 0; j < v->len; j++)
				take_msg_id(st, &h, &v->u.items[j]);
		} else if (key_is(m, "time")) {
			take_time(st, &h, num_value(&v->u.items[0]),
			    num_value(&v->u.items[1]));
		}
	}
	pthread_mutex_unlock(&st->lock);
	jv_doc_free(doc);

	if (h.oom || (h.n > 0 && (res = malloc(h.n * sizeof(*res))) == NULL)) {
		for (i = 0; i < h.n; i++)
			fm_msg_unref(h.v[i].msg);
		free(h.v);
		snprintf(err, FM_ERRLEN, "out of memory");
		return -1;
	}
	if (h.n == 0) {
		snprintf(err, FM_ERRLEN, "%s", no_match);
		return -1;
	}
	qsort(h.v, h.n, sizeof(*h.v), hit_cmp);
	for (i = 0; i < h.n; i++)
		res[i] = h.v[i].msg;
	free(h.v);
	*out = res;
	return (ssize_t)h.n;
}

/* ---- server ----------------------------------------------------------- */

struct replay_server {
	pthread_t		 thread;
	void			*sock;
	struct replay_store	*st;
	atomic_bool		 stop;
	char			 url[512];
};

static void
send_error(struct replay_server *srv, const char *text)
{
	char frame[FM_ERRLEN + 16];
	int n = snprintf(frame, sizeof(frame), "error: '%s'", text);

	log_debug("replay %s: %s", srv->url, text);
	if (zmq_send(srv->sock, frame, (size_t)n, 0) < 0)
		log_warn("replay %s: send: %s", srv->url, zmq_strerror(errno));
}

/* zmq frees a zero-copy frame through this (possibly from an I/O thread). */
static void
unref_frame(void *data, void *hint)
{
	(void)data;
	fm_msg_unref(hint);
}

static void
send_messages(struct replay_server *srv, struct fm_msg **msgs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		size_t len;
		const char *body = fm_msg_body(msgs[i], &len);
		zmq_msg_t m;

		if (zmq_msg_init_data(&m, (void *)body, len, unref_frame,
		    msgs[i]) < 0) {
			log_warn("replay %s: %s", srv->url,
			    zmq_strerror(errno));
			break;
		}
		msgs[i] = NULL;	/* the frame owns the reference */
		if (zmq_msg_send(&m, srv->sock, i + 1 < n ? ZMQ_SNDMORE : 0)
		    < 0) {
			log_warn("replay %s: send: %s", srv->url,
			    zmq_strerror(errno));
			zmq_msg_close(&m);
			break;
		}
	}
	for (; i < n; i++)
		fm_msg_unref(msgs[i]);
}

/* Read one request and send its reply (REP: there must be one). */
static void
serve_one(struct replay_server *srv)
{
	zmq_msg_t req;
	struct fm_msg **msgs;
	char err[FM_ERRLEN];
	bool more;
	size_t frames = 1;
	ssize_t n;

	zmq_msg_init(&req);
	if (zmq_msg_recv(&req, srv->sock, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&req);
		if (errno != EAGAIN && errno != EINTR)
			log_warn("replay %s: receive: %s", srv->url,
			    zmq_strerror(errno));
		return;
	}
	/* The frames of one message arrive together. */
	for (more = zmq_msg_more(&req); more; frames++) {
		zmq_msg_t extra;

		zmq_msg_init(&extra);
		if (zmq_msg_recv(&extra, srv->sock, 0) < 0) {
			zmq_msg_close(&extra);
			break;
		}
		more = zmq_msg_more(&extra);
		zmq_msg_close(&extra);
	}
	if (frames > 1) {
		snprintf(err, sizeof(err), "a query is one frame, not %zu",
		    frames);
		send_error(srv, err);
	} else if (zmq_msg_size(&req) > REPLAY_MAX_REQUEST) {
		snprintf(err, sizeof(err), "query too large: %zu bytes, "
		    "limit %u", zmq_msg_size(&req), REPLAY_MAX_REQUEST);
		send_error(srv, err);
	} else if ((n = replay_store_query(srv->st, zmq_msg_data(&req),
	    zmq_msg_size(&req), &msgs, err)) < 0) {
		send_error(srv, err);
	} else {
		log_debug("replay %s: %zd message(s)", srv->url, n);
		send_messages(srv, msgs, (size_t)n);
		free(msgs);
	}
	zmq_msg_close(&req);
}

static void *
server_main(void *arg)
{
	struct replay_server *srv = arg;

	while (!atomic_load(&srv->stop)) {
		zmq_pollitem_t pi = { srv->sock, 0, ZMQ_POLLIN, 0 };
		int rc = zmq_poll(&pi, 1, REPLAY_POLL_MS);

		if (rc < 0) {
			if (errno == EINTR)
				continue;
			if (errno != ETERM)
				log_err("replay %s: poll: %s", srv->url,
				    zmq_strerror(errno));
			break;
		}
		if (rc > 0 && (pi.revents & ZMQ_POLLIN))
			serve_one(srv);
	}
	zmq_close(srv->sock);
	srv->sock = NULL;
	return NULL;
}

struct replay_server *
replay_server_start(const struct fm_config *cfg, const char *url,
    struct replay_store *st, char *err)
{
	struct replay_server *srv;
	void *ctx = zep_context(cfg);
	int linger = 0, sndtimeo = REPLAY_SEND_TIMEOUT_MS, rc;
	int64_t maxmsg = REPLAY_MAX_FRAME;

	if (st == NULL) {
		snprintf(err, FM_ERRLEN, "replay %s: no store", url);
		return NULL;
	}
	if ((srv = calloc(1, sizeof(*srv))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	srv->st = st;
	atomic_init(&srv->stop, false);
	if (zep_bind_url(url, srv->url, sizeof(srv->url)) < 0) {
		snprintf(err, FM_ERRLEN, "replay endpoint %s: not a "
		    "tcp://host:port URL", url);
		free(srv);
		return NULL;
	}
	if (ctx == NULL || (srv->sock = zmq_socket(ctx, ZMQ_REP)) == NULL) {
		snprintf(err, FM_ERRLEN, "zmq socket: %s", zmq_strerror(errno));
		free(srv);
		return NULL;
	}
	zep_apply_options(srv->sock, cfg, false);
	zmq_setsockopt(srv->sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(srv->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof(sndtimeo));
	zmq_setsockopt(srv->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	if (zmq_bind(srv->sock, srv->url) < 0) {
		snprintf(err, FM_ERRLEN, "replay endpoint %s: bind %s: %s", url,
		    srv->url, zmq_strerror(errno));
		goto fail;
	}
	/* pthread_create is a full barrier: the socket may change threads. */
	if ((rc = pthread_create(&srv->thread, NULL, server_main, srv)) != 0) {
		snprintf(err, FM_ERRLEN, "replay thread: %s", strerror(rc));
		goto fail;
	}
	log_debug("replay server on %s", srv->url);
	return srv;
fail:
	zmq_close(srv->sock);
	free(srv);
	return NULL;
}

void
replay_server_stop(struct replay_server *srv)
{
	if (srv == NULL)
		return;
	atomic_store(&srv->stop, true);
	pthread_join(srv->thread, NULL);
	free(srv);
}

/* ---- gap tracker ------------------------------------------------------ */

struct tracked {
	char		*name;
	char		*url;		/* as configured, for logs */
	char		*connect;	/* a "*" host made 127.0.0.1 */
	int64_t		 last;
	bool		 known;
};

struct gap_tracker {
	void			*ctx;
	struct fm_limits	 lim;
	int			 default_timeout_ms;
	struct tracked		*t;
	size_t			 n;
	_Atomic uint64_t	 missed, recovered;
};

/* fedmsg connects a URL whose host is "*" to 127.0.0.1 instead. */
static char *
connect_url(const char *url)
{
	const char *p = strstr(url, "://");
	char *out;

	if (p == NULL || p[3] != '*' || (p[4] != ':' && p[4] != '\0'))
		return strdup(url);
	if ((out = malloc(strlen(url) + 16)) == NULL)
		return NULL;
	sprintf(out, "%.*s127.0.0.1%s", (int)(p + 3 - url), url, p + 4);
	return out;
}

struct gap_tracker *
gap_tracker_new(const struct fm_config *cfg)
{
	json_t *re = fm_config_get(cfg, "replay_endpoints"), *v;
	struct gap_tracker *gt;
	const char *name;

	if (!json_is_object(re) || json_object_size(re) == 0)
		return NULL;
	if ((gt = calloc(1, sizeof(*gt))) == NULL ||
	    (gt->t = calloc(json_object_size(re), sizeof(*gt->t))) == NULL)
		goto oom;
	gt->ctx = zep_context(cfg);
	gt->lim = cfg->limits;
	gt->default_timeout_ms = cfg->timeout > 0 && cfg->timeout < 86400 ?
	    (int)(cfg->timeout * 1000) : 2000;
	atomic_init(&gt->missed, 0);
	atomic_init(&gt->recovered, 0);
	json_object_foreach(re, name, v) {
		struct tracked *t = &gt->t[gt->n];

		if (!json_is_string(v)) {
			log_warn("replay_endpoints[%s] is not a URL; ignored",
			    name);
			continue;
		}
		gt->n++;
		if ((t->name = strdup(name)) == NULL ||
		    (t->url = strdup(json_string_value(v))) == NULL ||
		    (t->connect = connect_url(t->url)) == NULL)
			goto oom;
	}
	if (gt->n == 0) {
		gap_tracker_free(gt);
		return NULL;
	}
	return gt;
oom:
	log_err("gap tracking: out of memory; replay is off");
	gap_tracker_free(gt);
	return NULL;
}

void
gap_tracker_free(struct gap_tracker *gt)
{
	size_t i;

	if (gt == NULL)
		return;
	for (i = 0; i < gt->n; i++) {
		free(gt->t[i].name);
		free(gt->t[i].url);
		free(gt->t[i].connect);
	}
	free(gt->t);
	free(gt);
}

void
gap_stats(const struct gap_tracker *gt, uint64_t *missed, uint64_t *recovered)
{
	if (missed)
		*missed = gt ? atomic_load(&gt->missed) : 0;
	if (recovered)
		*recovered = gt ? atomic_load(&gt->recovered) : 0;
}

/*
 * Ask t's replay endpoint for [first, last] (at most GAP_MAX_REQUEST) and
 * keep the messages of that range, in "i" order, one per "i" (the first
 * the server sent).  Returns their count or -1 (logged).
 */
static ssize_t
fetch(struct gap_tracker *gt, struct tracked *t, int64_t first, int64_t last,
    int timeout_ms, struct fm_msg ***out)
{
	char query[80], why[FM_ERRLEN] = "", skip1[FM_ERRLEN] = "";
	size_t span = (size_t)((uint64_t)last - (uint64_t)first) + 1;
	struct fm_msg **slot;
	size_t frames = 0, skipped = 0, k, w;
	int linger = 0;
	int64_t maxmsg = (int64_t)(gt->lim.max_message_bytes ?
	    gt->lim.max_message_bytes : FM_DEFAULT_MAX_MESSAGE_BYTES);
	int64_t deadline = clock_ms() + timeout_ms;
	void *sock = NULL;
	bool more = true;
	int n, rc;

	if ((slot = calloc(span, sizeof(*slot))) == NULL) {
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	if (gt->ctx == NULL || (sock = zmq_socket(gt->ctx, ZMQ_REQ)) == NULL) {
		snprintf(why, sizeof(why), "socket: %s", zmq_strerror(errno));
		goto fail;
	}
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	if (zmq_connect(sock, t->connect) < 0) {
		snprintf(why, sizeof(why), "connect: %s", zmq_strerror(errno));
		goto fail;
	}
	/* fedmsg's canonical JSON of {"seq_id_range": [first, last]} */
	n = snprintf(query, sizeof(query), "{\"seq_id_range\":[%" PRId64 ",%"
	    PRId64 "]}", first, last);
	if (zmq_send(sock, query, (size_t)n, ZMQ_DONTWAIT) < 0) {
		snprintf(why, sizeof(why), "send: %s", zmq_strerror(errno));
		goto fail;
	}
	for (;;) {
		zmq_pollitem_t pi = { sock, 0, ZMQ_POLLIN, 0 };
		int64_t left = deadline - clock_ms();

		rc = zmq_poll(&pi, 1, left > 0 ? (long)left : 0);
		if (rc > 0)
			break;
		if (rc == 0 || left <= 0) {
			snprintf(why, sizeof(why), "no answer within %d ms",
			    timeout_ms);
			goto fail;
		}
		if (errno != EINTR) {
			snprintf(why, sizeof(why), "poll: %s",
			    zmq_strerror(errno));
			goto fail;
		}
	}
	/* The frames of one reply arrive together. */
	while (more) {
		zmq_msg_t m;
		struct fm_msg *msg;
		char perr[FM_ERRLEN];
		int64_t i;
		size_t len;
		const char *data;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			snprintf(why, sizeof(why), "receive: %s",
			    zmq_strerror(errno));
			goto fail;
		}
		more = zmq_msg_more(&m);
		data = zmq_msg_data(&m);
		len = zmq_msg_size(&m);
		frames++;
		if (frames == 1 && !more && len >= 7 &&
		    memcmp(data, "error: ", 7) == 0) {
			snprintf(why, sizeof(why), "%.*s", (int)(len > 200 ?
			    200 : len), data);
			zmq_msg_close(&m);
			goto fail;
		}
		rc = fm_msg_parse(data, len, &gt->lim, &msg, perr);
		zmq_msg_close(&m);
		if (rc == 0 && fm_msg_seq(msg, &i) && i >= first && i <= last) {
			k = (size_t)((uint64_t)i - (uint64_t)first);
			if (slot[k] == NULL) {
				slot[k] = msg;
				continue;
			}
			snprintf(perr, sizeof(perr), "a second message %"
			    PRId64, i);
		} else if (rc == 0) {
			snprintf(perr, sizeof(perr), "not in [%" PRId64 ", %"
			    PRId64 "]", first, last);
		}
		fm_msg_unref(msg);
		if (skipped++ == 0)
			snprintf(skip1, sizeof(skip1), "frame %zu: %s", frames,
			    perr);
	}
	zmq_close(sock);
	if (skipped > 0)
		log_warn("replay from %s (%s): %zu of %zu reply frame(s) "
		    "skipped; first: %s", t->name, t->url, skipped, frames,
		    skip1);
	for (k = 0, w = 0; k < span; k++)
		if (slot[k] != NULL)
			slot[w++] = slot[k];
	if (w == 0) {
		free(slot);
		slot = NULL;
	}
	*out = slot;
	return (ssize_t)w;
fail:
	if (sock != NULL)
		zmq_close(sock);
	for (k = 0; slot != NULL && k < span; k++)
		fm_msg_unref(slot[k]);
	free(slot);
	log_warn("replay from %s (%s) failed: %s", t->name, t->url, why);
	return -1;
}

ssize_t
gap_check(struct gap_tracker *gt, const char *name, const struct fm_msg *msg,
    int timeout_ms, struct fm_msg ***missing)
{
	struct tracked *t = NULL;
	int64_t i, first;
	uint64_t gap, lost = 0;
	ssize_t n;
	size_t k;

	*missing = NULL;
	if (gt == NULL || name == NULL || !fm_msg_seq(msg, &i))
		return 0;
	for (k = 0; k < gt->n && t == NULL; k++)
		if (strcmp(gt->t[k].name, name) == 0)
			t = &gt->t[k];
	if (t == NULL)
		return 0;
	if (!t->known || (t->last < INT64_MAX && i == t->last + 1)) {
		t->known = true;
		t->last = i;
		return 0;
	}
	if (i == t->last)
		return 0;		/* a duplicate */
	if (i < t->last) {
		log_info("%s restarted: message %" PRId64 " after %" PRId64
		    "; tracking it again", name, i, t->last);
		t->last = i;
		return 0;
	}
	/* i > last + 1; the difference fits in uint64_t */
	gap = (uint64_t)i - (uint64_t)t->last - 1;
	first = t->last + 1;
	t->last = i;
	atomic_fetch_add(&gt->missed, gap);
	if (gap > GAP_MAX_REQUEST) {
		lost = gap - GAP_MAX_REQUEST;
		first = i - GAP_MAX_REQUEST;
		log_warn("%s: %" PRIu64 " messages missed; asking for the "
		    "newest %d only", name, gap, GAP_MAX_REQUEST);
	}
	log_debug("%s: messages %" PRId64 "..%" PRId64 " missed; asking %s",
	    name, first, i - 1, t->url);
	n = fetch(gt, t, first, i - 1, timeout_ms < 0 ?
	    gt->default_timeout_ms : timeout_ms, missing);
	if (n < 0)
		return -1;
	atomic_fetch_add(&gt->recovered, (uint64_t)n);
	if ((uint64_t)n < gap - lost)
		log_warn("%s: %" PRIu64 " of %" PRIu64 " missed messages "
		    "could not be replayed", name, gap - lost - (uint64_t)n,
		    gap - lost);
	return n;
}
