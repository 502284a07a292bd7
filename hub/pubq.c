/*
 * Per-address publish FIFOs (pubq.h).  Few addresses (one per topic a
 * consumer publishes on, at most max_addresses with something waiting;
 * an emptied FIFO is freed), so a plain array searched linearly.
 */
#include <stdlib.h>
#include <string.h>

#include "pubq.h"

struct waiting {
	struct fm_msg	*msg;		/* a reference of ours */
	uint64_t	 seq;
	struct waiting	*next;
};

struct fifo {
	char		*address;
	struct waiting	*head, *tail;
	size_t		 n;
};

struct pubq {
	struct fifo	*fifos;
	size_t		 nfifos, cap;
	size_t		 per_address, max_addresses, total;
};

struct pubq *
pubq_new(size_t per_address, size_t max_addresses)
{
	struct pubq *q = calloc(1, sizeof(*q));

	if (q) {
		q->per_address = per_address;
		q->max_addresses = max_addresses;
	}
	return q;
}

static struct fifo *
find(const struct pubq *q, const char *address)
{
	size_t i;

	for (i = 0; i < q->nfifos; i++)
		if (strcmp(q->fifos[i].address, address) == 0)
			return &q->fifos[i];
	return NULL;
}

/* address's FIFO, made if new; NULL when out of memory. */
static struct fifo *
fifo_for(struct pubq *q, const char *address)
{
	struct fifo *f = find(q, address);

	if (f)
		return f;
	if (q->nfifos == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 8;
		struct fifo *p = realloc(q->fifos, cap * sizeof(*p));

		if (p == NULL)
			return NULL;
		q->fifos = p;
		q->cap = cap;
	}
	f = &q->fifos[q->nfifos];
	memset(f, 0, sizeof(*f));
	if ((f->address = strdup(address)) == NULL)
		return NULL;
	q->nfifos++;
	return f;
}

/* Insert in seq order: at the tail for a new publish, nearer the head
 * for one put back. */
static int
insert(struct pubq *q, struct fifo *f, struct fm_msg *msg, uint64_t seq)
{
	struct waiting *w = calloc(1, sizeof(*w)), **pp;

	if (w == NULL)
		return -2;
	w->msg = fm_msg_ref(msg);
	w->seq = seq;
	if (f->tail == NULL || f->tail->seq < seq) {
		if (f->tail)
			f->tail->next = w;
		else
			f->head = w;
		f->tail = w;
	} else {
		for (pp = &f->head; *pp && (*pp)->seq < seq; pp = &(*pp)->next)
			;
		w->next = *pp;
		*pp = w;
	}
	f->n++;
	q->total++;
	return 0;
}

int
pubq_push(struct pubq *q, const char *address, struct fm_msg *msg,
    uint64_t seq)
{
	struct fifo *f = find(q, address);

	if (f && f->n >= q->per_address)
		return -1;
	if (f == NULL && q->nfifos >= q->max_addresses)
		return -3;
	if ((f = fifo_for(q, address)) == NULL)
		return -2;
	return insert(q, f, msg, seq);
}

int
pubq_requeue(struct pubq *q, const char *address, struct fm_msg *msg,
    uint64_t seq)
{
	struct fifo *f = fifo_for(q, address);

	return f ? insert(q, f, msg, seq) : -2;
}

size_t
pubq_waiting(const struct pubq *q, const char *address)
{
	const struct fifo *f = find(q, address);

	return f ? f->n : 0;
}

size_t
pubq_len(const struct pubq *q)
{
	return q->total;
}

/* Take the head of f off (its reference released). */
static void
pop(struct pubq *q, struct fifo *f)
{
	struct waiting *w = f->head;

	f->head = w->next;
	if (f->head == NULL)
		f->tail = NULL;
	f->n--;
	q->total--;
	fm_msg_unref(w->msg);
	free(w);
}

size_t
pubq_flush(struct pubq *q, pubq_send_fn send, void *ctx)
{
	size_t i;

	for (i = 0; i < q->nfifos && q->total; i++) {
		struct fifo *f = &q->fifos[i];

		while (f->head) {
			enum pubq_try t = send(ctx, f->address, f->head->msg,
			    f->head->seq);

			if (t == PUBQ_LATER)
				break;
			pop(q, f);
		}
	}
	/* emptied FIFOs go: what a queue holds stays bounded by what waits */
	for (i = 0; i < q->nfifos; )
		if (q->fifos[i].head == NULL) {
			free(q->fifos[i].address);
			q->fifos[i] = q->fifos[--q->nfifos];
		} else
			i++;
	return q->total;
}

void
pubq_free(struct pubq *q)
{
	size_t i;

	if (q == NULL)
		return;
	for (i = 0; i < q->nfifos; i++) {
		while (q->fifos[i].head)
			pop(q, &q->fifos[i]);
		free(q->fifos[i].address);
	}
	free(q->fifos);
	free(q);
}
