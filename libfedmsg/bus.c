/*
 * Publishing and subscribing on fedmsg's ZeroMQ endpoints (bus.h).
 *
 * Active publishers use an XPUB socket rather than PUB: it sends the same
 * frames, and it lets us see the relay's subscription arrive.  Waiting for
 * it replaces fedmsg's blind post_init_sleep, and when nobody answers we
 * fail with a clear error instead of queueing messages into the void.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <fedmsg/bus.h>
#include <fedmsg/crypto.h>

#include "bus_internal.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "replay.h"
#include "zep.h"

/* Replay store bounds for publishers with a replay endpoint. */
#define REPLAY_MAX_MSGS		10000
#define REPLAY_MAX_BYTES	(64u * 1024 * 1024)
/* How long a subscriber waits for a replay endpoint to fill a gap. */
#define REPLAY_TIMEOUT_MS	2000

struct fm_publisher {
	struct fm_config	*own_cfg;	/* when opened from a path */
	const struct fm_config	*cfg;
	void			*ctx;		/* our own: closing it flushes */
	void			*sock;
	bool			 active;
	int			 send_timeout_ms;
	char			 endpoint[512];
	struct fm_signer	*signer;
	int64_t			 i;
	struct replay_store	*store;
	struct replay_server	*replay;
};

static int
open_config(const struct fm_bus_opts *o, struct fm_config **own,
    const struct fm_config **cfg, char *err)
{
	*own = NULL;
	if (o->config) {
		*cfg = o->config;
		return 0;
	}
	if (fm_config_load(o->config_path, own, err) < 0)
		return -1;
	*cfg = *own;
	return 0;
}

static void
sleep_seconds(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Which certnames key signs for us (fedmsg.core.FedMsgContext.publish). */
static void
cert_key(const struct fm_bus_opts *o, const struct fm_config *cfg,
    const char *name, char *out, size_t len)
{
	json_t *prefix = fm_config_get(cfg, "cert_prefix");
	const char *p = o->cert_prefix ? o->cert_prefix :
	    json_is_string(prefix) ? json_string_value(prefix) : NULL;

	if (p)
		snprintf(out, len, "%s.%s", p, fm_short_hostname());
	else if (strcmp(name, "relay_inbound") == 0)
		snprintf(out, len, "shell.%s", fm_short_hostname());
	else
		snprintf(out, len, "%s", name);
}

/* Connect an XPUB to the relay and wait for its subscription. */
static void *
connect_active(void *ctx, const struct fm_config *cfg,
    const struct fm_bus_opts *o, char *url, size_t len, char *err)
{
	int timeout = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 2000;
	int linger = (int)cfg->zmq_linger;
	zmq_pollitem_t item;
	void *sock;
	zmq_msg_t sub;
	int rc;

	if (cfg->relay_inbound == NULL) {
		snprintf(err, FM_ERRLEN, "active mode needs relay_inbound in "
		    "the config");
		return NULL;
	}
	snprintf(url, len, "%s", cfg->relay_inbound);
	if ((sock = zmq_socket(ctx, ZMQ_XPUB)) == NULL) {
		snprintf(err, FM_ERRLEN, "zmq socket: %s", zmq_strerror(errno));
		return NULL;
	}
	zep_apply_options(sock, cfg, false);
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	/* A full queue makes send wait (bounded) instead of dropping. */
	zmq_setsockopt(sock, ZMQ_XPUB_NODROP, &(int){ 1 }, sizeof(int));
	if (zmq_connect(sock, url) < 0) {
		snprintf(err, FM_ERRLEN, "connect %s: %s", url,
		    zmq_strerror(errno));
		goto fail;
	}
	item = (zmq_pollitem_t){ sock, 0, ZMQ_POLLIN, 0 };
	rc = zep_poll_for(&item, 1, timeout);
	if (rc <= 0) {
		snprintf(err, FM_ERRLEN, "no relay is listening on %s (no "
		    "subscriber within %d ms)", url, timeout);
		goto fail;
	}
	zmq_msg_init(&sub);
	zmq_msg_recv(&sub, sock, ZMQ_DONTWAIT);
	zmq_msg_close(&sub);
	return sock;
fail:
	linger = 0;
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_close(sock);
	return NULL;
}

struct fm_publisher *
fm_publisher_open(const struct fm_bus_opts *o, char *err)
{
	struct fm_publisher *p;
	const char *name;
	bool active;
	char key[256];

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	if (open_config(o, &p->own_cfg, &p->cfg, err) < 0)
		goto fail;
	active = o->active >= 0 ? o->active != 0 : p->cfg->active;
	name = o->name ? o->name : p->cfg->name ? p->cfg->name :
	    active ? "relay_inbound" : NULL;
	if (name == NULL) {
		snprintf(err, FM_ERRLEN, "no service name: set \"name\" in the "
		    "config (fedmsg-c does not guess it from a call stack)");
		goto fail;
	}
	if (o->sign < 0 ? p->cfg->sign_messages : o->sign != 0) {
		cert_key(o, p->cfg, name, key, sizeof(key));
		if ((p->signer = fm_config_signer(p->cfg, key, err)) == NULL)
			goto fail;
	}
	if ((p->ctx = zep_context_new(p->cfg)) == NULL) {
		snprintf(err, FM_ERRLEN, "zmq context: %s", zmq_strerror(errno));
		goto fail;
	}
	p->active = active;
	p->send_timeout_ms = p->cfg->zmq_linger > 0 ?
	    (int)p->cfg->zmq_linger : 1000;
	if (active) {
		p->sock = connect_active(p->ctx, p->cfg, o, p->endpoint,
		    sizeof(p->endpoint), err);
		if (p->sock == NULL)
			goto fail;
	} else {
		size_t i, n = fm_config_endpoint_count(p->cfg, name);
		const char **urls = calloc(n ? n : 1, sizeof(*urls));
		int linger = (int)p->cfg->zmq_linger;

		if (urls == NULL) {
			snprintf(err, FM_ERRLEN, "out of memory");
			goto fail;
		}
		for (i = 0; i < n; i++)
			urls[i] = fm_config_endpoint(p->cfg, name, i);
		if (n == 0)
			snprintf(err, FM_ERRLEN, "endpoints has no entry '%s'",
			    name);
		else
			p->sock = zep_bind_first(p->ctx, p->cfg, ZMQ_PUB, urls,
			    n, true,
			    p->endpoint, sizeof(p->endpoint), err);
		free(urls);
		if (p->sock == NULL)
			goto fail;
		zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof(linger));
		sleep_seconds(p->cfg->post_init_sleep);
	}
	{
		json_t *re = fm_config_get(p->cfg, "replay_endpoints");
		json_t *url = json_object_get(re, name);

		if (json_is_string(url)) {
			p->store = replay_store_new(REPLAY_MAX_MSGS,
			    REPLAY_MAX_BYTES);
			if (p->store == NULL)
				snprintf(err, FM_ERRLEN, "out of memory");
			p->replay = p->store ? replay_server_start(p->cfg,
			    json_string_value(url), p->store, err) : NULL;
			if (p->replay == NULL)
				goto fail;
		}
	}
	return p;
fail:
	fm_publisher_close(p);
	return NULL;
}

int
fm_publisher_send(struct fm_publisher *p, const struct fm_msg *msg, char *err)
{
	int rc;

	/*
	 * A passive PUB drops for slow subscribers, as fedmsg's does.  The
	 * active XPUB (NODROP) says EAGAIN when the relay's queue is full:
	 * wait for room, up to zmq_linger, rather than lose the message.
	 */
	while ((rc = zep_send_msg(p->sock, msg)) < 0 && errno == EAGAIN &&
	    p->active) {
		zmq_pollitem_t item = { p->sock, 0, ZMQ_POLLOUT, 0 };

		if (zep_poll_for(&item, 1, p->send_timeout_ms) <= 0) {
			errno = EAGAIN;
			break;
		}
	}
	if (rc < 0) {
		snprintf(err, FM_ERRLEN, "send on %s: %s", p->endpoint,
		    errno == EAGAIN ? "the relay takes no more messages" :
		    zmq_strerror(errno));
		return -1;
	}
	if (p->store)
		replay_store_add(p->store, (struct fm_msg *)msg);
	return 0;
}

int
fm_publish(struct fm_publisher *p, const char *topic, const char *modname,
    const char *msg_json, char *err)
{
	struct fm_msg_fields f;
	struct fm_msg *m = NULL, *signed_msg = NULL;
	int rc = -1;

	if (modname == NULL || *modname == '\0') {
		snprintf(err, FM_ERRLEN, "modname is required");
		return -1;
	}
	memset(&f, 0, sizeof(f));
	f.topic = fm_topic_build(p->cfg->topic_prefix, p->cfg->environment,
	    modname, topic);
	f.msg_json = msg_json;
	f.i = ++p->i;
	if (f.topic == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return -1;
	}
	if (fm_msg_build(&f, &p->cfg->limits, &m, err) < 0)
		goto done;
	if (p->signer) {
		size_t len, max = p->cfg->limits.max_message_bytes ?
		    p->cfg->limits.max_message_bytes :
		    FM_DEFAULT_MAX_MESSAGE_BYTES;

		if (fm_signer_sign(p->signer, m, &signed_msg, err) < 0)
			goto done;
		fm_msg_unref(m);
		m = signed_msg;
		/* Receivers with our config would drop it: say so here. */
		if (fm_msg_body(m, &len) && len > max) {
			snprintf(err, FM_ERRLEN, "signed message is %zu bytes, "
			    "more than max_message_bytes %zu", len, max);
			goto done;
		}
	}
	rc = fm_publisher_send(p, m, err);
done:
	free((char *)f.topic);
	fm_msg_unref(m);
	return rc;
}

const char *
fm_publisher_endpoint(const struct fm_publisher *p)
{
	return p->endpoint;
}

void
fm_publisher_close(struct fm_publisher *p)
{
	if (p == NULL)
		return;
	replay_server_stop(p->replay);
	replay_store_free(p->store);
	if (p->sock)
		zmq_close(p->sock);
	if (p->ctx)
		zmq_ctx_term(p->ctx);	/* waits zmq_linger ms for the queue */
	fm_signer_free(p->signer);
	fm_config_free(p->own_cfg);
	free(p);
}

/* ---- subscribing -------------------------------------------------------- */

struct sub_ep {
	char		*name, *url;
	void		*sock;
	void		*mon;		/* its disconnect events (PAIR) */
};

struct fm_subscriber {
	struct fm_config	*own_cfg;
	const struct fm_config	*cfg;
	struct sub_ep		*eps;
	zmq_pollitem_t		*items;
	size_t			 n, next;
	struct fm_validator	*validator;
	struct gap_tracker	*gaps;
	struct fm_sub_stats	 st;
	/* replayed messages waiting to be handed over before live ones */
	struct fm_msg		**pending;
	size_t			 npending, pending_pos;
	size_t			 pending_ep;
	int64_t			 watched_at;	/* last check_watch(), ms */
};

/*
 * How often fm_subscriber_recv() looks for disconnect events: a look at an
 * empty monitor socket costs libzmq two system calls, two per message
 * when it looked on every call.
 */
#define WATCH_EVERY_MS 100

static bool
wanted(const char *name, const char *const *names)
{
	if (names == NULL)
		return strcmp(name, "relay_inbound") != 0;
	for (; *names; names++)
		if (strcmp(*names, name) == 0)
			return true;
	return false;
}

/* moksha connects "*" as 127.0.0.1. */
static char *
connect_url(const char *url)
{
	const char *star = strstr(url, "://*:");
	char *out;

	if (star == NULL)
		return strdup(url);
	if (asprintf(&out, "%.*s://127.0.0.1%s", (int)(star - url), url,
	    star + 4) < 0)
		return NULL;
	return out;
}

/*
 * Watch ep's connections.  A frame above max_message_bytes (ZMQ_MAXMSGSIZE)
 * is a protocol error for libzmq 4.3: it drops the connection and, on a
 * connecting socket, never tries again.  We hear of it as a disconnect,
 * log it and connect again.  Without a monitor everything else still
 * works, so a failure here is only logged.
 */
static void
watch(struct sub_ep *ep)
{
	char url[64];
	int linger = 0;

	snprintf(url, sizeof(url), "inproc://fm-sub-monitor-%p", ep->sock);
	if (zmq_socket_monitor(ep->sock, url, ZMQ_EVENT_DISCONNECTED) < 0 ||
	    (ep->mon = zmq_socket(zep_context(NULL), ZMQ_PAIR)) == NULL) {
		log_warn("%s: cannot watch the connection: %s", ep->url,
		    zmq_strerror(errno));
		return;
	}
	zmq_setsockopt(ep->mon, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_connect(ep->mon, url) < 0) {
		log_warn("%s: cannot watch the connection: %s", ep->url,
		    zmq_strerror(errno));
		zmq_close(ep->mon);
		ep->mon = NULL;
	}
}

/* Read ep's monitor events; after a disconnect, connect again. */
static void
check_watch(struct fm_subscriber *s, struct sub_ep *ep)
{
	bool lost = false;
	zmq_msg_t m;
	int more;

	while (ep->mon) {
		uint16_t event = 0;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, ep->mon, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			break;
		}
		/* frame 1: event (16 bits) and value (32); frame 2: address */
		if (zmq_msg_size(&m) >= sizeof(event))
			memcpy(&event, zmq_msg_data(&m), sizeof(event));
		more = zmq_msg_more(&m);
		zmq_msg_close(&m);
		while (more) {
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, ep->mon, ZMQ_DONTWAIT) < 0)
				more = 0;
			else
				more = zmq_msg_more(&m);
			zmq_msg_close(&m);
		}
		lost |= event == ZMQ_EVENT_DISCONNECTED;
	}
	if (!lost)
		return;
	log_warn("%s: connection lost (the publisher closed it, or sent a "
	    "frame above max_message_bytes = %zu, which is refused unread); "
	    "connecting again", ep->url, s->cfg->limits.max_message_bytes ?
	    s->cfg->limits.max_message_bytes : FM_DEFAULT_MAX_MESSAGE_BYTES);
	/* already reconnecting after a plain close: this only restarts it */
	zmq_disconnect(ep->sock, ep->url);
	if (zmq_connect(ep->sock, ep->url) < 0)
		log_warn("%s: connect: %s", ep->url, zmq_strerror(errno));
}

static int
add_endpoint(struct fm_subscriber *s, const char *name, const char *url,
    const char *const *topics, char *err)
{
	struct sub_ep *ep = &s->eps[s->n];
	const char *const *t;

	if ((ep->url = connect_url(url)) == NULL ||
	    (ep->name = strdup(name)) == NULL ||
	    (ep->sock = zmq_socket(zep_context(s->cfg), ZMQ_SUB)) == NULL) {
		snprintf(err, FM_ERRLEN, "cannot open a SUB socket: %s",
		    zmq_strerror(errno));
		free(ep->url);
		free(ep->name);
		return -1;
	}
	zep_apply_options(ep->sock, s->cfg, true);
	watch(ep);
	if (topics == NULL || topics[0] == NULL)
		zmq_setsockopt(ep->sock, ZMQ_SUBSCRIBE, "", 0);
	for (t = topics; t && *t; t++)
		zmq_setsockopt(ep->sock, ZMQ_SUBSCRIBE, *t, strlen(*t));
	if (zmq_connect(ep->sock, ep->url) < 0) {
		/* like tail_messages(): skip what cannot be resolved */
		log_warn("skipping %s (%s): %s", ep->url, name,
		    zmq_strerror(errno));
		if (ep->mon)
			zmq_close(ep->mon);
		zmq_close(ep->sock);
		free(ep->url);
		free(ep->name);
		memset(ep, 0, sizeof(*ep));
		return 0;
	}
	s->items[s->n] = (zmq_pollitem_t){ ep->sock, 0, ZMQ_POLLIN, 0 };
	s->n++;
	return 0;
}

struct fm_subscriber *
fm_subscriber_open(const struct fm_bus_opts *o, const char *const *names,
    const char *const *topics, int validate, char *err)
{
	struct fm_subscriber *s;
	json_t *eps;
	const char *name;
	json_t *val;
	size_t total = 0;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	if (open_config(o, &s->own_cfg, &s->cfg, err) < 0)
		goto fail;
	eps = fm_config_get(s->cfg, "endpoints");
	json_object_foreach(eps, name, val)
		total += fm_config_endpoint_count(s->cfg, name);
	s->eps = calloc(total ? total : 1, sizeof(*s->eps));
	s->items = calloc(total ? total : 1, sizeof(*s->items));
	if (s->eps == NULL || s->items == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		goto fail;
	}
	json_object_foreach(eps, name, val) {
		size_t i, n = fm_config_endpoint_count(s->cfg, name);

		if (!wanted(name, names))
			continue;
		for (i = 0; i < n; i++)
			if (add_endpoint(s, name, fm_config_endpoint(s->cfg,
			    name, i), topics, err) < 0)
				goto fail;
	}
	if (s->n == 0) {
		snprintf(err, FM_ERRLEN, "no endpoints to subscribe to");
		goto fail;
	}
	if (validate < 0 ? s->cfg->validate_signatures : validate != 0) {
		if ((s->validator = fm_config_validator(s->cfg, err)) == NULL)
			goto fail;
	}
	/*
	 * "i" counts everything a publisher sends, so a topic-filtered
	 * subscriber sees gaps that are not losses: track gaps only when
	 * subscribed to everything.
	 */
	if (topics == NULL || topics[0] == NULL ||
	    (topics[0][0] == '\0' && topics[1] == NULL))
		s->gaps = gap_tracker_new(s->cfg);
	return s;
fail:
	fm_subscriber_close(s);
	return NULL;
}

/* Judge one received message; returns it (new reference) or NULL. */
static struct fm_msg *
accept_msg(struct fm_subscriber *s, const struct sub_ep *ep,
    struct zep_frames *f)
{
	char err[FM_ERRLEN];
	struct fm_msg *m;
	enum fm_verdict v;

	if (fm_msg_parse(zmq_msg_data(&f->body), zmq_msg_size(&f->body),
	    &s->cfg->limits, &m, err) < 0) {
		s->st.bad_json++;
		log_warn("%s: dropped a message that is not a fedmsg envelope: "
		    "%s", ep->url, err);
		return NULL;
	}
	/* The signature covers the body only: a different frame is a forgery. */
	if (!zep_topic_matches(f, m)) {
		s->st.topic_mismatch++;
		log_warn("%s: dropped %s: topic frame '%.*s' is not the body's "
		    "topic", ep->url, fm_msg_id(m) ? fm_msg_id(m) : "-",
		    (int)zmq_msg_size(&f->topic), (char *)zmq_msg_data(&f->topic));
		fm_msg_unref(m);
		return NULL;
	}
	if (s->validator &&
	    (v = fm_validator_check(s->validator, m, err)) != FM_VALID) {
		s->st.invalid++;
		log_warn("%s: invalid message %s: %s", ep->url,
		    fm_msg_id(m) ? fm_msg_id(m) : "-", err);
		fm_msg_unref(m);
		return NULL;
	}
	return m;
}

/* Validate replayed messages; keep the good ones in s->pending. */
static void
queue_replayed(struct fm_subscriber *s, size_t ep, struct fm_msg **msgs,
    size_t n)
{
	char err[FM_ERRLEN];
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (s->validator &&
		    fm_validator_check(s->validator, msgs[i], err) != FM_VALID) {
			s->st.invalid++;
			log_warn("%s: invalid replayed message: %s",
			    s->eps[ep].url, err);
			fm_msg_unref(msgs[i]);
			continue;
		}
		msgs[k++] = msgs[i];
	}
	s->pending = msgs;
	s->npending = k;
	s->pending_pos = 0;
	s->pending_ep = ep;
}

static void
fill(struct fm_subscriber *s, size_t ep, struct fm_msg *m,
    struct fm_received *out)
{
	out->msg = m;
	out->endpoint_name = s->eps[ep].name;
	out->endpoint_url = s->eps[ep].url;
	s->st.received++;
}

int
fm_subscriber_recv(struct fm_subscriber *s, int timeout_ms,
    struct fm_received *out, char *err)
{
	int64_t start = clock_ms();
	int left = timeout_ms;

	if (start - s->watched_at >= WATCH_EVERY_MS) {
		s->watched_at = start;
		for (size_t k = 0; k < s->n; k++)
			check_watch(s, &s->eps[k]);
	}
	for (;;) {
		size_t k;
		int rc;

		/* Replayed messages first, then the live one that showed the gap. */
		if (s->pending) {
			if (s->pending_pos < s->npending) {
				fill(s, s->pending_ep,
				    s->pending[s->pending_pos++], out);
				return 1;
			}
			free(s->pending);
			s->pending = NULL;
		}
		for (k = 0; k < s->n; k++) {
			size_t i = (s->next + k) % s->n;
			struct zep_frames f;
			struct fm_msg *m, **missing;
			enum zep_rc zr;
			ssize_t nm;

			zr = zep_recv(s->eps[i].sock, ZMQ_DONTWAIT,
			    s->cfg->limits.max_message_bytes ?
			    s->cfg->limits.max_message_bytes :
			    FM_DEFAULT_MAX_MESSAGE_BYTES, &f);
			if (zr == ZEP_AGAIN)
				continue;
			if (zr == ZEP_ERROR) {
				if (errno == EINTR)
					return -1;
				continue;
			}
			if (zr != ZEP_OK) {
				s->st.bad_frames++;
				log_warn("%s: dropped a message with %s",
				    s->eps[i].url, zr == ZEP_TOO_BIG ?
				    "an oversize frame" : "a frame count other "
				    "than two");
				continue;
			}
			m = accept_msg(s, &s->eps[i], &f);
			zep_frames_close(&f);
			if (m == NULL)
				continue;
			s->next = i + 1;
			/* One "i" sequence per process: only single-URL names. */
			if (s->gaps && fm_config_endpoint_count(s->cfg,
			    s->eps[i].name) == 1 && (nm = gap_check(s->gaps,
			    s->eps[i].name, m, REPLAY_TIMEOUT_MS, &missing)) > 0) {
				/* hand out the replayed ones, then m */
				struct fm_msg **all = realloc(missing,
				    ((size_t)nm + 1) * sizeof(*all));

				if (all == NULL) {
					fill(s, i, m, out);
					while (nm-- > 0)
						fm_msg_unref(missing[nm]);
					free(missing);
					return 1;
				}
				all[nm] = NULL;
				queue_replayed(s, i, all, (size_t)nm);
				s->pending[s->npending++] = m;
				return fm_subscriber_recv(s, 0, out, err);
			}
			fill(s, i, m, out);
			return 1;
		}
		if (left == 0)
			return 0;
		rc = zmq_poll(s->items, (int)s->n, left);
		if (rc < 0) {
			if (errno == EINTR)
				return -1;
			snprintf(err, FM_ERRLEN, "poll: %s", zmq_strerror(errno));
			return -1;
		}
		if (rc == 0)
			return 0;
		if (timeout_ms > 0) {
			left = timeout_ms - (int)(clock_ms() - start);
			if (left < 0)
				left = 0;
		}
	}
}

int
bus_subscriber_poll_items(const struct fm_subscriber *s, zmq_pollitem_t *items,
    int max)
{
	int i;

	for (i = 0; i < max && (size_t)i < s->n; i++)
		items[i] = s->items[i];
	return i;
}

void
fm_subscriber_stats(const struct fm_subscriber *s, struct fm_sub_stats *st)
{
	*st = s->st;
}

void
fm_subscriber_close(struct fm_subscriber *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++) {
		int linger = 0;

		zmq_setsockopt(s->eps[i].sock, ZMQ_LINGER, &linger,
		    sizeof(linger));
		if (s->eps[i].mon) {
			zmq_socket_monitor(s->eps[i].sock, NULL, 0);
			zmq_close(s->eps[i].mon);
		}
		zmq_close(s->eps[i].sock);
		free(s->eps[i].name);
		free(s->eps[i].url);
	}
	if (s->pending) {
		for (i = s->pending_pos; i < s->npending; i++)
			fm_msg_unref(s->pending[i]);
		free(s->pending);
	}
	free(s->eps);
	free(s->items);
	fm_validator_free(s->validator);
	gap_tracker_free(s->gaps);
	fm_config_free(s->own_cfg);
	free(s);
}
