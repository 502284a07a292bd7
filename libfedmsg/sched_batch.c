/*
 * SCHED_BATCH for the threads that serve another (sched_batch.h).
 */
#include <pthread.h>
#include <sched.h>

#include "sched_batch.h"

/* The calling thread, known to be SCHED_OTHER, to SCHED_BATCH. */
static bool
to_batch(void)
{
	struct sched_param zero = { .sched_priority = 0 };

	return pthread_setschedparam(pthread_self(), SCHED_BATCH, &zero) == 0;
}

bool
sched_batch_self(void)
{
	struct sched_param was;
	int policy;

	return pthread_getschedparam(pthread_self(), &policy, &was) == 0 &&
	    policy == SCHED_OTHER && to_batch();
}

bool
sched_batch_possible(void)
{
	struct sched_param was;
	int policy;

	if (pthread_getschedparam(pthread_self(), &policy, &was) != 0 ||
	    policy != SCHED_OTHER || !to_batch())
		return false;
	(void)pthread_setschedparam(pthread_self(), policy, &was);
	return true;
}
