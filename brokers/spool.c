/*
 * A crash-safe bounded disk spool (spool.h).
 *
 * In DIR:
 *   seg-<16 hex digits>.log  segments, named by the first id they may hold;
 *                            records are only ever appended to the last one
 *   acked                    what is done: every id below W, and ranges above
 *   acked.tmp                the former being rewritten (renamed over it)
 *   (the directory itself is flock()ed by its owner)
 *
 * A record is a 20-byte header, little-endian, then the data:
 *   magic u32, len u32 (of the data), id u64,
 *   crc u32 (CRC-32C of the len and id fields, then the data).
 * DIR/acked, little-endian: magic u32, W u64, next u64 (the next id then),
 * n u32, n ranges [start u64, end u64) of done ids above W in order, crc u32
 * (CRC-32C of everything before it).  "Done" is acked, dropped or skipped
 * as corrupt.
 *
 * In memory: the segments (first id, size, count of pending records in
 * it) and a ring of index entries (id, offset, length) sorted by id, from
 * the oldest pending record on.  Acked entries after the first pending one
 * stay in the ring, marked done, until it is compacted (when they
 * outnumber the pending ones), so the ring is at most about twice the
 * pending count.  The data of the latest appends is kept in one buffer
 * (HOT_BYTES and HOT_RECS at most, max_bytes at most; a record larger than
 * a quarter of it never): a link that keeps up takes each
 * record right after its append, and reading it back from the file cost
 * a pread, a CRC and a copy per message (a tenth of a ZeroMQ -> STOMP
 * bridge's CPU).  Older records are preaded into one buffer as large as
 * the largest record read lately.
 *
 * W is the id of the oldest pending record (the next id when none is); the
 * ranges are the gaps between pending ids (and after the last one), at most
 * MAX_RUNS of them, the lowest.  DIR/acked is rewritten (tmp + rename) when
 * something was done since, at most every PERSIST_MS (checked on every
 * call), when a segment is removed, and at close.  A segment is unlinked as
 * soon as none of its records is pending; the last one (the one appended
 * to) only when nothing at all is pending and it is at least half the roll
 * size, after DIR/acked is written: its "next" keeps ids increasing across
 * restarts.
 *
 * Recovery: segments in id order; a record is whole when its magic, length
 * (within the file), id (increasing, within the range its segment name and
 * the next segment's name allow) and CRC are right.  After a bad record
 * the scan resynchronises on the next whole record (a corrupt region
 * counts once); bytes after the last whole record of a segment (a torn
 * append) are truncated away.  Pending = whole records with id >= W and in
 * none of the ranges.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "crc32c.h"
#include "log.h"
#include "spool.h"

#define ERRLEN		256
#define HDR		20		/* record header bytes */
#define REC_MAGIC	0x5f0c1d9bU
#define ACK_MAGIC	0x6b63a4e8U
#define ACK_FIXED	24		/* magic, W, next, n */
#define MAX_RUNS	4096		/* done ranges above W on disk */
#define ACK_MAX		(ACK_FIXED + 16 * MAX_RUNS + 4)
#define ACK_NAME	"acked"
#define ACK_TMP		"acked.tmp"
#define SEG_NAME_LEN	25		/* "seg-" 16 hex ".log" NUL */
#define SEG_MAX		(8u << 20)	/* roll size, at most ... */
#define SEG_MIN		4096u		/* ... at least; else max_bytes/8 */
#define PERSIST_MS	100
#define FULL_LOG_MS	10000		/* long bursts of drops: sums */
/* A burst of drops ends when an append leaves at most this much pending. */
#define FULL_END(max)	((max) / 4 * 3)
#define COMPACT_SLACK	1024
#define BUF_KEEP	(1u << 20)	/* a larger read buffer may shrink */
#define HOT_BYTES	(4u << 20)	/* latest appends kept in memory, */
#define HOT_RECS	4096u		/* at most (and max_bytes at most) */

struct seg {
	uint64_t	 first;		/* the id in its name */
	uint64_t	 size;		/* bytes of records in the file */
	uint64_t	 live;		/* pending records in it */
};

struct ent {
	uint64_t	 id;
	uint64_t	 off;		/* of the header in its segment */
	uint32_t	 len;		/* of the data */
	bool		 done;		/* acked, dropped, unreadable */
};

struct spool {
	char		*dir;
	int		 dfd;		/* DIR, flock()ed */
	uint64_t	 max_bytes;
	uint64_t	 seg_max;	/* roll size */
	enum spool_full	 policy;
	bool		 fsync_each;

	struct seg	*segs;		/* by first id */
	size_t		 nsegs, segcap;
	int		 afd;		/* the last segment (appended) */
	int		 rfd;		/* another one being read */
	uint64_t	 rfirst;	/* ... its first id */
	bool		 sweep;		/* a segment's live reached 0 */

	struct ent	*ring;		/* by id; [0] is pending */
	size_t		 head, n, cap;	/* cap: 0 or a power of 2 */
	uint64_t	 pending_bytes;	/* headers included */

	uint64_t	 next_id;	/* of the next append */
	uint64_t	 cursor;	/* spool_next() hands out ids >= this */
	uint64_t	 since_persist;	/* done since DIR/acked written */
	uint64_t	 persist_ms;	/* when it was last tried */
	unsigned char	*ackbuf;	/* ACK_MAX bytes */
	bool		 failing;	/* a background write is failing */

	unsigned char	*buf;		/* what spool_next() returned */
	size_t		 bufcap;

	/* the data of ids [hot_first, hot_first + hot_n), in order */
	unsigned char	*hot;		/* hot_cap bytes, or NULL */
	size_t		 hot_cap;
	uint32_t	*hot_off;	/* HOT_RECS + 1 offsets into hot */
	uint64_t	 hot_first;
	uint32_t	 hot_n;

	bool		 full;		/* in a burst of drops */
	uint64_t	 full_n, full_bytes, full_ms;

	struct spool_stats st;
};

static const unsigned char rec_magic[4] = {
	REC_MAGIC & 0xff, (REC_MAGIC >> 8) & 0xff,
	(REC_MAGIC >> 16) & 0xff, REC_MAGIC >> 24,
};

/* ---- helpers ------------------------------------------------------------- */

/* The CRC of a record: its len and id fields, then its data. */
static uint32_t
rec_crc(const unsigned char *hdr, const void *data, size_t len)
{
	return ~crc32c_add(crc32c_add(~0U, hdr + 4, 12), data, len);
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = v >> 24;
}

static void
put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
get64(const unsigned char *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void
seg_name(char *name, uint64_t first)
{
	snprintf(name, SEG_NAME_LEN, "seg-%016" PRIx64 ".log", first);
}

/* Is name "seg-<16 lowercase hex>.log"?  Sets *first. */
static bool
seg_parse(const char *name, uint64_t *first)
{
	uint64_t v = 0;
	int i;

	if (strlen(name) != SEG_NAME_LEN - 1 || strncmp(name, "seg-", 4) != 0 ||
	    strcmp(name + 20, ".log") != 0)
		return false;
	for (i = 4; i < 20; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	*first = v;
	return true;
}

/* "DIR[/name]: what: <errno text>" in err; returns -1. */
static int
fail(const struct spool *sp, char *err, const char *name, const char *what)
{
	int e = errno;

	snprintf(err, ERRLEN, "%s%s%s: %s: %s", sp->dir, name ? "/" : "",
	    name ? name : "", what, strerror(e));
	errno = e;
	return -1;
}

/*
 * Open DIR/name (flags: access and O_CREAT/O_EXCL/O_TRUNC): never through a
 * symbolic link (one named like a segment had its target truncated), and
 * only a regular file (O_NONBLOCK: a FIFO must not hang the open).  On
 * failure err is set and errno kept (ENOENT for a missing file).
 */
static int
open_in(const struct spool *sp, const char *name, int flags, char *err,
    const char *what)
{
	struct stat st;
	int fd, e;

	fd = openat(sp->dfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
	    0600);
	if (fd < 0 && errno == ELOOP) {
		snprintf(err, ERRLEN, "%s/%s: a symbolic link where a spool "
		    "file belongs: refused (remove it)", sp->dir, name);
		errno = ELOOP;
		return -1;
	}
	if (fd < 0)
		return fail(sp, err, name, what);
	if (fstat(fd, &st) < 0) {
		e = errno;
		fail(sp, err, name, "fstat");
		close(fd);
		errno = e;
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, ERRLEN, "%s/%s: not a regular file: refused",
		    sp->dir, name);
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

static int
oom(const struct spool *sp, char *err)
{
	snprintf(err, ERRLEN, "%s: out of memory", sp->dir);
	return -1;
}

static int
write_all(int fd, struct iovec *iov, int iovcnt, uint64_t off)
{
	ssize_t n;

	while (iovcnt > 0) {
		if ((n = pwritev(fd, iov, iovcnt, (off_t)off)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		off += (uint64_t)n;
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Bytes read (fewer at the end of the file), or -1. */
static ssize_t
read_all(int fd, void *p, size_t len, uint64_t off)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = pread(fd, (char *)p + got, len - got, (off_t)(off + got));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/*
 * Is there a whole record at off in p[0, size) with lo <= id < hi and
 * id > prev?  Sets *id and *len.
 */
static bool
rec_ok(const unsigned char *p, uint64_t size, uint64_t off, uint64_t lo,
    uint64_t hi, uint64_t prev, uint64_t *id, uint32_t *len)
{
	const unsigned char *h = p + off;

	if (size - off < HDR || get32(h) != REC_MAGIC)
		return false;
	*len = get32(h + 4);
	*id = get64(h + 8);
	if (*len > size - off - HDR || *id < lo || *id >= hi || *id <= prev)
		return false;
	return get32(h + 16) == rec_crc(h, h + HDR, *len);
}

/* ---- the index ----------------------------------------------------------- */

static struct ent *
ent_at(const struct spool *sp, size_t i)
{
	return &sp->ring[(sp->head + i) & (sp->cap - 1)];
}

/* The first index with an id >= id (n if none). */
static size_t
ent_lower(const struct spool *sp, uint64_t id)
{
	size_t lo = 0, hi = sp->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (ent_at(sp, mid)->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
ring_resize(struct spool *sp, size_t cap)
{
	struct ent *v;
	size_t i;

	if ((v = malloc(cap * sizeof(*v))) == NULL)
		return -1;
	for (i = 0; i < sp->n; i++)
		v[i] = *ent_at(sp, i);
	free(sp->ring);
	sp->ring = v;
	sp->head = 0;
	sp->cap = cap;
	return 0;
}

/* Room for k more entries. */
static int
ring_reserve_n(struct spool *sp, size_t k)
{
	size_t cap = sp->cap ? sp->cap : 64;

	while (sp->n + k > cap) {
		if (cap > SIZE_MAX / 2 / sizeof(struct ent))
			return -1;
		cap *= 2;
	}
	return cap == sp->cap ? 0 : ring_resize(sp, cap);
}

static int
ring_reserve(struct spool *sp)
{
	return ring_reserve_n(sp, 1);
}

/* The segment that holds id: the last one whose first id is <= id. */
static size_t
seg_of(const struct spool *sp, uint64_t id)
{
	size_t lo = 0, hi = sp->nsegs, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (sp->segs[mid].first <= id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;	/* lo > 0: entries always have their segment */
}

static int
segs_reserve(struct spool *sp)
{
	struct seg *v;
	size_t cap;

	if (sp->nsegs < sp->segcap)
		return 0;
	cap = sp->segcap ? sp->segcap * 2 : 16;
	if ((v = realloc(sp->segs, cap * sizeof(*v))) == NULL)
		return -1;
	sp->segs = v;
	sp->segcap = cap;
	return 0;
}

/* A pending record in segment si at off: into the index. */
static void
add_pending(struct spool *sp, size_t si, uint64_t id, uint64_t off,
    uint32_t len)
{
	struct ent *e = ent_at(sp, sp->n++);	/* ring_reserve()d */

	e->id = id;
	e->off = off;
	e->len = len;
	e->done = false;
	sp->segs[si].live++;
	sp->st.pending++;
	sp->pending_bytes += HDR + (uint64_t)len;
}

/* A pending record is done (acked, dropped or unreadable). */
static void
forget(struct spool *sp, struct ent *e)
{
	size_t si = seg_of(sp, e->id);

	e->done = true;
	sp->st.pending--;
	sp->pending_bytes -= HDR + (uint64_t)e->len;
	sp->since_persist++;
	if (--sp->segs[si].live == 0)
		sp->sweep = true;
}

/* ---- DIR/acked and segment removal --------------------------------------- */

/*
 * Write DIR/acked: W, the next id, and the gaps between pending ids above
 * W.  Unless forced, only when something was done since the last time.
 */
static int
persist(struct spool *sp, bool force, char *err)
{
	unsigned char *b = sp->ackbuf, *q = b + ACK_FIXED;
	struct iovec iov;
	struct ent *e;
	uint64_t w = sp->next_id, prev = 0;
	uint32_t nruns = 0;
	bool any = false;
	size_t i;
	int fd;

	sp->persist_ms = (uint64_t)clock_ms();
	if (!force && sp->since_persist == 0)
		return 0;
	for (i = 0; i < sp->n && nruns < MAX_RUNS; i++) {
		if ((e = ent_at(sp, i))->done)
			continue;
		if (!any)
			w = e->id;
		else if (e->id > prev + 1) {
			put64(q, prev + 1);
			put64(q + 8, e->id);
			q += 16;
			nruns++;
		}
		prev = e->id;
		any = true;
	}
	if (any && i == sp->n && nruns < MAX_RUNS && sp->next_id > prev + 1) {
		put64(q, prev + 1);
		put64(q + 8, sp->next_id);
		q += 16;
		nruns++;
	}
	put32(b, ACK_MAGIC);
	put64(b + 4, w);
	put64(b + 12, sp->next_id);
	put32(b + 20, nruns);
	put32(q, ~crc32c_add(~0U, b, (size_t)(q - b)));
	iov.iov_base = b;
	iov.iov_len = (size_t)(q - b) + 4;
	if ((fd = open_in(sp, ACK_TMP, O_WRONLY | O_CREAT | O_TRUNC, err,
	    "open")) < 0)
		return -1;
	if (write_all(fd, &iov, 1, 0) < 0 ||
	    (sp->fsync_each && fdatasync(fd) < 0)) {
		fail(sp, err, ACK_TMP, "write");
		close(fd);
		unlinkat(sp->dfd, ACK_TMP, 0);
		return -1;
	}
	if (close(fd) < 0)
		return fail(sp, err, ACK_TMP, "close");
	if (renameat(sp->dfd, ACK_TMP, sp->dfd, ACK_NAME) < 0)
		return fail(sp, err, ACK_NAME, "rename");
	if (sp->fsync_each && fsync(sp->dfd) < 0)
		return fail(sp, err, NULL, "fsync");
	sp->since_persist = 0;
	return 0;
}

static int
maybe_persist(struct spool *sp, char *err)
{
	if (sp->since_persist == 0 ||
	    (uint64_t)clock_ms() - sp->persist_ms < PERSIST_MS)
		return 0;
	return persist(sp, false, err);
}

/* Unlink segment si if none of its records is pending (and may go). */
static int
reclaim(struct spool *sp, size_t si, char *err)
{
	struct seg *s = &sp->segs[si];
	bool active = si == sp->nsegs - 1 && sp->afd >= 0;
	char name[SEG_NAME_LEN];
	int rc;

	if (s->live > 0 || (active && (sp->n > 0 ||
	    s->size < sp->seg_max / 2)))
		return 0;
	/*
	 * Removing done records is always right; DIR/acked first keeps the
	 * ids of the last segment from being reused after a restart.
	 */
	rc = persist(sp, active, err);
	if (rc < 0 && active)
		return -1;
	seg_name(name, s->first);
	if (unlinkat(sp->dfd, name, 0) < 0 && errno != ENOENT)
		rc = fail(sp, err, name, "unlink");
	if (active) {
		close(sp->afd);
		sp->afd = -1;
	}
	if (sp->rfd >= 0 && sp->rfirst == s->first) {
		close(sp->rfd);
		sp->rfd = -1;
	}
	sp->st.bytes -= s->size;
	memmove(s, s + 1, (sp->nsegs - si - 1) * sizeof(*s));
	sp->nsegs--;
	return rc;
}

/* Drop done entries from the index, remove unused segments, persist W. */
static int
tidy(struct spool *sp, char *err)
{
	size_t i, j;
	int rc = 0;

	while (sp->n > 0 && ent_at(sp, 0)->done) {
		sp->head = (sp->head + 1) & (sp->cap - 1);
		sp->n--;
	}
	if (sp->n - sp->st.pending > sp->st.pending + COMPACT_SLACK) {
		for (i = j = 0; i < sp->n; i++)
			if (!ent_at(sp, i)->done)
				*ent_at(sp, j++) = *ent_at(sp, i);
		sp->n = j;
	}
	if (sp->cap > 1024 && sp->n < sp->cap / 4)
		(void)ring_resize(sp, sp->cap / 2);
	if (sp->sweep) {
		sp->sweep = false;
		for (i = sp->nsegs; i-- > 0;)
			if (sp->segs[i].live == 0 && reclaim(sp, i, err) < 0)
				rc = -1;
	}
	if (maybe_persist(sp, err) < 0)
		rc = -1;
	return rc;
}

/* tidy() where a failure must not fail the call: logged once per streak. */
static void
tidy_quiet(struct spool *sp)
{
	char err[ERRLEN];

	if (tidy(sp, err) == 0) {
		sp->failing = false;
		return;
	}
	if (!sp->failing)
		log_warn("spool: %s", err);
	sp->failing = true;
}

/* ---- full ---------------------------------------------------------------- */

static void
full_report(struct spool *sp)
{
	if (sp->full_n)
		log_warn("spool %s: dropped %" PRIu64 " %s records (%" PRIu64
		    " bytes) while full", sp->dir, sp->full_n,
		    sp->policy == SPOOL_DROP_OLDEST ? "old" : "new",
		    sp->full_bytes);
	sp->full_n = sp->full_bytes = 0;
	sp->full_ms = (uint64_t)clock_ms();
}

/* n records of bytes were dropped. */
static void
full_note(struct spool *sp, uint64_t n, uint64_t bytes)
{
	if (!sp->full) {
		sp->full = true;
		sp->full_ms = (uint64_t)clock_ms();
		log_warn("spool %s: full (%" PRIu64 " bytes pending, at most %"
		    PRIu64 "): dropping %s records", sp->dir,
		    sp->pending_bytes, sp->max_bytes,
		    sp->policy == SPOOL_DROP_OLDEST ? "the oldest" : "new");
	}
	sp->full_n += n;
	sp->full_bytes += bytes;
	if ((uint64_t)clock_ms() - sp->full_ms >= FULL_LOG_MS)
		full_report(sp);
}

static void
full_end(struct spool *sp)
{
	if (!sp->full)
		return;
	full_report(sp);
	sp->full = false;
}

/* ---- open ---------------------------------------------------------------- */

static int
mkdirs(struct spool *sp, char *err)
{
	char *p;

	for (p = sp->dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(sp->dir, 0755) < 0 && errno != EEXIST) {
			snprintf(err, ERRLEN, "%s: mkdir: %s", sp->dir,
			    strerror(errno));
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	if (mkdir(sp->dir, 0700) < 0 && errno != EEXIST)
		return fail(sp, err, NULL, "mkdir");
	return 0;
}

/*
 * The spool directory must be ours and writable by us alone: whoever else
 * may write there can plant files (or links) under the names we use.
 * (DIR itself may be a symbolic link: what it points to is checked.)
 */
static int
check_dir(const struct spool *sp, char *err)
{
	struct stat st;

	if (fstat(sp->dfd, &st) < 0)
		return fail(sp, err, NULL, "fstat");
	if (st.st_uid != geteuid()) {
		snprintf(err, ERRLEN, "%s: owned by uid %u, not by this "
		    "process's uid %u: refused", sp->dir, (unsigned)st.st_uid,
		    (unsigned)geteuid());
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, ERRLEN, "%s: group or others may write to it "
		    "(mode %04o): refused (chmod go-w)", sp->dir,
		    (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

/* What a previous run recorded as done (see the top). */
struct recov {
	uint64_t	 w;		/* every id below is done */
	uint64_t	 next;		/* the next id then */
	const unsigned char *runs;	/* nruns [start, end) done ranges */
	uint32_t	 nruns, ri;	/* ri: first not below ids seen */
	uint64_t	 last;		/* the highest id seen */
	bool		 damaged;	/* DIR/acked is to be rewritten */
};

/* DIR/acked into rc (in sp->ackbuf); nothing done when none or damaged. */
static int
read_acked(struct spool *sp, struct recov *rc, char *err)
{
	unsigned char *b = sp->ackbuf;
	uint64_t start, end, prev;
	ssize_t n;
	uint32_t i, nruns;
	int fd;

	memset(rc, 0, sizeof(*rc));
	if ((fd = open_in(sp, ACK_NAME, O_RDONLY, err, "open")) < 0)
		return errno == ENOENT ? 0 : -1;
	n = read_all(fd, b, ACK_MAX, 0);
	if (n < 0) {
		fail(sp, err, ACK_NAME, "read");
		close(fd);
		return -1;
	}
	close(fd);
	if (n < ACK_FIXED + 4 || get32(b) != ACK_MAGIC ||
	    (nruns = get32(b + 20)) > MAX_RUNS ||
	    (size_t)n != ACK_FIXED + 16 * (size_t)nruns + 4 ||
	    get32(b + n - 4) != ~crc32c_add(~0U, b, (size_t)n - 4))
		goto damaged;
	rc->w = get64(b + 4);
	rc->next = get64(b + 12);
	prev = rc->w;
	for (i = 0; i < nruns; i++) {
		start = get64(b + ACK_FIXED + 16 * i);
		end = get64(b + ACK_FIXED + 16 * i + 8);
		if (start < prev || end <= start || end > rc->next)
			goto damaged;
		prev = end;
	}
	rc->runs = b + ACK_FIXED;
	rc->nruns = nruns;
	return 0;
damaged:
	memset(rc, 0, sizeof(*rc));
	rc->damaged = true;
	log_warn("spool %s/%s: damaged; every spooled record will be handed "
	    "out again", sp->dir, ACK_NAME);
	return 0;
}

/* Was id done by a previous run?  Ids come in increasing order. */
static bool
recov_done(struct recov *rc, uint64_t id)
{
	if (id < rc->w)
		return true;
	while (rc->ri < rc->nruns && get64(rc->runs + 16 * rc->ri + 8) <= id)
		rc->ri++;
	return rc->ri < rc->nruns && get64(rc->runs + 16 * rc->ri) <= id;
}

static int
seg_cmp(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

static int
list_segs(struct spool *sp, char *err)
{
	struct dirent *de;
	uint64_t first;
	DIR *d;
	int fd;

	/* the directory checked in spool_open(), not its path again */
	if ((fd = dup(sp->dfd)) < 0 || (d = fdopendir(fd)) == NULL) {
		fail(sp, err, NULL, "opendir");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	rewinddir(d);
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		if (!seg_parse(de->d_name, &first))
			continue;
		if (segs_reserve(sp) < 0) {
			closedir(d);
			return oom(sp, err);
		}
		memset(&sp->segs[sp->nsegs], 0, sizeof(*sp->segs));
		sp->segs[sp->nsegs++].first = first;
	}
	if (errno) {
		fail(sp, err, NULL, "readdir");
		closedir(d);
		return -1;
	}
	closedir(d);
	if (sp->nsegs > 1)
		qsort(sp->segs, sp->nsegs, sizeof(*sp->segs), seg_cmp);
	return 0;
}

/*
 * Index the whole records of segment si not done before; skip corrupt ones
 * and truncate a torn tail.
 */
static int
scan_seg(struct spool *sp, size_t si, int fd, struct recov *rc, char *err)
{
	struct seg *s = &sp->segs[si];
	uint64_t hi = si + 1 < sp->nsegs ? sp->segs[si + 1].first : UINT64_MAX;
	uint64_t size, off = 0, end = 0, from, id;
	unsigned char *p = NULL;
	const unsigned char *q;
	char name[SEG_NAME_LEN];
	struct stat sb;
	uint32_t len;

	seg_name(name, s->first);
	if (fstat(fd, &sb) < 0)
		return fail(sp, err, name, "fstat");
	size = (uint64_t)sb.st_size;
	if (size > 0 && (p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd,
	    0)) == MAP_FAILED)
		return fail(sp, err, name, "mmap");
	while (off < size) {
		if (rec_ok(p, size, off, s->first, hi, rc->last, &id, &len)) {
			if (!recov_done(rc, id)) {
				if (ring_reserve(sp) < 0) {
					munmap(p, size);
					return oom(sp, err);
				}
				add_pending(sp, si, id, off, len);
			}
			rc->last = id;
			off += HDR + (uint64_t)len;
			end = off;
			continue;
		}
		/* resynchronise on the next whole record */
		sp->st.corrupt++;
		from = off;
		for (off++; off < size; off++) {
			q = memmem(p + off, size - off, rec_magic,
			    sizeof(rec_magic));
			if (q == NULL) {
				off = size;
				break;
			}
			off = (uint64_t)(q - p);
			if (rec_ok(p, size, off, s->first, hi, rc->last, &id,
			    &len))
				break;
		}
		if (off < size)
			log_warn("spool %s/%s: %" PRIu64 " corrupt bytes at "
			    "byte %" PRIu64 " skipped", sp->dir, name,
			    off - from, from);
	}
	if (p != NULL)
		munmap(p, size);
	if (end < size) {
		log_warn("spool %s/%s: torn or corrupt tail of %" PRIu64
		    " bytes at byte %" PRIu64 " truncated", sp->dir, name,
		    size - end, end);
		if (ftruncate(fd, (off_t)end) < 0)
			return fail(sp, err, name, "ftruncate");
	}
	s->size = end;
	sp->st.bytes += end;
	return 0;
}

static void
destroy(struct spool *sp)
{
	if (sp->afd >= 0)
		close(sp->afd);
	if (sp->rfd >= 0)
		close(sp->rfd);
	if (sp->dfd >= 0)
		close(sp->dfd);
	free(sp->segs);
	free(sp->ring);
	free(sp->buf);
	free(sp->hot);
	free(sp->hot_off);
	free(sp->ackbuf);
	free(sp->dir);
	free(sp);
}

struct spool *
spool_open(const char *dir, uint64_t max_bytes, enum spool_full policy,
    bool fsync_each, char *err)
{
	struct spool *sp;
	struct recov rc;
	char name[SEG_NAME_LEN];
	size_t i;
	int fd;

	if (max_bytes < HDR) {
		snprintf(err, ERRLEN, "%s: a spool of %" PRIu64 " bytes cannot "
		    "hold a record (%d bytes of header)", dir, max_bytes, HDR);
		return NULL;
	}
	if ((sp = calloc(1, sizeof(*sp))) == NULL) {
		snprintf(err, ERRLEN, "%s: out of memory", dir);
		return NULL;
	}
	sp->dfd = sp->afd = sp->rfd = -1;
	if ((sp->dir = strdup(dir)) == NULL ||
	    (sp->ackbuf = malloc(ACK_MAX)) == NULL) {
		snprintf(err, ERRLEN, "%s: out of memory", dir);
		goto fail;
	}
	sp->max_bytes = max_bytes;
	sp->seg_max = max_bytes / 8;
	if (sp->seg_max > SEG_MAX)
		sp->seg_max = SEG_MAX;
	if (sp->seg_max < SEG_MIN)
		sp->seg_max = SEG_MIN;
	sp->policy = policy;
	sp->fsync_each = fsync_each;
	if (mkdirs(sp, err) < 0)
		goto fail;
	if ((sp->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		fail(sp, err, NULL, "open");
		goto fail;
	}
	if (check_dir(sp, err) < 0)
		goto fail;
	if (flock(sp->dfd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			snprintf(err, ERRLEN, "%s: in use by another spool "
			    "(locked)", dir);
		else
			fail(sp, err, NULL, "flock");
		goto fail;
	}
	if (read_acked(sp, &rc, err) < 0 || list_segs(sp, err) < 0)
		goto fail;
	if (unlinkat(sp->dfd, ACK_TMP, 0) < 0 && errno != ENOENT) {
		fail(sp, err, ACK_TMP, "unlink");
		goto fail;
	}
	for (i = 0; i < sp->nsegs; i++) {
		seg_name(name, sp->segs[i].first);
		if ((fd = open_in(sp, name, O_RDWR, err, "open")) < 0)
			goto fail;
		if (scan_seg(sp, i, fd, &rc, err) < 0) {
			close(fd);
			goto fail;
		}
		if (i == sp->nsegs - 1)
			sp->afd = fd;
		else
			close(fd);
	}
	sp->next_id = 1;
	if (sp->next_id < rc.w)
		sp->next_id = rc.w;
	if (sp->next_id < rc.next)
		sp->next_id = rc.next;
	if (sp->next_id <= rc.last)
		sp->next_id = rc.last + 1;
	if (sp->nsegs && sp->next_id < sp->segs[sp->nsegs - 1].first)
		sp->next_id = sp->segs[sp->nsegs - 1].first;
	sp->persist_ms = (uint64_t)clock_ms();
	sp->since_persist = rc.damaged;
	sp->sweep = true;
	tidy_quiet(sp);
	if (sp->st.pending || sp->st.corrupt)
		log_info("spool %s: %" PRIu64 " pending records (%" PRIu64
		    " bytes) recovered, %" PRIu64 " corrupt skipped, next id %"
		    PRIu64, dir, sp->st.pending, sp->pending_bytes,
		    sp->st.corrupt, sp->next_id);
	return sp;
fail:
	destroy(sp);
	return NULL;
}

void
spool_close(struct spool *sp)
{
	char err[ERRLEN];

	if (sp == NULL)
		return;
	full_end(sp);
	if (persist(sp, false, err) < 0)
		log_warn("spool: %s", err);
	destroy(sp);
}

/* ---- append -------------------------------------------------------------- */

/*
 * Keep a copy of record id (just appended) in memory, dropping the older
 * copies when it does not fit.  Without memory the record is only read
 * back from its file, as any older one.
 */
static void
hot_keep(struct spool *sp, uint64_t id, const void *data, size_t len)
{
	uint32_t end;

	if (sp->hot == NULL)
		sp->hot_cap = sp->max_bytes < HOT_BYTES ? sp->max_bytes :
		    HOT_BYTES;
	if (len > sp->hot_cap / 4)
		return;			/* rare; would empty the buffer */
	if (sp->hot == NULL) {
		sp->hot = malloc(sp->hot_cap);
		sp->hot_off = malloc((HOT_RECS + 1) * sizeof(*sp->hot_off));
		if (sp->hot == NULL || sp->hot_off == NULL) {
			free(sp->hot);
			free(sp->hot_off);
			sp->hot = NULL;
			sp->hot_off = NULL;
			return;
		}
		sp->hot_n = 0;
	}
	end = sp->hot_n ? sp->hot_off[sp->hot_n] : 0;
	if (sp->hot_n == 0 || id != sp->hot_first + sp->hot_n ||
	    sp->hot_n == HOT_RECS || end + len > sp->hot_cap) {
		sp->hot_first = id;
		sp->hot_n = 0;
		sp->hot_off[0] = end = 0;
	}
	memcpy(sp->hot + end, data, len);
	sp->hot_off[++sp->hot_n] = end + (uint32_t)len;
}

/* Record id's data if it is still kept in memory. */
static const unsigned char *
hot_find(const struct spool *sp, uint64_t id, uint32_t len)
{
	uint64_t k = id - sp->hot_first;

	if (sp->hot == NULL || id < sp->hot_first || k >= sp->hot_n ||
	    sp->hot_off[k + 1] - sp->hot_off[k] != len)
		return NULL;
	return sp->hot + sp->hot_off[k];
}

/* Start a new segment named by the next id. */
static int
roll(struct spool *sp, char *err)
{
	char name[SEG_NAME_LEN];
	int fd;

	if (segs_reserve(sp) < 0)
		return oom(sp, err);
	seg_name(name, sp->next_id);
	if ((fd = open_in(sp, name, O_RDWR | O_CREAT | O_EXCL, err,
	    "create")) < 0)
		return -1;
	if (sp->fsync_each && fsync(sp->dfd) < 0) {
		fail(sp, err, NULL, "fsync");
		close(fd);
		unlinkat(sp->dfd, name, 0);
		return -1;
	}
	if (sp->afd >= 0) {
		close(sp->afd);
		/* no longer the last: it goes when nothing in it is pending */
		if (sp->segs[sp->nsegs - 1].live == 0)
			sp->sweep = true;
	}
	sp->afd = fd;
	sp->segs[sp->nsegs].first = sp->next_id;
	sp->segs[sp->nsegs].size = 0;
	sp->segs[sp->nsegs].live = 0;
	sp->nsegs++;
	return 0;
}

/* A record written at off in the last segment: count it, index it. */
static uint64_t
appended(struct spool *sp, uint64_t off, const void *data, size_t len)
{
	uint64_t need = HDR + (uint64_t)len;

	sp->segs[sp->nsegs - 1].size += need;
	sp->st.bytes += need;
	add_pending(sp, sp->nsegs - 1, sp->next_id, off, (uint32_t)len);
	hot_keep(sp, sp->next_id, data, len);
	sp->st.appended++;
	return sp->next_id++;
}

/* After appends: DROP_OLDEST drops the oldest pending records over max. */
static void
made_room(struct spool *sp)
{
	uint64_t dn = 0, db = 0;
	struct ent *e;
	size_t i;

	/* need <= max_bytes for each new one, so this stops before them */
	for (i = 0; sp->pending_bytes > sp->max_bytes && i < sp->n; i++) {
		e = ent_at(sp, i);
		if (e->done)
			continue;
		dn++;
		db += HDR + (uint64_t)e->len;
		forget(sp, e);
	}
	if (dn) {
		sp->st.dropped += dn;
		full_note(sp, dn, db);
	} else if (sp->pending_bytes <= FULL_END(sp->max_bytes))
		full_end(sp);
	tidy_quiet(sp);
}

/*
 * A failed append of n records (bytes from the end of segment s) that
 * could not be truncated away.  The tail may hold whole records under the
 * next n ids: those ids are spent, so that no later record reuses one
 * (the open that finds two records of one id keeps the first and skips
 * the later, which was confirmed).  The next DIR/acked counts them done,
 * as the caller was told they were not spooled; a torn one is skipped at
 * the next open.
 */
static void
not_undone(struct spool *sp, struct seg *s, uint64_t bytes, size_t n)
{
	s->size += bytes;
	sp->st.bytes += bytes;
	sp->next_id += n;
	sp->since_persist++;
}

int
spool_append(struct spool *sp, const void *data, size_t len, uint64_t *id,
    char *err)
{
	unsigned char h[HDR];
	struct iovec iov[2];
	uint64_t need = HDR + (uint64_t)len, off;
	char name[SEG_NAME_LEN];
	struct seg *s;

	if (len > UINT32_MAX || need > sp->max_bytes) {
		snprintf(err, ERRLEN, "%s: a record of %zu bytes can never fit "
		    "in a spool of %" PRIu64 " bytes", sp->dir, len,
		    sp->max_bytes);
		return -1;
	}
	if (sp->policy == SPOOL_DROP_NEW &&
	    sp->pending_bytes + need > sp->max_bytes) {
		sp->st.dropped++;
		full_note(sp, 1, need);
		return 1;
	}
	if (ring_reserve(sp) < 0)
		return oom(sp, err);
	if (sp->afd < 0 || (sp->segs[sp->nsegs - 1].size > 0 &&
	    sp->segs[sp->nsegs - 1].size + need > sp->seg_max))
		if (roll(sp, err) < 0)
			return -1;
	s = &sp->segs[sp->nsegs - 1];
	off = s->size;
	put32(h, REC_MAGIC);
	put32(h + 4, (uint32_t)len);
	put64(h + 8, sp->next_id);
	put32(h + 16, rec_crc(h, data, len));
	iov[0].iov_base = h;
	iov[0].iov_len = HDR;
	iov[1].iov_base = (void *)(uintptr_t)data;
	iov[1].iov_len = len;
	if (write_all(sp->afd, iov, 2, off) < 0 ||
	    (sp->fsync_each && fdatasync(sp->afd) < 0)) {
		seg_name(name, s->first);
		fail(sp, err, name, "append");
		if (ftruncate(sp->afd, (off_t)off) < 0)
			not_undone(sp, s, need, 1);
		return -1;
	}
	*id = appended(sp, off, data, len);
	made_room(sp);
	return 0;
}

/*
 * Append records with one write (and one fdatasync with fsync_each), as
 * spool_append() would one by one: rcs[i] and ids[i] are what it would
 * have returned for recs[i].  A burst from ZeroMQ costs one pwritev()
 * instead of one each (a tenth of a ZeroMQ -> STOMP bridge's CPU went to
 * them).  A write that fails (a nearly full disk) is undone and its
 * records appended one by one, so what fits still goes in; if it cannot
 * be undone, none of them is spooled.  Records that
 * would drop (DROP_NEW), roll the segment or not fit at all take the
 * one-by-one way too.
 */
void
spool_append_all(struct spool *sp, const struct spool_rec *recs, size_t n,
    uint64_t *ids, int *rcs, char *err)
{
	unsigned char h[SPOOL_APPEND_MAX][HDR];
	struct iovec iov[2 * SPOOL_APPEND_MAX];
	char name[SEG_NAME_LEN];
	uint64_t total = 0, off, id;
	struct seg *s;
	size_t i, k;

	while (n > 0) {
		/* the records that fit the fast way, k of them */
		s = sp->afd >= 0 ? &sp->segs[sp->nsegs - 1] : NULL;
		for (k = 0, total = 0; k < n && k < SPOOL_APPEND_MAX; k++) {
			uint64_t need = HDR + (uint64_t)recs[k].len;

			if (recs[k].len > UINT32_MAX || s == NULL ||
			    (sp->policy == SPOOL_DROP_NEW &&
			    sp->pending_bytes + total + need > sp->max_bytes) ||
			    (sp->policy == SPOOL_DROP_OLDEST &&
			    total + need > sp->max_bytes) ||
			    s->size + total + need > sp->seg_max)
				break;
			total += need;
		}
		if (k < 2 || ring_reserve_n(sp, k) < 0) {
			rcs[0] = spool_append(sp, recs[0].data, recs[0].len,
			    &ids[0], err);
			recs++, ids++, rcs++, n--;
			continue;
		}
		off = s->size;
		for (i = 0, id = sp->next_id; i < k; i++, id++) {
			put32(h[i], REC_MAGIC);
			put32(h[i] + 4, (uint32_t)recs[i].len);
			put64(h[i] + 8, id);
			put32(h[i] + 16, rec_crc(h[i], recs[i].data,
			    recs[i].len));
			iov[2 * i].iov_base = h[i];
			iov[2 * i].iov_len = HDR;
			iov[2 * i + 1].iov_base = (void *)(uintptr_t)recs[i].data;
			iov[2 * i + 1].iov_len = recs[i].len;
		}
		if (write_all(sp->afd, iov, (int)(2 * k), off) < 0 ||
		    (sp->fsync_each && fdatasync(sp->afd) < 0)) {
			seg_name(name, s->first);
			fail(sp, err, name, "append");
			if (ftruncate(sp->afd, (off_t)off) < 0) {
				/* none of these goes in after that tail */
				not_undone(sp, s, total, k);
				for (i = 0; i < k; i++)
					rcs[i] = -1;
			} else {
				/* what fits still goes in (a nearly full disk) */
				for (i = 0; i < k; i++)
					rcs[i] = spool_append(sp, recs[i].data,
					    recs[i].len, &ids[i], err);
			}
		} else {
			for (i = 0; i < k; i++) {
				ids[i] = appended(sp, off, recs[i].data,
				    recs[i].len);
				off += HDR + (uint64_t)recs[i].len;
				rcs[i] = 0;
			}
			made_room(sp);
		}
		recs += k, ids += k, rcs += k, n -= k;
	}
}

/* ---- reading and acknowledging ------------------------------------------- */

/* A descriptor to read segment si with. */
static int
seg_fd(struct spool *sp, size_t si, char *err)
{
	char name[SEG_NAME_LEN];

	if (si == sp->nsegs - 1 && sp->afd >= 0)
		return sp->afd;
	if (sp->rfd >= 0 && sp->rfirst == sp->segs[si].first)
		return sp->rfd;
	if (sp->rfd >= 0)
		close(sp->rfd);
	seg_name(name, sp->segs[si].first);
	if ((sp->rfd = open_in(sp, name, O_RDONLY, err, "open")) < 0)
		return -1;
	sp->rfirst = sp->segs[si].first;
	return sp->rfd;
}

/* A read buffer of at least n bytes, not much larger than needed lately. */
static int
buf_fit(struct spool *sp, size_t n)
{
	unsigned char *p;
	size_t cap;

	if (n <= sp->bufcap && (sp->bufcap <= BUF_KEEP || n > sp->bufcap / 16))
		return 0;
	cap = n < 4096 ? 4096 : n;
	free(sp->buf);
	sp->bufcap = 0;
	if ((p = malloc(cap)) == NULL) {
		sp->buf = NULL;
		return -1;
	}
	sp->buf = p;
	sp->bufcap = cap;
	return 0;
}

int
spool_next(struct spool *sp, uint64_t *id, const void **data, size_t *len,
    char *err)
{
	char name[SEG_NAME_LEN];
	struct ent *e;
	uint64_t rid;
	uint32_t rlen;
	size_t i, si, need;
	ssize_t got;
	int fd, rc = 0;

	for (;;) {
		for (i = ent_lower(sp, sp->cursor);
		    i < sp->n && ent_at(sp, i)->done; i++)
			;
		if (i == sp->n)
			break;
		e = ent_at(sp, i);
		if ((*data = hot_find(sp, e->id, e->len)) != NULL) {
			sp->cursor = e->id + 1;
			*id = e->id;
			*len = e->len;
			rc = 1;
			break;
		}
		need = HDR + (size_t)e->len;
		if (buf_fit(sp, need) < 0)
			return oom(sp, err);
		si = seg_of(sp, e->id);
		seg_name(name, sp->segs[si].first);
		if ((fd = seg_fd(sp, si, err)) < 0)
			return -1;
		if ((got = read_all(fd, sp->buf, need, e->off)) < 0)
			return fail(sp, err, name, "read");
		if ((size_t)got == need && rec_ok(sp->buf, need, 0, e->id,
		    e->id + 1, e->id - 1, &rid, &rlen) && rlen == e->len) {
			sp->cursor = e->id + 1;
			*id = e->id;
			*data = sp->buf + HDR;
			*len = e->len;
			rc = 1;
			break;
		}
		log_warn("spool %s/%s: record %" PRIu64 " at byte %" PRIu64
		    " is corrupt: skipped", sp->dir, name, e->id, e->off);
		sp->st.corrupt++;
		forget(sp, e);
	}
	tidy_quiet(sp);
	return rc;
}

void
spool_rewind(struct spool *sp)
{
	sp->cursor = 0;
}

void
spool_unnext(struct spool *sp, uint64_t id)
{
	if (id < sp->cursor)
		sp->cursor = id;
}

int
spool_ack(struct spool *sp, uint64_t id, char *err)
{
	size_t i = ent_lower(sp, id);
	struct ent *e;

	if (i == sp->n || (e = ent_at(sp, i))->id != id || e->done)
		return 0;
	forget(sp, e);
	sp->st.acked++;
	return tidy(sp, err);
}

void
spool_stats(const struct spool *sp, struct spool_stats *st)
{
	*st = sp->st;
}
