/*
 * STOMP broker link (broker.h) over the STOMP session of stomp.h.
 *
 * Sends carry a receipt; the RECEIPT is the broker's "accepted".  Receiving
 * uses client-individual acks with a prefetch window (ActiveMQ
 * activemq.prefetchSize, RabbitMQ prefetch-count), which is STOMP's credit:
 * the broker never has more than that many unacknowledged messages out to
 * us.  A retry is a NACK (redelivered); a rejection is a NACK with
 * requeue:false, which RabbitMQ drops or dead-letters; ActiveMQ applies
 * its redelivery policy, then ActiveMQ.DLQ.
 *
 * A SEND the broker answers with an ERROR (its receipt-id names our
 * receipt, as ActiveMQ's refusal of a destination does) is reported
 * refused and resent after a pause, RESEND_TRIES times at most, then
 * reported rejected with the broker's message (resend_limit.h); the
 * ERROR closes the connection, so the other sends in flight are lost and
 * resent.  An ERROR naming no receipt is blamed on the oldest send in
 * flight once ERRORS_UNNAMED come in a row with no receipt between
 * (RabbitMQ 3.10 names none, e.g. its not_found for a SEND to a missing
 * /exchange/), so one poison message cannot loop forever; but never while
 * a SUBSCRIBE awaits its RECEIPT (stomp_subscribing()): that ERROR is the
 * subscription's, and the sends are only lost and resent.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/message.h>

#include "broker.h"
#include "log.h"
#include "resend_limit.h"
#include "stomp.h"

#define MAX_SUBS	32
#define MAX_MESSAGE	(64u * 1024 * 1024)	/* broker.h's default */
#define HEADERS_ROOM	(1024u * 1024)
#define MAX_PROPS	64
#define ERRORS_UNNAMED	2	/* ERRORs without a receipt-id and without
				   progress, then the oldest send is blamed */

struct broker_delivery {
	char	*ack;		/* ack token; NULL for ack:auto */
};

struct slink {
	struct broker		 b;
	struct stomp		*s;
	struct broker_callbacks	 cb;
	char			*name;
	bool			 up;
	unsigned		 credit;
	/* tokens sent and not yet receipted, oldest first */
	uint64_t		*flight;
	size_t			 fhead, flen, fcap;
	char			*subs[MAX_SUBS];
	int			 nsubs;
	struct resend_limit	 refused;	/* sends answered by ERROR */
	unsigned		 errors_unnamed; /* ERRORs without receipt-id
						   since the last RECEIPT */
	size_t			 max_message;	/* bigger MESSAGEs: refused */
};

static void
forget_flight(struct slink *l, uint64_t token)
{
	size_t i;

	for (i = 0; i < l->flen; i++) {
		size_t k = (l->fhead + i) % l->fcap;

		if (l->flight[k] != token)
			continue;
		/* receipts come in order: this is almost always the head */
		for (; i > 0; i--) {
			size_t to = (l->fhead + i) % l->fcap;
			size_t from = (l->fhead + i - 1) % l->fcap;

			l->flight[to] = l->flight[from];
		}
		l->fhead = (l->fhead + 1) % l->fcap;
		l->flen--;
		return;
	}
}

static void
s_on_connected(void *arg, const struct stomp_frame *f)
{
	struct slink *l = arg;

	(void)f;
	l->up = true;
	log_info("stomp %s: connected to %s (STOMP %s)", l->name,
	    stomp_url(l->s), stomp_version(l->s));
	if (l->cb.on_up)
		l->cb.on_up(l->cb.ctx);
}

static void
s_on_disconnected(void *arg, const char *reason)
{
	struct slink *l = arg;

	l->up = false;
	/* receipts of that session will never come: the owner resends */
	while (l->flen) {
		uint64_t t = l->flight[l->fhead];

		l->fhead = (l->fhead + 1) % l->fcap;
		l->flen--;
		l->cb.on_sent(l->cb.ctx, t, BROKER_LOST, reason);
	}
	if (l->cb.on_down)
		l->cb.on_down(l->cb.ctx, reason);
}

static void
s_on_error(void *arg, const char *text)
{
	struct slink *l = arg;

	/* stomp.c has logged it already */
	log_debug("stomp %s: %s", l->name, text);
}

/* Is token sent and not yet receipted? */
static bool
in_flight(const struct slink *l, uint64_t token)
{
	size_t i;

	for (i = 0; i < l->flen; i++)
		if (l->flight[(l->fhead + i) % l->fcap] == token)
			return true;
	return false;
}

/*
 * An ERROR frame: the send it answers (its receipt-id, or the oldest in
 * flight after ERRORS_UNNAMED unnamed ones) is refused, or given up after
 * RESEND_TRIES.  stomp.c closes the connection next: the rest is lost.
 */
static void
s_on_error_frame(void *arg, const char *receipt_id, const char *text)
{
	struct slink *l = arg;
	uint64_t token = 0;
	char why[FM_ERRLEN], *end = NULL;
	unsigned n;

	if (receipt_id ? strncmp(receipt_id, SUB_RECEIPT,
	    strlen(SUB_RECEIPT)) == 0 : stomp_subscribing(l->s)) {
		/* a subscription refused (logged by stomp.c): no send's */
		log_warn("stomp %s: the broker refused a subscription; no send "
		    "is blamed", l->name);
		return;
	}
	if (receipt_id)
		token = strtoull(receipt_id, &end, 10);
	if (receipt_id == NULL || end == receipt_id || *end ||
	    !in_flight(l, token)) {
		if (++l->errors_unnamed < ERRORS_UNNAMED || l->flen == 0)
			return;	/* the reconnect backoff paces these */
		token = l->flight[l->fhead];
		log_warn("stomp %s: %u ERRORs in a row naming no send, none "
		    "receipted: blaming record %llu, the oldest in flight",
		    l->name, l->errors_unnamed, (unsigned long long)token);
	}
	n = resend_limit_count(&l->refused, token, stomp_now_ms());
	forget_flight(l, token);
	if (n < RESEND_TRIES) {
		snprintf(why, sizeof(why), "ERROR from the broker: %s", text);
		l->cb.on_sent(l->cb.ctx, token, BROKER_REFUSED, why);
		return;
	}
	snprintf(why, sizeof(why), "ERROR %u times from the broker: %s",
	    RESEND_TRIES, text);
	log_warn("stomp %s: record %llu %s: giving up on it", l->name,
	    (unsigned long long)token, why);
	resend_limit_forget(&l->refused, token);
	l->errors_unnamed = 0;
	l->cb.on_sent(l->cb.ctx, token, BROKER_REJECTED, why);
}

static void
s_on_receipt(void *arg, const char *id)
{
	struct slink *l = arg;
	uint64_t token = strtoull(id, NULL, 10);

	forget_flight(l, token);
	resend_limit_forget(&l->refused, token);
	l->errors_unnamed = 0;
	l->cb.on_sent(l->cb.ctx, token, BROKER_ACCEPTED, "receipt");
}

static bool
transport_header(const char *name)
{
	static const char *const skip[] = { "content-length", "ack",
	    "receipt", NULL };
	const char *const *p;

	for (p = skip; *p; p++)
		if (strcmp(*p, name) == 0)
			return true;
	return false;
}

/* The address subscribed as subscription id ("sub-N", l_subscribe), or
 * the id itself if it is none of ours. */
static const char *
source_of(const struct slink *l, const char *id)
{
	char *end;
	unsigned long n;

	if (id == NULL || strncmp(id, "sub-", 4) != 0)
		return id;
	n = strtoul(id + 4, &end, 10);
	return end != id + 4 && *end == '\0' && n < (unsigned long)l->nsubs &&
	    l->subs[n] ? l->subs[n] : id;
}

static void
s_on_message(void *arg, const struct stomp_frame *f, const char *ack)
{
	struct slink *l = arg;
	struct broker_prop props[MAX_PROPS];
	struct broker_delivery *d;
	struct broker_in in;
	const char *orig = stomp_frame_value(f, "original-destination");
	size_t i, np = 0;

	if (f->skipped) {
		/* refused unread, as the AMQP links refuse theirs */
		log_warn("stomp %s: refusing a message of %zu bytes, more than "
		    "%zu (max_message_bytes)", l->name, f->skipped,
		    l->max_message);
		if (ack)
			stomp_reject(l->s, ack);
		return;
	}
	memset(&in, 0, sizeof(in));
	in.source = source_of(l, stomp_frame_value(f, "subscription"));
	/* ActiveMQ: a virtual topic's consumer queue keeps the topic here */
	in.destination = orig ? orig : stomp_frame_value(f, "destination");
	in.body = f->body;
	in.len = f->body_len;
	in.message_id = stomp_frame_value(f, "fedmsg_msg_id");
	in.subject = stomp_frame_value(f, "topic");
	for (i = 0; i < f->nheaders && np < MAX_PROPS; i++) {
		const struct stomp_header *h = &f->headers[i];

		/* binary values (RabbitMQ's AMQP 1.0 properties) are skipped */
		if (strlen(h->name) != h->name_len ||
		    strlen(h->value) != h->value_len ||
		    transport_header(h->name))
			continue;
		if (stomp_frame_header(f, h->name) != h)
			continue;	/* a repeat: the first counts */
		props[np].name = h->name;
		props[np].value = h->value;
		np++;
	}
	in.props = props;
	in.nprops = np;
	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (ack && (d->ack = strdup(ack)) == NULL)) {
		free(d);
		if (ack)
			stomp_nack(l->s, ack);
		return;
	}
	l->cb.on_message(l->cb.ctx, &in, d);
}

static void
l_poll_item(struct broker *b, zmq_pollitem_t *it)
{
	struct slink *l = (struct slink *)b;
	short ev = stomp_events(l->s);

	it->socket = NULL;
	it->fd = stomp_fd(l->s);
	it->events = (short)(((ev & POLLIN) ? ZMQ_POLLIN : 0) |
	    ((ev & POLLOUT) ? ZMQ_POLLOUT : 0));
	it->revents = 0;
}

static void
l_handle(struct broker *b, short revents, int64_t now)
{
	struct slink *l = (struct slink *)b;
	short ev = (short)(((revents & ZMQ_POLLIN) ? POLLIN : 0) |
	    ((revents & ZMQ_POLLOUT) ? POLLOUT : 0) |
	    ((revents & ZMQ_POLLERR) ? POLLERR : 0));

	(void)now;		/* stomp.c keeps its own monotonic clock */
	stomp_handle(l->s, ev, stomp_now_ms());
}

static int
l_timeout_ms(struct broker *b, int64_t now)
{
	struct slink *l = (struct slink *)b;
	int64_t t = stomp_now_ms();
	int ms = stomp_timeout_ms(l->s, t);

	(void)now;
	if (l->up && resend_limit_holding(&l->refused, t) &&
	    (ms < 0 || l->refused.hold_until - t < ms))
		ms = (int)(l->refused.hold_until - t);	/* resending */
	return ms;
}

static bool
l_can_send(struct broker *b, const char *address)
{
	struct slink *l = (struct slink *)b;

	(void)address;
	return l->up && l->flen < l->fcap &&
	    !resend_limit_holding(&l->refused, stomp_now_ms());
}

static int
l_send(struct broker *b, const struct broker_out *m, uint64_t token)
{
	struct slink *l = (struct slink *)b;
	const char *hdrs[2 * (MAX_PROPS + 5) + 1];
	char receipt[32];
	size_t i, n = 0;

	if (!l_can_send(b, m->address))
		return -1;
	hdrs[n++] = "content-type";
	hdrs[n++] = "application/json;charset=utf-8";
	hdrs[n++] = "persistent";
	hdrs[n++] = "true";
	/* ActiveMQ: a text message, not a BytesMessage, for AMQP/JMS readers */
	hdrs[n++] = "amq-msg-type";
	hdrs[n++] = "text";
	if (m->message_id) {
		hdrs[n++] = "fedmsg_msg_id";
		hdrs[n++] = m->message_id;
	}
	for (i = 0; i < m->nprops && i < MAX_PROPS; i++) {
		hdrs[n++] = m->props[i].name;
		hdrs[n++] = m->props[i].value;
	}
	hdrs[n] = NULL;
	snprintf(receipt, sizeof(receipt), "%llu", (unsigned long long)token);
	if (stomp_send(l->s, m->address, hdrs, m->body, m->len, receipt) < 0)
		return errno == EINVAL || errno == EMSGSIZE ? -2 : -1;
	l->flight[(l->fhead + l->flen) % l->fcap] = token;
	l->flen++;
	return 0;
}

static int
l_subscribe(struct broker *b, const char *source)
{
	struct slink *l = (struct slink *)b;
	char credit[16], id[32];
	const char *hdrs[5];

	if (l->nsubs == MAX_SUBS)
		return -1;
	snprintf(credit, sizeof(credit), "%u", l->credit);
	snprintf(id, sizeof(id), "sub-%d", l->nsubs);
	hdrs[0] = "activemq.prefetchSize";	/* ActiveMQ */
	hdrs[1] = credit;
	hdrs[2] = "prefetch-count";		/* RabbitMQ */
	hdrs[3] = credit;
	hdrs[4] = NULL;
	if (stomp_subscribe(l->s, source, id, "client-individual", hdrs) < 0)
		return -1;
	l->subs[l->nsubs++] = strdup(source);
	return 0;
}

static void
l_settle(struct broker *b, struct broker_delivery *d, enum settle how)
{
	struct slink *l = (struct slink *)b;

	if (d->ack) {
		/* a stale token (older connection) is redelivered anyway */
		if (how == SETTLE_ACCEPT)
			stomp_ack(l->s, d->ack);
		else if (how == SETTLE_REJECT)
			stomp_reject(l->s, d->ack);
		else
			stomp_nack(l->s, d->ack);
	}
	free(d->ack);
	free(d);
}

static void
l_pause(struct broker *b, bool paused)
{
	/* The prefetch window already bounds what is unacknowledged. */
	(void)b;
	(void)paused;
}

static bool
l_is_up(struct broker *b)
{
	return ((struct slink *)b)->up;
}

static void
l_free(struct broker *b)
{
	struct slink *l = (struct slink *)b;
	int i;

	if (l == NULL)
		return;
	stomp_free(l->s);
	for (i = 0; i < l->nsubs; i++)
		free(l->subs[i]);
	free(l->flight);
	free(l->name);
	free(l);
}

static const struct broker_ops stomp_ops = {
	"stomp", l_poll_item, l_handle, l_timeout_ms, l_can_send, l_send,
	l_subscribe, l_settle, l_pause, l_is_up, l_free,
};

struct broker *
stomp_broker_new(const struct broker_opts *o, const struct broker_callbacks *cb,
    char *err)
{
	struct stomp_opts so;
	struct slink *l;
	const char **urls;
	size_t i;

	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (urls = calloc(o->nurls + 1, sizeof(*urls))) == NULL) {
		free(l);
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	l->b.ops = &stomp_ops;
	l->cb = *cb;
	l->name = strdup(o->name ? o->name : "bridge");
	l->credit = o->credit ? o->credit : 100;
	l->fcap = o->max_in_flight ? o->max_in_flight : 1000;
	l->flight = calloc(l->fcap, sizeof(*l->flight));
	for (i = 0; i < o->nurls; i++)
		urls[i] = o->urls[i];
	memset(&so, 0, sizeof(so));
	so.urls = urls;
	so.login = o->user;
	so.passcode = o->password;
	so.allow_plaintext_login = o->allow_plaintext_credentials;
	so.vhost = o->vhost;
	so.ca_file = o->tls.ca;
	so.cert_file = o->tls.cert;
	so.key_file = o->tls.key;
	so.tls_verify_name = o->tls.hostname;
	so.hb_send_ms = so.hb_recv_ms = o->heartbeat_ms ? o->heartbeat_ms :
	    10000;
	so.max_inflight = l->fcap;
	/* a MESSAGE over max_message is read past and refused; the frame
	 * limit leaves room for the headers of one that is not */
	l->max_message = o->max_message ? o->max_message : MAX_MESSAGE;
	so.limits.max_body = l->max_message;
	so.limits.max_frame = l->max_message + HEADERS_ROOM;
	so.receipt_timeout_ms = o->confirm_timeout_ms;
	so.connect_timeout_ms = o->connect_timeout_ms;
	so.cb.on_connected = s_on_connected;
	so.cb.on_message = s_on_message;
	so.cb.on_receipt = s_on_receipt;
	so.cb.on_error = s_on_error;
	so.cb.on_error_frame = s_on_error_frame;
	so.cb.on_disconnected = s_on_disconnected;
	so.arg = l;
	if (l->name == NULL || l->flight == NULL ||
	    (l->s = stomp_new(&so, err)) == NULL) {
		free(urls);
		l_free(&l->b);
		return NULL;
	}
	free(urls);
	stomp_start(l->s, stomp_now_ms());
	return &l->b;
}
