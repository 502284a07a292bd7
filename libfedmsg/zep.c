/*
 * ZeroMQ plumbing shared by every fedmsg-c program (see zep.h).
 */
#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "sched_batch.h"
#include "utf8.h"
#include "zep.h"

static void *context;
static pthread_mutex_t context_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * The I/O threads are SCHED_BATCH (sched_batch.h): pinned to one CPU, a
 * validating relay's I/O thread preempted the verifying thread every
 * third message.  libzmq aborts when it cannot set a policy it was given,
 * hence the test first.
 */
void *
zep_context_new(const struct fm_config *cfg)
{
	void *ctx = zmq_ctx_new();

	if (ctx && cfg && cfg->io_threads > 0)
		zmq_ctx_set(ctx, ZMQ_IO_THREADS, (int)cfg->io_threads);
	if (ctx && sched_batch_possible())
		zmq_ctx_set(ctx, ZMQ_THREAD_SCHED_POLICY, SCHED_BATCH);
	return ctx;
}

void
zep_close_now(void *sock)
{
	int zero = 0;

	if (sock) {
		zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_close(sock);
	}
}

void *
zep_context(const struct fm_config *cfg)
{
	pthread_mutex_lock(&context_lock);
	if (context == NULL)
		context = zep_context_new(cfg);
	pthread_mutex_unlock(&context_lock);
	return context;
}

void
zep_shutdown(void)
{
	pthread_mutex_lock(&context_lock);
	if (context)
		zmq_ctx_term(context);
	context = NULL;
	pthread_mutex_unlock(&context_lock);
}

/* Set an int option from config key when the key is present. */
static void
opt_from(void *sock, const struct fm_config *cfg, const char *key, int opt)
{
	json_t *v = fm_config_get(cfg, key);
	int n;

	if (!json_is_integer(v))
		return;
	n = (int)json_integer_value(v);
	if (zmq_setsockopt(sock, opt, &n, sizeof(n)) < 0)
		log_warn("%s=%d: %s", key, n, zmq_strerror(errno));
}

void
zep_apply_options(void *sock, const struct fm_config *cfg, bool sub)
{
	int64_t maxmsg;
	size_t len = sizeof(int);
	int type = -1;

	if (cfg == NULL)
		return;
	/*
	 * libzmq reads a whole frame into memory before we can look at it:
	 * without a limit one peer makes us allocate whatever it announces.
	 * With it, libzmq drops the connection of a peer whose frame header
	 * announces more (PUB sockets too: subscriptions are frames).  It
	 * bounds each frame, not their number: see README, Limits.
	 */
	maxmsg = (int64_t)(cfg->limits.max_message_bytes ?
	    cfg->limits.max_message_bytes : FM_DEFAULT_MAX_MESSAGE_BYTES);
	/*
	 * A PUB receives only subscriptions, topic prefixes, which libzmq
	 * keeps in a tree of some 32 bytes per byte: at max_message_bytes a
	 * subscriber of a gateway made it hold gigabytes.
	 */
	if (zmq_getsockopt(sock, ZMQ_TYPE, &type, &len) == 0 &&
	    (type == ZMQ_PUB || type == ZMQ_XPUB) &&
	    maxmsg > ZEP_MAX_SUBSCRIPTION)
		maxmsg = ZEP_MAX_SUBSCRIPTION;
	if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0)
		log_warn("max_message_bytes=%lld: %s", (long long)maxmsg,
		    zmq_strerror(errno));
	if (cfg->high_water_mark > 0) {
		int hwm = (int)cfg->high_water_mark;

		zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
		zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	}
	opt_from(sock, cfg, "zmq_tcp_keepalive", ZMQ_TCP_KEEPALIVE);
	opt_from(sock, cfg, "zmq_tcp_keepalive_cnt", ZMQ_TCP_KEEPALIVE_CNT);
	opt_from(sock, cfg, "zmq_tcp_keepalive_idle", ZMQ_TCP_KEEPALIVE_IDLE);
	opt_from(sock, cfg, "zmq_tcp_keepalive_intvl", ZMQ_TCP_KEEPALIVE_INTVL);
	if (sub) {
		opt_from(sock, cfg, "zmq_reconnect_ivl", ZMQ_RECONNECT_IVL);
		opt_from(sock, cfg, "zmq_reconnect_ivl_max",
		    ZMQ_RECONNECT_IVL_MAX);
	}
}

static bool
is_loopback(const char *host, size_t n)
{
	return (n == 9 && memcmp(host, "localhost", 9) == 0) ||
	    (n >= 4 && memcmp(host, "127.", 4) == 0) ||
	    (n == 5 && memcmp(host, "[::1]", 5) == 0);
}

int
zep_bind_url(const char *url, char *out, size_t len)
{
	const char *host, *colon;

	if (strncmp(url, "tcp://", 6) != 0) {
		/* ipc:// and inproc:// bind as given */
		if (strstr(url, "://") == NULL)
			return -1;
		snprintf(out, len, "%s", url);
		return 0;
	}
	host = url + 6;
	if ((colon = strrchr(host, ':')) == NULL || colon[1] == '\0')
		return -1;
	if (strncmp(host, "localhost:", 10) == 0)
		snprintf(out, len, "tcp://127.0.0.1%s", colon);
	else if (is_loopback(host, (size_t)(colon - host)))
		snprintf(out, len, "%s", url);
	else
		snprintf(out, len, "tcp://*%s", colon);
	return 0;
}

void *
zep_bind_first(void *ctx, const struct fm_config *cfg, int type,
    const char *const *urls, size_t n, bool rewrite, char *bound, size_t len,
    char *err)
{
	void *sock;
	int linger = 0;
	size_t i;

	if (ctx == NULL || (sock = zmq_socket(ctx, type)) == NULL) {
		snprintf(err, FM_ERRLEN, "zmq socket: %s", zmq_strerror(errno));
		return NULL;
	}
	zep_apply_options(sock, cfg, type == ZMQ_SUB || type == ZMQ_XSUB);
	for (i = 0; i < n; i++) {
		char url[512];

		if (rewrite ? zep_bind_url(urls[i], url, sizeof(url)) < 0 :
		    snprintf(url, sizeof(url), "%s", urls[i]) < 0) {
			log_warn("%s: not a tcp://host:port URL", urls[i]);
			continue;
		}
		if (zmq_bind(sock, url) == 0) {
			snprintf(bound, len, "%s", url);
			return sock;
		}
		log_debug("bind %s: %s", url, zmq_strerror(errno));
	}
	snprintf(err, FM_ERRLEN, "couldn't bind any of %zu endpoint(s)%s%s: "
	    "%s", n, n ? ", first " : "", n ? urls[0] : "",
	    n ? zmq_strerror(errno) : "none configured");
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_close(sock);
	return NULL;
}

static void
drain(void *sock)
{
	zmq_msg_t m;
	int more;

	do {
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return;
		}
		more = zmq_msg_more(&m);
		zmq_msg_close(&m);
	} while (more);
}

enum zep_rc
zep_recv(void *sock, int flags, size_t max_body, struct zep_frames *f)
{
	enum zep_rc rc = ZEP_OK;

	zmq_msg_init(&f->topic);
	if (zmq_msg_recv(&f->topic, sock, flags) < 0) {
		zmq_msg_close(&f->topic);
		return errno == EAGAIN ? ZEP_AGAIN : ZEP_ERROR;
	}
	if (!zmq_msg_more(&f->topic)) {
		zmq_msg_close(&f->topic);
		return ZEP_BAD_COUNT;
	}
	/* Frames of one message arrive together: this never waits. */
	zmq_msg_init(&f->body);
	if (zmq_msg_recv(&f->body, sock, 0) < 0) {
		zmq_msg_close(&f->topic);
		zmq_msg_close(&f->body);
		return ZEP_ERROR;
	}
	if (zmq_msg_more(&f->body)) {
		drain(sock);
		rc = ZEP_BAD_COUNT;
	} else if (zmq_msg_size(&f->body) > max_body ||
	    zmq_msg_size(&f->topic) > max_body) {
		rc = ZEP_TOO_BIG;
	}
	if (rc != ZEP_OK) {
		zmq_msg_close(&f->topic);
		zmq_msg_close(&f->body);
	}
	return rc;
}

void
zep_frames_close(struct zep_frames *f)
{
	zmq_msg_close(&f->topic);
	zmq_msg_close(&f->body);
}

int
zep_poll_for(zmq_pollitem_t *items, int n, int timeout_ms)
{
	int64_t start = clock_ms();
	int left = timeout_ms, rc;

	while ((rc = zmq_poll(items, n, left)) < 0 && errno == EINTR &&
	    timeout_ms >= 0) {
		left = timeout_ms - (int)(clock_ms() - start);
		if (left <= 0)
			return 0;
	}
	return rc;
}

int
zep_send(void *sock, const char *topic, size_t topic_len, const void *body,
    size_t body_len)
{
	if (zmq_send(sock, topic, topic_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return -1;
	/* The first frame is queued, so the second cannot be refused. */
	if (zmq_send(sock, body, body_len, ZMQ_DONTWAIT) < 0)
		return -1;
	return 0;
}

int
zep_send_msg(void *sock, const struct fm_msg *msg)
{
	const char *topic = fm_msg_topic(msg);
	size_t len;
	const char *body = fm_msg_body(msg, &len);

	if (topic == NULL) {
		errno = EINVAL;
		return -1;
	}
	return zep_send(sock, topic, strlen(topic), body, len);
}

bool
zep_topic_matches(const struct zep_frames *f, const struct fm_msg *msg)
{
	const char *topic = fm_msg_topic(msg);
	const unsigned char *frame = zmq_msg_data((zmq_msg_t *)&f->topic);
	size_t n = zmq_msg_size((zmq_msg_t *)&f->topic);

	/* A frame Python subscribers cannot decode is not forwarded either. */
	return topic && strlen(topic) == n && memcmp(topic, frame, n) == 0 &&
	    utf8_invalid_at(frame, n) == n;
}
