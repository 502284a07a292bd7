/*
 * fedmsg's replay query language over the store (replay.h): seq_id,
 * seq_ids, seq_id_range (answered against "i"), msg_id, msg_ids, time.
 */

#include <sys/types.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "replay_store.h"

static const char no_match[] = "There was no match for the given query";

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
	for (p = replay_sidx_lower(x, replay_seq_before, &lo);
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
	for (e = st->ids[replay_hash(v->u.str, v->len) & (st->nids - 1)]; e;
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
	for (p = replay_sidx_lower(x, replay_ts_before, &lo);
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
