/*
 * Loop prevention on the bridges: the msg_ids forwarded lately, so that a
 * message a bridge sent and that comes back (ZeroMQ -> broker -> ZeroMQ,
 * or the other way) is dropped.  Bounded: two generations of a window
 * each; when the current one is full the older is cleared and reused, so
 * an id is remembered for at least one window of later ids.
 */
#ifndef FM_SEEN_H
#define FM_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct seen;

/* A table that remembers at least window ids; NULL when out of memory. */
struct seen *seen_new(size_t window);
void seen_free(struct seen *s);

/* The key of a msg_id (never 0, which marks a free slot). */
uint64_t seen_key(const char *id);

/* Whether the key was added within the last window of adds. */
bool seen_has(const struct seen *s, uint64_t key);

/* Remember the key (a key already there is not added twice). */
void seen_add(struct seen *s, uint64_t key);

#endif
