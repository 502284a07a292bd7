/*
 * The relay's worker threads (relay.h, --threads N): validation and/or
 * signing on N threads, results handed back in the order the messages
 * arrived.
 *
 * The socket thread adds each message it read to a ring of bounded size;
 * each goes to the worker with the least work outstanding, so one busy
 * topic spreads over every worker.  A message leaves the ring, in arrival
 * order, once it and every message before it were checked.  The ring is
 * the only queue between the threads: when it is full the socket thread
 * stops reading, and ZeroMQ's high-water marks apply as with one thread.
 *
 * All calls are made by the socket thread.  Messages cross to the workers
 * as pointers in batches (one ZeroMQ message per worker per flush, one
 * back per batch); the messages themselves are immutable.
 */
#ifndef FM_RELAY_POOL_H
#define FM_RELAY_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fedmsg/crypto.h>
#include <fedmsg/message.h>

#include "relay.h"
#include "zep.h"

/* --threads beyond this many are this many. */
#define RELAY_POOL_MAX_THREADS	64

struct relay_pool;

/*
 * Validate and/or sign one message, on whichever thread: the message to
 * forward (a reference the caller owns) or NULL when it is dropped, counted
 * in *invalid or *sign_failed and logged.  Takes the reference to m.
 */
struct fm_msg *relay_check(const struct relay_opts *o, struct fm_validator *v,
    struct fm_msg *m, uint64_t *invalid, uint64_t *sign_failed);

/*
 * Start `threads` workers (at least 2) on the ZeroMQ context ctx, checking
 * with v (may be NULL: sign only; borrowed, thread-safe) and o->signer.
 * NULL on failure, with a reason in err.
 */
struct relay_pool *relay_pool_new(void *ctx, unsigned threads,
    const struct relay_opts *o, struct fm_validator *v, char *err);

/* How many more messages relay_pool_add() takes now (0: the ring is full). */
size_t relay_pool_room(const struct relay_pool *p);

/*
 * Queue m (the pool takes the reference) for a worker.  f: the frames it
 * came in, taken by the pool to send again unchanged, or NULL (signing:
 * the message changes).  Requires relay_pool_room() > 0.  A worker gets
 * what was added for it at relay_pool_flush(), or at once when that makes
 * a full batch (128).
 */
void relay_pool_add(struct relay_pool *p, struct fm_msg *m,
    struct zep_frames *f);

/* Hand what was added since the last flush to the workers. */
void relay_pool_flush(struct relay_pool *p);

/* The socket whose POLLIN says results came back (for zmq_poll). */
void *relay_pool_results(struct relay_pool *p);

/* Take in the results that came back, without waiting. */
void relay_pool_collect(struct relay_pool *p);

/*
 * The oldest message if it and all before it are checked.  Returns true
 * with *m set: the message to forward (the caller takes the reference),
 * or NULL when it was dropped; *unchanged true when *f holds the frames it
 * came in, for the caller to send or close.  False: none is ready.
 */
bool relay_pool_next(struct relay_pool *p, struct fm_msg **m,
    struct zep_frames *f, bool *unchanged);

/*
 * Stop the workers once everything flushed to them is checked (what was
 * added and not flushed is flushed first), and collect their results:
 * relay_pool_next() then returns all of them.  Adds the workers' counts
 * of invalid and unsignable messages to *invalid and *sign_failed.
 */
void relay_pool_stop(struct relay_pool *p, uint64_t *invalid,
    uint64_t *sign_failed);

/* Stop (if not yet) and free, dropping anything not taken.  NULL is fine. */
void relay_pool_free(struct relay_pool *p);

#endif
