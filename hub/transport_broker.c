/*
 * The hub on a broker (transport.h): AMQP 1.0 or STOMP through
 * brokers/broker.h.  One queue per hub name (e.g. /queue/fedmsg-hub.x or
 * Consumer.<sa>.hub.VirtualTopic.eng.>), so several hub processes share
 * the work as competing consumers; credit bounds what is in flight, and
 * withholding it (pause) leaves the rest with the broker.  Deliveries are
 * settled with the consumers' verdicts: accepted, released (not
 * processed), failed (a retry still waiting at shutdown: AMQP modified
 * with delivery-failed) or rejected.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker.h"
#include "broker_wrap.h"
#include "config.h"
#include "jget.h"
#include "log.h"
#include "pubq.h"
#include "transport.h"

#define RING 4096	/* received, not yet taken: more than any credit */
#define PUBQ_MAX 1000	/* publishes waiting per address (link, credit,
			   connection) */
#define PUBQ_ADDRESSES 1000 /* addresses with publishes waiting: a plugin
			   publishing on ever new topics stays bounded */

struct item {
	struct fm_msg		*msg;
	struct broker_delivery	*d;
	bool			 vouched;	/* wrapped: no signature */
};

/* A publish handed to the broker, kept until it confirms. */
struct sent {
	uint64_t		 token, seq;
	char			*address;
	struct fm_msg		*msg;
	bool			 lost;		/* the connection dropped first:
						   to be sent again */
};

struct broker_transport {
	struct transport	 t;
	const struct fm_config	*cfg;
	struct broker		*b;
	char			*source, *address;
	struct item		 ring[RING];
	size_t			 head, len;
	uint64_t		 token;
	struct transport_stats	 st;
	bool			 authenticated;	/* broker_authenticated */
	bool			 last_vouched;	/* of the last receive() */
	char			*username;	/* of wrapped envelopes */
	int64_t			 seq;
	struct pubq		*outq;		/* publishes waiting for their
						   address to be ready */
	uint64_t		 pubseq;	/* order of publishes */
	struct sent		*sent;		/* unconfirmed, in send order */
	size_t			 nsent, sent_cap, nlost;
};

static void
bt_on_up(void *ctx)
{
	(void)ctx;
	log_info("hub: connected to the broker");
}

static void
bt_on_down(void *ctx, const char *why)
{
	(void)ctx;
	log_warn("hub: broker connection lost (%s); unsettled deliveries "
	    "will be redelivered", why);
}

/* The unconfirmed publish of this token, or NULL. */
static struct sent *
sent_find(struct broker_transport *bt, uint64_t token)
{
	size_t i;

	for (i = 0; i < bt->nsent; i++)	/* mostly the first: in order */
		if (bt->sent[i].token == token)
			return &bt->sent[i];
	return NULL;
}

static void
sent_remove(struct broker_transport *bt, struct sent *s)
{
	size_t i = (size_t)(s - bt->sent);

	fm_msg_unref(s->msg);
	free(s->address);
	memmove(&bt->sent[i], &bt->sent[i + 1],
	    (bt->nsent - i - 1) * sizeof(*s));
	bt->nsent--;
}

/*
 * Lost publishes (the connection dropped before the broker confirmed
 * them) go back into their address's queue, in their order, ahead of
 * anything published since.  Not from on_sent(), which may run inside a
 * send while the queue is being flushed.
 */
static void
requeue_lost(struct broker_transport *bt)
{
	size_t i = 0;

	while (bt->nlost && i < bt->nsent) {
		struct sent *s = &bt->sent[i];

		if (!s->lost) {
			i++;
			continue;
		}
		if (pubq_requeue(bt->outq, s->address, s->msg, s->seq) < 0) {
			bt->st.publish_failed++;
			log_err("hub: out of memory: published message %s is "
			    "lost", fm_msg_id(s->msg));
		} else {
			bt->st.publish_resent++;
		}
		bt->nlost--;
		sent_remove(bt, s);
	}
}

static void
bt_on_sent(void *ctx, uint64_t token, enum broker_outcome o, const char *why)
{
	struct broker_transport *bt = ctx;
	struct sent *s = sent_find(bt, token);

	if (o == BROKER_LOST && s) {
		/* kept: sent again once the connection is back */
		if (!s->lost) {
			s->lost = true;
			bt->nlost++;
		}
		return;
	}
	if (o == BROKER_ACCEPTED) {
		if (s)
			sent_remove(bt, s);
		return;
	}
	bt->st.publish_failed++;
	if (o == BROKER_UNROUTABLE) {
		/* taken but dropped: no queue is bound for its topic */
		bt->st.publish_unroutable++;
		log_warn("hub: published message %s was unroutable (no "
		    "queue bound for it) and is dropped: %s",
		    s ? fm_msg_id(s->msg) : "?", why);
	} else {
		/* refused: sending it again would be refused again */
		log_warn("hub: the broker refused published message %s: %s",
		    s ? fm_msg_id(s->msg) : "?", why);
	}
	if (s)
		sent_remove(bt, s);
}

/*
 * A signed fedmsg envelope (validated as ever), as opposed to a payload:
 * its top level has "signature" (x509) or "crypto".
 */
static bool
signed_envelope(const struct fm_msg *m)
{
	char *sig;

	if (fm_msg_crypto(m))
		return true;
	if ((sig = fm_msg_member_json(m, "signature", NULL)) == NULL)
		return false;
	free(sig);
	return true;
}

static void
bt_on_message(void *ctx, const struct broker_in *in, struct broker_delivery *d)
{
	struct broker_transport *bt = ctx;
	struct fm_msg *m;
	char err[FM_ERRLEN];
	bool vouched = false;

	if (bt->len == RING) {		/* cannot happen within credit */
		bt->b->ops->settle(bt->b, d, SETTLE_RELEASE);
		return;
	}
	m = NULL;
	if (fm_msg_parse(in->body, in->len, &bt->cfg->limits, &m, err) < 0 &&
	    !bt->authenticated) {
		bt->st.bad_json++;
		log_warn("hub: rejected a delivery that is not a fedmsg "
		    "envelope: %s", err);
		bt->b->ops->settle(bt->b, d, SETTLE_REJECT);
		return;
	}
	if (bt->authenticated && (m == NULL || !signed_envelope(m))) {
		/*
		 * The broker vouches for the publisher (its TLS/SASL
		 * identity): wrap the payload as fedmsg-bridge does, topic
		 * from the routing key / subject / destination.
		 */
		struct broker_wrap_opts wo;

		fm_msg_unref(m);
		memset(&wo, 0, sizeof(wo));
		wo.topic = in->destination && *in->destination ?
		    in->destination : in->subject;
		if (wo.topic && strncmp(wo.topic, "/topic/", 7) == 0)
			wo.topic += 7;	/* STOMP, AMQP 1.0 on RabbitMQ */
		wo.username = bt->username;
		wo.seq = ++bt->seq;
		wo.fedora_messaging = in->headers_json != NULL;
		wo.lim = &bt->cfg->limits;
		if ((m = broker_wrap(in, &wo, err)) == NULL) {
			bt->st.bad_json++;
			log_warn("hub: rejected a delivery that cannot be "
			    "wrapped: %s", err);
			bt->b->ops->settle(bt->b, d, SETTLE_REJECT);
			return;
		}
		bt->st.wrapped++;
		vouched = true;
	}
	bt->ring[(bt->head + bt->len) % RING] = (struct item){ m, d, vouched };
	bt->len++;
	bt->st.received++;
}

static int
bt_subscribe(struct transport *t, const char *const *prefixes, char *err)
{
	struct broker_transport *bt = (struct broker_transport *)t;

	(void)prefixes;		/* the queue's bindings decide; we filter again */
	if (bt->b->ops->subscribe(bt->b, bt->source) < 0) {
		snprintf(err, FM_ERRLEN, "cannot subscribe to %s", bt->source);
		return -1;
	}
	return 0;
}

static int
bt_poll_items(struct transport *t, zmq_pollitem_t *items, int max)
{
	struct broker_transport *bt = (struct broker_transport *)t;

	if (max < 1)
		return 0;
	bt->b->ops->poll_item(bt->b, &items[0]);
	return items[0].fd >= 0 ? 1 : 0;
}

static void flush_waiting(struct broker_transport *bt);

static void
bt_io(struct transport *t, const zmq_pollitem_t *items, int n, int64_t now)
{
	struct broker_transport *bt = (struct broker_transport *)t;

	bt->b->ops->handle(bt->b, n > 0 ? items[0].revents : 0, now);
	flush_waiting(bt);	/* a link opened, credit came, or a receipt */
}

static int
bt_receive(struct transport *t, struct fm_msg **msg, struct delivery **d,
    char *err)
{
	struct broker_transport *bt = (struct broker_transport *)t;
	struct item *it;

	(void)err;
	if (bt->len == 0)
		return 0;
	it = &bt->ring[bt->head];
	bt->head = (bt->head + 1) % RING;
	bt->len--;
	*msg = it->msg;
	*d = (struct delivery *)it->d;
	bt->last_vouched = it->vouched;
	return 1;
}

static bool
bt_vouched(const struct transport *t)
{
	return ((const struct broker_transport *)t)->last_vouched;
}

static void
bt_settle(struct transport *t, struct delivery *d, enum settle how)
{
	struct broker_transport *bt = (struct broker_transport *)t;

	if (d)
		bt->b->ops->settle(bt->b, (struct broker_delivery *)d, how);
}

static void
bt_pause(struct transport *t, bool paused)
{
	struct broker_transport *bt = (struct broker_transport *)t;

	bt->b->ops->pause(bt->b, paused);
}

/*
 * Hand msg to the broker now, keeping it until the broker confirms:
 * PUBQ_SENT, PUBQ_LATER or PUBQ_NEVER.
 */
static enum pubq_try
send_now(void *ctx, const char *address, struct fm_msg *msg, uint64_t seq)
{
	struct broker_transport *bt = ctx;
	const char *topic = fm_msg_topic(msg);
	struct broker_prop props[1];
	struct broker_out out;
	struct sent *s;
	size_t len;
	int rc;

	if (bt->nsent == bt->sent_cap) {
		size_t cap = bt->sent_cap ? bt->sent_cap * 2 : 64;
		struct sent *p = realloc(bt->sent, cap * sizeof(*p));

		if (p == NULL)
			return PUBQ_LATER;
		bt->sent = p;
		bt->sent_cap = cap;
	}
	if (!bt->b->ops->can_send(bt->b, address))
		return PUBQ_LATER;
	memset(&out, 0, sizeof(out));
	out.address = address;
	out.body = fm_msg_body(msg, &len);
	out.len = len;
	out.message_id = fm_msg_id(msg);
	out.subject = topic;
	props[0] = (struct broker_prop){ "topic", topic };
	out.props = props;
	out.nprops = 1;
	s = &bt->sent[bt->nsent];
	memset(s, 0, sizeof(*s));
	if ((s->address = strdup(address)) == NULL)
		return PUBQ_LATER;
	s->token = ++bt->token;
	s->seq = seq;
	s->msg = fm_msg_ref(msg);
	bt->nsent++;		/* before send(): on_sent() may come at once */
	if ((rc = bt->b->ops->send(bt->b, &out, s->token)) < 0 &&
	    (s = sent_find(bt, bt->token)) != NULL)
		sent_remove(bt, s);
	if (rc == -1)
		return PUBQ_LATER;
	if (rc < 0) {
		bt->st.publish_failed++;
		log_warn("hub: published message %s cannot be sent to %s (the "
		    "broker cannot encode it) and is dropped", fm_msg_id(msg),
		    address);
		return PUBQ_NEVER;
	}
	bt->st.published++;
	return PUBQ_SENT;
}

/* Send what waits, in order, as far as the broker takes it. */
static void
flush_waiting(struct broker_transport *bt)
{
	requeue_lost(bt);
	if (pubq_len(bt->outq))
		pubq_flush(bt->outq, send_now, bt);
}

/*
 * Sent at once when the address is ready and nothing waits for it;
 * otherwise queued behind what waits (the first publish to an address
 * opens its link, which has no credit yet; the connection may be down).
 */
static int
bt_publish(struct transport *t, const struct fm_msg *msg, char *err)
{
	struct broker_transport *bt = (struct broker_transport *)t;
	const char *topic = fm_msg_topic(msg);
	char *address;
	uint64_t seq;
	int rc = 0;

	if (topic == NULL) {
		snprintf(err, FM_ERRLEN, "message without topic");
		return -1;
	}
	if ((address = broker_address(bt->address, topic)) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return -1;
	}
	seq = ++bt->pubseq;
	requeue_lost(bt);	/* what was lost goes first */
	if (pubq_waiting(bt->outq, address) == 0) {
		switch (send_now(bt, address, (struct fm_msg *)msg, seq)) {
		case PUBQ_SENT:
			goto done;
		case PUBQ_NEVER:
			snprintf(err, FM_ERRLEN, "the broker cannot take a "
			    "message for %s", address);
			rc = -1;
			goto done;
		case PUBQ_LATER:
			break;
		}
	}
	switch (pubq_push(bt->outq, address, (struct fm_msg *)msg, seq)) {
	case 0:
		bt->st.publish_queued++;
		break;
	case -1:
		bt->st.publish_failed++;
		bt->st.publish_queue_full++;
		snprintf(err, FM_ERRLEN, "%d messages already wait for %s (the "
		    "broker is not taking them)", PUBQ_MAX, address);
		rc = -1;
		break;
	case -3:
		bt->st.publish_failed++;
		bt->st.publish_queue_full++;
		snprintf(err, FM_ERRLEN, "messages already wait for %d other "
		    "addresses (the broker is not taking them): none more "
		    "for %s", PUBQ_ADDRESSES, address);
		rc = -1;
		break;
	default:
		bt->st.publish_failed++;
		snprintf(err, FM_ERRLEN, "out of memory");
		rc = -1;
		break;
	}
done:
	free(address);
	return rc;
}

static int
bt_tick(struct transport *t, int64_t now)
{
	struct broker_transport *bt = (struct broker_transport *)t;

	flush_waiting(bt);
	return bt->b->ops->timeout_ms(bt->b, now);
}

static void
bt_stats(const struct transport *t, struct transport_stats *st)
{
	*st = ((const struct broker_transport *)t)->st;
}

static void
bt_free(struct transport *t)
{
	struct broker_transport *bt = (struct broker_transport *)t;

	if (bt == NULL)
		return;
	/* Unconsumed deliveries go back to the broker with the connection. */
	while (bt->len) {
		fm_msg_unref(bt->ring[bt->head].msg);
		bt->b->ops->settle(bt->b, bt->ring[bt->head].d, SETTLE_RELEASE);
		bt->head = (bt->head + 1) % RING;
		bt->len--;
	}
	if (bt->outq && pubq_len(bt->outq) + bt->nsent) {
		log_warn("hub: %zu published message(s) still waited for the "
		    "broker when the hub stopped and are not sent, %zu more "
		    "were not confirmed by it", pubq_len(bt->outq) + bt->nlost,
		    bt->nsent - bt->nlost);
		bt->st.publish_failed += pubq_len(bt->outq) + bt->nlost;
	}
	pubq_free(bt->outq);
	bt->outq = NULL;
	if (bt->b)
		bt->b->ops->free(bt->b);	/* may report the last outcomes */
	while (bt->nsent)
		sent_remove(bt, &bt->sent[bt->nsent - 1]);
	free(bt->sent);
	free(bt->source);
	free(bt->address);
	free(bt->username);
	free(bt);
}

static size_t
bt_unconfirmed(const struct transport *t)
{
	const struct broker_transport *bt = (const struct broker_transport *)t;

	return pubq_len(bt->outq) + bt->nsent;
}

static const struct transport_ops broker_ops = {
	"broker", bt_subscribe, bt_poll_items, bt_io, bt_receive, bt_settle,
	bt_pause, bt_publish, bt_tick, bt_stats, bt_free, bt_vouched,
	bt_unconfirmed,
};

struct transport *
transport_broker_new(const struct fm_config *cfg, json_t *h, char *err)
{
	struct broker_callbacks cb = { NULL, bt_on_up, bt_on_down, bt_on_sent,
	    bt_on_message };
	struct broker_transport *bt;
	struct broker_opts bo;
	json_t *bus = json_object_get(h, "bus"), *v;
	const char *urls[16];
	char *password = NULL, why[FM_ERRLEN];
	size_t i, n = 0;

	if (json_is_string(bus)) {
		urls[n++] = json_string_value(bus);
	} else {
		json_array_foreach(bus, i, v) {
			if (!json_is_string(v) || n == 16)
				break;
			urls[n++] = json_string_value(v);
		}
	}
	if (n == 0 || jget_str(h, "source") == NULL) {
		snprintf(err, FM_ERRLEN, "hub: a broker bus needs \"bus\" (a URL "
		    "or a list) and \"source\" (the hub's queue)");
		return NULL;
	}
	if ((bt = calloc(1, sizeof(*bt))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	bt->t.ops = &broker_ops;
	bt->cfg = cfg;
	bt->source = strdup(jget_str(h, "source"));
	bt->address = strdup(jget_str(h, "address") ? jget_str(h, "address") :
	    "/topic/{topic}");
	bt->authenticated = json_is_true(json_object_get(h,
	    "broker_authenticated"));
	bt->username = strdup(jget_str(h, "username") ? jget_str(h,
	    "username") : "amqp-bridge");
	if ((bt->outq = pubq_new(PUBQ_MAX, PUBQ_ADDRESSES)) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		bt_free(&bt->t);
		return NULL;
	}
	memset(&bo, 0, sizeof(bo));
	bo.urls = urls;
	bo.nurls = n;
	bo.name = "hub";
	bo.topology = h;	/* AMQP 0-9-1 exchanges, queues, bindings */
	bo.max_message = cfg->limits.max_message_bytes ?
	    cfg->limits.max_message_bytes : FM_DEFAULT_MAX_MESSAGE_BYTES;
	cb.ctx = bt;
	if (broker_opts_from_json(h, &bo, &password, why) == 0)
		bt->b = broker_new(&bo, &cb, why);
	broker_secret_free(password);
	if (bt->b == NULL) {
		snprintf(err, FM_ERRLEN, "hub: %s", why);
		bt_free(&bt->t);
		return NULL;
	}
	return &bt->t;
}
