/*
 * What the hub tells about itself (hub.h): the JSON status (/status and
 * moksha's monitoring report) and the Prometheus text (/metrics).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <zmq.h>

#include <fedmsg/crypto.h>

#include "buf.h"
#include "consumer.h"
#include "hub.h"
#include "hub_internal.h"
#include "transport.h"

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

/* A metric without labels: its HELP and TYPE lines, then its value. */
static void
scalar(struct buf *b, const char *name, const char *type, const char *help,
    unsigned long long value)
{
	metric(b, name, type, help);
	buf_printf(b, "%s %llu\n", name, value);
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
	scalar(&b, "fedmsg_hub_received_total", "counter",
	    "Messages taken from the bus.", n.received);
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
	scalar(&b, "fedmsg_hub_unrouted_total", "counter",
	    "Valid messages no consumer wanted.", n.unrouted);
	metric(&b, "fedmsg_hub_published_total", "counter",
	    "Messages consumers published, as sent (ok) or not (failed).");
	buf_printf(&b, "fedmsg_hub_published_total{result=\"ok\"} %llu\n"
	    "fedmsg_hub_published_total{result=\"failed\"} %llu\n",
	    (unsigned long long)n.published,
	    (unsigned long long)n.publish_failed);
	scalar(&b, "fedmsg_hub_publish_unroutable_total", "counter",
	    "Published messages the broker took but no queue was bound for.",
	    ts.publish_unroutable);
	scalar(&b, "fedmsg_hub_publish_waited_total", "counter",
	    "Published messages that waited for the broker (a new link's "
	    "credit, a reconnect) before going out.", ts.publish_queued);
	scalar(&b, "fedmsg_hub_publish_queue_full_total", "counter",
	    "Published messages refused: too many already waited for their "
	    "broker address, or for too many other addresses.",
	    ts.publish_queue_full);
	scalar(&b, "fedmsg_hub_publish_resent_total", "counter",
	    "Published messages sent again: the connection was lost before "
	    "the broker confirmed them.", ts.publish_resent);

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

void
hub_monitor_report(struct hub *h)
{
	char *text = hub_status_json(h, true);

	/* moksha sends one single-frame JSON document */
	if (text && h->monitor)
		zmq_send(h->monitor, text, strlen(text), ZMQ_DONTWAIT);
	free(text);
}
