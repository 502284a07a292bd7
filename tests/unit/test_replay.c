/*
 * Unit tests for libfedmsg/replay_*.c: the bounded store and its indexes, every
 * query key with fedmsg's error texts, the REP server queried by a raw
 * ZeroMQ REQ socket, and gap detection end to end against that server
 * (and against a scripted fake server for malformed replies).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "config.h"
#include "log.h"
#include "replay.h"
#include "zep.h"

/* ---- helpers ---------------------------------------------------------- */

/* A message with "i" = i, "timestamp" = ts and "msg_id" = "id-<n>". */
static struct fm_msg *
make(int64_t i, int64_t ts, int id)
{
	struct fm_msg_fields f;
	struct fm_msg *m;
	char err[FM_ERRLEN], msg_id[32], payload[64];

	memset(&f, 0, sizeof(f));
	snprintf(msg_id, sizeof(msg_id), "id-%d", id);
	snprintf(payload, sizeof(payload), "{\"n\":%d,\"text\":\"caf\\u00e9\"}",
	    id);
	f.topic = "org.fedoraproject.dev.test.replay";
	f.msg_json = payload;
	f.msg_id = msg_id;
	f.i = i;
	f.timestamp = ts;
	f.username = "tester";
	if (fm_msg_build(&f, NULL, &m, err) < 0)
		fail_msg("fm_msg_build: %s", err);
	return m;
}

static struct fm_msg *
parse(const char *text)
{
	struct fm_msg *m;
	char err[FM_ERRLEN];

	if (fm_msg_parse(text, strlen(text), NULL, &m, err) < 0)
		fail_msg("fm_msg_parse: %s", err);
	return m;
}

static int64_t
seq_of(const struct fm_msg *m)
{
	int64_t i;

	assert_true(fm_msg_seq(m, &i));
	return i;
}

static void
unref_all(struct fm_msg **v, ssize_t n)
{
	ssize_t k;

	for (k = 0; k < n; k++)
		fm_msg_unref(v[k]);
	free(v);
}

/*
 * Run query on st and compare the "i" of the results with want[0..nwant),
 * in order.  Returns the result count.
 */
static void
expect_seqs(struct replay_store *st, const char *query, const int64_t *want,
    size_t nwant)
{
	struct fm_msg **out = (struct fm_msg **)1;
	char err[FM_ERRLEN] = "";
	ssize_t n = replay_store_query(st, query, strlen(query), &out, err);
	size_t k;

	if (n < 0)
		fail_msg("%s: %s", query, err);
	if ((size_t)n != nwant) {
		for (k = 0; k < (size_t)n; k++)
			print_error("  got i=%" PRId64 "\n", seq_of(out[k]));
		fail_msg("%s: %zd results, want %zu", query, n, nwant);
	}
	for (k = 0; k < nwant; k++)
		assert_int_equal(seq_of(out[k]), want[k]);
	unref_all(out, n);
}

#define EXPECT(st, q, ...) do {						\
	const int64_t want_[] = { __VA_ARGS__ };			\
	expect_seqs((st), (q), want_, sizeof(want_) / sizeof(want_[0]));\
} while (0)

static void
expect_error(struct replay_store *st, const char *query, const char *want)
{
	struct fm_msg **out = (struct fm_msg **)1;
	char err[FM_ERRLEN] = "";

	if (replay_store_query(st, query, strlen(query), &out, err) != -1)
		fail_msg("%s: expected error %s", query, want);
	assert_null(out);
	assert_string_equal(err, want);
}

static void
expect_no_match(struct replay_store *st, const char *query)
{
	expect_error(st, query, "There was no match for the given query");
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A TCP port on 127.0.0.1 that nothing listens on right now. */
static int
free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* ---- the shared fixture: a config, and a store served on svc_url ------ */

static struct {
	char			 dir[64];
	char			 path[128];
	struct fm_config	*cfg;
	char			 svc_url[64];	/* replay_endpoints.svc: st */
	char			 fake_url[64];	/* .fake: scripted */
	char			 down_url[64];	/* .down: nobody */
	struct replay_store	*st;
	struct replay_server	*srv;
	struct fm_msg		*msgs[11];	/* i = 1..10, in st */
} fx;

static int
group_setup(void **state)
{
	char err[FM_ERRLEN], text[512];
	int p_svc = free_port(), p_fake, p_down;
	FILE *f;
	int k;

	(void)state;
	if (getenv("FM_TEST_VERBOSE") == NULL)
		log_init("test_replay", FM_LOG_ERR);
	do
		p_fake = free_port();
	while (p_fake == p_svc);
	do
		p_down = free_port();
	while (p_down == p_svc || p_down == p_fake);
	snprintf(fx.svc_url, sizeof(fx.svc_url), "tcp://127.0.0.1:%d", p_svc);
	snprintf(fx.fake_url, sizeof(fx.fake_url), "tcp://127.0.0.1:%d",
	    p_fake);
	snprintf(fx.down_url, sizeof(fx.down_url), "tcp://127.0.0.1:%d",
	    p_down);

	snprintf(fx.dir, sizeof(fx.dir), "/tmp/fm-test-replay.XXXXXX");
	assert_non_null(mkdtemp(fx.dir));
	snprintf(fx.path, sizeof(fx.path), "%s/fedmsg.json", fx.dir);
	snprintf(text, sizeof(text), "{\"replay_endpoints\": {"
	    "\"svc\": \"%s\", \"star\": \"tcp://*:%d\", \"fake\": \"%s\", "
	    "\"down\": \"%s\"}, \"timeout\": 1.0}", fx.svc_url, p_svc,
	    fx.fake_url, fx.down_url);
	assert_non_null(f = fopen(fx.path, "w"));
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	if (fm_config_load(fx.path, &fx.cfg, err) < 0)
		fail_msg("fm_config_load: %s", err);

	assert_non_null(fx.st = replay_store_new(1000, 1024 * 1024));
	for (k = 1; k <= 10; k++) {
		fx.msgs[k] = make(k, 1000 + k, k);
		replay_store_add(fx.st, fx.msgs[k]);
	}
	fx.srv = replay_server_start(fx.cfg, fx.svc_url, fx.st, err);
	if (fx.srv == NULL)
		fail_msg("replay_server_start: %s", err);
	return 0;
}

static int
group_teardown(void **state)
{
	int k;

	(void)state;
	replay_server_stop(fx.srv);
	replay_store_free(fx.st);
	for (k = 1; k <= 10; k++)
		fm_msg_unref(fx.msgs[k]);
	fm_config_free(fx.cfg);
	unlink(fx.path);
	rmdir(fx.dir);
	zep_shutdown();
	return 0;
}

/* ---- raw REQ client --------------------------------------------------- */

#define MAX_FRAMES 32

struct reply {
	size_t	 n;
	char	*data[MAX_FRAMES];
	size_t	 len[MAX_FRAMES];
};

static void
reply_free(struct reply *r)
{
	size_t k;

	for (k = 0; k < r->n; k++)
		free(r->data[k]);
	r->n = 0;
}

/* Send parts[0..nparts) as one message to url; wait for the reply. */
static void
request(const char *url, const char *const *parts, const size_t *lens,
    size_t nparts, struct reply *r)
{
	void *sock = zmq_socket(zep_context(fx.cfg), ZMQ_REQ);
	int linger = 0, tmo = 3000, more = 1;
	size_t k;

	assert_non_null(sock);
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(sock, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	assert_int_equal(zmq_connect(sock, url), 0);
	for (k = 0; k < nparts; k++)
		assert_true(zmq_send(sock, parts[k], lens[k],
		    k + 1 < nparts ? ZMQ_SNDMORE : 0) >= 0);
	memset(r, 0, sizeof(*r));
	while (more) {
		zmq_msg_t m;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, 0) < 0)
			fail_msg("no reply from %s: %s", url,
			    zmq_strerror(errno));
		assert_true(r->n < MAX_FRAMES);
		r->len[r->n] = zmq_msg_size(&m);
		assert_non_null(r->data[r->n] = malloc(r->len[r->n] + 1));
		memcpy(r->data[r->n], zmq_msg_data(&m), r->len[r->n]);
		r->data[r->n][r->len[r->n]] = '\0';
		r->n++;
		more = zmq_msg_more(&m);
		zmq_msg_close(&m);
	}
	zmq_close(sock);
}

static void
request1(const char *url, const char *query, struct reply *r)
{
	size_t len = strlen(query);

	request(url, &query, &len, 1, r);
}

static void
assert_body(const char *data, size_t len, const struct fm_msg *m)
{
	size_t blen;
	const char *body = fm_msg_body(m, &blen);

	assert_int_equal(len, blen);
	assert_memory_equal(data, body, len);
}

static void
expect_error_frame(const char *url, const char *query, const char *want)
{
	struct reply r;

	request1(url, query, &r);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.data[0], want);
	reply_free(&r);
}

/* ---- store ------------------------------------------------------------ */

static void
test_store_bounds(void **state)
{
	struct replay_store *st;
	struct fm_msg *m[9];
	size_t len;
	int k;

	(void)state;
	/* by count: the newest 5 of 8 */
	assert_non_null(st = replay_store_new(5, 1 << 20));
	for (k = 1; k <= 8; k++) {
		m[k] = make(k, 100 + k, k);
		replay_store_add(st, m[k]);
	}
	EXPECT(st, "{\"seq_id_range\":[1,10]}", 4, 5, 6, 7, 8);
	expect_no_match(st, "{\"seq_id_range\":[1,3]}");
	expect_no_match(st, "{\"msg_id\":\"id-3\"}");
	expect_no_match(st, "{\"time\":[101,103]}");
	EXPECT(st, "{\"msg_id\":\"id-4\"}", 4);
	EXPECT(st, "{\"time\":[0,1e9]}", 4, 5, 6, 7, 8);
	replay_store_free(st);		/* drops its references */

	/* by bytes: every body has the same length here */
	fm_msg_body(m[1], &len);
	assert_non_null(st = replay_store_new(100, 3 * len));
	for (k = 1; k <= 8; k++)
		replay_store_add(st, m[k]);
	EXPECT(st, "{\"seq_id_range\":[0,100]}", 6, 7, 8);
	replay_store_free(st);

	/* one byte short of three: two kept */
	assert_non_null(st = replay_store_new(100, 3 * len - 1));
	for (k = 1; k <= 8; k++)
		replay_store_add(st, m[k]);
	EXPECT(st, "{\"seq_id_range\":[0,100]}", 7, 8);
	replay_store_free(st);

	/* a message larger than the byte bound is not kept; nor is anything
	 * with max_msgs 0 */
	assert_non_null(st = replay_store_new(100, len - 1));
	replay_store_add(st, m[1]);
	expect_no_match(st, "{\"seq_id\":1}");
	replay_store_free(st);
	assert_non_null(st = replay_store_new(0, 1 << 20));
	replay_store_add(st, m[1]);
	expect_no_match(st, "{\"seq_id\":1}");
	replay_store_free(st);

	/* an empty store, NULLs */
	assert_non_null(st = replay_store_new(10, 1 << 20));
	expect_no_match(st, "{\"seq_id\":1}");
	expect_no_match(st, "{}");
	replay_store_add(st, NULL);
	replay_store_add(NULL, m[1]);
	replay_store_free(st);
	replay_store_free(NULL);

	for (k = 1; k <= 8; k++)
		fm_msg_unref(m[k]);
}

static void
test_query_keys(void **state)
{
	struct replay_store *st;
	struct fm_msg *m;
	int k;

	(void)state;
	assert_non_null(st = replay_store_new(100, 1 << 20));
	for (k = 1; k <= 10; k++) {
		m = make(k, 1000 + k, k);
		replay_store_add(st, m);
		fm_msg_unref(m);	/* the store keeps its own reference */
	}
	EXPECT(st, "{\"seq_id\":3}", 3);
	EXPECT(st, "{\"seq_ids\":[7,2,2,99,-1]}", 2, 7);
	EXPECT(st, "{\"seq_id_range\":[4,6]}", 4, 5, 6);
	EXPECT(st, "{\"seq_id_range\":[-5,2]}", 1, 2);
	EXPECT(st, "{\"seq_id_range\":[10,10]}", 10);
	EXPECT(st, "{\"msg_id\":\"id-5\"}", 5);
	EXPECT(st, "{\"msg_ids\":[\"id-9\",\"id-1\",\"nope\",\"id-9\"]}",
	    1, 9);
	EXPECT(st, "{\"time\":[1002,1004]}", 2, 3, 4);
	EXPECT(st, "{\"time\":[1002.5,1004.0]}", 3, 4);
	EXPECT(st, "{\"time\":[-Infinity,1001]}", 1);
	EXPECT(st, "{\"time\":[1010,Infinity]}", 10);
	/* several keys are OR-ed, without duplicates, in "i" order */
	EXPECT(st, "{\"seq_id\":1,\"msg_id\":\"id-1\",\"time\":[1009,1100],"
	    "\"seq_ids\":[5,10]}", 1, 5, 9, 10);
	EXPECT(st, "{\"seq_id\":42,\"msg_ids\":[\"id-3\"]}", 3);
	/* whitespace and key order do not matter */
	EXPECT(st, " { \"seq_id_range\" : [ 2 , 3 ] } \n", 2, 3);
	/* integers beyond int64: bound a range, equal nothing */
	EXPECT(st, "{\"seq_id_range\":[-99999999999999999999999,"
	    "99999999999999999999999]}", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
	expect_no_match(st, "{\"seq_id\":18446744073709551617}");
	/* nothing */
	expect_no_match(st, "{}");
	expect_no_match(st, "{\"seq_id\":11}");
	expect_no_match(st, "{\"seq_ids\":[]}");
	expect_no_match(st, "{\"seq_id_range\":[6,4]}");
	expect_no_match(st, "{\"msg_id\":\"id-1 \"}");
	expect_no_match(st, "{\"msg_id\":\"id-1\\u0000\"}");
	expect_no_match(st, "{\"msg_ids\":[]}");
	expect_no_match(st, "{\"time\":[1004,1002]}");
	replay_store_free(st);
}

static void
test_query_errors(void **state)
{
	struct replay_store *st;
	struct fm_msg *m;

	(void)state;
	assert_non_null(st = replay_store_new(100, 1 << 20));
	m = make(1, 1001, 1);
	replay_store_add(st, m);
	fm_msg_unref(m);

	/* fedmsg's text, with the key's real name */
	expect_error(st, "{\"bogus\":1}", "Unsupported field: \"bogus\"");
	expect_error(st, "{\"seq_id\":1,\"zzz\":2}", "Unsupported field: "
	    "\"zzz\"");
	/* even when a known key would match */
	expect_error(st, "{\"Seq_id\":1}", "Unsupported field: \"Seq_id\"");
	expect_error(st, "{\"seq_id\\u0000\":1}", "Unsupported field: "
	    "\"seq_id?\"");
	expect_error(st, "{\"a\\nb\":1}", "Unsupported field: \"a?b\"");

	/* not an object, not JSON */
	expect_error(st, "[1]", "query is not a JSON object");
	expect_error(st, "\"seq_id\"", "query is not a JSON object");
	{
		struct fm_msg **out;
		char err[FM_ERRLEN];

		assert_int_equal(replay_store_query(st, "{\"seq_id\":", 10,
		    &out, err), -1);
		assert_non_null(strstr(err, "query is not valid JSON: "));
		assert_int_equal(replay_store_query(st, "", 0, &out, err), -1);
		assert_non_null(strstr(err, "query is not valid JSON: "));
		/* the length is honoured: no NUL needed, none read past */
		assert_int_equal(replay_store_query(st, "{\"seq_id\":1}xx",
		    12, &out, err), 1);
		assert_int_equal(seq_of(out[0]), 1);
		unref_all(out, 1);
	}

	/* wrong value types */
	expect_error(st, "{\"seq_id\":\"1\"}", "seq_id must be an integer");
	expect_error(st, "{\"seq_id\":1.0}", "seq_id must be an integer");
	expect_error(st, "{\"seq_id\":true}", "seq_id must be an integer");
	expect_error(st, "{\"seq_id\":null}", "seq_id must be an integer");
	expect_error(st, "{\"seq_ids\":1}", "seq_ids must be a list of "
	    "integers");
	expect_error(st, "{\"seq_ids\":[1,\"2\"]}", "seq_ids must be a list "
	    "of integers");
	expect_error(st, "{\"seq_id_range\":[1]}", "seq_id_range must be a "
	    "list of two integers [first, last]");
	expect_error(st, "{\"seq_id_range\":[1,2,3]}", "seq_id_range must be "
	    "a list of two integers [first, last]");
	expect_error(st, "{\"seq_id_range\":[1,2.5]}", "seq_id_range must be "
	    "a list of two integers [first, last]");
	expect_error(st, "{\"seq_id_range\":{\"a\":1}}", "seq_id_range must "
	    "be a list of two integers [first, last]");
	expect_error(st, "{\"msg_id\":5}", "msg_id must be a string");
	expect_error(st, "{\"msg_ids\":\"id-1\"}", "msg_ids must be a list "
	    "of strings");
	expect_error(st, "{\"msg_ids\":[\"id-1\",1]}", "msg_ids must be a "
	    "list of strings");
	expect_error(st, "{\"time\":1001}", "time must be a list of two "
	    "numbers [t0, t1]");
	expect_error(st, "{\"time\":[\"1000\",2000]}", "time must be a list "
	    "of two numbers [t0, t1]");
	expect_error(st, "{\"time\":[NaN,2000]}", "time must be a list of "
	    "two numbers [t0, t1]");
	expect_error(st, "{\"time\":[1000]}", "time must be a list of two "
	    "numbers [t0, t1]");
	/* an unknown key is reported before a bad value */
	expect_error(st, "{\"seq_id\":\"x\",\"zz\":1}", "Unsupported field: "
	    "\"zz\"");
	replay_store_free(st);
}

/* Results are in "i" order (then arrival); messages without "i" last. */
static void
test_query_order(void **state)
{
	struct replay_store *st;
	struct fm_msg *m[6], **out;
	char err[FM_ERRLEN];
	ssize_t n;
	int k;

	(void)state;
	assert_non_null(st = replay_store_new(100, 1 << 20));
	m[0] = make(5, 2000, 100);
	m[1] = make(3, 1999, 101);
	m[2] = parse("{\"topic\":\"t\",\"msg_id\":\"no-i\",\"timestamp\":"
	    "2000.5}");
	m[3] = make(9, 2001, 103);
	m[4] = make(3, 2002, 104);	/* the same "i" again */
	m[5] = parse("{\"topic\":\"t\",\"i\":\"7\",\"timestamp\":2003}");
	for (k = 0; k < 6; k++)
		replay_store_add(st, m[k]);
	n = replay_store_query(st, "{\"time\":[0,3000]}", 17, &out, err);
	assert_int_equal(n, 6);
	assert_ptr_equal(out[0], m[1]);
	assert_ptr_equal(out[1], m[4]);
	assert_ptr_equal(out[2], m[0]);
	assert_ptr_equal(out[3], m[3]);
	assert_ptr_equal(out[4], m[2]);	/* no "i": after, by arrival */
	assert_ptr_equal(out[5], m[5]);	/* "i" a string: no "i" */
	unref_all(out, n);
	EXPECT(st, "{\"seq_id\":3}", 3, 3);
	n = replay_store_query(st, "{\"msg_id\":\"no-i\",\"seq_id\":9}", 28,
	    &out, err);
	assert_int_equal(n, 2);
	assert_ptr_equal(out[0], m[3]);
	assert_ptr_equal(out[1], m[2]);
	unref_all(out, n);
	expect_no_match(st, "{\"seq_id\":7}");
	for (k = 0; k < 6; k++)
		fm_msg_unref(m[k]);
	replay_store_free(st);
}

/* Exact body bytes survive the store, whatever their spelling. */
static void
test_exact_bytes_store(void **state)
{
	static const char text[] = " {\"topic\" : \"org.x\",\"i\":1,\"msg\":{"
	    "\"z\":\"caf\\u00e9\",\"a\":1.50, \"b\":\"\xc3\xa9\"},"
	    "\"timestamp\":1e3 ,\"msg_id\":\"odd\"}\n";
	struct replay_store *st;
	struct fm_msg *m, **out;
	char err[FM_ERRLEN];
	ssize_t n;

	(void)state;
	assert_non_null(st = replay_store_new(10, 1 << 20));
	m = parse(text);
	replay_store_add(st, m);
	fm_msg_unref(m);
	n = replay_store_query(st, "{\"time\":[1000,1000]}", 20, &out, err);
	assert_int_equal(n, 1);
	assert_body(text, strlen(text), out[0]);
	unref_all(out, n);
	replay_store_free(st);
}

/* Adds, evictions and queries against a brute-force model. */
static void
test_store_model(void **state)
{
	enum { N = 600, CAP = 37 };
	struct replay_store *st;
	struct fm_msg *m[N], **out;
	int64_t seq[N], ts[N];
	unsigned seed = 12345;
	char q[128], err[FM_ERRLEN];
	int k, j;

	(void)state;
	assert_non_null(st = replay_store_new(CAP, 1 << 20));
	for (k = 0; k < N; k++) {
		seed = seed * 1103515245 + 12345;
		/* mostly increasing, sometimes anywhere */
		seq[k] = (seed >> 16) % 4 ? k / 2 :
		    (int64_t)((seed >> 8) % 300);
		seed = seed * 1103515245 + 12345;
		ts[k] = 5000 + (int64_t)((seed >> 16) % 400);
		m[k] = make(seq[k], ts[k], k);
		replay_store_add(st, m[k]);
		if (k % 7 != 0)
			continue;
		for (j = 0; j < 3; j++) {
			int64_t lo, hi;
			ssize_t n, want = 0, got = 0, prev = -1;
			int x;
			bool time = j == 2;

			seed = seed * 1103515245 + 12345;
			lo = time ? 5000 + (int64_t)((seed >> 16) % 400) :
			    (int64_t)((seed >> 16) % 300);
			hi = lo + (int64_t)((seed >> 8) % (time ? 200 : 60));
			snprintf(q, sizeof(q), "{\"%s\":[%" PRId64 ",%" PRId64
			    "]}", time ? "time" : "seq_id_range", lo, hi);
			for (x = k - CAP + 1 < 0 ? 0 : k - CAP + 1; x <= k; x++)
				if (time ? ts[x] >= lo && ts[x] <= hi :
				    seq[x] >= lo && seq[x] <= hi)
					want++;
			n = replay_store_query(st, q, strlen(q), &out, err);
			if (want == 0) {
				assert_int_equal(n, -1);
				continue;
			}
			assert_int_equal(n, want);
			/* each result is in the window and matches; sorted */
			for (x = 0; x < n; x++) {
				int id = atoi(fm_msg_id(out[x]) + 3);

				assert_true(id > k - CAP && id <= k);
				assert_ptr_equal(out[x], m[id]);
				assert_true(time ?
				    ts[id] >= lo && ts[id] <= hi :
				    seq[id] >= lo && seq[id] <= hi);
				assert_true(seq[id] > prev ||
				    (seq[id] == prev && id > got));
				prev = seq[id];
				got = id;
			}
			unref_all(out, n);
		}
	}
	for (k = 0; k < N; k++)
		fm_msg_unref(m[k]);
	replay_store_free(st);
}

/* The server thread queries while the publisher thread adds. */
struct adder {
	struct replay_store	*st;
	struct fm_msg		**m;
	int			 n;
};

static void *
adder_main(void *arg)
{
	struct adder *a = arg;
	int k;

	for (k = 0; k < a->n; k++)
		replay_store_add(a->st, a->m[k]);
	return NULL;
}

static void
test_store_threads(void **state)
{
	enum { N = 3000 };
	struct fm_msg **m = calloc(N, sizeof(*m)), **out;
	struct adder a;
	pthread_t t;
	char err[FM_ERRLEN];
	const char *q = "{\"seq_id_range\":[0,100000],\"time\":[0,1e12]}";
	int k, rounds = 0;

	(void)state;
	assert_non_null(m);
	for (k = 0; k < N; k++)
		m[k] = make(k + 1, 1000 + k, k);
	a.st = replay_store_new(100, 1 << 20);
	a.m = m;
	a.n = N;
	assert_int_equal(pthread_create(&t, NULL, adder_main, &a), 0);
	do {
		ssize_t n = replay_store_query(a.st, q, strlen(q), &out, err);
		ssize_t x;

		assert_true(n <= 100);
		for (x = 1; x < n; x++)
			assert_true(seq_of(out[x - 1]) < seq_of(out[x]));
		if (n > 0)
			unref_all(out, n);
		rounds++;
	} while (rounds < 200);
	assert_int_equal(pthread_join(t, NULL), 0);
	EXPECT(a.st, "{\"seq_id_range\":[2999,5000]}", 2999, 3000);
	replay_store_free(a.st);
	for (k = 0; k < N; k++)
		fm_msg_unref(m[k]);
	free(m);
}

/* ---- server ----------------------------------------------------------- */

static void
test_server_replies(void **state)
{
	struct reply r;
	char big[70 * 1024];
	const char *parts[2] = { "{\"seq_id\":1}", "{\"seq_id\":2}" };
	size_t lens[2] = { 12, 12 };
	int k;

	(void)state;
	/* one frame per message, the exact bytes, in "i" order */
	request1(fx.svc_url, "{\"seq_ids\":[4,2,3]}", &r);
	assert_int_equal(r.n, 3);
	for (k = 0; k < 3; k++)
		assert_body(r.data[k], r.len[k], fx.msgs[k + 2]);
	reply_free(&r);
	request1(fx.svc_url, "{\"seq_id_range\":[1,10]}", &r);
	assert_int_equal(r.n, 10);
	for (k = 0; k < 10; k++)
		assert_body(r.data[k], r.len[k], fx.msgs[k + 1]);
	reply_free(&r);

	/* errors, exactly as fedmsg frames them */
	expect_error_frame(fx.svc_url, "{\"key\":1}",
	    "error: 'Unsupported field: \"key\"'");
	expect_error_frame(fx.svc_url, "{\"seq_id\":999}",
	    "error: 'There was no match for the given query'");
	expect_error_frame(fx.svc_url, "{\"seq_id\":\"1\"}",
	    "error: 'seq_id must be an integer'");
	expect_error_frame(fx.svc_url, "[]",
	    "error: 'query is not a JSON object'");

	/* more than one frame; too large: still a reply */
	request(fx.svc_url, parts, lens, 2, &r);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.data[0], "error: 'a query is one frame, not 2'");
	reply_free(&r);
	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"seq_id\":1}", 12);
	parts[0] = big;
	lens[0] = sizeof(big);
	request(fx.svc_url, parts, lens, 1, &r);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.data[0], "error: 'query too large: 71680 bytes, "
	    "limit 65536'");
	reply_free(&r);
	/* an empty frame is not JSON */
	lens[0] = 0;
	request(fx.svc_url, parts, lens, 1, &r);
	assert_int_equal(r.n, 1);
	assert_true(strncmp(r.data[0], "error: 'query is not valid JSON: ",
	    33) == 0);
	reply_free(&r);

	/* and it still answers */
	request1(fx.svc_url, "{\"msg_id\":\"id-7\"}", &r);
	assert_int_equal(r.n, 1);
	assert_body(r.data[0], r.len[0], fx.msgs[7]);
	reply_free(&r);
}

static void
test_server_exact_bytes(void **state)
{
	static const char text[] = "{\"i\": 4242, \"topic\": \"org.x\", "
	    "\"msg\": {\"z\": \"caf\\u00e9\", \"a\": 1.50, "
	    "\"b\": \"\xc3\xa9\"}, "
	    "\"timestamp\": 1e3, \"msg_id\": \"odd\", \"signature\": \"abc=\"}";
	struct fm_msg *m = parse(text);
	struct reply r;

	(void)state;
	replay_store_add(fx.st, m);
	fm_msg_unref(m);
	request1(fx.svc_url, "{\"seq_id\":4242}", &r);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.len[0], strlen(text));
	assert_memory_equal(r.data[0], text, strlen(text));
	reply_free(&r);
}

static void
test_server_start_stop(void **state)
{
	struct replay_store *st = replay_store_new(10, 1 << 20);
	struct replay_server *srv;
	char err[FM_ERRLEN], url[64];
	struct reply r;
	int64_t t0;

	(void)state;
	/* the port is taken by the fixture's server */
	err[0] = '\0';
	assert_null(replay_server_start(fx.cfg, fx.svc_url, st, err));
	assert_non_null(strstr(err, fx.svc_url));
	err[0] = '\0';
	assert_null(replay_server_start(fx.cfg, "nonsense", st, err));
	assert_string_equal(err, "replay endpoint nonsense: not a "
	    "tcp://host:port URL");
	err[0] = '\0';
	assert_null(replay_server_start(fx.cfg, "tcp://127.0.0.1", st, err));
	assert_true(err[0] != '\0');

	/* ipc binds as given; stopping is prompt, idle or after work */
	snprintf(url, sizeof(url), "ipc://%s/replay.sock", fx.dir);
	srv = replay_server_start(fx.cfg, url, st, err);
	if (srv == NULL)
		fail_msg("%s", err);
	expect_error_frame(url, "{}",
	    "error: 'There was no match for the given query'");
	t0 = now_ms();
	replay_server_stop(srv);
	assert_true(now_ms() - t0 < 1000);
	replay_server_stop(NULL);
	/* the port is free again */
	srv = replay_server_start(fx.cfg, url, st, err);
	if (srv == NULL)
		fail_msg("%s", err);
	request1(url, "{}", &r);
	assert_int_equal(r.n, 1);
	reply_free(&r);
	replay_server_stop(srv);
	replay_store_free(st);
	unlink(url + 6);
}

/* ---- gap tracking ----------------------------------------------------- */

static struct gap_tracker *
tracker(void)
{
	struct gap_tracker *gt = gap_tracker_new(fx.cfg);

	assert_non_null(gt);
	return gt;
}

/* gap_check on a message expected to reveal nothing. */
static void
expect_no_gap(struct gap_tracker *gt, const char *name,
    const struct fm_msg *m)
{
	struct fm_msg **missing = (struct fm_msg **)1;

	assert_int_equal(gap_check(gt, name, m, 1000, &missing), 0);
	assert_null(missing);
}

static void
expect_stats(const struct gap_tracker *gt, uint64_t missed,
    uint64_t recovered)
{
	uint64_t a, b;

	gap_stats(gt, &a, &b);
	assert_int_equal(a, missed);
	assert_int_equal(b, recovered);
}

static void
test_gap_fill(void **state)
{
	struct gap_tracker *gt = tracker();
	struct fm_msg **missing;
	ssize_t n;
	int k;

	(void)state;
	expect_stats(gt, 0, 0);
	expect_no_gap(gt, "svc", fx.msgs[1]);
	expect_no_gap(gt, "svc", fx.msgs[2]);
	/* 6 after 2: 3, 4, 5 come from the replay server, exact bytes */
	n = gap_check(gt, "svc", fx.msgs[6], 2000, &missing);
	assert_int_equal(n, 3);
	for (k = 0; k < 3; k++) {
		size_t len;
		const char *b = fm_msg_body(missing[k], &len);

		assert_body(b, len, fx.msgs[k + 3]);
		assert_int_equal(seq_of(missing[k]), k + 3);
	}
	unref_all(missing, n);
	expect_stats(gt, 3, 3);
	expect_no_gap(gt, "svc", fx.msgs[7]);
	/* a duplicate: nothing, and 8 is still next */
	expect_no_gap(gt, "svc", fx.msgs[7]);
	expect_no_gap(gt, "svc", fx.msgs[8]);
	/* a restart: lower "i", tracking starts again */
	expect_no_gap(gt, "svc", fx.msgs[2]);
	expect_no_gap(gt, "svc", fx.msgs[3]);
	n = gap_check(gt, "svc", fx.msgs[5], 2000, &missing);
	assert_int_equal(n, 1);
	assert_int_equal(seq_of(missing[0]), 4);
	unref_all(missing, n);
	expect_stats(gt, 4, 4);
	/* a partly fillable gap: what the store still has */
	{
		struct fm_msg *m = make(30, 3000, 30);

		n = gap_check(gt, "svc", m, 2000, &missing);
		assert_int_equal(n, 5);
		for (k = 0; k < 5; k++)
			assert_ptr_not_equal(missing[k], fx.msgs[k + 6]);
		for (k = 0; k < 5; k++)
			assert_int_equal(seq_of(missing[k]), k + 6);
		unref_all(missing, n);
		fm_msg_unref(m);
		expect_stats(gt, 28, 9);
	}
	/* a gap the server cannot fill: it says so, -1, last moves on */
	{
		struct fm_msg *m = make(40, 3000, 40);

		missing = (struct fm_msg **)1;
		n = gap_check(gt, "svc", m, 2000, &missing);
		assert_int_equal(n, -1);
		assert_null(missing);
		fm_msg_unref(m);
		expect_stats(gt, 37, 9);
		m = make(41, 3000, 41);
		expect_no_gap(gt, "svc", m);
		fm_msg_unref(m);
	}
	gap_tracker_free(gt);
}

static void
test_gap_untracked(void **state)
{
	struct gap_tracker *gt = tracker();
	struct fm_msg *no_i = parse("{\"topic\":\"t\",\"msg_id\":\"x\"}");
	struct fm_msg *str_i = parse("{\"topic\":\"t\",\"i\":\"9\"}");
	struct fm_config *cfg;
	char err[FM_ERRLEN], path[128];
	FILE *f;

	(void)state;
	/* names not in replay_endpoints */
	expect_no_gap(gt, "other", fx.msgs[1]);
	expect_no_gap(gt, "other", fx.msgs[9]);
	/* messages without an integer "i" do not move the tracking */
	expect_no_gap(gt, "svc", fx.msgs[1]);
	expect_no_gap(gt, "svc", no_i);
	expect_no_gap(gt, "svc", str_i);
	expect_no_gap(gt, "svc", fx.msgs[2]);
	expect_stats(gt, 0, 0);
	gap_tracker_free(gt);
	gap_tracker_free(NULL);
	expect_stats(NULL, 0, 0);
	{
		struct fm_msg **missing = (struct fm_msg **)1;

		assert_int_equal(gap_check(NULL, "svc", fx.msgs[1], 10,
		    &missing), 0);
		assert_null(missing);
	}

	/* no replay_endpoints, or an empty one: no tracker */
	snprintf(path, sizeof(path), "%s/none.json", fx.dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("{\"replay_endpoints\": {}}", f);
	fclose(f);
	assert_int_equal(fm_config_load(path, &cfg, err), 0);
	assert_null(gap_tracker_new(cfg));
	fm_config_free(cfg);
	assert_non_null(f = fopen(path, "w"));
	fputs("{}", f);
	fclose(f);
	assert_int_equal(fm_config_load(path, &cfg, err), 0);
	assert_null(gap_tracker_new(cfg));
	fm_config_free(cfg);
	unlink(path);

	fm_msg_unref(no_i);
	fm_msg_unref(str_i);
}

/* A URL whose host is "*" is connected as 127.0.0.1. */
static void
test_gap_star_host(void **state)
{
	struct gap_tracker *gt = tracker();
	struct fm_msg **missing;
	ssize_t n;

	(void)state;
	expect_no_gap(gt, "star", fx.msgs[4]);
	n = gap_check(gt, "star", fx.msgs[7], 2000, &missing);
	assert_int_equal(n, 2);
	assert_int_equal(seq_of(missing[0]), 5);
	assert_int_equal(seq_of(missing[1]), 6);
	unref_all(missing, n);
	gap_tracker_free(gt);
}

static void
test_gap_server_down(void **state)
{
	struct gap_tracker *gt = tracker();
	struct fm_msg **missing = (struct fm_msg **)1;
	int64_t t0, dt;

	(void)state;
	expect_no_gap(gt, "down", fx.msgs[1]);
	t0 = now_ms();
	assert_int_equal(gap_check(gt, "down", fx.msgs[5], 300, &missing), -1);
	dt = now_ms() - t0;
	assert_null(missing);
	assert_true(dt >= 250 && dt < 1500);
	expect_stats(gt, 3, 0);
	/* the gap was recorded: 6 follows 5 */
	expect_no_gap(gt, "down", fx.msgs[6]);
	gap_tracker_free(gt);
}

/* A gap larger than one query asks for: only the newest 10000. */
static void
test_gap_clipped(void **state)
{
	struct gap_tracker *gt = tracker();
	struct fm_msg *m[4], **missing;
	static const int64_t seqs[4] = { 10004, 10005, 20004, 20005 };
	ssize_t n;
	int k;

	(void)state;
	for (k = 0; k < 4; k++) {
		m[k] = make(seqs[k], 4000 + k, 500 + k);
		if (k < 3)
			replay_store_add(fx.st, m[k]);
	}
	expect_no_gap(gt, "svc", fx.msgs[1]);
	n = gap_check(gt, "svc", m[3], 2000, &missing);
	/* asked for [10005, 20004]: 10004 is not asked for */
	assert_int_equal(n, 2);
	assert_int_equal(seq_of(missing[0]), 10005);
	assert_int_equal(seq_of(missing[1]), 20004);
	unref_all(missing, n);
	expect_stats(gt, 20003, 2);
	for (k = 0; k < 4; k++)
		fm_msg_unref(m[k]);
	gap_tracker_free(gt);
}

/*
 * A scripted REP server: for each script in turn, records the request and
 * sends the script's frames.  One socket for all (a closed TCP listener
 * is released asynchronously, so the port cannot be bound again at once).
 */
struct script {
	const char	*const *frames;
	size_t		 n;
};

struct fake {
	void			*sock;
	const struct script	*s;
	size_t			 ns;
	char			 query[4][256];
	size_t			 answered;
	pthread_t		 thread;
};

static void *
fake_main(void *arg)
{
	struct fake *fk = arg;
	size_t k;
	int n;

	for (; fk->answered < fk->ns; fk->answered++) {
		const struct script *sc = &fk->s[fk->answered];

		n = zmq_recv(fk->sock, fk->query[fk->answered],
		    sizeof(fk->query[0]) - 1, 0);
		if (n < 0)
			return NULL;
		fk->query[fk->answered][n] = '\0';
		for (k = 0; k < sc->n; k++)
			zmq_send(fk->sock, sc->frames[k], strlen(sc->frames[k]),
			    k + 1 < sc->n ? ZMQ_SNDMORE : 0);
	}
	return NULL;
}

static void
fake_start(struct fake *fk, const struct script *s, size_t ns)
{
	int linger = 0, tmo = 3000;

	memset(fk, 0, sizeof(*fk));
	assert_true(ns <= 4);
	fk->s = s;
	fk->ns = ns;
	assert_non_null(fk->sock = zmq_socket(zep_context(fx.cfg), ZMQ_REP));
	zmq_setsockopt(fk->sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(fk->sock, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	assert_int_equal(zmq_bind(fk->sock, fx.fake_url), 0);
	assert_int_equal(pthread_create(&fk->thread, NULL, fake_main, fk), 0);
}

static void
fake_stop(struct fake *fk)
{
	assert_int_equal(pthread_join(fk->thread, NULL), 0);
	zmq_close(fk->sock);
	assert_int_equal(fk->answered, fk->ns);
}

static void
test_gap_bad_replies(void **state)
{
	struct gap_tracker *gt = tracker();
	struct fm_msg *m12 = make(12, 3000, 12);
	struct fake fk;
	char b3[1024], b4[1024], b9[1024];
	const char *mixed[7], *error[1], *junk[1];
	struct script scripts[3] = {
		{ mixed, 7 }, { error, 1 }, { junk, 1 },
	};
	ssize_t n1, n2, n3;
	struct fm_msg **miss1, **miss2 = (struct fm_msg **)1;
	struct fm_msg **miss3 = (struct fm_msg **)1;
	uint64_t st1[2], st2[2], st3[2];

	(void)state;
	snprintf(b3, sizeof(b3), "%s", fm_msg_body(fx.msgs[3], NULL));
	snprintf(b4, sizeof(b4), "%s", fm_msg_body(fx.msgs[4], NULL));
	snprintf(b9, sizeof(b9), "%s", fm_msg_body(fx.msgs[9], NULL));
	/* junk, out of range, unsorted, duplicated: 3 and 4 are kept */
	mixed[0] = "not json";
	mixed[1] = b4;
	mixed[2] = b9;
	mixed[3] = "[1,2]";
	mixed[4] = b3;
	mixed[5] = b4;
	mixed[6] = "{\"topic\":\"t\"}";
	error[0] = "error: 'Something went wrong'";
	junk[0] = "junk";

	expect_no_gap(gt, "fake", fx.msgs[2]);
	fake_start(&fk, scripts, 3);
	n1 = gap_check(gt, "fake", fx.msgs[6], 2000, &miss1);
	gap_stats(gt, &st1[0], &st1[1]);
	/* an error reply */
	n2 = gap_check(gt, "fake", fx.msgs[9], 2000, &miss2);
	gap_stats(gt, &st2[0], &st2[1]);
	/* a reply with nothing usable: nothing to fill */
	n3 = gap_check(gt, "fake", m12, 2000, &miss3);
	gap_stats(gt, &st3[0], &st3[1]);
	fake_stop(&fk);

	/* exactly the missing ranges, canonical JSON */
	assert_string_equal(fk.query[0], "{\"seq_id_range\":[3,5]}");
	assert_string_equal(fk.query[1], "{\"seq_id_range\":[7,8]}");
	assert_string_equal(fk.query[2], "{\"seq_id_range\":[10,11]}");
	assert_int_equal(n1, 2);
	assert_body(b3, strlen(b3), miss1[0]);
	assert_body(b4, strlen(b4), miss1[1]);
	unref_all(miss1, n1);
	assert_int_equal(st1[0], 3);
	assert_int_equal(st1[1], 2);
	assert_int_equal(n2, -1);
	assert_null(miss2);
	assert_int_equal(st2[0], 5);
	assert_int_equal(st2[1], 2);
	assert_int_equal(n3, 0);
	assert_null(miss3);
	assert_int_equal(st3[0], 7);
	assert_int_equal(st3[1], 2);
	fm_msg_unref(m12);
	gap_tracker_free(gt);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_bounds),
		cmocka_unit_test(test_query_keys),
		cmocka_unit_test(test_query_errors),
		cmocka_unit_test(test_query_order),
		cmocka_unit_test(test_exact_bytes_store),
		cmocka_unit_test(test_store_model),
		cmocka_unit_test(test_store_threads),
		cmocka_unit_test(test_server_replies),
		cmocka_unit_test(test_server_exact_bytes),
		cmocka_unit_test(test_server_start_stop),
		cmocka_unit_test(test_gap_fill),
		cmocka_unit_test(test_gap_untracked),
		cmocka_unit_test(test_gap_star_host),
		cmocka_unit_test(test_gap_server_down),
		cmocka_unit_test(test_gap_clipped),
		cmocka_unit_test(test_gap_bad_replies),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
