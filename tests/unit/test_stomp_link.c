/*
 * brokers/stomp_link.c (the broker.h link over STOMP) against the fake
 * STOMP server of fake_stomp.h: an ERROR refusing a SUBSCRIBE is blamed
 * on no SEND, a delivery's source is the address subscribed to, and a
 * MESSAGE under max_message of more than the frame parser's default
 * limit is delivered.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <fedmsg/message.h>

#include "broker.h"
#include "buf.h"
#include "log.h"
#include "stomp.h"
#include "stomp_frame.h"

#include "fake_stomp.h"

/* a 1.2 broker without heart-beats, as fake_cfg wants it */
#define FAKE_12	.version = "1.2", .hb = "0,0"

/* ---- the owner ------------------------------------------------------------- */

struct owner {
	struct broker	*b;
	int		 ups, lost, refused, rejected, accepted, messages;
	bool		 pending;	/* token 42 to be (re)sent */
	char		 source[128];
	char		 why[FM_ERRLEN];
};

static void o_up(void *c) { ((struct owner *)c)->ups++; }
static void o_down(void *c, const char *w) { (void)c; (void)w; }

static void
o_sent(void *c, uint64_t token, enum broker_outcome o, const char *why)
{
	struct owner *ow = c;

	assert_int_equal(token, 42);
	switch (o) {
	case BROKER_ACCEPTED: ow->accepted++; return;
	case BROKER_LOST: ow->lost++; break;
	case BROKER_REFUSED: ow->refused++; break;
	case BROKER_REJECTED:
	case BROKER_UNROUTABLE:
		ow->rejected++;
		snprintf(ow->why, sizeof(ow->why), "%s", why);
		return;
	}
	ow->pending = true;
}

static void
o_message(void *c, const struct broker_in *in, struct broker_delivery *d)
{
	struct owner *ow = c;

	ow->messages++;
	snprintf(ow->source, sizeof(ow->source), "%s", in->source ?
	    in->source : "(null)");
	ow->b->ops->settle(ow->b, d, SETTLE_ACCEPT);
}

static size_t max_message;

static void
owner_new(struct owner *ow, int port)
{
	static char url[64];
	const char *urls[1] = { url };
	struct broker_callbacks cb = { ow, o_up, o_down, o_sent, o_message };
	struct broker_opts bo;
	char err[FM_ERRLEN];

	memset(ow, 0, sizeof(*ow));
	snprintf(url, sizeof(url), "stomp://127.0.0.1:%d", port);
	memset(&bo, 0, sizeof(bo));
	bo.urls = urls;
	bo.nurls = 1;
	bo.name = "test";
	bo.max_message = max_message;
	ow->b = broker_new(&bo, &cb, err);
	if (ow->b == NULL)
		fail_msg("%s", err);
}

static void
loop_once(struct owner *ow)
{
	zmq_pollitem_t it;
	struct pollfd pfd;
	int to;

	ow->b->ops->poll_item(ow->b, &it);
	to = ow->b->ops->timeout_ms(ow->b, stomp_now_ms());
	if (to < 0 || to > 20)
		to = 20;
	pfd.fd = it.fd;
	pfd.events = (short)(((it.events & ZMQ_POLLIN) ? POLLIN : 0) |
	    ((it.events & ZMQ_POLLOUT) ? POLLOUT : 0));
	pfd.revents = 0;
	if (pfd.fd >= 0)
		poll(&pfd, 1, to);
	else
		poll(NULL, 0, to);
	ow->b->ops->handle(ow->b, (short)(((pfd.revents & POLLIN) ?
	    ZMQ_POLLIN : 0) | ((pfd.revents & POLLOUT) ? ZMQ_POLLOUT : 0) |
	    ((pfd.revents & (POLLERR | POLLHUP)) ? ZMQ_POLLERR : 0)),
	    stomp_now_ms());
	if (ow->pending && ow->b->ops->can_send(ow->b, "/queue/out")) {
		struct broker_out m = { "/queue/out", "{}", 2, "id-42", NULL,
		    0, NULL, 0, NULL };

		if (ow->b->ops->send(ow->b, &m, 42) == 0)
			ow->pending = false;
	}
}

/*
 * A SUBSCRIBE the broker refuses with an ERROR that names no receipt
 * (RabbitMQ: not_found for a missing exchange or queue), on every
 * connection, with a SEND in flight: the SEND is lost and resent, never
 * refused or given up (the bridge would drop it from its spool), though
 * unnamed ERRORs come in a row.  Four connections: the link used to blame
 * it from the second on and give it up at the fifth.
 */
static void
test_sub_error_blamed_on_no_send(void **state)
{
	const struct fake_cfg cfg = { FAKE_12, .error_after_sub = 1000 };
	struct fake *fk = fake_start(&cfg);
	struct owner ow;
	int64_t end = stomp_now_ms() + 20000;
	int fk_conns;

	(void)state;
	owner_new(&ow, fk->port);
	assert_int_equal(ow.b->ops->subscribe(ow.b, "/exchange/missing/#"),
	    0);
	ow.pending = true;
	while (stomp_now_ms() < end && atomic_load(&fk->conns) < 4 &&
	    ow.rejected == 0 && ow.accepted == 0)
		loop_once(&ow);
	fk_conns = atomic_load(&fk->conns);
	if (ow.refused || ow.rejected)
		print_message("connections %d, SENDs the broker read %d, lost "
		    "%d, refused %d, rejected %d (%s)\n", fk_conns,
		    fake_count(fk, "\nSEND "), ow.lost, ow.refused,
		    ow.rejected, ow.why);
	ow.b->ops->free(ow.b);
	fake_stop(fk);
	assert_true(fk_conns >= 4);
	assert_int_equal(ow.refused, 0);
	assert_int_equal(ow.rejected, 0);
	assert_true(ow.lost >= 1);
}

/* Subscribe to /queue/a on a fake made from cfg until a MESSAGE comes
 * (10 s at most); ow holds what the owner saw. */
static void
receive_one(const struct fake_cfg *cfg, size_t max, struct owner *ow)
{
	struct fake *fk = fake_start(cfg);
	int64_t end = stomp_now_ms() + 10000;

	max_message = max;
	owner_new(ow, fk->port);
	max_message = 0;
	assert_int_equal(ow->b->ops->subscribe(ow->b, "/queue/a"), 0);
	while (stomp_now_ms() < end && ow->messages == 0)
		loop_once(ow);
	ow->b->ops->free(ow->b);
	fake_stop(fk);
}

/*
 * broker_in.source of a STOMP delivery is the source subscribed to, as on
 * the AMQP links (fm_serial's "queue"), not the link's own "sub-0".
 */
static void
test_source_is_the_subscribed_address(void **state)
{
	const struct fake_cfg cfg = { FAKE_12, .msgs_per_sub = 1 };
	struct owner ow;

	(void)state;
	receive_one(&cfg, 0, &ow);
	assert_int_equal(ow.messages, 1);
	assert_string_equal(ow.source, "/queue/a");
}

/*
 * A 20 MB MESSAGE under max_message (64 MiB) is delivered: the frame
 * parser's limit follows max_message (its own default is 16 MiB, and a
 * frame over it failed the connection, to come back first on the next).
 */
static void
test_big_message_under_max_message(void **state)
{
	const struct fake_cfg cfg = { FAKE_12, .msgs_per_sub = 1,
	    .big_body = 20u * 1000 * 1000 };
	struct owner ow;

	(void)state;
	receive_one(&cfg, 64u * 1024 * 1024, &ow);
	assert_int_equal(ow.messages, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sub_error_blamed_on_no_send),
		cmocka_unit_test(test_source_is_the_subscribed_address),
		cmocka_unit_test(test_big_message_under_max_message),
	};

	log_init("test_stomp_link", getenv("STOMP_TEST_VERBOSE") ?
	    FM_LOG_DEBUG : FM_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
