/*
 * Unit tests for brokers/spool.c: order, acks in and out of order, restart
 * recovery, a child killed with SIGKILL mid-stream, torn and corrupt
 * records, both full policies, rewind, segment rollover and removal, and
 * disk usage bounded while 50 MB go through a 4 MB spool.  Each test works
 * in its own directory under one mkdtemp() directory, removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "testutil.h"

#define HDR		20		/* record header bytes (spool.c) */
#define REC(len)	(HDR + (uint64_t)(len))
#define HOT_RECS	4096u		/* spool.c: recent appends in memory */
#define NOT_HOT		((1u << 20) / 4 + 1)	/* not kept by a 1 MiB spool */

static char base[64];

/* ---- helpers ------------------------------------------------------------- */

/*
 * A fresh directory path for one test (not created: spool_open does), in a
 * static buffer: one at a time.
 */
static const char *
tdir(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", base, name);
	return path;
}

static struct spool *
sopen(const char *dir, uint64_t max, enum spool_full policy, bool fsync_each)
{
	struct spool *sp;
	char err[256];

	if ((sp = spool_open(dir, max, policy, fsync_each, err)) == NULL)
		fail_msg("spool_open %s: %s", dir, err);
	return sp;
}

static void
fill(unsigned char *p, size_t len, uint64_t tag)
{
	size_t k;

	for (k = 0; k < len; k++)
		p[k] = (unsigned char)(tag * 131 + k * 7 + (k >> 8));
}

static bool
filled(const unsigned char *p, size_t len, uint64_t tag)
{
	size_t k;

	for (k = 0; k < len; k++)
		if (p[k] != (unsigned char)(tag * 131 + k * 7 + (k >> 8)))
			return false;
	return true;
}

/* Append len bytes of fill(tag); returns the id. */
static uint64_t
app(struct spool *sp, size_t len, uint64_t tag)
{
	unsigned char *p = malloc(len ? len : 1);
	char err[256];
	uint64_t id = 0;
	int rc;

	assert_non_null(p);
	fill(p, len, tag);
	rc = spool_append(sp, p, len, &id, err);
	free(p);
	if (rc != 0)
		fail_msg("spool_append: %d %s", rc, rc < 0 ? err : "(full)");
	return id;
}

/* The next record must be id, len bytes of fill(tag). */
static void
want_next(struct spool *sp, uint64_t id, size_t len, uint64_t tag)
{
	const void *data;
	uint64_t got;
	size_t n;
	char err[256];
	int rc;

	rc = spool_next(sp, &got, &data, &n, err);
	if (rc != 1)
		fail_msg("spool_next: %d (%s), wanted id %" PRIu64, rc,
		    rc < 0 ? err : "none", id);
	assert_int_equal(got, id);
	assert_int_equal(n, len);
	assert_true(filled(data, n, tag));
}

static void
want_none(struct spool *sp)
{
	const void *data;
	uint64_t id;
	size_t n;
	char err[256];

	assert_int_equal(spool_next(sp, &id, &data, &n, err), 0);
}

static void
ack(struct spool *sp, uint64_t id)
{
	char err[256];

	if (spool_ack(sp, id, err) != 0)
		fail_msg("spool_ack %" PRIu64 ": %s", id, err);
}

static struct spool_stats
stats(struct spool *sp)
{
	struct spool_stats st;

	spool_stats(sp, &st);
	return st;
}

static const char *
seg_path(const char *dir, uint64_t first)
{
	static char path[320];

	snprintf(path, sizeof(path), "%s/seg-%016" PRIx64 ".log", dir, first);
	return path;
}

static off_t
file_size(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		fail_msg("stat %s: %s", path, strerror(errno));
	return sb.st_size;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in dir, space-separated. */
static const char *
listing(const char *dir)
{
	static char out[1024];
	char *names[64];
	struct dirent *de;
	size_t n = 0, i;
	DIR *d;

	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && n < 64)
			assert_non_null(names[n++] = strdup(de->d_name));
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (i)
			strcat(out, " ");
		strncat(out, names[i], sizeof(out) - strlen(out) - 2);
		free(names[i]);
	}
	return out;
}

/* Bytes in the files of dir; *segbytes: in its segments only. */
static uint64_t
dir_bytes(const char *dir, uint64_t *segbytes)
{
	char path[512];
	struct dirent *de;
	struct stat sb;
	uint64_t all = 0, seg = 0;
	DIR *d;

	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &sb) < 0)
			continue;	/* just unlinked */
		all += (uint64_t)sb.st_size;
		if (strncmp(de->d_name, "seg-", 4) == 0)
			seg += (uint64_t)sb.st_size;
	}
	closedir(d);
	if (segbytes)
		*segbytes = seg;
	return all;
}

/* The watermark in DIR/acked. */
static uint64_t
acked_w(const char *dir)
{
	char path[320];
	unsigned char b[16];
	uint64_t w = 0;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "%s/acked", dir);
	assert_non_null(f = fopen(path, "rb"));
	assert_int_equal(fread(b, 1, sizeof(b), f), sizeof(b));
	fclose(f);
	for (i = 7; i >= 0; i--)
		w = w << 8 | b[4 + i];
	return w;
}

/* XOR one byte of a file. */
static void
flip(const char *path, off_t off)
{
	unsigned char c;
	int fd;

	assert_true((fd = open(path, O_RDWR)) >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x5a;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static int
group_setup(void **state)
{
	(void)state;
	log_init("test_spool", FM_LOG_ERR);	/* warnings are expected */
	return tu_tmpdir(base, sizeof(base), "test_spool");
}

static int
group_teardown(void **state)
{
	(void)state;
	return tu_remove_tree(base);
}

/* ---- order and acks ------------------------------------------------------ */

static void
test_order(void **state)
{
	const char *d = tdir("order");
	struct spool *sp;
	struct spool_stats st;
	uint64_t i, bytes = 0;

	(void)state;
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	want_none(sp);
	for (i = 0; i < 10; i++) {
		assert_int_equal(app(sp, i * 10, i), i + 1);
		bytes += REC(i * 10);
	}
	st = stats(sp);
	assert_int_equal(st.appended, 10);
	assert_int_equal(st.pending, 10);
	assert_int_equal(st.bytes, bytes);
	for (i = 0; i < 10; i++)
		want_next(sp, i + 1, i * 10, i);
	want_none(sp);
	want_none(sp);
	for (i = 1; i <= 10; i++)
		ack(sp, i);
	ack(sp, 3);		/* again: nothing */
	ack(sp, 999);		/* unknown: nothing */
	st = stats(sp);
	assert_int_equal(st.acked, 10);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.corrupt, 0);
	/* appended after everything was handed out: handed out too */
	assert_int_equal(app(sp, 5, 77), 11);
	want_next(sp, 11, 5, 77);
	want_none(sp);
	spool_close(sp);
}

/* The broker had no room for a record: it goes next, nothing else again. */
static void
test_unnext(void **state)
{
	const char *d = tdir("unnext");
	struct spool *sp;
	uint64_t i;

	(void)state;
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	for (i = 1; i <= 6; i++)
		app(sp, 100, i);
	for (i = 1; i <= 4; i++)
		want_next(sp, i, 100, i);
	spool_unnext(sp, 4);
	want_next(sp, 4, 100, 4);	/* not 1: 1..3 are in flight */
	spool_unnext(sp, 6);		/* not handed out yet: no change */
	want_next(sp, 5, 100, 5);
	ack(sp, 5);
	spool_unnext(sp, 5);		/* acked: skipped */
	want_next(sp, 6, 100, 6);
	want_none(sp);
	spool_close(sp);
}

static void
test_out_of_order_acks(void **state)
{
	const char *d = tdir("ooo");
	struct spool *sp;
	uint64_t i;

	(void)state;
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	for (i = 1; i <= 10; i++)
		app(sp, 100, i);
	for (i = 1; i <= 10; i++)
		want_next(sp, i, 100, i);
	for (i = 2; i <= 10; i += 2)
		ack(sp, i);
	assert_int_equal(stats(sp).pending, 5);
	spool_rewind(sp);
	for (i = 1; i <= 10; i += 2)
		want_next(sp, i, 100, i);
	want_none(sp);
	/* acked before being handed out: never handed out */
	app(sp, 100, 11);
	app(sp, 100, 12);
	ack(sp, 12);
	want_next(sp, 11, 100, 11);
	want_none(sp);
	ack(sp, 1);		/* W = 3 */
	ack(sp, 11);
	spool_close(sp);

	/* 3 5 7 9 were never acked; the rest was, in and out of order */
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	for (i = 3; i <= 9; i += 2)
		want_next(sp, i, 100, i);
	want_none(sp);
	assert_int_equal(stats(sp).pending, 4);
	assert_int_equal(app(sp, 1, 13), 13);
	spool_close(sp);
}

/*
 * Every other record acked: 5000 gaps above W, of which DIR/acked keeps
 * the lowest 4096 (ids 2 to 8192); the acks above come back (at-least-once).
 */
static void
test_many_gaps(void **state)
{
	const char *d = tdir("gaps");
	struct spool *sp;
	const void *data;
	uint64_t i, id, odd = 1, evens = 0;
	size_t n;
	char err[256];

	(void)state;
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	for (i = 1; i <= 10000; i++)
		app(sp, 10, i);
	for (i = 2; i <= 10000; i += 2)
		ack(sp, i);
	spool_close(sp);
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	while (spool_next(sp, &id, &data, &n, err) == 1) {
		assert_true(filled(data, n, id));
		if (id % 2) {
			assert_int_equal(id, odd);
			odd += 2;
		} else {
			assert_true(id > 8192);
			evens++;
		}
	}
	assert_int_equal(odd, 10001);
	assert_int_equal(evens, (10000 - 8192) / 2);
	spool_close(sp);
}

static void
test_rewind(void **state)
{
	const char *d = tdir("rewind");
	struct spool *sp;
	uint64_t i;

	(void)state;
	sp = sopen(d, 1 << 20, SPOOL_DROP_OLDEST, false);
	for (i = 1; i <= 5; i++)
		app(sp, 50, i);
	want_next(sp, 1, 50, 1);
	want_next(sp, 2, 50, 2);
	want_next(sp, 3, 50, 3);
	spool_rewind(sp);
	for (i = 1; i <= 5; i++)
		want_next(sp, i, 50, i);
	want_none(sp);
	ack(sp, 2);
	ack(sp, 5);
	spool_rewind(sp);
	want_next(sp, 1, 50, 1);
	want_next(sp, 3, 50, 3);
	want_next(sp, 4, 50, 4);
	want_none(sp);
	spool_rewind(sp);
	ack(sp, 1);
	ack(sp, 3);
	ack(sp, 4);
	want_none(sp);
	assert_int_equal(stats(sp).pending, 0);
	spool_close(sp);
}

/* ---- restart ------------------------------------------------------------- */

static void
test_restart(void **state)
{
	const char *d = tdir("restart");
	char path[320];
	struct spool *sp;
	struct spool_stats st;
	uint64_t i;
	FILE *f;

	(void)state;
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	for (i = 1; i <= 20; i++)
		app(sp, 200 + i, i);
	for (i = 1; i <= 10; i++)
		ack(sp, i);
	spool_close(sp);

	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	st = stats(sp);
	assert_int_equal(st.pending, 10);
	assert_int_equal(st.appended, 0);
	assert_int_equal(st.corrupt, 0);
	for (i = 11; i <= 20; i++)
		want_next(sp, i, 200 + i, i);
	want_none(sp);
	assert_int_equal(app(sp, 7, 21), 21);	/* ids go on */
	for (i = 11; i <= 15; i++)
		ack(sp, i);
	spool_close(sp);
	assert_int_equal(acked_w(d), 16);

	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	assert_int_equal(stats(sp).pending, 6);
	for (i = 16; i <= 20; i++)
		want_next(sp, i, 200 + i, i);
	want_next(sp, 21, 7, 21);
	spool_close(sp);

	/* a damaged DIR/acked: everything still on disk comes back */
	snprintf(path, sizeof(path), "%s/acked", d);
	assert_non_null(f = fopen(path, "wb"));
	fputs("garbage", f);
	fclose(f);
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	want_next(sp, 1, 201, 1);
	assert_int_equal(stats(sp).pending, 21);
	assert_int_equal(app(sp, 1, 22), 22);
	spool_close(sp);

	/* one owner at a time */
	{
		struct spool *sp2;
		char err[256];

		sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
		sp2 = spool_open(d, 1 << 20, SPOOL_DROP_NEW, false, err);
		assert_null(sp2);
		assert_non_null(strstr(err, "in use"));
		spool_close(sp);
	}
}

/*
 * A child appends up to 1000 records (reporting each id on a pipe once
 * spool_append() returned) and acks some (reporting each before acking);
 * it is killed with SIGKILL at a random point.  Reopened, the spool must
 * hand out every record reported appended and not reported acked, with
 * ids increasing and data intact; the only id not reported may be the
 * one being appended when the kill came.
 */
#define CRASH_N		1000

static void
report(int fd, char kind, uint64_t id)
{
	unsigned char b[9];

	b[0] = (unsigned char)kind;
	memcpy(b + 1, &id, 8);
	if (write(fd, b, sizeof(b)) != sizeof(b))
		_exit(4);
}

static void
crash_child(const char *dir, int wfd, unsigned seed, bool fsync_each,
    size_t maxlen)
{
	unsigned char *buf = malloc(16 + maxlen);
	uint64_t ids[CRASH_N], id;
	bool acked[CRASH_N] = { false };
	struct spool *sp;
	char err[256];
	size_t len;
	bool big;
	int i, j;

	srand(seed);
	if (buf == NULL || (sp = spool_open(dir, 1u << 30, SPOOL_DROP_NEW,
	    fsync_each, err)) == NULL)
		_exit(2);
	/* big records: one pattern (tag 0), so that most time goes to writes */
	big = maxlen > 4000;
	if (big)
		fill(buf + 16, maxlen, 0);
	for (i = 0; i < CRASH_N; i++) {
		len = 16 + (size_t)rand() % maxlen;
		id = (uint64_t)i;
		memcpy(buf, &id, 8);
		memcpy(buf + 8, &(uint32_t){ (uint32_t)len }, 4);
		memcpy(buf + 12, &(uint32_t){ big ? 0 : (uint32_t)i }, 4);
		if (!big)
			fill(buf + 16, len - 16, (uint64_t)i);
		if (spool_append(sp, buf, len, &ids[i], err) != 0)
			_exit(3);
		report(wfd, 'P', ids[i]);
		if (i >= 5 && rand() % 3 == 0) {
			j = i - 1 - rand() % 5;
			if (!acked[j]) {
				acked[j] = true;
				report(wfd, 'A', ids[j]);
				if (spool_ack(sp, ids[j], err) != 0)
					_exit(5);
			}
		}
	}
	for (;;)
		pause();
}

/* Returns the count of torn records found. */
static uint64_t
crash_round(const char *dir, unsigned seed, bool fsync_each, size_t maxlen,
    int kill_at)
{
	unsigned char b[9];
	bool put[CRASH_N + 2] = { false }, acked[CRASH_N + 2] = { false };
	bool seen[CRASH_N + 2] = { false };
	uint64_t id, maxput = 0, prev = 0, tag;
	struct spool *sp;
	struct spool_stats st;
	const unsigned char *p;
	const void *data;
	uint32_t l32, ptag;
	int fds[2], puts = 0, status;
	size_t n;
	ssize_t r;
	pid_t pid;
	char err[256];

	assert_int_equal(pipe(fds), 0);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		close(fds[0]);
		crash_child(dir, fds[1], seed, fsync_each, maxlen);
	}
	close(fds[1]);
	for (;;) {
		if (puts >= kill_at && pid > 0) {
			if (maxlen > 4000)	/* into the CRC or the write */
				usleep((useconds_t)(rand() % 20000));
			kill(pid, SIGKILL);
			assert_int_equal(waitpid(pid, &status, 0), pid);
			assert_true(WIFSIGNALED(status));
			pid = 0;
		}
		r = read(fds[0], b, sizeof(b));
		if (r == 0)
			break;
		assert_int_equal(r, sizeof(b));	/* < PIPE_BUF: whole */
		memcpy(&id, b + 1, 8);
		assert_true(id >= 1 && id <= CRASH_N);
		if (b[0] == 'P') {
			put[id] = true;
			puts++;
			if (id > maxput)
				maxput = id;
		} else
			acked[id] = true;
	}
	close(fds[0]);
	if (pid > 0) {
		waitpid(pid, &status, 0);
		fail_msg("child ended early: status %d", status);
	}

	sp = sopen(dir, 1u << 30, SPOOL_DROP_NEW, false);
	while (spool_next(sp, &id, &data, &n, err) == 1) {
		assert_true(id > prev);
		prev = id;
		assert_true(id <= CRASH_N);
		assert_true(put[id] || id == maxput + 1);
		p = data;
		assert_true(n >= 16);
		memcpy(&tag, p, 8);
		memcpy(&l32, p + 8, 4);
		memcpy(&ptag, p + 12, 4);
		assert_int_equal(tag, id - 1);
		assert_int_equal(l32, n);
		assert_true(ptag == tag || (maxlen > 4000 && ptag == 0));
		assert_true(filled(p + 16, n - 16, ptag));
		seen[id] = true;
		ack(sp, id);
	}
	for (id = 1; id <= CRASH_N; id++)
		if (put[id] && !acked[id] && !seen[id])
			fail_msg("seed %u: record %" PRIu64 " lost", seed, id);
	st = stats(sp);
	assert_true(st.corrupt <= 1);	/* a torn tail at most */
	assert_true(app(sp, 10, 0) > (maxput > prev ? maxput : prev));
	spool_close(sp);
	return st.corrupt;
}

/*
 * Rounds 0-3: records of up to 4 KB, killed after up to 1000; 4-7: up to
 * 6 MiB, killed after up to 4, likely inside a write: Linux stops a write
 * for SIGKILL between chunks of up to 2 MiB (large folios), which leaves a
 * torn tail; 8: with fsync_each, killed after up to 100.
 */
static void
test_crash(void **state)
{
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	char name[32];
	uint64_t torn = 0;
	int round;

	(void)state;
	srand(seed);
	for (round = 0; round < 9; round++) {
		bool fsync_each = round == 8, big = round >= 4 && round < 8;
		int kill_at = 1 + rand() % (fsync_each ? 100 : big ? 4 :
		    CRASH_N);

		snprintf(name, sizeof(name), "crash%d", round);
		torn += crash_round(tdir(name), seed + (unsigned)round,
		    fsync_each, big ? 6 << 20 : 4000, kill_at);
	}
	print_message("crash: seed %u, %" PRIu64 " torn tails in 9 kills\n",
	    seed, torn);
}

/* ---- damage -------------------------------------------------------------- */

static void
test_torn_tail(void **state)
{
	const char *d = tdir("torn");
	const char *seg = seg_path(d, 1);
	struct spool *sp;
	struct spool_stats st;
	uint64_t i;

	(void)state;
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	for (i = 1; i <= 5; i++)
		app(sp, 100, i);
	spool_close(sp);
	assert_int_equal(file_size(seg), 5 * REC(100));

	/* the last record's data cut short */
	assert_int_equal(truncate(seg, 5 * REC(100) - 50), 0);
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	st = stats(sp);
	assert_int_equal(st.corrupt, 1);
	assert_int_equal(st.pending, 4);
	assert_int_equal(st.bytes, 4 * REC(100));
	assert_int_equal(file_size(seg), 4 * REC(100));
	for (i = 1; i <= 4; i++)
		want_next(sp, i, 100, i);
	want_none(sp);
	assert_int_equal(app(sp, 100, 5), 5);
	spool_close(sp);

	/* cut inside the header */
	assert_int_equal(truncate(seg, 4 * REC(100) + 7), 0);
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	assert_int_equal(stats(sp).corrupt, 1);
	assert_int_equal(stats(sp).pending, 4);
	assert_int_equal(file_size(seg), 4 * REC(100));
	spool_close(sp);

	/* zeros after the last record (a file extended, never written) */
	assert_int_equal(truncate(seg, 4 * REC(100) + 4096), 0);
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	assert_int_equal(stats(sp).corrupt, 1);
	assert_int_equal(stats(sp).pending, 4);
	assert_int_equal(file_size(seg), 4 * REC(100));
	spool_close(sp);
}

static void
test_corrupt_middle(void **state)
{
	const char *d = tdir("corrupt");
	const char *seg = seg_path(d, 1);
	struct spool *sp;
	uint64_t i;

	(void)state;
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	for (i = 1; i <= 5; i++)
		app(sp, 100, i);
	spool_close(sp);

	/* a byte of record 3's data */
	flip(seg, (off_t)(2 * REC(100) + HDR + 50));
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	assert_int_equal(stats(sp).corrupt, 1);
	assert_int_equal(stats(sp).pending, 4);
	assert_int_equal(file_size(seg), 5 * REC(100));	/* not a tail */
	want_next(sp, 1, 100, 1);
	want_next(sp, 2, 100, 2);
	want_next(sp, 4, 100, 4);
	want_next(sp, 5, 100, 5);
	want_none(sp);
	spool_close(sp);

	/* and record 2's magic: one corrupt region, records 2 and 3 */
	flip(seg, (off_t)REC(100));
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	assert_int_equal(stats(sp).corrupt, 1);
	want_next(sp, 1, 100, 1);
	want_next(sp, 4, 100, 4);
	want_next(sp, 5, 100, 5);
	want_none(sp);
	/*
	 * damaged while open: found when read, skipped (records larger
	 * than a quarter of the in-memory copy of recent appends, so they
	 * are read back from the file)
	 */
	assert_int_equal(app(sp, NOT_HOT, 6), 6);
	assert_int_equal(app(sp, NOT_HOT, 7), 7);
	flip(seg_path(d, 6), (off_t)(HDR + 1));	/* too big: a segment each */
	want_next(sp, 7, NOT_HOT, 7);
	want_none(sp);
	assert_int_equal(stats(sp).corrupt, 2);
	assert_int_equal(stats(sp).pending, 4);	/* 1 4 5 7 */
	spool_close(sp);
}

/*
 * Records just appended are handed out from memory, older ones read back
 * from the file: both give the same bytes, in order.  A record damaged on
 * disk after its append is still handed out whole from memory (its file
 * copy would be found corrupt at the next open, as any other).
 */
static void
test_recent_in_memory(void **state)
{
	const char *d = tdir("hot");
	const char *seg = seg_path(d, 1);
	struct spool *sp;
	uint64_t i, n = HOT_RECS + 100;

	(void)state;
	sp = sopen(d, 32 << 20, SPOOL_DROP_NEW, false);
	for (i = 1; i <= n; i++)
		assert_int_equal(app(sp, 100 + i % 7, i), i);
	flip(seg, (off_t)(HDR + 10));	/* record 1, on disk only */
	for (i = 2; i <= n; i++)	/* 1 is found corrupt */
		want_next(sp, i, 100 + i % 7, i);
	want_none(sp);
	assert_int_equal(stats(sp).corrupt, 1);
	/* the newest, damaged on disk after its append: from memory */
	assert_int_equal(app(sp, 100, n + 1), n + 1);
	flip(seg, (off_t)(file_size(seg) - 50));
	want_next(sp, n + 1, 100, n + 1);
	want_none(sp);
	/* after a rewind the older ones come from the file again */
	spool_rewind(sp);
	want_next(sp, 2, 102, 2);
	spool_close(sp);
}

/* ---- bounds -------------------------------------------------------------- */

static void
test_drop_oldest(void **state)
{
	const char *d = tdir("oldest");
	struct spool *sp;
	struct spool_stats st;
	unsigned char big[REC(100) * 10];
	uint64_t i, id;
	char err[256];

	(void)state;
	sp = sopen(d, 10 * REC(100), SPOOL_DROP_OLDEST, false);
	for (i = 1; i <= 15; i++)
		assert_int_equal(app(sp, 100, i), i);
	st = stats(sp);
	assert_int_equal(st.appended, 15);
	assert_int_equal(st.dropped, 5);
	assert_int_equal(st.pending, 10);
	for (i = 6; i <= 15; i++)
		want_next(sp, i, 100, i);
	want_none(sp);
	ack(sp, 3);	/* dropped: nothing */
	assert_int_equal(stats(sp).acked, 0);

	/* never fits */
	fill(big, sizeof(big), 16);
	assert_int_equal(spool_append(sp, big, sizeof(big) - HDR + 1, &id,
	    err), -1);
	assert_non_null(strstr(err, "never fit"));
	assert_non_null(strstr(err, d));
	/* just fits: everything else goes */
	assert_int_equal(spool_append(sp, big, sizeof(big) - HDR, &id, err),
	    0);
	assert_int_equal(id, 16);
	st = stats(sp);
	assert_int_equal(st.dropped, 15);
	assert_int_equal(st.pending, 1);
	want_next(sp, 16, sizeof(big) - HDR, 16);
	spool_close(sp);
}

static void
test_drop_new(void **state)
{
	const char *d = tdir("new");
	struct spool *sp;
	struct spool_stats st;
	unsigned char rec[100];
	uint64_t i, id = 12345;
	char err[256];

	(void)state;
	sp = sopen(d, 10 * REC(100), SPOOL_DROP_NEW, false);
	for (i = 1; i <= 10; i++)
		assert_int_equal(app(sp, 100, i), i);
	fill(rec, sizeof(rec), 99);
	for (i = 0; i < 5; i++)
		assert_int_equal(spool_append(sp, rec, sizeof(rec), &id, err),
		    1);
	assert_int_equal(id, 12345);
	st = stats(sp);
	assert_int_equal(st.appended, 10);
	assert_int_equal(st.dropped, 5);
	assert_int_equal(st.pending, 10);
	ack(sp, 4);
	assert_int_equal(app(sp, 100, 11), 11);	/* no id used by drops */
	assert_int_equal(spool_append(sp, rec, sizeof(rec), &id, err), 1);
	for (i = 1; i <= 11; i++)
		if (i != 4)
			want_next(sp, i, 100, i);
	want_none(sp);
	spool_close(sp);
}

/* ---- segments ------------------------------------------------------------ */

static void
test_segments(void **state)
{
	const char *d = tdir("segs");
	struct spool *sp;
	uint64_t i;

	(void)state;
	/* 64 KiB: segments roll at 8 KiB, 8 records of 1020 bytes each */
	sp = sopen(d, 64 << 10, SPOOL_DROP_NEW, false);
	for (i = 1; i <= 20; i++)
		app(sp, 1000, i);
	assert_string_equal(listing(d), "seg-0000000000000001.log "
	    "seg-0000000000000009.log seg-0000000000000011.log");
	assert_int_equal(file_size(seg_path(d, 1)), 8 * REC(1000));
	for (i = 1; i <= 8; i++)
		ack(sp, i);
	assert_string_equal(listing(d), "acked seg-0000000000000009.log "
	    "seg-0000000000000011.log");
	assert_int_equal(acked_w(d), 9);
	for (i = 10; i <= 16; i++)
		ack(sp, i);
	assert_string_equal(listing(d), "acked seg-0000000000000009.log "
	    "seg-0000000000000011.log");
	ack(sp, 9);
	assert_string_equal(listing(d), "acked seg-0000000000000011.log");
	assert_int_equal(acked_w(d), 17);
	assert_int_equal(stats(sp).bytes, 4 * REC(1000));
	spool_close(sp);

	sp = sopen(d, 64 << 10, SPOOL_DROP_NEW, false);
	assert_int_equal(stats(sp).pending, 4);
	for (i = 17; i <= 20; i++)
		want_next(sp, i, 1000, i);
	for (i = 17; i <= 20; i++)
		ack(sp, i);
	/* the last segment stays while it is small ... */
	assert_string_equal(listing(d), "acked seg-0000000000000011.log");
	/* ... and goes when nothing is pending and it is half full */
	ack(sp, app(sp, 1000, 21));
	assert_string_equal(listing(d), "acked");
	assert_int_equal(acked_w(d), 22);
	assert_int_equal(stats(sp).bytes, 0);
	spool_close(sp);

	/* the ids go on all the same */
	sp = sopen(d, 64 << 10, SPOOL_DROP_NEW, false);
	want_none(sp);
	assert_int_equal(app(sp, 1000, 22), 22);
	assert_string_equal(listing(d), "acked seg-0000000000000016.log");
	/* a segment that is no longer the last goes when all of it is acked */
	for (i = 23; i <= 30; i++)
		assert_int_equal(app(sp, 1000, i), i);
	assert_string_equal(listing(d), "acked seg-0000000000000016.log "
	    "seg-000000000000001e.log");
	for (i = 29; i >= 22; i--)
		ack(sp, i);
	assert_string_equal(listing(d), "acked seg-000000000000001e.log");
	assert_int_equal(acked_w(d), 30);
	want_next(sp, 30, 1000, 30);
	want_none(sp);
	spool_close(sp);
}

/*
 * 50 MB through a 4 MB spool: acked with a lag (and a little out of order)
 * nothing is dropped and the directory stays within max_bytes plus a
 * segment; unacked with DROP_OLDEST, likewise.
 */
static void
test_bounded_disk(void **state)
{
	const uint64_t max = 4u << 20, seg = max / 8, total = 50u << 20;
	char d[256], d2[256];
	struct spool *sp;
	struct spool_stats st;
	const void *data;
	uint64_t sent = 0, id, fifo[128], du, segbytes, worst = 0, last = 0;
	size_t n, len, nf = 0, count = 0;
	char err[256];
	unsigned seed = 12345;

	(void)state;
	snprintf(d, sizeof(d), "%s", tdir("bounded"));
	snprintf(d2, sizeof(d2), "%s", tdir("bounded2"));
	sp = sopen(d, max, SPOOL_DROP_NEW, false);
	while (sent < total) {
		seed = seed * 1103515245 + 12345;
		len = 1 + (seed >> 8) % (16 << 10);
		app(sp, len, count);
		sent += len;
		assert_int_equal(spool_next(sp, &id, &data, &n, err), 1);
		assert_int_equal(n, len);
		fifo[nf++] = id;
		if (nf == 128) {
			/* ack the older half, pairwise swapped */
			size_t k;

			for (k = 0; k < 64; k += 2) {
				ack(sp, fifo[k + 1]);
				ack(sp, fifo[k]);
			}
			memmove(fifo, fifo + 64, 64 * sizeof(*fifo));
			nf = 64;
		}
		if (++count % 64 == 0) {
			du = dir_bytes(d, &segbytes);
			if (du > worst)
				worst = du;
			assert_true(du <= max + seg);
			assert_int_equal(stats(sp).bytes, segbytes);
		}
	}
	st = stats(sp);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.appended, count);
	print_message("acked: %zu records, worst %" PRIu64 " bytes on disk\n",
	    count, worst);
	spool_close(sp);

	sp = sopen(d2, max, SPOOL_DROP_OLDEST, false);
	sent = count = 0;
	worst = 0;
	while (sent < total) {
		seed = seed * 1103515245 + 12345;
		len = 1 + (seed >> 8) % (16 << 10);
		last = app(sp, len, count);
		sent += len;
		if (++count % 64 == 0) {
			du = dir_bytes(d2, NULL);
			if (du > worst)
				worst = du;
			assert_true(du <= max + seg);
		}
	}
	st = stats(sp);
	assert_true(st.dropped > 0);
	assert_int_equal(st.dropped + st.pending, count);
	/* the newest are kept */
	id = 0;
	while (spool_next(sp, &id, &data, &n, err) == 1)
		;
	assert_int_equal(id, last);
	print_message("dropped %" PRIu64 " of %zu, worst %" PRIu64
	    " bytes on disk\n", st.dropped, count, worst);
	spool_close(sp);
}

/* ---- errors and fsync ---------------------------------------------------- */

static void
test_errors(void **state)
{
	const char *d = tdir("errors");
	char path[320], err[256];
	struct rlimit old, lim;
	struct spool *sp;
	unsigned char rec[1000];
	uint64_t id;
	int rc;
	FILE *f;

	(void)state;
	/* DIR is a file */
	snprintf(path, sizeof(path), "%s/file", base);
	assert_non_null(f = fopen(path, "w"));
	fclose(f);
	assert_null(spool_open(path, 1 << 20, SPOOL_DROP_NEW, false, err));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "Not a directory"));
	assert_null(spool_open(d, 10, SPOOL_DROP_NEW, false, err));
	assert_non_null(strstr(err, "cannot hold"));

	/* a write that fails half way (EFBIG here, ENOSPC alike) */
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	assert_int_equal(app(sp, 1000, 1), 1);
	fill(rec, sizeof(rec), 2);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = REC(1000) + 500;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	rc = spool_append(sp, rec, sizeof(rec), &id, err);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, seg_path(d, 1)));
	assert_non_null(strstr(err, strerror(EFBIG)));
	assert_int_equal(file_size(seg_path(d, 1)), REC(1000));
	assert_int_equal(stats(sp).pending, 1);
	assert_int_equal(app(sp, 1000, 2), 2);
	spool_close(sp);
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	assert_int_equal(stats(sp).corrupt, 0);
	want_next(sp, 1, 1000, 1);
	want_next(sp, 2, 1000, 2);
	spool_close(sp);
}

/* ---- appends in one write --------------------------------------------- */

/* n records of lens[i] bytes, filled with tag tag0 + i, in one call. */
static void
app_all(struct spool *sp, const size_t *lens, size_t n, uint64_t tag0,
    uint64_t *ids, int *rcs, char *err)
{
	struct spool_rec recs[200];
	size_t i;

	assert_true(n <= 200);
	for (i = 0; i < n; i++) {
		unsigned char *p = malloc(lens[i] ? lens[i] : 1);

		assert_non_null(p);
		fill(p, lens[i], tag0 + i);
		recs[i] = (struct spool_rec){ p, lens[i] };
	}
	spool_append_all(sp, recs, n, ids, rcs, err);
	for (i = 0; i < n; i++)
		free((void *)(uintptr_t)recs[i].data);
}

/*
 * Records appended together are the records appended one by one: the
 * same ids, the same file (recovered whole after a restart), across
 * segment rolls and more than one write's worth (SPOOL_APPEND_MAX).
 */
static void
test_append_all(void **state)
{
	const char *d = tdir("all");
	size_t lens[150], i;
	uint64_t ids[150];
	int rcs[150];
	char err[256];
	struct spool *sp;

	(void)state;
	for (i = 0; i < 150; i++)
		lens[i] = 100 + i * 7 % 300;
	/* 1 MiB: segments of 128 KiB, rolled within the 150 */
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	assert_int_equal(app(sp, 50, 1), 1);
	app_all(sp, lens, 150, 2, ids, rcs, err);
	for (i = 0; i < 150; i++) {
		assert_int_equal(rcs[i], 0);
		assert_int_equal(ids[i], 2 + i);
	}
	assert_int_equal(app(sp, 50, 152), 152);
	assert_int_equal(stats(sp).appended, 152);
	assert_int_equal(stats(sp).pending, 152);
	want_next(sp, 1, 50, 1);
	for (i = 0; i < 150; i++)
		want_next(sp, 2 + i, lens[i], 2 + i);
	want_next(sp, 152, 50, 152);
	want_none(sp);
	spool_close(sp);

	/* from the files alone: nothing torn, nothing missing */
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	assert_int_equal(stats(sp).corrupt, 0);
	assert_int_equal(stats(sp).pending, 152);
	want_next(sp, 1, 50, 1);
	for (i = 0; i < 150; i++)
		want_next(sp, 2 + i, lens[i], 2 + i);
	want_next(sp, 152, 50, 152);
	spool_close(sp);
}

/* The bounds apply record by record, as to one-by-one appends. */
static void
test_append_all_bounds(void **state)
{
	const char *d;
	size_t lens[10], i;
	uint64_t ids[10];
	int rcs[10];
	char err[256];
	struct spool *sp;

	(void)state;
	for (i = 0; i < 10; i++)
		lens[i] = 1000;
	/* DROP_NEW: room for 4 more of 10 */
	d = tdir("allfull");
	sp = sopen(d, 6 * REC(1000), SPOOL_DROP_NEW, false);
	assert_int_equal(app(sp, 1000, 1), 1);
	assert_int_equal(app(sp, 1000, 2), 2);
	app_all(sp, lens, 10, 3, ids, rcs, err);
	for (i = 0; i < 10; i++)
		assert_int_equal(rcs[i], i < 4 ? 0 : 1);
	for (i = 0; i < 4; i++)
		assert_int_equal(ids[i], 3 + i);
	assert_int_equal(stats(sp).dropped, 6);
	want_next(sp, 1, 1000, 1);
	want_next(sp, 2, 1000, 2);
	for (i = 0; i < 4; i++)
		want_next(sp, 3 + i, 1000, 3 + i);
	want_none(sp);
	spool_close(sp);

	/* DROP_OLDEST: the newest 6 stay */
	d = tdir("alloldest");	/* tdir(): one static buffer */
	sp = sopen(d, 6 * REC(1000), SPOOL_DROP_OLDEST, false);
	assert_int_equal(app(sp, 1000, 1), 1);
	app_all(sp, lens, 10, 2, ids, rcs, err);
	for (i = 0; i < 10; i++) {
		assert_int_equal(rcs[i], 0);
		assert_int_equal(ids[i], 2 + i);
	}
	assert_int_equal(stats(sp).pending, 6);
	assert_int_equal(stats(sp).dropped, 5);
	for (i = 6; i < 12; i++)
		want_next(sp, i, 1000, i);
	want_none(sp);
	spool_close(sp);
}

/*
 * A write that fails half way is undone, and its records appended one by
 * one: those that fit are spooled, as with one-by-one appends.
 */
static void
test_append_all_error(void **state)
{
	const char *d = tdir("allerr");
	size_t lens[5] = { 1000, 1000, 1000, 1000, 1000 }, i;
	struct rlimit old, lim;
	uint64_t ids[5];
	int rcs[5];
	char err[256];
	struct spool *sp;

	(void)state;
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	assert_int_equal(app(sp, 1000, 1), 1);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 3 * REC(1000) + 500;	/* 2 and half the 3rd fit */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	app_all(sp, lens, 5, 2, ids, rcs, err);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	for (i = 0; i < 5; i++)
		assert_int_equal(rcs[i], i < 2 ? 0 : -1);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 3);
	assert_non_null(strstr(err, strerror(EFBIG)));
	assert_int_equal(file_size(seg_path(d, 1)), 3 * REC(1000));
	assert_int_equal(stats(sp).pending, 3);
	/* and the next ones take the ids the failed ones did not use */
	app_all(sp, lens, 2, 4, ids, rcs, err);
	assert_int_equal(rcs[0], 0);
	assert_int_equal(ids[0], 4);
	assert_int_equal(ids[1], 5);
	spool_close(sp);
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	assert_int_equal(stats(sp).corrupt, 0);
	for (i = 1; i <= 5; i++)
		want_next(sp, i, 1000, i);
	want_none(sp);
	spool_close(sp);
}

/* ---- what is not ours -------------------------------------------------- */

static void
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
assert_text(const char *path, const char *text)
{
	char buf[256];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	assert_string_equal(buf, text);
}

/* Open must fail with err containing want; the spool is not created. */
static void
refused(const char *d, const char *want)
{
	char err[256];

	if (spool_open(d, 1 << 20, SPOOL_DROP_NEW, false, err) != NULL)
		fail_msg("spool_open %s: accepted, wanted '%s'", d, want);
	if (strstr(err, want) == NULL)
		fail_msg("spool_open %s: '%s', wanted '%s'", d, err, want);
	assert_non_null(strstr(err, d));
}

static void
test_not_ours(void **state)
{
	const char *d = tdir("notours");
	char victim[320], link[400];
	struct spool *sp;

	(void)state;
	/* a symbolic link named like a segment: refused, target untouched */
	spool_close(sopen(d, 1 << 20, SPOOL_DROP_NEW, false));
	snprintf(victim, sizeof(victim), "%s/victim", base);
	write_text(victim, "precious, not a spool record\n");
	assert_int_equal(symlink(victim, seg_path(d, 0xff)), 0);
	refused(d, "seg-00000000000000ff.log: a symbolic link where a spool "
	    "file belongs: refused");
	assert_text(victim, "precious, not a spool record\n");
	assert_int_equal(unlink(seg_path(d, 0xff)), 0);

	/* the same for the acknowledgement file */
	snprintf(link, sizeof(link), "%s/acked", d);
	unlink(link);
	assert_int_equal(symlink(victim, link), 0);
	refused(d, "acked: a symbolic link");
	assert_text(victim, "precious, not a spool record\n");
	assert_int_equal(unlink(link), 0);

	/* something else than a file under a segment's name */
	assert_int_equal(mkfifo(seg_path(d, 0x10), 0600), 0);
	refused(d, "seg-0000000000000010.log: not a regular file");
	assert_int_equal(unlink(seg_path(d, 0x10)), 0);

	/* a directory others (or the group) may write to */
	assert_int_equal(chmod(d, 0777), 0);
	refused(d, "group or others may write to it (mode 0777)");
	assert_int_equal(chmod(d, 0770), 0);
	refused(d, "group or others may write to it (mode 0770)");
	assert_int_equal(chmod(d, 0755), 0);
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	assert_int_equal(app(sp, 100, 1), 1);
	spool_close(sp);

	/* a directory of another user (only root can make one here) */
	if (geteuid() == 0) {
		assert_int_equal(chown(d, 65534, 65534), 0);
		refused(d, "owned by uid 65534, not by this process's uid 0");
		assert_int_equal(chown(d, 0, 0), 0);
	}
	sp = sopen(d, 1 << 20, SPOOL_DROP_NEW, false);
	want_next(sp, 1, 100, 1);
	spool_close(sp);
}

static void
test_fsync_each(void **state)
{
	const char *d = tdir("fsync");
	struct spool *sp;
	uint64_t i;

	(void)state;
	sp = sopen(d, 64 << 10, SPOOL_DROP_NEW, true);
	for (i = 1; i <= 20; i++)
		app(sp, 1000, i);
	for (i = 1; i <= 12; i++)
		ack(sp, i);
	assert_string_equal(listing(d), "acked seg-0000000000000009.log "
	    "seg-0000000000000011.log");
	spool_close(sp);
	sp = sopen(d, 64 << 10, SPOOL_DROP_NEW, true);
	for (i = 13; i <= 20; i++)
		want_next(sp, i, 1000, i);
	want_none(sp);
	spool_close(sp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_out_of_order_acks),
		cmocka_unit_test(test_unnext),
		cmocka_unit_test(test_many_gaps),
		cmocka_unit_test(test_rewind),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_crash),
		cmocka_unit_test(test_torn_tail),
		cmocka_unit_test(test_corrupt_middle),
		cmocka_unit_test(test_recent_in_memory),
		cmocka_unit_test(test_drop_oldest),
		cmocka_unit_test(test_drop_new),
		cmocka_unit_test(test_segments),
		cmocka_unit_test(test_bounded_disk),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_append_all),
		cmocka_unit_test(test_append_all_bounds),
		cmocka_unit_test(test_append_all_error),
		cmocka_unit_test(test_fsync_each),
		cmocka_unit_test(test_not_ours),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
