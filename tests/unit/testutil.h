/*
 * Small helpers shared by the cmocka unit tests.  Header-only: every
 * function is static inline so that a test that does not use one still
 * compiles warning-free.  Include after <cmocka.h>.
 */
#ifndef FM_TESTUTIL_H
#define FM_TESTUTIL_H

#include <sys/stat.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Directory of the test data: $FM_TEST_DATA, else tests/data. */
static inline const char *
tu_data_dir(void)
{
	const char *d = getenv("FM_TEST_DATA");

	return d && *d ? d : "tests/data";
}

/* "<data dir>/<rel>" in a static buffer (one at a time). */
static inline const char *
tu_data_path(const char *rel)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/%s", tu_data_dir(), rel);
	return path;
}

/* "<data dir>/vectors/certs/<name><ext>" (the test PKI), in one of two
 * rotating buffers: a certificate's and its key's path can be used
 * together. */
static inline const char *
tu_cert_path(const char *name, const char *ext)
{
	static char paths[2][4096];
	static int k;

	k ^= 1;
	snprintf(paths[k], sizeof(paths[k]), "%s/vectors/certs/%s%s",
	    tu_data_dir(), name, ext);
	return paths[k];
}

/* Makes "/tmp/<prefix>.XXXXXX" in dir (of size n); 0, or -1 with errno. */
static inline int
tu_tmpdir(char *dir, size_t n, const char *prefix)
{
	snprintf(dir, n, "/tmp/%s.XXXXXX", prefix);
	return mkdtemp(dir) ? 0 : -1;
}

static inline int
tu_remove_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes dir and everything under it; 0, or -1. */
static inline int
tu_remove_tree(const char *dir)
{
	return nftw(dir, tu_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The whole file, malloc'ed and NUL-terminated; fails the test if absent. */
static inline char *
tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	size_t cap = 0, n = 0, r;

	if (f == NULL)
		fail_msg("cannot open %s", path);
	for (;;) {
		if (cap - n < 65536) {
			cap = cap ? cap * 2 : 65536;
			p = realloc(p, cap + 1);
			assert_non_null(p);
		}
		r = fread(p + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	p[n] = '\0';
	if (len)
		*len = n;
	return p;
}

/* Decode lowercase/uppercase hex; returns malloc'ed bytes (NUL after). */
static inline unsigned char *
tu_unhex(const char *hex, size_t hexlen, size_t *len)
{
	unsigned char *out = malloc(hexlen / 2 + 1);
	size_t i;

	assert_non_null(out);
	assert_int_equal(hexlen % 2, 0);
	for (i = 0; i < hexlen / 2; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			fail_msg("bad hex at %zu", 2 * i);
		out[i] = (unsigned char)v;
	}
	out[i] = 0;
	*len = i;
	return out;
}

/* Does err contain "at byte <off>"? */
static inline int
tu_has_offset(const char *err, size_t off)
{
	char want[48];

	snprintf(want, sizeof(want), "at byte %zu", off);
	return strstr(err, want) != NULL;
}

#endif
