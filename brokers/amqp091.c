/*
 * AMQP 0-9-1 broker link (broker.h) on rabbitmq-c, the protocol
 * RabbitMQ and fedora-messaging speak natively.
 *
 * Event model: one channel on one connection.  Once logged in, the
 * socket sits in the owner's poll loop: readable, or frames buffered
 * inside rabbitmq-c (timeout 0), and handle() drains the frames with
 * amqp_simple_wait_frame_noblock(), which also sends and checks the
 * heartbeats.  Connecting (TCP, TLS, login, channel, declarations,
 * consumers) takes rabbitmq-c's blocking calls, so it runs on a thread
 * (amqp091_connect.c) while the loop serves the other links; the loop
 * polls the attempt's descriptor and takes the ready connection.  Each
 * step is bounded by connect_timeout; a failure is a normal disconnect
 * with backoff.
 *
 * Sending: the channel is in confirm mode (confirm.select); every publish
 * is mandatory and waits in a FIFO of delivery tags until basic.ack
 * (accepted) or basic.nack (refused: e.g. a full queue with x-overflow
 * reject-publish).  A nacked message is resent after a pause, RESEND_TRIES
 * times at most, then reported rejected (resend_limit.h).  A basic.return
 * (no queue bound) arrives before its ack and marks that message
 * unroutable: never resent.
 *
 * Receiving: basic.qos prefetch = credit, manual acks; the owner's
 * verdict becomes basic.ack, basic.nack(requeue) or basic.reject.
 *
 * Addresses: "/exchange/X/KEY" (exchange X, routing key KEY),
 * "/exchange/X" (routing key = the subject), "/topic/KEY" (amq.topic),
 * "/queue/Q" (the default exchange, key Q), anything else a routing key
 * on amq.topic.  Sources: "/queue/Q" or "Q" consume queue Q;
 * "/exchange/X/KEY" consumes a private server-named queue bound to X.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <amqp.h>
#include <jansson.h>

#include <fedmsg/message.h>

#include "amqp091_connect.h"
#include "amqp091_table.h"
#include "broker.h"
#include "clock.h"
#include "log.h"
#include "net.h"
#include "resend_limit.h"

#define CHANNEL		A091_CHANNEL
#define MAX_SOURCES	64
#define MAX_HEADERS	64		/* text headers passed as props */
#define BACKOFF_MIN_MS	500
#define BACKOFF_MAX_MS	30000
#define CONNECT_TIMEOUT_MS 10000
#define FRAMES_PER_HANDLE 512		/* then back to the poll loop */

enum state { IDLE, CONNECTING, UP };

/* A received delivery the owner has not settled yet. */
struct broker_delivery {
	uint64_t		 tag;
	unsigned		 gen;	/* connection it came on */
	struct broker_delivery	*prev, *next;
};

/* A publish awaiting its confirm. */
struct pending {
	uint64_t	 tag;		/* channel delivery tag */
	uint64_t	 token;		/* the owner's */
	char		*message_id;	/* to match a basic.return */
	bool		 returned;
	enum { UNCONFIRMED, ACKED, NACKED } confirm; /* its verdict, kept
					   until those before it have theirs */
};

struct source {
	char	*address;
	char	*queue;			/* resolved at connect */
};

struct a091 {
	struct broker		 b;
	struct broker_opts	 o;
	json_t			*topology;
	struct net_url		*urls;
	size_t			 nurls, url_next;
	struct broker_callbacks	 cb;

	enum state		 state;
	amqp_connection_state_t	 conn;
	struct a091_connect	*connecting;	/* the attempt, CONNECTING */
	const struct net_url	*connect_url;	/* its URL */
	int			 nsources_connecting; /* sources it consumes */
	unsigned		 gen;
	struct net_backoff	 bo;
	int64_t			 retry_at;
	char			 why[256];

	/* confirms: a ring of pendings, oldest first */
	struct pending		*ring;
	size_t			 cap, head, count;
	uint64_t		 next_tag;
	int64_t			 confirm_at;	/* last confirm progress */
	uint64_t		 returned, nacked;
	struct resend_limit	 refused;	/* nacked publishes */

	struct source		 sources[MAX_SOURCES];
	int			 nsources;
	struct broker_delivery	*unsettled;
	bool			 paused;
	/* accepted deliveries whose ack waits (ack_acks): up to ack_upto */
	uint64_t		 ack_upto;
	unsigned		 ack_n;
};

static const struct net_scheme a091_schemes[] = {
	{ "amqp091", false }, { "amqps091", true }, { NULL, false },
};

static const struct net_proto a091_proto = {
	"AMQP 0-9-1", a091_schemes, "amqp091", "amqps091", 5672, 5671, false,
};

static unsigned
connect_ms(const struct a091 *a)
{
	return a->o.connect_timeout_ms ? a->o.connect_timeout_ms :
	    CONNECT_TIMEOUT_MS;
}

static unsigned
confirm_ms(const struct a091 *a)
{
	return a->o.confirm_timeout_ms ? a->o.confirm_timeout_ms : 30000;
}

/* ---- disconnecting -------------------------------------------------------- */

static void
pending_pop(struct a091 *a, enum broker_outcome o, const char *why)
{
	struct pending p = a->ring[a->head];

	a->head = (a->head + 1) % a->cap;
	a->count--;
	free(p.message_id);
	a->cb.on_sent(a->cb.ctx, p.token, o, why);
}

static void
disconnect(struct a091 *a, const char *why)
{
	bool was_up = a->state == UP;

	a->ack_n = 0;	/* unacked: the broker requeues them */
	snprintf(a->why, sizeof(a->why), "%s", why);
	if (a->conn) {
		/* no close handshake: the connection is broken or refused */
		amqp_destroy_connection(a->conn);
		a->conn = NULL;
	}
	a->state = IDLE;
	a->gen++;
	while (a->count)
		pending_pop(a, BROKER_LOST, why);
	a->retry_at = clock_ms() + net_backoff_next(&a->bo);
	if (was_up)
		a->cb.on_down(a->cb.ctx, why);
	else
		log_warn("amqp091 %s: cannot connect: %s", a->o.name, why);
}

/* ---- connecting ----------------------------------------------------------- */
/* ---- connecting ----------------------------------------------------------- */

/*
 * The vhost for a URL: the configured one, else the URL's path without
 * its leading '/', percent-decoded as in RabbitMQ's URI spec
 * ("amqp091://h/%2f" is "/", "amqp091://h/fedora" is "fedora"); no path
 * or a bare "/" is the default vhost "/".  0, or -1 for a bad escape.
 */
static int
url_vhost(const struct a091 *a, const struct net_url *u, char *out,
    size_t len, char *err)
{
	const char *p;
	size_t n = 0;

	if (a->o.vhost || u->path == NULL || strcmp(u->path, "/") == 0) {
		snprintf(out, len, "%s", a->o.vhost ? a->o.vhost : "/");
		return 0;
	}
	for (p = u->path + 1; *p && n + 1 < len; p++) {
		unsigned c;

		if (*p == '%') {
			if (sscanf(p + 1, "%2x", &c) != 1 ||
			    strspn(p + 1, "0123456789abcdefABCDEF") < 2 ||
			    c == 0) {
				snprintf(err, FM_ERRLEN, "%s: bad %%-escape in "
				    "the vhost path '%s'", u->text, u->path);
				return -1;
			}
			out[n++] = (char)c;
			p += 2;
		} else if (*p == '/') {
			snprintf(err, FM_ERRLEN, "%s: the vhost path '%s' has a "
			    "'/': write it %%2f", u->text, u->path);
			return -1;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
	return 0;
}


static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Hand the attempt for the next URL to a thread (amqp091_connect.h). */
static void
begin_connect(struct a091 *a)
{
	struct a091_connect_req r;
	const struct net_url *u = &a->urls[a->url_next];
	char err[FM_ERRLEN], vhost[256];
	unsigned credit = a->o.credit ? a->o.credit : 100;
	int i;

	a->url_next = (a->url_next + 1) % a->nurls;
	a->connect_url = u;
	if (url_vhost(a, u, vhost, sizeof(vhost), err) < 0) {
		disconnect(a, err);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.url_text = strdup(u->text);
	r.host = strdup(u->host);
	r.port = strdup(u->port);
	r.tls = u->tls;
	r.vhost = strdup(vhost);
	r.user = dup_or_null(a->o.user ? a->o.user : u->user);
	r.password = dup_or_null(a->o.password);
	r.ca = dup_or_null(a->o.tls.ca);
	r.cert = dup_or_null(a->o.tls.cert);
	r.key = dup_or_null(a->o.tls.key);
	r.timeout_ms = connect_ms(a);
	r.heartbeat_s = (a->o.heartbeat_ms ? a->o.heartbeat_ms : 60000) / 1000;
	r.prefetch = (uint16_t)(credit < 65535 ? credit : 65535);
	r.topology = a->topology ? json_deep_copy(a->topology) : NULL;
	r.nsources = a->nsources;
	if (a->nsources)
		r.sources = calloc((size_t)a->nsources, sizeof(*r.sources));
	for (i = 0; r.sources && i < a->nsources; i++)
		if ((r.sources[i] = strdup(a->sources[i].address)) == NULL)
			break;
	if (!r.url_text || !r.host || !r.port || !r.vhost ||
	    (a->o.user && !r.user) || (a->o.password && !r.password) ||
	    (a->topology && !r.topology) || (a->nsources && (!r.sources ||
	    i < a->nsources))) {
		if (r.sources == NULL)
			r.nsources = 0;
		a091_connect_req_clear(&r);
		disconnect(a, "out of memory");
		return;
	}
	a->nsources_connecting = a->nsources;
	if ((a->connecting = a091_connect_start(&r, err)) == NULL) {
		disconnect(a, err);
		return;
	}
	a->state = CONNECTING;
}

/* The attempt has ended: up, or a normal failure with backoff. */
static void
end_connect(struct a091 *a)
{
	char err[FM_ERRLEN], **queues;
	int i, n = a->nsources_connecting;

	a->conn = a091_connect_finish(a->connecting, &queues, err);
	a->connecting = NULL;
	if (a->conn == NULL) {
		disconnect(a, err);
		return;
	}
	for (i = 0; i < n; i++) {
		free(a->sources[i].queue);
		a->sources[i].queue = queues[i];
	}
	free(queues);
	a->state = UP;
	a->next_tag = 1;
	a->confirm_at = clock_ms();
	/* subscribed while connecting: the broker is answering now */
	for (i = n; i < a->nsources; i++) {
		free(a->sources[i].queue);
		if (a091_consume(a->conn, a->sources[i].address,
		    &a->sources[i].queue, err) < 0) {
			disconnect(a, err);
			return;
		}
	}
	net_backoff_reset(&a->bo);
	log_info("amqp091 %s: connected to %s", a->o.name, a->connect_url->text);
	a->cb.on_up(a->cb.ctx);
}

/* ---- frames --------------------------------------------------------------- */

/*
 * The head publish was nacked: the owner resends it after a pause, or,
 * refused RESEND_TRIES times, it is given up (reported rejected).
 */
static void
nacked(struct a091 *a, uint64_t token)
{
	char why[128];

	if (resend_limit_count(&a->refused, token, clock_ms()) <
	    RESEND_TRIES) {
		pending_pop(a, BROKER_REFUSED, "basic.nack from the broker");
		return;
	}
	snprintf(why, sizeof(why), "basic.nack %u times by the broker (a "
	    "full queue that rejects publishes?)", RESEND_TRIES);
	log_warn("amqp091 %s: record %llu %s: giving up on it", a->o.name,
	    (unsigned long long)token, why);
	resend_limit_forget(&a->refused, token);
	pending_pop(a, BROKER_REJECTED, why);
}

/*
 * basic.ack or basic.nack for tag (and, multiple, every unconfirmed one
 * before it).  RabbitMQ confirms publishes to different queues out of
 * order: a verdict is noted in place and reported once every publish
 * before it has one, so the owner hears them in order.
 */
static void
confirmed(struct a091 *a, uint64_t tag, bool multiple, bool ack)
{
	size_t i;

	for (i = 0; i < a->count; i++) {
		struct pending *p = &a->ring[(a->head + i) % a->cap];

		if (p->tag > tag)
			break;
		if (p->tag == tag || (multiple && p->confirm == UNCONFIRMED))
			p->confirm = ack ? ACKED : NACKED;
	}
	while (a->count && a->ring[a->head].confirm != UNCONFIRMED) {
		struct pending *p = &a->ring[a->head];

		if (p->confirm == NACKED) {
			a->nacked++;
			nacked(a, p->token);
		} else if (p->returned) {
			resend_limit_forget(&a->refused, p->token);
			pending_pop(a, BROKER_UNROUTABLE, "basic.return: no "
			    "queue is bound for its routing key");
		} else {
			resend_limit_forget(&a->refused, p->token);
			pending_pop(a, BROKER_ACCEPTED, NULL);
		}
	}
	a->confirm_at = clock_ms();
}

/*
 * A basic.return: mark the unconfirmed publish it belongs to.  It comes
 * before that publish's basic.ack, so one confirmed already (waiting
 * behind an older one) is not it.
 */
static void
returned(struct a091 *a, const amqp_basic_properties_t *p,
    const amqp_basic_return_t *r)
{
	size_t i;

	a->returned++;
	for (i = 0; i < a->count; i++) {
		struct pending *q = &a->ring[(a->head + i) % a->cap];

		if (q->confirm != UNCONFIRMED)
			continue;
		if (!q->returned && q->message_id &&
		    (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) &&
		    strlen(q->message_id) == p->message_id.len &&
		    memcmp(q->message_id, p->message_id.bytes,
		    p->message_id.len) == 0) {
			q->returned = true;
			break;
		}
		if (!q->returned && q->message_id == NULL &&
		    !(p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)) {
			q->returned = true;	/* the oldest without an id */
			break;
		}
	}
	log_warn("amqp091 %s: broker returned a message: %u %.*s", a->o.name,
	    r->reply_code, (int)r->reply_text.len,
	    (char *)r->reply_text.bytes);
}

static char *
bytes_dup(amqp_bytes_t b)
{
	return strndup(b.bytes ? b.bytes : "", b.len);
}

/*
 * The content after a basic.deliver or basic.return.  The header frame
 * gives the body's size before any of it is read: a body over max is
 * read frame by frame and dropped (memory stays bounded) and *body is
 * NULL; else *body is malloc'ed (the caller frees it), NUL-terminated.
 * *props points into the connection's frame pool, valid until frames()
 * releases its buffers.  Each frame waits at most connect_timeout.
 * Returns 0, or -1 with err (the connection is then unusable).
 */
static int
read_content(struct a091 *a, size_t max, amqp_basic_properties_t **props,
    char **body, size_t *size, char *err)
{
	struct timeval tv = { connect_ms(a) / 1000,
	    (connect_ms(a) % 1000) * 1000 };
	amqp_frame_t f;
	size_t got = 0;
	uint64_t want;
	int rc;

	*body = NULL;
	*size = 0;
	rc = amqp_simple_wait_frame_noblock(a->conn, &f, &tv);
	if (rc != AMQP_STATUS_OK || f.frame_type != AMQP_FRAME_HEADER ||
	    f.channel != CHANNEL) {
		snprintf(err, FM_ERRLEN, "reading a content header: %s",
		    rc != AMQP_STATUS_OK ? amqp_error_string2(rc) :
		    "unexpected frame");
		return -1;
	}
	*props = f.payload.properties.decoded;
	want = f.payload.properties.body_size;
	if (want > SIZE_MAX - 1) {
		snprintf(err, FM_ERRLEN, "content of %" PRIu64 " bytes", want);
		return -1;
	}
	*size = (size_t)want;
	if (want <= max && (*body = malloc((size_t)want + 1)) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory for a %" PRIu64
		    "-byte message", want);
		return -1;
	}
	while (got < want) {
		rc = amqp_simple_wait_frame_noblock(a->conn, &f, &tv);
		if (rc != AMQP_STATUS_OK || f.frame_type != AMQP_FRAME_BODY ||
		    f.channel != CHANNEL ||
		    f.payload.body_fragment.len > want - got) {
			snprintf(err, FM_ERRLEN, "reading a content body: %s",
			    rc != AMQP_STATUS_OK ? amqp_error_string2(rc) :
			    "unexpected frame");
			free(*body);
			*body = NULL;
			return -1;
		}
		if (*body)
			memcpy(*body + got, f.payload.body_fragment.bytes,
			    f.payload.body_fragment.len);
		got += f.payload.body_fragment.len;
	}
	if (*body)
		(*body)[got] = '\0';
	return 0;
}

static void
delivered(struct a091 *a, const amqp_basic_deliver_t *dm)
{
	struct broker_prop props[MAX_HEADERS];
	char *names[MAX_HEADERS], *vals[MAX_HEADERS], why[FM_ERRLEN];
	amqp_basic_properties_t *pr;
	struct broker_in in;
	struct broker_delivery *d;
	char *rk = bytes_dup(dm->routing_key), *ctag = bytes_dup(
	    dm->consumer_tag), *mid = NULL, *hjson = NULL;
	uint64_t tag = dm->delivery_tag;
	const char *source = "";
	char *body;
	size_t n = 0, i, size;
	int k;

	(void)ctag;
	if (read_content(a, a->o.max_message ? a->o.max_message : SIZE_MAX - 1,
	    &pr, &body, &size, why) < 0) {
		free(rk);
		free(ctag);
		disconnect(a, why);
		return;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		free(body);
		free(rk);
		free(ctag);
		/* not left unacked behind a later "multiple" ack: requeued */
		disconnect(a, "out of memory for a delivery");
		return;
	}
	d->tag = tag;
	d->gen = a->gen;
	d->next = a->unsettled;
	if (d->next)
		d->next->prev = d;
	a->unsettled = d;
	memset(&in, 0, sizeof(in));
	for (k = 0; k < a->nsources; k++)
		source = a->sources[k].address;	/* one channel: the only, or
						   the last, subscription */
	if (pr->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
		mid = bytes_dup(pr->message_id);
	if (pr->_flags & AMQP_BASIC_HEADERS_FLAG) {
		const amqp_table_t *h = &pr->headers;
		json_t *j = amqp091_table_to_json(h);

		hjson = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		for (k = 0; k < h->num_entries && n < MAX_HEADERS; k++) {
			const amqp_field_value_t *v = &h->entries[k].value;

			if (v->kind != AMQP_FIELD_KIND_UTF8)
				continue;
			names[n] = bytes_dup(h->entries[k].key);
			vals[n] = bytes_dup(v->value.bytes);
			props[n].name = names[n] ? names[n] : "";
			props[n].value = vals[n] ? vals[n] : "";
			n++;
		}
	}
	in.source = source;
	in.destination = rk;
	in.subject = rk;
	in.body = body ? body : "";
	in.len = size;
	in.message_id = mid;
	in.props = props;
	in.nprops = n;
	in.headers_json = hjson;
	if (body == NULL) {
		/* skipped unread (read_content): only its size is known */
		log_warn("amqp091 %s: rejected a %zu-byte message (limit %zu)",
		    a->o.name, size, a->o.max_message);
		a->b.ops->settle(&a->b, d, SETTLE_REJECT);
	} else {
		a->cb.on_message(a->cb.ctx, &in, d);
	}
	for (i = 0; i < n; i++) {
		free(names[i]);
		free(vals[i]);
	}
	free(hjson);
	free(mid);
	free(rk);
	free(ctag);
	free(body);
}

static void
frames(struct a091 *a)
{
	struct timeval zero = { 0, 0 };
	int k;

	for (k = 0; k < FRAMES_PER_HANDLE && a->state == UP; k++) {
		amqp_frame_t f;
		int rc = amqp_simple_wait_frame_noblock(a->conn, &f, &zero);

		if (rc == AMQP_STATUS_TIMEOUT)
			break;
		if (rc != AMQP_STATUS_OK) {
			disconnect(a, amqp_error_string2(rc));
			return;
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;	/* stray content: not ours to read */
		switch (f.payload.method.id) {
		case AMQP_BASIC_ACK_METHOD: {
			amqp_basic_ack_t *m = f.payload.method.decoded;

			confirmed(a, m->delivery_tag, m->multiple, true);
			break;
		}
		case AMQP_BASIC_NACK_METHOD: {
			amqp_basic_nack_t *m = f.payload.method.decoded;

			confirmed(a, m->delivery_tag, m->multiple, false);
			break;
		}
		case AMQP_BASIC_RETURN_METHOD: {
			amqp_basic_return_t rm = *(amqp_basic_return_t *)
			    f.payload.method.decoded;
			char text[256], why[FM_ERRLEN], *body;
			amqp_basic_properties_t *pr;
			size_t size;

			snprintf(text, sizeof(text), "%.*s",
			    (int)rm.reply_text.len, (char *)rm.reply_text.bytes);
			rm.reply_text = amqp_cstring_bytes(text);
			/* only its message_id matters: the body is skipped */
			if (read_content(a, 0, &pr, &body, &size, why) < 0) {
				disconnect(a, why);
				return;
			}
			returned(a, pr, &rm);
			free(body);
			break;
		}
		case AMQP_BASIC_DELIVER_METHOD: {
			amqp_basic_deliver_t dm = *(amqp_basic_deliver_t *)
			    f.payload.method.decoded;
			char *rk = bytes_dup(dm.routing_key);

			/* the frame's memory is reused by the next read */
			dm.routing_key = amqp_cstring_bytes(rk ? rk : "");
			dm.consumer_tag = amqp_empty_bytes;
			delivered(a, &dm);
			free(rk);
			break;
		}
		case AMQP_CHANNEL_CLOSE_METHOD:
		case AMQP_CONNECTION_CLOSE_METHOD: {
			amqp_rpc_reply_t r = { AMQP_RESPONSE_SERVER_EXCEPTION,
			    f.payload.method, 0 };
			char why[FM_ERRLEN];

			a091_reply_text(r, "in use", why, sizeof(why));
			disconnect(a, why);
			return;
		}
		case AMQP_BASIC_CANCEL_METHOD:
			disconnect(a, "the broker cancelled a consumer (queue "
			    "deleted?)");
			return;
		default:
			break;
		}
	}
	if (a->state == UP)
		amqp_maybe_release_buffers(a->conn);
}

/*
 * Accepts are coalesced: an accepted delivery that is the oldest one
 * unsettled is acked with "multiple" (everything up to its tag, which is
 * then it and the accepts deferred before it), after the frames at hand,
 * or once a quarter of the prefetch waits, so the broker's window keeps
 * moving.  One frame and one write for a batch instead of one each: the
 * same guarantee (nothing is acked before its owner accepted it).
 */
static void
send_acks(struct a091 *a)
{
	int rc;

	if (a->ack_n == 0)
		return;
	a->ack_n = 0;
	if (a->state != UP)
		return;
	rc = amqp_basic_ack(a->conn, CHANNEL, a->ack_upto, 1);
	if (rc != AMQP_STATUS_OK)
		disconnect(a, amqp_error_string2(rc));
}

static unsigned
ack_batch(const struct a091 *a)
{
	unsigned credit = a->o.credit ? a->o.credit : 100;

	return credit >= 8 ? credit / 4 : 1;
}

/* ---- the broker interface -------------------------------------------------- */

static void
q_poll_item(struct broker *b, zmq_pollitem_t *it)
{
	struct a091 *a = (struct a091 *)b;

	it->socket = NULL;
	/* connecting: the attempt's descriptor says when it has ended */
	it->fd = a->state == UP ? amqp_get_sockfd(a->conn) :
	    a->state == CONNECTING ? a091_connect_fd(a->connecting) : -1;
	it->events = it->fd >= 0 ? ZMQ_POLLIN : 0;
	it->revents = 0;
}

static void
q_handle(struct broker *b, short revents, int64_t now)
{
	struct a091 *a = (struct a091 *)b;

	(void)revents;	/* frames may sit in rabbitmq-c's buffer: always look */
	if (a->state == IDLE) {
		if (now >= a->retry_at)
			begin_connect(a);
		return;
	}
	if (a->state == CONNECTING) {
		if (a091_connect_done(a->connecting))
			end_connect(a);
		return;
	}
	frames(a);
	send_acks(a);
	if (a->state == UP && a->count &&
	    now - a->confirm_at >= (int64_t)confirm_ms(a)) {
		char why[128];

		snprintf(why, sizeof(why), "%zu publishes and no confirm for "
		    "%u ms (confirm_timeout)", a->count, confirm_ms(a));
		disconnect(a, why);
	}
}

static int
q_timeout_ms(struct broker *b, int64_t now)
{
	struct a091 *a = (struct a091 *)b;
	int hb;

	if (a->state == IDLE)
		return a->retry_at <= now ? 0 : a->retry_at - now > 1000 ?
		    1000 : (int)(a->retry_at - now);
	if (a->state == CONNECTING)
		return a091_connect_done(a->connecting) ? 0 : 1000;
	if (amqp_frames_enqueued(a->conn) || amqp_data_in_buffer(a->conn) ||
	    a->ack_n)
		return 0;
	/*
	 * rabbitmq-c calls the link dead 2 beats after the last frame, but
	 * only when it is asked: ask every eighth of a beat (at most every
	 * second), so a silent partition is declared within 2 beats and a
	 * little, not 2 beats and up to a second.
	 */
	hb = amqp_get_heartbeat(a->conn);
	if (resend_limit_holding(&a->refused, now) &&
	    a->refused.hold_until - now < (hb > 0 && hb < 8 ? hb * 125 : 1000))
		return (int)(a->refused.hold_until - now); /* resending */
	if (hb > 0 && hb < 8)
		return hb * 125;
	return 1000;	/* heartbeats and the confirm timer */
}

static bool
q_can_send(struct broker *b, const char *address)
{
	struct a091 *a = (struct a091 *)b;

	(void)address;
	return a->state == UP && a->count < a->cap &&
	    !resend_limit_holding(&a->refused, clock_ms());
}

/* An address as exchange and routing key (see the top of the file). */
static void
split_address(const char *addr, const char *subject, char *x, size_t xl,
    const char **rk)
{
	const char *p, *s;

	if (strncmp(addr, "/exchange/", 10) == 0) {
		p = addr + 10;
		s = strchr(p, '/');
		snprintf(x, xl, "%.*s", (int)(s ? (size_t)(s - p) : strlen(p)),
		    p);
		*rk = s ? s + 1 : subject ? subject : "";
	} else if (strncmp(addr, "/queue/", 7) == 0) {
		x[0] = '\0';
		*rk = addr + 7;
	} else {
		snprintf(x, xl, "amq.topic");
		*rk = strncmp(addr, "/topic/", 7) == 0 ? addr + 7 : addr;
	}
}

static int
q_send(struct broker *b, const struct broker_out *m, uint64_t token)
{
	struct a091 *a = (struct a091 *)b;
	amqp_basic_properties_t p;
	amqp_table_entry_t *ents = NULL;
	amqp_pool_t pool;
	amqp_table_t extra;
	json_t *hj = NULL;
	struct pending *q;
	char exchange[256];
	const char *rk;
	size_t i;
	int rc;

	if (!q_can_send(b, m->address))
		return -1;
	split_address(m->address, m->subject, exchange, sizeof(exchange), &rk);
	if (strlen(rk) > 255) {
		log_warn("amqp091 %s: routing key over 255 bytes", a->o.name);
		return -2;
	}
	init_amqp_pool(&pool, 4096);
	if (m->headers_json && ((hj = json_loads(m->headers_json, 0, NULL)) ==
	    NULL || amqp091_table_from_json(hj, &pool, &extra) < 0)) {
		log_warn("amqp091 %s: headers are not a JSON object of AMQP "
		    "values", a->o.name);
		json_decref(hj);
		empty_amqp_pool(&pool);
		return -2;
	}
	if (!m->headers_json)
		extra.num_entries = 0;
	ents = amqp_pool_alloc(&pool, (m->nprops + (size_t)extra.num_entries +
	    1) * sizeof(*ents));
	if (ents == NULL) {
		json_decref(hj);
		empty_amqp_pool(&pool);
		return -1;
	}
	for (i = 0; i < m->nprops; i++) {
		ents[i].key = amqp_cstring_bytes(m->props[i].name);
		ents[i].value.kind = AMQP_FIELD_KIND_UTF8;
		ents[i].value.value.bytes = amqp_cstring_bytes(
		    m->props[i].value);
	}
	for (rc = 0; rc < extra.num_entries; rc++)
		ents[i++] = extra.entries[rc];
	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
	    AMQP_BASIC_CONTENT_ENCODING_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
	    AMQP_BASIC_HEADERS_FLAG;
	p.content_type = amqp_cstring_bytes("application/json");
	p.content_encoding = amqp_cstring_bytes("utf-8");
	p.delivery_mode = 2;	/* persistent */
	p.headers.num_entries = (int)i;
	p.headers.entries = ents;
	if (m->message_id) {
		p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
		p.message_id = amqp_cstring_bytes(m->message_id);
	}
	if (m->creation_ms) {
		p._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
		p.timestamp = (uint64_t)(m->creation_ms / 1000);
	}
	rc = amqp_basic_publish(a->conn, CHANNEL, amqp_cstring_bytes(exchange),
	    amqp_cstring_bytes(rk), 1 /* mandatory */, 0, &p,
	    (amqp_bytes_t){ m->len, (void *)m->body });
	json_decref(hj);
	empty_amqp_pool(&pool);
	if (rc != AMQP_STATUS_OK) {
		disconnect(a, amqp_error_string2(rc));
		return -1;
	}
	q = &a->ring[(a->head + a->count) % a->cap];
	q->tag = a->next_tag++;
	q->token = token;
	q->message_id = m->message_id ? strdup(m->message_id) : NULL;
	q->returned = false;
	q->confirm = UNCONFIRMED;
	if (a->count == 0)
		a->confirm_at = clock_ms();
	a->count++;
	return 0;
}

static int
q_subscribe(struct broker *b, const char *source)
{
	struct a091 *a = (struct a091 *)b;
	int i;

	for (i = 0; i < a->nsources; i++)
		if (strcmp(a->sources[i].address, source) == 0)
			return 0;
	if (a->nsources == MAX_SOURCES ||
	    (a->sources[a->nsources].address = strdup(source)) == NULL)
		return -1;
	a->nsources++;
	if (a->state == UP) {
		struct source *s = &a->sources[a->nsources - 1];
		char err[FM_ERRLEN];

		if (a091_consume(a->conn, s->address, &s->queue, err) < 0)
			disconnect(a, err);
	}	/* connecting: end_connect consumes it */
	return 0;
}

static void
q_settle(struct broker *b, struct broker_delivery *d, enum settle how)
{
	struct a091 *a = (struct a091 *)b;
	bool oldest = d->next == NULL;	/* the list is newest first */
	int rc = 0;

	if (d->prev)
		d->prev->next = d->next;
	else
		a->unsettled = d->next;
	if (d->next)
		d->next->prev = d->prev;
	/* a delivery of an older connection: the broker requeued it */
	if (a->state == UP && d->gen == a->gen) {
		switch (how) {
		case SETTLE_ACCEPT:
			if (!oldest) {	/* one before it is not settled */
				rc = amqp_basic_ack(a->conn, CHANNEL, d->tag, 0);
				break;
			}
			a->ack_upto = d->tag;
			if (++a->ack_n >= ack_batch(a)) {
				free(d);
				send_acks(a);
				return;
			}
			break;
		case SETTLE_RELEASE:
		case SETTLE_FAILED:
			rc = amqp_basic_nack(a->conn, CHANNEL, d->tag, 0, 1);
			break;
		case SETTLE_REJECT:
			/* dead-lettered when the queue has an exchange for it */
			rc = amqp_basic_reject(a->conn, CHANNEL, d->tag, 0);
			break;
		}
	}
	free(d);
	if (rc != AMQP_STATUS_OK)
		disconnect(a, amqp_error_string2(rc));
}

/*
 * basic.qos already bounds what is delivered and not settled: the owner
 * pausing means it settles nothing, so at most "credit" messages wait.
 */
static void
q_pause(struct broker *b, bool paused)
{
	((struct a091 *)b)->paused = paused;
}

static bool
q_is_up(struct broker *b)
{
	return ((struct a091 *)b)->state == UP;
}

static void
q_free(struct broker *b)
{
	struct a091 *a = (struct a091 *)b;
	struct broker_delivery *d, *next;
	int i;

	if (a == NULL)
		return;
	if (a->connecting)
		a091_connect_abandon(a->connecting);	/* ends on its own */
	send_acks(a);
	if (a->conn && a->state == UP) {
		/* bounded by the rpc timeout; the broker sees a clean close */
		amqp_channel_close(a->conn, CHANNEL, AMQP_REPLY_SUCCESS);
		amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
	}
	if (a->conn)
		amqp_destroy_connection(a->conn);
	for (d = a->unsettled; d; d = next) {
		next = d->next;
		free(d);
	}
	while (a->count) {
		free(a->ring[a->head].message_id);
		a->head = (a->head + 1) % a->cap;
		a->count--;
	}
	free(a->ring);
	for (i = 0; i < a->nsources; i++) {
		free(a->sources[i].address);
		free(a->sources[i].queue);
	}
	net_urls_free(a->urls, a->nurls);
	json_decref(a->topology);
	free((char *)a->o.user);
	if (a->o.password)
		explicit_bzero((char *)a->o.password, strlen(a->o.password));
	free((char *)a->o.password);
	free((char *)a->o.vhost);
	free((char *)a->o.name);
	free((char *)a->o.tls.ca);
	free((char *)a->o.tls.cert);
	free((char *)a->o.tls.key);
	free(a);
}

static const struct broker_ops a091_ops = {
	"amqp091", q_poll_item, q_handle, q_timeout_ms, q_can_send, q_send,
	q_subscribe, q_settle, q_pause, q_is_up, q_free,
};

struct broker *
amqp091_broker_new(const struct broker_opts *o,
    const struct broker_callbacks *cb, char *err)
{
	struct a091 *a;
	const struct net_url *plain = NULL;
	size_t i, ntls = 0;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	a->b.ops = &a091_ops;
	a->o = *o;
	a->o.urls = NULL;
	a->o.user = a->o.password = a->o.vhost = a->o.name = NULL;
	a->o.tls.ca = a->o.tls.cert = a->o.tls.key = a->o.tls.hostname = NULL;
	a->o.topology = NULL;
	for (i = 0; i < o->nurls; i++)
		if (net_urls_add(&a091_proto, o->urls[i], &a->urls, &a->nurls,
		    err) < 0) {
			q_free(&a->b);
			return NULL;
		}
	if (a->nurls == 0) {
		snprintf(err, FM_ERRLEN, "no broker URL");
		q_free(&a->b);
		return NULL;
	}
	for (i = 0; i < a->nurls; i++) {
		if (a->urls[i].tls)
			ntls++;
		else if (plain == NULL)
			plain = &a->urls[i];
	}
	{
		const struct net_clear_rules r = { o->name ? o->name :
		    "bridge", "amqps091://", "amqp091://", "the user name and "
		    "password go in clear (SASL PLAIN)" };

		if (net_urls_check_clear(a->urls, a->nurls, o->user ||
		    o->password, o->allow_plaintext_credentials, &r, err) < 0) {
			q_free(&a->b);
			return NULL;
		}
	}
	if (o->tls.hostname) {
		/* rabbitmq-c checks the name it connected to, nothing else */
		snprintf(err, FM_ERRLEN, "tls.hostname is not supported with "
		    "AMQP 0-9-1: put the certificate's name in the URL");
		q_free(&a->b);
		return NULL;
	}
	if (ntls) {
		struct net_tls_opts to = { o->tls.ca, NULL, o->tls.cert,
		    o->tls.key };
		SSL_CTX *ctx = net_tls_ctx_new(&to, err);	/* checks the files */

		if (ctx == NULL) {
			q_free(&a->b);
			return NULL;
		}
		SSL_CTX_free(ctx);
	}
	a->o.user = dup_or_null(o->user);
	a->o.password = dup_or_null(o->password);
	a->o.vhost = dup_or_null(o->vhost);
	a->o.name = strdup(o->name ? o->name : "bridge");
	a->o.tls.ca = dup_or_null(o->tls.ca);
	a->o.tls.cert = dup_or_null(o->tls.cert);
	a->o.tls.key = dup_or_null(o->tls.key);
	a->topology = o->topology ? json_deep_copy(o->topology) : NULL;
	a->cap = o->max_in_flight ? o->max_in_flight : 1000;
	a->ring = calloc(a->cap, sizeof(*a->ring));
	if (a->o.name == NULL || a->ring == NULL ||
	    (o->topology && a->topology == NULL)) {
		snprintf(err, FM_ERRLEN, "out of memory");
		q_free(&a->b);
		return NULL;
	}
	a->cb = *cb;
	net_backoff_init(&a->bo, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
	a->retry_at = 0;
	return &a->b;
}
