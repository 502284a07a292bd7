/*
 * The verify-once cache (verified.h).
 *
 * Sets of WAYS slots, placed by the signature's bytes and the certificate
 * fingerprint; within a set a clock hand picks the victim, passing over a
 * slot hit since the hand last went by.  A crafted stream can only evict
 * entries (costing a full verify again), never match one: a match
 * compares the whole key and the whole text.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "verified.h"

#define WAYS	4

struct slot {
	unsigned char	 fp[SHA256_DIGEST_LENGTH];
	unsigned char	*blob;		/* owned: signature, then text; NULL: free */
	size_t		 siglen, len;
	bool		 referenced;	/* hit since the clock hand passed */
};

struct verified {
	pthread_mutex_t	 lock;		/* guards everything below */
	struct slot	*slots;		/* nsets * WAYS */
	size_t		 nsets;
	unsigned char	*hand;		/* per set: the next victim's way */
	size_t		 bytes, max_bytes, max_entry, held;
	unsigned long long hits;
};

struct verified *
verified_new(size_t entries, size_t max_bytes)
{
	struct verified *vc = calloc(1, sizeof(*vc));

	if (vc == NULL)
		return NULL;
	vc->nsets = entries / WAYS ? entries / WAYS : 1;
	vc->max_bytes = max_bytes;
	vc->max_entry = max_bytes / 64;
	if ((vc->slots = calloc(vc->nsets * WAYS, sizeof(*vc->slots))) ==
	    NULL || (vc->hand = calloc(vc->nsets, 1)) == NULL) {
		free(vc->slots);
		free(vc);
		return NULL;
	}
	pthread_mutex_init(&vc->lock, NULL);
	return vc;
}

static void
slot_clear(struct verified *vc, struct slot *s)
{
	if (s->blob) {
		vc->bytes -= s->siglen + s->len;
		vc->held--;
	}
	free(s->blob);
	memset(s, 0, sizeof(*s));
}

void
verified_clear(struct verified *vc)
{
	size_t i;

	pthread_mutex_lock(&vc->lock);
	for (i = 0; i < vc->nsets * WAYS; i++)
		slot_clear(vc, &vc->slots[i]);
	pthread_mutex_unlock(&vc->lock);
}

void
verified_free(struct verified *vc)
{
	if (vc == NULL)
		return;
	verified_clear(vc);
	pthread_mutex_destroy(&vc->lock);
	free(vc->slots);
	free(vc->hand);
	free(vc);
}

/* The set of a key: a signature's bytes are as good as random. */
static struct slot *
set_of(const struct verified *vc, const unsigned char *fp,
    const unsigned char *sig, size_t siglen)
{
	uint64_t a = 0, b;

	memcpy(&a, sig + siglen / 2, siglen - siglen / 2 < 8 ?
	    siglen - siglen / 2 : 8);
	memcpy(&b, fp, sizeof(b));
	a = (a ^ b ^ siglen) * 0x9e3779b97f4a7c15ULL;
	return &vc->slots[(size_t)(a >> 17) % vc->nsets * WAYS];
}

static bool
matches(const struct slot *s, const unsigned char *fp,
    const unsigned char *sig, size_t siglen, const char *text, size_t len)
{
	return s->blob && s->siglen == siglen && s->len == len &&
	    memcmp(s->fp, fp, sizeof(s->fp)) == 0 &&
	    memcmp(s->blob, sig, siglen) == 0 &&
	    memcmp(s->blob + siglen, text, len) == 0;
}

bool
verified_seen(struct verified *vc, const unsigned char *fp,
    const unsigned char *sig, size_t siglen, const char *text, size_t len)
{
	struct slot *set;
	bool hit = false;
	int w;

	if (siglen == 0)
		return false;
	set = set_of(vc, fp, sig, siglen);
	pthread_mutex_lock(&vc->lock);
	for (w = 0; w < WAYS && !hit; w++)
		if (matches(&set[w], fp, sig, siglen, text, len)) {
			set[w].referenced = true;
			vc->hits++;
			hit = true;
		}
	pthread_mutex_unlock(&vc->lock);
	return hit;
}

void
verified_add(struct verified *vc, const unsigned char *fp,
    const unsigned char *sig, size_t siglen, const char *text, size_t len)
{
	struct slot *set, *s;
	unsigned char *blob;
	size_t need = siglen + len, k;
	int w;

	if (siglen == 0 || need < len || need > vc->max_entry ||
	    (blob = malloc(need)) == NULL)
		return;
	memcpy(blob, sig, siglen);
	memcpy(blob + siglen, text, len);
	set = set_of(vc, fp, sig, siglen);
	k = (size_t)(set - vc->slots) / WAYS;
	pthread_mutex_lock(&vc->lock);
	for (w = 0; w < WAYS; w++)
		if (matches(&set[w], fp, sig, siglen, text, len)) {
			/* another thread got there first */
			pthread_mutex_unlock(&vc->lock);
			free(blob);
			return;
		}
	/* clock: a free slot, else the first not referenced since last time */
	for (w = 0; w < WAYS && set[w].blob; w++)
		;
	if (w == WAYS)
		for (;;) {
			s = &set[vc->hand[k]];
			vc->hand[k] = (unsigned char)((vc->hand[k] + 1) % WAYS);
			if (!s->referenced) {
				w = (int)(s - set);
				break;
			}
			s->referenced = false;
		}
	s = &set[w];
	slot_clear(vc, s);
	if (vc->bytes + need > vc->max_bytes) {
		/* still over the byte bound: this one is not kept */
		pthread_mutex_unlock(&vc->lock);
		free(blob);
		return;
	}
	memcpy(s->fp, fp, sizeof(s->fp));
	s->blob = blob;
	s->siglen = siglen;
	s->len = len;
	vc->bytes += need;
	vc->held++;
	pthread_mutex_unlock(&vc->lock);
}

void
verified_counts(struct verified *vc, unsigned long long *hits, size_t *held)
{
	pthread_mutex_lock(&vc->lock);
	*hits = vc->hits;
	*held = vc->held;
	pthread_mutex_unlock(&vc->lock);
}
