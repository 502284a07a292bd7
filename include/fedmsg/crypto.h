/*
 * fedmsg-c crypto API: fedmsg's "x509" signatures (RSA PKCS#1 v1.5 with
 * SHA-1 over the canonical JSON) and their validation against a CA, an
 * optional CRL and a routing policy, with fedmsg's verdicts.
 *
 * Where fedmsg is unsafe this code is safe (README.md, "Security"):
 * no download fallback when no CA is configured, the CA and CRL are re-read
 * when their files change, a certificate without CN or bad base64 is a
 * rejection with a reason (never a crash), and an optional freshness window
 * rejects replayed old messages.
 */
#ifndef FEDMSG_CRYPTO_H
#define FEDMSG_CRYPTO_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include <fedmsg/message.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- signing ---------------------------------------------------------- */

struct fm_signer;

/*
 * Load a signer from a PEM certificate (the first one in the file is used,
 * as fedmsg does) and an unencrypted PEM RSA private key.  Returns a new
 * signer the caller frees with fm_signer_free(), or NULL with a reason in
 * err[FM_ERRLEN].
 */
struct fm_signer *fm_signer_load(const char *cert_path, const char *key_path,
    char *err);
void fm_signer_free(struct fm_signer *s);

/* The certificate's first CN, owned by the signer. NULL if it has none. */
const char *fm_signer_cn(const struct fm_signer *s);

/*
 * Sign an envelope the way fedmsg.crypto.sign() does, except that any
 * old "signature"/"certificate" is dropped first (fedmsg would sign over
 * them and produce a message nobody can validate): set "crypto" to
 * "x509", sign the canonical text, add "signature" and "certificate"
 * (base64, wrapped at 76 columns with a final newline).  The new body is
 * canonical JSON.  Returns 0 and a new message in *out, or -1 and err.
 * Thread-safe: one signer may sign from several threads.
 */
int fm_signer_sign(const struct fm_signer *s, const struct fm_msg *in,
    struct fm_msg **out, char *err);

/* ---- validation -------------------------------------------------------- */

/* Why a message is not valid.  FM_VALID is 0. */
enum fm_verdict {
	FM_VALID = 0,
	FM_INVALID_UNSIGNED,		/* no crypto/certificate/signature */
	FM_INVALID_FIELD,		/* signature/certificate/crypto/topic of the wrong type or missing */
	FM_INVALID_BACKEND,		/* crypto names an unknown or disallowed backend */
	FM_INVALID_BASE64,		/* signature or certificate is not decodable */
	FM_INVALID_CERT,		/* the certificate does not parse as PEM X.509 */
	FM_INVALID_CHAIN,		/* CA/CRL/date check failed (OpenSSL's reason) */
	FM_INVALID_SIGNATURE,		/* RSA/SHA-1 signature does not match */
	FM_INVALID_NO_CN,		/* certificate subject has no commonName */
	FM_INVALID_ROUTING,		/* CN not allowed for topic by routing_policy */
	FM_INVALID_STALE,		/* timestamp older than max_age (opt-in) */
	FM_INVALID_FUTURE,		/* timestamp too far ahead (opt-in) */
	FM_INVALID_DUPLICATE_KEY,	/* a key appears twice (readers would disagree) */
	FM_VERDICT_COUNT
};

/* A short stable token for each verdict ("valid", "bad_signature", ...). */
const char *fm_verdict_name(enum fm_verdict v);

/* max_future when max_age is set and max_future is 0: seconds. */
#define FM_DEFAULT_MAX_FUTURE	60

struct fm_validator_config {
	const char	*ca_path;	/* required: PEM file, first cert trusted */
	const char	*crl_path;	/* NULL or "": no revocation check */
	bool		 routing_nitpicky;
	/* Allowed "crypto" backends; fedmsg-c implements only "x509". */
	bool		 allow_x509;
	/*
	 * How often (seconds) to stat the CA/CRL files for changes; 0 uses the
	 * default of 1.  The files are also re-read after reload_max_age
	 * seconds even when unchanged (0: never).
	 */
	unsigned	 reload_check_interval;
	unsigned	 reload_max_age;
	/*
	 * Freshness (0 = off, fedmsg's behaviour): seconds.  With max_age set,
	 * max_future 0 means FM_DEFAULT_MAX_FUTURE: an age limit is no limit
	 * if messages may be dated years ahead (UINT_MAX: no future limit).
	 */
	unsigned	 max_age;
	unsigned	 max_future;
	/* Certificate verdict cache size (entries); 0 = 1024. */
	unsigned	 cert_cache_size;
	/*
	 * Verify-once cache: messages (certificate, signature and signed
	 * bytes, compared in full) whose signature verified, so a message
	 * seen again skips the RSA operation; the certificate is still judged
	 * every time.  Entries; 0 = FM_DEFAULT_VERIFIED_CACHE,
	 * FM_VERIFIED_CACHE_OFF = no cache.  Bytes held: at most
	 * FM_VERIFIED_CACHE_ENTRY_BYTES times the entries, at least 256 KiB
	 * (2 MiB by default: the duplicates it is for arrive within seconds),
	 * and no one message over 1/64 of that, so big messages never fill
	 * a hub's memory.
	 */
	unsigned	 verified_cache_size;
};

#define FM_DEFAULT_VERIFIED_CACHE	4096
#define FM_VERIFIED_CACHE_ENTRY_BYTES	512
#define FM_VERIFIED_CACHE_OFF		UINT_MAX

struct fm_validator;

/*
 * Create a validator.  Loads the CA (and CRL) now: a missing or unreadable
 * file is an error here, with the path in err[FM_ERRLEN].  Returns NULL on
 * error.  The config is copied.
 */
struct fm_validator *fm_validator_new(const struct fm_validator_config *cfg,
    char *err);
void fm_validator_free(struct fm_validator *v);

/*
 * Allow signer cn to publish on topic (routing_policy[topic] += [cn]).
 * Call before validating; returns 0 or -1 on OOM.
 */
int fm_validator_allow(struct fm_validator *v, const char *topic,
    const char *cn);

/*
 * Validate a message.  Returns FM_VALID or the first failing check, with a
 * human reason in reason[FM_ERRLEN] (may be NULL).  Certificate chains are
 * verified once and cached by the SHA-256 of the certificate's DER (any
 * spelling of the field finds it), so a known signer costs one RSA
 * verification; rejected certificates are cached apart, in a small ring,
 * and never evict trusted ones.  A message whose exact signed bytes and
 * signature verified before under the same certificate skips the RSA
 * operation (verified_cache_size).  Thread-safe.
 */
enum fm_verdict fm_validator_check(struct fm_validator *v,
    const struct fm_msg *msg, char *reason);

/* Same, with the clock given (seconds since the epoch), for tests/tools. */
enum fm_verdict fm_validator_check_at(struct fm_validator *v,
    const struct fm_msg *msg, int64_t now, char *reason);

/* Drop cached CA/CRL/verdicts; the next check re-reads the files. */
void fm_validator_reload(struct fm_validator *v);

/* Counters of the certificate verdict cache (for tests and metrics). */
struct fm_validator_stats {
	uint64_t	 chain_checks;		/* certificates parsed and verified */
	uint64_t	 cache_hits;		/* verdicts answered from the cache */
	size_t		 trusted_entries;	/* cached valid certificates */
	size_t		 negative_entries;	/* cached rejected certificates */
	uint64_t	 verified_hits;		/* RSA verifications skipped */
	size_t		 verified_entries;	/* messages in the verify-once cache */
	size_t		 spelling_entries;	/* certificate field texts kept */
	size_t		 spelling_bytes;	/* and their size */
};

void fm_validator_stats(struct fm_validator *v, struct fm_validator_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* FEDMSG_CRYPTO_H */
