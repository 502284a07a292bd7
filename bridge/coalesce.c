/*
 * Coalescing (coalesce.h).  Waiting after a turn that took a few
 * messages lets the kernel gather the next ones; an idle turn has nothing
 * to gather and a busy one needs no help, so neither waits.
 */
#include "coalesce.h"

unsigned
coalesce_wait(const uint64_t *taken, const unsigned *wait_us, int n)
{
	unsigned wait = 0;
	int i;

	for (i = 0; i < n; i++) {
		if (taken[i] >= COALESCE_FEW)
			return 0;
		if (taken[i] && wait_us[i] && (wait == 0 || wait_us[i] < wait))
			wait = wait_us[i];
	}
	return wait;
}
