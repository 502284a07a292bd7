/*
 * relay_pool (fedmsg-relay --threads N): results leave in arrival order
 * with the invalid ones left out, the ring bounds what is in flight, a
 * re-signed message replaces the one that came in, and a hand-off that
 * ZeroMQ refuses drops its messages without a hang or a leak.
 * Certificates: tests/data/vectors/certs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "relay_pool.h"
#include "testutil.h"

#define SIGNER	"alpha-app01.vectors.example.org"

static struct fm_signer *signer;
static struct fm_validator *validator;

static int
group_setup(void **state)
{
	struct fm_validator_config cfg = { 0 };
	char err[FM_ERRLEN], ca[4096];

	(void)state;
	log_init("test_relay_pool", FM_LOG_ERR);	/* drops are expected */
	signer = fm_signer_load(tu_cert_path(SIGNER, ".crt"),
	    tu_cert_path(SIGNER, ".key"), err);
	snprintf(ca, sizeof(ca), "%s", tu_cert_path("ca", ".crt"));
	cfg.ca_path = ca;
	cfg.allow_x509 = true;	/* what fm_signer_sign writes */
	if (signer == NULL || (validator = fm_validator_new(&cfg, err)) ==
	    NULL) {
		fprintf(stderr, "test_relay_pool: %s\n", err);
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	fm_signer_free(signer);
	fm_validator_free(validator);
	return 0;
}

/* Message k, msg_id "2026-relay-pool-<k>"; signed by SIGNER if sign. */
static struct fm_msg *
message(int k, bool sign)
{
	struct fm_msg_fields f = { 0 };
	struct fm_msg *m, *s;
	char id[64], body[64], err[FM_ERRLEN];

	snprintf(id, sizeof(id), "2026-relay-pool-%d", k);
	snprintf(body, sizeof(body), "{\"k\": %d}", k);
	f.topic = "org.fedoraproject.dev.test.pool";
	f.msg_json = body;
	f.msg_id = id;
	f.i = k;
	f.username = "test";
	if (fm_msg_build(&f, NULL, &m, err) != 0)
		fail_msg("fm_msg_build: %s", err);
	if (!sign)
		return m;
	if (fm_signer_sign(signer, m, &s, err) != 0)
		fail_msg("fm_signer_sign: %s", err);
	fm_msg_unref(m);
	return s;
}

/* The frames m would have come in (what relay_pool_next hands back). */
static struct zep_frames
frames_of(const struct fm_msg *m)
{
	struct zep_frames f;
	const char *topic = fm_msg_topic(m);
	size_t len;
	const char *body = fm_msg_body(m, &len);

	assert_int_equal(zmq_msg_init_size(&f.topic, strlen(topic)), 0);
	memcpy(zmq_msg_data(&f.topic), topic, strlen(topic));
	assert_int_equal(zmq_msg_init_size(&f.body, len), 0);
	memcpy(zmq_msg_data(&f.body), body, len);
	return f;
}

/* Which k a message carries (its msg_id), or -1. */
static int
k_of(const struct fm_msg *m)
{
	int k;

	return sscanf(fm_msg_id(m), "2026-relay-pool-%d", &k) == 1 ? k : -1;
}

/* A pool of o->threads workers checking with v, on a context of its own. */
static struct relay_pool *
pool_start(void **ctx, const struct relay_opts *o, struct fm_validator *v)
{
	char err[FM_ERRLEN];
	struct relay_pool *p;

	*ctx = zmq_ctx_new();
	assert_non_null(*ctx);
	if ((p = relay_pool_new(*ctx, o->threads, o, v, err)) == NULL)
		fail_msg("relay_pool_new: %s", err);
	return p;
}

static void
pool_end(void *ctx, struct relay_pool *p)
{
	relay_pool_free(p);
	zmq_ctx_term(ctx);
}

/* Wait for results, take every one that is ready: how many came out. */
static size_t
drain(struct relay_pool *p, int *out, size_t max, bool want_frames)
{
	zmq_pollitem_t it = { relay_pool_results(p), 0, ZMQ_POLLIN, 0 };
	struct zep_frames f;
	struct fm_msg *m;
	bool unchanged;
	size_t n = 0;

	/* called only with results outstanding: none in 10 s is a hang */
	assert_int_equal(zmq_poll(&it, 1, 10000), 1);
	relay_pool_collect(p);
	while (relay_pool_next(p, &m, &f, &unchanged)) {
		assert_non_null(m);
		assert_true(n < max);
		out[n++] = k_of(m);
		assert_int_equal(unchanged, want_frames);
		if (unchanged) {
			/* the frames it came in, untouched */
			size_t len;
			const char *body = fm_msg_body(m, &len);

			assert_int_equal(zmq_msg_size(&f.body), len);
			assert_memory_equal(zmq_msg_data(&f.body), body, len);
			zep_frames_close(&f);
		}
		fm_msg_unref(m);
	}
	return n;
}

/*
 * 4 workers validating 600 messages fed as the relay feeds them (what the
 * ring has room for, flushed at each read): every fifth is unsigned and
 * must be left out, the rest come out in the order they went in.
 */
static void
test_order_kept_invalid_dropped(void **state)
{
	enum { N = 600 };
	struct relay_opts o = { .validate = true, .threads = 4 };
	void *ctx;
	struct relay_pool *p;
	static int out[N];
	uint64_t invalid = 0, sign_failed = 0;
	size_t got = 0;
	int next = 0, i;

	(void)state;
	p = pool_start(&ctx, &o, validator);
	while (next < N || got < N - N / 5) {
		size_t room = relay_pool_room(p);

		for (; room > 0 && next < N; room--, next++) {
			struct fm_msg *m = message(next, next % 5 != 0);
			struct zep_frames f = frames_of(m);

			relay_pool_add(p, m, &f);
		}
		relay_pool_flush(p);
		got += drain(p, out + got, N - got, true);
	}
	relay_pool_stop(p, &invalid, &sign_failed);
	assert_int_equal(invalid, N / 5);
	assert_int_equal(sign_failed, 0);
	for (i = 0; i < N - N / 5; i++)
		assert_int_equal(out[i], i + i / 4 + 1);
	pool_end(ctx, p);
}

/* The ring takes 256 messages a worker and no more until results leave. */
static void
test_ring_bounded(void **state)
{
	struct relay_opts o = { .threads = 2 };
	void *ctx;
	struct relay_pool *p;
	static int out[512];
	size_t added = 0, got = 0;

	(void)state;
	p = pool_start(&ctx, &o, NULL);
	assert_int_equal(relay_pool_room(p), 512);
	while (relay_pool_room(p) > 0) {
		struct fm_msg *m = message((int)added++, false);
		struct zep_frames f = frames_of(m);

		relay_pool_add(p, m, &f);
	}
	assert_int_equal(added, 512);
	relay_pool_flush(p);
	while (got < added)
		got += drain(p, out + got, 512 - got, true);
	assert_int_equal(relay_pool_room(p), 512);
	assert_int_equal(out[0], 0);
	assert_int_equal(out[511], 511);
	pool_end(ctx, p);
}

/*
 * fedmsg-signing-relay --threads 2: each message comes out signed anew (not
 * as the frames it came in) and validates.
 */
static void
test_signing_replaces(void **state)
{
	enum { N = 40 };
	struct relay_opts o = { .signer = signer, .threads = 2 };
	char err[FM_ERRLEN];
	void *ctx;
	struct relay_pool *p;
	struct zep_frames f;
	struct fm_msg *m;
	bool unchanged;
	uint64_t invalid = 0, sign_failed = 0;
	int k = 0;

	(void)state;
	p = pool_start(&ctx, &o, NULL);
	for (k = 0; k < N; k++)
		relay_pool_add(p, message(k, false), NULL);
	relay_pool_stop(p, &invalid, &sign_failed);
	assert_int_equal(sign_failed, 0);
	for (k = 0; relay_pool_next(p, &m, &f, &unchanged); k++) {
		assert_false(unchanged);
		assert_int_equal(k_of(m), k);
		assert_int_equal(fm_validator_check(validator, m, err),
		    FM_VALID);
		fm_msg_unref(m);
	}
	assert_int_equal(k, N);
	pool_end(ctx, p);
}

/*
 * A terminated context refuses the hand-off: the messages are dropped
 * (their references and frames freed: ASan's leak check), the ring is
 * empty again, and stopping does not wait for workers that are gone.
 */
static void
test_refused_handoff_drops(void **state)
{
	struct relay_opts o = { .threads = 2 };
	void *ctx;
	struct relay_pool *p;
	struct zep_frames f;
	struct fm_msg *m;
	bool unchanged;
	uint64_t invalid = 0, sign_failed = 0;
	int k;

	(void)state;
	p = pool_start(&ctx, &o, NULL);
	assert_int_equal(zmq_ctx_shutdown(ctx), 0);
	for (k = 0; k < 10; k++) {
		m = message(k, false);
		f = frames_of(m);
		relay_pool_add(p, m, k % 2 ? &f : NULL);
		if (k % 2 == 0)
			zep_frames_close(&f);
	}
	relay_pool_flush(p);
	assert_false(relay_pool_next(p, &m, &f, &unchanged));
	assert_int_equal(relay_pool_room(p), 512);
	relay_pool_stop(p, &invalid, &sign_failed);
	assert_int_equal(invalid + sign_failed, 0);
	pool_end(ctx, p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_kept_invalid_dropped),
		cmocka_unit_test(test_ring_bounded),
		cmocka_unit_test(test_signing_replaces),
		cmocka_unit_test(test_refused_handoff_drops),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
