/*
 * brokers/spool.c when the disk fails under an append: every record whose
 * append returned 0 comes back after a reopen, whether the failed write
 * could be truncated away or not, and no record reported as not spooled
 * takes its place.  Linked with -Wl,--wrap=ftruncate,--wrap=fdatasync
 * (Makefile: TEST_LDFLAGS_test_spool_faults) to fail those calls on
 * demand; RLIMIT_FSIZE stops a batch's write part way, as a full disk
 * would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/resource.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "testutil.h"

#define REC_HDR		20	/* a record's header on disk (spool.c) */

static char base[64];
static int ftruncate_fails, fdatasync_fails;	/* the next N calls fail */

int __real_ftruncate(int, off_t);
int __real_fdatasync(int);
int __wrap_ftruncate(int, off_t);
int __wrap_fdatasync(int);

int
__wrap_ftruncate(int fd, off_t len)
{
	if (ftruncate_fails > 0) {
		ftruncate_fails--;
		errno = EIO;
		return -1;
	}
	return __real_ftruncate(fd, len);
}

int
__wrap_fdatasync(int fd)
{
	if (fdatasync_fails > 0) {
		fdatasync_fails--;
		errno = EIO;
		return -1;
	}
	return __real_fdatasync(fd);
}

static struct spool *
open_dir(const char *name, bool fsync_each)
{
	char dir[128], err[256];
	struct spool *sp;

	snprintf(dir, sizeof(dir), "%s/%s", base, name);
	if ((sp = spool_open(dir, 1 << 20, SPOOL_DROP_NEW, fsync_each,
	    err)) == NULL)
		fail_msg("spool_open %s: %s", dir, err);
	return sp;
}

/* The pending records are exactly ids[i] holding bytes tags[i]. */
static void
expect_records(struct spool *sp, const uint64_t *ids, const char *tags,
    size_t n)
{
	const unsigned char *p;
	const void *data;
	char err[256];
	uint64_t id;
	size_t len, i;

	for (i = 0; i < n; i++) {
		if (spool_next(sp, &id, &data, &len, err) != 1)
			fail_msg("record %zu ('%c', id %" PRIu64 ") is gone",
			    i, tags[i], ids[i]);
		p = data;
		if (id != ids[i] || p[0] != (unsigned char)tags[i])
			fail_msg("record %zu: '%c' id %" PRIu64 ", expected "
			    "'%c' id %" PRIu64, i, p[0], id, tags[i], ids[i]);
	}
	if (spool_next(sp, &id, &data, &len, err) != 0)
		fail_msg("one more record: '%c' id %" PRIu64,
		    ((const unsigned char *)data)[0], id);
}

/*
 * Append A with fdatasync failing (and ftruncate too, if undo_fails),
 * then B; after a reopen B comes back under its id, and A, reported as
 * not spooled, does not.
 */
static void
failed_append_then_one(const char *dir, bool undo_fails)
{
	unsigned char a[100], b[100];
	struct spool *sp;
	uint64_t ida = 0, idb = 0;
	char err[256];

	memset(a, 'A', sizeof(a));
	memset(b, 'B', sizeof(b));
	sp = open_dir(dir, true);
	fdatasync_fails = 1;
	ftruncate_fails = undo_fails;
	assert_int_equal(spool_append(sp, a, sizeof(a), &ida, err), -1);
	assert_non_null(strstr(err, "append"));
	assert_int_equal(spool_append(sp, b, sizeof(b), &idb, err), 0);
	spool_close(sp);
	sp = open_dir(dir, true);
	expect_records(sp, &idb, "B", 1);
	spool_close(sp);
}

/* The undo works: A's id is free for B. */
static void
test_failed_append_undone(void **state)
{
	(void)state;
	failed_append_then_one("undone", false);
}

/*
 * The undo fails too: the whole record A stays on disk.  B must not take
 * A's id, or the open after a restart keeps A and skips B as out of
 * order.
 */
static void
test_failed_append_not_undone(void **state)
{
	(void)state;
	failed_append_then_one("not-undone", true);
}

/*
 * A batch's one write stops after two whole records and half a third,
 * and cannot be undone: all five are reported as not spooled, and the
 * records appended after them keep their own ids through a reopen.
 */
static void
test_failed_batch_not_undone(void **state)
{
	enum { N = 5, LEN = 1000 };
	unsigned char batch[N][LEN], rec[LEN];
	struct spool_rec recs[N];
	struct rlimit was, cap;
	uint64_t bids[N], ids[3];
	int rcs[N], i;
	char err[256];
	struct spool *sp;

	(void)state;
	for (i = 0; i < N; i++) {
		memset(batch[i], '0' + i, LEN);
		recs[i] = (struct spool_rec){ batch[i], LEN };
	}
	sp = open_dir("batch", false);
	memset(rec, 'X', LEN);
	assert_int_equal(spool_append(sp, rec, LEN, &ids[0], err), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
	cap = was;
	cap.rlim_cur = 3 * (REC_HDR + LEN) + LEN / 2;
	signal(SIGXFSZ, SIG_IGN);	/* a short write, not a signal */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &cap), 0);
	ftruncate_fails = 1;
	spool_append_all(sp, recs, N, bids, rcs, err);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
	signal(SIGXFSZ, SIG_DFL);
	for (i = 0; i < N; i++)
		assert_int_equal(rcs[i], -1);
	memset(rec, 'C', LEN);
	assert_int_equal(spool_append(sp, rec, LEN, &ids[1], err), 0);
	memset(rec, 'E', LEN);
	assert_int_equal(spool_append(sp, rec, LEN, &ids[2], err), 0);
	spool_close(sp);
	sp = open_dir("batch", false);
	expect_records(sp, ids, "XCE", 3);
	spool_close(sp);
}

static int
make_base(void **state)
{
	(void)state;
	log_init("test_spool_faults", FM_LOG_ERR);	/* failures are meant */
	return tu_tmpdir(base, sizeof(base), "fm-spool-faults");
}

static int
remove_base(void **state)
{
	(void)state;
	return tu_remove_tree(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_append_undone),
		cmocka_unit_test(test_failed_append_not_undone),
		cmocka_unit_test(test_failed_batch_not_undone),
	};

	return cmocka_run_group_tests(tests, make_base, remove_base);
}
