/*
 * hub/pubq.c: the hub's per-address publish FIFOs on a broker.  Order
 * within an address, independence of addresses (one address that is not
 * ready does not hold up another), the per-address bound, the bound on
 * addresses (an emptied address stops counting), and references:
 * a queued message stays alive after the caller drops its own, and every
 * reference is released (ASan's leak check).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <fedmsg/message.h>

#include "pubq.h"

/* A message whose payload is {"n": n}; the caller owns the reference. */
static struct fm_msg *
msg_n(int n)
{
	struct fm_msg_fields f;
	struct fm_msg *m = NULL;
	char json[32], err[FM_ERRLEN];

	snprintf(json, sizeof(json), "{\"n\":%d}", n);
	memset(&f, 0, sizeof(f));
	f.topic = "org.fedoraproject.dev.pubq.x";
	f.msg_json = json;
	f.i = n;
	f.username = "t";
	f.timestamp = 1;
	assert_int_equal(fm_msg_build(&f, NULL, &m, err), 0);
	return m;
}

/* The sender: records what it got, takes at most `room` per address "a". */
struct rec {
	char	 sent[64][16];	/* "<address>:<i>" */
	int	 nsent;
	int	 room_a;	/* -1: unlimited */
	bool	 never_b;	/* "b" can never take anything */
};

static enum pubq_try
record(void *ctx, const char *address, struct fm_msg *m, uint64_t seq)
{
	struct rec *r = ctx;
	int64_t i = -1;

	if (strcmp(address, "a") == 0 && r->room_a == 0)
		return PUBQ_LATER;
	if (strcmp(address, "b") == 0 && r->never_b)
		return PUBQ_NEVER;
	if (strcmp(address, "a") == 0 && r->room_a > 0)
		r->room_a--;
	assert_true(fm_msg_seq(m, &i));
	assert_int_equal((uint64_t)i, seq);	/* the tests use "i" as seq */
	snprintf(r->sent[r->nsent++], 16, "%s:%lld", address, (long long)i);
	return PUBQ_SENT;
}

static void
test_order_per_address(void **state)
{
	struct pubq *q = pubq_new(10, 8);
	struct rec r = { .room_a = 0 };
	int i;

	(void)state;
	assert_non_null(q);
	for (i = 1; i <= 3; i++) {
		struct fm_msg *m = msg_n(i);

		assert_int_equal(pubq_push(q, i == 2 ? "b" : "a", m,
		    (uint64_t)i), 0);
		fm_msg_unref(m);	/* the queue keeps its own */
	}
	assert_int_equal(pubq_waiting(q, "a"), 2);
	assert_int_equal(pubq_waiting(q, "b"), 1);
	assert_int_equal(pubq_waiting(q, "c"), 0);
	/* "a" not ready: "b" goes on, "a" keeps both */
	assert_int_equal(pubq_flush(q, record, &r), 2);
	assert_int_equal(r.nsent, 1);
	assert_string_equal(r.sent[0], "b:2");
	/* room for one: the oldest of "a" */
	r.room_a = 1;
	assert_int_equal(pubq_flush(q, record, &r), 1);
	assert_string_equal(r.sent[1], "a:1");
	r.room_a = -1;
	assert_int_equal(pubq_flush(q, record, &r), 0);
	assert_string_equal(r.sent[2], "a:3");
	assert_int_equal(pubq_len(q), 0);
	pubq_free(q);
}

static void
test_bounded_per_address(void **state)
{
	struct pubq *q = pubq_new(2, 8);
	struct fm_msg *m = msg_n(7);

	(void)state;
	assert_int_equal(pubq_push(q, "a", m, 7), 0);
	assert_int_equal(pubq_push(q, "a", m, 7), 0);
	assert_int_equal(pubq_push(q, "a", m, 7), -1);	/* full */
	assert_int_equal(pubq_push(q, "b", m, 7), 0);	/* another address */
	assert_int_equal(pubq_requeue(q, "a", m, 7), 0); /* put back: over */
	assert_int_equal(pubq_len(q), 4);
	fm_msg_unref(m);
	pubq_free(q);		/* releases the three references */
}

static void
test_never_leaves_the_queue(void **state)
{
	struct pubq *q = pubq_new(4, 8);
	struct rec r = { .room_a = -1, .never_b = true };
	struct fm_msg *m = msg_n(1);

	(void)state;
	assert_int_equal(pubq_push(q, "b", m, 1), 0);
	assert_int_equal(pubq_push(q, "a", m, 1), 0);
	fm_msg_unref(m);
	assert_int_equal(pubq_flush(q, record, &r), 0);
	assert_int_equal(r.nsent, 1);
	assert_string_equal(r.sent[0], "a:1");
	pubq_free(q);
	pubq_free(NULL);
}

/* Lost messages put back go before what was published since, in order. */
static void
test_requeue_in_order(void **state)
{
	struct pubq *q = pubq_new(10, 8);
	struct rec r = { .room_a = -1 };
	struct fm_msg *m[6];
	int i;

	(void)state;
	for (i = 1; i <= 5; i++)
		m[i] = msg_n(i);
	assert_int_equal(pubq_push(q, "a", m[4], 4), 0);
	assert_int_equal(pubq_push(q, "a", m[5], 5), 0);
	/* 1..3 were sent and lost, reported in any order */
	assert_int_equal(pubq_requeue(q, "a", m[2], 2), 0);
	assert_int_equal(pubq_requeue(q, "a", m[1], 1), 0);
	assert_int_equal(pubq_requeue(q, "a", m[3], 3), 0);
	for (i = 1; i <= 5; i++)
		fm_msg_unref(m[i]);
	assert_int_equal(pubq_flush(q, record, &r), 0);
	assert_int_equal(r.nsent, 5);
	for (i = 0; i < 5; i++) {
		char want[16];

		snprintf(want, sizeof(want), "a:%d", i + 1);
		assert_string_equal(r.sent[i], want);
	}
	pubq_free(q);
}

/*
 * At most max_addresses addresses with something waiting: a new one is
 * refused (nothing taken), a known one still takes; once sent, an
 * address's FIFO is freed and no longer counts.
 */
static void
test_bounded_addresses(void **state)
{
	struct pubq *q = pubq_new(10, 3);
	struct rec r = { .room_a = -1 };
	struct fm_msg *m = msg_n(1);
	char addr[16];
	int i, round;

	(void)state;
	for (round = 0; round < 2; round++) {
		r.nsent = 0;
		for (i = 0; i < 3; i++) {
			snprintf(addr, sizeof(addr), "t%d.%d", round, i);
			assert_int_equal(pubq_push(q, addr, m, 1), 0);
		}
		assert_int_equal(pubq_push(q, "t.new", m, 1), -3);
		assert_int_equal(pubq_push(q, addr, m, 1), 0);	/* known */
		assert_int_equal(pubq_waiting(q, "t.new"), 0);
		assert_int_equal(pubq_len(q), 4);
		/* put back (taken once): over the bound */
		assert_int_equal(pubq_requeue(q, "t.lost", m, 1), 0);
		assert_int_equal(pubq_flush(q, record, &r), 0);
		assert_int_equal(r.nsent, 5);
		/* all sent: the next round has room for 3 new addresses */
	}
	fm_msg_unref(m);
	pubq_free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_per_address),
		cmocka_unit_test(test_bounded_per_address),
		cmocka_unit_test(test_never_leaves_the_queue),
		cmocka_unit_test(test_requeue_in_order),
		cmocka_unit_test(test_bounded_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
