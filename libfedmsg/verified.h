/*
 * The verify-once cache: (certificate, signature, signed text) triples
 * whose RSA signature was checked and held, so that a message seen again
 * (through a gateway, a second relay, a replay) skips the RSA operation.
 *
 * A hit needs the same SHA-256 of the certificate's DER, the same
 * signature bytes and the very same canonical text, compared in full: no
 * crafted message can borrow another's result.  An entry only says "this
 * key signed these bytes", which no CA or CRL change can make false; the
 * validator still judges the certificate (chain, CRL, dates) for every
 * message before it asks, and empties the cache when it reloads its trust
 * anyway.  Bounded in entries and in bytes; thread-safe (its own lock).
 */
#ifndef FM_VERIFIED_H
#define FM_VERIFIED_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/sha.h>

struct verified;

/*
 * A cache of at most entries triples and max_bytes of signature and text
 * in all; triples larger than max_bytes / 64 are not kept.  NULL when out
 * of memory.
 */
struct verified *verified_new(size_t entries, size_t max_bytes);
void verified_free(struct verified *vc);

/* fp: SHA256_DIGEST_LENGTH bytes.  Whether this exact triple was added (and not evicted or cleared since). */
bool verified_seen(struct verified *vc,
    const unsigned char *fp, const unsigned char *sig,
    size_t siglen, const char *text, size_t len);

/* Remember a triple whose signature verified; may evict an older one. */
void verified_add(struct verified *vc,
    const unsigned char *fp, const unsigned char *sig,
    size_t siglen, const char *text, size_t len);

/* Forget everything (the trust was reloaded). */
void verified_clear(struct verified *vc);

/* Counters: lookups answered, triples held now. */
void verified_counts(struct verified *vc, unsigned long long *hits,
    size_t *held);

#endif
