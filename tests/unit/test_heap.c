/*
 * heap_keep_freed(): the environment's malloc tuning wins over ours, and
 * (where malloc is glibc's, not ASan's) memory freed at the top of the
 * heap stays mapped instead of going back to the kernel at 128 KiB.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "heap.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static void
test_env_wins(void **state)
{
	(void)state;
	unsetenv("MALLOC_TRIM_THRESHOLD_");
	unsetenv("MALLOC_TOP_PAD_");
	unsetenv("MALLOC_MMAP_THRESHOLD_");
	assert_true(heap_env_untuned(NULL));
	assert_true(heap_env_untuned(""));
	assert_true(heap_env_untuned("glibc.pthread.rseq=0"));
	assert_false(heap_env_untuned("glibc.malloc.trim_threshold=0"));
	assert_false(heap_env_untuned(
	    "glibc.rtld.nns=2:glibc.malloc.arena_max=1"));
	setenv("MALLOC_TOP_PAD_", "0", 1);
	assert_false(heap_env_untuned(NULL));
	unsetenv("MALLOC_TOP_PAD_");
	setenv("MALLOC_MMAP_THRESHOLD_", "65536", 1);
	assert_false(heap_env_untuned(""));
	unsetenv("MALLOC_MMAP_THRESHOLD_");

	setenv("GLIBC_TUNABLES", "glibc.malloc.top_pad=0", 1);
	assert_false(heap_keep_freed());
	unsetenv("GLIBC_TUNABLES");
}

static void
test_freed_top_stays(void **state)
{
	(void)state;
	unsetenv("GLIBC_TUNABLES");
	if (!heap_keep_freed()) {
#if defined(UNDER_ASAN) || !defined(__GLIBC__)
		skip();	/* not glibc's malloc: nothing to keep */
#else
		fail_msg("heap_keep_freed() refused with glibc's malloc");
#endif
	}
#if defined(__GLIBC__)
	/* 512 KiB: above glibc's own limits (128 KiB to trim, 128 KiB to
	 * mmap), under ours; freed, it joins the top and stays there */
	size_t n = 512u << 10;
	char *p = malloc(n);

	assert_non_null(p);
	memset(p, 1, n);
	free(p);
	assert_true(mallinfo2().keepcost >= n);
#endif
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_wins),
		cmocka_unit_test(test_freed_top_stays),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
