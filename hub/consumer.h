/*
 * One loaded consumer: its plugin, its bounded queue, its worker threads,
 * its retry schedule, its msg_id de-duplication window and its counters.
 *
 * Threads: consumer_offer(), consumer_tick() and the lifecycle calls run on
 * the hub's main thread; the plugin's consume() and timers run on the
 * consumer's workers.  A slow or stuck consumer stalls only its own queue.
 */
#ifndef FM_CONSUMER_H
#define FM_CONSUMER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fedmsg/message.h>
#include <fedmsg/plugin.h>

#include "transport.h"

struct hub;

enum full_policy {
	FULL_DROP_OLDEST,	/* ZeroMQ default: newest messages matter most */
	FULL_DROP_NEW,
};

/* What the "consumers" entry of the config says. */
struct consumer_spec {
	char		*name;
	char		*plugin;	/* a path, or a name in plugin_dir */
	char		*config_key;	/* overrides the plugin's */
	char		**topics;	/* NULL-terminated; NULL: the plugin's */
	unsigned	 threads;
	size_t		 queue_size;
	enum full_policy full;
	unsigned	 timeout_ms;	/* time budget of one consume() */
	unsigned	 max_attempts;	/* including the first */
	unsigned	 backoff_ms, max_backoff_ms;
	size_t		 dedup_window;	/* msg_ids remembered; 0: off */
	char		*config_json;	/* the entry's "config" object */
	char		*match_json;	/* "match": {pointer: value}, or NULL */
};

/* Frees s and everything it holds; NULL is fine. */
void consumer_spec_free(struct consumer_spec *s);

/* Why a message left a consumer without being consumed. */
enum drop_reason {
	DROP_VERDICT,		/* consume() said FM_CONSUME_DROP */
	DROP_ERROR,		/* consume() returned < 0 */
	DROP_RETRIES,		/* FM_CONSUME_RETRY too many times */
	DROP_QUEUE_FULL,
	DROP_HALTED,		/* the consumer halted */
	DROP_DUPLICATE,		/* msg_id seen within the window */
	DROP_REASONS
};

extern const char *const drop_reason_names[DROP_REASONS];

#define LATENCY_BUCKETS 12	/* 1 ms .. ~2 s, powers of two, then +Inf */

struct consumer_stats {
	atomic_uint_fast64_t	 in;		/* offered and queued */
	atomic_uint_fast64_t	 ok;
	atomic_uint_fast64_t	 retried;
	atomic_uint_fast64_t	 dropped[DROP_REASONS];
	atomic_uint_fast64_t	 overruns;	/* consume() over its budget */
	atomic_uint_fast64_t	 published;
	atomic_uint_fast64_t	 latency_us_sum;
	atomic_uint_fast64_t	 latency_count;
	atomic_uint_fast64_t	 latency_le[LATENCY_BUCKETS];
};

struct consumer;

/*
 * The consumer's "match" filter: every JSON Pointer in it must lead, in
 * the envelope, to a value equal to the one given (JSON equality; true
 * is not 1).  No filter: true.  Main thread, before the message is queued.
 */
bool consumer_matches(const struct consumer *c, const struct fm_msg *msg);

/*
 * Load spec->plugin, check its ABI and call init().  Returns the consumer,
 * or NULL with a reason naming the plugin in err[FM_ERRLEN].  Enabled-ness
 * (config_key) is decided by the caller.  Takes ownership of spec.
 */
struct consumer *consumer_load(struct hub *hub, struct consumer_spec *spec,
    const char *plugin_dir, char *err);

/* The plugin's declared config_key (spec's wins); NULL: always on. */
const char *consumer_config_key(const struct consumer *c);

/* Start the worker threads. */
int consumer_start(struct consumer *c, char *err);

/* Does the consumer want this topic? */
bool consumer_wants(const struct consumer *c, const char *topic,
    bool zmq_strict);

/* The ZeroMQ subscription prefixes this consumer needs (NULL-terminated,
 * owned by the consumer). */
const char *const *consumer_prefixes(const struct consumer *c);

enum offer {
	OFFER_QUEUED,
	OFFER_DUPLICATE,	/* msg_id seen within the window */
	OFFER_REFUSED,		/* halted, stopping, or full (broker input) */
};

/*
 * Queue a validated message (a reference is taken).  dsp is the delivery
 * this copy belongs to (NULL on ZeroMQ).  When not queued, the caller
 * settles dsp for this consumer.
 */
struct dispatch;
enum offer consumer_offer(struct consumer *c, struct fm_msg *msg,
    struct dispatch *dsp);

/* Main-thread housekeeping: fire timers, notice overruns. */
int consumer_tick(struct consumer *c, int64_t now_ms);

/* Current queue length (queued + delayed retries + in progress). */
size_t consumer_backlog(const struct consumer *c);
size_t consumer_queue_size(const struct consumer *c);
bool consumer_halted(const struct consumer *c);
const char *consumer_name(const struct consumer *c);
const char *consumer_plugin_name(const struct consumer *c);
const char *const *consumer_topics(const struct consumer *c);
const struct consumer_stats *consumer_stats(const struct consumer *c);
/* Copy the last error text (empty if none). */
void consumer_last_error(struct consumer *c, char *out, size_t len);

/* Give the plugin its new config (SIGHUP). */
void consumer_reload(struct consumer *c, const char *config_json);

/*
 * Stop: with drain, workers finish the queue first (up to deadline_ms of
 * CLOCK_MONOTONIC); what is left is released.  Then fini() and dlclose().
 */
void consumer_stop(struct consumer *c, bool drain, int64_t deadline_ms);
void consumer_free(struct consumer *c);

/* ---- deliveries shared by several consumers ------------------------------- */

/*
 * One broker delivery handed to n consumers.  When the last consumer is
 * done, the worst verdict is posted to the hub, which settles it on the
 * main thread.
 */
struct dispatch {
	struct delivery		*d;
	atomic_int		 pending;
	atomic_int		 worst;		/* enum settle, max wins */
};

/* A consumer is done with dsp; settle is what its verdict asks for. */
void dispatch_done(struct hub *hub, struct dispatch *dsp, enum settle how);

/* Provided by the hub: queue a settlement for the main thread. */
void hub_post_settle(struct hub *hub, struct dispatch *dsp);
/* Provided by the hub: build, sign and queue a message for sending. */
int hub_publish(struct hub *hub, const char *who, const char *modname,
    const char *topic, const char *json, size_t len);

#endif
