/* The bounded store of recent messages (replay_store.h, replay.h). */

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "replay_store.h"

static bool
seq_entry_before(const struct entry *e, const void *key)
{
	const struct entry *k = key;

	return e->seq < k->seq || (e->seq == k->seq && e->arrival < k->arrival);
}

bool
replay_seq_before(const struct entry *e, const void *key)
{
	return e->seq < *(const int64_t *)key;
}

static bool
ts_entry_before(const struct entry *e, const void *key)
{
	const struct entry *k = key;

	return e->ts < k->ts || (e->ts == k->ts && e->arrival < k->arrival);
}

bool
replay_ts_before(const struct entry *e, const void *key)
{
	return e->ts < *(const double *)key;
}

/* The first position whose entry does not sort before key. */
size_t
replay_sidx_lower(const struct sidx *x,
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
		pos = replay_sidx_lower(x, x->before, e);
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
		pos = replay_sidx_lower(x, x->before, e);
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
uint64_t
replay_hash(const char *s, size_t n)
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
		e->id_hash = replay_hash(id, strlen(id));

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
