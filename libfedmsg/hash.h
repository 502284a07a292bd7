/*
 * A fast 64-bit hash for in-memory tables (never stored, never sent):
 * FNV-1a over 8-byte words, then a mix so that the low bits, which pick a
 * slot, depend on every byte.  A byte a step was a multiply chain as long
 * as the text (a msg_id's 40 bytes, 400 instructions of a certificate).
 */
#ifndef FM_HASH_H
#define FM_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t
hash_bytes(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = 1469598103934665603ull ^ seed;
	size_t i;

	for (i = 0; len - i >= 8; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, sizeof(w));
		h = (h ^ w) * 1099511628211ull;
		h ^= h >> 32;	/* high bits down: the product moves bits up */
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return h;
}

#endif
