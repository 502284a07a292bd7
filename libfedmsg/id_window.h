/*
 * The msg_ids seen lately, in bounded memory: the bridges' loop
 * prevention (a message they sent that comes back) and the hub's
 * per-consumer de-duplication.  Two generations of half the window each:
 * when the current one is full the older is cleared and reused, so an id
 * is remembered for between window/2 and window later ids.
 */
#ifndef FM_ID_WINDOW_H
#define FM_ID_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct id_window;

/* A window of the given size (0 counts as 1); NULL when out of memory. */
struct id_window *id_window_new(size_t window);
void id_window_free(struct id_window *w);

/* The key of a msg_id (never 0, which marks a free slot). */
uint64_t id_window_key(const char *id);

/* Whether the key is remembered. */
bool id_window_has(const struct id_window *w, uint64_t key);

/* Remember the key (one already remembered is not added twice). */
void id_window_add(struct id_window *w, uint64_t key);

/* Whether id is remembered; remembers it if not. */
bool id_window_seen(struct id_window *w, const char *id);

#endif
