/*
 * bench_broker: one throughput run through a message broker, for
 * tests/bench/run_brokers.sh (the broker half of `make bench`).
 *
 *   bench_broker [-n N] [-w WINDOW] [-p BRIDGE_PID] [-b BROKER_PID] [-r]
 *	[-a ACK] [-c PREFETCH] [-S] [-W WARM] NAME FROM TO ENVFILE
 *
 * A sender on FROM and a receiver on TO, in one process (two threads, so
 * that one clock times both ends).  FROM and TO are one of:
 *
 *   zmq-bind:tcp://HOST:PORT	(FROM only) an XPUB bound there, as the
 *				fedmsg endpoint a ZeroMQ -> broker
 *				fedmsg-bridge subscribes to; sending starts
 *				once its subscription arrived
 *   zmq:tcp://HOST:PORT		(TO only) a SUB connected to the PUB a
 *				broker -> ZeroMQ bridge binds
 *   amqp://HOST:PORT/ADDRESS	AMQP 1.0 with qpid-proton's proactor, as in
 *				its C examples send.c / receive.c: SASL
 *				ANONYMOUS, a sender link whose deliveries
 *				stay unsettled until the broker settles
 *				them, a receiver link granting 1000 credit
 *				(topped up below 500) that accepts and
 *				settles each message.  -S: the sender
 *				shapes each message as fedmsg-bridge
 *				does (env_shape(): message-id, subject,
 *				creation-time, to, application
 *				properties)
 *   amqp091://HOST:PORT/QUEUE[@EXCHANGE]
 *				AMQP 0-9-1 with rabbitmq-c, as its examples
 *				amqp_sendstring.c / amqp_listen.c but with
 *				the bridge's guarantees: guest/guest, vhost
 *				"/", QUEUE declared (not durable, not
 *				auto-delete, as the bridge's bench config);
 *				the sender publishes to the default exchange,
 *				mandatory, delivery mode 2, a message_id
 *				each, on a channel in
 *				confirm mode (basic.ack counted); the
 *				receiver sets basic.qos -c PREFETCH (default
 *				100, the bridge's credit) and basic.acks each
 *				message.  @EXCHANGE: the receiver also
 *				declares that topic exchange (durable) and
 *				binds QUEUE to it with "#" (for a peer that
 *				publishes to an exchange)
 *   stomp://HOST:PORT/DEST	STOMP 1.2 with fedmsg-c's own client
 *				(brokers/stomp.h): SEND with content-length
 *				(-r: and a receipt each, as fedmsg-bridge
 *				sends); SUBSCRIBE with ack ACK (-a auto |
 *				client | client-individual, default auto),
 *				-c PREFETCH as activemq.prefetchSize and
 *				prefetch-count (default: the broker's);
 *				-S: the sender adds the headers
 *				fedmsg-bridge sends (stomp_shape())
 *
 * ENVFILE (bench_zmq envelopes): lines "m TOPIC BODY" (signed envelopes
 * carrying "bench_seq": k, all distinct msg_ids) and "p TOPIC BODY"
 * (signed probes).  Bodies go out as they are: an AMQP data section
 * (application/json, durable, inferred), a STOMP body with content-type
 * application/json and amq-msg-type text (what fedmsg-bridge sends);
 * ZeroMQ as topic and body frames.
 *
 * The run: probes, one every 100 ms, each a new message, until one comes
 * out at TO (the path is up: broker connections, subscriptions, a
 * bridge's ZeroMQ connection); -W: the last WARM messages of ENVFILE
 * (bench_seq >= N), untimed, with the same window, until all arrived (the
 * steady state of a long-running bridge: its heap, spool segments and
 * caches at their working size, not their first growth, which a run of
 * 10 000 messages counted at some 5 us per message); 300 ms of quiet;
 * then the first N messages
 * of ENVFILE as fast as the path takes them with at most WINDOW sent and
 * not yet received (end to end, so no queue on the way grows past it and
 * no ZeroMQ high-water mark is reached); then until all N arrived, or 3 s
 * without one.  msgs/s = distinct messages received / (last arrival -
 * first send).
 *
 * Output, one line:
 *   broker NAME SENT RECEIVED DUPS SECONDS MSGS_PER_S BRIDGE_CPU_S
 *	BROKER_CPU_S CLIENT_CPU_S
 * *_CPU_S: user+system seconds of that PID (from /proc) over the timed
 * part, -1 without the option; CLIENT_CPU_S this process's.  It only
 * reports; exit 1 when a run could not be made (no connection, no probe
 * through in 15 s, nothing received), 2 usage.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/link.h>
#include <proton/message.h>
#include <proton/proactor.h>
#include <proton/sasl.h>
#include <proton/session.h>
#include <proton/transport.h>
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <jansson.h>
#include <zmq.h>

#include <fedmsg/message.h>

#include "bench_util.h"
#include "bench_zsock.h"

#include "stomp.h"

#define SEQ_KEY		"\"bench_seq\":"
#define PROBE_MARK	".bench.probe"
#define PROBE_KEY	"\"probe\""	/* a probe's payload, without its topic */
#define PROBE_EVERY_NS	100000000LL
#define PROBE_FOR_NS	15000000000LL
#define QUIET_NS	300000000LL
#define STALL_NS	3000000000LL
#define AMQP_CREDIT	1000

/* ---- small helpers ------------------------------------------------------ */

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static double
num_arg(const char *s, double lo, double hi)
{
	char *end;
	double d = strtod(s, &end);

	if (*end != '\0' || !(d >= lo && d <= hi)) {
		fprintf(stderr, "bench_broker: bad number '%s'\n", s);
		exit(2);
	}
	return d;
}

/* ---- the messages --------------------------------------------------------- */

/* SHAPE_PROPS: the application properties an AMQP sender with -S adds */
#define SHAPE_PROPS 8

struct env {
	const char	*topic, *body;
	size_t		 tlen, blen;
	/* -S: its msg_id, and properties as fedmsg-bridge derives them */
	char		*msg_id;
	char		*pk[SHAPE_PROPS], *pv[SHAPE_PROPS];
	int		 np;
};

struct envs {
	struct env	*msg, *probe;
	unsigned long	 nmsg, nprobe;
};

/*
 * -S: what fedmsg-bridge (its "fedmsg" format) sends beside the body: the
 * envelope's msg_id as message-id, and as application properties the
 * topic, the bridge's origin mark and the payload's top-level scalars, as
 * text (brokers/broker_format.c).  Worked out here, before the timed part,
 * like the bridge's parse that the bridge pays for in its own CPU.
 */
static void
env_shape(struct env *x)
{
	json_t *root = json_loadb(x->body, x->blen, 0, NULL), *v;
	const char *k;

	x->np = 0;
	x->pk[x->np] = strdup("topic");
	x->pv[x->np++] = strdup(x->topic);
	x->pk[x->np] = strdup("fedmsg_c_bridge");
	x->pv[x->np++] = strdup("bench_broker");
	x->msg_id = strdup(json_string_value(json_object_get(root, "msg_id")) ?
	    json_string_value(json_object_get(root, "msg_id")) : "");
	json_object_foreach(json_object_get(root, "msg"), k, v) {
		char *text;

		if (x->np == SHAPE_PROPS)
			break;
		if (json_is_string(v))
			text = strdup(json_string_value(v));
		else if (json_is_number(v) || json_is_boolean(v))
			text = json_dumps(v, JSON_ENCODE_ANY);
		else
			continue;
		x->pk[x->np] = strdup(k);
		x->pv[x->np++] = text;
	}
	json_decref(root);
}

static void
envs_load(struct envs *e, const char *path, bool shaped)
{
	FILE *f = fopen(path, "r");
	size_t cap = 0, mcap = 0, pcap = 0;
	char *line = NULL;
	ssize_t n;

	memset(e, 0, sizeof(*e));
	if (f == NULL) {
		perror(path);
		exit(1);
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		char *sp1 = memchr(line, ' ', (size_t)n), *sp2;
		struct env x, **arr;
		unsigned long *cnt;
		size_t *acap;

		if (line[n - 1] == '\n')
			line[--n] = '\0';
		if (sp1 == NULL || (sp2 = strchr(sp1 + 1, ' ')) == NULL ||
		    (line[0] != 'm' && line[0] != 'p')) {
			fprintf(stderr, "bench_broker: %s: bad line\n", path);
			exit(1);
		}
		*sp2 = '\0';
		x.topic = strdup(sp1 + 1);
		x.tlen = (size_t)(sp2 - sp1 - 1);
		x.blen = (size_t)(line + n - sp2 - 1);
		x.body = memcpy(malloc(x.blen + 1), sp2 + 1, x.blen + 1);
		x.np = 0;
		x.msg_id = NULL;
		if (shaped)
			env_shape(&x);
		arr = line[0] == 'm' ? &e->msg : &e->probe;
		cnt = line[0] == 'm' ? &e->nmsg : &e->nprobe;
		acap = line[0] == 'm' ? &mcap : &pcap;
		if (*cnt == *acap) {
			*acap = *acap ? *acap * 2 : 1024;
			*arr = realloc(*arr, *acap * sizeof(**arr));
		}
		(*arr)[(*cnt)++] = x;
	}
	free(line);
	fclose(f);
	if (e->nmsg == 0 || e->nprobe == 0) {
		fprintf(stderr, "bench_broker: %s: no messages or no probes\n",
		    path);
		exit(1);
	}
}

/* ---- the driver: what to send when; what arrived ------------------------------ */

enum phase { PH_PROBE, PH_WARM, PH_QUIET, PH_TIMED, PH_DRAIN };

struct drv {
	const struct envs	*e;
	const char		*name;
	unsigned long		 n, window, warm;
	long			 bridge_pid, broker_pid;
	/* the receiver's (one writer) */
	atomic_ulong		 received, dups, probes, bad, warmed;
	_Atomic int64_t		 t_last;
	atomic_bool		 rx_ready, rx_failed;
	unsigned char		*seen;		/* bitmap of bench_seq */
	/* the sender's */
	enum phase		 phase;
	unsigned long		 k, pi, wk, last_rx;
	int64_t			 t_probe, t_first_probe, t_quiet, t0, t_progress;
	double			 bcpu0, kcpu0, ccpu0;
	bool			 failed;
	/* both */
	atomic_bool		 finished;	/* stop sending and receiving */
};

/* The receiver saw a body. */
static void
drv_arrived(struct drv *d, const char *body, size_t len)
{
	const char *s = memmem(body, len, SEQ_KEY, sizeof(SEQ_KEY) - 1);

	if (s != NULL) {
		unsigned long k = strtoul(s + sizeof(SEQ_KEY) - 1, NULL, 10);

		if (k >= d->n) {	/* -W's, or a run's with a larger N */
			atomic_store(&d->warmed, atomic_load(&d->warmed) + 1);
			return;
		}
		if (d->seen[k / 8] & (1u << (k % 8))) {
			atomic_store(&d->dups, atomic_load(&d->dups) + 1);
			return;
		}
		d->seen[k / 8] |= (unsigned char)(1u << (k % 8));
		atomic_store(&d->t_last, now_ns());
		atomic_store(&d->received, atomic_load(&d->received) + 1);
	} else if (memmem(body, len, PROBE_MARK, sizeof(PROBE_MARK) - 1) ||
	    memmem(body, len, PROBE_KEY, sizeof(PROBE_KEY) - 1)) {
		atomic_store(&d->probes, atomic_load(&d->probes) + 1);
	} else {
		atomic_store(&d->bad, atomic_load(&d->bad) + 1);
	}
}

static void
drv_finish(struct drv *d, bool failed)
{
	d->failed = d->failed || failed;
	atomic_store(&d->finished, true);
}

/* How many of a phase's messages arrived; when that moved last. */
static unsigned long
progress(struct drv *d, atomic_ulong *count, int64_t now)
{
	unsigned long rx = atomic_load(count);

	if (rx != d->last_rx) {
		d->last_rx = rx;
		d->t_progress = now;
	}
	return rx;
}

/*
 * The sender asks what to send: 1 and *m (send it now), 0 (nothing now;
 * ask again within *wait_ms or on progress), -1 (done: close).
 */
static int
drv_next(struct drv *d, const struct env **m, int *wait_ms)
{
	int64_t now = now_ns();
	unsigned long rx;

	*wait_ms = 1;
	if (atomic_load(&d->finished))
		return -1;
	switch (d->phase) {
	case PH_PROBE:
		if (atomic_load(&d->probes) > 0) {
			d->phase = d->warm ? PH_WARM : PH_QUIET;
			d->t_quiet = now + QUIET_NS;
			d->t_progress = now;
			return 0;
		}
		if (d->t_first_probe == 0)
			d->t_first_probe = now;
		if (now - d->t_first_probe > PROBE_FOR_NS ||
		    d->pi == d->e->nprobe) {
			fprintf(stderr, "bench_broker: %s: no probe came through "
			    "in %.0f s (%lu sent)\n", d->name,
			    (double)(now - d->t_first_probe) / 1e9, d->pi);
			drv_finish(d, true);
			return -1;
		}
		if (now >= d->t_probe) {
			*m = &d->e->probe[d->pi++];
			d->t_probe = now + PROBE_EVERY_NS;
			return 1;
		}
		*wait_ms = (int)((d->t_probe - now) / 1000000) + 1;
		return 0;
	case PH_WARM:
		/* -W: the last WARM messages of ENVFILE, untimed, as the probes */
		rx = progress(d, &d->warmed, now);
		if (d->wk < d->warm && d->wk - rx < d->window) {
			*m = &d->e->msg[d->e->nmsg - d->warm + d->wk++];
			return 1;
		}
		if (rx < d->warm && now - d->t_progress <= STALL_NS)
			return 0;
		if (rx < d->warm)
			fprintf(stderr, "bench_broker: %s: %lu of %lu warm-up "
			    "messages arrived; timing anyway\n", d->name, rx,
			    d->warm);
		d->phase = PH_QUIET;
		d->last_rx = 0;
		d->t_quiet = now + QUIET_NS;
		return 0;
	case PH_QUIET:
		if (now < d->t_quiet) {
			*wait_ms = (int)((d->t_quiet - now) / 1000000) + 1;
			return 0;
		}
		d->phase = PH_TIMED;
		d->bcpu0 = cpu_of(d->bridge_pid);
		d->kcpu0 = cpu_of(d->broker_pid);
		d->ccpu0 = cpu_self();
		d->t0 = d->t_progress = now_ns();
		/* FALLTHROUGH */
	case PH_TIMED:
		rx = progress(d, &d->received, now);
		if (d->k < d->n && d->k - rx < d->window) {
			*m = &d->e->msg[d->k++];
			return 1;
		}
		if (d->k < d->n) {
			if (now - d->t_progress > STALL_NS) {
				fprintf(stderr, "bench_broker: %s: nothing arrived "
				    "for 3 s with %lu in flight; stopping\n",
				    d->name, d->k - rx);
				d->phase = PH_DRAIN;
			}
			return 0;
		}
		d->phase = PH_DRAIN;
		/* FALLTHROUGH */
	case PH_DRAIN:
		rx = progress(d, &d->received, now);
		if (rx >= d->k || now - d->t_progress > STALL_NS) {
			drv_finish(d, false);
			return -1;
		}
		*wait_ms = 5;
		return 0;
	}
	return -1;
}

/* ---- endpoints ---------------------------------------------------------------- */

struct ep {
	enum { EP_ZMQ_BIND, EP_ZMQ, EP_AMQP, EP_AMQP091, EP_STOMP } kind;
	char	*url;		/* zmq URL */
	char	*host, *port, *addr;
};

static void
ep_parse(struct ep *ep, const char *spec)
{
	const char *hp, *slash, *colon;

	memset(ep, 0, sizeof(*ep));
	if (strncmp(spec, "zmq-bind:", 9) == 0) {
		ep->kind = EP_ZMQ_BIND;
		ep->url = strdup(spec + 9);
		return;
	}
	if (strncmp(spec, "zmq:", 4) == 0) {
		ep->kind = EP_ZMQ;
		ep->url = strdup(spec + 4);
		return;
	}
	if (strncmp(spec, "amqp://", 7) == 0) {
		ep->kind = EP_AMQP;
		hp = spec + 7;
	} else if (strncmp(spec, "amqp091://", 10) == 0) {
		ep->kind = EP_AMQP091;
		hp = spec + 10;
	} else if (strncmp(spec, "stomp://", 8) == 0) {
		ep->kind = EP_STOMP;
		hp = spec + 8;
	} else {
		goto bad;
	}
	if ((slash = strchr(hp, '/')) == NULL || slash[1] == '\0' ||
	    (colon = memchr(hp, ':', (size_t)(slash - hp))) == NULL)
		goto bad;
	ep->host = strndup(hp, (size_t)(colon - hp));
	ep->port = strndup(colon + 1, (size_t)(slash - colon - 1));
	ep->addr = strdup(slash);
	ep->url = strndup(spec, (size_t)(slash - spec));
	return;
bad:
	fprintf(stderr, "bench_broker: '%s': want zmq-bind:URL, zmq:URL, "
	    "amqp://HOST:PORT/ADDRESS, amqp091://HOST:PORT/QUEUE or "
	    "stomp://HOST:PORT/DEST\n", spec);
	exit(2);
}

struct opts {
	const char	*name;
	struct ep	 from, to;
	bool		 receipts, shaped;
	const char	*ack;
	const char	*prefetch;
};

/* ---- ZeroMQ ----------------------------------------------------------------- */

static void
zmq_sender(struct drv *d, const struct opts *o, void *ctx)
{
	void *pub = bench_zsock(ctx, ZMQ_XPUB, "bench_broker");
	zmq_pollitem_t it = { pub, 0, ZMQ_POLLIN, 0 };
	char sub[256];
	int linger = 2000;

	if (zmq_bind(pub, o->from.url) < 0) {
		fprintf(stderr, "bench_broker: bind %s: %s\n", o->from.url,
		    zmq_strerror(errno));
		drv_finish(d, true);
		return;
	}
	/* the bridge's subscription: its SUB has connected */
	if (zmq_poll(&it, 1, 15000) <= 0 ||
	    zmq_recv(pub, sub, sizeof(sub), 0) < 1 || sub[0] != 1) {
		fprintf(stderr, "bench_broker: %s: no subscriber on %s in 15 s\n",
		    o->name, o->from.url);
		drv_finish(d, true);
		zmq_close(pub);
		return;
	}
	for (;;) {
		const struct env *m;
		int wait, r = drv_next(d, &m, &wait);

		if (r < 0)
			break;
		if (r == 0) {
			sleep_ms(wait > 5 ? 5 : wait);
			continue;
		}
		if (zmq_send(pub, m->topic, m->tlen, ZMQ_SNDMORE) < 0 ||
		    zmq_send(pub, m->body, m->blen, 0) < 0) {
			fprintf(stderr, "bench_broker: zmq_send: %s\n",
			    zmq_strerror(errno));
			drv_finish(d, true);
			break;
		}
	}
	zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_close(pub);
}

static void
zmq_receiver(struct drv *d, const struct opts *o, void *ctx)
{
	void *sub = bench_zsock(ctx, ZMQ_SUB, "bench_broker");
	int timeout = 10;

	zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
	zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	if (zmq_connect(sub, o->to.url) < 0) {
		fprintf(stderr, "bench_broker: connect %s: %s\n", o->to.url,
		    zmq_strerror(errno));
		atomic_store(&d->rx_failed, true);
		zmq_close(sub);
		return;
	}
	atomic_store(&d->rx_ready, true);
	while (!atomic_load(&d->finished)) {
		zmq_msg_t t, b;

		zmq_msg_init(&t);
		if (zmq_msg_recv(&t, sub, 0) < 0) {
			zmq_msg_close(&t);
			continue;
		}
		zmq_msg_init(&b);
		if (zmq_msg_more(&t) && zmq_msg_recv(&b, sub, 0) >= 0)
			drv_arrived(d, zmq_msg_data(&b), zmq_msg_size(&b));
		zmq_msg_close(&t);
		zmq_msg_close(&b);
	}
	zmq_close(sub);
}

/* ---- AMQP 1.0 (qpid-proton proactor, as in its C examples) ------------------- */

struct amqp {
	struct drv		*d;
	const struct ep		*ep;
	bool			 sender;
	pn_proactor_t		*pr;
	pn_connection_t		*conn;
	pn_link_t		*link;
	pn_message_t		*msg;
	pn_rwbytes_t		 buf, in;
	uint64_t		 tag;
	unsigned long		 accepted, refused;
	bool			 closing, failed;
};

static void
amqp_condition(struct amqp *a, pn_event_t *e, pn_condition_t *c)
{
	if (pn_condition_is_set(c) && !a->closing) {
		fprintf(stderr, "bench_broker: %s: %s: %s: %s\n", a->d->name,
		    pn_event_type_name(pn_event_type(e)), pn_condition_get_name(c),
		    pn_condition_get_description(c));
		a->failed = true;
	}
}

/* -S: the message as fedmsg-bridge's brokers/amqp.c shapes it */
static void
amqp_shape(struct amqp *a, const struct env *m)
{
	pn_data_t *props = pn_message_properties(a->msg);
	pn_atom_t id = { .type = PN_STRING };
	int i;

	id.u.as_bytes = pn_bytes(strlen(m->msg_id), m->msg_id);
	pn_message_set_id(a->msg, id);
	pn_message_set_subject(a->msg, m->topic);
	pn_message_set_creation_time(a->msg, now_ns() / 1000000);
	pn_message_set_address(a->msg, a->ep->addr);
	pn_data_put_map(props);
	pn_data_enter(props);
	for (i = 0; i < m->np; i++) {
		pn_data_put_string(props, pn_bytes(strlen(m->pk[i]), m->pk[i]));
		pn_data_put_string(props, pn_bytes(strlen(m->pv[i]), m->pv[i]));
	}
	pn_data_exit(props);
}

/* Send while there is credit and the driver has something. */
static void
amqp_pump(struct amqp *a)
{
	const struct env *m;
	int wait = 1, r = 0;

	if (a->closing)
		return;
	while (a->link && pn_link_credit(a->link) > 0 &&
	    (r = drv_next(a->d, &m, &wait)) == 1) {
		pn_data_t *body;

		a->tag++;
		pn_delivery(a->link, pn_dtag((const char *)&a->tag,
		    sizeof(a->tag)));
		pn_message_clear(a->msg);
		pn_message_set_id(a->msg, (pn_atom_t){ .type = PN_ULONG,
		    .u.as_ulong = a->tag });
		pn_message_set_content_type(a->msg, "application/json");
		pn_message_set_durable(a->msg, true);
		pn_message_set_inferred(a->msg, true);
		body = pn_message_body(a->msg);
		pn_data_put_binary(body, pn_bytes(m->blen, m->body));
		if (m->msg_id)
			amqp_shape(a, m);
		if (pn_message_send(a->msg, a->link, &a->buf) < 0) {
			fprintf(stderr, "bench_broker: pn_message_send: %s\n",
			    pn_error_text(pn_message_error(a->msg)));
			drv_finish(a->d, true);
			break;
		}
	}
	if (atomic_load(&a->d->finished)) {
		a->closing = true;
		pn_connection_close(a->conn);
	} else {
		/* "not now": ask again then; no credit: look again in 5 ms
		   (the driver's clocks run while PN_LINK_FLOW is awaited) */
		pn_proactor_set_timeout(a->pr, (pn_millis_t)(r == 0 && wait > 0 ?
		    wait : 5));
	}
}

static void
amqp_received(struct amqp *a, pn_delivery_t *dl)
{
	pn_link_t *l = pn_delivery_link(dl);
	size_t size = pn_delivery_pending(dl);
	pn_rwbytes_t *m = &a->in;
	ssize_t n;

	if (size > 0) {
		m->start = realloc(m->start, m->size + size);
		n = pn_link_recv(l, m->start + m->size, size);
		if (n > 0)
			m->size += (size_t)n;
	}
	if (pn_delivery_partial(dl))
		return;
	if (!a->msg)
		a->msg = pn_message();
	pn_message_clear(a->msg);	/* as the bridge must (brokers/amqp.c) */
	if (pn_message_decode(a->msg, m->start, m->size) == 0) {
		pn_data_t *body = pn_message_body(a->msg);

		pn_data_rewind(body);
		if (pn_data_next(body)) {
			pn_bytes_t b = pn_data_type(body) == PN_BINARY ?
			    pn_data_get_binary(body) :
			    pn_data_type(body) == PN_STRING ?
			    pn_data_get_string(body) : pn_bytes(0, NULL);

			drv_arrived(a->d, b.start ? b.start : "", b.size);
		}
	}
	m->size = 0;
	pn_delivery_update(dl, PN_ACCEPTED);
	pn_delivery_settle(dl);
	if (pn_link_credit(l) < AMQP_CREDIT / 2)
		pn_link_flow(l, AMQP_CREDIT - pn_link_credit(l));
}

static bool
amqp_handle(struct amqp *a, pn_event_t *e)
{
	switch (pn_event_type(e)) {
	case PN_CONNECTION_INIT: {
		pn_connection_t *c = pn_event_connection(e);
		pn_session_t *s = pn_session(c);

		pn_connection_set_container(c, a->sender ? "bench_broker-send" :
		    "bench_broker-receive");
		pn_connection_open(c);
		pn_session_open(s);
		if (a->sender) {
			a->link = pn_sender(s, "bench-sender");
			pn_terminus_set_address(pn_link_target(a->link),
			    a->ep->addr);
			pn_link_set_snd_settle_mode(a->link, PN_SND_UNSETTLED);
		} else {
			a->link = pn_receiver(s, "bench-receiver");
			pn_terminus_set_address(pn_link_source(a->link),
			    a->ep->addr);
			pn_link_flow(a->link, AMQP_CREDIT);
		}
		pn_link_open(a->link);
		break;
	}
	case PN_CONNECTION_BOUND:
		pn_sasl_allowed_mechs(pn_sasl(pn_event_transport(e)),
		    "ANONYMOUS");
		break;
	case PN_LINK_REMOTE_OPEN:
		if (!a->sender)
			atomic_store(&a->d->rx_ready, true);
		break;
	case PN_LINK_FLOW:
	case PN_CONNECTION_WAKE:
		if (a->sender)
			amqp_pump(a);
		else if (atomic_load(&a->d->finished) && !a->closing) {
			a->closing = true;
			pn_connection_close(a->conn);
		}
		break;
	case PN_PROACTOR_TIMEOUT:
		if (!a->closing)
			pn_connection_wake(a->conn);
		if (!a->sender && !a->closing)	/* to see "finished" */
			pn_proactor_set_timeout(a->pr, 10);
		break;
	case PN_DELIVERY: {
		pn_delivery_t *dl = pn_event_delivery(e);

		if (a->sender) {
			if (pn_delivery_remote_state(dl) == PN_ACCEPTED)
				a->accepted++;
			else
				a->refused++;
			pn_delivery_settle(dl);
			amqp_pump(a);
		} else if (pn_delivery_readable(dl)) {
			amqp_received(a, dl);
		}
		break;
	}
	case PN_TRANSPORT_CLOSED:
		amqp_condition(a, e, pn_transport_condition(
		    pn_event_transport(e)));
		break;
	case PN_CONNECTION_REMOTE_CLOSE:
		amqp_condition(a, e, pn_connection_remote_condition(
		    pn_event_connection(e)));
		pn_connection_close(pn_event_connection(e));
		break;
	case PN_SESSION_REMOTE_CLOSE:
		amqp_condition(a, e, pn_session_remote_condition(
		    pn_event_session(e)));
		pn_connection_close(pn_event_connection(e));
		break;
	case PN_LINK_REMOTE_CLOSE:
	case PN_LINK_REMOTE_DETACH:
		amqp_condition(a, e, pn_link_remote_condition(pn_event_link(e)));
		pn_connection_close(pn_event_connection(e));
		break;
	case PN_PROACTOR_INACTIVE:
		return false;
	default:
		break;
	}
	return true;
}

static void
amqp_run(struct drv *d, const struct ep *ep, bool sender)
{
	struct amqp a;
	char addr[PN_MAX_ADDR];
	bool more = true;

	memset(&a, 0, sizeof(a));
	a.d = d;
	a.ep = ep;
	a.sender = sender;
	a.pr = pn_proactor();
	if (sender)
		a.msg = pn_message();
	a.conn = pn_connection();
	pn_proactor_addr(addr, sizeof(addr), ep->host, ep->port);
	pn_proactor_connect2(a.pr, a.conn, NULL, addr);
	if (!sender)	/* wake up now and then to see "finished" */
		pn_proactor_set_timeout(a.pr, 10);
	while (more) {
		pn_event_batch_t *b = pn_proactor_wait(a.pr);
		pn_event_t *e;

		while (more && (e = pn_event_batch_next(b)) != NULL)
			more = amqp_handle(&a, e);
		pn_proactor_done(a.pr, b);
		if (a.failed && !a.closing) {
			/* the connection is gone or going */
			a.closing = true;
			if (sender)
				drv_finish(d, true);
			else
				atomic_store(&d->rx_failed, true);
		}
	}
	if (sender && a.refused)
		fprintf(stderr, "bench_broker: %s: the broker did not accept %lu "
		    "message(s)\n", d->name, a.refused);
	pn_proactor_free(a.pr);
	if (a.msg)
		pn_message_free(a.msg);
	free(a.buf.start);
	free(a.in.start);
}

/* ---- AMQP 0-9-1 (rabbitmq-c) -------------------------------------------------- */

#define A091_CHANNEL	1

/* An RPC's reply: false (and a line on stderr) unless normal. */
static bool
a091_ok(struct drv *d, amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return true;
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
		fprintf(stderr, "bench_broker: %s: %s: %s\n", d->name, what,
		    amqp_error_string2(r.library_error));
	else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD ||
	    r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		/* both carry reply_code, then reply_text, first */
		amqp_channel_close_t *c = r.reply.decoded;

		fprintf(stderr, "bench_broker: %s: %s: %u %.*s\n", d->name,
		    what, c->reply_code, (int)c->reply_text.len,
		    (const char *)c->reply_text.bytes);
	} else
		fprintf(stderr, "bench_broker: %s: %s: server method 0x%08x\n",
		    d->name, what, (unsigned)r.reply.id);
	return false;
}

/* QUEUE of "/QUEUE[@EXCHANGE]" (points into ep->addr) */
static amqp_bytes_t
a091_queue(const struct ep *ep)
{
	const char *q = ep->addr + 1, *x = strchr(q, '@');

	return x ? (amqp_bytes_t){ (size_t)(x - q), (void *)q } :
	    amqp_cstring_bytes(q);
}

/* Connect, log in, open the channel, declare the queue (and with
   "@EXCHANGE", that topic exchange, durable, bound with "#"); NULL on failure
   (said why). */
static amqp_connection_state_t
a091_open(struct drv *d, const struct ep *ep)
{
	amqp_connection_state_t c = amqp_new_connection();
	amqp_socket_t *s = amqp_tcp_socket_new(c);
	amqp_bytes_t qb = a091_queue(ep);
	const char *x = strchr(ep->addr, '@');

	if (s == NULL || amqp_socket_open(s, ep->host, atoi(ep->port)) !=
	    AMQP_STATUS_OK) {
		fprintf(stderr, "bench_broker: %s: connect %s: failed\n",
		    d->name, ep->url);
		amqp_destroy_connection(c);
		return NULL;
	}
	if (!a091_ok(d, amqp_login(c, "/", 0, 131072, 0,
	    AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login"))
		goto fail;
	amqp_channel_open(c, A091_CHANNEL);
	if (!a091_ok(d, amqp_get_rpc_reply(c), "channel.open"))
		goto fail;
	amqp_queue_declare(c, A091_CHANNEL, qb, 0, 0, 0, 0, amqp_empty_table);
	if (!a091_ok(d, amqp_get_rpc_reply(c), "queue.declare"))
		goto fail;
	if (x != NULL) {	/* QUEUE@EXCHANGE: a topic exchange, all keys */
		amqp_exchange_declare(c, A091_CHANNEL, amqp_cstring_bytes(x + 1),
		    amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
		if (!a091_ok(d, amqp_get_rpc_reply(c), "exchange.declare"))
			goto fail;
		amqp_queue_bind(c, A091_CHANNEL, qb, amqp_cstring_bytes(x + 1),
		    amqp_cstring_bytes("#"), amqp_empty_table);
		if (!a091_ok(d, amqp_get_rpc_reply(c), "queue.bind"))
			goto fail;
	}
	return c;
fail:
	amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
	return NULL;
}

static void
a091_close(amqp_connection_state_t c)
{
	amqp_channel_close(c, A091_CHANNEL, AMQP_REPLY_SUCCESS);
	amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
}

/* Read what the broker sent the publisher within wait_us: confirms
   (basic.ack/nack, maybe "multiple"), returns (then their content).
   Returns false when the connection failed. */
static bool
a091_confirms(struct drv *d, amqp_connection_state_t c, long wait_us,
    uint64_t *acked, unsigned long *refused)
{
	for (;;) {
		struct timeval tv = { wait_us / 1000000, wait_us % 1000000 };
		amqp_frame_t f;
		int r = amqp_simple_wait_frame_noblock(c, &f, &tv);

		if (r == AMQP_STATUS_TIMEOUT)
			return true;
		if (r != AMQP_STATUS_OK) {
			fprintf(stderr, "bench_broker: %s: %s\n", d->name,
			    amqp_error_string2(r));
			return false;
		}
		wait_us = 0;	/* then take what is there */
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		switch (f.payload.method.id) {
		case AMQP_BASIC_ACK_METHOD: {
			amqp_basic_ack_t *a = f.payload.method.decoded;

			*acked = a->multiple ? a->delivery_tag : *acked + 1;
			break;
		}
		case AMQP_BASIC_NACK_METHOD: {
			amqp_basic_nack_t *n = f.payload.method.decoded;

			(*refused)++;
			*acked = n->multiple ? n->delivery_tag : *acked + 1;
			break;
		}
		case AMQP_BASIC_RETURN_METHOD: {
			amqp_message_t m;

			(*refused)++;
			if (amqp_read_message(c, f.channel, &m, 0).reply_type ==
			    AMQP_RESPONSE_NORMAL)
				amqp_destroy_message(&m);
			break;
		}
		default:
			fprintf(stderr, "bench_broker: %s: unexpected method "
			    "0x%08x\n", d->name, (unsigned)f.payload.method.id);
			return false;
		}
	}
}

static void
a091_send(struct drv *d, const struct ep *ep)
{
	amqp_connection_state_t c = a091_open(d, ep);
	amqp_basic_properties_t p;
	uint64_t sent = 0, acked = 0;
	unsigned long refused = 0;
	int64_t until;

	if (c == NULL) {
		drv_finish(d, true);
		return;
	}
	amqp_confirm_select(c, A091_CHANNEL);
	if (!a091_ok(d, amqp_get_rpc_reply(c), "confirm.select")) {
		drv_finish(d, true);
		a091_close(c);
		return;
	}
	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
	    AMQP_BASIC_CONTENT_ENCODING_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
	    AMQP_BASIC_MESSAGE_ID_FLAG;
	p.content_type = amqp_cstring_bytes("application/json");
	p.content_encoding = amqp_cstring_bytes("utf-8");
	p.delivery_mode = 2;
	for (;;) {
		const struct env *m;
		int wait, r = drv_next(d, &m, &wait);

		if (r < 0)
			break;
		if (r == 1) {
			char id[32];	/* fedora-messaging wants one */

			snprintf(id, sizeof(id), "bench-%llu",
			    (unsigned long long)sent);
			p.message_id = amqp_cstring_bytes(id);
			if (amqp_basic_publish(c, A091_CHANNEL, amqp_empty_bytes,
			    a091_queue(ep), 1, 0, &p,
			    (amqp_bytes_t){ m->blen, (void *)m->body }) !=
			    AMQP_STATUS_OK) {
				fprintf(stderr, "bench_broker: %s: basic.publish "
				    "failed\n", d->name);
				drv_finish(d, true);
				break;
			}
			sent++;
		}
		if (!a091_confirms(d, c, r == 1 ? 0 : 1000L * (wait > 5 ? 5 :
		    wait), &acked, &refused)) {
			drv_finish(d, true);
			break;
		}
	}
	/* the rest of the confirms, for the count */
	until = now_ns() + 2000000000LL;
	while (acked < sent && now_ns() < until &&
	    a091_confirms(d, c, 10000, &acked, &refused))
		;
	if (refused || acked < sent)
		fprintf(stderr, "bench_broker: %s: %lu refused (nack, return), "
		    "%lu not confirmed\n", d->name, refused,
		    (unsigned long)(sent - acked));
	a091_close(c);
}

static void
a091_receive(struct drv *d, const struct opts *o)
{
	amqp_connection_state_t c = a091_open(d, &o->to);
	long prefetch = o->prefetch ? atol(o->prefetch) : 100;

	if (c == NULL) {
		atomic_store(&d->rx_failed, true);
		return;
	}
	amqp_basic_qos(c, A091_CHANNEL, 0, (uint16_t)prefetch, 0);
	if (!a091_ok(d, amqp_get_rpc_reply(c), "basic.qos"))
		goto fail;
	amqp_basic_consume(c, A091_CHANNEL, a091_queue(&o->to),
	    amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
	if (!a091_ok(d, amqp_get_rpc_reply(c), "basic.consume"))
		goto fail;
	atomic_store(&d->rx_ready, true);
	while (!atomic_load(&d->finished)) {
		struct timeval tv = { 0, 10000 };
		amqp_envelope_t e;
		amqp_rpc_reply_t r;

		amqp_maybe_release_buffers(c);
		r = amqp_consume_message(c, &e, &tv, 0);
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_TIMEOUT)
			continue;
		if (!a091_ok(d, r, "consume"))
			goto fail;
		drv_arrived(d, e.message.body.bytes, e.message.body.len);
		if (amqp_basic_ack(c, A091_CHANNEL, e.delivery_tag, 0) != 0) {
			amqp_destroy_envelope(&e);
			goto fail;
		}
		amqp_destroy_envelope(&e);
	}
	a091_close(c);
	return;
fail:
	atomic_store(&d->rx_failed, true);
	a091_close(c);
}

/* ---- STOMP (fedmsg-c's client, brokers/stomp.h) ---------------------------------- */

struct stc {
	struct drv		*d;
	const struct opts	*o;
	struct stomp		*s;
	bool			 up, down, sender;
	unsigned long		 receipts, seq;
};

static void
st_connected(void *arg, const struct stomp_frame *f)
{
	struct stc *c = arg;

	(void)f;
	c->up = true;
	if (!c->sender)
		atomic_store(&c->d->rx_ready, true);
}

static void
st_message(void *arg, const struct stomp_frame *f, const char *ack)
{
	struct stc *c = arg;

	drv_arrived(c->d, f->body, f->body_len);
	if (ack)
		stomp_ack(c->s, ack);
}

static void
st_receipt(void *arg, const char *id)
{
	(void)id;
	((struct stc *)arg)->receipts++;
}

static void
st_error(void *arg, const char *text)
{
	struct stc *c = arg;

	fprintf(stderr, "bench_broker: %s: STOMP: %s\n", c->d->name, text);
}

static void
st_disconnected(void *arg, const char *reason)
{
	struct stc *c = arg;

	(void)reason;
	c->up = false;
	c->down = true;
}

/* -S: the headers fedmsg-bridge's brokers/stomp_link.c sends (into hdrs) */
static const char *const *
stomp_shape(const char **hdrs, const char *const *base, const struct env *m)
{
	int i, n = 0;

	for (; *base; base++)
		hdrs[n++] = *base;
	hdrs[n++] = "fedmsg_msg_id";
	hdrs[n++] = m->msg_id;
	for (i = 0; i < m->np; i++) {
		hdrs[n++] = m->pk[i];
		hdrs[n++] = m->pv[i];
	}
	hdrs[n] = NULL;
	return hdrs;
}

static void
stomp_run(struct drv *d, const struct opts *o, bool sender)
{
	const struct ep *ep = sender ? &o->from : &o->to;
	static const char *const send_hdrs[] = {
	    "content-type", "application/json;charset=utf-8",
	    "persistent", "true", "amq-msg-type", "text", NULL };
	const char *urls[2] = { ep->url, NULL };
	const char *sub_hdrs[5] = { NULL };
	const char *hdrs[2 * (SHAPE_PROPS + 4) + 1];
	struct stomp_opts so;
	struct stc c;
	char err[FM_ERRLEN];
	const struct env *pending = NULL;
	int64_t stop_at = 0, give_up = stomp_now_ms() + 15000;

	memset(&c, 0, sizeof(c));
	c.d = d;
	c.o = o;
	c.sender = sender;
	memset(&so, 0, sizeof(so));
	so.urls = urls;
	so.max_inflight = d->window + d->e->nprobe + 64;
	so.out_max = 64u * 1024 * 1024;
	so.cb.on_connected = st_connected;
	so.cb.on_message = st_message;
	so.cb.on_receipt = st_receipt;
	so.cb.on_error = st_error;
	so.cb.on_disconnected = st_disconnected;
	so.arg = &c;
	if ((c.s = stomp_new(&so, err)) == NULL) {
		fprintf(stderr, "bench_broker: stomp: %s\n", err);
		if (sender)
			drv_finish(d, true);
		else
			atomic_store(&d->rx_failed, true);
		return;
	}
	if (!sender) {
		if (o->prefetch) {
			sub_hdrs[0] = "activemq.prefetchSize";
			sub_hdrs[1] = o->prefetch;
			sub_hdrs[2] = "prefetch-count";
			sub_hdrs[3] = o->prefetch;
		}
		stomp_subscribe(c.s, ep->addr, "bench-0", o->ack ? o->ack :
		    "auto", sub_hdrs);
	}
	stomp_start(c.s, stomp_now_ms());
	for (;;) {
		int64_t now = stomp_now_ms();
		struct pollfd pfd;
		int t, wait = 10;

		if (atomic_load(&d->finished) || c.down) {
			if (stop_at == 0) {
				if (c.down && !atomic_load(&d->finished)) {
					fprintf(stderr, "bench_broker: %s: STOMP "
					    "connection lost: %s\n", d->name,
					    stomp_last_error(c.s));
					if (sender)
						drv_finish(d, true);
					else
						atomic_store(&d->rx_failed, true);
				}
				stop_at = now + 1000;
				if (c.up)
					stomp_disconnect(c.s, now);
			}
			if (now >= stop_at || stomp_state(c.s) ==
			    STOMP_ST_DISCONNECTED)
				break;
		} else if (!c.up && now > give_up) {
			fprintf(stderr, "bench_broker: %s: no STOMP connection to "
			    "%s in 15 s: %s\n", d->name, ep->url,
			    stomp_last_error(c.s));
			c.down = true;
			continue;
		} else if (sender && c.up) {
			for (;;) {
				char rid[32];
				int r = 1;

				if (pending == NULL &&
				    (r = drv_next(d, &pending, &wait)) != 1)
					break;
				snprintf(rid, sizeof(rid), "%lu", ++c.seq);
				if (stomp_send(c.s, ep->addr, pending->msg_id ?
				    stomp_shape(hdrs, send_hdrs, pending) :
				    send_hdrs,
				    pending->body, pending->blen,
				    o->receipts ? rid : NULL) < 0) {
					if (errno != ENOBUFS) {
						fprintf(stderr, "bench_broker: "
						    "stomp_send: %s\n",
						    strerror(errno));
						drv_finish(d, true);
					}
					wait = 1;
					break;
				}
				pending = NULL;
			}
		}
		pfd.fd = stomp_fd(c.s);
		pfd.events = stomp_events(c.s);
		pfd.revents = 0;
		t = stomp_timeout_ms(c.s, now);
		if (t < 0 || t > wait)
			t = wait;
		if (poll(&pfd, pfd.fd >= 0, t) < 0 && errno != EINTR)
			break;
		stomp_handle(c.s, pfd.fd >= 0 ? pfd.revents : 0, stomp_now_ms());
	}
	if (sender && o->receipts && c.receipts < c.seq)
		fprintf(stderr, "bench_broker: %s: %lu receipt(s) missing\n",
		    d->name, c.seq - c.receipts);
	stomp_free(c.s);
}

/* ---- a run --------------------------------------------------------------------- */

struct rx_arg {
	struct drv	*d;
	const struct opts *o;
	void		*ctx;
};

static void *
rx_main(void *arg)
{
	struct rx_arg *r = arg;

	switch (r->o->to.kind) {
	case EP_ZMQ:
		zmq_receiver(r->d, r->o, r->ctx);
		break;
	case EP_AMQP:
		amqp_run(r->d, &r->o->to, false);
		break;
	case EP_AMQP091:
		a091_receive(r->d, r->o);
		break;
	case EP_STOMP:
		stomp_run(r->d, r->o, false);
		break;
	default:
		break;
	}
	return NULL;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_broker [-n N] [-w WINDOW] [-p BRIDGE_PID] "
	    "[-b BROKER_PID] [-r]\n"
	    "                    [-a ACK] [-c PREFETCH] [-S] [-W WARM] NAME FROM TO "
	    "ENVFILE\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct drv *d = calloc(1, sizeof(*d));
	struct opts o;
	struct envs e;
	struct rx_arg ra;
	unsigned long n = 10000;
	double bcpu, kcpu, ccpu, secs;
	int64_t end, t_last;
	pthread_t tid;
	void *ctx;
	int c;

	alarm(600);	/* a safety net: no run takes minutes */
	memset(&o, 0, sizeof(o));
	d->window = 1000;
	d->bridge_pid = d->broker_pid = -1;
	while ((c = getopt(argc, argv, "n:w:p:b:ra:c:SW:")) != -1) {
		switch (c) {
		case 'n': n = (unsigned long)num_arg(optarg, 1, 1e8); break;
		case 'w': d->window = (unsigned long)num_arg(optarg, 1, HWM / 2);
			break;
		case 'p': d->bridge_pid = (long)num_arg(optarg, 1, 1e9); break;
		case 'b': d->broker_pid = (long)num_arg(optarg, 1, 1e9); break;
		case 'r': o.receipts = true; break;
		case 'a': o.ack = optarg; break;
		case 'c': o.prefetch = optarg; break;
		case 'S': o.shaped = true; break;
		case 'W': d->warm = (unsigned long)num_arg(optarg, 0, 1e8);
			break;
		default: usage();
		}
	}
	if (argc - optind != 4)
		usage();
	o.name = d->name = argv[optind];
	ep_parse(&o.from, argv[optind + 1]);
	ep_parse(&o.to, argv[optind + 2]);
	if (o.from.kind == EP_ZMQ || o.to.kind == EP_ZMQ_BIND)
		usage();
	envs_load(&e, argv[optind + 3], o.shaped &&
	    (o.from.kind == EP_AMQP || o.from.kind == EP_STOMP));
	if (n + d->warm > e.nmsg) {
		fprintf(stderr, "bench_broker: %s has %lu messages, not %lu\n",
		    argv[optind + 3], e.nmsg, n + d->warm);
		return 2;
	}
	d->e = &e;
	d->n = n;
	d->seen = calloc(n / 8 + 1, 1);
	ctx = zmq_ctx_new();

	ra.d = d;
	ra.o = &o;
	ra.ctx = ctx;
	if (pthread_create(&tid, NULL, rx_main, &ra) != 0)
		return 1;
	end = now_ns() + 15000000000LL;
	while (!atomic_load(&d->rx_ready) && !atomic_load(&d->rx_failed) &&
	    now_ns() < end)
		sleep_ms(5);
	if (!atomic_load(&d->rx_ready)) {
		fprintf(stderr, "bench_broker: %s: the receiver on %s did not "
		    "come up\n", o.name, argv[optind + 2]);
		drv_finish(d, true);
		pthread_join(tid, NULL);
		return 1;
	}
	switch (o.from.kind) {
	case EP_ZMQ_BIND:
		zmq_sender(d, &o, ctx);
		break;
	case EP_AMQP:
		amqp_run(d, &o.from, true);
		break;
	case EP_AMQP091:
		a091_send(d, &o.from);
		break;
	case EP_STOMP:
		stomp_run(d, &o, true);
		break;
	default:
		break;
	}
	drv_finish(d, false);
	pthread_join(tid, NULL);
	bcpu = cpu_of(d->bridge_pid);
	kcpu = cpu_of(d->broker_pid);
	ccpu = cpu_self();
	zmq_ctx_term(ctx);
	if (atomic_load(&d->bad))
		fprintf(stderr, "bench_broker: %s: %lu bodies were neither ours "
		    "nor probes\n", o.name, (unsigned long)atomic_load(&d->bad));
	t_last = atomic_load(&d->t_last);
	if (d->failed || d->phase < PH_TIMED || atomic_load(&d->received) == 0 ||
	    t_last <= d->t0) {
		fprintf(stderr, "bench_broker: %s: no result (%lu of %lu "
		    "received)\n", o.name,
		    (unsigned long)atomic_load(&d->received), d->k);
		return 1;
	}
	secs = (double)(t_last - d->t0) / 1e9;
	printf("broker %s %lu %lu %lu %.4f %.1f %.3f %.3f %.3f\n", o.name, d->k,
	    (unsigned long)atomic_load(&d->received),
	    (unsigned long)atomic_load(&d->dups), secs,
	    (double)atomic_load(&d->received) / secs,
	    d->bcpu0 >= 0 && bcpu >= 0 ? bcpu - d->bcpu0 : -1.0,
	    d->kcpu0 >= 0 && kcpu >= 0 ? kcpu - d->kcpu0 : -1.0,
	    ccpu - d->ccpu0);
	return 0;
}
