/*
 * Validation of fedmsg "x509" signatures with fedmsg's verdicts
 * (fedmsg/crypto/__init__.py and x509_ng.py), made safe and cheap:
 *
 *  - The CA (first certificate of ca_path) and the CRL (first CRL of
 *    crl_path) are loaded once and re-read when either file changes (stat
 *    at most every reload_check_interval seconds) or after reload_max_age.
 *    fedmsg keeps a CRL until a failure or restart.
 *  - A certificate's chain verdict is cached by the SHA-256 of its DER
 *    bytes (so no spelling of the base64 or PEM text makes a new entry),
 *    for as long as the dates of the leaf, the CA and the CRL say it holds;
 *    a known signer costs one RSA verification.  Trusted certificates and
 *    rejected ones are kept apart: rejected ones go to a small ring of
 *    their own, so a flood of bad certificates cannot evict a trusted one.
 *  - A message whose signature verified before (same certificate DER,
 *    same signature bytes, same canonical text) skips the RSA operation:
 *    verified.h.  Its certificate is judged as for any other message.
 *  - Every malformed input is a verdict with a reason, never an abort.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <fedmsg/crypto.h>

#include "b64.h"
#include "clock.h"
#include "hash.h"
#include "log.h"
#include "msg.h"
#include "verified.h"
#include "x509util.h"

/* How long a negative certificate verdict is trusted before a retry. */
#define NEGATIVE_TTL	60
/* Rejected certificates remembered (a ring: the oldest goes first). */
#define NEGATIVE_SLOTS	64
/* The longest certificate field whose text is remembered (spelling):
 * base64 of a PEM certificate with an RSA-4096 key is about 3 KB. */
#define SPELLING_MAX	8192

struct route {
	char	 *topic;
	char	**cns;
	size_t	  ncns;
};

struct cert_entry {
	unsigned char	 fp[SHA256_DIGEST_LENGTH];
	bool		 used;
	enum fm_verdict	 verdict;
	char		 reason[160];
	EVP_PKEY	*pkey;		/* reference held by the cache */
	char		*cn;
	int64_t		 lo, hi;	/* the verdict holds for lo <= now < hi */
};

/*
 * A certificate field's text that was seen to decode to a trusted DER.
 * The text itself is kept and compared in full: a hit needs the very same
 * bytes, so no crafted field can borrow another's verdict, and the lookup
 * costs a memcmp instead of a SHA-256 of some 2.7 KB per message.
 */
struct spelling {
	char		*text;		/* owned; NULL: slot free */
	size_t		 len;
	unsigned char	 der_fp[SHA256_DIGEST_LENGTH];
};

struct file_id {
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime;
};

struct fm_validator {
	struct fm_validator_config cfg;
	char		*ca_path, *crl_path;	/* crl_path NULL: no CRL */
	struct route	*routes;		/* sorted by topic */
	size_t		 nroutes;

	pthread_mutex_t	 lock;		/* guards everything below */
	X509_STORE	*store;
	int64_t		 trust_lo, trust_hi;
	struct file_id	 ca_id, crl_id;
	bool		 reload_failing;	/* warned about a bad reload */
	int64_t		 last_stat, loaded_at;	/* monotonic seconds */
	bool		 force_reload;
	struct cert_entry *cache;	/* trusted, by DER fingerprint */
	size_t		 cache_cap, cache_count;
	struct spelling	*spell;		/* cache_cap slots, direct-mapped */
	struct cert_entry neg[NEGATIVE_SLOTS];
	size_t		 neg_next;
	uint64_t	 chain_checks, cache_hits;
	struct verified	*verified;	/* own lock; NULL: no verify-once cache */
};

static const char *const verdict_names[FM_VERDICT_COUNT] = {
	[FM_VALID] = "valid",
	[FM_INVALID_UNSIGNED] = "unsigned",
	[FM_INVALID_FIELD] = "bad_field",
	[FM_INVALID_BACKEND] = "bad_backend",
	[FM_INVALID_BASE64] = "bad_base64",
	[FM_INVALID_CERT] = "bad_certificate",
	[FM_INVALID_CHAIN] = "untrusted_certificate",
	[FM_INVALID_SIGNATURE] = "bad_signature",
	[FM_INVALID_NO_CN] = "no_common_name",
	[FM_INVALID_ROUTING] = "routing_policy",
	[FM_INVALID_STALE] = "stale",
	[FM_INVALID_FUTURE] = "future",
	[FM_INVALID_DUPLICATE_KEY] = "duplicate_key",
};

const char *
fm_verdict_name(enum fm_verdict v)
{
	return (unsigned)v < FM_VERDICT_COUNT ? verdict_names[v] : "unknown";
}

static int
file_id(const char *path, struct file_id *id)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->size = st.st_size;
	id->mtime = st.st_mtim;
	return 0;
}

static bool
same_file(const struct file_id *a, const struct file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime.tv_sec == b->mtime.tv_sec &&
	    a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void
entry_clear(struct cert_entry *e)
{
	EVP_PKEY_free(e->pkey);
	free(e->cn);
	memset(e, 0, sizeof(*e));
}

/* Empty the trusted table and the spellings pointing into it. */
static void
cache_flush_trusted(struct fm_validator *v)
{
	size_t i;

	for (i = 0; i < v->cache_cap; i++)
		if (v->cache[i].used)
			entry_clear(&v->cache[i]);
	if (v->spell)
		for (i = 0; i < v->cache_cap; i++) {
			free(v->spell[i].text);
			v->spell[i].text = NULL;
		}
	v->cache_count = 0;
}

static void
cache_flush(struct fm_validator *v)
{
	size_t i;

	cache_flush_trusted(v);
	for (i = 0; i < NEGATIVE_SLOTS; i++)
		entry_clear(&v->neg[i]);
	v->neg_next = 0;
	/* not needed for correctness (verified.h), but a reload starts clean */
	if (v->verified)
		verified_clear(v->verified);
}

/*
 * Load the CA and CRL files into a new store.  On success replaces the
 * current one and empties the verdict cache.  Called with the lock held
 * (or before the validator is shared).
 */
static int
load_trust(struct fm_validator *v, char *err)
{
	X509 *ca = NULL;
	X509_CRL *crl = NULL;
	X509_STORE *store = NULL;
	struct file_id ca_id, crl_id;
	int64_t lo, hi;
	FILE *f;

	memset(&crl_id, 0, sizeof(crl_id));
	if (file_id(v->ca_path, &ca_id) < 0 ||
	    (f = fopen(v->ca_path, "r")) == NULL) {
		snprintf(err, FM_ERRLEN, "ca_cert_location %s: %m", v->ca_path);
		return -1;
	}
	ca = PEM_read_X509(f, NULL, x509_no_password, NULL);
	fclose(f);
	if (ca == NULL) {
		snprintf(err, FM_ERRLEN, "ca_cert_location %s: no PEM "
		    "certificate in it", v->ca_path);
		goto fail;
	}
	lo = x509_time(X509_get0_notBefore(ca), INT64_MIN);
	hi = x509_time(X509_get0_notAfter(ca), INT64_MAX);
	if (v->crl_path) {
		if (file_id(v->crl_path, &crl_id) < 0 ||
		    (f = fopen(v->crl_path, "r")) == NULL) {
			snprintf(err, FM_ERRLEN, "crl_location %s: %m",
			    v->crl_path);
			goto fail;
		}
		crl = PEM_read_X509_CRL(f, NULL, x509_no_password, NULL);
		fclose(f);
		if (crl == NULL) {
			snprintf(err, FM_ERRLEN, "crl_location %s: no PEM CRL "
			    "in it", v->crl_path);
			goto fail;
		}
		if (x509_time(X509_CRL_get0_lastUpdate(crl), INT64_MIN) > lo)
			lo = x509_time(X509_CRL_get0_lastUpdate(crl), INT64_MIN);
		if (x509_time(X509_CRL_get0_nextUpdate(crl), INT64_MAX) < hi)
			hi = x509_time(X509_CRL_get0_nextUpdate(crl), INT64_MAX);
	}
	/* Exactly fedmsg's store: one CA, optionally one CRL checked for all. */
	if ((store = X509_STORE_new()) == NULL ||
	    X509_STORE_add_cert(store, ca) != 1 ||
	    (crl && (X509_STORE_add_crl(store, crl) != 1 ||
	    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK |
	    X509_V_FLAG_CRL_CHECK_ALL) != 1))) {
		snprintf(err, FM_ERRLEN, "cannot build the trust store");
		goto fail;
	}
	X509_free(ca);
	X509_CRL_free(crl);
	X509_STORE_free(v->store);
	v->store = store;
	v->trust_lo = lo;
	v->trust_hi = hi;
	v->ca_id = ca_id;
	v->crl_id = crl_id;
	v->loaded_at = clock_ms() / 1000;
	cache_flush(v);
	ERR_clear_error();
	return 0;
fail:
	X509_free(ca);
	X509_CRL_free(crl);
	X509_STORE_free(store);
	ERR_clear_error();
	return -1;
}

/* Re-read the CA/CRL when they changed on disk or are too old. */
static void
maybe_reload(struct fm_validator *v)
{
	int64_t now = clock_ms() / 1000;
	struct file_id ca, crl;
	char err[FM_ERRLEN];
	bool changed;

	if (!v->force_reload && now - v->last_stat <
	    (int64_t)v->cfg.reload_check_interval)
		return;
	v->last_stat = now;
	memset(&ca, 0, sizeof(ca));
	memset(&crl, 0, sizeof(crl));
	changed = file_id(v->ca_path, &ca) < 0 || !same_file(&ca, &v->ca_id);
	if (v->crl_path &&
	    (file_id(v->crl_path, &crl) < 0 || !same_file(&crl, &v->crl_id)))
		changed = true;
	if (v->force_reload || (v->cfg.reload_max_age &&
	    now - v->loaded_at >= (int64_t)v->cfg.reload_max_age))
		changed = true;
	if (!changed)
		return;
	v->force_reload = false;
	if (load_trust(v, err) == 0) {
		v->reload_failing = false;
		log_info("reloaded CA %s%s%s", v->ca_path,
		    v->crl_path ? " and CRL " : "", v->crl_path ? v->crl_path : "");
		return;
	}
	/* Keep the last good CA/CRL; say so once per failing stretch. */
	if (!v->reload_failing)
		log_warn("%s; keeping the previously loaded CA/CRL", err);
	v->reload_failing = true;
	/* Try again at the next check, not at every message. */
	v->ca_id = ca;
	v->crl_id = crl;
}

/* The verify-once cache's bytes: FM_VERIFIED_CACHE_ENTRY_BYTES an entry,
   at least 256 KiB so that a small cache still holds ordinary messages. */
static size_t
verified_budget(unsigned entries)
{
	size_t b = (size_t)entries * FM_VERIFIED_CACHE_ENTRY_BYTES;

	return b > 256 * 1024 ? b : 256 * 1024;
}

struct fm_validator *
fm_validator_new(const struct fm_validator_config *cfg, char *err)
{
	struct fm_validator *v;

	if (cfg->ca_path == NULL || cfg->ca_path[0] == '\0') {
		snprintf(err, FM_ERRLEN, "no CA configured (ca_cert_location): "
		    "fedmsg-c never downloads one");
		return NULL;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL)
		goto oom;
	v->cfg = *cfg;
	if (v->cfg.reload_check_interval == 0)
		v->cfg.reload_check_interval = 1;
	if (v->cfg.cert_cache_size == 0)
		v->cfg.cert_cache_size = 1024;
	if (v->cfg.max_age != 0 && v->cfg.max_future == 0)
		v->cfg.max_future = FM_DEFAULT_MAX_FUTURE;
	v->cache_cap = (size_t)v->cfg.cert_cache_size * 2;
	if (v->cfg.verified_cache_size == 0)
		v->cfg.verified_cache_size = FM_DEFAULT_VERIFIED_CACHE;
	pthread_mutex_init(&v->lock, NULL);
	if (v->cfg.verified_cache_size != FM_VERIFIED_CACHE_OFF &&
	    (v->verified = verified_new(v->cfg.verified_cache_size,
	    verified_budget(v->cfg.verified_cache_size))) == NULL) {
		fm_validator_free(v);
		goto oom;
	}
	if ((v->ca_path = strdup(cfg->ca_path)) == NULL ||
	    (cfg->crl_path && cfg->crl_path[0] &&
	    (v->crl_path = strdup(cfg->crl_path)) == NULL) ||
	    (v->cache = calloc(v->cache_cap, sizeof(*v->cache))) == NULL ||
	    (v->spell = calloc(v->cache_cap, sizeof(*v->spell))) == NULL) {
		fm_validator_free(v);
		goto oom;
	}
	v->cfg.ca_path = v->ca_path;
	v->cfg.crl_path = v->crl_path;
	if (load_trust(v, err) < 0) {
		fm_validator_free(v);
		return NULL;
	}
	v->last_stat = clock_ms() / 1000;
	return v;
oom:
	snprintf(err, FM_ERRLEN, "out of memory");
	return NULL;
}

void
fm_validator_free(struct fm_validator *v)
{
	size_t i, j;

	if (v == NULL)
		return;
	if (v->cache)
		cache_flush(v);
	free(v->cache);
	free(v->spell);
	verified_free(v->verified);
	for (i = 0; i < v->nroutes; i++) {
		for (j = 0; j < v->routes[i].ncns; j++)
			free(v->routes[i].cns[j]);
		free(v->routes[i].cns);
		free(v->routes[i].topic);
	}
	free(v->routes);
	X509_STORE_free(v->store);
	pthread_mutex_destroy(&v->lock);
	free(v->ca_path);
	free(v->crl_path);
	free(v);
}

static struct route *
find_route(const struct fm_validator *v, const char *topic, size_t *pos)
{
	size_t lo = 0, hi = v->nroutes;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(v->routes[mid].topic, topic);

		if (c == 0)
			return &v->routes[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (pos)
		*pos = lo;
	return NULL;
}

int
fm_validator_allow(struct fm_validator *v, const char *topic, const char *cn)
{
	struct route *r;
	size_t pos;
	char **cns;

	if ((r = find_route(v, topic, &pos)) == NULL) {
		struct route *rs = realloc(v->routes,
		    (v->nroutes + 1) * sizeof(*rs));

		if (rs == NULL)
			return -1;
		v->routes = rs;
		memmove(rs + pos + 1, rs + pos, (v->nroutes - pos) * sizeof(*rs));
		r = &rs[pos];
		memset(r, 0, sizeof(*r));
		v->nroutes++;
		if ((r->topic = strdup(topic)) == NULL) {
			memmove(rs + pos, rs + pos + 1,
			    (--v->nroutes - pos) * sizeof(*rs));
			return -1;
		}
	}
	if (cn == NULL)
		return 0;	/* a topic nobody may send on */
	if ((cns = realloc(r->cns, (r->ncns + 1) * sizeof(*cns))) == NULL)
		return -1;
	r->cns = cns;
	if ((cns[r->ncns] = strdup(cn)) == NULL)
		return -1;
	r->ncns++;
	return 0;
}

void
fm_validator_reload(struct fm_validator *v)
{
	pthread_mutex_lock(&v->lock);
	v->force_reload = true;
	pthread_mutex_unlock(&v->lock);
}

static size_t
fp_hash(const unsigned char *fp)
{
	size_t h;

	memcpy(&h, fp, sizeof(h));
	return h;
}

/*
 * The spelling slot of a certificate field: a hash of its length and its
 * last 64 bytes (where base64 certificates differ: the signature).  Only
 * a placement; a match is decided by comparing the whole text.
 */
static size_t
text_hash(const char *text, size_t len)
{
	size_t tail = len > 64 ? 64 : len;

	return (size_t)hash_bytes(text + len - tail, tail, len);
}

/* The trusted table's slot for fp: its entry, or the free slot for it. */
static struct cert_entry *
cache_slot(struct fm_validator *v, const unsigned char *fp)
{
	size_t i;

	for (i = fp_hash(fp) % v->cache_cap;; i = (i + 1) % v->cache_cap) {
		struct cert_entry *e = &v->cache[i];

		if (!e->used || memcmp(e->fp, fp, sizeof(e->fp)) == 0)
			return e;
	}
}

static struct cert_entry *
neg_find(struct fm_validator *v, const unsigned char *fp)
{
	size_t i;

	for (i = 0; i < NEGATIVE_SLOTS; i++)
		if (v->neg[i].used &&
		    memcmp(v->neg[i].fp, fp, sizeof(v->neg[i].fp)) == 0)
			return &v->neg[i];
	return NULL;
}

/*
 * The DER bytes of a certificate field (base64 of PEM text), exactly those
 * PEM_read_bio_X509() would parse, for OPENSSL_free(); or NULL with a
 * verdict and reason.
 */
static unsigned char *
cert_der(const char *b64, size_t b64len, long *derlen, enum fm_verdict *why,
    char *reason)
{
	unsigned char *pem, *der = NULL;
	char err[FM_ERRLEN];
	BIO *bio = NULL;
	size_t len;

	if ((pem = b64_decode_lenient(b64, b64len, &len, err)) == NULL) {
		*why = FM_INVALID_BASE64;
		snprintf(reason, FM_ERRLEN, "certificate: %s", err);
		return NULL;
	}
	if (len > INT32_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL ||
	    PEM_bytes_read_bio(&der, derlen, NULL, PEM_STRING_X509, bio,
	    x509_no_password, NULL) != 1) {
		*why = FM_INVALID_CERT;
		snprintf(reason, FM_ERRLEN, "certificate field is not a PEM "
		    "X.509 certificate");
		der = NULL;
	}
	BIO_free(bio);
	free(pem);
	ERR_clear_error();
	return der;
}

/* Parse and chain-check a certificate's DER; fills e's verdict. */
static void
judge_cert(struct fm_validator *v, struct cert_entry *e,
    const unsigned char *der, long derlen, int64_t now)
{
	X509 *cert = NULL;
	X509_STORE_CTX *ctx = NULL;
	int64_t lo, hi;

	v->chain_checks++;
	e->reason[0] = '\0';
	e->lo = now;
	e->hi = now + NEGATIVE_TTL;
	if ((cert = d2i_X509(NULL, &der, derlen)) == NULL) {
		e->verdict = FM_INVALID_CERT;
		snprintf(e->reason, sizeof(e->reason), "certificate field is "
		    "not a PEM X.509 certificate");
		goto done;
	}
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, v->store, cert, NULL) != 1) {
		e->verdict = FM_INVALID_CHAIN;
		snprintf(e->reason, sizeof(e->reason), "out of memory");
		e->hi = now;	/* do not cache */
		goto done;
	}
	X509_STORE_CTX_set_time(ctx, 0, (time_t)now);
	if (X509_verify_cert(ctx) != 1) {
		e->verdict = FM_INVALID_CHAIN;
		snprintf(e->reason, sizeof(e->reason), "certificate rejected: %s",
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		/* not yet valid (leaf, CA or CRL): judged again from then */
		lo = x509_time(X509_get0_notBefore(cert), INT64_MIN);
		if (lo > now && lo < e->hi)
			e->hi = lo;
		if (v->trust_lo > now && v->trust_lo < e->hi)
			e->hi = v->trust_lo;
		goto done;
	}
	if ((e->pkey = X509_get_pubkey(cert)) == NULL ||
	    !EVP_PKEY_is_a(e->pkey, "RSA")) {
		e->verdict = FM_INVALID_CERT;
		snprintf(e->reason, sizeof(e->reason), "certificate key is not "
		    "RSA");
		goto done;
	}
	e->cn = x509_first_cn(cert);
	e->verdict = FM_VALID;
	/* The chain verdict holds while leaf, CA and CRL are all in date. */
	lo = x509_time(X509_get0_notBefore(cert), INT64_MIN);
	hi = x509_time(X509_get0_notAfter(cert), INT64_MAX);
	e->lo = lo > v->trust_lo ? lo : v->trust_lo;
	e->hi = hi < v->trust_hi ? hi : v->trust_hi;
done:
	X509_STORE_CTX_free(ctx);
	X509_free(cert);
	ERR_clear_error();
}

/* Answer from e (lock held). */
/*
 * reason = a then b, cut to FM_ERRLEN: the reason of every valid message,
 * without snprintf's format machinery (about 600 instructions each).
 */
static void
reason_cat(char *reason, const char *a, const char *b)
{
	size_t la = strnlen(a, FM_ERRLEN - 1);
	size_t lb = strnlen(b, FM_ERRLEN - 1 - la);

	memcpy(reason, a, la);
	memcpy(reason + la, b, lb);
	reason[la + lb] = '\0';
}

static enum fm_verdict
answer(const struct cert_entry *e, EVP_PKEY **pkey, char **cn, char *reason)
{
	if (reason)
		reason_cat(reason, e->reason, "");
	if (e->verdict == FM_VALID) {
		EVP_PKEY_up_ref(e->pkey);
		*pkey = e->pkey;
		*cn = e->cn ? strdup(e->cn) : NULL;
	}
	return e->verdict;
}

/*
 * Look up (or judge and cache) the certificate field.  The key is the
 * SHA-256 of the DER, whatever the spelling of the field; a spelling seen
 * before for a trusted certificate skips the decoding (*spelled: true).
 * Fields that do not decode to a certificate are not cached (decoding
 * them is cheap).  On FM_VALID returns a reference to its key and a copy
 * of its CN for the caller to free, and the DER's SHA-256 in der_fp.
 */
static enum fm_verdict
check_cert(struct fm_validator *v, const char *b64, size_t len, int64_t now,
    EVP_PKEY **pkey, char **cn, unsigned char *der_fp, bool *spelled,
    char *reason)
{
	unsigned char fp[SHA256_DIGEST_LENGTH];
	struct spelling *sp;
	struct cert_entry *e, fresh;
	enum fm_verdict verdict;
	unsigned char *der;
	char why[FM_ERRLEN];
	long derlen = 0;

	pthread_mutex_lock(&v->lock);
	maybe_reload(v);
	sp = &v->spell[text_hash(b64, len) % v->cache_cap];
	if (sp->text && sp->len == len && memcmp(sp->text, b64, len) == 0 &&
	    (e = cache_slot(v, sp->der_fp))->used && now >= e->lo &&
	    now < e->hi) {
		v->cache_hits++;
		verdict = answer(e, pkey, cn, reason);
		memcpy(der_fp, sp->der_fp, SHA256_DIGEST_LENGTH);
		pthread_mutex_unlock(&v->lock);
		*spelled = true;
		return verdict;
	}
	pthread_mutex_unlock(&v->lock);
	*spelled = false;

	if ((der = cert_der(b64, len, &derlen, &verdict, why)) == NULL) {
		if (reason)
			snprintf(reason, FM_ERRLEN, "%s", why);
		return verdict;
	}
	SHA256(der, (size_t)derlen, fp);
	memcpy(der_fp, fp, sizeof(fp));
	pthread_mutex_lock(&v->lock);
	if ((e = cache_slot(v, fp))->used || (e = neg_find(v, fp)) != NULL) {
		if (now >= e->lo && now < e->hi)
			v->cache_hits++;
		else {
			/* out of its window: judge again in place */
			EVP_PKEY_free(e->pkey);
			free(e->cn);
			e->pkey = NULL;
			e->cn = NULL;
			judge_cert(v, e, der, derlen, now);
		}
	} else {
		memset(&fresh, 0, sizeof(fresh));
		memcpy(fresh.fp, fp, sizeof(fp));
		fresh.used = true;
		judge_cert(v, &fresh, der, derlen, now);
		if (fresh.verdict == FM_VALID) {
			if (v->cache_count >= v->cfg.cert_cache_size)
				cache_flush_trusted(v);	/* bounded */
			e = cache_slot(v, fp);
			v->cache_count++;
		} else if (fresh.hi > now) {
			e = &v->neg[v->neg_next];
			v->neg_next = (v->neg_next + 1) % NEGATIVE_SLOTS;
			entry_clear(e);
		} else
			e = NULL;		/* not cacheable */
		if (e != NULL)
			*e = fresh;
		else
			e = &fresh;
	}
	verdict = answer(e, pkey, cn, reason);
	if (e == &fresh)
		entry_clear(&fresh);
	pthread_mutex_unlock(&v->lock);
	OPENSSL_free(der);
	return verdict;
}

/*
 * Remember a certificate field's text that decoded to the trusted DER
 * der_fp, once a signature made with its key has verified: the next
 * message spelled so skips the decoding.  So only a signer's own messages
 * add spellings, never a forger's padded copies of a public certificate,
 * and none longer than SPELLING_MAX: at most cache_cap of them.
 */
static void
remember_spelling(struct fm_validator *v, const char *b64, size_t len,
    const unsigned char *der_fp)
{
	struct spelling *sp;
	char *t;

	if (len > SPELLING_MAX || (t = malloc(len ? len : 1)) == NULL)
		return;
	memcpy(t, b64, len);
	pthread_mutex_lock(&v->lock);
	sp = &v->spell[text_hash(b64, len) % v->cache_cap];
	free(sp->text);
	sp->text = t;
	sp->len = len;
	memcpy(sp->der_fp, der_fp, SHA256_DIGEST_LENGTH);
	pthread_mutex_unlock(&v->lock);
}

void
fm_validator_stats(struct fm_validator *v, struct fm_validator_stats *st)
{
	size_t i;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&v->lock);
	st->chain_checks = v->chain_checks;
	st->cache_hits = v->cache_hits;
	for (i = 0; i < v->cache_cap; i++)
		if (v->cache[i].used)
			st->trusted_entries++;
	for (i = 0; i < NEGATIVE_SLOTS; i++)
		if (v->neg[i].used)
			st->negative_entries++;
	for (i = 0; i < v->cache_cap; i++)
		if (v->spell[i].text) {
			st->spelling_entries++;
			st->spelling_bytes += v->spell[i].len;
		}
	pthread_mutex_unlock(&v->lock);
	if (v->verified) {
		unsigned long long hits;

		verified_counts(v->verified, &hits, &st->verified_entries);
		st->verified_hits = hits;
	}
}

/*
 * Each thread keeps the verify context of the last key it used, with a
 * reference to that key (so its address cannot be reused by another key
 * while cached): a known signer then costs one SHA-1 and one RSA
 * operation, without EVP_DigestVerifyInit's per-call fetches and
 * allocations.  Freed when the thread exits.
 */
struct verify_ctx {
	EVP_PKEY	*pkey;		/* reference held */
	EVP_PKEY_CTX	*ctx;
	/* SHA-1 fetched once and a digest context reused: EVP_Digest with
	 * EVP_sha1() fetched and allocated per call (a fifth of the hash) */
	EVP_MD		*sha1;
	EVP_MD_CTX	*mdctx;
	/* the canonical text, its buffer kept from message to message (up
	 * to CANON_KEEP bytes) instead of a malloc and free each */
	struct buf	 canon;
};

#define CANON_KEEP	(64 * 1024)

static pthread_key_t verify_key;
static pthread_once_t verify_once = PTHREAD_ONCE_INIT;
static bool verify_key_ok;

static void
verify_ctx_free(void *p)
{
	struct verify_ctx *vc = p;

	EVP_PKEY_CTX_free(vc->ctx);
	EVP_PKEY_free(vc->pkey);
	EVP_MD_CTX_free(vc->mdctx);
	EVP_MD_free(vc->sha1);
	buf_free(&vc->canon);
	free(vc);
}

static void
verify_key_init(void)
{
	verify_key_ok = pthread_key_create(&verify_key, verify_ctx_free) == 0;
}

/* This thread's verify_ctx (made empty on first use), or NULL. */
static struct verify_ctx *
thread_verify_ctx(void)
{
	struct verify_ctx *vc;

	pthread_once(&verify_once, verify_key_init);
	if (!verify_key_ok)
		return NULL;
	if ((vc = pthread_getspecific(verify_key)) == NULL) {
		if ((vc = calloc(1, sizeof(*vc))) == NULL)
			return NULL;
		if (pthread_setspecific(verify_key, vc) != 0) {
			free(vc);
			return NULL;
		}
	}
	return vc;
}

/* SHA-1 of p into md with this thread's context vc; false on failure. */
static bool
thread_sha1(struct verify_ctx *vc, const void *p, size_t n,
    unsigned char md[SHA_DIGEST_LENGTH])
{
	if (vc == NULL)
		return false;
	if (vc->sha1 == NULL &&
	    (vc->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL)) == NULL)
		return false;
	if (vc->mdctx == NULL && (vc->mdctx = EVP_MD_CTX_new()) == NULL)
		return false;
	return EVP_DigestInit_ex2(vc->mdctx, vc->sha1, NULL) == 1 &&
	    EVP_DigestUpdate(vc->mdctx, p, n) == 1 &&
	    EVP_DigestFinal_ex(vc->mdctx, md, NULL) == 1;
}

/* A ready RSA/PKCS#1/SHA-1 verify context for pkey in this thread's vc,
 * or NULL. */
static EVP_PKEY_CTX *
verify_ctx_for(struct verify_ctx *vc, EVP_PKEY *pkey)
{
	EVP_PKEY_CTX *ctx;

	if (vc == NULL)
		return NULL;
	if (vc->pkey == pkey && vc->ctx != NULL)
		return vc->ctx;
	if ((ctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL ||
	    EVP_PKEY_verify_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha1()) != 1) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	EVP_PKEY_up_ref(pkey);
	EVP_PKEY_CTX_free(vc->ctx);
	EVP_PKEY_free(vc->pkey);
	vc->pkey = pkey;
	vc->ctx = ctx;
	return ctx;
}

#define REASON(...) do { if (reason) snprintf(reason, FM_ERRLEN, __VA_ARGS__); } while (0)

/* The envelope fields a check reads (NULL where absent). */
struct envelope {
	const struct jv	*crypto, *topic, *signature, *certificate;
};

/*
 * Find them in one pass over root's members (unique: the parser keeps the
 * last of a duplicated key), not four binary searches; the four keys
 * differ in length.
 */
static void
envelope_fields(const struct jv *root, struct envelope *e)
{
	uint32_t i;

	memset(e, 0, sizeof(*e));
	if (root == NULL || root->type != JV_OBJECT)
		return;
	for (i = 0; i < root->len; i++) {
		const struct jv_member *m = &root->u.members[i];
		const struct jv **slot;
		const char *key;

		switch (m->key_len) {
		case 5: slot = &e->topic; key = "topic"; break;
		case 6: slot = &e->crypto; key = "crypto"; break;
		case 9: slot = &e->signature; key = "signature"; break;
		case 11: slot = &e->certificate; key = "certificate"; break;
		default: continue;
		}
		if (memcmp(m->key, key, m->key_len) == 0)
			*slot = &m->value;
	}
}

/* A credential field f (named key): present and a string, or a verdict. */
static const struct jv *
credential(const struct jv *f, const char *key, enum fm_verdict *why,
    char *reason)
{
	if (f == NULL) {
		*why = FM_INVALID_FIELD;
		REASON("no '%s' field", key);
		return NULL;
	}
	if (f->type != JV_STRING) {
		*why = FM_INVALID_FIELD;
		REASON("'%s' is not a string", key);
		return NULL;
	}
	return f;
}

static enum fm_verdict
check_routing(const struct fm_validator *v, const char *topic, const char *cn,
    char *reason)
{
	const struct route *r = topic ? find_route(v, topic, NULL) : NULL;
	size_t i;

	if (r == NULL) {
		if (!v->cfg.routing_nitpicky)
			return FM_VALID;
		REASON("routing_nitpicky: topic %s is not in routing_policy",
		    topic ? topic : "(none)");
		return FM_INVALID_ROUTING;
	}
	for (i = 0; i < r->ncns; i++)
		if (strcmp(r->cns[i], cn) == 0)
			return FM_VALID;
	REASON("routing_policy: %s may not publish on %s", cn, topic);
	return FM_INVALID_ROUTING;
}

enum fm_verdict
fm_validator_check_at(struct fm_validator *v, const struct fm_msg *msg,
    int64_t now, char *reason)
{
	struct envelope env;
	const struct jv *crypto, *sigf, *certf, *topic;
	/* an RSA-4096 signature is 512 bytes: a heap buffer only for more */
	unsigned char sigbuf[768], *sig = NULL;
	size_t siglen = 0, canon_len;
	enum fm_verdict verdict = FM_VALID;
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx;
	unsigned char md[SHA_DIGEST_LENGTH], der_fp[SHA256_DIGEST_LENGTH];
	const char *canonical;
	char *cn = NULL, err[FM_ERRLEN];
	struct verify_ctx *vc;
	struct buf own = BUF_INIT, *cb = &own;
	bool spelled;
	double ts;

	if (reason)
		memcpy(reason, "ok", 3);
	/*
	 * fm_msg_parse() refuses duplicate keys; a tool that parsed with
	 * MSG_KEEP_DUPLICATES learns the verdict here.
	 */
	if (msg_duplicate(msg, reason))
		return FM_INVALID_DUPLICATE_KEY;
	envelope_fields(msg_root(msg), &env);
	crypto = env.crypto;
	/* A topic routing_policy cannot read must not skip it. */
	if ((topic = env.topic) != NULL &&
	    (topic->type != JV_STRING || memchr(topic->u.str, 0, topic->len))) {
		REASON(topic->type != JV_STRING ? "'topic' is not a string" :
		    "'topic' holds a NUL character");
		return FM_INVALID_FIELD;
	}
	/* Which backend, as fedmsg.crypto.validate() decides it. */
	if (crypto == NULL) {
		if (env.certificate == NULL) {
			verdict = env.signature ?
			    FM_INVALID_BACKEND : FM_INVALID_UNSIGNED;
			REASON(verdict == FM_INVALID_UNSIGNED ? "unsigned: no "
			    "crypto, certificate or signature field" :
			    "gpg signatures are not supported");
			return verdict;
		}
	} else if (crypto->type != JV_STRING || crypto->len != 4 ||
	    memcmp(crypto->u.str, "x509", 4) != 0) {
		REASON("crypto backend %s is not allowed", crypto->type ==
		    JV_STRING && crypto->len == 3 &&
		    memcmp(crypto->u.str, "gpg", 3) == 0 ? "'gpg'" :
		    "unknown");
		return FM_INVALID_BACKEND;
	}
	if (!v->cfg.allow_x509) {
		REASON("crypto backend 'x509' is not in "
		    "crypto_validate_backends");
		return FM_INVALID_BACKEND;
	}
	if ((sigf = credential(env.signature, "signature", &verdict,
	    reason)) == NULL ||
	    (certf = credential(env.certificate, "certificate", &verdict,
	    reason)) == NULL)
		goto done;
	sig = B64_DECODED_MAX((size_t)sigf->len) <= sizeof(sigbuf) ? sigbuf :
	    malloc(B64_DECODED_MAX((size_t)sigf->len));
	if (sig == NULL) {
		verdict = FM_INVALID_SIGNATURE;
		REASON("cannot verify: out of memory");
		goto done;
	}
	if (b64_decode_lenient_to(sigf->u.str, sigf->len, sig, &siglen,
	    err) < 0) {
		verdict = FM_INVALID_BASE64;
		REASON("signature: %s", err);
		goto done;
	}
	verdict = check_cert(v, certf->u.str, certf->len, now, &pkey, &cn,
	    der_fp, &spelled, reason);
	if (verdict != FM_VALID)
		goto done;

	if ((vc = thread_verify_ctx()) != NULL)
		cb = &vc->canon;
	cb->len = 0;		/* keeps its allocation */
	cb->oom = false;
	if (msg_canonical_buf(msg, true, cb) < 0) {
		verdict = FM_INVALID_SIGNATURE;
		REASON("cannot verify: out of memory");
		goto done;
	}
	canonical = cb->data;
	canon_len = cb->len;
	if (v->verified && verified_seen(v->verified, der_fp, sig, siglen,
	    canonical, canon_len))
		goto signature_ok;
	if ((ctx = verify_ctx_for(vc, pkey)) == NULL ||
	    !thread_sha1(vc, canonical, canon_len, md)) {
		verdict = FM_INVALID_SIGNATURE;
		REASON("cannot verify: out of memory or SHA-1 disabled by "
		    "the system crypto policy");
		goto done;
	}
	if (EVP_PKEY_verify(ctx, sig, siglen, md, sizeof(md)) != 1) {
		verdict = FM_INVALID_SIGNATURE;
		REASON("signature does not match the message");
		goto done;
	}
	if (v->verified)
		verified_add(v->verified, der_fp, sig, siglen, canonical,
		    canon_len);
signature_ok:
	if (!spelled)
		remember_spelling(v, certf->u.str, certf->len, der_fp);
	if (cn == NULL) {
		verdict = FM_INVALID_NO_CN;
		REASON("certificate subject has no commonName");
		goto done;
	}
	if ((verdict = check_routing(v, fm_msg_topic(msg), cn, reason)) !=
	    FM_VALID)
		goto done;
	if (v->cfg.max_age || v->cfg.max_future) {
		if (!fm_msg_timestamp(msg, &ts) || ts != ts) {	/* NaN */
			verdict = FM_INVALID_STALE;
			REASON("no numeric timestamp to check freshness");
		} else if (v->cfg.max_age && (double)now - ts >
		    (double)v->cfg.max_age) {
			verdict = FM_INVALID_STALE;
			REASON("timestamp %.0f is %.0f s old, more than "
			    "validate_max_age %u", ts, (double)now - ts,
			    v->cfg.max_age);
		} else if (v->cfg.max_future && ts - (double)now >
		    (double)v->cfg.max_future) {
			verdict = FM_INVALID_FUTURE;
			REASON("timestamp %.0f is %.0f s in the future, more "
			    "than validate_max_future %u", ts, ts - (double)now,
			    v->cfg.max_future);
		}
	}
	if (verdict == FM_VALID) {
		if (reason)
			reason_cat(reason, "signed by ", cn);
		msg_take_signer(msg, cn);
		cn = NULL;
	}
done:
	EVP_PKEY_free(pkey);
	if (ERR_peek_error() != 0)	/* cheaper than clearing an empty queue */
		ERR_clear_error();
	if (cb == &own || cb->cap > CANON_KEEP)
		buf_free(cb);
	free(cn);
	if (sig != sigbuf)
		free(sig);
	return verdict;
}

enum fm_verdict
fm_validator_check(struct fm_validator *v, const struct fm_msg *msg,
    char *reason)
{
	return fm_validator_check_at(v, msg, (int64_t)time(NULL), reason);
}
