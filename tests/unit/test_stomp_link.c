/*
 * brokers/stomp_link.c (the broker.h link over STOMP) against a small
 * fake STOMP broker in a thread on 127.0.0.1: an ERROR refusing a
 * SUBSCRIBE is blamed on no SEND, a delivery's source is the address
 * subscribed to, and a MESSAGE under max_message of more than the frame
 * parser's default limit is delivered.
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

#include <fedmsg/message.h>

#include "broker.h"
#include "buf.h"
#include "log.h"
#include "stomp.h"
#include "stomp_frame.h"

/* ---- fake broker --------------------------------------------------------- */

struct fake {
	int		 lfd, port;
	pthread_t	 th;
	atomic_bool	 stop;
	bool		 refuse_sub;	/* SUBSCRIBE -> ERROR (no receipt-id) */
	size_t		 big;		/* SUBSCRIBE -> a MESSAGE this big */
	atomic_int	 sends_seen, subs_seen, conns;
};

static void
wframe(int fd, const char *cmd, const char *const *h, const char *body)
{
	struct buf b = BUF_INIT;

	assert_int_equal(stomp_frame_build(&b, cmd, h, body, body ?
	    strlen(body) : 0, body ? STOMP_W_CONTENT_LENGTH : 0, NULL), 0);
	(void)!send(fd, b.data, b.len, MSG_NOSIGNAL);
	buf_free(&b);
}

static void
serve(struct fake *fk, int fd)
{
	struct stomp_parser *p = stomp_parser_new(NULL);
	struct timeval tv = { 0, 20000 };
	struct stomp_frame f;
	char buf[8192];
	ssize_t n;

	fk->conns++;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (!atomic_load(&fk->stop)) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			break;
		if (n < 0)
			continue;
		stomp_parser_feed(p, buf, (size_t)n);
		while (stomp_parser_next(p, &f) == STOMP_FRAME) {
			if (strcmp(f.command, "CONNECT") == 0) {
				const char *h[] = { "version", "1.2",
				    "heart-beat", "0,0", NULL };

				wframe(fd, "CONNECTED", h, NULL);
			} else if (strcmp(f.command, "SUBSCRIBE") == 0) {
				const char *dest = stomp_frame_value(&f,
				    "destination");
				const char *id = stomp_frame_value(&f, "id");

				fk->subs_seen++;
				if (!fk->refuse_sub &&
				    stomp_frame_value(&f, "receipt")) {
					const char *h[] = { "receipt-id",
					    stomp_frame_value(&f, "receipt"),
					    NULL };

					wframe(fd, "RECEIPT", h, NULL);
				}
				if (fk->refuse_sub) {
					/* as RabbitMQ for a missing exchange:
					   no receipt-id, then it closes */
					const char *h[] = { "message",
					    "not_found", NULL };

					wframe(fd, "ERROR", h, "NOT_FOUND - no "
					    "exchange 'missing'");
					goto out;
				} else if (fk->big) {
					char hd[256], *body = malloc(fk->big + 1);

					snprintf(hd, sizeof(hd), "MESSAGE\n"
					    "destination:%s\nsubscription:%s\n"
					    "message-id:m1\nack:a1\n"
					    "content-length:%zu\n\n", dest, id,
					    fk->big);
					memset(body, 'x', fk->big);
					body[fk->big] = '\0';
					(void)!send(fd, hd, strlen(hd), MSG_NOSIGNAL);
					(void)!send(fd, body, fk->big + 1, MSG_NOSIGNAL);
					free(body);
				} else {
					const char *h[] = { "destination",
					    dest, "subscription", id,
					    "message-id", "m1", "ack", "a1",
					    NULL };

					wframe(fd, "MESSAGE", h, "{}");
				}
			} else if (strcmp(f.command, "SEND") == 0) {
				const char *r = stomp_frame_value(&f,
				    "receipt");
				const char *h[] = { "receipt-id", r, NULL };

				fk->sends_seen++;
				if (r)
					wframe(fd, "RECEIPT", h, NULL);
			}
		}
	}
out:
	close(fd);
	stomp_parser_free(p);
}

static void *
fake_main(void *arg)
{
	struct fake *fk = arg;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	while (!atomic_load(&fk->stop)) {
		struct pollfd pfd = { fk->lfd, POLLIN, 0 };
		int fd;

		if (poll(&pfd, 1, 20) <= 0)
			continue;
		if ((fd = accept(fk->lfd, NULL, NULL)) >= 0)
			serve(fk, fd);
	}
	return NULL;
}

static struct fake *
fake_start2(bool refuse_sub, size_t big)
{
	struct fake *fk = calloc(1, sizeof(*fk));
	struct sockaddr_in a;
	socklen_t al = sizeof(a);

	fk->refuse_sub = refuse_sub;
	fk->big = big;
	fk->lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fk->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fk->lfd, 8), 0);
	assert_int_equal(getsockname(fk->lfd, (struct sockaddr *)&a, &al), 0);
	fk->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&fk->th, NULL, fake_main, fk), 0);
	return fk;
}

static struct fake *
fake_start(bool refuse_sub)
{
	return fake_start2(refuse_sub, 0);
}

static void
fake_stop(struct fake *fk)
{
	atomic_store(&fk->stop, true);
	pthread_join(fk->th, NULL);
	close(fk->lfd);
	free(fk);
}

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
	struct fake *fk = fake_start(true);
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
		    atomic_load(&fk->sends_seen), ow.lost, ow.refused,
		    ow.rejected, ow.why);
	ow.b->ops->free(ow.b);
	fake_stop(fk);
	assert_true(fk_conns >= 4);
	assert_int_equal(ow.refused, 0);
	assert_int_equal(ow.rejected, 0);
	assert_true(ow.lost >= 1);
}

/*
 * broker_in.source of a STOMP delivery is the source subscribed to, as on
 * the AMQP links (fm_serial's "queue"), not the link's own "sub-0".
 */
static void
test_source_is_the_subscribed_address(void **state)
{
	struct fake *fk = fake_start(false);
	struct owner ow;
	int64_t end = stomp_now_ms() + 5000;

	(void)state;
	owner_new(&ow, fk->port);
	assert_int_equal(ow.b->ops->subscribe(ow.b, "/queue/a"), 0);
	while (stomp_now_ms() < end && ow.messages == 0)
		loop_once(&ow);
	ow.b->ops->free(ow.b);
	fake_stop(fk);
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
	struct fake *fk = fake_start2(false, 20u * 1000 * 1000);
	struct owner ow;
	int64_t end = stomp_now_ms() + 6000;

	(void)state;
	max_message = 64u * 1024 * 1024;
	owner_new(&ow, fk->port);
	assert_int_equal(ow.b->ops->subscribe(ow.b, "/queue/a"), 0);
	while (stomp_now_ms() < end && ow.messages == 0)
		loop_once(&ow);
	ow.b->ops->free(ow.b);
	fake_stop(fk);
	max_message = 0;
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
