/*
 * The STOMP session of bridge/stomp.c in memory, without a socket: frames
 * are fed in, the bytes it wants to send are read out, and time is a
 * number the test advances (so timers are exact, not waited for).  The
 * same session against a fake broker over TCP/TLS is test_stomp.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/message.h>

#include "log.h"
#include "stomp.h"

struct t {
	struct stomp	*s;
	int		 connected, disconnected, errors, closed, receipts;
	int		 messages;
	bool		 error_while_subscribing;
	char		 last_error[FM_ERRLEN];
	char		 last_receipt[64];
	char		 token[256];
	char		 body[64];
	char		 out[65536];	/* everything written, as text */
	size_t		 outlen;
};

static void
cb_connected(void *arg, const struct stomp_frame *f)
{
	(void)f;
	((struct t *)arg)->connected++;
}

static void
cb_message(void *arg, const struct stomp_frame *f, const char *tok)
{
	struct t *t = arg;

	t->messages++;
	snprintf(t->token, sizeof(t->token), "%s", tok ? tok : "");
	snprintf(t->body, sizeof(t->body), "%.*s", (int)f->body_len, f->body);
}

static void
cb_receipt(void *arg, const char *id)
{
	struct t *t = arg;

	t->receipts++;
	snprintf(t->last_receipt, sizeof(t->last_receipt), "%s", id);
}

static void
cb_error(void *arg, const char *text)
{
	struct t *t = arg;

	t->errors++;
	snprintf(t->last_error, sizeof(t->last_error), "%s", text);
}

static void
cb_error_frame(void *arg, const char *receipt_id, const char *text)
{
	struct t *t = arg;

	(void)receipt_id;
	(void)text;
	/* what the link asks before it blames a send */
	t->error_while_subscribing = stomp_subscribing(t->s);
}

static void
cb_disconnected(void *arg, const char *why)
{
	(void)why;
	((struct t *)arg)->disconnected++;
}

static void
hook_closed(void *owner, int64_t now, int64_t connected_at)
{
	(void)now;
	(void)connected_at;
	((struct t *)owner)->closed++;
}

static const struct stomp_hooks hooks = { hook_closed, NULL };

/* Take everything the session wants to write, a few bytes at a time. */
static void
drain(struct t *t, int64_t now)
{
	const void *p;
	size_t n;

	while ((p = stomp_session_output(t->s, &n)) != NULL) {
		if (n > 7)
			n = 7;		/* partial writes */
		assert_true(t->outlen + n < sizeof(t->out));
		memcpy(t->out + t->outlen, p, n);
		t->outlen += n;
		t->out[t->outlen] = '\0';
		stomp_session_output_done(t->s, n, now);
	}
}

/* The text written since the last call; NULs shown as '^'. */
static const char *
written(struct t *t, int64_t now)
{
	static char buf[sizeof(((struct t *)0)->out)];
	size_t i;

	drain(t, now);
	for (i = 0; i < t->outlen; i++)
		buf[i] = t->out[i] ? t->out[i] : '^';
	buf[t->outlen] = '\0';
	t->outlen = 0;
	return buf;
}

static void
feed(struct t *t, const char *text, int64_t now)
{
	/* the frames as the broker writes them, '^' for their NUL */
	char b[4096];
	size_t i, n = strlen(text);

	assert_true(n < sizeof(b));
	for (i = 0; i < n; i++)
		b[i] = text[i] == '^' ? '\0' : text[i];
	stomp_session_input(t->s, b, n, now);
}

static void
setup_t(struct t *t, unsigned hb)
{
	struct stomp_opts o;
	char err[FM_ERRLEN];

	memset(t, 0, sizeof(*t));
	memset(&o, 0, sizeof(o));
	o.login = "u";
	o.passcode = "p";
	o.hb_send_ms = o.hb_recv_ms = hb;
	o.receipt_timeout_ms = 1000;
	o.connect_timeout_ms = 5000;
	o.cb.on_connected = cb_connected;
	o.cb.on_message = cb_message;
	o.cb.on_receipt = cb_receipt;
	o.cb.on_error = cb_error;
	o.cb.on_disconnected = cb_disconnected;
	o.cb.on_error_frame = cb_error_frame;
	o.arg = t;
	t->s = stomp_session_new(&o, &hooks, t, err);
	if (t->s == NULL)
		fail_msg("%s", err);
	assert_int_equal(stomp_session_target(t->s, "stomp://b:61613", "b",
	    false), 0);
}

/* Up to CONNECTED, at time 1000. */
static void
connect_t(struct t *t, const char *version, const char *hb)
{
	static const char want[] = "CONNECT\naccept-version:1.1,1.2\n"
	    "host:b\nlogin:u\npasscode:p\nheart-beat:";
	char f[256];

	stomp_session_attach(t->s, 1000);
	assert_int_equal(stomp_state(t->s), STOMP_ST_CONNECTING);
	stomp_session_open(t->s, 1000);
	assert_int_equal(stomp_state(t->s), STOMP_ST_STOMP_CONNECTING);
	assert_true(strncmp(written(t, 1000), want, sizeof(want) - 1) == 0);

	snprintf(f, sizeof(f), "CONNECTED\nversion:%s\nheart-beat:%s\n\n^",
	    version, hb);
	feed(t, f, 1000);
	assert_int_equal(t->connected, 1);
	assert_int_equal(stomp_state(t->s), STOMP_ST_CONNECTED);
}

/*
 * An ERROR naming no receipt before the SUBSCRIBE's RECEIPT is the
 * SUBSCRIBE's (RabbitMQ's not_found for a missing exchange), on every
 * connection: stomp_subscribing() says so, so the link blames no SEND.
 * Once the RECEIPT is in, such an ERROR is a SEND's.
 */
static void
test_error_while_subscribing(void **state)
{
	struct t t;
	int round;

	(void)state;
	setup_t(&t, 0);
	assert_int_equal(stomp_subscribe(t.s, "/exchange/gone", "s1", NULL,
	    NULL), 0);
	for (round = 0; round < 3; round++) {
		int64_t at = 1000 + round * 100000;

		t.connected = 0;
		stomp_session_attach(t.s, at);
		stomp_session_open(t.s, at);
		(void)written(&t, at);
		feed(&t, "CONNECTED\nversion:1.2\n\n^", at);
		assert_int_equal(stomp_send(t.s, "/queue/out", NULL, "{}", 2,
		    "7"), 0);
		assert_non_null(strstr(written(&t, at), "receipt:subscribe-s1"));
		t.error_while_subscribing = false;
		feed(&t, "ERROR\nmessage:not_found\n\nNOT_FOUND - no "
		    "exchange^", at + 1);
		assert_true(t.error_while_subscribing);
		assert_int_equal(stomp_state(t.s), STOMP_ST_DISCONNECTED);
	}
	/* the exchange exists now: subscribed, then a SEND's ERROR */
	stomp_session_attach(t.s, 900000);
	stomp_session_open(t.s, 900000);
	(void)written(&t, 900000);
	feed(&t, "CONNECTED\nversion:1.2\n\n^", 900000);
	feed(&t, "RECEIPT\nreceipt-id:subscribe-s1\n\n^", 900000);
	assert_int_equal(stomp_send(t.s, "/exchange/x", NULL, "{}", 2, "8"),
	    0);
	(void)written(&t, 900000);
	t.error_while_subscribing = true;
	feed(&t, "ERROR\nmessage:not_found\n\n^", 900001);
	assert_false(t.error_while_subscribing);
	stomp_free(t.s);
}

static void
test_connect_subscribe_ack(void **state)
{
	struct t t;
	const char *w;

	(void)state;
	setup_t(&t, 0);
	assert_int_equal(stomp_subscribe(t.s, "/queue/a", "s1", NULL, NULL),
	    0);
	stomp_session_attach(t.s, 1000);
	stomp_session_open(t.s, 1000);
	w = written(&t, 1000);
	assert_string_equal(w, "CONNECT\naccept-version:1.1,1.2\nhost:b\n"
	    "login:u\npasscode:p\nheart-beat:0,0\n\n^");
	/* CONNECTED in pieces of one byte */
	{
		const char *f = "CONNECTED\nversion:1.2\n\n^";
		size_t i;

		for (i = 0; f[i]; i++) {
			char c = f[i] == '^' ? '\0' : f[i];

			stomp_session_input(t.s, &c, 1, 1001);
		}
	}
	assert_int_equal(t.connected, 1);
	assert_string_equal(stomp_version(t.s), "1.2");
	/* the subscription goes out after every CONNECTED */
	assert_string_equal(written(&t, 1001), "SUBSCRIBE\ndestination:"
	    "/queue/a\nid:s1\nack:client-individual\nreceipt:subscribe-s1\n\n^");
	assert_true(stomp_subscribing(t.s));
	feed(&t, "RECEIPT\nreceipt-id:subscribe-s1\n\n^", 1001);
	assert_false(stomp_subscribing(t.s));
	assert_int_equal(t.receipts, 0);	/* the session's own */
	feed(&t, "MESSAGE\nsubscription:s1\nmessage-id:m1\nack:A1\n"
	    "destination:/queue/a\ncontent-length:5\n\nhello^", 1002);
	assert_int_equal(t.messages, 1);
	assert_string_equal(t.body, "hello");
	assert_int_equal(stomp_ack(t.s, t.token), 0);
	assert_string_equal(written(&t, 1003), "ACK\nid:A1\n\n^");
	assert_int_equal(stomp_reject(t.s, t.token), 0);
	assert_string_equal(written(&t, 1003), "NACK\nid:A1\nrequeue:false"
	    "\n\n^");
	assert_int_equal(t.errors, 0);
	stomp_free(t.s);
}

static void
test_send_receipt_and_timeout(void **state)
{
	struct t t;

	(void)state;
	setup_t(&t, 0);
	connect_t(&t, "1.2", "0,0");
	written(&t, 1000);
	assert_int_equal(stomp_send(t.s, "/queue/x", NULL, "{}", 2, "7"), 0);
	/* content-length first: the codec puts it there */
	assert_string_equal(written(&t, 1000), "SEND\ncontent-length:2\n"
	    "destination:/queue/x\nreceipt:7\n\n{}^");
	feed(&t, "RECEIPT\nreceipt-id:7\n\n^", 1100);
	assert_int_equal(t.receipts, 1);
	assert_string_equal(t.last_receipt, "7");
	/* the receipt timer starts at the next tick, on our clock */
	assert_int_equal(stomp_send(t.s, "/queue/x", NULL, "{}", 2, "8"), 0);
	stomp_session_tick(t.s, 2000);
	assert_int_equal(stomp_session_timeout_ms(t.s, 2000), 1000);
	stomp_session_tick(t.s, 2999);
	assert_int_equal(t.errors, 0);
	stomp_session_tick(t.s, 3000);
	assert_int_equal(t.errors, 1);
	assert_true(strstr(t.last_error, "no RECEIPT for '8' from "
	    "stomp://b:61613 within 1000 ms") != NULL);
	/* the session closed the connection: hook, then on_disconnected */
	assert_int_equal(t.closed, 1);
	assert_int_equal(t.disconnected, 1);
	assert_int_equal(stomp_state(t.s), STOMP_ST_DISCONNECTED);
	errno = 0;
	assert_int_equal(stomp_send(t.s, "/queue/x", NULL, "{}", 2, "9"), -1);
	assert_int_equal(errno, ENOTCONN);
	stomp_free(t.s);
}

static void
test_heartbeats_on_our_clock(void **state)
{
	struct t t;
	int64_t now;

	(void)state;
	setup_t(&t, 1000);
	connect_t(&t, "1.2", "2000,500");
	written(&t, 1000);
	/* we beat every max(1000, 500) ms, at half of it; expect theirs
	   within twice max(1000, 2000) */
	{
		unsigned tx, rx;

		stomp_heartbeats(t.s, &tx, &rx);
		assert_int_equal(tx, 1000);
		assert_int_equal(rx, 2000);
	}
	assert_int_equal(stomp_session_timeout_ms(t.s, 1000), 500);
	stomp_session_tick(t.s, 1499);
	assert_string_equal(written(&t, 1499), "");
	stomp_session_tick(t.s, 1500);
	assert_string_equal(written(&t, 1500), "\n");
	for (now = 1500; now < 4900; now += 100) {
		stomp_session_tick(t.s, now);
		written(&t, now);
	}
	feed(&t, "\n", 4900);		/* their beat */
	stomp_session_tick(t.s, 8899);
	assert_int_equal(t.errors, 0);
	stomp_session_tick(t.s, 8900);
	assert_int_equal(t.errors, 1);
	assert_true(strstr(t.last_error, "connection dead") != NULL);
	assert_int_equal(t.closed, 1);
	stomp_free(t.s);
}

static void
test_error_frame_and_eof(void **state)
{
	struct t t;
	uint64_t gen;

	(void)state;
	setup_t(&t, 0);
	stomp_session_attach(t.s, 1000);
	stomp_session_open(t.s, 1000);
	gen = stomp_session_generation(t.s);
	feed(&t, "ERROR\nmessage:Bad CONNECT\n\nAccess refused for user 'u'"
	    "^", 1000);
	assert_int_equal(t.errors, 1);
	assert_string_equal(t.last_error, "stomp://b:61613 refused the "
	    "connection: Bad CONNECT: Access refused for user 'u'");
	assert_int_equal(t.closed, 1);
	assert_int_equal(t.disconnected, 0);	/* never announced */
	assert_true(stomp_session_generation(t.s) != gen);
	/* EOF before CONNECTED says what is likely wrong */
	stomp_session_attach(t.s, 2000);
	stomp_session_open(t.s, 2000);
	stomp_session_input_end(t.s, 2000, NULL);
	assert_string_equal(t.last_error, "stomp://b:61613 closed the "
	    "connection before CONNECTED (TLS-only port or not a STOMP "
	    "port?)");
	/* the connect timer covers the whole way to CONNECTED */
	stomp_session_attach(t.s, 3000);
	stomp_session_tick(t.s, 7999);
	assert_int_equal(t.errors, 2);
	stomp_session_tick(t.s, 8000);
	assert_string_equal(t.last_error, "timed out after 5000 ms "
	    "connecting to stomp://b:61613 (connecting)");
	/* a protocol error */
	connect_t(&t, "1.1", "0,0");
	feed(&t, "MESSAGE\ncontent-length:x\n\n^", 9000);
	assert_true(strstr(t.last_error, "protocol error from "
	    "stomp://b:61613") != NULL);
	assert_int_equal(t.disconnected, 1);
	stomp_free(t.s);
}

static void
test_graceful_disconnect(void **state)
{
	struct t t;

	(void)state;
	setup_t(&t, 0);
	stomp_session_set_running(t.s, true);
	connect_t(&t, "1.2", "0,0");
	written(&t, 1000);
	stomp_disconnect(t.s, 1000);
	assert_false(stomp_session_running(t.s));
	assert_int_equal(stomp_state(t.s), STOMP_ST_DISCONNECTING);
	assert_true(strncmp(written(&t, 1000), "DISCONNECT\nreceipt:"
	    "disconnect-", 30) == 0);
	{
		char f[128];

		snprintf(f, sizeof(f), "RECEIPT\nreceipt-id:disconnect-%llu"
		    "\n\n^", (unsigned long long)stomp_session_generation(t.s));
		feed(&t, f, 1100);
	}
	assert_int_equal(stomp_state(t.s), STOMP_ST_DISCONNECTED);
	assert_int_equal(t.closed, 1);
	assert_int_equal(t.disconnected, 1);
	assert_int_equal(t.errors, 0);
	stomp_free(t.s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_subscribe_ack),
		cmocka_unit_test(test_error_while_subscribing),
		cmocka_unit_test(test_send_receipt_and_timeout),
		cmocka_unit_test(test_heartbeats_on_our_clock),
		cmocka_unit_test(test_error_frame_and_eof),
		cmocka_unit_test(test_graceful_disconnect),
	};

	log_init("test_stomp_session", getenv("STOMP_TEST_VERBOSE") ?
	    FM_LOG_DEBUG : FM_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
