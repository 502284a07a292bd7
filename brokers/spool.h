/*
 * A disk spool: messages accepted from a source (ZeroMQ) wait here until
 * the broker has taken them (AMQP accepted outcome, STOMP RECEIPT), so a
 * broker outage or a kill -9 of the bridge loses nothing accepted.
 *
 * Records are appended to segment files in DIR and handed out in order;
 * each is acknowledged by id when the broker confirmed it.  Everything not
 * yet acknowledged when the process dies is handed out again after
 * spool_open(): delivery is at-least-once, and receivers de-duplicate by
 * msg_id.  The spool is bounded by max_bytes: when full, the policy says
 * whether the oldest pending records or the new one are dropped (counted
 * and logged).  Single-threaded: one owner thread calls everything.
 *
 * What survives what:
 *  - spool_close() then spool_open(): the unacknowledged records (and
 *    nothing else, unless out-of-order acks left over 4096 gaps: below).
 *  - The process killed (kill -9, crash): every record whose
 *    spool_append() returned 0 and that was not acknowledged; also some
 *    acknowledged ones, those acked in the last 100 ms or so (progress is
 *    written to DIR/acked at most every 100 ms, on the next spool call),
 *    and a record whose append returned -1 but whose write could not be
 *    undone, if the kill came before that next write of DIR/acked.
 *    Without fsync_each the data is in the page cache, which the kernel
 *    writes out whatever happens to the process.
 *  - Power loss or a kernel crash: the same with fsync_each (each append
 *    is fdatasync()ed before it returns); without, recent appends (and
 *    acknowledgements) may be lost, never mixed up: a torn or corrupt
 *    record is detected by its CRC and skipped.
 * Records damaged on disk are skipped and counted (stats.corrupt), at open
 * or when read.  Acknowledgements out of order are recorded as up to 4096
 * ranges above the oldest pending record; beyond that they may come back
 * after a restart.
 *
 * Ids start at 1 and increase, across restarts too (only the id of a
 * record lost in a power loss without fsync_each may be given out again).
 *
 * Disk: segments of max_bytes / 8 (at least 4 KiB, at most 8 MiB); a
 * segment is deleted once none of its records is pending, so with acks in
 * rough order the files take at most about max_bytes plus one segment.
 * One pending record keeps its whole segment on disk.  DIR is flock()ed:
 * a second spool_open() of it fails until the first is closed.
 *
 * Why not LMDB: measured on this workload it is at par without fsync and
 * slower with it, and it lacks the bounded size with a drop policy, the
 * torn-record detection without fsync and the directory-descriptor
 * safety above (tests/bench/README, `make bench-spool`).
 */
#ifndef FM_SPOOL_H
#define FM_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spool;

enum spool_full {
	SPOOL_DROP_OLDEST,	/* keep the newest messages */
	SPOOL_DROP_NEW,		/* keep what is already spooled */
};

/* Counts since spool_open(); pending and bytes are current. */
struct spool_stats {
	uint64_t	 appended;
	uint64_t	 acked;
	uint64_t	 dropped;	/* because the spool was full */
	uint64_t	 corrupt;	/* torn/corrupt records skipped */
	uint64_t	 pending;	/* not yet acknowledged */
	uint64_t	 bytes;		/* in segment files on disk */
};

/*
 * Open (creating DIR if needed) and recover what a previous run left.
 * max_bytes bounds the pending records, 20 bytes of header each included
 * (a record can have up to max_bytes - 20 bytes of data).  Returns NULL
 * with a reason in err[256] (DIR cannot be made or read, is in use, I/O).
 */
struct spool *spool_open(const char *dir, uint64_t max_bytes,
    enum spool_full policy, bool fsync_each, char *err);
void spool_close(struct spool *sp);

/*
 * Append one record (copied).  Returns 0 and its id (increasing), 1 when
 * the record was dropped because the spool is full (DROP_NEW), or -1 on an
 * I/O error (ENOSPC, EIO: err[256] names the file) or when the record is
 * larger than the spool can ever hold; then nothing was spooled.  With
 * DROP_OLDEST, the oldest pending records are dropped to make room (as if
 * acknowledged; acking them later is harmless).
 */
int spool_append(struct spool *sp, const void *data, size_t len, uint64_t *id,
    char *err);

/* One record for spool_append_all(). */
struct spool_rec {
	const void	*data;
	size_t		 len;
};

#define SPOOL_APPEND_MAX	64	/* records per write, at most */

/*
 * Append n records (copied) as spool_append() would one by one: rcs[i]
 * and ids[i] are what it returns for recs[i] (err[256]: the last error).
 * Records that fit in the current segment go in one write of up to
 * SPOOL_APPEND_MAX records (and one fdatasync with fsync_each); when that
 * write fails (a nearly full disk) it is undone and the records go one by
 * one, so the outcome is that of spool_append() for each; a write that
 * cannot be undone (ftruncate() fails too) spools none of them (-1).
 */
void spool_append_all(struct spool *sp, const struct spool_rec *recs,
    size_t n, uint64_t *ids, int *rcs, char *err);

/*
 * The next record not yet handed out since open (or since spool_rewind),
 * in id order.  Returns 1 with a pointer valid until the next spool call,
 * 0 when none is waiting, -1 on error (a read failed; the same record is
 * tried again at the next call).  Acknowledged records are not handed out.
 */
int spool_next(struct spool *sp, uint64_t *id, const void **data, size_t *len,
    char *err);

/* Hand out every unacknowledged record again (after a reconnect). */
void spool_rewind(struct spool *sp);

/*
 * Hand out record id (just taken with spool_next) again at the next
 * spool_next, and the ones after it: the broker had no room for it.
 * Records before id that are handed out stay handed out.
 */
void spool_unnext(struct spool *sp, uint64_t id);

/*
 * The broker has it.  Out-of-order acks are fine; acking an id that is not
 * pending (acked already, dropped, unknown) does nothing.  Returns -1 when
 * recording progress on disk failed (err[256]); the ack itself stands.
 */
int spool_ack(struct spool *sp, uint64_t id, char *err);

void spool_stats(const struct spool *sp, struct spool_stats *st);

#endif
