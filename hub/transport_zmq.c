/*
 * The hub's ZeroMQ transport: fedmsg's own bus.  Receiving is a bus
 * subscriber without validation (the hub validates, so that every
 * rejection is counted by reason); publishing is a bus publisher that
 * sends what the hub has already signed.  No settlement, no flow control:
 * PUB/SUB has neither, so full consumer queues drop their oldest message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/bus.h>

#include "bus_internal.h"
#include "config.h"
#include "log.h"
#include "transport.h"

struct zmq_transport {
	struct transport	 t;
	const struct fm_config	*cfg;
	struct fm_subscriber	*sub;
	struct fm_publisher	*pub;
	struct transport_stats	 st;
};

static int
z_subscribe(struct transport *t, const char *const *prefixes, char *err)
{
	struct zmq_transport *z = (struct zmq_transport *)t;
	struct fm_bus_opts o = FM_BUS_OPTS_INIT;

	o.config = z->cfg;
	if ((z->sub = fm_subscriber_open(&o, NULL, prefixes, 0, err)) == NULL)
		return -1;
	return 0;
}

static int
z_poll_items(struct transport *t, zmq_pollitem_t *items, int max)
{
	struct zmq_transport *z = (struct zmq_transport *)t;

	return z->sub ? bus_subscriber_poll_items(z->sub, items, max) : 0;
}

static void
z_io(struct transport *t, const zmq_pollitem_t *items, int n, int64_t now_ms)
{
	(void)t; (void)items; (void)n; (void)now_ms;	/* receive() reads */
}

static int
z_receive(struct transport *t, struct fm_msg **msg, struct delivery **d,
    char *err)
{
	struct zmq_transport *z = (struct zmq_transport *)t;
	struct fm_received r;
	int rc;

	*d = NULL;
	if (z->sub == NULL)
		return 0;
	rc = fm_subscriber_recv(z->sub, 0, &r, err);
	if (rc <= 0)
		return rc < 0 && errno != EINTR ? -1 : 0;
	*msg = r.msg;
	z->st.received++;
	return 1;
}

static void
z_settle(struct transport *t, struct delivery *d, enum settle how)
{
	(void)t; (void)d; (void)how;	/* PUB/SUB: nothing to acknowledge */
}

static void
z_pause(struct transport *t, bool paused)
{
	(void)t; (void)paused;		/* PUB/SUB: no credit to withhold */
}

static int
z_publish(struct transport *t, const struct fm_msg *msg, char *err)
{
	struct zmq_transport *z = (struct zmq_transport *)t;

	if (z->pub == NULL) {
		snprintf(err, FM_ERRLEN, "the hub has no publisher: set "
		    "hub.name (an endpoints key) or hub.active");
		z->st.publish_failed++;
		return -1;
	}
	if (fm_publisher_send(z->pub, msg, err) < 0) {
		z->st.publish_failed++;
		return -1;
	}
	z->st.published++;
	return 0;
}

static int
z_tick(struct transport *t, int64_t now_ms)
{
	(void)t; (void)now_ms;
	return -1;
}

static void
z_stats(const struct transport *t, struct transport_stats *st)
{
	const struct zmq_transport *z = (const struct zmq_transport *)t;
	struct fm_sub_stats ss;

	*st = z->st;
	if (z->sub) {
		fm_subscriber_stats(z->sub, &ss);
		st->bad_frames = ss.bad_frames;
		st->bad_json = ss.bad_json;
		st->topic_mismatch = ss.topic_mismatch;
	}
}

static void
z_free(struct transport *t)
{
	struct zmq_transport *z = (struct zmq_transport *)t;

	if (z == NULL)
		return;
	fm_subscriber_close(z->sub);
	fm_publisher_close(z->pub);
	free(z);
}

static const struct transport_ops zmq_ops = {
	"zmq", z_subscribe, z_poll_items, z_io, z_receive, z_settle, z_pause,
	z_publish, z_tick, z_stats, z_free, NULL, NULL,
};

struct transport *
transport_zmq_new(const struct fm_config *cfg, const char *pub_name,
    bool active, const char *cert_prefix, char *err)
{
	struct zmq_transport *z;

	if ((z = calloc(1, sizeof(*z))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	z->t.ops = &zmq_ops;
	z->cfg = cfg;
	if (pub_name || active) {
		struct fm_bus_opts o = FM_BUS_OPTS_INIT;

		o.config = cfg;
		o.name = pub_name;
		o.active = active;
		o.cert_prefix = cert_prefix;
		o.sign = 0;		/* the hub signs */
		if ((z->pub = fm_publisher_open(&o, err)) == NULL) {
			free(z);
			return NULL;
		}
		log_info("publishing on %s", fm_publisher_endpoint(z->pub));
	}
	return &z->t;
}
