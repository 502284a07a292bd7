/*
 * The replay server (replay.h): one request at a time on a REP socket in a
 * thread of its own, polling with a short timeout so that
 * replay_server_stop() returns promptly.
 */

#include <sys/types.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "config.h"
#include "log.h"
#include "replay.h"
#include "zep.h"

/* Requests above this are answered with an error. */
#define REPLAY_MAX_REQUEST	(64u * 1024)
/* Frames above this drop the requester's connection (never delivered). */
#define REPLAY_MAX_FRAME	(1024 * 1024)
/* Poll period of the server thread: the latency of replay_server_stop(). */
#define REPLAY_POLL_MS		200
/* A stuck requester cannot hold a reply longer than this. */
#define REPLAY_SEND_TIMEOUT_MS	1000
/* unread replies (and unanswered requests) kept per connection */
#define REPLAY_QUEUED		4

struct replay_server {
	pthread_t		 thread;
	void			*sock;
	struct replay_store	*st;
	atomic_bool		 stop;
	char			 url[512];
};

static void
send_error(struct replay_server *srv, const char *text)
{
	char frame[FM_ERRLEN + 16];
	int n = snprintf(frame, sizeof(frame), "error: '%s'", text);

	log_debug("replay %s: %s", srv->url, text);
	if (zmq_send(srv->sock, frame, (size_t)n, 0) < 0)
		log_warn("replay %s: send: %s", srv->url, zmq_strerror(errno));
}

/* zmq frees a zero-copy frame through this (possibly from an I/O thread). */
static void
unref_frame(void *data, void *hint)
{
	(void)data;
	fm_msg_unref(hint);
}

static void
send_messages(struct replay_server *srv, struct fm_msg **msgs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		size_t len;
		const char *body = fm_msg_body(msgs[i], &len);
		zmq_msg_t m;

		if (zmq_msg_init_data(&m, (void *)body, len, unref_frame,
		    msgs[i]) < 0) {
			log_warn("replay %s: %s", srv->url,
			    zmq_strerror(errno));
			break;
		}
		msgs[i] = NULL;	/* the frame owns the reference */
		if (zmq_msg_send(&m, srv->sock, i + 1 < n ? ZMQ_SNDMORE : 0)
		    < 0) {
			log_warn("replay %s: send: %s", srv->url,
			    zmq_strerror(errno));
			zmq_msg_close(&m);
			break;
		}
	}
	for (; i < n; i++)
		fm_msg_unref(msgs[i]);
}

/* Read one request and send its reply (REP: there must be one). */
static void
serve_one(struct replay_server *srv)
{
	zmq_msg_t req;
	struct fm_msg **msgs;
	char err[FM_ERRLEN];
	bool more;
	size_t frames = 1;
	ssize_t n;

	zmq_msg_init(&req);
	if (zmq_msg_recv(&req, srv->sock, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&req);
		if (errno != EAGAIN && errno != EINTR)
			log_warn("replay %s: receive: %s", srv->url,
			    zmq_strerror(errno));
		return;
	}
	/* The frames of one message arrive together. */
	for (more = zmq_msg_more(&req); more; frames++) {
		zmq_msg_t extra;

		zmq_msg_init(&extra);
		if (zmq_msg_recv(&extra, srv->sock, 0) < 0) {
			zmq_msg_close(&extra);
			break;
		}
		more = zmq_msg_more(&extra);
		zmq_msg_close(&extra);
	}
	if (frames > 1) {
		snprintf(err, sizeof(err), "a query is one frame, not %zu",
		    frames);
		send_error(srv, err);
	} else if (zmq_msg_size(&req) > REPLAY_MAX_REQUEST) {
		snprintf(err, sizeof(err), "query too large: %zu bytes, "
		    "limit %u", zmq_msg_size(&req), REPLAY_MAX_REQUEST);
		send_error(srv, err);
	} else if ((n = replay_store_query(srv->st, zmq_msg_data(&req),
	    zmq_msg_size(&req), &msgs, err)) < 0) {
		send_error(srv, err);
	} else {
		log_debug("replay %s: %zd message(s)", srv->url, n);
		send_messages(srv, msgs, (size_t)n);
		free(msgs);
	}
	zmq_msg_close(&req);
}

static void *
server_main(void *arg)
{
	struct replay_server *srv = arg;

	while (!atomic_load(&srv->stop)) {
		zmq_pollitem_t pi = { srv->sock, 0, ZMQ_POLLIN, 0 };
		int rc = zmq_poll(&pi, 1, REPLAY_POLL_MS);

		if (rc < 0) {
			if (errno == EINTR)
				continue;
			if (errno != ETERM)
				log_err("replay %s: poll: %s", srv->url,
				    zmq_strerror(errno));
			break;
		}
		if (rc > 0 && (pi.revents & ZMQ_POLLIN))
			serve_one(srv);
	}
	zmq_close(srv->sock);
	srv->sock = NULL;
	return NULL;
}

struct replay_server *
replay_server_start(const struct fm_config *cfg, const char *url,
    struct replay_store *st, char *err)
{
	struct replay_server *srv;
	void *ctx = zep_context(cfg);
	int linger = 0, sndtimeo = REPLAY_SEND_TIMEOUT_MS, rc;
	int64_t maxmsg = REPLAY_MAX_FRAME;
	int queued = REPLAY_QUEUED;

	if (st == NULL) {
		snprintf(err, FM_ERRLEN, "replay %s: no store", url);
		return NULL;
	}
	if ((srv = calloc(1, sizeof(*srv))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	srv->st = st;
	atomic_init(&srv->stop, false);
	if (zep_bind_url(url, srv->url, sizeof(srv->url)) < 0) {
		snprintf(err, FM_ERRLEN, "replay endpoint %s: not a "
		    "tcp://host:port URL", url);
		free(srv);
		return NULL;
	}
	if (ctx == NULL || (srv->sock = zmq_socket(ctx, ZMQ_REP)) == NULL) {
		snprintf(err, FM_ERRLEN, "zmq socket: %s", zmq_strerror(errno));
		free(srv);
		return NULL;
	}
	zep_apply_options(srv->sock, cfg, false);
	zmq_setsockopt(srv->sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(srv->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof(sndtimeo));
	zmq_setsockopt(srv->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	/*
	 * A reply holds a reference to every message it names.  A client
	 * may pipeline queries (REP allows a DEALER) and read nothing: past
	 * REPLAY_QUEUED unread replies per connection libzmq drops the next
	 * ones, instead of holding up to 1000 (its default).
	 */
	zmq_setsockopt(srv->sock, ZMQ_SNDHWM, &queued, sizeof(queued));
	zmq_setsockopt(srv->sock, ZMQ_RCVHWM, &queued, sizeof(queued));
	if (zmq_bind(srv->sock, srv->url) < 0) {
		snprintf(err, FM_ERRLEN, "replay endpoint %s: bind %s: %s", url,
		    srv->url, zmq_strerror(errno));
		goto fail;
	}
	/* pthread_create is a full barrier: the socket may change threads. */
	if ((rc = pthread_create(&srv->thread, NULL, server_main, srv)) != 0) {
		snprintf(err, FM_ERRLEN, "replay thread: %s", strerror(rc));
		goto fail;
	}
	log_debug("replay server on %s", srv->url);
	return srv;
fail:
	zmq_close(srv->sock);
	free(srv);
	return NULL;
}

void
replay_server_stop(struct replay_server *srv)
{
	if (srv == NULL)
		return;
	atomic_store(&srv->stop, true);
	pthread_join(srv->thread, NULL);
	free(srv);
}
