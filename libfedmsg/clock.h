/* The monotonic clock, as every timer here uses it. */
#ifndef FM_CLOCK_H
#define FM_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds and in microseconds. */
int64_t clock_ms(void);
int64_t clock_us(void);
/* A clock_ms() value as a timespec: a deadline for pthread_cond_timedwait()
 * on a condition variable set to CLOCK_MONOTONIC. */
struct timespec clock_timespec(int64_t ms);
/* Sleep us microseconds; a signal ends it early. */
void clock_sleep_us(unsigned us);

#endif
