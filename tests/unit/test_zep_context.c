/*
 * zep_context_new(): ZeroMQ's I/O threads run as SCHED_BATCH (they do not
 * preempt our busy threads when they wake), and the thread that made the
 * context keeps its own policy.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zep.h"

/* The scheduling policy of this process's thread named name, or -1. */
static int
policy_of(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int policy = -1;

	assert_non_null(d);
	while (policy < 0 && (e = readdir(d)) != NULL) {
		char path[300], comm[64] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
		    e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(comm, sizeof(comm), f) != NULL) {
			comm[strcspn(comm, "\n")] = '\0';
			if (strcmp(comm, name) == 0)
				policy = sched_getscheduler(atoi(e->d_name));
		}
		fclose(f);
	}
	closedir(d);
	return policy;
}

static void
io_threads_are_batch(void **state)
{
	void *ctx = zep_context_new(NULL), *s;
	struct sched_param sp;
	int mine, tries;

	(void)state;
	assert_non_null(ctx);
	/* The I/O threads start with the first socket, and each names
	   itself and sets its policy once it runs: wait for it. */
	assert_non_null(s = zmq_socket(ctx, ZMQ_PUB));
	for (tries = 0; tries < 500 && policy_of("ZMQbg/IO/0") != SCHED_BATCH;
	    tries++)
		usleep(10 * 1000);
	assert_int_equal(policy_of("ZMQbg/IO/0"), SCHED_BATCH);
	assert_int_equal(pthread_getschedparam(pthread_self(), &mine, &sp), 0);
	assert_int_equal(mine, SCHED_OTHER);
	zmq_close(s);
	zmq_ctx_term(ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(io_threads_are_batch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
