/*
 * The loop-prevention window (seen.h).  Each generation is an
 * open-addressing table of at least twice the window's slots, a power of
 * two so that a probe takes a mask, not a 64-bit division; a lookup
 * probes both generations, whose first slots are loaded together.
 */
#include <stdlib.h>
#include <string.h>

#include "seen.h"

struct seen {
	uint64_t	*gen[2];
	size_t		 mask;		/* slots - 1 */
	size_t		 window, count;	/* count: keys in gen[cur] */
	int		 cur;
};

struct seen *
seen_new(size_t window)
{
	struct seen *s;
	size_t slots = 16;

	if (window == 0)
		window = 1;
	while (slots < window * 2)
		slots *= 2;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->gen[0] = calloc(slots, sizeof(uint64_t));
	s->gen[1] = calloc(slots, sizeof(uint64_t));
	if (s->gen[0] == NULL || s->gen[1] == NULL) {
		seen_free(s);
		return NULL;
	}
	s->mask = slots - 1;
	s->window = window;
	return s;
}

void
seen_free(struct seen *s)
{
	if (s == NULL)
		return;
	free(s->gen[0]);
	free(s->gen[1]);
	free(s);
}

/*
 * FNV-1a over 8 bytes a step (a msg_id is a 36-44 byte UUID: a byte a
 * step was a 40-multiply dependency chain), then a final mix so that the
 * low bits, which pick the slot, depend on every byte.
 */
uint64_t
seen_key(const char *id)
{
	size_t len = strlen(id), i;
	uint64_t h = 1469598103934665603ull ^ len;

	for (i = 0; len - i >= 8; i += 8) {
		uint64_t w;

		memcpy(&w, id + i, sizeof(w));
		h = (h ^ w) * 1099511628211ull;
		h ^= h >> 32;
	}
	for (; i < len; i++)
		h = (h ^ (unsigned char)id[i]) * 1099511628211ull;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return h | 1;
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
seen_has(const struct seen *s, uint64_t key)
{
	return gen_has(s->gen[s->cur], s->mask, key) ||
	    gen_has(s->gen[!s->cur], s->mask, key);
}

void
seen_add(struct seen *s, uint64_t key)
{
	uint64_t *t;
	size_t i;

	if (seen_has(s, key))
		return;
	if (s->count == s->window) {
		/* the older generation is forgotten: at most half full */
		s->cur ^= 1;
		memset(s->gen[s->cur], 0, (s->mask + 1) * sizeof(uint64_t));
		s->count = 0;
	}
	t = s->gen[s->cur];
	for (i = key & s->mask; t[i]; i = (i + 1) & s->mask)
		;
	t[i] = key;
	s->count++;
}
