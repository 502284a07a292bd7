/*
 * The relay's worker threads, results in arrival order (relay_pool.h).
 *
 * Sharding by topic kept each topic's order but put a one-topic stream
 * (the usual burst: one busy service) on a single worker, so more threads
 * did not make it faster.  Any worker may now take any message; the ring
 * puts the results back in order, which keeps more than each topic's
 * order: the relay's output is its input, less what was dropped.
 *
 * Pointers cross in batches, not one by one: a hand-off per message cost
 * a wake-up of the other thread each, which made 2 threads slower than 1.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "relay_pool.h"

#define BATCH		128	/* slot pointers in one hand-off at most */
/* Messages in the ring per worker: enough that a worker finds its next
   batch queued when it finishes one (a batch is 2 ms of verifying), few
   enough to bound the memory and the bursts the ring releases at once
   (a PUB drops above its high-water mark, 1000 by default). */
#define SLOTS_PER_WORKER (2 * BATCH)

/* One message in the ring.  Only the socket thread touches a slot, except
   m while its worker holds it (between the hand-off and the hand-back). */
struct slot {
	struct fm_msg		*m;	/* in: to check; then the result, NULL
					   when dropped */
	struct zep_frames	 f;	/* the frames it came in ... */
	bool			 unchanged;	/* ... when this is true */
	bool			 done;		/* back from its worker */
	unsigned		 worker;
};

struct worker {
	pthread_t		 thread;
	bool			 started;
	void			*feed;		/* PAIR, the socket thread's end */
	void			*in;		/* PAIR, the worker's end */
	void			*back;		/* PUSH: to the socket thread */
	const struct relay_opts	*o;
	struct fm_validator	*v;
	/* the worker's own counters, read after the join */
	uint64_t		 invalid, sign_failed;
	/* the socket thread's: added and not flushed; flushed, not back */
	struct slot		*pending[BATCH];
	size_t			 npending, outstanding;
};

struct relay_pool {
	struct worker		 w[RELAY_POOL_MAX_THREADS];
	size_t			 nw;
	void			*back;		/* PULL: results */
	struct slot		*ring;
	size_t			 cap, head, count;
	bool			 stopped;
};

struct fm_msg *
relay_check(const struct relay_opts *o, struct fm_validator *v,
    struct fm_msg *m, uint64_t *invalid, uint64_t *sign_failed)
{
	char err[FM_ERRLEN];
	struct fm_msg *out;

	if (v && fm_validator_check(v, m, err) != FM_VALID) {
		(*invalid)++;
		log_warn("dropped invalid message %s on %s: %s",
		    fm_msg_id(m) ? fm_msg_id(m) : "-", fm_msg_topic(m), err);
		fm_msg_unref(m);
		return NULL;
	}
	if (o->signer == NULL)
		return m;
	if (fm_signer_sign(o->signer, m, &out, err) < 0) {
		(*sign_failed)++;
		log_warn("cannot sign %s: %s", fm_msg_id(m) ?
		    fm_msg_id(m) : "-", err);
		out = NULL;
	}
	fm_msg_unref(m);
	return out;
}

/* zmq_send, again after a signal. */
static int
send_all(void *s, const void *buf, size_t len)
{
	int rc;

	while ((rc = zmq_send(s, buf, len, 0)) < 0 && errno == EINTR)
		;
	return rc;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct slot *batch[BATCH];

	for (;;) {
		int n = zmq_recv(w->in, batch, sizeof(batch), 0);
		size_t i, count;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || n % (int)sizeof(batch[0]) != 0 ||
		    n > (int)sizeof(batch) || batch[0] == NULL)
			break;		/* a NULL pointer: stop */
		count = (size_t)n / sizeof(batch[0]);
		for (i = 0; i < count; i++)
			batch[i]->m = relay_check(w->o, w->v, batch[i]->m,
			    &w->invalid, &w->sign_failed);
		/* Only a terminated context refuses; relay_pool_free() then
		   drops what never came back. */
		if (send_all(w->back, batch, (size_t)n) < 0)
			break;
	}
	return NULL;
}

struct relay_pool *
relay_pool_new(void *ctx, unsigned threads, const struct relay_opts *o,
    struct fm_validator *v, char *err)
{
	struct relay_pool *p;
	char url[64];
	size_t i;
	int rc;

	if (threads > RELAY_POOL_MAX_THREADS)
		threads = RELAY_POOL_MAX_THREADS;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->ring = calloc((size_t)threads * SLOTS_PER_WORKER,
	    sizeof(*p->ring))) == NULL) {
		free(p);
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	p->cap = (size_t)threads * SLOTS_PER_WORKER;
	snprintf(url, sizeof(url), "inproc://relay-pool-%p", (void *)p);
	if ((p->back = zmq_socket(ctx, ZMQ_PULL)) == NULL ||
	    zmq_bind(p->back, url) < 0)
		goto fail;
	for (i = 0; i < threads; i++) {
		struct worker *w = &p->w[i];
		char wurl[96];

		p->nw = i + 1;
		w->o = o;
		w->v = v;
		snprintf(wurl, sizeof(wurl), "%s-%zu", url, i);
		w->feed = zmq_socket(ctx, ZMQ_PAIR);
		w->in = zmq_socket(ctx, ZMQ_PAIR);
		w->back = zmq_socket(ctx, ZMQ_PUSH);
		if (w->feed == NULL || w->in == NULL || w->back == NULL)
			goto fail;
		/* the ring bounds what is in flight, not these */
		zmq_setsockopt(w->feed, ZMQ_SNDHWM, &(int){ 0 }, sizeof(int));
		zmq_setsockopt(w->back, ZMQ_SNDHWM, &(int){ 0 }, sizeof(int));
		if (zmq_bind(w->feed, wurl) < 0 ||
		    zmq_connect(w->in, wurl) < 0 ||
		    zmq_connect(w->back, url) < 0)
			goto fail;
		if ((rc = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
			errno = rc;	/* pthread_create returns it */
			goto fail;
		}
		w->started = true;
	}
	return p;
fail:
	snprintf(err, FM_ERRLEN, "cannot start worker thread %zu of %u: %s",
	    p->nw, threads, zmq_strerror(errno));
	relay_pool_free(p);
	return NULL;
}

size_t
relay_pool_room(const struct relay_pool *p)
{
	return p->stopped ? 0 : p->cap - p->count;
}

/* Hand worker w its pending slots; if that fails, they are dropped. */
static void
flush_worker(struct worker *w)
{
	size_t i;

	if (w->npending == 0)
		return;
	if (send_all(w->feed, w->pending, w->npending * sizeof(w->pending[0]))
	    < 0) {
		log_warn("cannot hand %zu messages to a worker: %s; dropped",
		    w->npending, zmq_strerror(errno));
		for (i = 0; i < w->npending; i++) {
			fm_msg_unref(w->pending[i]->m);
			w->pending[i]->m = NULL;
			w->pending[i]->done = true;
		}
	} else {
		w->outstanding += w->npending;
	}
	w->npending = 0;
}

void
relay_pool_add(struct relay_pool *p, struct fm_msg *m, struct zep_frames *f)
{
	struct slot *s = &p->ring[(p->head + p->count) % p->cap];
	struct worker *w = &p->w[0];
	size_t i;

	/* the worker with the least work queued: batches stay even */
	for (i = 1; i < p->nw; i++)
		if (p->w[i].outstanding + p->w[i].npending <
		    w->outstanding + w->npending)
			w = &p->w[i];
	s->m = m;
	s->unchanged = f != NULL;
	if (f)
		s->f = *f;
	s->done = false;
	s->worker = (unsigned)(w - p->w);
	p->count++;
	w->pending[w->npending++] = s;
	if (w->npending == BATCH)
		flush_worker(w);
}

void
relay_pool_flush(struct relay_pool *p)
{
	size_t i;

	for (i = 0; i < p->nw; i++)
		flush_worker(&p->w[i]);
}

void *
relay_pool_results(struct relay_pool *p)
{
	return p->back;
}

void
relay_pool_collect(struct relay_pool *p)
{
	struct slot *batch[BATCH];
	int n;

	while ((n = zmq_recv(p->back, batch, sizeof(batch), ZMQ_DONTWAIT)) > 0) {
		size_t i, count = (size_t)n / sizeof(batch[0]);

		for (i = 0; i < count; i++) {
			batch[i]->done = true;
			p->w[batch[i]->worker].outstanding--;
		}
	}
}

bool
relay_pool_next(struct relay_pool *p, struct fm_msg **m, struct zep_frames *f,
    bool *unchanged)
{
	while (p->count && p->ring[p->head].done) {
		struct slot *s = &p->ring[p->head];

		p->head = (p->head + 1) % p->cap;
		p->count--;
		s->done = false;
		if (s->m == NULL) {		/* dropped */
			if (s->unchanged)
				zep_frames_close(&s->f);
			continue;
		}
		*m = s->m;
		s->m = NULL;
		*unchanged = s->unchanged;
		if (s->unchanged)
			*f = s->f;
		return true;
	}
	return false;
}

void
relay_pool_stop(struct relay_pool *p, uint64_t *invalid, uint64_t *sign_failed)
{
	struct slot *none = NULL;
	size_t i;

	if (p->stopped)
		return;
	relay_pool_flush(p);
	/* each worker finishes what is queued before the NULL */
	for (i = 0; i < p->nw; i++) {
		struct worker *w = &p->w[i];

		if (w->started) {
			/* refused only by a terminated context, on which the
			   worker's own receive fails and it ends as well */
			(void)send_all(w->feed, &none, sizeof(none));
			pthread_join(w->thread, NULL);
			w->started = false;
		}
		*invalid += w->invalid;
		*sign_failed += w->sign_failed;
		w->invalid = w->sign_failed = 0;
	}
	relay_pool_collect(p);
	p->stopped = true;
}

void
relay_pool_free(struct relay_pool *p)
{
	uint64_t invalid = 0, sign_failed = 0;
	size_t i, lost = 0;

	if (p == NULL)
		return;
	relay_pool_stop(p, &invalid, &sign_failed);
	for (; p->count; p->count--, p->head = (p->head + 1) % p->cap) {
		struct slot *s = &p->ring[p->head];

		lost += !s->done;
		fm_msg_unref(s->m);
		if (s->unchanged)
			zep_frames_close(&s->f);
	}
	if (lost)
		log_warn("%zu messages never came back from a worker", lost);
	for (i = 0; i < p->nw; i++) {
		zep_close_now(p->w[i].feed);
		zep_close_now(p->w[i].in);
		zep_close_now(p->w[i].back);
	}
	zep_close_now(p->back);
	free(p->ring);
	free(p);
}
