/*
 * The hub's main loop and wiring (hub.h).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <systemd/sd-daemon.h>

#include <fedmsg/crypto.h>

#include "clock.h"
#include "buf.h"
#include "config.h"
#include "consumer.h"
#include "hub.h"
#include "hub_internal.h"
#include "log.h"
#include "metrics.h"
#include "transport.h"
#include "zep.h"

#ifndef FM_PLUGIN_DIR
#define FM_PLUGIN_DIR "/usr/local/lib/fedmsg-c"
#endif

#define BATCH		256	/* messages taken per wake-up */
#define OUTBOX_MAX	10000	/* messages consumers may have in flight */
#define MONITOR_MS	5000	/* moksha's monitoring period */

static void
wake(struct hub *h)
{
	uint64_t one = 1;

	(void)!write(h->wake, &one, sizeof(one));
}

/* ---- called from consumer threads ------------------------------------------- */

void
hub_post_settle(struct hub *h, struct dispatch *dsp)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		/* cannot settle: the broker redelivers after a reconnect */
		log_err("out of memory settling a delivery");
		return;
	}
	p->dsp = dsp;
	pthread_mutex_lock(&h->mu);
	if (h->settle_tail)
		h->settle_tail->next = p;
	else
		h->settle_head = p;
	h->settle_tail = p;
	pthread_mutex_unlock(&h->mu);
	wake(h);
}

int
hub_publish(struct hub *h, const char *who, const char *modname,
    const char *topic, const char *json, size_t len)
{
	struct fm_msg_fields f;
	struct fm_msg *m = NULL, *s = NULL;
	struct pending *p;
	char err[FM_ERRLEN];

	memset(&f, 0, sizeof(f));
	if (modname == NULL || *modname == '\0') {
		log_warn("consumer %s: publish needs a modname", who);
		return -1;
	}
	f.topic = fm_topic_build(h->cfg->topic_prefix, h->cfg->environment,
	    modname, topic);
	f.msg_json = json;
	f.msg_len = len;
	pthread_mutex_lock(&h->mu);
	f.i = ++h->seq;
	pthread_mutex_unlock(&h->mu);
	if (f.topic == NULL || fm_msg_build(&f, &h->cfg->limits, &m, err) < 0) {
		log_warn("consumer %s: cannot publish: %s", who,
		    f.topic ? err : "out of memory");
		free((char *)f.topic);
		return -1;
	}
	free((char *)f.topic);
	if (h->signer) {
		if (fm_signer_sign(h->signer, m, &s, err) < 0) {
			log_warn("consumer %s: cannot sign: %s", who, err);
			fm_msg_unref(m);
			return -1;
		}
		fm_msg_unref(m);
		m = s;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		fm_msg_unref(m);
		return -1;
	}
	p->msg = m;
	pthread_mutex_lock(&h->mu);
	if (h->nout >= OUTBOX_MAX) {
		pthread_mutex_unlock(&h->mu);
		log_warn("consumer %s: publish refused: %d messages already "
		    "wait to be sent", who, OUTBOX_MAX);
		fm_msg_unref(m);
		free(p);
		return -1;
	}
	if (h->out_tail)
		h->out_tail->next = p;
	else
		h->out_head = p;
	h->out_tail = p;
	h->nout++;
	pthread_mutex_unlock(&h->mu);
	wake(h);
	return 0;
}

/* ---- main thread ------------------------------------------------------------------ */

static void
drain_queues(struct hub *h)
{
	struct pending *settle, *out, *next;
	char err[FM_ERRLEN];
	uint64_t v;

	(void)!read(h->wake, &v, sizeof(v));
	pthread_mutex_lock(&h->mu);
	settle = h->settle_head;
	out = h->out_head;
	h->settle_head = h->settle_tail = NULL;
	h->out_head = h->out_tail = NULL;
	h->nout = 0;
	pthread_mutex_unlock(&h->mu);
	for (; settle; settle = next) {
		next = settle->next;
		h->bus->ops->settle(h->bus, settle->dsp->d,
		    (enum settle)atomic_load(&settle->dsp->worst));
		free(settle->dsp);
		free(settle);
	}
	for (; out; out = next) {
		next = out->next;
		pthread_mutex_lock(&h->n_mu);
		if (h->bus->ops->publish(h->bus, out->msg, err) < 0) {
			h->n.publish_failed++;
			log_warn("cannot send %s: %s", fm_msg_id(out->msg), err);
		} else {
			h->n.published++;
		}
		pthread_mutex_unlock(&h->n_mu);
		fm_msg_unref(out->msg);
		free(out);
	}
}

/*
 * At stop, after the consumers: keep doing the bus's I/O until what they
 * published is confirmed (on a broker: sent once a link has credit, then
 * settled), or until the deadline.
 */
static void
flush_publishes(struct hub *h, int64_t deadline)
{
	size_t left;

	if (h->bus->ops->unconfirmed == NULL)
		return;
	while ((left = h->bus->ops->unconfirmed(h->bus)) > 0 &&
	    clock_ms() < deadline) {
		zmq_pollitem_t items[8];
		int n = h->bus->ops->poll_items(h->bus, items, 8);
		int timeout = h->bus->ops->tick(h->bus, clock_ms());
		int64_t rest = deadline - clock_ms();

		if (timeout < 0 || timeout > rest)
			timeout = rest > 0 ? (int)rest : 0;
		if (timeout > 100)
			timeout = 100;
		if (zmq_poll(items, n, timeout) < 0 && errno != EINTR)
			break;
		h->bus->ops->io(h->bus, items, n, clock_ms());
	}
	if (left)
		log_warn("stopping: %zu published message(s) not confirmed by "
		    "the broker within the drain time", left);
}

static bool
all_halted(struct consumer *const *want, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!consumer_halted(want[i]))
			return false;
	return true;
}

/*
 * Hold a broker delivery that only halted consumers want (see
 * hub_internal.h); 0, or -1 when out of memory (then it is released).
 */
static int
park(struct hub *h, struct delivery *d, struct consumer *c)
{
	if (h->nparked == h->parked_cap) {
		size_t cap = h->parked_cap ? h->parked_cap * 2 : 64;
		struct delivery **p = realloc(h->parked, cap * sizeof(*p));

		if (p == NULL)
			return -1;
		h->parked = p;
		h->parked_cap = cap;
	}
	if (h->nparked == 0)
		log_warn("consumer %s has halted: the messages only it wants "
		    "stay with the broker, unsettled, until the hub stops",
		    consumer_name(c));
	h->parked[h->nparked++] = d;
	return 0;
}

/* Validate, then hand to every consumer that wants it. */
static void
dispatch(struct hub *h, struct fm_msg *m, struct delivery *d)
{
	struct consumer *want[MAX_CONSUMERS];
	struct dispatch *dsp = NULL;
	const char *topic = fm_msg_topic(m);
	char reason[FM_ERRLEN];
	int i, n = 0;

	pthread_mutex_lock(&h->n_mu);
	h->n.received++;
	pthread_mutex_unlock(&h->n_mu);
	/* a payload wrapped under the broker's authentication has no
	   signature: the broker's identity check is the trust */
	if (h->validator && !(h->bus->ops->vouched &&
	    h->bus->ops->vouched(h->bus))) {
		enum fm_verdict v = fm_validator_check(h->validator, m, reason);

		if (v != FM_VALID) {
			pthread_mutex_lock(&h->n_mu);
			h->n.invalid[v]++;
			pthread_mutex_unlock(&h->n_mu);
			log_warn("invalid message %s on %s: %s",
			    fm_msg_id(m) ? fm_msg_id(m) : "-",
			    topic ? topic : "-", reason);
			h->bus->ops->settle(h->bus, d, SETTLE_REJECT);
			return;
		}
	}
	for (i = 0; i < h->ncons && topic; i++)
		if (consumer_wants(h->cons[i], topic, h->cfg->zmq_strict) &&
		    consumer_matches(h->cons[i], m))
			want[n++] = h->cons[i];
	if (n == 0) {
		uint64_t k;

		pthread_mutex_lock(&h->n_mu);
		k = ++h->n.unrouted;
		pthread_mutex_unlock(&h->n_mu);
		/* on a broker: hub.unrouted (reject: to the dead-letter
		   exchange), never silently taken */
		if (d && (k & (k - 1)) == 0)	/* 1st, 2nd, 4th, ... */
			log_warn("no consumer wants %s on %s (%llu so far): "
			    "settled as hub.unrouted says (%s)",
			    fm_msg_id(m) ? fm_msg_id(m) : "-",
			    topic ? topic : "(no topic)",
			    (unsigned long long)k, h->unrouted ==
			    SETTLE_REJECT ? "reject" : h->unrouted ==
			    SETTLE_RELEASE ? "release" : "accept");
		h->bus->ops->settle(h->bus, d, h->unrouted);
		return;
	}
	if (d && all_halted(want, n) && park(h, d, want[0]) == 0)
		return;
	if (d) {
		if ((dsp = calloc(1, sizeof(*dsp))) == NULL) {
			h->bus->ops->settle(h->bus, d, SETTLE_RELEASE);
			return;
		}
		dsp->d = d;
		atomic_init(&dsp->pending, n);
		atomic_init(&dsp->worst, SETTLE_ACCEPT);
	}
	for (i = 0; i < n; i++) {
		enum offer rc = consumer_offer(want[i], m, dsp);

		if (rc != OFFER_QUEUED && dsp)
			dispatch_done(h, dsp, rc == OFFER_DUPLICATE ?
			    SETTLE_ACCEPT : SETTLE_RELEASE);
	}
}

/*
 * Withhold broker credit while a queue is nearly full (hysteresis).  Not
 * on ZeroMQ: it cannot hold messages back, the queues drop instead.
 */
static void
flow_control(struct hub *h)
{
	bool high = false, low = true;
	int i;

	if (strcmp(h->bus->ops->name, "zmq") == 0)
		return;
	for (i = 0; i < h->ncons; i++) {
		size_t b = consumer_backlog(h->cons[i]);
		size_t cap = consumer_queue_size(h->cons[i]);

		if (consumer_halted(h->cons[i]))
			continue;
		if (b * 10 >= cap * 9)
			high = true;
		if (b * 2 > cap)
			low = false;
	}
	if (!h->paused && high) {
		h->paused = true;
		h->n.paused++;
		h->bus->ops->pause(h->bus, true);
		log_info("a consumer queue is nearly full: pausing the bus");
	} else if (h->paused && low) {
		h->paused = false;
		h->bus->ops->pause(h->bus, false);
		log_info("consumer queues drained: resuming the bus");
	}
}

static bool
selected(const struct hub_opts *o, const char *name)
{
	const char *const *p;

	if (o->only == NULL)
		return true;
	for (p = o->only; *p; p++)
		if (strcmp(*p, name) == 0)
			return true;
	return false;
}

static int
load_consumers(struct hub *h, json_t *hubcfg, char *err)
{
	json_t *all = fm_config_get(h->cfg, "consumers"), *e;
	json_t *pd = fm_config_get(h->cfg, "plugin_dir");
	const char *dir = json_is_string(pd) ? json_string_value(pd) :
	    FM_PLUGIN_DIR;
	bool skip = hub_truthy(json_object_get(hubcfg,
	    "skip_broken_consumers"));
	const char *name;

	json_object_foreach(all, name, e) {
		struct consumer_spec *spec;
		struct consumer *c;
		const char *key;

		if (!json_is_object(e)) {
			snprintf(err, FM_ERRLEN, "consumers.%s must be an object",
			    name);
			return -1;
		}
		if (!selected(h->o, name) ||
		    (json_object_get(e, "enabled") &&
		    !hub_truthy(json_object_get(e, "enabled")))) {
			log_info("consumer %s: not enabled", name);
			continue;
		}
		if (h->ncons == MAX_CONSUMERS) {
			snprintf(err, FM_ERRLEN, "more than %d consumers",
			    MAX_CONSUMERS);
			return -1;
		}
		if ((spec = hub_consumer_spec(name, e, err)) == NULL)
			return -1;
		if ((c = consumer_load(h, spec, dir, err)) == NULL) {
			if (!skip)
				return -1;
			log_err("%s (skipped: hub.skip_broken_consumers)", err);
			continue;
		}
		/* fedmsg: a consumer runs only when its config_key is true */
		key = consumer_config_key(c);
		if (key && !hub_truthy(fm_config_get(h->cfg, key))) {
			log_info("consumer %s: %s is not true in the config: not "
			    "started", name, key);
			consumer_free(c);
			continue;
		}
		h->cons[h->ncons++] = c;
	}
	return 0;
}

/* The union of the consumers' ZeroMQ subscriptions. */
static const char **
subscriptions(struct hub *h)
{
	const char **all;
	size_t n = 0, cap = 16;
	int i;

	if ((all = calloc(cap, sizeof(*all))) == NULL)
		return NULL;
	for (i = 0; i < h->ncons; i++) {
		const char *const *p;

		for (p = consumer_prefixes(h->cons[i]); *p; p++) {
			if (n + 2 > cap) {
				const char **more = realloc(all, cap * 2 *
				    sizeof(*all));

				if (more == NULL) {
					free(all);
					return NULL;
				}
				all = more;
				cap *= 2;
			}
			all[n++] = *p;
		}
	}
	all[n] = NULL;
	return all;
}

/*
 * hub.unrouted: how a broker delivery that no consumer wants (or that
 * has no topic) is settled: "reject" (default: dead-lettered when the
 * queue has a dead-letter exchange), "release" (requeued) or "accept".
 */
static int
unrouted_rule(json_t *hubcfg, enum settle *out, char *err)
{
	json_t *v = json_object_get(hubcfg, "unrouted");
	const char *s = json_string_value(v);

	*out = SETTLE_REJECT;
	if (v == NULL)
		return 0;
	if (s && strcmp(s, "reject") == 0)
		*out = SETTLE_REJECT;
	else if (s && strcmp(s, "release") == 0)
		*out = SETTLE_RELEASE;
	else if (s && strcmp(s, "accept") == 0)
		*out = SETTLE_ACCEPT;
	else {
		snprintf(err, FM_ERRLEN, "hub.unrouted must be \"reject\", "
		    "\"release\" or \"accept\"");
		return -1;
	}
	return 0;
}

static int
setup(struct hub *h, char *err)
{
	json_t *hubcfg = fm_config_get(h->cfg, "hub");
	json_t *name = json_object_get(hubcfg, "name");
	json_t *cert = json_object_get(hubcfg, "cert");
	json_t *metrics = json_object_get(hubcfg, "metrics");
	json_t *mon = fm_config_get(h->cfg, "moksha.monitoring.socket");
	bool active = hub_truthy(json_object_get(hubcfg, "active"));
	bool bad = false;
	const char **subs;

	if (hubcfg && !json_is_object(hubcfg)) {
		snprintf(err, FM_ERRLEN, "config key 'hub' must be an object");
		return -1;
	}
	hub_check_keys(hubcfg);
	h->heartbeat_ms = (unsigned)(hub_num(hubcfg, "heartbeat_interval", 0,
	    &bad) * 1000);
	h->drain_ms = (unsigned)(hub_num(hubcfg, "drain_timeout", 30, &bad) *
	    1000);
	if (bad || (name && !json_is_string(name)) ||
	    (cert && !json_is_string(cert)) ||
	    (metrics && !json_is_string(metrics) && !json_is_null(metrics))) {
		snprintf(err, FM_ERRLEN, "hub: name, cert and metrics must be "
		    "strings; heartbeat_interval and drain_timeout numbers");
		return -1;
	}
	if (h->cfg->validate_signatures &&
	    (h->validator = fm_config_validator(h->cfg, err)) == NULL)
		return -1;
	if (!h->cfg->validate_signatures)
		log_warn("validate_signatures is false: consumers will see "
		    "unauthenticated messages");
	if (h->cfg->sign_messages && (name || active ||
	    json_object_get(hubcfg, "bus"))) {
		char key[300];

		if (cert)
			snprintf(key, sizeof(key), "%s", json_string_value(cert));
		else if (name)
			snprintf(key, sizeof(key), "%s", json_string_value(name));
		else
			snprintf(key, sizeof(key), "hub.%s", fm_short_hostname());
		if ((h->signer = fm_config_signer(h->cfg, key, err)) == NULL)
			return -1;
	}
	if (load_consumers(h, hubcfg, err) < 0)
		return -1;
	if (h->ncons == 0)
		log_warn("no consumer is enabled");
	if (unrouted_rule(hubcfg, &h->unrouted, err) < 0)
		return -1;
	if (json_object_get(hubcfg, "bus"))
		h->bus = transport_broker_new(h->cfg, hubcfg, err);
	else
		h->bus = transport_zmq_new(h->cfg, json_string_value(name),
		    active, NULL, err);
	if (h->bus == NULL)
		return -1;
	if ((subs = subscriptions(h)) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return -1;
	}
	if (h->ncons && h->bus->ops->subscribe(h->bus, subs, err) < 0) {
		free(subs);
		return -1;
	}
	free(subs);
	if (json_is_string(mon)) {
		h->monitor = zmq_socket(zep_context(h->cfg), ZMQ_PUB);
		if (h->monitor)	/* max_message_bytes for subscriptions */
			zep_apply_options(h->monitor, h->cfg, false);
		if (h->monitor == NULL ||
		    zmq_bind(h->monitor, json_string_value(mon)) < 0) {
			snprintf(err, FM_ERRLEN, "moksha.monitoring.socket %s: %s",
			    json_string_value(mon), zmq_strerror(errno));
			return -1;
		}
	}
	if (json_is_string(metrics) &&
	    (h->metrics = metrics_start(h, json_string_value(metrics),
	    err)) == NULL)
		return -1;
	return 0;
}

/*
 * The new "config" of each running consumer, checked as at start-up
 * (hub_consumer_spec): texts[i] for h->cons[i], to free; a consumer no
 * longer in the config keeps its own (NULL).  -1 with err if an entry
 * would not start.
 */
static int
reload_texts(struct hub *h, struct fm_config *cfg, char **texts, char *err)
{
	json_t *all = fm_config_get(cfg, "consumers");
	struct consumer_spec *spec;
	int i;

	for (i = 0; i < h->ncons; i++) {
		const char *name = consumer_name(h->cons[i]);
		json_t *e = json_object_get(all, name);

		texts[i] = NULL;
		if (e == NULL) {
			log_warn("reload: consumers.%s is gone from the "
			    "config: it runs on with its config until a "
			    "restart", name);
			continue;
		}
		if (!json_is_object(e)) {
			snprintf(err, FM_ERRLEN, "consumers.%s must be an "
			    "object", name);
			return -1;
		}
		if ((spec = hub_consumer_spec(name, e, err)) == NULL)
			return -1;
		texts[i] = spec->config_json;
		spec->config_json = NULL;
		consumer_spec_free(spec);
	}
	return 0;
}

static void
reload(struct hub *h)
{
	struct fm_config *cfg = NULL;
	char err[FM_ERRLEN], *texts[MAX_CONSUMERS] = { NULL };
	int i;

	sd_notify(0, "RELOADING=1");
	log_info("SIGHUP: reloading %s", h->o->config_path ?
	    h->o->config_path : "the config");
	if (fm_config_load(h->o->config_path, &cfg, err) < 0 ||
	    reload_texts(h, cfg, texts, err) < 0) {
		log_err("reload failed, keeping the running config: %s", err);
		fm_config_free(cfg);	/* NULL if it did not load */
		for (i = 0; i < h->ncons; i++)
			free(texts[i]);
		sd_notify(0, "READY=1");
		return;
	}
	if (h->validator) {
		struct fm_validator *v = fm_config_validator(cfg, err);

		if (v == NULL) {
			log_err("reload failed, keeping the running config: %s",
			    err);
			fm_config_free(cfg);
			for (i = 0; i < h->ncons; i++)
				free(texts[i]);
			sd_notify(0, "READY=1");
			return;
		}
		/*
		 * Consumers never touch the validator, and this thread is the
		 * only one validating: swapping here is safe.
		 */
		fm_validator_free(h->validator);
		h->validator = v;
	}
	for (i = 0; i < h->ncons; i++) {
		if (texts[i])
			consumer_reload(h->cons[i], texts[i]);
		free(texts[i]);
	}
	/*
	 * The old config stays alive: the transport and consumers hold
	 * pointers into it; the new one only provided values.
	 */
	fm_config_free(cfg);
	log_info("reloaded: CA/CRL re-read, consumer configs updated (adding "
	    "or removing consumers needs a restart)");
	sd_notify(0, "READY=1");
}

int
hub_run(const struct hub_opts *o)
{
	struct hub *h = calloc(1, sizeof(*h));
	char err[FM_ERRLEN];
	int64_t deadline;
	int status = 1, i;

	if (h == NULL)
		return 1;
	h->o = o;
	h->wake = -1;
	pthread_mutex_init(&h->mu, NULL);
	pthread_mutex_init(&h->n_mu, NULL);
	if (fm_config_load(o->config_path, &h->cfg, err) < 0) {
		log_err("%s", err);
		status = 2;
		goto out;
	}
	if ((h->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		log_err("eventfd: %s", strerror(errno));
		goto out;
	}
	if (setup(h, err) < 0) {
		log_err("%s", err);
		status = 2;	/* configuration, plugins, certificates */
		goto out;
	}
	if (o->check_only) {
		char *s = hub_status_json(h, false);

		printf("%s\n", s ? s : "{}");
		free(s);
		status = 0;
		goto out;
	}
	for (i = 0; i < h->ncons; i++)
		if (consumer_start(h->cons[i], err) < 0) {
			log_err("%s", err);
			goto out;
		}
	if (sd_watchdog_enabled(0, &h->watchdog_us) <= 0)
		h->watchdog_us = 0;
	sd_notifyf(0, "READY=1\nSTATUS=running %d consumer(s)", h->ncons);
	log_info("running with %d consumer(s)", h->ncons);
	h->next_monitor = clock_ms() + MONITOR_MS;
	h->next_heartbeat = clock_ms() + h->heartbeat_ms;

	while (!*o->stop) {
		zmq_pollitem_t items[260];
		int n, k, timeout, halted = 0;
		int64_t now;

		items[0] = (zmq_pollitem_t){ NULL, h->wake, ZMQ_POLLIN, 0 };
		n = 1 + h->bus->ops->poll_items(h->bus, items + 1, 259);
		timeout = h->bus->ops->tick(h->bus, clock_ms());
		if (timeout < 0 || timeout > 1000)
			timeout = 1000;
		if (zmq_poll(items, n, timeout) < 0 && errno != EINTR) {
			log_err("poll: %s", zmq_strerror(errno));
			break;
		}
		h->bus->ops->io(h->bus, items + 1, n - 1, clock_ms());
		if (*o->reload) {
			*o->reload = 0;
			reload(h);
		}
		for (k = 0; k < BATCH; k++) {
			struct fm_msg *m;
			struct delivery *d;
			int rc = h->bus->ops->receive(h->bus, &m, &d, err);

			if (rc < 0) {
				log_err("bus: %s", err);
				break;
			}
			if (rc == 0)
				break;
			dispatch(h, m, d);
			fm_msg_unref(m);
			if ((k & 31) == 31)
				flow_control(h);
		}
		drain_queues(h);
		flow_control(h);
		now = clock_ms();
		for (k = 0; k < h->ncons; k++) {
			consumer_tick(h->cons[k], now);
			halted += consumer_halted(h->cons[k]);
		}
		if (h->ncons && halted == h->ncons) {
			log_err("every consumer has halted: stopping the hub");
			status = 3;
			goto drain;
		}
		if (h->heartbeat_ms && now >= h->next_heartbeat) {
			/* fedmsg's old heartbeat: <prefix>._heartbeat, lub-dub */
			h->next_heartbeat = now + h->heartbeat_ms;
			hub_publish(h, "hub", h->cfg->topic_prefix, "_heartbeat",
			    "\"lub-dub\"", 0);
		}
		if (now >= h->next_monitor) {
			h->next_monitor = now + MONITOR_MS;
			hub_monitor_report(h);
		}
		if (h->watchdog_us && now >= h->next_watchdog) {
			h->next_watchdog = now + (int64_t)(h->watchdog_us / 2000);
			sd_notify(0, "WATCHDOG=1");
		}
	}
	status = 0;
drain:
	sd_notify(0, "STOPPING=1");
	log_info("stopping: draining consumer queues (up to %u ms)",
	    h->drain_ms);
	h->bus->ops->pause(h->bus, true);
	/* one deadline for all: the consumers stop one after another */
	deadline = clock_ms() + h->drain_ms;
	for (i = 0; i < h->ncons; i++)
		consumer_stop(h->cons[i], true, deadline);
	drain_queues(h);
	flush_publishes(h, clock_ms() + h->drain_ms);
out:
	metrics_stop(h->metrics);
	for (i = 0; i < h->ncons; i++)
		consumer_free(h->cons[i]);
	if (h->bus) {
		drain_queues(h);
		while (h->nparked)
			h->bus->ops->settle(h->bus, h->parked[--h->nparked],
			    SETTLE_RELEASE);
		h->bus->ops->free(h->bus);
	}
	free(h->parked);
	if (h->monitor) {
		zmq_setsockopt(h->monitor, ZMQ_LINGER, &(int){ 0 }, sizeof(int));
		zmq_close(h->monitor);
	}
	if (h->wake >= 0)
		close(h->wake);
	fm_validator_free(h->validator);
	fm_signer_free(h->signer);
	fm_config_free(h->cfg);
	zep_shutdown();
	pthread_mutex_destroy(&h->mu);
	pthread_mutex_destroy(&h->n_mu);
	free(h);
	return status;
}
