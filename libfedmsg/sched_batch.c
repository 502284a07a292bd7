/*
 * SCHED_BATCH for the threads that serve another (sched_batch.h).
 */
#include <pthread.h>
#include <sched.h>

#include "sched_batch.h"

/*
 * The calling thread to SCHED_BATCH if it is SCHED_OTHER; its policy and
 * parameters before, in *policy and *was.
 */
static bool
other_to_batch(int *policy, struct sched_param *was)
{
	struct sched_param zero = { .sched_priority = 0 };

	return pthread_getschedparam(pthread_self(), policy, was) == 0 &&
	    *policy == SCHED_OTHER &&
	    pthread_setschedparam(pthread_self(), SCHED_BATCH, &zero) == 0;
}

bool
sched_batch_self(void)
{
	struct sched_param was;
	int policy;

	return other_to_batch(&policy, &was);
}

bool
sched_batch_possible(void)
{
	struct sched_param was;
	int policy;

	if (!other_to_batch(&policy, &was))
		return false;
	(void)pthread_setschedparam(pthread_self(), policy, &was);
	return true;
}
