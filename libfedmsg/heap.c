#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "heap.h"

bool
heap_env_untuned(const char *glibc_tunables)
{
	static const char *const vars[] = { "MALLOC_TRIM_THRESHOLD_",
	    "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_" };

	if (glibc_tunables != NULL &&
	    strstr(glibc_tunables, "glibc.malloc.") != NULL)
		return false;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (getenv(vars[i]) != NULL)
			return false;
	return true;
}

bool
heap_keep_freed(void)
{
#if defined(__GLIBC__)
	if (!heap_env_untuned(getenv("GLIBC_TUNABLES")))
		return false;
	/* mallopt() returns 1 on success; ASan's stand-in returns 0 */
	return mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_BYTES) == 1 &&
	    mallopt(M_TRIM_THRESHOLD, HEAP_KEEP_BYTES) == 1 &&
	    mallopt(M_TOP_PAD, HEAP_PAD_BYTES) == 1;
#else
	return false;
#endif
}
