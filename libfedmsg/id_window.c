/*
 * The window of msg_ids seen lately (id_window.h).  Each generation is an
 * open-addressing table of at least twice its share of the window, a
 * power of two so that a probe takes a mask, not a 64-bit division.
 */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "id_window.h"

struct id_window {
	uint64_t	*gen[2];
	size_t		 mask;		/* slots - 1 */
	size_t		 half, count;	/* count: keys in gen[cur] */
	int		 cur;
};

struct id_window *
id_window_new(size_t window)
{
	struct id_window *w;
	size_t slots = 16;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->half = window > 1 ? (window + 1) / 2 : 1;
	while (slots < w->half * 2)
		slots *= 2;
	w->gen[0] = calloc(slots, sizeof(uint64_t));
	w->gen[1] = calloc(slots, sizeof(uint64_t));
	if (w->gen[0] == NULL || w->gen[1] == NULL) {
		id_window_free(w);
		return NULL;
	}
	w->mask = slots - 1;
	return w;
}

void
id_window_free(struct id_window *w)
{
	if (w == NULL)
		return;
	free(w->gen[0]);
	free(w->gen[1]);
	free(w);
}

uint64_t
id_window_key(const char *id)
{
	size_t len = strlen(id);

	return hash_bytes(id, len, len) | 1;
}

static bool
gen_has(const uint64_t *t, size_t mask, uint64_t key)
{
	size_t i;

	for (i = key & mask; t[i]; i = (i + 1) & mask)
		if (t[i] == key)
			return true;
	return false;
}

bool
id_window_has(const struct id_window *w, uint64_t key)
{
	return gen_has(w->gen[w->cur], w->mask, key) ||
	    gen_has(w->gen[!w->cur], w->mask, key);
}

/* Add a key that is not there. */
static void
insert(struct id_window *w, uint64_t key)
{
	uint64_t *t;
	size_t i;

	if (w->count == w->half) {
		/* the older generation is forgotten: at most half full */
		w->cur ^= 1;
		memset(w->gen[w->cur], 0, (w->mask + 1) * sizeof(uint64_t));
		w->count = 0;
	}
	t = w->gen[w->cur];
	for (i = key & w->mask; t[i]; i = (i + 1) & w->mask)
		;
	t[i] = key;
	w->count++;
}

void
id_window_add(struct id_window *w, uint64_t key)
{
	if (!id_window_has(w, key))
		insert(w, key);
}

bool
id_window_seen(struct id_window *w, const char *id)
{
	uint64_t key = id_window_key(id);

	if (id_window_has(w, key))
		return true;
	insert(w, key);
	return false;
}
