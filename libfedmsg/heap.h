/* How the long-running programs ask glibc's malloc to keep freed memory. */
#ifndef FM_HEAP_H
#define FM_HEAP_H

#include <stdbool.h>

/*
 * Each message a daemon handles allocates and frees a few pages (libzmq's
 * receive buffers, the parsed message, the broker library's frames).
 * glibc gives freed memory back to the kernel as soon as 128 KiB of it
 * sits at the top of the heap, so the next messages fault the same pages
 * in again: up to one page fault per 3 KB message, 13 % of a bridge's
 * profile samples on the development VM (PERFORMANCE.md, "Page faults,
 * writes and monitor looks").
 *
 * heap_keep_freed() raises that limit: up to HEAP_KEEP_BYTES freed at the
 * top of each malloc arena stay mapped for reuse, sbrk() grows the heap
 * HEAP_PAD_BYTES at a time, and blocks under HEAP_MMAP_BYTES come from
 * the heap (a fixed limit, as setting the others turns glibc's sliding
 * one off).  What stays mapped is bounded by the program's own peak.
 *
 * Call it once at start, before any thread.  It changes nothing and
 * returns false when the environment already tunes malloc (a
 * glibc.malloc. entry in GLIBC_TUNABLES, or MALLOC_TRIM_THRESHOLD_,
 * MALLOC_TOP_PAD_ or MALLOC_MMAP_THRESHOLD_ set): the user's choice wins.
 * Also false where malloc is not glibc's (an ASan build replaces it).
 */
#define HEAP_KEEP_BYTES (16 << 20)
#define HEAP_PAD_BYTES (1 << 20)
#define HEAP_MMAP_BYTES (1 << 20)

bool heap_keep_freed(void);

/* Whether ENV (GLIBC_TUNABLES's value, or NULL) and the MALLOC_*_
 * variables leave malloc's trimming to us: heap_keep_freed()'s test. */
bool heap_env_untuned(const char *glibc_tunables);

#endif
