/*
 * fedmsg-git-hook's broker output (hook_broker.h): one broker link of the
 * brokers/ layer, driven on this thread until everything is accepted or
 * the deadline passes, with the envelope in the bridge's forms
 * (broker_format.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "broker.h"
#include "broker_format.h"
#include "clock.h"
#include "hook_broker.h"
#include "jget.h"
#include "json.h"
#include "log.h"
#include "msg.h"

#define MAX_URLS	16
#define MAX_IN_FLIGHT	256

struct hook_broker {
	const char		*urls[MAX_URLS];
	size_t			 nurls;
	const char		*address;	/* template */
	const char		*schema;	/* NULL: base.message */
	enum broker_format	 format;
	struct broker_opts	 bo;		/* strings point into the config */
	char			*secret;	/* the password, ours */
};

struct hook_broker *
hb_new(json_t *obj, char *err)
{
	static const char *const keys[] = { "url", "address", "format",
	    "schema", "user", "password_file", "allow_plaintext_credentials",
	    "vhost", "tls", "heartbeat", "confirm_timeout", "connect_timeout",
	    "exchanges", "queues", "bindings", "passive_declares", NULL };
	struct hook_broker *b;
	const char *f, *key;
	json_t *url, *v;
	size_t i;
	int fmt;

	if (!json_is_object(obj)) {
		snprintf(err, FM_ERRLEN, "git_hook.broker must be an object");
		return NULL;
	}
	json_object_foreach(obj, key, v) {
		for (i = 0; keys[i] && strcmp(keys[i], key); i++)
			;
		if (keys[i] == NULL) {
			snprintf(err, FM_ERRLEN, "git_hook.broker: unknown key "
			    "\"%.100s\"", key);
			return NULL;
		}
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	url = json_object_get(obj, "url");
	if (json_is_string(url))
		b->urls[b->nurls++] = json_string_value(url);
	json_array_foreach(json_is_array(url) ? url : NULL, i, v)
		if (json_is_string(v) && b->nurls < MAX_URLS)
			b->urls[b->nurls++] = json_string_value(v);
	b->address = jget_str(obj, "address") ? jget_str(obj, "address") :
	    "/topic/{topic}";
	b->schema = jget_str(obj, "schema");
	f = jget_str(obj, "format") ? jget_str(obj, "format") : "fedmsg";
	if (b->nurls == 0 || (json_is_array(url) &&
	    b->nurls != json_array_size(url))) {
		snprintf(err, FM_ERRLEN, "git_hook.broker.url: a URL or an "
		    "array of up to %d URLs", MAX_URLS);
		goto fail;
	}
	if ((fmt = broker_format_from_name(f)) < 0) {
		snprintf(err, FM_ERRLEN, "git_hook.broker.format must be "
		    "\"fedmsg\", \"fedora-messaging\" or \"umb\"");
		goto fail;
	}
	b->format = (enum broker_format)fmt;
	if (broker_opts_from_json(obj, &b->bo, &b->secret, err) < 0)
		goto fail;
	b->bo.urls = b->urls;
	b->bo.nurls = b->nurls;
	b->bo.name = "fedmsg-git-hook";
	b->bo.max_in_flight = MAX_IN_FLIGHT;
	return b;
fail:
	hb_free(b);
	return NULL;
}

void
hb_free(struct hook_broker *b)
{
	if (b == NULL)
		return;
	broker_secret_free(b->secret);
	free(b);
}

/* One delivery run: the callbacks' view. */
struct hb_run {
	const struct hb_source	*src;
	bool			 up, down, refused;
	uint64_t		 in_flight, accepted, dropped;
};

static void
on_up(void *ctx)
{
	((struct hb_run *)ctx)->up = true;
}

static void
on_down(void *ctx, const char *why)
{
	struct hb_run *r = ctx;

	r->down = true;
	log_warn("broker: %s", why ? why : "connection lost");
}

static void
on_sent(void *ctx, uint64_t token, enum broker_outcome o, const char *why)
{
	struct hb_run *r = ctx;

	r->in_flight--;
	switch (o) {
	case BROKER_ACCEPTED:
		r->src->ack(r->src->ctx, token);
		r->accepted++;
		break;
	case BROKER_UNROUTABLE:
		/* no queue wants it: retrying would not help (as the bridge) */
		log_warn("broker: no queue is bound for a message; dropped");
		r->src->ack(r->src->ctx, token);
		r->dropped++;
		break;
	default:
		/* it and what follows stay spooled, for the next run */
		log_warn("broker: a message was not accepted (%s)",
		    why ? why : "no reason given");
		r->refused = true;
		break;
	}
}

static void
on_message(void *ctx, const struct broker_in *in, struct broker_delivery *d)
{
	(void)ctx; (void)in; (void)d;	/* we subscribe to nothing */
}

/*
 * Send one record in the chosen format (broker_format.h, as the bridge).
 * Returns the link's send() result (0 queued, -1 not now, -2 never), or
 * -2 for a record that cannot be read or has no form in the format.
 */
static int
send_record(struct hook_broker *b, struct broker *link,
    const struct fm_limits *lim, const void *data, size_t len,
    uint64_t token)
{
	struct broker_form_opts fo = { b->format, link->ops->proto, NULL,
	    b->schema };
	struct broker_form form;
	struct broker_out out = { 0 };
	char err[FM_ERRLEN];
	struct fm_msg *m;
	const char *topic;
	char *address = NULL;
	double ts;
	int rc = -2;

	memset(&form, 0, sizeof(form));
	if (fm_msg_parse(data, len, lim, &m, err) < 0) {
		log_err("spooled message unreadable, dropped: %s", err);
		return -2;
	}
	topic = fm_msg_topic(m);
	if (topic == NULL ||
	    (address = broker_address(b->address, topic)) == NULL)
		goto done;
	if (!link->ops->can_send(link, address)) {
		rc = -1;
		goto done;
	}
	out.address = address;
	out.message_id = fm_msg_id(m);
	out.subject = topic;
	out.creation_ms = fm_msg_timestamp(m, &ts) ? (int64_t)(ts * 1000) : 0;
	if (broker_form_make(&form, &fo, m, data, len, &out, err) < 0) {
		log_err("message %s: %s", fm_msg_id(m) ? fm_msg_id(m) : "-",
		    err);
		goto done;
	}
	rc = link->ops->send(link, &out, token);
done:
	if (rc == -2)
		log_err("message %s cannot be sent to %s: dropped",
		    fm_msg_id(m) ? fm_msg_id(m) : "-", address ? address : "-");
	broker_form_free(&form);
	free(address);
	fm_msg_unref(m);
	return rc;
}

uint64_t
hb_deliver(struct hook_broker *b, const struct fm_limits *lim,
    const struct hb_source *src, int64_t deadline_ms, uint64_t *dropped)
{
	struct hb_run r = { .src = src };
	struct broker_callbacks cb = { &r, on_up, on_down, on_sent,
	    on_message };
	struct broker_opts bo = b->bo;
	struct broker *link;
	char err[FM_ERRLEN];
	int64_t now = clock_ms(), left = deadline_ms - now;
	bool have = false, exhausted = false;
	char *copy = NULL;	/* the record in hand: an ack may move the
				   source's own bytes */
	const void *data;
	uint64_t token = 0;
	size_t len = 0;

	/* connect and confirmations within the run's bound */
	bo.connect_timeout_ms = (unsigned)(left > 100 ? left : 100);
	bo.confirm_timeout_ms = bo.connect_timeout_ms;
	if ((link = broker_new(&bo, &cb, err)) == NULL) {
		log_err("git_hook.broker: %s", err);
		return 0;
	}
	while (!r.down && !r.refused && (now = clock_ms()) < deadline_ms) {
		zmq_pollitem_t item = { 0 };
		int t, timeout = (int)(deadline_ms - now);

		while (r.up && !exhausted) {
			int rc;

			if (!have) {
				if (src->next(src->ctx, &token, &data,
				    &len) == 0) {
					exhausted = true;
					break;
				}
				free(copy);
				if ((copy = malloc(len ? len : 1)) == NULL) {
					log_err("out of memory");
					goto out;
				}
				memcpy(copy, data, len);
				have = true;
			}
			rc = send_record(b, link, lim, copy, len, token);
			if (rc == -1)
				break;	/* no room yet: this one again later */
			have = false;
			if (rc == -2) {
				src->ack(src->ctx, token);
				r.dropped++;
			} else
				r.in_flight++;
		}
		if (exhausted && r.in_flight == 0)
			break;
		link->ops->poll_item(link, &item);
		t = link->ops->timeout_ms(link, now);
		if (t >= 0 && t < timeout)
			timeout = t;
		if (zmq_poll(&item, item.fd >= 0 ? 1 : 0, timeout) < 0 &&
		    errno != EINTR) {
			log_err("poll: %s", zmq_strerror(errno));
			break;
		}
		link->ops->handle(link, item.fd >= 0 ? item.revents : 0,
		    clock_ms());
	}
out:
	link->ops->free(link);
	free(copy);
	if (dropped)
		*dropped = r.dropped;
	return r.accepted;
}
