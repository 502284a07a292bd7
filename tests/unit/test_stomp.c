/*
 * The STOMP client session (brokers/stomp.c) against a small fake STOMP
 * server that runs in a thread of this test on 127.0.0.1 (plain or TLS
 * with certificates made here): negotiation, SEND with receipts,
 * SUBSCRIBE/MESSAGE/ACK for 1.2 and 1.1, ERROR and reconnect, dead-peer
 * detection, refused connections and backoff, slow and hostile servers,
 * TLS verification.  Real brokers are tested by the integration tests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <fedmsg/message.h>

#include "buf.h"
#include "log.h"
#include "stomp.h"
#include "stomp_frame.h"

#include "fake_stomp.h"

/* ---- certificates ------------------------------------------------------ */

static char tmpdir[64];
static char ca_pem[128], ca2_pem[128], srv_crt[128], srv_key[128];
static char cli_crt[128], cli_key[128];

static EVP_PKEY *
mkkey(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

static void
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

static X509 *
mkcert(EVP_PKEY *key, EVP_PKEY *signer, X509 *issuer, const char *cn,
    bool ca, const char *san)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *n;
	X509V3_CTX ctx;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	add_ext(x, &ctx, NID_basic_constraints,
	    ca ? "critical,CA:TRUE" : "CA:FALSE");
	if (ca)
		add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
	if (san)
		add_ext(x, &ctx, NID_subject_alt_name, san);
	assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
	return x;
}

static void
write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	if (x)
		assert_int_equal(PEM_write_X509(f, x), 1);
	if (k)
		assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0,
		    NULL, NULL), 1);
	fclose(f);
}

static void
make_pki(void)
{
	EVP_PKEY *cak = mkkey(), *ca2k = mkkey(), *sk = mkkey(), *ck = mkkey();
	X509 *ca = mkcert(cak, cak, NULL, "stomp test CA", true, NULL);
	X509 *ca2 = mkcert(ca2k, ca2k, NULL, "other CA", true, NULL);
	X509 *srv = mkcert(sk, cak, ca, "localhost", false,
	    "DNS:localhost,IP:127.0.0.1");
	X509 *cli = mkcert(ck, cak, ca, "svc-bridge", false, NULL);

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_stomp.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", tmpdir);
	snprintf(ca2_pem, sizeof(ca2_pem), "%s/ca2.pem", tmpdir);
	snprintf(srv_crt, sizeof(srv_crt), "%s/srv.crt", tmpdir);
	snprintf(srv_key, sizeof(srv_key), "%s/srv.key", tmpdir);
	snprintf(cli_crt, sizeof(cli_crt), "%s/cli.crt", tmpdir);
	snprintf(cli_key, sizeof(cli_key), "%s/cli.key", tmpdir);
	write_pem(ca_pem, ca, NULL);
	write_pem(ca2_pem, ca2, NULL);
	write_pem(srv_crt, srv, NULL);
	write_pem(srv_key, NULL, sk);
	write_pem(cli_crt, cli, NULL);
	write_pem(cli_key, NULL, ck);
	X509_free(ca);
	X509_free(ca2);
	X509_free(srv);
	X509_free(cli);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(ca2k);
	EVP_PKEY_free(sk);
	EVP_PKEY_free(ck);
}

static void
remove_pki(void)
{
	const char *f[] = { ca_pem, ca2_pem, srv_crt, srv_key, cli_crt,
	    cli_key };
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		unlink(f[i]);
	rmdir(tmpdir);
}

/* ---- the client side ----------------------------------------------------- */

enum ack_policy { ACK_NONE, ACK_ALL, ACK_FIRST_NACK_REST, ACK_KEEP };

struct tc {
	struct stomp	*s;
	int		 connected, messages, receipts, errors, disconnected;
	char		 last_error[FM_ERRLEN];
	char		 last_reason[FM_ERRLEN];
	struct buf	 events;	/* "R:<id>\n", "M:<dest>|<body>\n" */
	enum ack_policy	 ack;
	char		*kept_token;
	int64_t		 err_at[64];
	char		 err_text[64][FM_ERRLEN];
	int		 ack_rc, ack_errno;
	bool		 disconnect_on_connected;
};

static void
cb_connected(void *arg, const struct stomp_frame *f)
{
	struct tc *t = arg;

	assert_string_equal(f->command, "CONNECTED");
	t->connected++;
	if (t->disconnect_on_connected)
		stomp_disconnect(t->s, now_ms());
}

static void
cb_message(void *arg, const struct stomp_frame *f, const char *token)
{
	struct tc *t = arg;
	const struct stomp_header *h = stomp_frame_header(f, "x-test");

	assert_non_null(h);
	assert_string_equal(h->value, "a\nb:c");	/* unescaped */
	buf_printf(&t->events, "M:%s|%.*s|%s\n",
	    stomp_frame_value(f, "destination"), (int)f->body_len, f->body,
	    token ? "token" : "none");
	switch (t->ack) {
	case ACK_NONE:
		break;
	case ACK_ALL:
		t->ack_rc = stomp_ack(t->s, token);
		break;
	case ACK_FIRST_NACK_REST:
		t->ack_rc = t->messages == 0 ? stomp_ack(t->s, token) :
		    stomp_nack(t->s, token);
		break;
	case ACK_KEEP:
		free(t->kept_token);
		t->kept_token = token ? strdup(token) : NULL;
		break;
	}
	t->ack_errno = errno;
	t->messages++;
}

static void
cb_receipt(void *arg, const char *id)
{
	struct tc *t = arg;

	buf_printf(&t->events, "R:%s\n", id);
	t->receipts++;
}

static void
cb_error(void *arg, const char *text)
{
	struct tc *t = arg;

	if (t->errors < 64) {
		t->err_at[t->errors] = now_ms();
		snprintf(t->err_text[t->errors], FM_ERRLEN, "%s", text);
	}
	snprintf(t->last_error, sizeof(t->last_error), "%s", text);
	t->errors++;
}

static void
cb_disconnected(void *arg, const char *reason)
{
	struct tc *t = arg;

	snprintf(t->last_reason, sizeof(t->last_reason), "%s", reason);
	t->disconnected++;
}

static char url_buf[8][96];

static const char *
url_of(int i, const char *scheme, int port)
{
	snprintf(url_buf[i], sizeof(url_buf[i]), "%s://127.0.0.1:%d", scheme,
	    port);
	return url_buf[i];
}

static void
opts_init(struct stomp_opts *o, struct tc *t, const char *const *urls)
{
	memset(o, 0, sizeof(*o));
	o->urls = urls;
	o->login = "guest";
	o->passcode = "guest";
	o->allow_plaintext_login = true;	/* a fake broker on loopback */
	o->vhost = "/";
	o->connect_timeout_ms = 2000;
	o->receipt_timeout_ms = 2000;
	o->reconnect_min_ms = 50;
	o->reconnect_max_ms = 400;
	o->cb.on_connected = cb_connected;
	o->cb.on_message = cb_message;
	o->cb.on_receipt = cb_receipt;
	o->cb.on_error = cb_error;
	o->cb.on_disconnected = cb_disconnected;
	o->arg = t;
}

static void
tc_new(struct tc *t, const struct stomp_opts *o)
{
	char err[FM_ERRLEN];

	memset(t, 0, sizeof(*t));
	t->s = stomp_new(o, err);
	if (t->s == NULL)
		fail_msg("stomp_new: %s", err);
	stomp_start(t->s, now_ms());
}

static void
tc_free(struct tc *t)
{
	stomp_free(t->s);
	buf_free(&t->events);
	free(t->kept_token);
}

/* One round of the caller's event loop, at most max_wait ms. */
static void
loop_once(struct stomp *s, int max_wait)
{
	struct pollfd pfd = { stomp_fd(s), stomp_events(s), 0 };
	int to = stomp_timeout_ms(s, now_ms());

	if (to < 0 || to > max_wait)
		to = max_wait;
	if (pfd.fd >= 0)
		poll(&pfd, 1, to);
	else
		poll(NULL, 0, to);
	stomp_handle(s, pfd.fd >= 0 ? pfd.revents : 0, now_ms());
}

/* Run the loop until *counter >= want; fail after max_ms. */
static void
run_until(struct tc *t, const int *counter, int want, int max_ms)
{
	int64_t end = now_ms() + max_ms;

	while (*counter < want) {
		if (now_ms() > end)
			fail_msg("timed out waiting (%d < %d); state %s, "
			    "last error: %s", *counter, want,
			    stomp_state_name(stomp_state(t->s)), t->last_error);
		loop_once(t->s, 20);
	}
}

static void
run_for(struct tc *t, int ms)
{
	int64_t end = now_ms() + ms;

	while (now_ms() < end)
		loop_once(t->s, 10);
}

static bool
has(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

/* ---- tests --------------------------------------------------------------- */

static void
test_connect_negotiation(void **state)
{
	struct fake_cfg cfg = { .version = "1.2", .hb = "0,0" };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	const char *extra[] = { "client-id", "bridge-1", NULL };
	struct stomp_opts o;
	struct tc t;
	char want[128];
	unsigned tx, rx;

	(void)state;
	opts_init(&o, &t, urls);
	o.connect_headers = extra;
	o.hb_send_ms = 5000;
	o.hb_recv_ms = 5000;
	tc_new(&t, &o);
	assert_null(stomp_version(t.s));
	run_until(&t, &t.connected, 1, 3000);
	assert_int_equal(stomp_state(t.s), STOMP_ST_CONNECTED);
	assert_string_equal(stomp_version(t.s), "1.2");
	snprintf(want, sizeof(want), "stomp://127.0.0.1:%d", fk->port);
	assert_string_equal(stomp_url(t.s), want);
	/* the server offers no heart-beats: none either way */
	stomp_heartbeats(t.s, &tx, &rx);
	assert_int_equal(tx, 0);
	assert_int_equal(rx, 0);
	assert_true(fake_saw(fk, "CONNECT accept-version=1.1,1.2 host=/ "
	    "login=guest passcode=guest heart-beat=5000,5000 "
	    "client-id=bridge-1|"));
	/* graceful close: DISCONNECT with receipt, then no reconnect */
	stomp_disconnect(t.s, now_ms());
	run_until(&t, &t.disconnected, 1, 3000);
	assert_string_equal(t.last_reason, "disconnected");
	assert_true(fake_saw(fk, "DISCONNECT receipt=disconnect-"));
	assert_int_equal(stomp_state(t.s), STOMP_ST_DISCONNECTED);
	assert_int_equal(stomp_fd(t.s), -1);
	run_for(&t, 200);
	assert_int_equal(fk->conns, 1);
	assert_int_equal(t.errors, 0);
	/* and start again */
	stomp_start(t.s, now_ms());
	run_until(&t, &t.connected, 2, 3000);
	assert_int_equal(fk->conns, 2);
	tc_free(&t);
	fake_stop(fk);
}

static void
test_disconnect_from_callback(void **state)
{
	struct fake_cfg cfg = { .version = "1.2", .hb = "0,0" };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;

	(void)state;
	opts_init(&o, &t, urls);
	tc_new(&t, &o);
	t.disconnect_on_connected = true;
	run_until(&t, &t.disconnected, 1, 3000);
	assert_int_equal(t.connected, 1);
	assert_int_equal(t.errors, 0);
	assert_int_equal(stomp_state(t.s), STOMP_ST_DISCONNECTED);
	run_for(&t, 150);
	assert_int_equal(fk->conns, 1);
	tc_free(&t);
	fake_stop(fk);
}

static void
test_heartbeat_negotiation(void **state)
{
	struct fake_cfg cfg = { .version = "1.1", .hb = "100,100",
	    .send_hb_ms = 50 };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	struct stomp_opts o;
	struct stomp_stats st;
	struct tc t;
	unsigned tx, rx;

	(void)state;
	opts_init(&o, &t, urls);
	o.hb_send_ms = 80;
	o.hb_recv_ms = 150;
	tc_new(&t, &o);
	run_until(&t, &t.connected, 1, 3000);
	assert_string_equal(stomp_version(t.s), "1.1");
	/* send max(cx 80, sy 100), receive max(sx 100, cy 150) */
	stomp_heartbeats(t.s, &tx, &rx);
	assert_int_equal(tx, 100);
	assert_int_equal(rx, 150);
	/* the server beats every 50 ms: the link stays up */
	run_for(&t, 800);
	assert_int_equal(t.errors, 0);
	assert_int_equal(fk->conns, 1);
	/* and we beat (every half period), seen by the server as EOLs */
	assert_true(fk->hb_in >= 5);
	stomp_stats(t.s, &st);
	assert_true(st.heartbeats_out >= 5);
	assert_true(st.heartbeats_in >= 5);
	assert_int_equal(st.connects, 1);
	{
		/* STOMP 1.1 cannot carry a CR in a header */
		const char *cr[] = { "x", "a\rb", NULL };

		assert_int_equal(stomp_send(t.s, "/q", cr, "{}", 2, NULL), -1);
		assert_int_equal(errno, EINVAL);
	}
	tc_free(&t);
	fake_stop(fk);
}

static void
test_send_receipts(void **state)
{
	struct fake_cfg cfg = { .version = "1.2", .hb = "0,0" };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	const char *hdrs[] = {
		"content-type", "application/json;charset=utf-8",
		"x-weird", "a:b\nc",
		"content-length", "999",	/* replaced */
		NULL,
	};
	struct stomp_opts o;
	struct tc t;
	char big[1100];

	(void)state;
	opts_init(&o, &t, urls);
	o.max_inflight = 3;
	o.out_max = 1024;
	tc_new(&t, &o);
	/* not connected yet: the caller keeps it */
	errno = 0;
	assert_int_equal(stomp_send(t.s, "/queue/x", NULL, "{}", 2, "r0"), -1);
	assert_int_equal(errno, ENOTCONN);
	run_until(&t, &t.connected, 1, 3000);
	assert_int_equal(stomp_send(t.s, "/queue/x", hdrs, "{\"a\":1}", 7,
	    "r1"), 0);
	assert_int_equal(stomp_send(t.s, "/queue/x", NULL, "a\0b", 3, "r2"),
	    0);
	assert_int_equal(stomp_send(t.s, "/queue/x", NULL, "{}", 2, NULL), 0);
	assert_int_equal(stomp_send(t.s, "/queue/x", NULL, "{}", 2, "r3"), 0);
	/* the in-flight window is full */
	assert_int_equal(stomp_send(t.s, "/queue/x", NULL, "{}", 2, "r4"), -1);
	assert_int_equal(errno, ENOBUFS);
	/* too big for the output buffer, ever */
	memset(big, 'x', sizeof(big));
	assert_int_equal(stomp_send(t.s, "/queue/x", NULL, big, sizeof(big),
	    NULL), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(stomp_send(t.s, "", NULL, "{}", 2, NULL), -1);
	assert_int_equal(errno, EINVAL);
	run_until(&t, &t.receipts, 3, 3000);
	assert_string_equal(t.events.data, "R:r1\nR:r2\nR:r3\n");
	assert_true(fake_saw(fk, "SEND content-length=7 destination=/queue/x "
	    "receipt=r1 content-type=application/json;charset=utf-8 "
	    "x-weird=a:b\nc|{\"a\":1}\n"));
	assert_true(fake_saw(fk, "SEND content-length=3 destination=/queue/x "
	    "receipt=r2|a"));
	assert_int_equal(fake_count(fk, "SEND "), 4);
	/* the window has room again */
	assert_int_equal(stomp_send(t.s, "/queue/x", NULL, "{}", 2, "r4"), 0);
	run_until(&t, &t.receipts, 4, 3000);
	tc_free(&t);
	fake_stop(fk);
}

static void
test_receipt_timeout(void **state)
{
	struct fake_cfg cfg = { .version = "1.2", .hb = "0,0",
	    .no_receipts = true };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;

	(void)state;
	opts_init(&o, &t, urls);
	o.receipt_timeout_ms = 200;
	tc_new(&t, &o);
	run_until(&t, &t.connected, 1, 3000);
	assert_int_equal(stomp_send(t.s, "/queue/x", NULL, "{}", 2, "r1"), 0);
	run_until(&t, &t.errors, 1, 3000);
	assert_true(has(t.last_error, "no RECEIPT for 'r1'"));
	assert_int_equal(t.disconnected, 1);
	assert_int_equal(t.receipts, 0);
	/* and it reconnects: the caller re-sends from its spool */
	run_until(&t, &t.connected, 2, 3000);
	tc_free(&t);
	fake_stop(fk);
}

static void
subscribe_ack(const char *version, const char *want_ack,
    const char *want_nack)
{
	struct fake_cfg cfg = { .version = version, .hb = "0,0",
	    .msgs_per_sub = 2 };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	const char *extra[] = { "activemq.prefetchSize", "10",
	    "prefetch-count", "10", NULL };
	struct stomp_opts o;
	struct tc t;

	opts_init(&o, &t, urls);
	tc_new(&t, &o);
	t.ack = ACK_FIRST_NACK_REST;
	/* subscribing before the connection is up is fine */
	assert_int_equal(stomp_subscribe(t.s, "/queue/a", "s1", NULL, extra),
	    0);
	assert_int_equal(stomp_subscribe(t.s, "/queue/b", "s1", NULL, NULL),
	    -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(stomp_subscribe(t.s, "/queue/b", "s2", "sometimes",
	    NULL), -1);
	assert_int_equal(errno, EINVAL);
	run_until(&t, &t.messages, 2, 3000);
	assert_int_equal(t.ack_rc, 0);
	assert_true(fake_saw(fk, "SUBSCRIBE destination=/queue/a id=s1 "
	    "ack=client-individual receipt=subscribe-s1 activemq.prefetchSize=10 "
	    "prefetch-count=10|"));
	assert_true(has(t.events.data, "M:/queue/a|{\"n\":1}|token\n"
	    "M:/queue/a|{\"n\":2}|token\n"));
	run_for(&t, 100);
	if (!fake_saw(fk, want_ack))
		fail_msg("no '%s' in %s", want_ack, fk->log.data);
	if (!fake_saw(fk, want_nack))
		fail_msg("no '%s' in %s", want_nack, fk->log.data);
	/* an auto subscription hands out no token */
	assert_int_equal(stomp_subscribe(t.s, "/topic/t", "s3", "auto", NULL),
	    0);
	run_until(&t, &t.messages, 4, 3000);
	assert_true(has(t.events.data, "M:/topic/t|{\"n\":3}|none\n"));
	assert_int_equal(stomp_unsubscribe(t.s, "s3"), 0);
	assert_int_equal(stomp_unsubscribe(t.s, "s3"), -1);
	run_for(&t, 100);
	assert_true(fake_saw(fk, "UNSUBSCRIBE id=s3|"));
	tc_free(&t);
	fake_stop(fk);
}

static void
test_subscribe_ack_12(void **state)
{
	(void)state;
	/* 1.2: id = the MESSAGE's ack header (escaped on the wire) */
	subscribe_ack("1.2", "ACK id=ack:1|x|", "NACK id=ack:2|x|");
}

static void
test_subscribe_ack_11(void **state)
{
	(void)state;
	/* 1.1 (UMB): message-id + subscription */
	subscribe_ack("1.1", "ACK message-id=ID:fake-1:1 subscription=s1|",
	    "NACK message-id=ID:fake-1:2 subscription=s1|");
}

static void
test_error_reconnect_resubscribe(void **state)
{
	struct fake_cfg cfg = { .version = "1.2", .hb = "0,0",
	    .error_after_sub = 1, .msgs_per_sub = 1 };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;
	char want[128];

	(void)state;
	opts_init(&o, &t, urls);
	tc_new(&t, &o);
	t.ack = ACK_KEEP;
	assert_int_equal(stomp_subscribe(t.s, "/queue/a", "s1", NULL, NULL),
	    0);
	run_until(&t, &t.errors, 1, 3000);
	snprintf(want, sizeof(want), "ERROR from stomp://127.0.0.1:%d: boom: "
	    "subscription refused", fk->port);
	assert_string_equal(t.last_error, want);
	assert_string_equal(stomp_last_error(t.s), want);
	assert_int_equal(t.disconnected, 1);
	assert_string_equal(t.last_reason, want);
	/* reconnects, subscribes again, gets the message */
	run_until(&t, &t.messages, 1, 3000);
	assert_int_equal(t.connected, 2);
	assert_int_equal(fake_count(fk, "SUBSCRIBE destination=/queue/a"), 2);
	assert_non_null(t.kept_token);
	assert_int_equal(stomp_ack(t.s, t.kept_token), 0);
	tc_free(&t);
	fake_stop(fk);
}

static void
test_stale_token_after_reconnect(void **state)
{
	struct fake_cfg cfg = { .version = "1.2", .hb = "0,0",
	    .msgs_per_sub = 1, .no_receipts = true };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;
	char *old;

	(void)state;
	opts_init(&o, &t, urls);
	o.receipt_timeout_ms = 100;
	tc_new(&t, &o);
	t.ack = ACK_KEEP;
	assert_int_equal(stomp_subscribe(t.s, "/queue/a", "s1", NULL, NULL),
	    0);
	run_until(&t, &t.messages, 1, 3000);
	old = strdup(t.kept_token);
	/* a receipt that never comes ends the connection */
	assert_int_equal(stomp_send(t.s, "/q", NULL, "x", 1, "r"), 0);
	run_until(&t, &t.disconnected, 1, 3000);
	/* meanwhile the old token is refused without a connection */
	assert_int_equal(stomp_ack(t.s, old), -1);
	assert_true(errno == ESTALE || errno == ENOTCONN);
	run_until(&t, &t.messages, 2, 3000);
	/* an ACK with an old token would make the broker send ERROR */
	assert_int_equal(stomp_ack(t.s, old), -1);
	assert_int_equal(errno, ESTALE);
	assert_int_equal(stomp_nack(t.s, "garbage"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(stomp_ack(t.s, t.kept_token), 0);
	free(old);
	tc_free(&t);
	fake_stop(fk);
}

static void
test_wrong_password(void **state)
{
	struct fake_cfg cfg = { .version = "1.2", .hb = "0,0",
	    .refuse_connects = 2 };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;
	char want[160];

	(void)state;
	opts_init(&o, &t, urls);
	tc_new(&t, &o);
	run_until(&t, &t.errors, 1, 3000);
	snprintf(want, sizeof(want), "stomp://127.0.0.1:%d refused the "
	    "connection: Access refused for user 'guest': Login was refused "
	    "for user 'guest'", fk->port);
	assert_string_equal(t.last_error, want);
	/* never announced, so no on_disconnected */
	assert_int_equal(t.disconnected, 0);
	/* it keeps trying (with backoff) and gets in on the third */
	run_until(&t, &t.connected, 1, 3000);
	assert_int_equal(t.errors, 2);
	assert_int_equal(fk->connects, 3);
	tc_free(&t);
	fake_stop(fk);
}

static void
test_stomp_10_refused(void **state)
{
	struct fake_cfg cfg = { .version = NULL, .hb = NULL };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;

	(void)state;
	opts_init(&o, &t, urls);
	tc_new(&t, &o);
	run_until(&t, &t.errors, 1, 3000);
	assert_true(has(t.last_error, "speaks only STOMP 1.0"));
	assert_int_equal(t.connected, 0);
	tc_free(&t);
	fake_stop(fk);
}

static void
test_dead_peer(void **state)
{
	/* promises a beat every 100 ms, then says nothing */
	struct fake_cfg cfg = { .version = "1.2", .hb = "100,0" };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;
	int64_t t0;

	(void)state;
	opts_init(&o, &t, urls);
	o.hb_recv_ms = 100;
	tc_new(&t, &o);
	run_until(&t, &t.connected, 1, 3000);
	t0 = now_ms();
	run_until(&t, &t.errors, 1, 3000);
	/* 2 x the interval */
	assert_true(now_ms() - t0 >= 190);
	assert_true(now_ms() - t0 < 1000);
	assert_true(has(t.last_error, "no data from"));
	assert_true(has(t.last_error, "connection dead"));
	assert_int_equal(t.disconnected, 1);
	run_until(&t, &t.connected, 2, 3000);
	assert_int_equal(fk->conns, 2);
	tc_free(&t);
	fake_stop(fk);
}

static void
test_refused_backoff(void **state)
{
	int p1 = free_port(), p2 = free_port();
	const char *urls[] = { url_of(0, "stomp", p1), url_of(1, "stomp", p2),
	    NULL };
	struct stomp_opts o;
	struct tc t;
	int i, n;
	char a[32], b[32];

	(void)state;
	opts_init(&o, &t, urls);
	o.reconnect_min_ms = 40;
	o.reconnect_max_ms = 320;
	tc_new(&t, &o);
	run_for(&t, 1800);
	n = t.errors;
	/* 0, +20..40, +40..80, +80..160, +160..320, +160..320...: 8-14 */
	assert_true(n >= 6);
	assert_true(n <= 15);
	snprintf(a, sizeof(a), ":%d: ", p1);
	snprintf(b, sizeof(b), ":%d: ", p2);
	for (i = 0; i < n && i < 64; i++) {
		unsigned d = i > 0 ? 40u << (i - 1 < 3 ? i - 1 : 3) : 0;

		assert_true(has(t.err_text[i], "Connection refused"));
		assert_true(has(t.err_text[i], "cannot connect to "
		    "stomp://127.0.0.1:"));
		/* round robin over the failover list */
		assert_true(has(t.err_text[i], i % 2 ? b : a));
		if (i > 0) {
			int64_t gap = t.err_at[i] - t.err_at[i - 1];

			if (d > 320)
				d = 320;
			if (gap < (int64_t)d / 2 - 2 || gap > (int64_t)d + 150)
				fail_msg("attempt %d after %lld ms, want %u..%u",
				    i, (long long)gap, d / 2, d);
		}
	}
	assert_int_equal(t.connected, 0);
	assert_int_equal(t.disconnected, 0);
	/* nothing to poll between attempts, but a timer */
	if (stomp_state(t.s) == STOMP_ST_DISCONNECTED) {
		assert_int_equal(stomp_fd(t.s), -1);
		assert_int_equal(stomp_events(t.s), 0);
		assert_true(stomp_timeout_ms(t.s, now_ms()) >= 0);
	}
	tc_free(&t);
}

static void
test_connect_timeout(void **state)
{
	struct fake_cfg cfg = { .silent_connect = true };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;

	(void)state;
	opts_init(&o, &t, urls);
	o.connect_timeout_ms = 250;
	tc_new(&t, &o);
	run_until(&t, &t.errors, 1, 3000);
	assert_true(has(t.last_error, "timed out after 250 ms connecting to"));
	assert_true(has(t.last_error, "(STOMP connecting)"));
	tc_free(&t);
	fake_stop(fk);
}

static void
test_slowloris_partial_frame(void **state)
{
	static const char part[] = "MESSAGE\ndestination:/queue/a\nmess";
	struct fake_cfg cfg = { .version = "1.2", .hb = "0,0",
	    .stall_conns = 1, .stall = part, .stall_len = sizeof(part) - 1 };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;
	int64_t t0;

	(void)state;
	opts_init(&o, &t, urls);
	o.frame_timeout_ms = 300;
	tc_new(&t, &o);
	run_until(&t, &t.connected, 1, 3000);
	t0 = now_ms();
	run_until(&t, &t.errors, 1, 3000);
	assert_true(now_ms() - t0 >= 250);
	assert_true(has(t.last_error, "incomplete frame"));
	assert_true(has(t.last_error, "(33 octets)"));
	run_until(&t, &t.connected, 2, 3000);
	tc_free(&t);
	fake_stop(fk);
}

static void
test_endless_header_bounded(void **state)
{
	struct fake_cfg cfg = { .version = "1.2", .hb = "0,0",
	    .endless = true };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;

	(void)state;
	opts_init(&o, &t, urls);
	tc_new(&t, &o);
	run_until(&t, &t.errors, 1, 5000);
	assert_true(has(t.last_error, "header line longer than 65536 octets"));
	/* refused at the limit, not after buffering everything sent */
	assert_true(fk->endless_bytes < 32u << 20);
	tc_free(&t);
	fake_stop(fk);
}

static void
test_huge_content_length(void **state)
{
	static const char huge[] = "MESSAGE\ndestination:/queue/a\n"
	    "content-length:2147483648\n\n";
	struct fake_cfg cfg = { .version = "1.2", .hb = "0,0",
	    .stall_conns = 1, .stall = huge, .stall_len = sizeof(huge) - 1 };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;
	int64_t t0 = now_ms();

	(void)state;
	opts_init(&o, &t, urls);
	tc_new(&t, &o);
	run_until(&t, &t.errors, 1, 3000);
	assert_true(now_ms() - t0 < 1000);
	assert_true(has(t.last_error, "protocol error from"));
	assert_true(has(t.last_error, "content-length 2147483648 exceeds"));
	tc_free(&t);
	fake_stop(fk);
}

static void
test_tls_ok_with_client_cert(void **state)
{
	struct fake_cfg cfg = { .version = "1.2", .hb = "0,0",
	    .tls_cert = srv_crt, .tls_key = srv_key, .client_ca = ca_pem,
	    .msgs_per_sub = 1 };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp+ssl", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;

	(void)state;
	opts_init(&o, &t, urls);
	o.login = o.passcode = NULL;	/* UMB: the certificate is the login */
	o.ca_file = ca_pem;
	o.cert_file = cli_crt;
	o.key_file = cli_key;
	o.tls_verify_name = "localhost";
	tc_new(&t, &o);
	t.ack = ACK_ALL;
	assert_int_equal(stomp_subscribe(t.s, "/queue/a", "s1", NULL, NULL),
	    0);
	run_until(&t, &t.messages, 1, 3000);
	assert_string_equal(fk->client_cn, "svc-bridge");
	assert_true(fake_saw(fk, "CONNECT accept-version=1.1,1.2 host=/ "
	    "heart-beat=0,0|"));
	assert_int_equal(stomp_send(t.s, "/q", NULL, "{}", 2, "r1"), 0);
	run_until(&t, &t.receipts, 1, 3000);
	run_for(&t, 50);
	assert_true(fake_saw(fk, "ACK id=ack:1|x|"));
	stomp_disconnect(t.s, now_ms());
	run_until(&t, &t.disconnected, 1, 3000);
	assert_int_equal(t.errors, 0);
	tc_free(&t);
	fake_stop(fk);
}

static void
tls_refused(const char *ca, const char *name, const char *want,
    const char *want2)
{
	struct fake_cfg cfg = { .version = "1.2", .hb = "0,0",
	    .tls_cert = srv_crt, .tls_key = srv_key };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp+ssl", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;

	opts_init(&o, &t, urls);
	o.ca_file = ca;
	o.tls_verify_name = name;
	tc_new(&t, &o);
	run_until(&t, &t.errors, 2, 3000);
	if (!has(t.err_text[0], want) || !has(t.err_text[0], want2))
		fail_msg("error '%s' lacks '%s' or '%s'", t.err_text[0], want,
		    want2);
	/* never plain text: the server saw no frame at all */
	assert_int_equal(fk->connects, 0);
	assert_null(fk->log.data);
	assert_int_equal(t.connected, 0);
	tc_free(&t);
	fake_stop(fk);
}

static void
test_tls_hostname_mismatch(void **state)
{
	(void)state;
	tls_refused(ca_pem, "broker.example.org",
	    "TLS certificate verification failed for stomp+ssl://127.0.0.1:",
	    "hostname mismatch (expected 'broker.example.org')");
}

static void
test_tls_untrusted_ca(void **state)
{
	(void)state;
	tls_refused(ca2_pem, "localhost",
	    "TLS certificate verification failed",
	    "unable to get local issuer certificate");
}

static void
test_tls_ip_verification(void **state)
{
	struct fake_cfg cfg = { .version = "1.2", .hb = "0,0",
	    .tls_cert = srv_crt, .tls_key = srv_key };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp+ssl", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;

	(void)state;
	/* no name given: the IP address is checked (SAN IP:127.0.0.1) */
	opts_init(&o, &t, urls);
	o.ca_file = ca_pem;
	tc_new(&t, &o);
	run_until(&t, &t.connected, 1, 3000);
	tc_free(&t);
	fake_stop(fk);
}

static void
test_tls_to_plain_port(void **state)
{
	struct fake_cfg cfg = { .version = "1.2", .hb = "0,0" };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp+ssl", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;

	(void)state;
	opts_init(&o, &t, urls);
	o.ca_file = ca_pem;
	o.connect_timeout_ms = 1000;
	tc_new(&t, &o);
	run_until(&t, &t.errors, 1, 3000);
	/* the plain server answers the ClientHello with an error or closes */
	assert_true(has(t.last_error, "TLS handshake with stomp+ssl://"));
	assert_int_equal(t.connected, 0);
	tc_free(&t);
	fake_stop(fk);
}

static void
test_plain_to_tls_port(void **state)
{
	struct fake_cfg cfg = { .version = "1.2", .hb = "0,0",
	    .tls_cert = srv_crt, .tls_key = srv_key };
	struct fake *fk = fake_start(&cfg);
	const char *urls[] = { url_of(0, "stomp", fk->port), NULL };
	struct stomp_opts o;
	struct tc t;

	(void)state;
	opts_init(&o, &t, urls);
	tc_new(&t, &o);
	run_until(&t, &t.errors, 1, 3000);
	/* a TLS server answers CONNECT with an alert or closes */
	if (!has(t.last_error, "before CONNECTED") &&
	    !has(t.last_error, "protocol error from"))
		fail_msg("%s", t.last_error);
	tc_free(&t);
	fake_stop(fk);
}

static void
test_options(void **state)
{
	const char *ok[] = {
		"failover:(stomp://a.example:1, tcp://[::1]:2)?x=y",
		"b.example:61613",
		NULL,
	};
	/* a failed TLS handshake must not fall back to plain text */
	const char *mixed[] = {
		"failover:(stomp+ssl://a.example:1, stomp://b.example:2)", NULL,
	};
	const char *mixed2[] = { "stomp+ssl://a", "b.example:61613", NULL };
	const char *bad_scheme[] = { "http://a:1", NULL };
	const char *bad_port[] = { "stomp://a:99999", NULL };
	const char *no_host[] = { "stomp://:1", NULL };
	const char *empty[] = { NULL };
	const char *plain[] = { "stomp://a", NULL };
	const char *tls[] = { "stomp+ssl://a", NULL };
	const char *bad_hdr[] = { "x:y", "1", NULL };
	struct stomp_opts o;
	struct stomp *s;
	char err[FM_ERRLEN];

	(void)state;
	memset(&o, 0, sizeof(o));
	o.urls = ok;
	o.ca_file = ca_pem;
	s = stomp_new(&o, err);
	if (s == NULL)
		fail_msg("%s", err);
	assert_string_equal(stomp_url(s), "stomp://a.example:1");
	assert_int_equal(stomp_state(s), STOMP_ST_DISCONNECTED);
	assert_int_equal(stomp_fd(s), -1);
	assert_int_equal(stomp_timeout_ms(s, now_ms()), -1);
	errno = 0;
	assert_int_equal(stomp_ack(s, "0|2|x"), -1);
	assert_int_equal(errno, ENOTCONN);
	stomp_free(s);
	o.urls = plain;
	s = stomp_new(&o, err);
	assert_string_equal(stomp_url(s), "stomp://a:61613");
	stomp_free(s);
	o.urls = tls;
	s = stomp_new(&o, err);
	assert_string_equal(stomp_url(s), "stomp+ssl://a:61612");
	stomp_free(s);
	o.urls = mixed;
	assert_null(stomp_new(&o, err));
	assert_true(has(err, "mixes stomp+ssl:// and plain stomp:// "
	    "(stomp://b.example:2)"));
	o.urls = mixed2;
	assert_null(stomp_new(&o, err));
	assert_true(has(err, "(stomp://b.example:61613)"));
	/* a login or passcode: over TLS only, unless allowed */
	o.urls = plain;
	o.login = "guest";
	assert_null(stomp_new(&o, err));
	assert_true(has(err, "user/password_file over plain stomp://a:61613"));
	o.login = NULL;
	o.passcode = "secret";
	assert_null(stomp_new(&o, err));
	assert_true(has(err, "allow_plaintext_credentials"));
	o.allow_plaintext_login = true;
	s = stomp_new(&o, err);
	if (s == NULL)
		fail_msg("%s", err);
	stomp_free(s);
	o.allow_plaintext_login = false;
	o.urls = tls;
	s = stomp_new(&o, err);
	if (s == NULL)
		fail_msg("%s", err);
	stomp_free(s);
	o.passcode = NULL;
	o.urls = bad_scheme;
	assert_null(stomp_new(&o, err));
	assert_true(has(err, "unsupported STOMP URL scheme"));
	o.urls = bad_port;
	assert_null(stomp_new(&o, err));
	assert_true(has(err, "bad STOMP URL 'stomp://a:99999'"));
	o.urls = no_host;
	assert_null(stomp_new(&o, err));
	o.urls = empty;
	assert_null(stomp_new(&o, err));
	assert_true(has(err, "no STOMP broker URL"));
	o.urls = plain;
	o.passcode = "a\nb";
	o.allow_plaintext_login = true;
	assert_null(stomp_new(&o, err));
	assert_true(has(err, "CR or LF"));
	o.passcode = NULL;
	o.connect_headers = bad_hdr;
	assert_null(stomp_new(&o, err));
	o.connect_headers = NULL;
	o.urls = tls;
	o.cert_file = "/nonexistent/cert.pem";
	assert_null(stomp_new(&o, err));
	assert_true(has(err, "cannot load TLS client certificate "
	    "/nonexistent/cert.pem"));
	o.cert_file = cli_crt;
	o.key_file = srv_key;
	assert_null(stomp_new(&o, err));
	assert_true(has(err, "TLS client key"));
	o.cert_file = o.key_file = NULL;
	o.ca_file = "/nonexistent/ca.pem";
	assert_null(stomp_new(&o, err));
	assert_true(has(err, "cannot load TLS CA"));
}

static int
setup(void **state)
{
	(void)state;
	log_init("test_stomp", getenv("STOMP_TEST_VERBOSE") ? FM_LOG_DEBUG :
	    FM_LOG_ERR);
	make_pki();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	remove_pki();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_connect_negotiation),
		cmocka_unit_test(test_disconnect_from_callback),
		cmocka_unit_test(test_heartbeat_negotiation),
		cmocka_unit_test(test_send_receipts),
		cmocka_unit_test(test_receipt_timeout),
		cmocka_unit_test(test_subscribe_ack_12),
		cmocka_unit_test(test_subscribe_ack_11),
		cmocka_unit_test(test_error_reconnect_resubscribe),
		cmocka_unit_test(test_stale_token_after_reconnect),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_stomp_10_refused),
		cmocka_unit_test(test_dead_peer),
		cmocka_unit_test(test_refused_backoff),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_slowloris_partial_frame),
		cmocka_unit_test(test_endless_header_bounded),
		cmocka_unit_test(test_huge_content_length),
		cmocka_unit_test(test_tls_ok_with_client_cert),
		cmocka_unit_test(test_tls_hostname_mismatch),
		cmocka_unit_test(test_tls_untrusted_ca),
		cmocka_unit_test(test_tls_ip_verification),
		cmocka_unit_test(test_tls_to_plain_port),
		cmocka_unit_test(test_plain_to_tls_port),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
