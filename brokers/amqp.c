/*
 * AMQP 1.0 broker link (broker.h) on qpid-proton's connection driver.
 *
 * Event model: proton's "bring your own I/O" connection driver over a
 * non-blocking socket of ours, so the connection lives in the owner's
 * single poll loop next to the ZeroMQ sockets (no proactor thread, no
 * locks, no wake-up channel).  We move bytes between the socket and the
 * driver's buffers, then handle proton's events; pn_transport_tick() gives
 * the idle-timeout (heartbeat) deadline that becomes our poll timeout.
 *
 * Delivery: sends stay unsettled until the broker settles them; accepted
 * means done, anything else (or a dropped connection) means the owner
 * keeps the message and sends it again, except a message rejected (refused
 * for good: reported with the broker's condition) or released or modified
 * RESEND_TRIES times (with pauses between: resend_limit.h): that is
 * unroutable, or rejected.  Receivers get explicit credit (the window),
 * given back as the owner settles, half a window at a time, unless paused.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <proton/codec.h>
#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/connection_driver.h>
#include <proton/delivery.h>
#include <proton/disposition.h>
#include <proton/event.h>
#include <proton/link.h>
#include <proton/message.h>
#include <proton/sasl.h>
#include <proton/session.h>
#include <proton/ssl.h>
#include <proton/terminus.h>
#include <proton/transport.h>

#include <jansson.h>

#include <fedmsg/message.h>

#include "amqp_routing_key.h"
#include "buf.h"
#include "clock.h"
#include "broker.h"
#include "log.h"
#include "net.h"
#include "resend_limit.h"

#define MAX_LINKS	64
#define MAX_PROPS	64
#define MAX_INCOMING	(64u * 1024 * 1024)	/* default message limit */
#define MAX_FRAME	(1u << 20)	/* big messages come in pieces */
#define KEEP_BUFFER	(1u << 20)	/* scratch kept between messages */
#define BACKOFF_MIN_MS	500
#define BACKOFF_MAX_MS	30000
#define CONNECT_TIMEOUT_MS 10000	/* TCP up to the broker's open */
#define CLOSE_WAIT_MS	1000	/* for the broker's close at shutdown */
#define PEER_TEXT	32	/* broker product / version kept */

enum state { IDLE, CONNECTING, UP };

/* A received delivery the owner has not settled yet. */
struct broker_delivery {
	pn_delivery_t		*pd;	/* NULL once the connection is gone */
	struct broker_delivery	*prev, *next;
};

struct link {
	char		*address;
	pn_link_t	*pl;		/* NULL while disconnected */
	int		 owed;		/* receiver: credit settled, not given */
};

struct amqp {
	struct broker		 b;
	struct broker_opts	 o;
	struct net_url		*urls;
	size_t			 nurls, url_next;
	const struct net_url	*u;		/* the one in use */
	struct broker_callbacks	 cb;

	enum state		 state;
	int			 fd;		/* once TCP is up */
	struct net_conn		 nc;		/* while connecting */
	struct net_backoff	 bo;
	int64_t			 retry_at, tick_at;
	pn_connection_driver_t	 driver;
	bool			 driver_live;
	pn_session_t		*session;
	struct link		 senders[MAX_LINKS], receivers[MAX_LINKS];
	int			 nsenders, nreceivers;
	unsigned		 link_seq;	/* makes sender names unique */
	unsigned		 in_flight;
	int64_t			 confirm_at;	/* last settlement, or the
						   first send since none was
						   outstanding */
	bool			 paused;
	bool			 pumping;	/* inside pump() */
	bool			 modified_ok;	/* peer takes "modified" */
	bool			 closing;	/* a_free() is closing it */
	int64_t			 give_up_at;	/* we sent close: drop the
						   socket then at the latest */
	char			 peer[64];	/* its product and version */
	/*
	 * Sends the broker settled as "released" (or "modified"), with how
	 * often.  RabbitMQ 4 releases a message no queue is bound for, so
	 * resending for ever would stall the spool: after RESEND_TRIES it
	 * is reported unroutable.  After each release nothing is sent for a
	 * while (a backoff).
	 */
	struct resend_limit	 released;
	size_t			 max_message;
	struct broker_delivery	*unsettled;	/* list, for disconnects */
	pn_message_t		*msg;
	pn_rwbytes_t		 encoded;
	char			*inbuf;
	size_t			 incap;
	/* a received message's id, routing key and property names and
	   values, NUL-terminated one after the other: no bound of ours on
	   their length (the message's own bounds them) */
	struct buf		 ptext;
	char			 why[256];
};

static const struct net_scheme amqp_schemes[] = {
	{ "amqp", false }, { "amqps", true }, { NULL, false },
};

/* amqp[s]://[user@]host[:port][/...], lists and failover:(...) too */
static const struct net_proto amqp_proto = {
	"AMQP", amqp_schemes, "amqp", "amqps", 5672, 5671, false,
};

static void
forget_links(struct amqp *a)
{
	int i;

	for (i = 0; i < a->nsenders; i++)
		a->senders[i].pl = NULL;
	for (i = 0; i < a->nreceivers; i++)
		a->receivers[i].pl = NULL;
	a->session = NULL;
}

/* The connection is gone: report in-flight sends lost, schedule a retry. */
static void
disconnect(struct amqp *a, const char *why)
{
	struct broker_delivery *u;
	bool was_up = a->state == UP;

	if (a->driver_live) {
		pn_connection_t *c = a->driver.connection;
		pn_delivery_t *d;
		pn_link_t *l;

		/* Every unsettled send of ours is lost with the connection. */
		for (l = pn_link_head(c, 0); l; l = pn_link_next(l, 0)) {
			if (!pn_link_is_sender(l))
				continue;
			for (d = pn_unsettled_head(l); d; d = pn_unsettled_next(d)) {
				pn_delivery_tag_t tag = pn_delivery_tag(d);
				uint64_t token = 0;

				if (tag.size == sizeof(token))
					memcpy(&token, tag.start, sizeof(token));
				a->cb.on_sent(a->cb.ctx, token, BROKER_LOST, why);
			}
		}
		for (u = a->unsettled; u; u = u->next)
			u->pd = NULL;	/* the broker will redeliver them */
		pn_connection_driver_destroy(&a->driver);
		a->driver_live = false;
	}
	forget_links(a);
	net_conn_close(&a->nc);
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	a->give_up_at = 0;
	a->in_flight = 0;
	a->state = IDLE;
	a->retry_at = clock_ms() + net_backoff_next(&a->bo);
	if (why != a->why)
		snprintf(a->why, sizeof(a->why), "%s", why);
	log_warn("amqp %s: %s: %s; retrying in %lld ms", a->o.name, a->u->text,
	    why, (long long)(a->retry_at - clock_ms()));
	if (was_up && a->cb.on_down)
		a->cb.on_down(a->cb.ctx, why);
}

/* Deliveries a receiver may hold unsettled: its credit when all is given. */
static int
window(const struct amqp *a)
{
	return (int)(a->o.credit ? a->o.credit : 100);
}

/* The receiver link of ours that l is, or NULL. */
static struct link *
receiver_of(struct amqp *a, pn_link_t *l)
{
	int i;

	for (i = 0; i < a->nreceivers; i++)
		if (a->receivers[i].pl == l)
			return &a->receivers[i];
	return NULL;
}

/*
 * A delivery off receiver l was settled: its credit goes back to the
 * broker once half the window is used, as qpid-proton's examples do, not
 * in a flow frame of its own each (RabbitMQ handles every flow frame).
 * Credit, held deliveries and credit owed add up to the window; nothing
 * is given while paused (a_pause gives what is owed).
 */
static void
give_credit(struct amqp *a, pn_link_t *l)
{
	struct link *k = receiver_of(a, l);

	if (k == NULL) {
		if (!a->paused)
			pn_link_flow(l, 1);
		return;
	}
	k->owed++;
	if (!a->paused && pn_link_credit(l) <= window(a) / 2) {
		pn_link_flow(l, k->owed);
		k->owed = 0;
	}
}

static void
open_receiver(struct amqp *a, struct link *l)
{
	char name[300];

	snprintf(name, sizeof(name), "%s-recv-%s", a->o.name, l->address);
	l->pl = pn_receiver(a->session, name);
	pn_terminus_set_address(pn_link_source(l->pl), l->address);
	pn_link_set_rcv_settle_mode(l->pl, PN_RCV_FIRST);
	pn_link_open(l->pl);
	l->owed = a->paused ? window(a) : 0;
	if (!a->paused)
		pn_link_flow(l->pl, window(a));
}

static void
open_sender(struct amqp *a, struct link *l)
{
	char name[300];

	/* a name of its own each time: an address's earlier sender may
	   still be detaching, and a broker refuses a name attached twice */
	snprintf(name, sizeof(name), "%s-send-%s-%u", a->o.name, l->address,
	    ++a->link_seq);
	l->pl = pn_sender(a->session, name);
	pn_terminus_set_address(pn_link_target(l->pl), l->address);
	pn_link_set_snd_settle_mode(l->pl, PN_SND_UNSETTLED);
	pn_link_open(l->pl);
}

/*
 * Who the peer is, from its open frame's properties ("product" and
 * "version", as RabbitMQ, Qpid and ActiveMQ Artemis send them), and
 * whether it takes the "modified" outcome: RabbitMQ before 4.0 ends the
 * session on it ("Unrecognised state"), so there a failed delivery is
 * settled as "released" instead.
 */
static void
learn_peer(struct amqp *a, pn_connection_t *c)
{
	pn_data_t *p = pn_connection_remote_properties(c);
	char product[PEER_TEXT] = "", version[PEER_TEXT] = "";
	size_t i, n;

	pn_data_rewind(p);
	if (pn_data_next(p) && pn_data_type(p) == PN_MAP) {
		n = pn_data_get_map(p) / 2;
		pn_data_enter(p);
		for (i = 0; i < n && pn_data_next(p); i++) {
			pn_bytes_t k = pn_data_get_symbol(p);
			pn_bytes_t v = { 0, NULL };
			char *dst = NULL;

			if (!pn_data_next(p))
				break;
			if (pn_data_type(p) == PN_STRING)
				v = pn_data_get_string(p);
			if (k.size == 7 && memcmp(k.start, "product", 7) == 0)
				dst = product;
			else if (k.size == 7 && memcmp(k.start, "version", 7) == 0)
				dst = version;
			if (dst && v.start)
				snprintf(dst, PEER_TEXT, "%.*s", (int)(v.size <
				    PEER_TEXT - 1 ? v.size : PEER_TEXT - 1),
				    v.start);
		}
		pn_data_exit(p);
	}
	a->modified_ok = !(strcmp(product, "RabbitMQ") == 0 &&
	    atoi(version) < 4);
	snprintf(a->peer, sizeof(a->peer), "%s%s%s", product[0] ? product :
	    "unknown broker", version[0] ? " " : "", version);
}

/* TCP is connected: set up SASL, TLS and the AMQP connection. */
static int
start_amqp(struct amqp *a, char *err)
{
	pn_connection_t *c;
	pn_transport_t *t;
	pn_sasl_t *sasl;
	char container[300];
	int i;

	if (pn_connection_driver_init(&a->driver, NULL, NULL) != 0) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return -1;
	}
	a->driver_live = true;
	c = a->driver.connection;
	t = a->driver.transport;
	snprintf(container, sizeof(container), "fedmsg-c-%s-%d", a->o.name,
	    (int)getpid());
	pn_connection_set_container(c, container);
	pn_connection_set_hostname(c, a->o.vhost ? a->o.vhost : a->u->host);
	sasl = pn_sasl(t);
	if (a->o.user || a->u->user) {
		/* the config's user, else the URL's */
		pn_connection_set_user(c, a->o.user ? a->o.user : a->u->user);
		pn_connection_set_password(c, a->o.password ? a->o.password : "");
		pn_sasl_allowed_mechs(sasl, "PLAIN");
		/* PLAIN over plain TCP: allow_plaintext_credentials only */
		pn_sasl_set_allow_insecure_mechs(sasl,
		    a->o.allow_plaintext_credentials);
	} else if (a->o.tls.cert) {
		pn_sasl_allowed_mechs(sasl, "EXTERNAL");
	} else {
		pn_sasl_allowed_mechs(sasl, "ANONYMOUS");
	}
	if (a->u->tls) {
		pn_ssl_domain_t *dom = pn_ssl_domain(PN_SSL_MODE_CLIENT);
		pn_ssl_t *ssl;
		int rc = dom ? 0 : -1;

		if (rc == 0 && a->o.tls.ca)
			rc = pn_ssl_domain_set_trusted_ca_db(dom, a->o.tls.ca);
		if (rc == 0)
			rc = pn_ssl_domain_set_peer_authentication(dom,
			    PN_SSL_VERIFY_PEER_NAME, NULL);
		if (rc == 0 && a->o.tls.cert)
			rc = pn_ssl_domain_set_credentials(dom, a->o.tls.cert,
			    a->o.tls.key ? a->o.tls.key : a->o.tls.cert, NULL);
		if (rc == 0 && ((ssl = pn_ssl(t)) == NULL ||
		    pn_ssl_init(ssl, dom, NULL) != 0 ||
		    pn_ssl_set_peer_hostname(ssl, a->o.tls.hostname ?
		    a->o.tls.hostname : a->u->host) != 0))
			rc = -1;
		if (dom)
			pn_ssl_domain_free(dom);
		if (rc != 0) {
			snprintf(err, FM_ERRLEN, "TLS setup failed (CA %s, cert "
			    "%s): check the files", a->o.tls.ca ? a->o.tls.ca :
			    "-", a->o.tls.cert ? a->o.tls.cert : "-");
			return -1;
		}
	}
	pn_transport_set_idle_timeout(t, a->o.heartbeat_ms ?
	    a->o.heartbeat_ms : 60000);
	/* frames of at most 1 MiB: no whole big message in one read buffer */
	pn_transport_set_max_frame(t, MAX_FRAME);
	pn_connection_open(c);
	a->session = pn_session(c);
	pn_session_open(a->session);
	for (i = 0; i < a->nreceivers; i++)
		open_receiver(a, &a->receivers[i]);
	for (i = 0; i < a->nsenders; i++)
		open_sender(a, &a->senders[i]);
	return 0;
}

static unsigned
connect_ms(const struct amqp *a)
{
	return a->o.connect_timeout_ms ? a->o.connect_timeout_ms :
	    CONNECT_TIMEOUT_MS;
}

/* Start connecting to the next URL (every address it resolves to). */
static void
try_connect(struct amqp *a, int64_t now)
{
	a->u = &a->urls[a->url_next];
	a->url_next = (a->url_next + 1) % a->nurls;
	a->state = CONNECTING;
	a->why[0] = '\0';	/* the last attempt's reason was said */
	a->retry_at = now + connect_ms(a);	/* up to the broker's open */
	if (net_conn_start(&a->nc, a->u->host, a->u->port, a->u->text,
	    connect_ms(a), now) == NET_FAILED)
		disconnect(a, a->nc.err);
}

static void
report_condition(struct amqp *a, pn_condition_t *cond, const char *what)
{
	if (cond && pn_condition_is_set(cond))
		snprintf(a->why, sizeof(a->why), "%s: %s: %s", what,
		    pn_condition_get_name(cond),
		    pn_condition_get_description(cond) ?
		    pn_condition_get_description(cond) : "");
}

/*
 * The text form of the AMQP scalar at d appended to b with a NUL after
 * it; false (b unchanged) for a type we do not carry or a string holding
 * a NUL.
 */
static bool
scalar_append(struct buf *b, pn_data_t *d)
{
	char num[32];
	pn_bytes_t s;
	int n;

	switch (pn_data_type(d)) {
	case PN_STRING:
	case PN_SYMBOL:
		s = pn_data_type(d) == PN_STRING ? pn_data_get_string(d) :
		    pn_data_get_symbol(d);
		if (s.size && memchr(s.start, 0, s.size))
			return false;
		if (s.size)
			buf_add(b, s.start, s.size);
		buf_addc(b, '\0');
		return true;
	case PN_BOOL: n = snprintf(num, sizeof(num), "%s", pn_data_get_bool(d) ? "true" : "false"); break;
	case PN_LONG: n = snprintf(num, sizeof(num), "%lld", (long long)pn_data_get_long(d)); break;
	case PN_INT: n = snprintf(num, sizeof(num), "%d", pn_data_get_int(d)); break;
	case PN_ULONG: n = snprintf(num, sizeof(num), "%llu", (unsigned long long)pn_data_get_ulong(d)); break;
	case PN_UINT: n = snprintf(num, sizeof(num), "%u", pn_data_get_uint(d)); break;
	case PN_SHORT: n = snprintf(num, sizeof(num), "%d", pn_data_get_short(d)); break;
	case PN_USHORT: n = snprintf(num, sizeof(num), "%u", pn_data_get_ushort(d)); break;
	case PN_BYTE: n = snprintf(num, sizeof(num), "%d", pn_data_get_byte(d)); break;
	case PN_UBYTE: n = snprintf(num, sizeof(num), "%u", pn_data_get_ubyte(d)); break;
	case PN_DOUBLE: n = snprintf(num, sizeof(num), "%.17g", pn_data_get_double(d)); break;
	case PN_TIMESTAMP: n = snprintf(num, sizeof(num), "%lld", (long long)pn_data_get_timestamp(d)); break;
	default:
		return false;
	}
	buf_add(b, num, (size_t)n + 1);		/* with its NUL */
	return true;
}

/* The text of a message-id appended to b with a NUL, whole. */
static void
msgid_append(struct buf *b, pn_atom_t id)
{
	const unsigned char *u = (const unsigned char *)id.u.as_uuid.bytes;
	char num[40];

	switch (id.type) {
	case PN_STRING:
	case PN_SYMBOL:
	case PN_BINARY:
		if (id.u.as_bytes.size)
			buf_add(b, id.u.as_bytes.start, id.u.as_bytes.size);
		break;
	case PN_ULONG:
		snprintf(num, sizeof(num), "%llu",
		    (unsigned long long)id.u.as_ulong);
		buf_adds(b, num);
		break;
	case PN_UUID:
		snprintf(num, sizeof(num), "%02x%02x%02x%02x-%02x%02x-%02x%02x-"
		    "%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3],
		    u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		    u[13], u[14], u[15]);
		buf_adds(b, num);
		break;
	default:
		break;
	}
	buf_addc(b, '\0');
}

/*
 * Settle a delivery incoming() does not hand on: outcome PN_REJECTED (for
 * good) or PN_RELEASED (to be delivered again), and its credit given
 * back, or the link would lose one each time.
 */
static void
settle_here(struct amqp *a, pn_delivery_t *pd, uint64_t outcome)
{
	pn_link_t *l = pn_delivery_link(pd);

	pn_delivery_update(pd, outcome);
	pn_delivery_settle(pd);
	give_credit(a, l);
}

static void
incoming(struct amqp *a, pn_delivery_t *pd)
{
	pn_link_t *l = pn_delivery_link(pd);
	size_t size = pn_delivery_pending(pd);
	struct broker_prop props[MAX_PROPS];
	size_t at[MAX_PROPS][2], k;	/* name and value offsets in ptext */
	/* the message's texts, whole: id, routing key, properties */
	struct buf *pt = &a->ptext;
	size_t id_at, key_at;
	struct broker_delivery *bd;
	struct broker_in in;
	pn_data_t *body, *pr;
	pn_bytes_t bb, rk;
	ssize_t n;
	size_t np = 0;

	if (!pn_delivery_readable(pd) || pn_delivery_partial(pd)) {
		if (size > a->max_message) {	/* refuse before buffering it */
			log_warn("amqp %s: refusing a message of more than %zu "
			    "bytes (max_message_bytes)", a->o.name,
			    a->max_message);
			settle_here(a, pd, PN_REJECTED);
		}
		return;
	}
	if (size > a->max_message) {
		log_warn("amqp %s: refusing a message of %zu bytes, more than "
		    "%zu (max_message_bytes)", a->o.name, size, a->max_message);
		settle_here(a, pd, PN_REJECTED);
		return;
	}
	if (size + 1 > a->incap) {
		char *p = realloc(a->inbuf, size + 1);

		if (p == NULL) {
			settle_here(a, pd, PN_RELEASED);
			return;
		}
		a->inbuf = p;
		a->incap = size + 1;
	}
	n = pn_link_recv(l, a->inbuf, size);
	pn_link_advance(l);
	/*
	 * Cleared first: qpid-proton 0.37's decode keeps the application
	 * properties of the message before when this one has none, and a
	 * bridge would then drop it as its own (our origin property).
	 */
	pn_message_clear(a->msg);
	if (n < 0 || pn_message_decode(a->msg, a->inbuf, (size_t)n) != 0) {
		log_warn("amqp %s: undecodable message rejected", a->o.name);
		settle_here(a, pd, PN_REJECTED);
		return;
	}
	memset(&in, 0, sizeof(in));
	body = pn_message_body(a->msg);
	pn_data_rewind(body);
	if (pn_data_next(body) && (pn_data_type(body) == PN_BINARY ||
	    pn_data_type(body) == PN_STRING)) {
		bb = pn_data_type(body) == PN_BINARY ? pn_data_get_binary(body) :
		    pn_data_get_string(body);
		in.body = bb.start;
		in.len = bb.size;
	} else {
		in.body = "";
		in.len = 0;
	}
	pt->len = 0;
	pt->oom = false;
	id_at = pt->len;
	msgid_append(pt, pn_message_get_id(a->msg));
	key_at = pt->len;
	if (!amqp_routing_key(a->msg, &rk)) {
		log_warn("amqp %s: rejected a message whose routing key "
		    "(x-routing-key) holds a NUL byte", a->o.name);
		settle_here(a, pd, PN_REJECTED);
		return;
	}
	if (rk.size)
		buf_add(pt, rk.start, rk.size);
	buf_addc(pt, '\0');
	pr = pn_message_properties(a->msg);
	pn_data_rewind(pr);
	if (pn_data_next(pr) && pn_data_type(pr) == PN_MAP) {
		pn_data_enter(pr);
		while (np < MAX_PROPS && pn_data_next(pr)) {
			size_t name_at = pt->len, value_at;
			bool ok = scalar_append(pt, pr);

			if (!pn_data_next(pr))
				break;
			value_at = pt->len;
			if (ok && scalar_append(pt, pr)) {
				at[np][0] = name_at;
				at[np][1] = value_at;
				np++;
			} else {
				pt->len = name_at;	/* the pair is not carried */
			}
		}
		pn_data_exit(pr);
	}
	if (pt->oom) {
		log_warn("amqp %s: out of memory for a message's id, subject "
		    "or properties; released", a->o.name);
		settle_here(a, pd, PN_RELEASED);
		return;
	}
	for (k = 0; k < np; k++) {	/* ptext no longer moves */
		props[k].name = pt->data + at[k][0];
		props[k].value = pt->data + at[k][1];
	}
	in.source = pn_terminus_get_address(pn_link_source(l));
	in.destination = pn_message_get_address(a->msg) ?
	    pn_message_get_address(a->msg) : "";
	in.message_id = pt->data + id_at;
	in.subject = pt->data + key_at;
	in.props = props;
	in.nprops = np;
	if ((bd = calloc(1, sizeof(*bd))) == NULL) {
		settle_here(a, pd, PN_RELEASED);
		return;
	}
	bd->pd = pd;
	bd->next = a->unsettled;
	if (a->unsettled)
		a->unsettled->prev = bd;
	a->unsettled = bd;
	a->cb.on_message(a->cb.ctx, &in, bd);
	if (pt->cap > KEEP_BUFFER)
		buf_free(pt);
	if (a->incap > KEEP_BUFFER) {	/* do not keep a big message's memory */
		free(a->inbuf);
		a->inbuf = NULL;
		a->incap = 0;
		pn_message_free(a->msg);
		a->msg = pn_message();
	}
}

/*
 * why: "rejected" and the broker's error condition, if it gave one
 * ("rejected: amqp:resource-limit-exceeded: message too large").
 */
static void
rejected_why(pn_delivery_t *pd, char *why, size_t size)
{
	pn_condition_t *cond = pn_disposition_condition(
	    pn_delivery_remote(pd));
	const char *desc;

	if (cond == NULL || !pn_condition_is_set(cond)) {
		snprintf(why, size, "rejected (no error condition given)");
		return;
	}
	desc = pn_condition_get_description(cond);
	snprintf(why, size, "rejected: %s%s%s", pn_condition_get_name(cond),
	    desc ? ": " : "", desc ? desc : "");
}

/*
 * The broker settled a send.  accepted: done.  rejected: refused for
 * good (too big, not authorised, a policy), reported with its condition
 * and never resent.  released and modified: sent again after a pause,
 * given up after RESEND_TRIES (released: unroutable as RabbitMQ 4 says
 * it; modified: rejected).
 */
static void
sent(struct amqp *a, pn_delivery_t *pd)
{
	pn_delivery_tag_t tag = pn_delivery_tag(pd);
	uint64_t state = pn_delivery_remote_state(pd), token = 0;
	char why[256];

	if (!pn_delivery_updated(pd) || state == 0)
		return;
	if (tag.size == sizeof(token))
		memcpy(&token, tag.start, sizeof(token));
	if (state == PN_REJECTED)
		rejected_why(pd, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "%s", state == PN_RELEASED ?
		    "released" : state == PN_MODIFIED ?
		    (pn_disposition_is_undeliverable(pn_delivery_remote(pd)) ?
		    "modified (undeliverable here)" : "modified") :
		    "not accepted");
	pn_delivery_settle(pd);
	if (a->in_flight)
		a->in_flight--;
	a->confirm_at = clock_ms();
	if (state == PN_REJECTED) {
		log_warn("amqp %s: record %llu %s: the broker refuses it for "
		    "good", a->o.name, (unsigned long long)token, why);
		resend_limit_forget(&a->released, token);
		a->cb.on_sent(a->cb.ctx, token, BROKER_REJECTED, why);
		return;
	}
	if ((state == PN_RELEASED || state == PN_MODIFIED) &&
	    resend_limit_count(&a->released, token, clock_ms()) >=
	    RESEND_TRIES) {
		bool released = state == PN_RELEASED;

		snprintf(why, sizeof(why), "%s %u times by the broker%s",
		    released ? "released" : "modified", RESEND_TRIES,
		    released ? " (RabbitMQ 4 releases what no queue is bound "
		    "for)" : "");
		log_warn("amqp %s: record %llu %s: giving up on it", a->o.name,
		    (unsigned long long)token, why);
		resend_limit_forget(&a->released, token);
		a->cb.on_sent(a->cb.ctx, token, released ? BROKER_UNROUTABLE :
		    BROKER_REJECTED, why);
		return;
	}
	if (state == PN_ACCEPTED)
		resend_limit_forget(&a->released, token);
	a->cb.on_sent(a->cb.ctx, token, state == PN_ACCEPTED ?
	    BROKER_ACCEPTED : BROKER_REFUSED, why);
}

static void
events(struct amqp *a)
{
	pn_event_t *e;

	while (a->driver_live &&
	    (e = pn_connection_driver_next_event(&a->driver)) != NULL) {
		switch (pn_event_type(e)) {
		case PN_CONNECTION_REMOTE_OPEN:
			a->state = UP;
			net_backoff_reset(&a->bo);
			a->why[0] = '\0';
			learn_peer(a, pn_event_connection(e));
			log_info("amqp %s: connected to %s:%s%s (%s)", a->o.name,
			    a->u->host, a->u->port, a->u->tls ? " (TLS)" : "",
			    a->peer);
			if (a->cb.on_up)
				a->cb.on_up(a->cb.ctx);
			break;
		case PN_CONNECTION_REMOTE_CLOSE:
			report_condition(a, pn_connection_remote_condition(
			    pn_event_connection(e)), "connection closed");
			pn_connection_close(pn_event_connection(e));
			break;
		case PN_LINK_REMOTE_CLOSE:
			if (a->closing)
				break;
			report_condition(a, pn_link_remote_condition(
			    pn_event_link(e)), "link closed by the broker");
			log_warn("amqp %s: %s", a->o.name, a->why);
			pn_connection_close(a->driver.connection);
			break;
		case PN_SESSION_REMOTE_CLOSE:
			if (a->closing)
				break;
			/* e.g. RabbitMQ's precondition-failed: start over */
			report_condition(a, pn_session_remote_condition(
			    pn_event_session(e)), "session ended by the broker");
			log_warn("amqp %s: %s", a->o.name, a->why);
			pn_connection_close(a->driver.connection);
			break;
		case PN_TRANSPORT_ERROR:
			report_condition(a, pn_transport_condition(
			    pn_event_transport(e)), "transport error");
			break;
		case PN_DELIVERY: {
			pn_delivery_t *pd = pn_event_delivery(e);

			if (pn_link_is_sender(pn_delivery_link(pd)))
				sent(a, pd);
			else
				incoming(a, pd);
			break;
		}
		default:
			break;
		}
	}
}

/* The first reason the socket failed (err 0: the broker closed it). */
static void
io_failed(struct amqp *a, const char *what, int err)
{
	if (a->why[0])
		return;
	snprintf(a->why, sizeof(a->why), "%s%s%s", what ? what : "",
	    what ? ": " : "", err ? strerror(err) :
	    "the broker closed the connection");
}

/*
 * Move bytes between the socket and the driver.  Not re-entered: a settle
 * from inside an event callback only queues its disposition, and the
 * write loop below sends it (no recursion per delivery).
 */
static void
pump(struct amqp *a, short revents)
{
	if (a->pumping)
		return;
	a->pumping = true;
	if (revents & ZMQ_POLLIN) {
		pn_rwbytes_t rb = pn_connection_driver_read_buffer(&a->driver);

		if (rb.size) {
			ssize_t n = read(a->fd, rb.start, rb.size);

			if (n > 0)
				pn_connection_driver_read_done(&a->driver,
				    (size_t)n);
			else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				io_failed(a, NULL, n == 0 ? 0 : errno);
				pn_connection_driver_read_close(&a->driver);
			}
		}
	}
	events(a);
	for (;;) {
		pn_bytes_t wb = pn_connection_driver_write_buffer(&a->driver);
		ssize_t n;

		if (wb.size == 0)
			break;
		n = write(a->fd, wb.start, wb.size);
		if (n > 0) {
			pn_connection_driver_write_done(&a->driver, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		io_failed(a, "write", errno);
		pn_connection_driver_write_close(&a->driver);
		break;
	}
	events(a);
	a->pumping = false;
}

static unsigned
confirm_ms(const struct amqp *a)
{
	return a->o.confirm_timeout_ms ? a->o.confirm_timeout_ms : 30000;
}

static void
a_handle(struct broker *b, short revents, int64_t now)
{
	struct amqp *a = (struct amqp *)b;

	if (a->state == IDLE) {
		if (now >= a->retry_at)
			try_connect(a, now);
		if (a->state != CONNECTING || a->nc.fd < 0)
			return;
		revents = 0;	/* those were for no socket */
	}
	if (a->state == CONNECTING && !a->driver_live) {
		char err[FM_ERRLEN];

		switch (net_conn_handle(&a->nc, revents & (ZMQ_POLLOUT |
		    ZMQ_POLLERR) ? POLLOUT | POLLERR : 0, now)) {
		case NET_PENDING:
			if (now >= a->retry_at)
				disconnect(a, "connect timed out");
			return;
		case NET_FAILED:
			disconnect(a, a->nc.err);
			return;
		case NET_UP:
			break;
		}
		a->fd = net_conn_take(&a->nc);
		if (start_amqp(a, err) < 0) {
			disconnect(a, err);
			return;
		}
		a->tick_at = 0;
	}
	if (now >= a->tick_at) {
		int64_t next = pn_transport_tick(a->driver.transport, now);

		a->tick_at = next ? next : now + 1000;
	}
	pump(a, revents);
	if (pn_connection_driver_finished(&a->driver)) {
		char why[sizeof(a->why) + 64];

		/*
		 * On a TLS URL before the broker's AMQP open, the stage goes
		 * with the reason: a refused certificate often shows only as a
		 * reset or an EOF (its alert lost when our write came after
		 * the broker's close).
		 */
		snprintf(why, sizeof(why), "%s%s", a->why[0] ? a->why :
		    "connection closed", a->u->tls && a->state != UP ?
		    " (during the TLS handshake or the login)" : "");
		disconnect(a, why);
	} else if (a->give_up_at && now >= a->give_up_at) {
		disconnect(a, a->why);
	} else if (a->state == UP && a->in_flight && !a->give_up_at &&
	    now - a->confirm_at >= (int64_t)confirm_ms(a)) {
		/*
		 * Alive (heart-beats flow) but settling nothing: close with
		 * the reason, so the broker knows it, and start over.
		 */
		pn_condition_t *cond = pn_connection_condition(
		    a->driver.connection);

		snprintf(a->why, sizeof(a->why), "%u sends and no settlement "
		    "for %u ms (confirm_timeout)", a->in_flight, confirm_ms(a));
		pn_condition_set_name(cond, "amqp:resource-limit-exceeded");
		pn_condition_set_description(cond, a->why);
		pn_connection_close(a->driver.connection);
		a->give_up_at = now + CLOSE_WAIT_MS;
		pump(a, 0);
	} else if (a->state == CONNECTING && now >= a->retry_at) {
		disconnect(a, "no AMQP open from the broker in time (wrong "
		    "port, TLS mismatch or authentication stalled)");
	}
}

static void
a_poll_item(struct broker *b, zmq_pollitem_t *it)
{
	struct amqp *a = (struct amqp *)b;

	it->socket = NULL;
	it->fd = a->fd;
	it->events = 0;
	it->revents = 0;
	if (a->state == CONNECTING && !a->driver_live) {
		it->fd = a->nc.fd;
		if (it->fd >= 0)
			it->events = ZMQ_POLLOUT;	/* waiting for connect() */
		return;
	}
	if (a->fd < 0)
		return;
	if (pn_connection_driver_read_buffer(&a->driver).size)
		it->events |= ZMQ_POLLIN;
	if (pn_connection_driver_write_buffer(&a->driver).size)
		it->events |= ZMQ_POLLOUT;
}

static int
a_timeout_ms(struct broker *b, int64_t now)
{
	struct amqp *a = (struct amqp *)b;
	int64_t at = a->state == IDLE || !a->driver_live ? a->retry_at :
	    a->tick_at;

	int t;

	if (a->state == CONNECTING && a->retry_at < at)
		at = a->retry_at;
	if (a->state == UP && resend_limit_holding(&a->released, now) &&
	    a->released.hold_until < at)
		at = a->released.hold_until;	/* sending again after a
						   release */
	if (a->state == CONNECTING && !a->driver_live &&
	    (t = net_conn_timeout_ms(&a->nc, now)) >= 0 && now + t < at)
		at = now + t;
	if (at <= now)
		return 0;
	return at - now > 1000 ? 1000 : (int)(at - now);
}

static struct link *
find(struct link *ls, int n, const char *address)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(ls[i].address, address) == 0)
			return &ls[i];
	return NULL;
}

/*
 * A sender that may give its slot to another address: none yet, or one
 * the broker has attached with nothing sent on it unsettled.  Closing one
 * still being attached threw away the attach just made: with more than
 * MAX_LINKS addresses waiting, each sender was closed before it got
 * credit, and none ever did.
 */
static bool
sender_idle(const struct link *l)
{
	return l->pl == NULL || ((pn_link_state(l->pl) & PN_REMOTE_ACTIVE) &&
	    pn_link_unsettled(l->pl) == 0);
}

/*
 * The sender for address, opened (without credit yet) when new; NULL
 * when all MAX_LINKS slots are busy (try again once one settles) or out
 * of memory.
 */
static struct link *
sender_for(struct amqp *a, const char *address)
{
	struct link *l = find(a->senders, a->nsenders, address);
	int i;

	if (l == NULL) {
		if (a->nsenders == MAX_LINKS) {
			/* many topics: the oldest idle sender's slot */
			for (i = 0; i < MAX_LINKS &&
			    !sender_idle(&a->senders[i]); i++)
				;
			if (i == MAX_LINKS)
				return NULL;
			if (a->senders[i].pl) {
				/* proton releases it once the broker has
				   detached it, not at the connection's end */
				pn_link_close(a->senders[i].pl);
				pn_link_free(a->senders[i].pl);
			}
			free(a->senders[i].address);
			memmove(a->senders + i, a->senders + i + 1,
			    (size_t)(MAX_LINKS - 1 - i) * sizeof(*l));
			a->nsenders--;
		}
		l = &a->senders[a->nsenders];
		if ((l->address = strdup(address)) == NULL)
			return NULL;
		l->pl = NULL;
		a->nsenders++;
	}
	if (l->pl == NULL && a->state == UP)
		open_sender(a, l);
	return l;
}

static bool
a_can_send(struct broker *b, const char *address)
{
	struct amqp *a = (struct amqp *)b;
	struct link *l;

	if (a->state != UP || a->in_flight >= (a->o.max_in_flight ?
	    a->o.max_in_flight : 1000) ||
	    resend_limit_holding(&a->released, clock_ms()))
		return false;
	l = sender_for(a, address);
	return l && l->pl && pn_link_credit(l->pl) > 0;
}

/*
 * headers_json's members as typed application properties: integers as
 * long, reals as double, booleans, strings, null; objects and lists
 * have no AMQP property form and are left out.  -1: not a JSON object.
 */
static int
put_typed_props(pn_data_t *props, const char *text)
{
	json_t *h = json_loads(text, 0, NULL), *v;
	const char *k;

	if (!json_is_object(h)) {
		json_decref(h);
		return -1;
	}
	json_object_foreach(h, k, v) {
		if (json_is_object(v) || json_is_array(v))
			continue;
		pn_data_put_string(props, pn_bytes(strlen(k), k));
		if (json_is_integer(v))
			pn_data_put_long(props, (int64_t)json_integer_value(v));
		else if (json_is_real(v))
			pn_data_put_double(props, json_real_value(v));
		else if (json_is_boolean(v))
			pn_data_put_bool(props, json_is_true(v));
		else if (json_is_string(v))
			pn_data_put_string(props, pn_bytes(json_string_length(v),
			    json_string_value(v)));
		else
			pn_data_put_null(props);
	}
	json_decref(h);
	return 0;
}

static int
a_send(struct broker *b, const struct broker_out *m, uint64_t token)
{
	struct amqp *a = (struct amqp *)b;
	struct link *l;
	pn_data_t *props, *body;
	pn_delivery_t *pd;
	ssize_t n;
	size_t i;

	if (!a_can_send(b, m->address) ||
	    (l = sender_for(a, m->address)) == NULL)
		return -1;
	pn_message_clear(a->msg);
	if (m->message_id) {
		pn_atom_t id;

		id.type = PN_STRING;
		id.u.as_bytes = pn_bytes(strlen(m->message_id), m->message_id);
		pn_message_set_id(a->msg, id);
	}
	if (m->subject)
		pn_message_set_subject(a->msg, m->subject);
	if (m->creation_ms)
		pn_message_set_creation_time(a->msg, m->creation_ms);
	pn_message_set_address(a->msg, m->address);
	pn_message_set_content_type(a->msg, "application/json");
	pn_message_set_durable(a->msg, true);
	/* A data section, so RabbitMQ and ActiveMQ pass the JSON through. */
	pn_message_set_inferred(a->msg, true);
	body = pn_message_body(a->msg);
	pn_data_put_binary(body, pn_bytes(m->len, m->body));
	props = pn_message_properties(a->msg);
	pn_data_put_map(props);
	pn_data_enter(props);
	for (i = 0; i < m->nprops; i++) {
		pn_data_put_string(props, pn_bytes(strlen(m->props[i].name),
		    m->props[i].name));
		pn_data_put_string(props, pn_bytes(strlen(m->props[i].value),
		    m->props[i].value));
	}
	if (m->headers_json && put_typed_props(props, m->headers_json) < 0) {
		log_warn("amqp %s: headers are not a JSON object", a->o.name);
		return -2;
	}
	pn_data_exit(props);
	pd = pn_delivery(l->pl, pn_dtag((const char *)&token, sizeof(token)));
	n = pn_message_send(a->msg, l->pl, &a->encoded);
	if (n < 0) {
		log_warn("amqp %s: cannot encode a message: %s", a->o.name,
		    pn_error_text(pn_message_error(a->msg)));
		pn_delivery_abort(pd);
		return -2;
	}
	if (a->in_flight == 0)
		a->confirm_at = clock_ms();
	a->in_flight++;
	/*
	 * Not written here: poll_item() asks for POLLOUT while proton holds
	 * output, and handle() writes what all the sends of one loop turn
	 * encoded in one write(), where a write each cost a system call per
	 * message.
	 */
	return 0;
}

static int
a_subscribe(struct broker *b, const char *source)
{
	struct amqp *a = (struct amqp *)b;
	struct link *l;

	if (find(a->receivers, a->nreceivers, source))
		return 0;
	if (a->nreceivers == MAX_LINKS)
		return -1;
	l = &a->receivers[a->nreceivers];
	if ((l->address = strdup(source)) == NULL)
		return -1;
	l->pl = NULL;
	a->nreceivers++;
	if (a->state == UP)
		open_receiver(a, l);
	return 0;
}

static void
a_settle(struct broker *b, struct broker_delivery *bd, enum settle how)
{
	struct amqp *a = (struct amqp *)b;

	if (bd->prev)
		bd->prev->next = bd->next;
	else
		a->unsettled = bd->next;
	if (bd->next)
		bd->next->prev = bd->prev;
	if (bd->pd) {
		pn_link_t *l = pn_delivery_link(bd->pd);

		if (how == SETTLE_FAILED && a->modified_ok) {
			/* redeliver, counting the attempt (delivery-count) */
			pn_disposition_set_failed(pn_delivery_local(bd->pd),
			    true);
			pn_delivery_update(bd->pd, PN_MODIFIED);
		} else if (how == SETTLE_RELEASE || how == SETTLE_FAILED) {
			pn_delivery_update(bd->pd, PN_RELEASED);
		} else {
			pn_delivery_update(bd->pd, how == SETTLE_ACCEPT ?
			    PN_ACCEPTED : PN_REJECTED);
		}
		pn_delivery_settle(bd->pd);
		give_credit(a, l);	/* written by handle(), as a_send's */
	}
	free(bd);
}

static void
a_pause(struct broker *b, bool paused)
{
	struct amqp *a = (struct amqp *)b;
	int i;

	if (a->paused == paused)
		return;
	a->paused = paused;
	if (paused || a->state != UP)
		return;
	for (i = 0; i < a->nreceivers; i++) {
		struct link *k = &a->receivers[i];

		if (k->pl && k->owed > 0)
			pn_link_flow(k->pl, k->owed);
		k->owed = 0;
	}
	pump(a, 0);
}

static bool
a_is_up(struct broker *b)
{
	return ((struct amqp *)b)->state == UP;
}

static void nop_up(void *ctx) { (void)ctx; }
static void nop_down(void *ctx, const char *why) { (void)ctx; (void)why; }

static void
nop_sent(void *ctx, uint64_t token, enum broker_outcome o, const char *why)
{
	(void)ctx; (void)token; (void)o; (void)why;
}

static void
nop_message(void *ctx, const struct broker_in *in, struct broker_delivery *d)
{
	(void)ctx; (void)in; (void)d;	/* left unsettled: the broker keeps it */
}

/*
 * Shutdown: send AMQP close after the dispositions already queued and
 * wait (CLOSE_WAIT_MS at most) for the broker's close, so that it sees a
 * clean close and not an aborted connection.  The owner is going away:
 * nothing is reported to it any more.
 */
static void
close_gracefully(struct amqp *a)
{
	int64_t end = clock_ms() + CLOSE_WAIT_MS, left;

	a->cb.on_up = nop_up;
	a->cb.on_down = nop_down;
	a->cb.on_sent = nop_sent;
	a->cb.on_message = nop_message;
	a->closing = true;
	pn_connection_close(a->driver.connection);
	while (!pn_connection_driver_finished(&a->driver) &&
	    (left = end - clock_ms()) > 0) {
		struct pollfd p = { a->fd, 0, 0 };

		if (pn_connection_driver_read_buffer(&a->driver).size)
			p.events |= POLLIN;
		if (pn_connection_driver_write_buffer(&a->driver).size)
			p.events |= POLLOUT;
		if (p.events == 0)
			break;
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			break;
		pump(a, p.revents & (POLLIN | POLLHUP | POLLERR) ?
		    ZMQ_POLLIN : 0);
	}
}

static void
a_free(struct broker *b)
{
	struct amqp *a = (struct amqp *)b;
	int k;

	if (a == NULL)
		return;
	if (a->driver_live && a->state == UP && a->fd >= 0)
		close_gracefully(a);
	if (a->driver_live) {
		struct broker_delivery *u, *next;

		for (u = a->unsettled; u; u = next) {
			next = u->next;
			free(u);
		}
		a->unsettled = NULL;
		pn_connection_driver_destroy(&a->driver);
	}
	net_conn_close(&a->nc);
	if (a->fd >= 0)
		close(a->fd);
	for (k = 0; k < a->nsenders; k++)
		free(a->senders[k].address);
	for (k = 0; k < a->nreceivers; k++)
		free(a->receivers[k].address);
	net_urls_free(a->urls, a->nurls);
	free((char *)a->o.user);
	/* ours; qpid-proton keeps its own copy while a connection lives */
	if (a->o.password)
		explicit_bzero((char *)a->o.password, strlen(a->o.password));
	free((char *)a->o.password);
	free((char *)a->o.vhost);
	free((char *)a->o.name);
	free((char *)a->o.tls.ca);
	free((char *)a->o.tls.cert);
	free((char *)a->o.tls.key);
	free((char *)a->o.tls.hostname);
	if (a->msg)
		pn_message_free(a->msg);
	free(a->encoded.start);
	free(a->inbuf);
	buf_free(&a->ptext);
	free(a);
}

static const struct broker_ops amqp_ops = {
	"amqp", a_poll_item, a_handle, a_timeout_ms, a_can_send, a_send,
	a_subscribe, a_settle, a_pause, a_is_up, a_free,
};

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct broker *
amqp_broker_new(const struct broker_opts *o, const struct broker_callbacks *cb,
    char *err)
{
	struct amqp *a;
	const struct net_url *plain = NULL;
	size_t i, ntls = 0;

	if (o->nurls == 0) {
		snprintf(err, FM_ERRLEN, "no broker URL");
		return NULL;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	a->b.ops = &amqp_ops;
	a->fd = -1;
	net_conn_init(&a->nc);
	a->o = *o;
	a->o.urls = NULL;
	/* ours from here on (a_free frees them) */
	a->o.user = a->o.password = a->o.vhost = a->o.name = NULL;
	a->o.tls.ca = a->o.tls.cert = a->o.tls.key = a->o.tls.hostname = NULL;
	for (i = 0; i < o->nurls; i++)
		if (net_urls_add(&amqp_proto, o->urls[i], &a->urls, &a->nurls,
		    err) < 0) {
			a_free(&a->b);
			return NULL;
		}
	if (a->nurls == 0) {
		snprintf(err, FM_ERRLEN, "no broker URL");
		a_free(&a->b);
		return NULL;
	}
	a->u = &a->urls[0];
	for (i = 0; i < a->nurls; i++) {
		if (a->urls[i].tls)
			ntls++;
		else if (plain == NULL)
			plain = &a->urls[i];
	}
	if (ntls) {
		/* proton does the TLS (SASL EXTERNAL takes the client
		   certificate from it); the files are checked here, once,
		   with the same texts as STOMP's */
		struct net_tls_opts to = { o->tls.ca, NULL, o->tls.cert,
		    o->tls.key };
		SSL_CTX *ctx = net_tls_ctx_new(&to, err);

		if (ctx == NULL) {
			a_free(&a->b);
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
	a->o.tls.hostname = dup_or_null(o->tls.hostname);
	{
		const struct net_clear_rules r = { a->o.name, "amqps://",
		    "amqp://", "the user name and password go in clear (SASL "
		    "PLAIN)" };

		if (net_urls_check_clear(a->urls, a->nurls, o->user ||
		    o->password, o->allow_plaintext_credentials, &r, err) < 0) {
			a_free(&a->b);
			return NULL;
		}
	}
	a->cb = *cb;
	net_backoff_init(&a->bo, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
	a->retry_at = 0;		/* connect at the first handle() */
	a->max_message = o->max_message ? o->max_message : MAX_INCOMING;
	if ((a->msg = pn_message()) == NULL) {
		a_free(&a->b);
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	return &a->b;
}
