/*
 * bench_crypto: throughput of fedmsg-c's signing and validation paths.
 *
 *   bench_crypto [-s SECONDS] [-b SECONDS] [-r ROUNDS] [-w WORKLOAD] DIR
 *                [CERTNAME]
 *
 * DIR holds a development PKI (certs/mkcerts.sh): ca.crt, optionally
 * crl.pem, and CERTNAME.crt/.key (default shell-localhost).  A realistic
 * envelope (a git.receive message, about 1 KB unsigned) is built with
 * fm_msg_build() and signed with fm_signer_sign(); then each workload runs
 * in a loop for a time of CLOCK_MONOTONIC: -s (default 3 s) for verify and
 * sign, -b (default 2 s) for the other rows.  The one-thread verify
 * path, the bare RSA verify, the seen-before path and the breakdown rows
 * run in turn, and so do the sign path and the bare RSA sign: -r rounds
 * (default 10), each workload a slice of its time per round, so that other
 * work on the machine slows them alike and a ratio of two slices of one
 * round holds where ratios of separate runs swing by a third:
 *
 *   parse             fm_msg_parse of the signed body
 *   parse_canon       + fm_msg_canonical(unsigned): the text that is signed
 *   parse_canon_sha1  + SHA-1 of that text
 *   rsa_verify        bare RSA-2048 PKCS#1 verify of a SHA-1 digest with
 *                     the signer's key, context reused (as openssl speed)
 *   evp_verify        EVP_DigestVerifyInit + EVP_DigestVerify (SHA-1) of
 *                     the canonical text with a fresh EVP_MD_CTX: the
 *                     OpenSSL part of what fm_validator_check does
 *   verify            fm_msg_parse + fm_validator_check (chain verdict
 *                     cached, so: parse, canonical, SHA-1, RSA verify),
 *                     verify-once cache off: every message as if new;
 *                     then once more on 1 thread (result verify_solo) and
 *                     right after on 2 threads sharing one validator: the
 *                     scaling compares those two, timed in a row
 *   verify_seen       the same with the verify-once cache on: the message
 *                     seen before (a gateway's or a replay's copy), so
 *                     parse, canonical and a cache hit instead of the RSA
 *   rsa_sign          bare RSA-2048 PKCS#1 sign of a SHA-1 digest
 *   sign              fm_signer_sign of the unsigned envelope
 *
 * -w runs only the named workload (one thread), for a profiler:
 * `valgrind --tool=callgrind bench_crypto -s 1 -w verify DIR`.
 *
 * The bare RSA rows are timed next to the fedmsg paths so that their
 * ratio holds on a machine shared with other work.  It only reports.
 * Output, one line per result, for tests/bench/run.sh:
 *
 *   envelope UNSIGNED_BYTES SIGNED_BYTES
 *   round ROUND NAME OPS WALL_SECONDS CPU_SECONDS   (a slice in turn)
 *   result NAME THREADS WALL_SECONDS CPU_SECONDS OPS OPS_PER_SECOND
 *
 * (the result of a workload run in turn sums its slices).
 *
 * CPU_SECONDS is the process CPU time spent meanwhile (at most THREADS
 * times WALL_SECONDS); less means the machine was busy with other work.
 *
 * Exit status: 0 measured, 1 a workload failed (e.g. a verdict other than
 * valid), 2 usage or setup error.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <fedmsg/crypto.h>
#include <fedmsg/message.h>

#include "bench_payload.h"

#define MAX_THREADS	8

/* A git.receive payload in the shape Fedora's pagure/dist-git sends. */
static const char payload[] = "{" BENCH_GIT_RECEIVE_MEMBERS;

enum work {
	W_PARSE,
	W_PARSE_CANON,
	W_PARSE_CANON_SHA1,
	W_VERIFY,
	W_SIGN,
	W_RSA_VERIFY,
	W_RSA_SIGN,
	W_EVP_VERIFY,
	W_VERIFY_SEEN
};

struct bench {
	struct fm_validator	*val;		/* verify-once cache off */
	struct fm_validator	*val_seen;	/* verify-once cache on */
	struct fm_signer	*signer;
	struct fm_msg		*unsigned_msg;
	const char		*signed_body;
	size_t			 signed_len;
	struct fm_limits	 lim;
	/* bare RSA, single-threaded: contexts reused as openssl speed does */
	EVP_PKEY		*pub, *priv;
	EVP_PKEY_CTX		*rsa_vctx, *rsa_sctx;
	unsigned char		 digest[20];
	unsigned char		 rsa_sig[512];
	size_t			 rsa_siglen;
	/* evp_verify: the canonical text and its signature */
	char			*canon;
	size_t			 canon_len;
	unsigned char		 canon_sig[512];
	size_t			 canon_siglen;
	/* parse_canon_sha1 (one thread): SHA-1 fetched once, its context
	 * reused, as the verify path does */
	EVP_MD			*sha1;
	EVP_MD_CTX		*sha1_ctx;
};

struct job {
	const struct bench	*b;
	enum work		 w;
	double			 seconds;
	pthread_barrier_t	*start;
	unsigned long		 ops;
	double			 t0, t1;	/* CLOCK_MONOTONIC, seconds */
	int			 failed;
	char			 err[FM_ERRLEN];
};

static double
clock_sec(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
now_sec(void)
{
	return clock_sec(CLOCK_MONOTONIC);
}

/* One operation of workload w; returns 0, or -1 with a reason in err. */
static int
run_once(const struct bench *b, enum work w, char *err)
{
	struct fm_msg *m = NULL, *out = NULL;
	EVP_MD_CTX *mctx;
	enum fm_verdict v;
	unsigned char md[EVP_MAX_MD_SIZE], sig[512];
	char *canon, why[FM_ERRLEN];
	size_t clen, slen;
	int rc = 0;

	if (w == W_RSA_VERIFY) {
		if (EVP_PKEY_verify(b->rsa_vctx, b->rsa_sig, b->rsa_siglen,
		    b->digest, sizeof(b->digest)) != 1) {
			snprintf(err, FM_ERRLEN, "EVP_PKEY_verify failed");
			return -1;
		}
		return 0;
	}
	if (w == W_RSA_SIGN) {
		slen = sizeof(sig);
		if (EVP_PKEY_sign(b->rsa_sctx, sig, &slen, b->digest,
		    sizeof(b->digest)) != 1) {
			snprintf(err, FM_ERRLEN, "EVP_PKEY_sign failed");
			return -1;
		}
		return 0;
	}
	if (w == W_EVP_VERIFY) {
		if ((mctx = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestVerifyInit(mctx, NULL, EVP_sha1(), NULL,
		    b->pub) != 1 ||
		    EVP_DigestVerify(mctx, b->canon_sig, b->canon_siglen,
		    (const unsigned char *)b->canon, b->canon_len) != 1) {
			snprintf(err, FM_ERRLEN, "EVP_DigestVerify failed");
			rc = -1;
		}
		EVP_MD_CTX_free(mctx);
		return rc;
	}
	if (w == W_SIGN) {
		if (fm_signer_sign(b->signer, b->unsigned_msg, &out, err) < 0)
			return -1;
		fm_msg_unref(out);
		return 0;
	}
	if (fm_msg_parse(b->signed_body, b->signed_len, &b->lim, &m, err) < 0)
		return -1;
	switch (w) {
	case W_PARSE:
		break;
	case W_PARSE_CANON:
	case W_PARSE_CANON_SHA1:
		if ((canon = fm_msg_canonical(m, true, &clen)) == NULL) {
			snprintf(err, FM_ERRLEN, "fm_msg_canonical: out of "
			    "memory");
			rc = -1;
			break;
		}
		if (w == W_PARSE_CANON_SHA1 &&
		    (EVP_DigestInit_ex2(b->sha1_ctx, b->sha1, NULL) != 1 ||
		    EVP_DigestUpdate(b->sha1_ctx, canon, clen) != 1 ||
		    EVP_DigestFinal_ex(b->sha1_ctx, md, NULL) != 1)) {
			snprintf(err, FM_ERRLEN, "SHA-1 digest failed");
			rc = -1;
		}
		free(canon);
		break;
	case W_VERIFY:
	case W_VERIFY_SEEN:
		if ((v = fm_validator_check(w == W_VERIFY ? b->val :
		    b->val_seen, m, why)) != FM_VALID) {
			snprintf(err, FM_ERRLEN, "verdict %s: %.200s",
			    fm_verdict_name(v), why);
			rc = -1;
		}
		break;
	case W_SIGN:
	case W_RSA_VERIFY:
	case W_RSA_SIGN:
	case W_EVP_VERIFY:
		break;
	}
	fm_msg_unref(m);
	return rc;
}

static void *
worker(void *arg)
{
	struct job *j = arg;
	double end;

	pthread_barrier_wait(j->start);
	j->t0 = j->t1 = now_sec();
	end = j->t0 + j->seconds;
	while (j->t1 < end) {
		if (run_once(j->b, j->w, j->err) < 0) {
			j->failed = 1;
			break;
		}
		j->ops++;
		j->t1 = now_sec();
	}
	return NULL;
}

/*
 * Run workload w on nthreads threads for about seconds; print a result
 * line.  Returns 0, or -1 if an operation failed.
 */
static int
measure(const struct bench *b, const char *name, enum work w, int nthreads,
    double seconds)
{
	struct job jobs[MAX_THREADS];
	pthread_t tid[MAX_THREADS];
	pthread_barrier_t start;
	unsigned long ops = 0;
	double t0 = 0, t1 = 0, c0, c1;
	int i, rc = 0;

	/* Warm up (caches the certificate verdict, faults in the code). */
	for (i = 0; i < 50; i++) {
		char err[FM_ERRLEN];

		if (run_once(b, w, err) < 0) {
			fprintf(stderr, "bench_crypto: %s: %s\n", name, err);
			return -1;
		}
	}
	pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1);
	for (i = 0; i < nthreads; i++) {
		jobs[i] = (struct job){ .b = b, .w = w, .seconds = seconds,
		    .start = &start };
		if ((errno = pthread_create(&tid[i], NULL, worker,
		    &jobs[i])) != 0) {
			perror("bench_crypto: pthread_create");
			exit(2);
		}
	}
	c0 = clock_sec(CLOCK_PROCESS_CPUTIME_ID);
	pthread_barrier_wait(&start);
	/* Wall time: from the first thread's start to the last one's end. */
	for (i = 0; i < nthreads; i++) {
		pthread_join(tid[i], NULL);
		ops += jobs[i].ops;
		if (i == 0 || jobs[i].t0 < t0)
			t0 = jobs[i].t0;
		if (i == 0 || jobs[i].t1 > t1)
			t1 = jobs[i].t1;
		if (jobs[i].failed) {
			fprintf(stderr, "bench_crypto: %s: %s\n", name,
			    jobs[i].err);
			rc = -1;
		}
	}
	c1 = clock_sec(CLOCK_PROCESS_CPUTIME_ID);
	pthread_barrier_destroy(&start);
	if (rc == 0)
		printf("result %s %d %.3f %.3f %lu %.1f\n", name, nthreads,
		    t1 - t0, c1 - c0, ops, (double)ops / (t1 - t0));
	fflush(stdout);
	return rc;
}

/* A workload timed in turn with others (measure_in_turn). */
struct turn {
	const char	*name;
	enum work	 w;
	double		 slice;		/* seconds a round */
	unsigned long	 ops;
	double		 wall, cpu;	/* sums of the slices */
};

/*
 * Time the workloads t[0..n) in turn on this thread, rounds times, each
 * for its slice a round; print a "round" line per slice and then a
 * "result" line per workload.  Returns 0, or -1 if an operation failed.
 */
static int
measure_in_turn(const struct bench *b, struct turn *t, size_t n, int rounds)
{
	char err[FM_ERRLEN];
	size_t i;
	int r, k;

	/* Warm up, as measure() does, and check each workload once. */
	for (i = 0; i < n; i++)
		for (k = 0; k < 50; k++)
			if (run_once(b, t[i].w, err) < 0) {
				fprintf(stderr, "bench_crypto: %s: %s\n",
				    t[i].name, err);
				return -1;
			}
	for (r = 0; r < rounds; r++)
		for (i = 0; i < n; i++) {
			double t0 = now_sec(), t1 = t0,
			    c0 = clock_sec(CLOCK_PROCESS_CPUTIME_ID), c;
			unsigned long ops = 0;

			while (t1 - t0 < t[i].slice) {
				if (run_once(b, t[i].w, err) < 0) {
					fprintf(stderr, "bench_crypto: %s: "
					    "%s\n", t[i].name, err);
					return -1;
				}
				ops++;
				t1 = now_sec();
			}
			c = clock_sec(CLOCK_PROCESS_CPUTIME_ID) - c0;
			printf("round %d %s %lu %.4f %.4f\n", r, t[i].name,
			    ops, t1 - t0, c);
			t[i].ops += ops;
			t[i].wall += t1 - t0;
			t[i].cpu += c;
		}
	for (i = 0; i < n; i++)
		printf("result %s 1 %.3f %.3f %lu %.1f\n", t[i].name,
		    t[i].wall, t[i].cpu, t[i].ops, (double)t[i].ops /
		    t[i].wall);
	fflush(stdout);
	return 0;
}

static char *
path_join(const char *dir, const char *name, const char *ext)
{
	size_t n = strlen(dir) + strlen(name) + strlen(ext) + 2;
	char *p = malloc(n);

	if (p == NULL) {
		perror("bench_crypto");
		exit(2);
	}
	snprintf(p, n, "%s/%s%s", dir, name, ext);
	return p;
}

/*
 * Contexts for the bare RSA rows: the signer's key pair, PKCS#1 v1.5 over
 * a SHA-1 digest, as fedmsg signs.  Returns 0, or -1 with a message.
 */
static int
rsa_setup(struct bench *b, const char *cert_path, const char *key_path)
{
	EVP_PKEY *priv = NULL, *pub = NULL;
	EVP_MD_CTX *mctx = NULL;
	X509 *x = NULL;
	FILE *fp;
	int rc = -1;

	if ((fp = fopen(key_path, "r")) != NULL) {
		priv = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
		fclose(fp);
	}
	if ((fp = fopen(cert_path, "r")) != NULL) {
		x = PEM_read_X509(fp, NULL, NULL, NULL);
		fclose(fp);
	}
	if (priv == NULL || x == NULL || (pub = X509_get_pubkey(x)) == NULL) {
		fprintf(stderr, "bench_crypto: cannot read %s or %s\n",
		    key_path, cert_path);
		goto done;
	}
	b->rsa_siglen = sizeof(b->rsa_sig);
	b->canon_siglen = sizeof(b->canon_sig);
	if (EVP_Digest("fedmsg", 6, b->digest, NULL, EVP_sha1(), NULL) != 1 ||
	    (b->rsa_sctx = EVP_PKEY_CTX_new(priv, NULL)) == NULL ||
	    EVP_PKEY_sign_init(b->rsa_sctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(b->rsa_sctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(b->rsa_sctx, EVP_sha1()) != 1 ||
	    EVP_PKEY_sign(b->rsa_sctx, b->rsa_sig, &b->rsa_siglen, b->digest,
	    sizeof(b->digest)) != 1 ||
	    (b->rsa_vctx = EVP_PKEY_CTX_new(pub, NULL)) == NULL ||
	    EVP_PKEY_verify_init(b->rsa_vctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(b->rsa_vctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(b->rsa_vctx, EVP_sha1()) != 1 ||
	    (mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(mctx, NULL, EVP_sha1(), NULL, priv) != 1 ||
	    EVP_DigestSign(mctx, b->canon_sig, &b->canon_siglen,
	    (const unsigned char *)b->canon, b->canon_len) != 1) {
		fprintf(stderr, "bench_crypto: bare RSA/SHA-1 setup failed\n");
		goto done;
	}
	b->pub = pub;
	b->priv = priv;
	pub = priv = NULL;
	rc = 0;
done:
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(pub);
	X509_free(x);
	return rc;
}

static double
seconds_arg(const char *s)
{
	char *end;
	double d = strtod(s, &end);

	if (*end != '\0' || !(d > 0 && d < 3600)) {
		fprintf(stderr, "bench_crypto: bad duration '%s'\n", s);
		exit(2);
	}
	return d;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_crypto [-s SECONDS] [-b SECONDS] "
	    "[-r ROUNDS] [-w WORKLOAD] DIR\n                    [CERTNAME]\n"
	    "  -s  time per verify/sign workload (default 3)\n"
	    "  -b  time per breakdown row (parse, canonical, SHA-1) and per "
	    "seen-before,\n      bare RSA sign and fresh-context verify row "
	    "(default 2)\n"
	    "  -r  rounds of the workloads timed in turn: the breakdown rows, "
	    "bare RSA\n      verify, verify path and seen-before path; bare "
	    "RSA sign and sign path\n      (default 10)\n"
	    "  -w  run only this workload (parse, parse_canon, "
	    "parse_canon_sha1,\n      rsa_verify, evp_verify, verify, "
	    "verify_seen, rsa_sign, sign), on one thread\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct bench b = { .lim = { FM_DEFAULT_MAX_MESSAGE_BYTES, 0 } };
	struct fm_validator_config vc = { .allow_x509 = true };
	struct fm_msg_fields f = { 0 };
	struct fm_msg *signed_msg = NULL;
	const char *dir, *certname = "shell-localhost", *body;
	char *cert, *key, *ca, *crl, *topic = NULL;
	char err[FM_ERRLEN];
	double secs = 3, bsecs = 2;
	const char *only = NULL;
	int rounds = 10;
	size_t ulen;
	int c, status = 2;

	while ((c = getopt(argc, argv, "s:b:r:w:")) != -1) {
		switch (c) {
		case 's':
			secs = seconds_arg(optarg);
			break;
		case 'b':
			bsecs = seconds_arg(optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			if (rounds < 1 || rounds > 1000) {
				fprintf(stderr, "bench_crypto: bad rounds "
				    "'%s'\n", optarg);
				exit(2);
			}
			break;
		case 'w':
			only = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || argc > 2)
		usage();
	dir = argv[0];
	if (argc == 2)
		certname = argv[1];
	cert = path_join(dir, certname, ".crt");
	key = path_join(dir, certname, ".key");
	ca = path_join(dir, "ca", ".crt");
	crl = path_join(dir, "crl", ".pem");

	if ((b.signer = fm_signer_load(cert, key, err)) == NULL) {
		fprintf(stderr, "bench_crypto: %s\n", err);
		goto out;
	}
	vc.ca_path = ca;
	vc.crl_path = access(crl, R_OK) == 0 ? crl : NULL;
	if ((b.val_seen = fm_validator_new(&vc, err)) == NULL) {
		fprintf(stderr, "bench_crypto: %s\n", err);
		goto out;
	}
	vc.verified_cache_size = FM_VERIFIED_CACHE_OFF;
	if ((b.val = fm_validator_new(&vc, err)) == NULL) {
		fprintf(stderr, "bench_crypto: %s\n", err);
		goto out;
	}
	topic = fm_topic_build("org.fedoraproject", "prod", "git", "receive");
	f.topic = topic;
	f.msg_json = payload;
	f.i = 1;
	f.timestamp = (int64_t)time(NULL);
	f.username = "apache";
	if (topic == NULL ||
	    fm_msg_build(&f, &b.lim, &b.unsigned_msg, err) < 0 ||
	    fm_signer_sign(b.signer, b.unsigned_msg, &signed_msg, err) < 0) {
		fprintf(stderr, "bench_crypto: building the envelope: %s\n",
		    topic ? err : "out of memory");
		goto out;
	}
	fm_msg_body(b.unsigned_msg, &ulen);
	body = fm_msg_body(signed_msg, &b.signed_len);
	b.signed_body = body;
	if ((b.canon = fm_msg_canonical(signed_msg, true, &b.canon_len)) ==
	    NULL || rsa_setup(&b, cert, key) < 0)
		goto out;
	if ((b.sha1 = EVP_MD_fetch(NULL, "SHA1", NULL)) == NULL ||
	    (b.sha1_ctx = EVP_MD_CTX_new()) == NULL) {
		fprintf(stderr, "bench_crypto: SHA-1 setup failed\n");
		goto out;
	}
	printf("# bench_crypto: %s signed by %s, CA %s%s%s\n", topic,
	    fm_signer_cn(b.signer), ca, vc.crl_path ? ", CRL " : "",
	    vc.crl_path ? crl : "");
	printf("envelope %zu %zu\n", ulen, b.signed_len);
	fflush(stdout);

	/* measure() checks each workload once before timing it. */
	status = 1;
	if (only != NULL) {
		static const struct { const char *name; enum work w; } ws[] = {
			{ "parse", W_PARSE }, { "parse_canon", W_PARSE_CANON },
			{ "parse_canon_sha1", W_PARSE_CANON_SHA1 },
			{ "rsa_verify", W_RSA_VERIFY },
			{ "evp_verify", W_EVP_VERIFY }, { "verify", W_VERIFY },
			{ "verify_seen", W_VERIFY_SEEN },
			{ "rsa_sign", W_RSA_SIGN }, { "sign", W_SIGN },
		};
		size_t i;

		for (i = 0; i < sizeof(ws) / sizeof(ws[0]); i++)
			if (strcmp(ws[i].name, only) == 0)
				break;
		if (i == sizeof(ws) / sizeof(ws[0]))
			usage();
		if (measure(&b, only, ws[i].w, 1, secs) == 0)
			status = 0;
		goto out;
	}
	{
		struct turn t[] = {
			{ "parse", W_PARSE, bsecs / rounds, 0, 0, 0 },
			{ "parse_canon", W_PARSE_CANON, bsecs / rounds, 0, 0, 0 },
			{ "parse_canon_sha1", W_PARSE_CANON_SHA1, bsecs / rounds,
			    0, 0, 0 },
			{ "rsa_verify", W_RSA_VERIFY, secs / rounds, 0, 0, 0 },
			{ "verify", W_VERIFY, secs / rounds, 0, 0, 0 },
			{ "verify_seen", W_VERIFY_SEEN, bsecs / rounds,
			    0, 0, 0 },
		};
		struct turn ts[] = {
			{ "rsa_sign", W_RSA_SIGN, bsecs / rounds, 0, 0, 0 },
			{ "sign", W_SIGN, secs / rounds, 0, 0, 0 },
		};

		if (measure_in_turn(&b, t, sizeof(t) / sizeof(t[0]),
		    rounds) < 0 ||
		    measure_in_turn(&b, ts, sizeof(ts) / sizeof(ts[0]),
		    rounds) < 0)
			goto out;
	}
	/* the 2-thread scaling: one thread and two, one after the other */
	if (measure(&b, "evp_verify", W_EVP_VERIFY, 1, bsecs) == 0 &&
	    measure(&b, "verify_solo", W_VERIFY, 1, bsecs / 2) == 0 &&
	    measure(&b, "verify", W_VERIFY, 2, secs) == 0)
		status = 0;
out:
	EVP_MD_CTX_free(b.sha1_ctx);
	EVP_MD_free(b.sha1);
	EVP_PKEY_CTX_free(b.rsa_vctx);
	EVP_PKEY_CTX_free(b.rsa_sctx);
	EVP_PKEY_free(b.pub);
	EVP_PKEY_free(b.priv);
	free(b.canon);
	fm_msg_unref(signed_msg);
	fm_msg_unref(b.unsigned_msg);
	fm_validator_free(b.val);
	fm_validator_free(b.val_seen);
	fm_signer_free(b.signer);
	free(topic);
	free(cert);
	free(key);
	free(ca);
	free(crl);
	return status;
}
