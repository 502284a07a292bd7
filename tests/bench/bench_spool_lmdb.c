/*
 * bench_spool_lmdb [N] [SIZE] -- our disk spool (bridge/spool.h) against
 * LMDB on the bridge's workload: N records of SIZE bytes (default 20000
 * of 3000) appended in order, each acknowledged in order once WINDOW
 * (100) later ones are out, as a bridge does with its broker's
 * confirmations; then the rest acknowledged.  Same durability on both
 * sides, in two modes:
 *
 *   nosync  spool fsync_each=false | LMDB MDB_NOSYNC: every append and
 *           ack survives the process being killed (page cache), a power
 *           loss may lose the last ones.
 *   sync    spool fsync_each=true (fdatasync per append) | LMDB with a
 *           synced commit per append; acks unsynced on both sides (the
 *           spool writes its ack file every 100 ms, without fsync; LMDB
 *           commits acks with MDB_NOSYNC), so an ack may come back after
 *           a power loss, an append never goes.
 *
 * LMDB keys are the 8-byte big-endian ids (ordered replay = a cursor
 * from the first key); an ack deletes its key.  Prints records per
 * second for each and the ratio spool / LMDB (above 1: the spool is
 * faster).  tests/bench/README has the results and the decision.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "spool.h"

#define WINDOW	100

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *what, const char *why)
{
	fprintf(stderr, "bench_spool_lmdb: %s: %s\n", what, why);
	exit(1);
}

static void
rm_rf(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		die("rm -rf", dir);
}

static double
run_spool(const char *dir, size_t n, size_t size, const char *data,
    int fsync_each)
{
	char err[256];
	struct spool *sp;
	uint64_t id, first = 0;
	size_t i, acked = 0;
	double t0;

	rm_rf(dir);
	sp = spool_open(dir, (uint64_t)1 << 30, SPOOL_DROP_NEW, fsync_each,
	    err);
	if (sp == NULL)
		die("spool_open", err);
	t0 = now_s();
	for (i = 0; i < n; i++) {
		if (spool_append(sp, data, size, &id, err) != 0)
			die("spool_append", err);
		if (first == 0)
			first = id;
		if (i >= WINDOW && spool_ack(sp, first + acked++, err) < 0)
			die("spool_ack", err);
	}
	while (acked < n)
		if (spool_ack(sp, first + acked++, err) < 0)
			die("spool_ack", err);
	spool_close(sp);
	t0 = now_s() - t0;
	rm_rf(dir);
	return (double)n / t0;
}

static void
key_of(uint64_t id, unsigned char k[8])
{
	int i;

	for (i = 7; i >= 0; i--, id >>= 8)
		k[i] = (unsigned char)id;
}

static void
lmdb_ack(MDB_env *env, MDB_dbi dbi, uint64_t id)
{
	unsigned char k[8];
	MDB_val key = { 8, k };
	MDB_txn *txn;
	int r;

	key_of(id, k);
	if ((r = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
	    (r = mdb_del(txn, dbi, &key, NULL)) != 0 ||
	    (r = mdb_txn_commit(txn)) != 0)
		die("lmdb ack", mdb_strerror(r));
}

static double
run_lmdb(const char *dir, size_t n, size_t size, const char *data,
    int durable)
{
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	size_t i, acked = 0;
	double t0;
	int r;

	rm_rf(dir);
	if (mkdir(dir, 0700) < 0)
		die(dir, strerror(errno));
	if ((r = mdb_env_create(&env)) != 0 ||
	    (r = mdb_env_set_mapsize(env, (size_t)1 << 30)) != 0 ||
	    (r = mdb_env_open(env, dir, durable ? 0 : MDB_NOSYNC, 0600)) != 0 ||
	    (r = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
	    (r = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0 ||
	    (r = mdb_txn_commit(txn)) != 0)
		die("lmdb open", mdb_strerror(r));
	t0 = now_s();
	for (i = 0; i < n; i++) {
		unsigned char k[8];
		MDB_val key = { 8, k }, val = { size, (void *)data };

		key_of(i + 1, k);
		if ((r = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
		    (r = mdb_put(txn, dbi, &key, &val, MDB_APPEND)) != 0 ||
		    (r = mdb_txn_commit(txn)) != 0)
			die("lmdb append", mdb_strerror(r));
		if (i >= WINDOW) {
			/* acks need not be synced: same as the spool's */
			if (durable)
				mdb_env_set_flags(env, MDB_NOSYNC, 1);
			lmdb_ack(env, dbi, ++acked);
			if (durable)
				mdb_env_set_flags(env, MDB_NOSYNC, 0);
		}
	}
	if (durable)
		mdb_env_set_flags(env, MDB_NOSYNC, 1);
	while (acked < n)
		lmdb_ack(env, dbi, ++acked);
	mdb_env_sync(env, 1);
	mdb_env_close(env);
	t0 = now_s() - t0;
	rm_rf(dir);
	return (double)n / t0;
}

int
main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
	size_t size = argc > 2 ? strtoul(argv[2], NULL, 10) : 3000;
	size_t nsync = n / 10 ? n / 10 : 1;	/* synced runs are slow */
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char sdir[256], ldir[256], *data;
	double s, l;
	size_t i;

	if (n == 0 || size == 0 || size > (1u << 20)) {
		fprintf(stderr, "usage: bench_spool_lmdb [N] [SIZE <= 1 MiB]\n");
		return 2;
	}
	snprintf(sdir, sizeof(sdir), "%s/bench-spool.%d", tmp, (int)getpid());
	snprintf(ldir, sizeof(ldir), "%s/bench-lmdb.%d", tmp, (int)getpid());
	if ((data = malloc(size)) == NULL)
		die("malloc", strerror(errno));
	for (i = 0; i < size; i++)
		data[i] = (char)('a' + i % 26);
	printf("%-8s %8s %6s %14s %14s %8s\n", "mode", "records", "bytes",
	    "spool rec/s", "lmdb rec/s", "ratio");
	s = run_spool(sdir, n, size, data, 0);
	l = run_lmdb(ldir, n, size, data, 0);
	printf("%-8s %8zu %6zu %14.0f %14.0f %8.2f\n", "nosync", n, size, s, l,
	    s / l);
	s = run_spool(sdir, nsync, size, data, 1);
	l = run_lmdb(ldir, nsync, size, data, 1);
	printf("%-8s %8zu %6zu %14.0f %14.0f %8.2f\n", "sync", nsync, size, s,
	    l, s / l);
	free(data);
	return 0;
}
