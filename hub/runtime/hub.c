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
#include "log.h"
#include "metrics.h"
#include "transport.h"
#include "zep.h"

#ifndef FM_PLUGIN_DIR
#define FM_PLUGIN_DIR "/usr/local/lib/fedmsg-c"
#endif

#define MAX_CONSUMERS	64
#define BATCH		256	/* messages taken per wake-up */
#define OUTBOX_MAX	10000	/* messages consumers may have in flight */
#define MONITOR_MS	5000	/* moksha's monitoring period */

struct pending {
	struct fm_msg	*msg;		/* outbox */
	struct dispatch	*dsp;		/* settlements */
	struct pending	*next;
};

struct hub {
	const struct hub_opts	*o;
	struct fm_config	*cfg;
	struct transport	*bus;
	struct fm_validator	*validator;
	struct fm_signer	*signer;
	struct consumer		*cons[MAX_CONSUMERS];
	int			 ncons;
	int			 wake;		/* eventfd */

	pthread_mutex_t		 mu;		/* guards the lists and seq */
	struct pending		*settle_head, *settle_tail;
	struct pending		*out_head, *out_tail;
	size_t			 nout;
	int64_t			 seq;		/* "i" of what the hub publishes */

	bool			 paused;
	struct hub_counters	 n;
	pthread_mutex_t		 n_mu;		/* counters vs. metrics thread */
	void			*monitor;	/* moksha.monitoring.socket PUB */
	struct metrics		*metrics;
	/* hub settings */
	unsigned		 heartbeat_ms, drain_ms;
	int64_t			 next_heartbeat, next_monitor, next_watchdog;
	uint64_t		 watchdog_us;
	/* last monitoring report, for moksha's since-last-report counters */
	uint64_t		 last_in[MAX_CONSUMERS], last_ok[MAX_CONSUMERS];
	uint64_t		 last_err[MAX_CONSUMERS];
};

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
	if (h->validator) {
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
		pthread_mutex_lock(&h->n_mu);
		h->n.unrouted++;
		pthread_mutex_unlock(&h->n_mu);
		h->bus->ops->settle(h->bus, d, SETTLE_ACCEPT);
		return;
	}
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

/* ---- status, metrics, monitoring ------------------------------------------------ */

char *
hub_status_json(struct hub *h, bool deltas)
{
	json_t *doc = json_object(), *list = json_array();
	char *text;
	int i;

	for (i = 0; i < h->ncons; i++) {
		struct consumer *c = h->cons[i];
		const struct consumer_stats *st = consumer_stats(c);
		json_t *e = json_object(), *topics = json_array();
		uint64_t in = atomic_load(&st->in), ok = atomic_load(&st->ok);
		uint64_t err = atomic_load(&st->dropped[DROP_ERROR]);
		const char *const *t;
		char last[256];

		for (t = consumer_topics(c); *t; t++)
			json_array_append_new(topics, json_string(*t));
		consumer_last_error(c, last, sizeof(last));
		json_object_set_new(e, "name", json_string(consumer_name(c)));
		json_object_set_new(e, "module",
		    json_string(consumer_plugin_name(c)));
		json_object_set_new(e, "topic", topics);
		json_object_set_new(e, "initialized",
		    json_boolean(!consumer_halted(c)));
		json_object_set_new(e, "jsonify", json_true());
		json_object_set_new(e, "backlog",
		    json_integer((json_int_t)consumer_backlog(c)));
		json_object_set_new(e, "exceptions", json_integer((json_int_t)
		    (deltas ? err - h->last_err[i] : err)));
		json_object_set_new(e, "headcount_in", json_integer((json_int_t)
		    (deltas ? in - h->last_in[i] : in)));
		json_object_set_new(e, "headcount_out", json_integer((json_int_t)
		    (deltas ? ok - h->last_ok[i] : ok)));
		json_object_set_new(e, "times", json_array());
		json_object_set_new(e, "last_error", json_string(last));
		if (deltas) {
			h->last_in[i] = in;
			h->last_ok[i] = ok;
			h->last_err[i] = err;
		}
		json_array_append_new(list, e);
	}
	json_object_set_new(doc, "consumers", list);
	json_object_set_new(doc, "producers", json_array());
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	return text;
}

static void
metric(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *
hub_metrics_text(struct hub *h)
{
	struct buf b = BUF_INIT;
	struct hub_counters n;
	struct transport_stats ts;
	int i, r, k;

	pthread_mutex_lock(&h->n_mu);
	n = h->n;
	pthread_mutex_unlock(&h->n_mu);
	h->bus->ops->stats(h->bus, &ts);
	metric(&b, "fedmsg_hub_received_total", "counter",
	    "Messages taken from the bus.");
	buf_printf(&b, "fedmsg_hub_received_total %llu\n",
	    (unsigned long long)n.received);
	metric(&b, "fedmsg_hub_invalid_total", "counter",
	    "Messages that failed validation, by reason.");
	for (k = 1; k < FM_VERDICT_COUNT; k++)
		buf_printf(&b, "fedmsg_hub_invalid_total{reason=\"%s\"} %llu\n",
		    fm_verdict_name((enum fm_verdict)k),
		    (unsigned long long)n.invalid[k]);
	metric(&b, "fedmsg_hub_rejected_total", "counter",
	    "Messages the transport refused before validation, by reason.");
	buf_printf(&b, "fedmsg_hub_rejected_total{reason=\"bad_frames\"} %llu\n"
	    "fedmsg_hub_rejected_total{reason=\"bad_json\"} %llu\n"
	    "fedmsg_hub_rejected_total{reason=\"topic_mismatch\"} %llu\n",
	    (unsigned long long)ts.bad_frames, (unsigned long long)ts.bad_json,
	    (unsigned long long)ts.topic_mismatch);
	metric(&b, "fedmsg_hub_unrouted_total", "counter",
	    "Valid messages no consumer wanted.");
	buf_printf(&b, "fedmsg_hub_unrouted_total %llu\n",
	    (unsigned long long)n.unrouted);
	metric(&b, "fedmsg_hub_published_total", "counter",
	    "Messages consumers published, as sent (ok) or not (failed).");
	buf_printf(&b, "fedmsg_hub_published_total{result=\"ok\"} %llu\n"
	    "fedmsg_hub_published_total{result=\"failed\"} %llu\n",
	    (unsigned long long)n.published,
	    (unsigned long long)n.publish_failed);

	metric(&b, "fedmsg_consumer_in_total", "counter",
	    "Messages queued for a consumer.");
	for (i = 0; i < h->ncons; i++)
		buf_printf(&b, "fedmsg_consumer_in_total{consumer=\"%s\"} %llu\n",
		    consumer_name(h->cons[i]), (unsigned long long)
		    atomic_load(&consumer_stats(h->cons[i])->in));
	metric(&b, "fedmsg_consumer_ok_total", "counter",
	    "Messages a consumer handled (verdict ok).");
	for (i = 0; i < h->ncons; i++)
		buf_printf(&b, "fedmsg_consumer_ok_total{consumer=\"%s\"} %llu\n",
		    consumer_name(h->cons[i]), (unsigned long long)
		    atomic_load(&consumer_stats(h->cons[i])->ok));
	metric(&b, "fedmsg_consumer_retried_total", "counter",
	    "Messages put back for another attempt.");
	for (i = 0; i < h->ncons; i++)
		buf_printf(&b, "fedmsg_consumer_retried_total{consumer=\"%s\"} "
		    "%llu\n", consumer_name(h->cons[i]), (unsigned long long)
		    atomic_load(&consumer_stats(h->cons[i])->retried));
	metric(&b, "fedmsg_consumer_dropped_total", "counter",
	    "Messages a consumer did not handle, by reason.");
	for (i = 0; i < h->ncons; i++)
		for (r = 0; r < DROP_REASONS; r++)
			buf_printf(&b, "fedmsg_consumer_dropped_total{consumer="
			    "\"%s\",reason=\"%s\"} %llu\n",
			    consumer_name(h->cons[i]), drop_reason_names[r],
			    (unsigned long long)atomic_load(
			    &consumer_stats(h->cons[i])->dropped[r]));
	metric(&b, "fedmsg_consumer_overruns_total", "counter",
	    "consume() calls that ran past the consumer's time budget.");
	for (i = 0; i < h->ncons; i++)
		buf_printf(&b, "fedmsg_consumer_overruns_total{consumer=\"%s\"} "
		    "%llu\n", consumer_name(h->cons[i]), (unsigned long long)
		    atomic_load(&consumer_stats(h->cons[i])->overruns));
	metric(&b, "fedmsg_consumer_queue_depth", "gauge",
	    "Messages queued, waiting for a retry, or being consumed.");
	for (i = 0; i < h->ncons; i++)
		buf_printf(&b, "fedmsg_consumer_queue_depth{consumer=\"%s\"} %zu\n",
		    consumer_name(h->cons[i]), consumer_backlog(h->cons[i]));
	metric(&b, "fedmsg_consumer_halted", "gauge",
	    "1 when the consumer has halted.");
	for (i = 0; i < h->ncons; i++)
		buf_printf(&b, "fedmsg_consumer_halted{consumer=\"%s\"} %d\n",
		    consumer_name(h->cons[i]), consumer_halted(h->cons[i]));
	metric(&b, "fedmsg_consumer_latency_seconds", "histogram",
	    "Time spent in consume().");
	for (i = 0; i < h->ncons; i++) {
		const struct consumer_stats *st = consumer_stats(h->cons[i]);

		for (r = 0; r < LATENCY_BUCKETS; r++)
			buf_printf(&b, "fedmsg_consumer_latency_seconds_bucket{"
			    "consumer=\"%s\",le=\"%g\"} %llu\n",
			    consumer_name(h->cons[i]), (double)(1 << r) / 1000.0,
			    (unsigned long long)atomic_load(&st->latency_le[r]));
		buf_printf(&b, "fedmsg_consumer_latency_seconds_bucket{consumer="
		    "\"%s\",le=\"+Inf\"} %llu\n", consumer_name(h->cons[i]),
		    (unsigned long long)atomic_load(&st->latency_count));
		buf_printf(&b, "fedmsg_consumer_latency_seconds_sum{consumer="
		    "\"%s\"} %.6f\n", consumer_name(h->cons[i]),
		    (double)atomic_load(&st->latency_us_sum) / 1e6);
		buf_printf(&b, "fedmsg_consumer_latency_seconds_count{consumer="
		    "\"%s\"} %llu\n", consumer_name(h->cons[i]),
		    (unsigned long long)atomic_load(&st->latency_count));
	}
	return buf_steal(&b, NULL);
}

static void
monitor_report(struct hub *h)
{
	char *text = hub_status_json(h, true);

	/* moksha sends one single-frame JSON document */
	if (text && h->monitor)
		zmq_send(h->monitor, text, strlen(text), ZMQ_DONTWAIT);
	free(text);
}

/* ---- configuration of the hub and its consumers --------------------------------- */

static const char *const hub_keys[] = { "name", "active", "cert",
    "metrics", "heartbeat_interval", "drain_timeout",
    "skip_broken_consumers", "bus", "source", "address", "user",
    "password_file", "vhost", "tls", "credit", "heartbeat",
    "confirm_timeout", NULL };
static const char *const consumer_keys[] = { "plugin", "enabled",
    "config_key", "topics", "threads", "queue_size", "queue_full",
    "timeout", "max_attempts", "backoff", "max_backoff", "dedup_window",
    "config", "match", NULL };

static void
warn_unknown(json_t *obj, const char *const *known, const char *where)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		const char *const *k;

		for (k = known; *k && strcmp(*k, key) != 0; k++)
			;
		if (*k == NULL)
			log_warn("%s: unknown key '%s'", where, key);
	}
}

static double
num(json_t *obj, const char *key, double dflt, bool *bad)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return dflt;
	if (!json_is_number(v) || json_number_value(v) < 0) {
		*bad = true;
		log_err("key '%s' must be a number >= 0", key);
		return dflt;
	}
	return json_number_value(v);
}

static bool
truthy(json_t *v)
{
	return v && !json_is_null(v) && !json_is_false(v) &&
	    !(json_is_integer(v) && json_integer_value(v) == 0) &&
	    !(json_is_string(v) && json_string_length(v) == 0);
}

static struct consumer_spec *
make_spec(const char *name, json_t *e, char *err)
{
	struct consumer_spec *s = calloc(1, sizeof(*s));
	json_t *plugin = json_object_get(e, "plugin");
	json_t *topics = json_object_get(e, "topics");
	json_t *full = json_object_get(e, "queue_full");
	json_t *ck = json_object_get(e, "config_key");
	char where[300];
	bool bad = false;

	snprintf(where, sizeof(where), "consumers.%s", name);
	if (s == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	warn_unknown(e, consumer_keys, where);
	s->name = strdup(name);
	s->plugin = strdup(json_is_string(plugin) ?
	    json_string_value(plugin) : name);
	s->config_key = json_is_string(ck) ? strdup(json_string_value(ck)) :
	    NULL;
	s->threads = (unsigned)num(e, "threads", 1, &bad);
	s->queue_size = (size_t)num(e, "queue_size", 1000, &bad);
	s->timeout_ms = (unsigned)(num(e, "timeout", 60, &bad) * 1000);
	s->max_attempts = (unsigned)num(e, "max_attempts", 3, &bad);
	s->backoff_ms = (unsigned)(num(e, "backoff", 1, &bad) * 1000);
	s->max_backoff_ms = (unsigned)(num(e, "max_backoff", 60, &bad) * 1000);
	s->dedup_window = (size_t)num(e, "dedup_window", 10000, &bad);
	s->full = FULL_DROP_OLDEST;
	if (json_is_string(full) &&
	    strcmp(json_string_value(full), "drop_new") == 0)
		s->full = FULL_DROP_NEW;
	else if (full && !(json_is_string(full) &&
	    strcmp(json_string_value(full), "drop_oldest") == 0))
		bad = true;
	if (s->threads == 0)
		s->threads = 1;
	if (s->queue_size == 0)
		s->queue_size = 1;
	if (s->max_attempts == 0)
		s->max_attempts = 1;
	if (json_is_array(topics)) {
		size_t i;
		json_t *t;

		s->topics = calloc(json_array_size(topics) + 1,
		    sizeof(*s->topics));
		json_array_foreach(topics, i, t) {
			if (!json_is_string(t) || s->topics == NULL) {
				bad = true;
				break;
			}
			s->topics[i] = strdup(json_string_value(t));
		}
	} else if (topics) {
		bad = true;
	}
	{
		json_t *c = json_object_get(e, "config");

		if (c && !json_is_object(c))
			bad = true;
		s->config_json = c ? json_dumps(c, JSON_COMPACT |
		    JSON_ENCODE_ANY) : strdup("{}");
		if ((c = json_object_get(e, "match")) != NULL) {
			if (!json_is_object(c))
				bad = true;
			else
				s->match_json = json_dumps(c, JSON_COMPACT);
		}
	}
	if (bad || (plugin && !json_is_string(plugin)) ||
	    (ck && !json_is_string(ck)) || s->name == NULL ||
	    s->plugin == NULL) {
		snprintf(err, FM_ERRLEN, "%s: a key has the wrong type "
		    "(plugin, config_key: strings; topics: list of strings; "
		    "queue_full: \"drop_oldest\" or \"drop_new\"; config, "
		    "match: objects; the rest numbers >= 0)", where);
		free(s->name);
		free(s->plugin);
		free(s->config_key);
		if (s->topics)
			for (size_t i = 0; s->topics[i]; i++)
				free(s->topics[i]);
		free(s->topics);
		free(s->config_json);
		free(s->match_json);
		free(s);
		return NULL;
	}
	return s;
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
	bool skip = truthy(json_object_get(hubcfg, "skip_broken_consumers"));
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
		    !truthy(json_object_get(e, "enabled")))) {
			log_info("consumer %s: not enabled", name);
			continue;
		}
		if (h->ncons == MAX_CONSUMERS) {
			snprintf(err, FM_ERRLEN, "more than %d consumers",
			    MAX_CONSUMERS);
			return -1;
		}
		if ((spec = make_spec(name, e, err)) == NULL)
			return -1;
		if ((c = consumer_load(h, spec, dir, err)) == NULL) {
			if (!skip)
				return -1;
			log_err("%s (skipped: hub.skip_broken_consumers)", err);
			continue;
		}
		/* fedmsg: a consumer runs only when its config_key is true */
		key = consumer_config_key(c);
		if (key && !truthy(fm_config_get(h->cfg, key))) {
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

static int
setup(struct hub *h, char *err)
{
	json_t *hubcfg = fm_config_get(h->cfg, "hub");
	json_t *name = json_object_get(hubcfg, "name");
	json_t *cert = json_object_get(hubcfg, "cert");
	json_t *metrics = json_object_get(hubcfg, "metrics");
	json_t *mon = fm_config_get(h->cfg, "moksha.monitoring.socket");
	bool active = truthy(json_object_get(hubcfg, "active")), bad = false;
	const char **subs;

	if (hubcfg && !json_is_object(hubcfg)) {
		snprintf(err, FM_ERRLEN, "config key 'hub' must be an object");
		return -1;
	}
	warn_unknown(hubcfg, hub_keys, "hub");
	h->heartbeat_ms = (unsigned)(num(hubcfg, "heartbeat_interval", 0, &bad) *
	    1000);
	h->drain_ms = (unsigned)(num(hubcfg, "drain_timeout", 30, &bad) * 1000);
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

static void
reload(struct hub *h)
{
	struct fm_config *cfg;
	char err[FM_ERRLEN];
	int i;

	sd_notify(0, "RELOADING=1");
	log_info("SIGHUP: reloading %s", h->o->config_path ?
	    h->o->config_path : "the config");
	if (fm_config_load(h->o->config_path, &cfg, err) < 0) {
		log_err("reload failed, keeping the running config: %s", err);
		sd_notify(0, "READY=1");
		return;
	}
	if (h->validator) {
		struct fm_validator *v = fm_config_validator(cfg, err);

		if (v == NULL) {
			log_err("reload failed, keeping the running config: %s",
			    err);
			fm_config_free(cfg);
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
		json_t *e = json_object_get(fm_config_get(cfg, "consumers"),
		    consumer_name(h->cons[i]));
		json_t *c = json_object_get(e, "config");
		char *text = c ? json_dumps(c, JSON_COMPACT) : strdup("{}");

		consumer_reload(h->cons[i], text);
		free(text);
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
			monitor_report(h);
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
	for (i = 0; i < h->ncons; i++)
		consumer_stop(h->cons[i], true, clock_ms() + h->drain_ms);
	drain_queues(h);
out:
	metrics_stop(h->metrics);
	for (i = 0; i < h->ncons; i++)
		consumer_free(h->cons[i]);
	if (h->bus) {
		drain_queues(h);
		h->bus->ops->free(h->bus);
	}
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
