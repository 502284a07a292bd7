/*
 * SCHED_BATCH for the threads that serve another: ZeroMQ's I/O threads
 * and the hub's consumer workers.
 *
 * Such a thread, woken while the CPU runs another (say, the thread that
 * verifies signatures and hands it work), waits for that one to yield
 * instead of preempting it, and then takes everything that piled up, in
 * one wake-up instead of one per message.  It still gets its fair share
 * of the CPU; on an idle CPU nothing changes.  PERFORMANCE.md, "Threads
 * that wait their turn", has the figures.
 */
#ifndef FM_SCHED_BATCH_H
#define FM_SCHED_BATCH_H

#include <stdbool.h>

/*
 * May a thread of this process switch to SCHED_BATCH?  Only when the
 * calling thread is SCHED_OTHER (a real-time process keeps its policy for
 * every thread) and the switch works (a seccomp filter may refuse it):
 * tried on the calling thread, which then switches back.
 */
bool sched_batch_possible(void);

/* Make the calling thread SCHED_BATCH when it is SCHED_OTHER; false if not
   done. */
bool sched_batch_self(void);

#endif
