/*
 * bench_zmq: message-bus throughput and latency of fedmsg-relay and
 * fedmsg-hub, and of a raw ZeroMQ hop measured the same way as the
 * baseline.  tests/bench/run_bus.sh starts the servers and runs this.
 *
 *   bench_zmq ports N
 *	print N free TCP ports on 127.0.0.1, one a line
 *
 *   bench_zmq forward IN_URL OUT_URL
 *	the raw hop, a server like fedmsg-relay: XSUB bound on IN_URL
 *	(subscribed to everything), PUB bound on OUT_URL, one thread
 *	forwarding every frame with zmq_msg_recv/zmq_msg_send, no parsing;
 *	same socket types and high-water marks as the relay.  Until SIGTERM.
 *
 *   bench_zmq relay [-d SECS] [-n MAX] [-w WINDOW] [-l RATE] [-L SECS]
 *	[-p PID] NAME IN_URL OUT_URL DEVDIR
 *	client of a relay (or of `forward`): a PUB connected to IN_URL, a
 *	SUB connected to OUT_URL, in one process so that clocks agree.
 *	Throughput: send up to MAX messages as fast as possible for SECS
 *	seconds, at most WINDOW sent and not yet received (so no high-water
 *	mark on the way is ever reached and nothing is dropped), and count
 *	arrivals until quiescent: msgs/s = received / (last arrival - first
 *	send).  With -l: then latency at RATE msg/s for -L seconds.
 *
 *   bench_zmq hub [-d SECS] [-n MAX] [-w WINDOW] [-p PID] NAME PUB_URL
 *	METRICS_ADDR DEVDIR
 *	client of fedmsg-hub: a PUB bound on PUB_URL (an endpoints entry of
 *	the hub's config), sending like `relay`; what the hub consumed is
 *	read from its /metrics (HOST:PORT) every ~2 ms over a keep-alive
 *	HTTP/1.1 connection: fedmsg_consumer_ok_total.
 *
 *   bench_zmq envelopes N NPROBES DEVDIR FILE
 *	write N signed git.receive envelopes with "bench_seq": 0..N-1 and
 *	distinct msg_ids, then NPROBES signed probes (each its own msg_id),
 *	to FILE, one a line: "m TOPIC BODY" or "p TOPIC BODY"; signed on
 *	two threads.  For tests/bench/run_brokers.sh: fedmsg-bridge drops a
 *	msg_id it has forwarded before (loop prevention), so a bridge run
 *	cannot cycle through the POOL messages of the other commands.
 *
 * Messages: a pool of POOL envelopes, each the git.receive payload of
 * bench_crypto (about 1 KB unsigned) plus "bench_seq": k, built with
 * fm_msg_build and signed with fm_signer_sign as DEVDIR/shell-localhost;
 * the signed body is about 3 KB, as it carries the certificate.  Sends
 * cycle through the pool (distinct msg_ids, so the hub's de-duplication
 * window of up to POOL/2 ids never drops one).  A valid probe message on
 * another topic opens each run (ZeroMQ's slow joiner) and is not counted.
 *
 * Latency: a signed payload cannot carry a send time written at send
 * time without signing each message then (270 us of CPU each), so the
 * payload carries its bench_seq and the sender records CLOCK_MONOTONIC ns
 * of each send in a table indexed by it; the receiver, a thread of the
 * same process, subtracts that from its own CLOCK_MONOTONIC on arrival.
 *
 * Output, one line per result, for run_bus.sh:
 *   envelope UNSIGNED_BYTES SIGNED_BYTES TOPIC_BYTES
 *   tput NAME SENT RECEIVED SECONDS MSGS_PER_S SERVER_CPU_S CLIENT_CPU_S
 *   lat NAME RATE SENT RECEIVED P50_US P90_US P99_US MAX_US SERVER_CPU_S
 *   hub NAME SENT CONSUMED DROPPED INVALID SECONDS MSGS_PER_S SERVER_CPU_S
 * (envelopes prints nothing on stdout.)
 * SERVER_CPU_S is the user+system time of PID (-p) meanwhile, from
 * /proc; -1 without -p.  It only reports; exit status 1 means a run
 * could not be made (no connection, nothing received), 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include <fedmsg/crypto.h>
#include <fedmsg/message.h>

#include "bench_payload.h"
#include "bench_util.h"
#include "bench_zsock.h"

#define POOL		1024
#define SEQ_KEY		"\"bench_seq\":"

/* The sample payload's members, after "bench_seq". */
static const char payload_rest[] = BENCH_GIT_RECEIVE_MEMBERS;

struct pool {
	struct fm_msg	*msg[POOL];
	const char	*body[POOL];
	size_t		 blen[POOL];
	const char	*topic;
	size_t		 tlen;
	struct fm_msg	*probe;
	const char	*probe_topic, *probe_body;
	size_t		 probe_tlen, probe_blen;
	size_t		 unsigned_len;
};

struct opts {
	double		 secs, lat_secs;
	unsigned long	 max, window;
	unsigned	 rate;
	long		 pid;
	const char	*name;
};

/* ---- small helpers ----------------------------------------------------- */

static void
sleep_ns(int64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int
send2(void *s, const char *topic, size_t tlen, const char *body, size_t blen)
{
	if (zmq_send(s, topic, tlen, ZMQ_SNDMORE) < 0)
		return -1;
	return zmq_send(s, body, blen, 0) < 0 ? -1 : 0;
}

/* Receive and drop everything until nothing came for quiet_ms. */
static void
drain(void *sub, int quiet_ms)
{
	zmq_pollitem_t it = { sub, 0, ZMQ_POLLIN, 0 };
	zmq_msg_t m;

	while (zmq_poll(&it, 1, quiet_ms) > 0) {
		zmq_msg_init(&m);
		while (zmq_msg_recv(&m, sub, ZMQ_DONTWAIT) >= 0) {
			zmq_msg_close(&m);
			zmq_msg_init(&m);
		}
		zmq_msg_close(&m);
	}
}

static double
num_arg(const char *s, double lo, double hi)
{
	char *end;
	double d = strtod(s, &end);

	if (*end != '\0' || !(d >= lo && d <= hi)) {
		fprintf(stderr, "bench_zmq: bad number '%s'\n", s);
		exit(2);
	}
	return d;
}

/* ---- the messages -------------------------------------------------------- */

static struct fm_msg *
build_signed(struct fm_signer *sg, const char *topic, const char *json,
    int64_t i, size_t *unsigned_len)
{
	struct fm_limits lim = { 0, 0 };
	struct fm_msg_fields f;
	struct fm_msg *u = NULL, *s = NULL;
	char err[FM_ERRLEN];

	memset(&f, 0, sizeof(f));
	f.topic = topic;
	f.msg_json = json;
	f.i = i;
	f.timestamp = (int64_t)time(NULL);
	f.username = "apache";
	if (fm_msg_build(&f, &lim, &u, err) < 0 ||
	    fm_signer_sign(sg, u, &s, err) < 0) {
		fprintf(stderr, "bench_zmq: building a message: %s\n", err);
		exit(1);
	}
	if (unsigned_len)
		fm_msg_body(u, unsigned_len);
	fm_msg_unref(u);
	return s;
}

static void
pool_make(struct pool *p, const char *dir)
{
	char cert[4096], key[4096], ca[4096], crl[4096], err[FM_ERRLEN];
	char *json, *topic, *ptopic;
	struct fm_validator_config vc;
	struct fm_validator *v;
	struct fm_signer *sg;
	size_t jcap = sizeof(payload_rest) + 64;
	enum fm_verdict verdict;
	int k;

	snprintf(cert, sizeof(cert), "%s/shell-localhost.crt", dir);
	snprintf(key, sizeof(key), "%s/shell-localhost.key", dir);
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	snprintf(crl, sizeof(crl), "%s/crl.pem", dir);
	if ((sg = fm_signer_load(cert, key, err)) == NULL) {
		fprintf(stderr, "bench_zmq: %s\n", err);
		exit(1);
	}
	topic = fm_topic_build("org.fedoraproject", "prod", "git", "receive");
	ptopic = fm_topic_build("org.fedoraproject", "prod", "bench", "probe");
	if (topic == NULL || ptopic == NULL || (json = malloc(jcap)) == NULL) {
		fprintf(stderr, "bench_zmq: out of memory\n");
		exit(1);
	}
	memset(p, 0, sizeof(*p));
	for (k = 0; k < POOL; k++) {
		snprintf(json, jcap, "{" SEQ_KEY "%d,%s", k, payload_rest);
		p->msg[k] = build_signed(sg, topic, json, k + 1,
		    k == 0 ? &p->unsigned_len : NULL);
		p->body[k] = fm_msg_body(p->msg[k], &p->blen[k]);
	}
	p->topic = topic;
	p->tlen = strlen(topic);
	p->probe = build_signed(sg, ptopic, "{\"probe\":true}", POOL + 1, NULL);
	p->probe_topic = ptopic;
	p->probe_tlen = strlen(ptopic);
	p->probe_body = fm_msg_body(p->probe, &p->probe_blen);
	free(json);
	fm_signer_free(sg);

	/* What a validating relay or hub would say: valid, or stop here. */
	memset(&vc, 0, sizeof(vc));
	vc.allow_x509 = true;
	vc.ca_path = ca;
	vc.crl_path = access(crl, R_OK) == 0 ? crl : NULL;
	if ((v = fm_validator_new(&vc, err)) == NULL) {
		fprintf(stderr, "bench_zmq: %s\n", err);
		exit(1);
	}
	if ((verdict = fm_validator_check(v, p->msg[0], err)) != FM_VALID ||
	    (verdict = fm_validator_check(v, p->probe, err)) != FM_VALID) {
		fprintf(stderr, "bench_zmq: the signed messages are %s: %s\n",
		    fm_verdict_name(verdict), err);
		exit(1);
	}
	fm_validator_free(v);
}

/* ---- ports ---------------------------------------------------------------- */

static int
cmd_ports(int n)
{
	int fds[64], i;

	for (i = 0; i < n && i < 64; i++) {
		struct sockaddr_in sin;
		socklen_t len = sizeof(sin);

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if ((fds[i] = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
		    bind(fds[i], (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
		    getsockname(fds[i], (struct sockaddr *)&sin, &len) < 0) {
			perror("bench_zmq: ports");
			return 1;
		}
		printf("%d\n", ntohs(sin.sin_port));
	}
	while (i-- > 0)
		close(fds[i]);
	return 0;
}

/* ---- forward: the raw hop ------------------------------------------------ */

static volatile sig_atomic_t fwd_stop;

static void
on_stop(int sig)
{
	(void)sig;
	fwd_stop = 1;
}

static int
cmd_forward(const char *in_url, const char *out_url)
{
	struct sigaction sa;
	void *ctx = zmq_ctx_new(), *in, *out;
	unsigned long long n = 0;
	zmq_msg_t m;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;	/* no SA_RESTART: wake zmq_msg_recv */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	in = bench_zsock(ctx, ZMQ_XSUB, "bench_zmq");
	out = bench_zsock(ctx, ZMQ_PUB, "bench_zmq");
	if (zmq_bind(in, in_url) < 0 || zmq_bind(out, out_url) < 0) {
		fprintf(stderr, "bench_zmq forward: bind: %s\n",
		    zmq_strerror(errno));
		return 1;
	}
	zmq_send(in, "\x01", 1, 0);	/* XSUB: subscribe to everything */
	while (!fwd_stop) {
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, in, 0) < 0) {
			zmq_msg_close(&m);
			if (errno == EINTR || errno == EAGAIN)
				continue;
			break;
		}
		if (!zmq_msg_more(&m))
			n++;
		if (zmq_msg_send(&m, out, zmq_msg_more(&m) ? ZMQ_SNDMORE :
		    0) < 0)
			zmq_msg_close(&m);
	}
	fprintf(stderr, "bench_zmq forward: forwarded %llu messages\n", n);
	zmq_close(in);
	zmq_close(out);
	zmq_ctx_term(ctx);
	return 0;
}

/* ---- receiving side of a relay run ---------------------------------------- */

struct rx {
	void			*sub;
	const struct pool	*p;
	bool			 lat;		/* record latencies */
	atomic_ullong		 received;
	atomic_bool		 done;		/* the sender finished */
	atomic_ullong		 total;		/* sent, once done */
	_Atomic int64_t		 send_ns[POOL];	/* by bench_seq */
	int64_t			 t_last;	/* last arrival */
	int64_t			*lats;
	size_t			 nlat, cap;
	unsigned long		 bad;		/* unparsable or not ours */
};

static void *
rx_main(void *arg)
{
	struct rx *r = arg;
	unsigned long long n = 0;
	int64_t last_progress = now_ns();
	int timeout = 200;

	zmq_setsockopt(r->sub, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	for (;;) {
		zmq_msg_t t, b;
		int64_t now;
		bool probe;

		zmq_msg_init(&t);
		if (zmq_msg_recv(&t, r->sub, 0) < 0) {
			zmq_msg_close(&t);
			if (errno == EINTR)
				continue;
			if (atomic_load(&r->done))
				break;	/* quiescent: 200 ms without one */
			if (now_ns() - last_progress > 3000000000LL)
				break;	/* stalled while sending */
			continue;
		}
		zmq_msg_init(&b);
		if (zmq_msg_more(&t) && zmq_msg_recv(&b, r->sub, 0) < 0) {
			zmq_msg_close(&t);
			zmq_msg_close(&b);
			continue;
		}
		now = now_ns();
		probe = zmq_msg_size(&t) == r->p->probe_tlen &&
		    memcmp(zmq_msg_data(&t), r->p->probe_topic,
		    r->p->probe_tlen) == 0;
		if (!probe && r->lat) {
			const char *body = zmq_msg_data(&b);
			const char *s = memmem(body, zmq_msg_size(&b), SEQ_KEY,
			    sizeof(SEQ_KEY) - 1);
			long k = s ? strtol(s + sizeof(SEQ_KEY) - 1, NULL,
			    10) : -1;

			if (k >= 0 && k < POOL && r->nlat < r->cap)
				r->lats[r->nlat++] = now -
				    atomic_load(&r->send_ns[k]);
			else
				r->bad++;
		}
		zmq_msg_close(&t);
		zmq_msg_close(&b);
		if (probe)
			continue;
		atomic_store(&r->received, ++n);
		r->t_last = last_progress = now;
		if (atomic_load(&r->done) && n >= atomic_load(&r->total))
			break;
	}
	return NULL;
}

/* Send probes until one comes back, then let the path go quiet. */
static int
handshake(void *pub, void *sub, const struct pool *p)
{
	zmq_pollitem_t it = { sub, 0, ZMQ_POLLIN, 0 };
	int64_t end = now_ns() + 15000000000LL;

	while (now_ns() < end) {
		send2(pub, p->probe_topic, p->probe_tlen, p->probe_body,
		    p->probe_blen);
		if (zmq_poll(&it, 1, 20) > 0) {
			drain(sub, 200);
			return 0;
		}
	}
	return -1;
}

/*
 * Wait while WINDOW messages are in flight (sent, not yet seen back).
 * Returns -1 when nothing moved for 3 s (messages were lost).
 */
static int
wait_window(unsigned long long sent, atomic_ullong *back, unsigned long window)
{
	unsigned long long seen = atomic_load(back), prev = seen;
	int64_t since = now_ns();

	while (sent - seen >= window) {
		sleep_ns(100000);
		seen = atomic_load(back);
		if (seen != prev) {
			prev = seen;
			since = now_ns();
		} else if (now_ns() - since > 3000000000LL) {
			return -1;
		}
	}
	return 0;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static double
pct_us(const int64_t *v, size_t n, double q)
{
	if (n == 0)
		return -1;
	return (double)v[(size_t)((double)(n - 1) * q + 0.5)] / 1000.0;
}

static int
run_tput(const struct opts *o, const struct pool *p, void *pub, void *sub)
{
	struct rx *r = calloc(1, sizeof(*r));
	unsigned long long k;
	double s0, s1, c0, c1, secs;
	int64_t t0, deadline;
	pthread_t tid;

	if (r == NULL)
		return 1;
	r->sub = sub;
	r->p = p;
	if (pthread_create(&tid, NULL, rx_main, r) != 0)
		return 1;
	s0 = cpu_of(o->pid);
	c0 = cpu_self();
	t0 = now_ns();
	deadline = t0 + (int64_t)(o->secs * 1e9);
	for (k = 0; k < o->max; k++) {
		size_t i = k % POOL;

		if ((k & 63) == 0 && now_ns() >= deadline)
			break;
		if (wait_window(k, &r->received, o->window) < 0) {
			fprintf(stderr, "bench_zmq: %s: nothing arrived for 3 s "
			    "with %lu in flight; stopping\n", o->name, o->window);
			break;
		}
		send2(pub, p->topic, p->tlen, p->body[i], p->blen[i]);
	}
	atomic_store(&r->total, k);
	atomic_store(&r->done, true);
	pthread_join(tid, NULL);
	c1 = cpu_self();
	s1 = cpu_of(o->pid);
	secs = (double)(r->t_last - t0) / 1e9;
	if (atomic_load(&r->received) == 0) {
		fprintf(stderr, "bench_zmq: %s: nothing received\n", o->name);
		free(r);
		return 1;
	}
	printf("tput %s %llu %llu %.4f %.1f %.3f %.3f\n", o->name, k,
	    (unsigned long long)atomic_load(&r->received), secs,
	    (double)atomic_load(&r->received) / secs,
	    s0 >= 0 && s1 >= 0 ? s1 - s0 : -1.0, c1 - c0);
	fflush(stdout);
	free(r);
	return 0;
}

static int
run_lat(const struct opts *o, const struct pool *p, void *pub, void *sub)
{
	struct rx *r = calloc(1, sizeof(*r));
	unsigned long long n = (unsigned long long)(o->rate * o->lat_secs), k;
	int64_t interval = 1000000000LL / o->rate, t0;
	double s0, s1;
	pthread_t tid;
	size_t got;

	if (r == NULL || (r->lats = calloc(n + 1, sizeof(int64_t))) == NULL)
		return 1;
	r->cap = n + 1;
	r->sub = sub;
	r->p = p;
	r->lat = true;
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);	/* 1 ns, not 50 us */
	if (pthread_create(&tid, NULL, rx_main, r) != 0)
		return 1;
	s0 = cpu_of(o->pid);
	t0 = now_ns() + 1000000;
	for (k = 0; k < n; k++) {
		struct timespec ts;
		int64_t at = t0 + (int64_t)k * interval;
		size_t i = k % POOL;

		ts.tv_sec = (time_t)(at / 1000000000);
		ts.tv_nsec = (long)(at % 1000000000);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
		    NULL) == EINTR)
			;
		atomic_store(&r->send_ns[i], now_ns());
		send2(pub, p->topic, p->tlen, p->body[i], p->blen[i]);
	}
	atomic_store(&r->total, k);
	atomic_store(&r->done, true);
	pthread_join(tid, NULL);
	s1 = cpu_of(o->pid);
	got = r->nlat;
	if (got == 0) {
		fprintf(stderr, "bench_zmq: %s: no latency sample\n", o->name);
		return 1;
	}
	if (r->bad)
		fprintf(stderr, "bench_zmq: %s: %lu messages without a "
		    "bench_seq\n", o->name, r->bad);
	qsort(r->lats, got, sizeof(int64_t), cmp_i64);
	printf("lat %s %u %llu %llu %.1f %.1f %.1f %.1f %.3f\n", o->name,
	    o->rate, n, (unsigned long long)atomic_load(&r->received),
	    pct_us(r->lats, got, 0.50), pct_us(r->lats, got, 0.90),
	    pct_us(r->lats, got, 0.99), pct_us(r->lats, got, 1.0),
	    s0 >= 0 && s1 >= 0 ? s1 - s0 : -1.0);
	fflush(stdout);
	free(r->lats);
	free(r);
	return 0;
}

static int
cmd_relay(const struct opts *o, const char *in_url, const char *out_url,
    const char *dir)
{
	struct pool *p = malloc(sizeof(*p));
	void *ctx = zmq_ctx_new(), *pub, *sub;
	int rc = 0;

	if (p == NULL || ctx == NULL)
		return 1;
	pool_make(p, dir);
	printf("envelope %zu %zu %zu\n", p->unsigned_len, p->blen[0], p->tlen);
	pub = bench_zsock(ctx, ZMQ_PUB, "bench_zmq");
	sub = bench_zsock(ctx, ZMQ_SUB, "bench_zmq");
	zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
	if (zmq_connect(pub, in_url) < 0 || zmq_connect(sub, out_url) < 0) {
		fprintf(stderr, "bench_zmq: connect: %s\n", zmq_strerror(errno));
		return 1;
	}
	if (handshake(pub, sub, p) < 0) {
		fprintf(stderr, "bench_zmq: %s: no probe came back through %s -> "
		    "%s in 15 s\n", o->name, in_url, out_url);
		return 1;
	}
	if (o->secs > 0)
		rc = run_tput(o, p, pub, sub);
	if (rc == 0 && o->rate > 0) {
		drain(sub, 200);
		rc = run_lat(o, p, pub, sub);
	}
	zmq_close(pub);
	zmq_close(sub);
	zmq_ctx_term(ctx);
	return rc;
}

/* ---- the hub's /metrics ------------------------------------------------------ */

struct http {
	struct sockaddr_in	 sin;
	int			 fd;
	char			 buf[1 << 17];
};

struct hubm {
	unsigned long long	 received, ok, dropped, invalid;
};

static int
http_connect(struct http *h)
{
	struct timeval tv = { 2, 0 };

	if ((h->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	setsockopt(h->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(h->fd, (struct sockaddr *)&h->sin, sizeof(h->sin)) < 0) {
		close(h->fd);
		h->fd = -1;
		return -1;
	}
	return 0;
}

/* Sum the samples of one metric family into *v. */
static void
family(const char *line, size_t len, const char *name, unsigned long long *v)
{
	size_t n = strlen(name);
	const char *sp;

	if (len > n && strncmp(line, name, n) == 0 &&
	    (line[n] == ' ' || line[n] == '{') &&
	    (sp = memrchr(line, ' ', len)) != NULL)
		*v += strtoull(sp + 1, NULL, 10);
}

/* GET /metrics over a kept-alive connection; 0 and *m, or -1. */
static int
metrics_get(struct http *h, struct hubm *m)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\n"
	    "Host: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n";
	int attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		size_t have = 0, hlen = 0, clen = 0;
		char *end = NULL, *p, *line;
		bool close_after = false;
		ssize_t r;

		if (h->fd < 0 && http_connect(h) < 0)
			return -1;
		if (send(h->fd, req, sizeof(req) - 1, MSG_NOSIGNAL) !=
		    (ssize_t)sizeof(req) - 1)
			goto again;
		for (;;) {
			if (have == sizeof(h->buf) - 1)
				goto again;
			r = recv(h->fd, h->buf + have, sizeof(h->buf) - 1 - have,
			    0);
			if (r <= 0)
				goto again;
			have += (size_t)r;
			h->buf[have] = '\0';
			if (end == NULL &&
			    (end = strstr(h->buf, "\r\n\r\n")) != NULL) {
				hlen = (size_t)(end - h->buf) + 4;
				*end = '\0';
				if ((p = strcasestr(h->buf,
				    "\r\nContent-Length:")) == NULL)
					goto again;
				clen = strtoul(p + 17, NULL, 10);
				close_after = strcasestr(h->buf,
				    "\r\nConnection: close") != NULL;
				if (strncmp(h->buf, "HTTP/1.1 200", 12) != 0 &&
				    strncmp(h->buf, "HTTP/1.0 200", 12) != 0)
					goto again;
			}
			if (end && have >= hlen + clen)
				break;
		}
		memset(m, 0, sizeof(*m));
		for (line = h->buf + hlen; line < h->buf + hlen + clen;
		    line = p + 1) {
			size_t len;

			if ((p = memchr(line, '\n', (size_t)(h->buf + hlen + clen -
			    line))) == NULL)
				p = h->buf + hlen + clen;
			len = (size_t)(p - line);
			if (len == 0 || *line == '#')
				continue;
			family(line, len, "fedmsg_hub_received_total",
			    &m->received);
			family(line, len, "fedmsg_consumer_ok_total", &m->ok);
			family(line, len, "fedmsg_consumer_dropped_total",
			    &m->dropped);
			family(line, len, "fedmsg_hub_invalid_total",
			    &m->invalid);
		}
		if (close_after) {
			close(h->fd);
			h->fd = -1;
		}
		return 0;
again:
		if (h->fd >= 0)
			close(h->fd);
		h->fd = -1;
	}
	return -1;
}

struct poller {
	struct http		*h;
	struct hubm		 base;
	atomic_bool		 stop;
	atomic_ullong		 settled;	/* ok + dropped + invalid - base */
	atomic_ullong		 ok;		/* ok - base */
	_Atomic int64_t		 t_ok;		/* when ok last changed */
	atomic_ullong		 polls, failures;
};

static void *
poller_main(void *arg)
{
	struct poller *pl = arg;
	unsigned long long last_ok = 0;

	while (!atomic_load(&pl->stop)) {
		struct hubm m;
		int64_t t;

		if (metrics_get(pl->h, &m) < 0) {
			atomic_fetch_add(&pl->failures, 1);
			sleep_ns(10000000);
			continue;
		}
		t = now_ns();
		atomic_fetch_add(&pl->polls, 1);
		atomic_store(&pl->settled, m.ok + m.dropped + m.invalid -
		    pl->base.ok - pl->base.dropped - pl->base.invalid);
		if (m.ok - pl->base.ok != last_ok) {
			last_ok = m.ok - pl->base.ok;
			atomic_store(&pl->ok, last_ok);
			atomic_store(&pl->t_ok, t);
		}
		sleep_ns(2000000);
	}
	return NULL;
}

static int
cmd_hub(const struct opts *o, const char *pub_url, const char *maddr,
    const char *dir)
{
	struct pool *p = malloc(sizeof(*p));
	struct http *h = calloc(1, sizeof(*h));
	struct poller *pl = calloc(1, sizeof(*pl));
	void *ctx = zmq_ctx_new(), *pub;
	const char *colon = strrchr(maddr, ':');
	struct hubm m, prev;
	unsigned long long k, settled, d, inv;
	int64_t end, t0, deadline, stable;
	double s0, s1, secs;
	char host[64];
	pthread_t tid;

	if (p == NULL || h == NULL || pl == NULL || ctx == NULL)
		return 1;
	h->fd = -1;
	h->sin.sin_family = AF_INET;
	if (colon == NULL || (size_t)(colon - maddr) >= sizeof(host)) {
		fprintf(stderr, "bench_zmq: metrics address '%s': want "
		    "HOST:PORT\n", maddr);
		return 2;
	}
	memcpy(host, maddr, (size_t)(colon - maddr));
	host[colon - maddr] = '\0';
	h->sin.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &h->sin.sin_addr) != 1) {
		fprintf(stderr, "bench_zmq: bad metrics host '%s'\n", host);
		return 2;
	}
	pool_make(p, dir);
	printf("envelope %zu %zu %zu\n", p->unsigned_len, p->blen[0], p->tlen);
	pub = bench_zsock(ctx, ZMQ_PUB, "bench_zmq");
	if (zmq_bind(pub, pub_url) < 0) {
		fprintf(stderr, "bench_zmq: bind %s: %s\n", pub_url,
		    zmq_strerror(errno));
		return 1;
	}
	/* Probe until the hub has taken one (its SUB has connected). */
	end = now_ns() + 15000000000LL;
	memset(&m, 0, sizeof(m));
	while (now_ns() < end) {
		send2(pub, p->probe_topic, p->probe_tlen, p->probe_body,
		    p->probe_blen);
		if (metrics_get(h, &m) == 0 && m.received > 0)
			break;
		sleep_ns(20000000);
	}
	if (m.received == 0) {
		fprintf(stderr, "bench_zmq: %s: the hub took no probe from %s "
		    "in 15 s (metrics on %s)\n", o->name, pub_url, maddr);
		return 1;
	}
	/* Let the probes settle: nothing new for 300 ms. */
	prev = m;
	stable = now_ns();
	while (now_ns() - stable < 300000000LL) {
		sleep_ns(50000000);
		if (metrics_get(h, &m) < 0)
			return 1;
		if (memcmp(&m, &prev, sizeof(m)) != 0) {
			prev = m;
			stable = now_ns();
		}
	}
	pl->h = h;
	pl->base = m;
	if (pthread_create(&tid, NULL, poller_main, pl) != 0)
		return 1;

	s0 = cpu_of(o->pid);
	t0 = now_ns();
	deadline = t0 + (int64_t)(o->secs * 1e9);
	for (k = 0; k < o->max; k++) {
		size_t i = k % POOL;

		if ((k & 63) == 0 && now_ns() >= deadline)
			break;
		if (wait_window(k, &pl->settled, o->window) < 0) {
			fprintf(stderr, "bench_zmq: %s: the hub settled nothing "
			    "for 3 s with %lu in flight; stopping\n", o->name,
			    o->window);
			break;
		}
		send2(pub, p->topic, p->tlen, p->body[i], p->blen[i]);
	}
	/* Until everything is settled, or 1 s without change. */
	stable = now_ns();
	settled = atomic_load(&pl->settled);
	while (settled < k && now_ns() - stable < 1000000000LL) {
		sleep_ns(2000000);
		if (atomic_load(&pl->settled) != settled) {
			settled = atomic_load(&pl->settled);
			stable = now_ns();
		}
	}
	atomic_store(&pl->stop, true);
	pthread_join(tid, NULL);
	s1 = cpu_of(o->pid);
	if (metrics_get(h, &m) < 0)
		m = prev;
	d = m.dropped - pl->base.dropped;
	inv = m.invalid - pl->base.invalid;
	secs = (double)(atomic_load(&pl->t_ok) - t0) / 1e9;
	if (atomic_load(&pl->ok) == 0 || secs <= 0) {
		fprintf(stderr, "bench_zmq: %s: the hub consumed nothing\n",
		    o->name);
		return 1;
	}
	fprintf(stderr, "bench_zmq: %s: %llu /metrics polls (%llu failed)\n",
	    o->name, (unsigned long long)atomic_load(&pl->polls),
	    (unsigned long long)atomic_load(&pl->failures));
	printf("hub %s %llu %llu %llu %llu %.4f %.1f %.3f\n", o->name, k,
	    (unsigned long long)atomic_load(&pl->ok), d, inv, secs,
	    (double)atomic_load(&pl->ok) / secs,
	    s0 >= 0 && s1 >= 0 ? s1 - s0 : -1.0);
	fflush(stdout);
	if (h->fd >= 0)
		close(h->fd);
	zmq_close(pub);
	zmq_ctx_term(ctx);
	return 0;
}

/* ---- envelopes: signed messages for the broker benchmarks ---------------- */

struct env_job {
	struct fm_signer	*sg;
	const char		*topic, *ptopic;
	char			**line;		/* [n + nprobes] */
	unsigned long		 n, nprobes, first, step;
	size_t			 unsigned_len;
};

static void *
env_main(void *arg)
{
	struct env_job *j = arg;
	size_t jcap = sizeof(payload_rest) + 64;
	char *json = malloc(jcap);
	unsigned long k;

	if (json == NULL) {
		fprintf(stderr, "bench_zmq: envelopes: out of memory\n");
		exit(1);
	}
	for (k = j->first; k < j->n + j->nprobes; k += j->step) {
		struct fm_msg *m;
		const char *body, *topic = k < j->n ? j->topic : j->ptopic;
		size_t blen;

		if (k < j->n)
			snprintf(json, jcap, "{" SEQ_KEY "%lu,%s", k,
			    payload_rest);
		else
			snprintf(json, jcap, "{\"probe\":%lu}", k - j->n);
		m = build_signed(j->sg, topic, json, (int64_t)k + 1,
		    k == 0 ? &j->unsigned_len : NULL);
		body = fm_msg_body(m, &blen);
		if (memchr(body, '\n', blen) != NULL ||
		    asprintf(&j->line[k], "%c %s %.*s\n", k < j->n ? 'm' : 'p',
		    topic, (int)blen, body) < 0) {
			fprintf(stderr, "bench_zmq: envelopes: a body with a "
			    "newline, or out of memory\n");
			exit(1);
		}
		fm_msg_unref(m);
	}
	free(json);
	return NULL;
}

static int
cmd_envelopes(unsigned long n, unsigned long nprobes, const char *dir,
    const char *path)
{
	struct env_job j[2];
	struct pool *p = malloc(sizeof(*p));
	char cert[4096], key[4096], tmp[4096], err[FM_ERRLEN];
	pthread_t tid;
	unsigned long k;
	FILE *f;
	int t;

	if (p == NULL)
		return 1;
	/* the pool only checks that the CA accepts this signer's messages */
	pool_make(p, dir);
	memset(j, 0, sizeof(j));
	snprintf(cert, sizeof(cert), "%s/shell-localhost.crt", dir);
	snprintf(key, sizeof(key), "%s/shell-localhost.key", dir);
	if ((j[0].sg = fm_signer_load(cert, key, err)) == NULL) {
		fprintf(stderr, "bench_zmq: %s\n", err);
		return 1;
	}
	j[0].topic = p->topic;
	j[0].ptopic = p->probe_topic;
	j[0].n = n;
	j[0].nprobes = nprobes;
	j[0].step = 2;
	if ((j[0].line = calloc(n + nprobes, sizeof(char *))) == NULL)
		return 1;
	j[1] = j[0];
	j[1].first = 1;
	if (pthread_create(&tid, NULL, env_main, &j[1]) != 0)
		return 1;
	env_main(&j[0]);
	pthread_join(tid, NULL);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL) {
		perror(tmp);
		return 1;
	}
	for (k = 0; k < n + nprobes; k++) {
		fputs(j[0].line[k], f);
		free(j[0].line[k]);
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		perror(path);
		return 1;
	}
	for (t = 0; t < POOL; t++)
		fm_msg_unref(p->msg[t]);
	fm_msg_unref(p->probe);
	fm_signer_free(j[0].sg);
	free(j[0].line);
	free(p);
	return 0;
}

/* ---- main ----------------------------------------------------------------- */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bench_zmq ports N\n"
	    "       bench_zmq forward IN_URL OUT_URL\n"
	    "       bench_zmq relay [-d SECS] [-n MAX] [-w WINDOW] [-l RATE "
	    "[-L SECS]] [-p PID]\n"
	    "                 NAME IN_URL OUT_URL DEVDIR\n"
	    "       bench_zmq hub [-d SECS] [-n MAX] [-w WINDOW] [-p PID]\n"
	    "                 NAME PUB_URL METRICS_HOST:PORT DEVDIR\n"
	    "       bench_zmq envelopes N NPROBES DEVDIR FILE\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct opts o = { 2.0, 2.0, 100000000UL, 2000, 0, -1, NULL };
	const char *cmd;
	int c;

	if (argc < 2)
		usage();
	cmd = argv[1];
	if (strcmp(cmd, "ports") == 0 && argc == 3)
		return cmd_ports((int)num_arg(argv[2], 1, 64));
	if (strcmp(cmd, "forward") == 0 && argc == 4)
		return cmd_forward(argv[2], argv[3]);
	if (strcmp(cmd, "envelopes") == 0 && argc == 6)
		return cmd_envelopes((unsigned long)num_arg(argv[2], 1, 1e7),
		    (unsigned long)num_arg(argv[3], 0, 1e6), argv[4], argv[5]);
	if (strcmp(cmd, "relay") != 0 && strcmp(cmd, "hub") != 0)
		usage();
	argc--;
	argv++;
	while ((c = getopt(argc, argv, "d:n:w:l:L:p:")) != -1) {
		switch (c) {
		case 'd': o.secs = num_arg(optarg, 0, 600); break;
		case 'n': o.max = (unsigned long)num_arg(optarg, 1, 1e12); break;
		case 'w': o.window = (unsigned long)num_arg(optarg, 1, HWM / 2);
			break;
		case 'l': o.rate = (unsigned)num_arg(optarg, 1, 1e6); break;
		case 'L': o.lat_secs = num_arg(optarg, 0.01, 600); break;
		case 'p': o.pid = (long)num_arg(optarg, 1, 1e9); break;
		default: usage();
		}
	}
	if (argc - optind != 4)
		usage();
	o.name = argv[optind];
	if (strcmp(cmd, "relay") == 0)
		return cmd_relay(&o, argv[optind + 1], argv[optind + 2],
		    argv[optind + 3]);
	return cmd_hub(&o, argv[optind + 1], argv[optind + 2],
	    argv[optind + 3]);
}
