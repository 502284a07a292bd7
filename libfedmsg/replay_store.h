

/*
 * The replay store's insides, shared by replay_store.c (adding, evicting)
 * and replay_query.c (answering queries); replay.h is the interface.
 *
 * The store keeps references to the published messages in arrival order
 * (a FIFO list), bounded by count and body bytes, with three indexes: a
 * sorted array by "i", a sorted array by timestamp (both ordered by
 * arrival among equal keys) and a hash table by msg_id.  Publishers
 * number their messages 1, 2, 3, ... and stamp them with the clock, so
 * both sorted arrays grow at the end and shrink at the front: adding and
 * evicting are O(1) in the usual case and O(n) memmove otherwise.
 */
#ifndef FM_REPLAY_STORE_H
#define FM_REPLAY_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "replay.h"

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

/* Does e sort before the "i" (an int64_t) or timestamp (a double) at key? */
bool replay_seq_before(const struct entry *e, const void *key);
bool replay_ts_before(const struct entry *e, const void *key);
/* The first position of x whose entry does not sort before key. */
size_t replay_sidx_lower(const struct sidx *x,
    bool (*before)(const struct entry *, const void *), const void *key);
/* The msg_id hash (FNV-1a). */
uint64_t replay_hash(const char *s, size_t n);

#endif
