/* The monotonic clock, as every timer here uses it. */
#ifndef FM_CLOCK_H
#define FM_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds and in microseconds. */
int64_t clock_ms(void);
int64_t clock_us(void);

#endif
