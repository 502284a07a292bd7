/*
 * The bridges (bridge.h): configuration, the two directions, loop
 * prevention and the shared poll loop.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include <fedmsg/bus.h>
#include <fedmsg/crypto.h>

#include "clock.h"
#include "bridge.h"
#include "coalesce.h"
#include "broker.h"
#include "broker_format.h"
#include "broker_wrap.h"
#include "bus_internal.h"
#include "canon.h"
#include "config.h"
#include "id_window.h"
#include "jget.h"
#include "jwrite.h"
#include "koji_map.h"
#include "log.h"
#include "msg.h"
#include "spool.h"
#include "zep.h"

#define MAX_BRIDGES	32
#define MAX_TOPICS	64
#define MAX_MAP		32
#define MAX_PROPS	BROKER_FORM_PROPS	/* Koji's form */
#define SEEN_WINDOW	100000	/* msg_ids remembered against loops: at
				   least half as many, at most as many */
#define SPOOL_DEFAULT_MAX (1024ull * 1024 * 1024)
#define ORIGIN_PROP	BROKER_ORIGIN_PROP
#define FM_SCHEMA	"base.message"	/* fedora-messaging's generic class */
#define BRIDGE_USER	"amqp-bridge"	/* fedmsg-migration-tools' name */

struct map_entry {
	char	*from, *to;
};

/*
 * A message taken from ZeroMQ and spooled, kept parsed until it is sent:
 * by its spool id modulo FRESH.  Sending it then needs no second parse of
 * its body (3-4 us of a ZeroMQ -> broker bridge's 25-45 us a message); a
 * record sent again after a reconnect, one pushed out of its slot, or one
 * over FRESH_MAX_RECORD bytes (so the slots hold a few MiB at most, not
 * FRESH messages of max_message_bytes) is parsed from the spool as before.
 */
#define FRESH		128
#define DRAIN_MS	2000	/* at a stop, for the broker to confirm what
				   is in flight (else resent at the next start) */
#define FRESH_MAX_RECORD (64u << 10)

struct fresh {
	uint64_t	 id;
	struct fm_msg	*m;		/* a reference, or NULL */
};

struct bridge {
	char			*name;
	char			 origin[300];	/* value of ORIGIN_PROP */
	bool			 to_broker;	/* zmq -> broker, else broker -> zmq */
	char			*topics[MAX_TOPICS + 1];
	struct map_entry	 map[MAX_MAP];
	int			 nmap;
	char			*address;	/* destination template */
	char			*source;	/* broker -> zmq */
	struct broker		*broker;
	struct fm_subscriber	*sub;		/* zmq -> broker */
	struct spool		*spool;
	struct fresh		 fresh[FRESH];	/* parsed, spooled, not sent */
	unsigned		 in_flight;
	bool			 rewind;	/* resend once in_flight drains */
	bool			 blocked;	/* the link had no room: retry */
	int64_t			 retry_at;
	void			*pub;		/* broker -> zmq PUB/XPUB */
	struct fm_validator	*validator;
	struct fm_signer	*signer;
	const struct fm_limits	*lim;		/* the config's */
	enum broker_format	 format;	/* what travels on the broker */
	char			*username;	/* envelopes we wrap; dropped
						   when they come back */
	char			*schema;	/* fedora_messaging_schema */
	struct koji_settings	 koji;		/* Koji <-> buildsys.* */
	int64_t			 seq;
	unsigned		 coalesce_us;	/* broker -> zmq; 0: no waits */
	struct bridge_stats	 st;
};

static struct id_window *seen;	/* msg_ids forwarded lately */
static struct bridge *all[MAX_BRIDGES];
static int nall;

/* ---- loop prevention ------------------------------------------------------------ */

static bool
seen_id(const char *id)
{
	return id && seen && id_window_has(seen, id_window_key(id));
}

static void
seen_add_id(const char *id)
{
	if (id && seen)
		id_window_add(seen, id_window_key(id));
}

/* ---- topics and addresses ----------------------------------------------------- */

/* A topic filter: prefix, with '*' or '#' meaning "anything from here". */
static bool
wanted(const struct bridge *br, const char *topic)
{
	char *const *t;

	if (br->topics[0] == NULL)
		return true;
	for (t = br->topics; *t; t++) {
		size_t n = strcspn(*t, "*#>");

		if ((*t)[n] == '\0' ? strncmp(topic, *t, n) == 0 :
		    (strncmp(topic, *t, n) == 0 &&
		    ((*t)[n + 1] == '\0' || fnmatch(*t, topic, 0) == 0)))
			return true;
	}
	return false;
}

/*
 * Apply the first topic_map prefix rewrite that matches (malloc'ed).  The
 * map goes from the source's naming to the destination's, whichever way
 * the bridge runs.
 */
static char *
map_topic(const struct bridge *br, const char *topic)
{
	int i;

	for (i = 0; i < br->nmap; i++) {
		const char *from = br->map[i].from, *to = br->map[i].to;
		size_t n = strlen(from);
		char *out;

		if (strncmp(topic, from, n) == 0 &&
		    asprintf(&out, "%s%s", to, topic + n) >= 0)
			return out;
	}
	return strdup(topic);
}

/* The address template with {topic} replaced by the mapped topic. */
static char *
address_for(const struct bridge *br, const char *topic)
{
	char *mapped = map_topic(br, topic), *out;

	if (mapped == NULL)
		return NULL;
	out = broker_address(br->address, mapped);
	free(mapped);
	return out;
}

/* A broker destination back to a fedmsg topic: drop address prefixes. */
static char *
topic_from(const struct bridge *br, const char *dest)
{
	return map_topic(br, broker_address_topic(dest));
}

/* ---- ZeroMQ -> broker ------------------------------------------------------------ */

/* Keep m (a reference, given) parsed for when record id (len bytes) is
   sent; a big one is let go. */
static void
fresh_keep(struct bridge *br, uint64_t id, size_t len, struct fm_msg *m)
{
	struct fresh *f = &br->fresh[id % FRESH];

	if (len > FRESH_MAX_RECORD) {
		fm_msg_unref(m);
		return;
	}
	fm_msg_unref(f->m);
	f->id = id;
	f->m = m;
}

/* Record id's parsed message if it is still kept (a reference), or NULL. */
static struct fm_msg *
fresh_take(struct bridge *br, uint64_t id)
{
	struct fresh *f = &br->fresh[id % FRESH];
	struct fm_msg *m = f->m;

	if (m == NULL || f->id != id)
		return NULL;
	f->m = NULL;
	return m;
}

/*
 * Spool the records taken so far in one write; free them.  msgs[i]: the
 * parsed message of recs[i] (a reference, given).
 */
static void
spool_taken(struct bridge *br, struct spool_rec *recs, struct fm_msg **msgs,
    size_t *n)
{
	uint64_t ids[SPOOL_APPEND_MAX];
	int rcs[SPOOL_APPEND_MAX];
	char err[FM_ERRLEN];
	size_t i, failed = 0;

	spool_append_all(br->spool, recs, *n, ids, rcs, err);
	for (i = 0; i < *n; i++) {
		if (rcs[i] != 0)
			br->st.dropped++;
		if (rcs[i] < 0)
			failed++;
		if (rcs[i] == 0)
			fresh_keep(br, ids[i], recs[i].len, msgs[i]);
		else
			fm_msg_unref(msgs[i]);
		free((void *)(uintptr_t)recs[i].data);
	}
	if (failed)
		log_err("bridge %s: spool: %s (%zu message%s not spooled)",
		    br->name, err, failed, failed == 1 ? "" : "s");
	*n = 0;
}

/*
 * Spool record: topic, NUL, then the exact body bytes.  What one wake-up
 * finds waiting goes to the spool in writes of SPOOL_APPEND_MAX records.
 */
static void
take_from_zmq(struct bridge *br)
{
	struct spool_rec recs[SPOOL_APPEND_MAX];
	struct fm_msg *msgs[SPOOL_APPEND_MAX];
	size_t nrecs = 0;
	char err[FM_ERRLEN];
	struct fm_received r;
	int k, rc;

	for (k = 0; k < 256; k++) {
		const char *topic, *body;
		size_t tl, bl;
		char *rec;

		if (nrecs == SPOOL_APPEND_MAX)
			spool_taken(br, recs, msgs, &nrecs);
		if ((rc = fm_subscriber_recv(br->sub, 0, &r, err)) <= 0)
			break;
		topic = fm_msg_topic(r.msg);
		if (topic == NULL || !wanted(br, topic)) {
			br->st.filtered++;
			fm_msg_unref(r.msg);
			continue;
		}
		if (seen_id(fm_msg_id(r.msg)) ||
		    (br->format == BROKER_FORMAT_FEDORA_MESSAGING &&
		    fm_msg_username(r.msg) &&
		    strcmp(fm_msg_username(r.msg), br->username) == 0)) {
			br->st.looped++;	/* a broker -> zmq bridge sent it */
			fm_msg_unref(r.msg);
			continue;
		}
		br->st.in++;
		if (br->format == BROKER_FORMAT_FEDORA_MESSAGING &&
		    (fm_msg_id(r.msg) == NULL ||
		    jv_get(msg_root(r.msg), "msg") == NULL)) {
			/* as fedmsg-migration-tools: no msg_id or msg, no
			   fedora-messaging message */
			br->st.dropped++;
			log_warn("bridge %s: dropped a message without msg_id "
			    "or msg on %s", br->name, topic);
			fm_msg_unref(r.msg);
			continue;
		}
		if (br->validator &&
		    fm_validator_check(br->validator, r.msg, err) != FM_VALID) {
			br->st.invalid++;
			log_warn("bridge %s: dropped invalid message %s: %s",
			    br->name, fm_msg_id(r.msg) ? fm_msg_id(r.msg) : "-",
			    err);
			fm_msg_unref(r.msg);
			continue;
		}
		body = fm_msg_body(r.msg, &bl);
		tl = strlen(topic);
		if ((rec = malloc(tl + 1 + bl)) == NULL) {
			br->st.dropped++;
			fm_msg_unref(r.msg);
			continue;
		}
		memcpy(rec, topic, tl + 1);
		memcpy(rec + tl + 1, body, bl);
		msgs[nrecs] = r.msg;
		recs[nrecs++] = (struct spool_rec){ rec, tl + 1 + bl };
	}
	spool_taken(br, recs, msgs, &nrecs);
}

/*
 * "koji" on a ZeroMQ -> broker bridge: a message on <koji.topic>.<event>
 * goes out in Koji's protonmsg shape (koji_map.h), to the address
 * template with Koji's event address as {topic}, with our origin marker.
 * Returns 1 with out and *address set (u to free); 0 for other topics
 * (sent as usual); -3 when it has no Koji form (counted, logged); -2
 * when *address is NULL (out of memory).
 */
static int
koji_umb_form(struct bridge *br, const char *topic, const char *env,
    size_t len, struct broker_out *out, char **address, struct koji_umb *u,
    struct broker_prop *props)
{
	size_t n = strlen(br->koji.topic);
	char why[KOJI_WHYLEN];

	if (strncmp(topic, br->koji.topic, n) || topic[n] != '.')
		return 0;
	if (koji_umb_from_envelope(topic + n + 1, env, len, u, why) !=
	    KOJI_MAPPED) {
		br->st.skipped++;
		log_warn("bridge %s: %s not sent in Koji's shape: %s",
		    br->name, topic, why);
		return -3;
	}
	free(*address);
	if ((*address = address_for(br, u->address)) == NULL)
		return -2;
	out->address = *address;
	out->body = u->body;
	out->len = strlen(u->body);
	props[0] = (struct broker_prop){ ORIGIN_PROP, br->origin };
	memcpy(props + 1, u->props, u->nprops * sizeof(*props));
	out->props = props;
	out->nprops = 1 + u->nprops;
	return 1;
}

static void
send_spooled(struct bridge *br)
{
	char err[FM_ERRLEN];

	br->blocked = false;
	if (br->rewind) {
		if (br->in_flight || clock_ms() < br->retry_at)
			return;
		spool_rewind(br->spool);
		br->rewind = false;
	}
	while (br->broker->ops->is_up(br->broker)) {
		struct broker_prop props[MAX_PROPS];
		struct broker_form form;
		struct broker_form_opts fo;
		const void *data;
		const char *topic, *body;
		struct broker_out out;
		struct fm_msg *m;
		size_t len, bl;
		uint64_t id;
		double ts;
		char *address;
		struct koji_umb ku;
		int rc;

		/* Peek by taking; a record that cannot go yet is resent later. */
		rc = spool_next(br->spool, &id, &data, &len, err);
		if (rc <= 0) {
			if (rc < 0)
				log_err("bridge %s: spool: %s", br->name, err);
			return;
		}
		topic = data;
		body = memchr(data, '\0', len);
		if (body && (m = fresh_take(br, id)) != NULL) {
			/* parsed when it was taken from ZeroMQ */
		} else if (body == NULL || fm_msg_parse(body + 1, len -
		    (size_t)(body + 1 - topic), br->lim, &m, err) < 0) {
			log_err("bridge %s: unreadable spool record %llu "
			    "dropped", br->name, (unsigned long long)id);
			spool_ack(br->spool, id, err);
			continue;
		}
		body++;
		bl = len - (size_t)(body - topic);
		if ((address = address_for(br, topic)) == NULL) {
			spool_unnext(br->spool, id);	/* out of memory: later */
			fm_msg_unref(m);
			return;
		}
		memset(&out, 0, sizeof(out));
		out.address = address;
		out.body = body;
		out.len = bl;
		out.message_id = fm_msg_id(m);
		out.subject = topic;
		out.creation_ms = fm_msg_timestamp(m, &ts) ? (int64_t)(ts * 1000) : 0;
		if (br->koji.topic && (rc = koji_umb_form(br, topic, body, bl,
		    &out, &address, &ku, props)) != 0) {
			if (rc == 1)
				rc = br->broker->ops->can_send(br->broker,
				    address) ? br->broker->ops->send(br->broker,
				    &out, id) : -1;
			koji_umb_free(&ku);
			if (address == NULL) {	/* out of memory: later */
				spool_unnext(br->spool, id);
				fm_msg_unref(m);
				return;
			}
			if (rc == -3) {		/* no Koji form: skipped */
				spool_ack(br->spool, id, err);
				free(address);
				fm_msg_unref(m);
				continue;
			}
		} else {
			/* -2: cannot be written in this format, never */
			fo = (struct broker_form_opts){ br->format,
			    br->broker->ops->proto, br->origin, br->schema };
			rc = broker_form_make(&form, &fo, m, body, bl, &out, err);
			if (rc == 0)
				rc = br->broker->ops->can_send(br->broker,
				    address) ? br->broker->ops->send(br->broker,
				    &out, id) : -1;
			broker_form_free(&form);
		}
		if (rc == -2) {
			/* can never be sent this way: drop it, say so */
			br->st.dropped++;
			log_err("bridge %s: %s cannot be sent to %s: dropped",
			    br->name, fm_msg_id(m) ? fm_msg_id(m) : "-", address);
			spool_ack(br->spool, id, err);
			free(address);
			fm_msg_unref(m);
			continue;
		}
		if (rc < 0) {
			/*
			 * No room in the link's window yet: this record goes
			 * first when a confirmation makes room.  (A rewind
			 * here drained the whole window before resending:
			 * issue 18's slowdown of ZeroMQ -> STOMP at a window
			 * of max_in_flight.)
			 */
			spool_unnext(br->spool, id);
			br->blocked = true;
			free(address);
			fresh_keep(br, id, len, m); /* for the next try */
			return;
		}
		seen_add_id(fm_msg_id(m));
		br->in_flight++;
		free(address);
		fm_msg_unref(m);
	}
}

/* ---- broker -> ZeroMQ -------------------------------------------------------------- */

static bool
from_us(const struct broker_in *in)
{
	size_t i;
	int k;

	for (i = 0; i < in->nprops; i++)
		if (strcmp(in->props[i].name, ORIGIN_PROP) == 0)
			for (k = 0; k < nall; k++)
				if (strcmp(all[k]->origin, in->props[i].value) == 0)
					return true;
	return false;
}

/*
 * Wrap a plain JSON body (Brew's protonmsg, dist-git on UMB, a
 * fedora-messaging publisher; broker_wrap.h) and sign it.
 */
static struct fm_msg *
wrap(struct bridge *br, const struct broker_in *in, const char *topic_as,
    const char *body_as, char *err)
{
	struct broker_wrap_opts wo;
	struct fm_msg *m, *s = NULL;
	char *topic;

	topic = topic_as ? strdup(topic_as) : topic_from(br,
	    in->destination && *in->destination ? in->destination :
	    in->subject && *in->subject ? in->subject : in->source);
	memset(&wo, 0, sizeof(wo));
	wo.topic = topic;
	wo.username = br->username;
	wo.seq = ++br->seq;
	wo.fedora_messaging = br->format == BROKER_FORMAT_FEDORA_MESSAGING;
	wo.lim = br->lim;
	wo.body = body_as;
	m = broker_wrap(in, &wo, err);
	free(topic);
	if (m && br->signer) {
		if (fm_signer_sign(br->signer, m, &s, err) < 0)
			s = NULL;
		fm_msg_unref(m);
		m = s;
	}
	return m;
}

/*
 * "koji": Koji's protonmsg message as Fedora's buildsys.* (koji_map.h),
 * wrapped and signed.  False when it is skipped (err says why); true
 * with *out, or with NULL when the wrap failed (err says why).
 */
static bool
koji_fedora(struct bridge *br, const struct broker_in *in,
    struct fm_msg **out, char *err)
{
	const char *type = NULL;
	char *suffix, *body, topic[512], why[KOJI_WHYLEN];
	size_t i;

	for (i = 0; i < in->nprops; i++)
		if (strcmp(in->props[i].name, "type") == 0)
			type = in->props[i].value;
	if (koji_to_fedora(type, in->body, in->len, br->koji.instance,
	    &suffix, &body, why) != KOJI_MAPPED) {
		snprintf(err, FM_ERRLEN, "%s", why);
		return false;
	}
	snprintf(topic, sizeof(topic), "%s.%s", br->koji.topic, suffix);
	*out = wrap(br, in, topic, body, err);
	free(suffix);
	free(body);
	return true;
}

static void
b_on_message(void *ctx, const struct broker_in *in, struct broker_delivery *d)
{
	struct bridge *br = ctx;
	char err[FM_ERRLEN];
	struct fm_msg *m = NULL;
	enum settle how = SETTLE_ACCEPT;

	br->st.in++;
	if (from_us(in)) {
		br->st.looped++;
		goto done;
	}
	if (br->format != BROKER_FORMAT_FEDMSG) {
		/* the payload itself: never an envelope to pass through */
		if ((m = wrap(br, in, NULL, NULL, err)) == NULL) {
			br->st.invalid++;
			log_warn("bridge %s: rejected a message: %s", br->name,
			    err);
			how = SETTLE_REJECT;
			goto done;
		}
		br->st.wrapped++;
		if (seen_id(fm_msg_id(m))) {
			br->st.looped++;
			goto done;
		}
		goto forward;
	}
	if (fm_msg_parse(in->body, in->len, br->lim, &m, err) < 0) {
		br->st.not_json++;
		log_warn("bridge %s: rejected a body that is not a JSON object: "
		    "%s", br->name, err);
		how = SETTLE_REJECT;
		goto done;
	}
	if (seen_id(fm_msg_id(m))) {
		br->st.looped++;
		goto done;
	}
	if (jv_get(msg_root(m), "topic") != NULL) {
		/*
		 * A fedmsg envelope (moksha's test: an object with a topic):
		 * forward its signed bytes unchanged, once validated.  One
		 * whose topic is not a string is refused, not wrapped.
		 */
		bool bad = false;

		if (br->validator) {
			bad = fm_validator_check(br->validator, m, err) !=
			    FM_VALID;
		} else if (fm_msg_topic(m) == NULL) {
			snprintf(err, FM_ERRLEN, "'topic' is not a string "
			    "without NUL");
			bad = true;
		}
		if (bad) {
			br->st.invalid++;
			log_warn("bridge %s: rejected invalid message %s: %s",
			    br->name, fm_msg_id(m) ? fm_msg_id(m) : "-", err);
			how = SETTLE_REJECT;
			goto done;
		}
	} else {
		/* A plain JSON body (Brew, dist-git on UMB): wrap and sign. */
		struct fm_msg *w = NULL;

		fm_msg_unref(m);
		m = NULL;
		if (br->koji.topic && !koji_fedora(br, in, &w, err)) {
			br->st.skipped++;
			log_warn("bridge %s: Koji message skipped: %s",
			    br->name, err);
			goto done;
		}
		if (w == NULL && !br->koji.topic)
			w = wrap(br, in, NULL, NULL, err);
		if ((m = w) == NULL) {
			log_warn("bridge %s: cannot wrap: %s", br->name, err);
			how = SETTLE_RELEASE;
			goto done;
		}
		br->st.wrapped++;
	}
forward:
	if (!wanted(br, fm_msg_topic(m))) {
		br->st.filtered++;
		goto done;
	}
	/* Accepted only once ZeroMQ has it. */
	if (zep_send_msg(br->pub, m) < 0) {
		log_warn("bridge %s: ZeroMQ refused %s: %s", br->name,
		    fm_msg_id(m) ? fm_msg_id(m) : "-", zmq_strerror(errno));
		how = SETTLE_RELEASE;
		br->st.retried++;
		goto done;
	}
	seen_add_id(fm_msg_id(m));
	br->st.out++;
done:
	fm_msg_unref(m);
	br->broker->ops->settle(br->broker, d, how);
}

/* ---- broker callbacks --------------------------------------------------------------- */

static void
b_on_up(void *ctx)
{
	struct bridge *br = ctx;

	log_info("bridge %s: broker connected", br->name);
}

static void
b_on_down(void *ctx, const char *why)
{
	struct bridge *br = ctx;

	log_warn("bridge %s: broker connection lost: %s", br->name, why);
}

static void
b_on_sent(void *ctx, uint64_t token, enum broker_outcome o, const char *why)
{
	struct bridge *br = ctx;
	char err[FM_ERRLEN];

	if (br->in_flight)
		br->in_flight--;
	if (o == BROKER_ACCEPTED || o == BROKER_UNROUTABLE ||
	    o == BROKER_REJECTED) {
		if (o == BROKER_ACCEPTED) {
			br->st.out++;
		} else {
			/* resending cannot help: counted, said, dropped */
			br->st.dropped++;
			log_warn("bridge %s: record %llu dropped: %s%s", br->name,
			    (unsigned long long)token, o == BROKER_REJECTED ?
			    "the broker refused it: " : "", why);
		}
		if (spool_ack(br->spool, token, err) < 0)
			log_err("bridge %s: spool: %s", br->name, err);
		return;
	}
	/* Not taken: everything from the oldest unacked goes out again. */
	br->st.retried++;
	if (!br->rewind)
		log_warn("bridge %s: broker did not take record %llu (%s): "
		    "resending", br->name, (unsigned long long)token, why);
	br->rewind = true;
	br->retry_at = clock_ms() + (o == BROKER_REFUSED ? 1000 : 0);
}

/* ---- the loop ------------------------------------------------------------------ */

/*
 * Write what this turn queued (acks, credit, sends, confirmations) before
 * a coalescing wait: the links write on POLLOUT, in the next turn, and the
 * broker must not wait for it too.
 */
static void
flush_output(void)
{
	zmq_pollitem_t items[MAX_BRIDGES];
	int n = 0, i, at[MAX_BRIDGES];

	for (i = 0; i < nall; i++) {
		at[i] = -1;
		all[i]->broker->ops->poll_item(all[i]->broker, &items[n]);
		if (items[n].fd >= 0 && (items[n].events & ZMQ_POLLOUT)) {
			items[n].events = ZMQ_POLLOUT;
			at[i] = n++;
		}
	}
	if (n == 0 || zmq_poll(items, n, 0) <= 0)
		return;
	for (i = 0; i < nall; i++)
		if (at[i] >= 0 && items[at[i]].revents)
			all[i]->broker->ops->handle(all[i]->broker,
			    items[at[i]].revents, clock_ms());
}

/*
 * Sends waiting for their broker's confirmation, in all bridges.  A link
 * ends every send with one on_sent(), BROKER_LOST when its connection
 * goes: a broker that is down holds none.
 */
static unsigned
unconfirmed(void)
{
	unsigned n = 0;
	int i;

	for (i = 0; i < nall; i++)
		n += all[i]->in_flight;
	return n;
}

/* ---- configuration -------------------------------------------------------------- */

static const char *const bridge_keys[] = { "from", "to", "topics",
    "endpoints", "address", "source", "topic_map", "tls", "user",
    "password_file", "vhost", "spool", "heartbeat", "credit", "validate",
    "cert", "active", "confirm_timeout", "connect_timeout",
    "allow_plaintext_credentials", "format", "username", "schema", "koji",
    "exchanges", "queues", "bindings", "passive_declares", "coalesce_us",
    NULL };

static int
urls_of(json_t *v, const char **out, size_t max, size_t *n)
{
	size_t i;
	json_t *u;

	*n = 0;
	if (json_is_string(v)) {
		out[(*n)++] = json_string_value(v);
		return 0;
	}
	if (!json_is_array(v))
		return -1;
	json_array_foreach(v, i, u) {
		if (!json_is_string(u) || *n == max)
			return -1;
		out[(*n)++] = json_string_value(u);
	}
	return *n ? 0 : -1;
}

/* Free a bridge, complete or half built.  NULL is fine. */
static void
bridge_free(struct bridge *br)
{
	int i;

	if (br == NULL)
		return;
	if (br->broker)
		br->broker->ops->free(br->broker);
	fm_subscriber_close(br->sub);
	spool_close(br->spool);
	for (i = 0; i < FRESH; i++)
		fm_msg_unref(br->fresh[i].m);
	if (br->pub) {
		int linger = 1000;	/* let forwarded messages leave */

		zmq_setsockopt(br->pub, ZMQ_LINGER, &linger, sizeof(linger));
		zmq_close(br->pub);
	}
	fm_validator_free(br->validator);
	fm_signer_free(br->signer);
	for (i = 0; i < MAX_TOPICS && br->topics[i]; i++)
		free(br->topics[i]);
	for (i = 0; i < br->nmap; i++) {
		free(br->map[i].from);
		free(br->map[i].to);
	}
	free(br->address);
	free(br->source);
	free(br->username);
	free(br->schema);
	koji_settings_free(&br->koji);
	free(br->name);
	free(br);
}

static void
log_stats(const struct bridge *br)
{
	log_info("bridge %s: in %llu, out %llu, invalid %llu, not JSON %llu, "
	    "looped %llu, wrapped %llu, retried %llu, dropped %llu, filtered "
	    "%llu, skipped %llu", br->name, (unsigned long long)br->st.in,
	    (unsigned long long)br->st.out, (unsigned long long)br->st.invalid,
	    (unsigned long long)br->st.not_json,
	    (unsigned long long)br->st.looped,
	    (unsigned long long)br->st.wrapped,
	    (unsigned long long)br->st.retried,
	    (unsigned long long)br->st.dropped,
	    (unsigned long long)br->st.filtered,
	    (unsigned long long)br->st.skipped);
}

struct spool_settings {
	const char	*dir;
	uint64_t	 max_bytes;
	enum spool_full	 full;
	bool		 fsync;
};

/* A bridge's "spool" object, checked key by key. */
static int
spool_settings(const char *name, json_t *sp, struct spool_settings *out,
    char *err)
{
	json_t *max = json_object_get(sp, "max_bytes");
	json_t *fs = json_object_get(sp, "fsync");
	const char *full = jget_str(sp, "full"), *key;
	json_t *v;

	if ((out->dir = jget_str(sp, "dir")) == NULL) {
		snprintf(err, FM_ERRLEN, "bridges.%s: spool.dir is required "
		    "(where accepted messages wait for the broker)", name);
		return -1;
	}
	if (max && (!json_is_integer(max) || json_integer_value(max) <= 0)) {
		snprintf(err, FM_ERRLEN, "bridges.%s: spool.max_bytes must be "
		    "a positive integer", name);
		return -1;
	}
	out->max_bytes = max ? (uint64_t)json_integer_value(max) :
	    SPOOL_DEFAULT_MAX;
	if (json_object_get(sp, "full") && (full == NULL ||
	    (strcmp(full, "drop_oldest") && strcmp(full, "drop_new")))) {
		snprintf(err, FM_ERRLEN, "bridges.%s: spool.full must be "
		    "\"drop_oldest\" or \"drop_new\"", name);
		return -1;
	}
	out->full = full && strcmp(full, "drop_new") == 0 ? SPOOL_DROP_NEW :
	    SPOOL_DROP_OLDEST;
	if (fs && !json_is_boolean(fs)) {
		snprintf(err, FM_ERRLEN, "bridges.%s: spool.fsync must be true "
		    "or false", name);
		return -1;
	}
	out->fsync = json_is_true(fs);
	json_object_foreach(sp, key, v) {
		if (strcmp(key, "dir") && strcmp(key, "max_bytes") &&
		    strcmp(key, "full") && strcmp(key, "fsync"))
			log_warn("bridges.%s.spool: unknown key '%s'", name,
			    key);
	}
	return 0;
}

static struct bridge *
bridge_new(const struct fm_config *cfg, const char *name, json_t *e,
    char *err)
{
	struct spool_settings sps;
	const char *urls[16];
	struct broker_callbacks cb = { NULL, b_on_up, b_on_down, b_on_sent,
	    b_on_message };
	struct broker_opts bo;
	json_t *from = json_object_get(e, "from"), *to = json_object_get(e, "to");
	json_t *topics = json_object_get(e, "topics"), *map, *v, *sp;
	struct bridge *br;
	bool zmq_from, zmq_to;
	const char *key;
	char *password = NULL, why[FM_ERRLEN];
	size_t nurls, i;

	if ((br = calloc(1, sizeof(*br))) == NULL)
		goto oom;
	br->name = strdup(name);
	br->lim = &cfg->limits;
	snprintf(br->origin, sizeof(br->origin), "%s/%s", fm_short_hostname(),
	    name);
	json_object_foreach(e, key, v) {
		const char *const *k;

		for (k = bridge_keys; *k && strcmp(*k, key); k++)
			;
		if (*k == NULL)
			log_warn("bridges.%s: unknown key '%s'", name, key);
	}
	zmq_from = json_is_string(from) && strcmp(json_string_value(from),
	    "zmq") == 0;
	zmq_to = json_is_string(to) && strcmp(json_string_value(to), "zmq") == 0;
	if (zmq_from == zmq_to) {
		snprintf(err, FM_ERRLEN, "bridges.%s: exactly one of \"from\" "
		    "and \"to\" must be \"zmq\"", name);
		goto fail;
	}
	br->to_broker = zmq_from;
	v = json_object_get(e, "format");
	if (v && (!json_is_string(v) ||
	    broker_format_from_name(json_string_value(v)) < 0)) {
		snprintf(err, FM_ERRLEN, "bridges.%s: format must be \"fedmsg\", "
		    "\"fedora-messaging\" or \"umb\"", name);
		goto fail;
	}
	br->format = v ? (enum broker_format)broker_format_from_name(
	    json_string_value(v)) : BROKER_FORMAT_FEDMSG;
	if ((json_object_get(e, "username") && !jget_str(e, "username")) ||
	    (json_object_get(e, "schema") && !jget_str(e, "schema"))) {
		snprintf(err, FM_ERRLEN, "bridges.%s: username and schema must "
		    "be strings", name);
		goto fail;
	}
	br->username = strdup(jget_str(e, "username") ?
	    jget_str(e, "username") : br->format == BROKER_FORMAT_FEDORA_MESSAGING ?
	    BRIDGE_USER : "fedmsg-bridge");
	br->schema = strdup(jget_str(e, "schema") ? jget_str(e, "schema") :
	    FM_SCHEMA);
	if (br->username == NULL || br->schema == NULL)
		goto oom;
	if (koji_settings_parse(json_object_get(e, "koji"), &br->koji, &key,
	    why, sizeof(why)) < 0) {
		snprintf(err, FM_ERRLEN, "bridges.%s: %s", name, why);
		goto fail;
	}
	if (key)
		log_warn("bridges.%s.koji: unknown key '%s'", name, key);
	if (urls_of(zmq_from ? to : from, urls, 16, &nurls) < 0) {
		snprintf(err, FM_ERRLEN, "bridges.%s: \"%s\" must be a broker URL "
		    "or a list of them", name, zmq_from ? "to" : "from");
		goto fail;
	}
	if (topics && !json_is_array(topics)) {
		snprintf(err, FM_ERRLEN, "bridges.%s: topics must be a list",
		    name);
		goto fail;
	}
	json_array_foreach(topics, i, v) {
		if (i == MAX_TOPICS || !json_is_string(v)) {
			snprintf(err, FM_ERRLEN, "bridges.%s: topics: at most %d "
			    "strings", name, MAX_TOPICS);
			goto fail;
		}
		br->topics[i] = strdup(json_string_value(v));
	}
	map = json_object_get(e, "topic_map");
	json_object_foreach(map, key, v) {
		if (br->nmap == MAX_MAP || !json_is_string(v)) {
			snprintf(err, FM_ERRLEN, "bridges.%s: topic_map: at most "
			    "%d prefix -> prefix strings", name, MAX_MAP);
			goto fail;
		}
		br->map[br->nmap].from = strdup(key);
		br->map[br->nmap].to = strdup(json_string_value(v));
		br->nmap++;
	}
	memset(&bo, 0, sizeof(bo));
	bo.urls = urls;
	bo.nurls = nurls;
	bo.name = name;
	bo.max_message = cfg->limits.max_message_bytes ?
	    cfg->limits.max_message_bytes : FM_DEFAULT_MAX_MESSAGE_BYTES;
	if (broker_opts_from_json(e, &bo, &password, why) < 0) {
		snprintf(err, FM_ERRLEN, "bridges.%s: %s", name, why);
		goto fail;
	}
	cb.ctx = br;
	br->broker = broker_new(&bo, &cb, why);
	broker_secret_free(password);
	password = NULL;
	if (br->broker == NULL) {
		snprintf(err, FM_ERRLEN, "bridges.%s: %s", name, why);
		goto fail;
	}
	v = json_object_get(e, "validate");
	if (v && !json_is_boolean(v)) {
		snprintf(err, FM_ERRLEN, "bridges.%s: validate must be true or "
		    "false", name);
		goto fail;
	}
	if ((v ? json_is_true(v) : cfg->validate_signatures) &&
	    (br->validator = fm_config_validator(cfg, err)) == NULL)
		goto fail;
	v = json_object_get(e, "coalesce_us");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > COALESCE_MAX_US)) {
		snprintf(err, FM_ERRLEN, "bridges.%s: coalesce_us must be an "
		    "integer from 0 to %d (microseconds)", name,
		    COALESCE_MAX_US);
		goto fail;
	}
	if (v && br->to_broker) {
		snprintf(err, FM_ERRLEN, "bridges.%s: coalesce_us is for a "
		    "broker -> zmq bridge (a zmq -> broker one takes what "
		    "waits in ZeroMQ at each turn already)", name);
		goto fail;
	}
	/* RabbitMQ's AMQP 1.0 plugin sends a consumer that keeps up two
	   messages, then waits for their settlement: a wait there is lost
	   time, so AMQP bridges do not wait unless told to. */
	if (!br->to_broker)
		br->coalesce_us = v ? (unsigned)json_integer_value(v) :
		    strcmp(br->broker->ops->proto, "stomp") == 0 ?
		    COALESCE_STOMP_US : 0;

	if (br->to_broker) {
		struct fm_bus_opts o = FM_BUS_OPTS_INIT;
		const char *names[17];
		json_t *eps = json_object_get(e, "endpoints");

		br->address = strdup(jget_str(e, "address") ?
		    jget_str(e, "address") : "/topic/{topic}");
		sp = json_object_get(e, "spool");
		if (spool_settings(name, sp, &sps, err) < 0)
			goto fail;
		br->spool = spool_open(sps.dir, sps.max_bytes, sps.full,
		    sps.fsync, why);
		if (br->spool == NULL) {
			snprintf(err, FM_ERRLEN, "bridges.%s: spool: %s", name,
			    why);
			goto fail;
		}
		if (urls_of(eps, names, 16, &nurls) == 0)
			names[nurls] = NULL;
		o.config = cfg;
		/* our own validator judges; the subscriber only frames */
		br->sub = fm_subscriber_open(&o, eps ? names : NULL,
		    (const char *const *)br->topics, 0, why);
		if (br->sub == NULL) {
			snprintf(err, FM_ERRLEN, "bridges.%s: %s", name, why);
			goto fail;
		}
	} else {
		const char *bind = jget_str(e, "endpoints");
		bool active = json_is_true(json_object_get(e, "active"));
		char certkey[300];

		if (jget_str(e, "source") == NULL) {
			snprintf(err, FM_ERRLEN, "bridges.%s: \"source\" (the "
			    "address to receive from) is required", name);
			goto fail;
		}
		br->source = strdup(jget_str(e, "source"));
		if (br->broker->ops->subscribe(br->broker, br->source) < 0) {
			snprintf(err, FM_ERRLEN, "bridges.%s: cannot subscribe",
			    name);
			goto fail;
		}
		snprintf(certkey, sizeof(certkey), "%s", jget_str(e, "cert") ?
		    jget_str(e, "cert") : "bridge");
		if (cfg->sign_messages && fm_config_certname(cfg, certkey) &&
		    (br->signer = fm_config_signer(cfg, certkey, err)) == NULL)
			goto fail;
		br->pub = zmq_socket(zep_context(cfg), ZMQ_PUB);
		if (br->pub)	/* before bind/connect: options are copied then */
			zep_apply_options(br->pub, cfg, false);
		if (br->pub == NULL || bind == NULL ||
		    (active ? zmq_connect(br->pub, bind) :
		    zmq_bind(br->pub, bind)) < 0) {
			snprintf(err, FM_ERRLEN, "bridges.%s: endpoints must be "
			    "the ZeroMQ URL to %s: %s", name, active ? "connect" :
			    "bind", bind ? zmq_strerror(errno) : "missing");
			goto fail;
		}
	}
	return br;
oom:
	snprintf(err, FM_ERRLEN, "out of memory");
fail:
	broker_secret_free(password);
	bridge_free(br);
	return NULL;
}

int
bridges_run(const struct fm_config *cfg, const char *const *only,
    volatile sig_atomic_t *stop)
{
	json_t *bridges = fm_config_get(cfg, "bridges"), *e;
	const char *name;
	char err[FM_ERRLEN];
	int status = 0, i;
	int64_t drain_until = 0;	/* stopping: the drain's end */

	if (!json_is_object(bridges) || json_object_size(bridges) == 0) {
		log_err("config: \"bridges\" must be an object of named bridges");
		return 2;
	}
	if ((seen = id_window_new(SEEN_WINDOW)) == NULL) {
		log_err("out of memory");
		status = 1;
		goto out;
	}
	json_object_foreach(bridges, name, e) {
		const char *const *o;

		for (o = only; o && *o && strcmp(*o, name); o++)
			;
		if (only && *o == NULL)
			continue;
		if (!json_is_object(e) || nall == MAX_BRIDGES) {
			log_err("bridges.%s: must be an object (at most %d "
			    "bridges)", name, MAX_BRIDGES);
			status = 2;
			goto out;
		}
		if ((all[nall] = bridge_new(cfg, name, e, err)) == NULL) {
			log_err("%s", err);
			status = 2;
			goto out;
		}
		log_info("bridge %s: %s -> %s", name,
		    all[nall]->to_broker ? "zmq" : all[nall]->broker->ops->proto,
		    all[nall]->to_broker ? all[nall]->broker->ops->proto : "zmq");
		nall++;
	}
	/*
	 * At a stop, ZeroMQ is no longer read, and the loop runs on until
	 * the brokers confirm what is in flight (DRAIN_MS at most): those
	 * records leave the spool now instead of going out twice.
	 */
	for (;;) {
		zmq_pollitem_t items[MAX_BRIDGES * 20];
		int n = 0, timeout = 1000, t, at[MAX_BRIDGES];
		uint64_t taken[MAX_BRIDGES];
		unsigned wait, wait_us[MAX_BRIDGES];
		int64_t now;

		if (*stop && drain_until == 0) {
			if (unconfirmed() == 0)
				break;
			log_info("stopping: waiting up to %d ms for the "
			    "brokers to confirm %u sends", DRAIN_MS,
			    unconfirmed());
			drain_until = clock_ms() + DRAIN_MS;
		}
		if (drain_until &&
		    (unconfirmed() == 0 || clock_ms() >= drain_until))
			break;
		for (i = 0; i < nall; i++) {
			struct bridge *br = all[i];

			at[i] = -1;
			br->broker->ops->poll_item(br->broker, &items[n]);
			if (items[n].fd >= 0)
				at[i] = n++;
			if (br->sub && !drain_until)
				n += bus_subscriber_poll_items(br->sub, items + n,
				    16);
			t = br->broker->ops->timeout_ms(br->broker, clock_ms());
			if (t >= 0 && t < timeout)
				timeout = t;
			if ((br->rewind || br->blocked) && timeout > 50)
				timeout = 50;
		}
		if (drain_until && timeout > 50)
			timeout = 50;
		if (zmq_poll(items, n, timeout) < 0 && errno != EINTR) {
			log_err("poll: %s", zmq_strerror(errno));
			status = 1;
			break;
		}
		now = clock_ms();
		for (i = 0; i < nall; i++) {
			struct bridge *br = all[i];

			taken[i] = br->st.in;
			br->broker->ops->handle(br->broker, at[i] >= 0 ?
			    items[at[i]].revents : 0, now);
			if (br->sub && !drain_until) {
				take_from_zmq(br);
				send_spooled(br);
			}
			taken[i] = br->st.in - taken[i];
			wait_us[i] = br->coalesce_us;
		}
		wait = coalesce_wait(taken, wait_us, nall);
		if (wait && !*stop && !drain_until) {
			flush_output();
			clock_sleep_us(wait);
		}
	}
out:
	for (i = 0; i < nall; i++) {
		log_stats(all[i]);
		bridge_free(all[i]);
	}
	nall = 0;
	id_window_free(seen);
	seen = NULL;
	zep_shutdown();
	return status;
}
