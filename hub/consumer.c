/*
 * A consumer plugin at run time (consumer.h): loading and ABI checks, the
 * host function table, the bounded queue and its workers, retries with
 * backoff, de-duplication by msg_id, timers and counters.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include <fedmsg/message.h>

#include "clock.h"
#include "consumer.h"
#include "id_window.h"
#include "jptr.h"
#include "log.h"
#include "msg.h"
#include "plugin_json.h"
#include "sched_batch.h"

const char *const drop_reason_names[DROP_REASONS] = {
	[DROP_VERDICT] = "verdict",
	[DROP_ERROR] = "error",
	[DROP_RETRIES] = "retries_exhausted",
	[DROP_QUEUE_FULL] = "queue_full",
	[DROP_HALTED] = "halted",
	[DROP_DUPLICATE] = "duplicate",
};

#define MAX_TIMERS	16

struct item {
	struct fm_msg	*msg;		/* NULL for a timer task */
	struct dispatch	*dsp;
	unsigned	 attempt;	/* 1 on first delivery */
	int64_t		 due_ms;	/* delayed retries */
	int		 timer;		/* timer index for timer tasks */
};

struct timer {
	unsigned	 interval_ms;
	int64_t		 next_ms;
	void		(*fn)(void *);
	void		*arg;
	bool		 queued;	/* a task is waiting: don't pile up */
};

struct consumer {
	struct hub		*hub;
	struct consumer_spec	*spec;
	void			*dl;
	const struct fm_plugin	*pl;
	struct fm_host		 host;
	struct jv_doc		*config;	/* spec->config_json, parsed */
	struct jv_doc		*match;		/* spec->match_json, parsed */
	void			*state;
	bool			 initialized;
	const char		**topics;	/* effective patterns */
	char			**prefixes;	/* ZeroMQ subscriptions */

	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct item		*ring;
	size_t			 cap, head, len;
	struct item		*delayed;	/* retries, unordered, <= cap */
	size_t			 ndelayed;
	unsigned		 busy;
	bool			 stopping, halted;
	bool			 reloading;	/* workers wait while reload() runs */
	pthread_t		*threads;
	unsigned		 nthreads;
	int64_t			*started_ms;	/* per worker, 0 when idle */
	bool			*overrun_told;
	struct id_window	*dedup;		/* NULL: no dedup_window */
	struct timer		 timers[MAX_TIMERS];
	int			 ntimers;
	char			 last_error[256];

	struct consumer_stats	 st;
};

static void
set_error(struct consumer *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
set_error(struct consumer *c, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&c->mu);
	va_start(ap, fmt);
	vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&c->mu);
}

/* ---- the host table ----------------------------------------------------------- */

static void
h_log(void *hctx, enum fm_log_level level, const char *fmt, ...)
{
	struct consumer *c = hctx;
	char line[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if ((unsigned)level > FM_LOG_DEBUG)
		level = FM_LOG_DEBUG;
	if (level == FM_LOG_ERR)
		set_error(c, "%s", line);
	log_msg((enum fm_log_level)level, "consumer %s: %s", c->spec->name, line);
}

static int
h_publish(void *hctx, const char *modname, const char *topic,
    const char *json, size_t len)
{
	struct consumer *c = hctx;
	int rc = hub_publish(c->hub, c->spec->name, modname, topic, json, len);

	if (rc == 0)
		atomic_fetch_add(&c->st.published, 1);
	return rc;
}

static const char *
h_config_json(void *hctx)
{
	struct consumer *c = hctx;

	return c->spec->config_json ? c->spec->config_json : "{}";
}

/* The parsed "config" (ABI 1.1); {} when the entry has none. */
static const struct fm_json *
h_config(void *hctx)
{
	static const struct jv empty = { .type = JV_OBJECT };
	struct consumer *c = hctx;

	return pj_doc(c->config ? jv_doc_root(c->config) : &empty);
}

static int
h_publish_built(void *hctx, const char *modname, const char *topic,
    struct fm_builder *b)
{
	struct consumer *c = hctx;
	char err[128];
	const char *json;
	size_t len = 0;
	int rc = -1;

	if ((json = pj_builder_text(b, &len, err, sizeof(err))) == NULL)
		log_warn("consumer %s: cannot publish %s: the payload builder "
		    "failed: %s", c->spec->name, topic ? topic : "", err);
	else
		rc = h_publish(hctx, modname, topic, json, len);
	c->host.builder_free(b);
	return rc;
}

/*
 * Parse a consumer's config text for config() (ABI 1.1), with the hub
 * entry's settings a plugin may need under FM_HUB_CONFIG_MEMBER
 * (plugin.h): {"max_attempts": N}, so that a plugin that acts on its last
 * attempt needs no copy of the hub's value.  config_json() (ABI 1.0)
 * keeps the entry's text as written.  NULL text is {}.
 */
static int
parse_config(const char *text, unsigned max_attempts, struct jv_doc **out,
    char *err)
{
	const char *p = text ? text : "{}", *rest;
	char *full;
	size_t len;
	int n;

	*out = NULL;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p != '{') {	/* not an object: the hub refuses it anyway */
		*out = jv_parse(p, strlen(p), NULL, err);
		return *out ? 0 : -1;
	}
	for (rest = p + 1; *rest == ' ' || *rest == '\t' || *rest == '\n' ||
	    *rest == '\r'; rest++)
		;
	len = strlen(p) + 64;
	if ((full = malloc(len)) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return -1;
	}
	n = snprintf(full, len, "{\"%s\":{\"max_attempts\":%u}%s%s",
	    FM_HUB_CONFIG_MEMBER, max_attempts, *rest == '}' ? "" : ",", p + 1);
	*out = jv_parse(full, (size_t)n, NULL, err);
	free(full);
	return *out ? 0 : -1;
}

static struct fm_msg *h_msg_ref(struct fm_msg *m) { return fm_msg_ref(m); }
static void h_msg_unref(struct fm_msg *m) { fm_msg_unref(m); }
static const char *h_msg_topic(const struct fm_msg *m) { return fm_msg_topic(m); }
static const char *h_msg_id(const struct fm_msg *m) { return fm_msg_id(m); }
static const char *h_msg_signer(const struct fm_msg *m) { return fm_msg_signer(m); }

static const char *
h_msg_body(const struct fm_msg *m, size_t *len)
{
	return fm_msg_body(m, len);
}

static double
h_msg_timestamp(const struct fm_msg *m)
{
	double ts;

	return fm_msg_timestamp(m, &ts) ? ts : 0;
}

/* The attempt number of the message this worker thread is consuming. */
static _Thread_local const struct fm_msg *current_msg;
static _Thread_local unsigned current_attempt;

static unsigned
h_msg_attempt(const struct fm_msg *m)
{
	return m == current_msg ? current_attempt : 1;
}

static int
h_timer_add(void *hctx, unsigned interval_ms, void (*fn)(void *), void *arg)
{
	struct consumer *c = hctx;
	struct timer *t;

	if (c->ntimers == MAX_TIMERS || interval_ms == 0 || fn == NULL)
		return -1;
	t = &c->timers[c->ntimers];
	t->interval_ms = interval_ms;
	t->next_ms = clock_ms() + interval_ms;
	t->fn = fn;
	t->arg = arg;
	t->queued = false;
	return c->ntimers++;
}

/* The 1.0 entries; consumer_load() adds the 1.1 ones. */
static const struct fm_host host_template = {
	.abi_major = FM_PLUGIN_ABI_MAJOR,
	.abi_minor = FM_PLUGIN_ABI_MINOR,
	.size = sizeof(struct fm_host),
	.log = h_log,
	.publish = h_publish,
	.config_json = h_config_json,
	.msg_ref = h_msg_ref,
	.msg_unref = h_msg_unref,
	.msg_topic = h_msg_topic,
	.msg_id = h_msg_id,
	.msg_body = h_msg_body,
	.msg_timestamp = h_msg_timestamp,
	.msg_signer = h_msg_signer,
	.msg_attempt = h_msg_attempt,
	.timer_add = h_timer_add,
};

/* ---- topics --------------------------------------------------------------------- */

/*
 * fedmsg consumers declare topics with '*': fedmsg deletes every '*' and
 * prefix-matches (exact with zmq_strict).  We keep that for a trailing
 * '*' and no '*', and make a '*' elsewhere a real glob instead of the
 * never-matching "a..b" fedmsg produces.
 */
bool
consumer_wants(const struct consumer *c, const char *topic, bool zmq_strict)
{
	const char *const *t;

	for (t = c->topics; *t; t++) {
		const char *p = *t, *star = strchr(p, '*');
		size_t n = strlen(p);

		if (*p == '\0' || strcmp(p, "*") == 0)
			return true;
		if (star == NULL) {
			if (zmq_strict ? strcmp(topic, p) == 0 :
			    strncmp(topic, p, n) == 0)
				return true;
		} else if (star == p + n - 1) {
			if (strncmp(topic, p, n - 1) == 0)
				return true;
		} else if (fnmatch(p, topic, 0) == 0) {
			return true;
		}
	}
	return false;
}

bool
consumer_matches(const struct consumer *c, const struct fm_msg *msg)
{
	const struct jv *m, *have;
	uint32_t i;

	if (c->match == NULL)
		return true;
	m = jv_doc_root(c->match);
	for (i = 0; i < m->len; i++)
		if (jptr_get(msg_root(msg), m->u.members[i].key, &have) !=
		    JPTR_OK || !jv_equal(have, &m->u.members[i].value))
			return false;
	return true;
}

/* Parse and check "match": an object of valid JSON Pointers. */
static int
make_match(struct consumer *c, char *err)
{
	const struct jv *m;
	char why[FM_ERRLEN];
	uint32_t i;

	if (c->spec->match_json == NULL)
		return 0;
	c->match = jv_parse(c->spec->match_json, strlen(c->spec->match_json),
	    NULL, why);
	if (c->match == NULL || jv_doc_root(c->match)->type != JV_OBJECT) {
		snprintf(err, FM_ERRLEN, "consumer %s: match: %s", c->spec->name,
		    c->match ? "not an object" : why);
		return -1;
	}
	m = jv_doc_root(c->match);
	for (i = 0; i < m->len; i++)
		if (memchr(m->u.members[i].key, 0, m->u.members[i].key_len) ||
		    jptr_check(m->u.members[i].key) != JPTR_OK) {
			snprintf(err, FM_ERRLEN, "consumer %s: match: \"%.*s\" "
			    "is not a JSON Pointer (\"/msg/field\": start with "
			    "'/', write '~' as ~0 and '/' in a name as ~1)",
			    c->spec->name, (int)m->u.members[i].key_len,
			    m->u.members[i].key);
			return -1;
		}
	return 0;
}

const char *const *
consumer_prefixes(const struct consumer *c)
{
	return (const char *const *)c->prefixes;
}

const char *const *
consumer_topics(const struct consumer *c)
{
	return c->topics;
}

static int
make_topics(struct consumer *c, char *err)
{
	const char *const *src = c->spec->topics ?
	    (const char *const *)c->spec->topics : c->pl->topics;
	size_t n = 0, i;
	static const char *const everything[] = { "", NULL };

	if (src == NULL || src[0] == NULL)
		src = everything;
	while (src[n])
		n++;
	c->topics = calloc(n + 1, sizeof(*c->topics));
	c->prefixes = calloc(n + 1, sizeof(*c->prefixes));
	if (c->topics == NULL || c->prefixes == NULL)
		goto oom;
	for (i = 0; i < n; i++) {
		const char *star = strchr(src[i], '*');

		c->topics[i] = src[i];
		c->prefixes[i] = star ? strndup(src[i], (size_t)(star - src[i])) :
		    strdup(src[i]);
		if (c->prefixes[i] == NULL)
			goto oom;
	}
	return 0;
oom:
	snprintf(err, FM_ERRLEN, "out of memory");
	return -1;
}

/* ---- loading ------------------------------------------------------------------ */

void
consumer_spec_free(struct consumer_spec *s)
{
	char **t;

	if (s == NULL)
		return;
	free(s->name);
	free(s->plugin);
	free(s->config_key);
	for (t = s->topics; t && *t; t++)
		free(*t);
	free(s->topics);
	free(s->config_json);
	free(s->match_json);
	free(s);
}

/*
 * A plugin runs as the hub: load it only from where the config says, not
 * from wherever the hub was started (a relative path), and not from a
 * file or directory others may write to.  (The hub's own user and group
 * could still swap the file between this check and dlopen(): they can
 * change the config too.)
 */
static int
plugin_path_ok(const struct consumer_spec *spec, const char *plugin_dir,
    const char *path, char *err)
{
	struct stat st;
	char dir[4096];
	const char *slash;

	if (strchr(spec->plugin, '/') && spec->plugin[0] != '/') {
		snprintf(err, FM_ERRLEN, "consumer %s: plugin '%s' is a relative "
		    "path: give an absolute path, or a bare name looked up in "
		    "plugin_dir", spec->name, spec->plugin);
		return -1;
	}
	if (!strchr(spec->plugin, '/') && (plugin_dir[0] != '/' ||
	    spec->plugin[0] == '\0')) {
		snprintf(err, FM_ERRLEN, "consumer %s: plugin '%s' in plugin_dir "
		    "'%s': plugin_dir must be an absolute path and the plugin a "
		    "bare name", spec->name, spec->plugin, plugin_dir);
		return -1;
	}
	if (stat(path, &st) < 0)
		return 0;	/* dlopen() names the problem */
	if (st.st_mode & S_IWOTH) {
		snprintf(err, FM_ERRLEN, "consumer %s: %s is writable by others "
		    "(mode %04o): refused", spec->name, path,
		    (unsigned)(st.st_mode & 07777));
		return -1;
	}
	slash = strrchr(path, '/');
	snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 :
	    (int)(slash - path), path);
	if (stat(dir, &st) == 0 && (st.st_mode & S_IWOTH) &&
	    !(st.st_mode & S_ISVTX)) {
		snprintf(err, FM_ERRLEN, "consumer %s: %s is in %s, which others "
		    "may write to (mode %04o): refused", spec->name, path, dir,
		    (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

struct consumer *
consumer_load(struct hub *hub, struct consumer_spec *spec,
    const char *plugin_dir, char *err)
{
	struct consumer *c;
	fm_plugin_entry_fn entry;
	char path[4096];
	size_t i;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		consumer_spec_free(spec);
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	c->hub = hub;
	c->spec = spec;
	pthread_mutex_init(&c->mu, NULL);
	{
		/* deadlines are CLOCK_MONOTONIC (retries must not spin) */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (strchr(spec->plugin, '/'))
		snprintf(path, sizeof(path), "%s", spec->plugin);
	else
		snprintf(path, sizeof(path), "%s/%s.so", plugin_dir,
		    spec->plugin);
	if (plugin_path_ok(spec, plugin_dir, path, err) < 0)
		goto fail;
	if ((c->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(err, FM_ERRLEN, "consumer %s: cannot load %s: %s",
		    spec->name, path, dlerror());
		goto fail;
	}
	*(void **)&entry = dlsym(c->dl, FM_PLUGIN_ENTRY_NAME);
	if (entry == NULL) {
		snprintf(err, FM_ERRLEN, "consumer %s: %s has no %s(): not a "
		    "fedmsg-c plugin, or built for another ABI major version",
		    spec->name, path, FM_PLUGIN_ENTRY_NAME);
		goto fail;
	}
	c->pl = entry();
	if (c->pl == NULL || c->pl->abi_major != FM_PLUGIN_ABI_MAJOR ||
	    c->pl->size < offsetof(struct fm_plugin, fini) +
	    sizeof(c->pl->fini)) {
		snprintf(err, FM_ERRLEN, "consumer %s: %s declares ABI %u.%u "
		    "(size %zu); this hub runs ABI %d.%d", spec->name, path,
		    c->pl ? c->pl->abi_major : 0, c->pl ? c->pl->abi_minor : 0,
		    c->pl ? c->pl->size : 0, FM_PLUGIN_ABI_MAJOR,
		    FM_PLUGIN_ABI_MINOR);
		goto fail;
	}
	if (c->pl->abi_minor > FM_PLUGIN_ABI_MINOR) {
		snprintf(err, FM_ERRLEN, "consumer %s: %s needs ABI minor %u, "
		    "newer than this hub's %d", spec->name, path,
		    c->pl->abi_minor, FM_PLUGIN_ABI_MINOR);
		goto fail;
	}
	if (c->pl->consume == NULL || c->pl->init == NULL ||
	    c->pl->name == NULL) {
		snprintf(err, FM_ERRLEN, "consumer %s: %s lacks name, init or "
		    "consume", spec->name, path);
		goto fail;
	}
	if (make_topics(c, err) < 0 || make_match(c, err) < 0)
		goto fail;

	c->cap = spec->queue_size;
	c->ring = calloc(c->cap, sizeof(*c->ring));
	c->delayed = calloc(c->cap, sizeof(*c->delayed));
	if (spec->dedup_window)
		c->dedup = id_window_new(spec->dedup_window);
	if (c->ring == NULL || c->delayed == NULL || (spec->dedup_window &&
	    c->dedup == NULL)) {
		snprintf(err, FM_ERRLEN, "consumer %s: out of memory",
		    spec->name);
		goto fail;
	}
	c->host = host_template;
	pj_fill_host(&c->host);
	c->host.config = h_config;
	c->host.publish_built = h_publish_built;
	if (parse_config(spec->config_json, spec->max_attempts, &c->config,
	    err) < 0) {
		char why[FM_ERRLEN];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, FM_ERRLEN, "consumer %s: config: %s", spec->name,
		    why);
		goto fail;
	}
	if (c->pl->init(&c->host, c, &c->state) != 0) {
		snprintf(err, FM_ERRLEN, "consumer %s: %s: init() failed%s%s",
		    spec->name, path, c->last_error[0] ? ": " : "",
		    c->last_error);
		goto fail;
	}
	c->initialized = true;
	log_info("consumer %s: loaded %s %s from %s, topics:", spec->name,
	    c->pl->name, c->pl->version ? c->pl->version : "", path);
	for (i = 0; c->topics[i]; i++)
		log_info("consumer %s:   '%s'", spec->name, c->topics[i]);
	return c;
fail:
	consumer_free(c);
	return NULL;
}

const char *
consumer_config_key(const struct consumer *c)
{
	return c->spec->config_key ? c->spec->config_key : c->pl->config_key;
}

/* ---- queue ------------------------------------------------------------------- */

static void
finish(struct consumer *c, struct item *it, enum settle how)
{
	if (it->dsp)
		dispatch_done(c->hub, it->dsp, how);
	fm_msg_unref(it->msg);
}

/* Called with c->mu held. */
static void
push(struct consumer *c, const struct item *it)
{
	c->ring[(c->head + c->len) % c->cap] = *it;
	c->len++;
	pthread_cond_signal(&c->cv);
}

enum offer
consumer_offer(struct consumer *c, struct fm_msg *msg, struct dispatch *dsp)
{
	struct item it = { fm_msg_ref(msg), dsp, 1, 0, -1 };
	struct item victim = { NULL, NULL, 0, 0, -1 };
	enum offer rc = OFFER_QUEUED;
	uint64_t key = c->dedup && fm_msg_id(msg) ?
	    id_window_key(fm_msg_id(msg)) : 0;

	pthread_mutex_lock(&c->mu);
	if (c->halted || c->stopping) {
		atomic_fetch_add(&c->st.dropped[DROP_HALTED], 1);
		rc = OFFER_REFUSED;
	} else if (key && id_window_has(c->dedup, key)) {
		atomic_fetch_add(&c->st.dropped[DROP_DUPLICATE], 1);
		rc = OFFER_DUPLICATE;
	} else if (c->len == c->cap) {
		/*
		 * ZeroMQ cannot hold messages back: drop (the oldest by
		 * default).  A broker keeps them: refuse, and the hub stops
		 * granting credit long before this.
		 */
		atomic_fetch_add(&c->st.dropped[DROP_QUEUE_FULL], 1);
		if (c->spec->full == FULL_DROP_OLDEST && dsp == NULL) {
			victim = c->ring[c->head];
			c->head = (c->head + 1) % c->cap;
			c->len--;
		} else {
			rc = OFFER_REFUSED;
		}
	}
	if (rc == OFFER_QUEUED) {
		/* only now: a refused message comes back from the broker */
		if (key)
			id_window_add(c->dedup, key);
		push(c, &it);
		atomic_fetch_add(&c->st.in, 1);
	}
	pthread_mutex_unlock(&c->mu);
	if (victim.msg) {
		finish(c, &victim, SETTLE_RELEASE);
	} else if (victim.timer >= 0) {
		pthread_mutex_lock(&c->mu);
		c->timers[victim.timer].queued = false;
		pthread_mutex_unlock(&c->mu);
	}
	if (rc != OFFER_QUEUED)
		fm_msg_unref(it.msg);
	return rc;
}

/* Take the next item whose time has come; waits.  NULL: stop. */
static bool
take(struct consumer *c, struct item *out, int64_t *wait_until)
{
	size_t i, best = SIZE_MAX;
	int64_t now = clock_ms();

	*wait_until = INT64_MAX;
	for (i = 0; i < c->ndelayed; i++) {
		if (c->delayed[i].due_ms <= now) {
			if (best == SIZE_MAX ||
			    c->delayed[i].due_ms < c->delayed[best].due_ms)
				best = i;
		} else if (c->delayed[i].due_ms < *wait_until) {
			*wait_until = c->delayed[i].due_ms;
		}
	}
	if (best != SIZE_MAX) {
		*out = c->delayed[best];
		c->delayed[best] = c->delayed[--c->ndelayed];
		return true;
	}
	if (c->len) {
		*out = c->ring[c->head];
		c->head = (c->head + 1) % c->cap;
		c->len--;
		return true;
	}
	return false;
}

static void
record_latency(struct consumer *c, int64_t us)
{
	int b;

	atomic_fetch_add(&c->st.latency_us_sum, (uint64_t)us);
	atomic_fetch_add(&c->st.latency_count, 1);
	for (b = 0; b < LATENCY_BUCKETS; b++)
		if (us <= (int64_t)1000 << b)
			atomic_fetch_add(&c->st.latency_le[b], 1);
}

static enum settle
verdict_settle(struct consumer *c, struct item *it, int rc, bool *requeue)
{
	*requeue = false;
	switch (rc) {
	case FM_CONSUME_OK:
		atomic_fetch_add(&c->st.ok, 1);
		return SETTLE_ACCEPT;
	case FM_CONSUME_RETRY:
		if (it->attempt < c->spec->max_attempts) {
			atomic_fetch_add(&c->st.retried, 1);
			*requeue = true;
			return SETTLE_FAILED;
		}
		atomic_fetch_add(&c->st.dropped[DROP_RETRIES], 1);
		log_warn("consumer %s: giving up on %s after %u attempts",
		    c->spec->name, fm_msg_id(it->msg) ? fm_msg_id(it->msg) : "-",
		    it->attempt);
		return SETTLE_REJECT;
	case FM_CONSUME_DROP:
		atomic_fetch_add(&c->st.dropped[DROP_VERDICT], 1);
		return SETTLE_REJECT;
	case FM_CONSUME_HALT:
		atomic_fetch_add(&c->st.dropped[DROP_HALTED], 1);
		set_error(c, "halted by its consume()");
		log_err("consumer %s: consume() asked to halt; the consumer "
		    "stops, the others go on", c->spec->name);
		return SETTLE_RELEASE;
	default:
		atomic_fetch_add(&c->st.dropped[DROP_ERROR], 1);
		set_error(c, "consume() returned error %d on %s", rc,
		    fm_msg_id(it->msg) ? fm_msg_id(it->msg) : "-");
		log_warn("consumer %s: consume() returned error %d on %s",
		    c->spec->name, rc, fm_msg_id(it->msg) ?
		    fm_msg_id(it->msg) : "-");
		return SETTLE_REJECT;
	}
}

struct worker_arg {
	struct consumer	*c;
	unsigned	 index;
};

static void *
worker(void *p)
{
	struct worker_arg *wa = p;
	struct consumer *c = wa->c;
	unsigned me = wa->index;
	char name[16];		/* a thread name's limit, with its NUL */

	free(wa);
	/* "fmc:" and the consumer's name, as top -H and ps -L show it */
	snprintf(name, sizeof(name), "fmc:%s", c->spec->name);
	pthread_setname_np(pthread_self(), name);
	/* woken per message, it would preempt the hub's dispatching thread:
	   it waits its turn and takes what queued meanwhile (sched_batch.h) */
	sched_batch_self();
	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct item it;
		int64_t wait_until, start, t0;
		bool requeue;
		enum settle how;
		int rc;

		/* once stopping, finish only the item in hand: drain is bounded */
		if (c->stopping)
			break;
		if (c->halted || c->reloading) {
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		if (!take(c, &it, &wait_until)) {
			if (wait_until == INT64_MAX) {
				pthread_cond_wait(&c->cv, &c->mu);
			} else {
				struct timespec ts = clock_timespec(wait_until);

				pthread_cond_timedwait(&c->cv, &c->mu, &ts);
			}
			continue;
		}
		c->busy++;
		start = clock_ms();
		c->started_ms[me] = start;
		c->overrun_told[me] = false;
		pthread_mutex_unlock(&c->mu);

		if (it.msg == NULL) {		/* a timer task */
			c->timers[it.timer].fn(c->timers[it.timer].arg);
			pthread_mutex_lock(&c->mu);
			c->timers[it.timer].queued = false;
			c->busy--;
			c->started_ms[me] = 0;
			pthread_cond_broadcast(&c->cv);	/* reload/stop wait on busy */
			continue;
		}
		current_msg = it.msg;
		current_attempt = it.attempt;
		t0 = clock_us();
		rc = c->pl->consume(c->state, it.msg);
		current_msg = NULL;
		record_latency(c, clock_us() - t0);
		how = verdict_settle(c, &it, rc, &requeue);

		pthread_mutex_lock(&c->mu);
		c->busy--;
		c->started_ms[me] = 0;
		pthread_cond_broadcast(&c->cv);	/* reload/stop wait on busy */
		if (rc == FM_CONSUME_HALT)
			c->halted = true;
		if (requeue && !c->stopping && c->ndelayed < c->cap) {
			unsigned shift = it.attempt - 1 < 20 ? it.attempt - 1 : 20;
			int64_t delay = (int64_t)c->spec->backoff_ms << shift;

			if (delay > (int64_t)c->spec->max_backoff_ms)
				delay = c->spec->max_backoff_ms;
			it.attempt++;
			it.due_ms = clock_ms() + delay;
			c->delayed[c->ndelayed++] = it;
			continue;
		}
		if (requeue)		/* stopping, or no room to wait */
			atomic_fetch_add(&c->st.dropped[DROP_RETRIES], 1);
		pthread_mutex_unlock(&c->mu);
		finish(c, &it, how);
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int
consumer_start(struct consumer *c, char *err)
{
	unsigned i, n = c->spec->threads ? c->spec->threads : 1;

	c->threads = calloc(n, sizeof(*c->threads));
	c->started_ms = calloc(n, sizeof(*c->started_ms));
	c->overrun_told = calloc(n, sizeof(*c->overrun_told));
	if (c->threads == NULL || c->started_ms == NULL ||
	    c->overrun_told == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct worker_arg *wa = malloc(sizeof(*wa));

		if (wa == NULL) {
			snprintf(err, FM_ERRLEN, "out of memory");
			return -1;
		}
		wa->c = c;
		wa->index = i;
		if (pthread_create(&c->threads[i], NULL, worker, wa) != 0) {
			free(wa);
			snprintf(err, FM_ERRLEN, "consumer %s: cannot start a "
			    "thread", c->spec->name);
			return -1;
		}
		c->nthreads++;
	}
	return 0;
}

int
consumer_tick(struct consumer *c, int64_t now)
{
	int64_t next = INT64_MAX;
	unsigned i;
	int k;

	pthread_mutex_lock(&c->mu);
	for (k = 0; k < c->ntimers && !c->halted && !c->stopping; k++) {
		struct timer *t = &c->timers[k];

		if (t->next_ms <= now) {
			t->next_ms = now + t->interval_ms;
			if (!t->queued && c->len < c->cap) {
				struct item it = { NULL, NULL, 0, 0, k };

				t->queued = true;
				push(c, &it);
			}
		}
		if (t->next_ms < next)
			next = t->next_ms;
	}
	/* A consume() past its budget cannot be stopped; it is reported. */
	for (i = 0; i < c->nthreads && c->spec->timeout_ms; i++) {
		if (c->started_ms[i] && !c->overrun_told[i] &&
		    now - c->started_ms[i] > (int64_t)c->spec->timeout_ms) {
			c->overrun_told[i] = true;
			atomic_fetch_add(&c->st.overruns, 1);
			snprintf(c->last_error, sizeof(c->last_error), "consume() "
			    "running longer than its %u ms budget",
			    c->spec->timeout_ms);
			log_warn("consumer %s: consume() has been running for "
			    "%lld ms, over its %u ms budget", c->spec->name,
			    (long long)(now - c->started_ms[i]),
			    c->spec->timeout_ms);
		}
	}
	pthread_mutex_unlock(&c->mu);
	if (next == INT64_MAX)
		return c->spec->timeout_ms ? 1000 : -1;
	return (int)(next - now > 1000 ? 1000 : next - now);
}

size_t
consumer_backlog(const struct consumer *c)
{
	struct consumer *m = (struct consumer *)c;
	size_t n;

	pthread_mutex_lock(&m->mu);
	n = m->len + m->ndelayed + m->busy;
	pthread_mutex_unlock(&m->mu);
	return n;
}

size_t consumer_queue_size(const struct consumer *c) { return c->cap; }
const char *consumer_name(const struct consumer *c) { return c->spec->name; }
const char *consumer_plugin_name(const struct consumer *c) { return c->pl->name; }
const struct consumer_stats *consumer_stats(const struct consumer *c) { return &c->st; }

bool
consumer_halted(const struct consumer *c)
{
	struct consumer *m = (struct consumer *)c;
	bool h;

	pthread_mutex_lock(&m->mu);
	h = m->halted;
	pthread_mutex_unlock(&m->mu);
	return h;
}

void
consumer_last_error(struct consumer *c, char *out, size_t len)
{
	pthread_mutex_lock(&c->mu);
	snprintf(out, len, "%s", c->last_error);
	pthread_mutex_unlock(&c->mu);
}

void
consumer_reload(struct consumer *c, const char *config_json)
{
	char *dup = config_json ? strdup(config_json) : NULL, *old;
	struct jv_doc *doc, *old_doc;
	char err[FM_ERRLEN];
	int rc = 0;

	if (parse_config(dup, c->spec->max_attempts, &doc, err) < 0) {
		/* the hub checked the config as JSON: only OOM gets here */
		log_warn("consumer %s: new config not used: %s", c->spec->name,
		    err);
		free(dup);
		return;
	}
	/*
	 * reload() runs while no consume() does (plugin.h), without our lock
	 * held: the plugin may log, which takes it.
	 */
	pthread_mutex_lock(&c->mu);
	c->reloading = true;
	while (c->busy)
		pthread_cond_wait(&c->cv, &c->mu);
	old = c->spec->config_json;
	old_doc = c->config;
	c->spec->config_json = dup;
	c->config = doc;
	pthread_mutex_unlock(&c->mu);
	if (c->pl->reload)
		rc = c->pl->reload(c->state);
	pthread_mutex_lock(&c->mu);
	if (rc != 0) {
		/* the plugin keeps its old config: so do config_json(),
		 * config() */
		c->spec->config_json = old;
		c->config = old_doc;
		old = dup;
		old_doc = doc;
		log_warn("consumer %s: reload() refused the new config; it keeps "
		    "running with the old one", c->spec->name);
	}
	c->reloading = false;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	free(old);
	jv_doc_free(old_doc);
}

void
consumer_stop(struct consumer *c, bool drain, int64_t deadline_ms)
{
	unsigned i;

	pthread_mutex_lock(&c->mu);
	while (drain && !c->halted && (c->len || c->ndelayed || c->busy) &&
	    clock_ms() < deadline_ms) {
		pthread_mutex_unlock(&c->mu);
		struct timespec ts = { 0, 20 * 1000000 };
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&c->mu);
	}
	c->stopping = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	/* Workers leave after their current message; the rest is released. */
	for (i = 0; i < c->nthreads; i++)
		pthread_join(c->threads[i], NULL);
	c->nthreads = 0;
	while (c->len) {
		struct item it = c->ring[c->head];

		c->head = (c->head + 1) % c->cap;
		c->len--;
		if (it.msg)
			atomic_fetch_add(&c->st.dropped[DROP_HALTED], 1);
		finish(c, &it, SETTLE_RELEASE);
	}
	while (c->ndelayed) {	/* waiting to retry: they failed before */
		struct item it = c->delayed[--c->ndelayed];

		finish(c, &it, SETTLE_FAILED);
	}
	if (c->initialized && c->pl->fini)
		c->pl->fini(c->state);
	c->initialized = false;
}

void
consumer_free(struct consumer *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (c->initialized)
		consumer_stop(c, false, 0);
	if (c->dl)
		dlclose(c->dl);
	for (i = 0; c->prefixes && c->prefixes[i]; i++)
		free(c->prefixes[i]);
	free(c->prefixes);
	free(c->topics);
	free(c->ring);
	free(c->delayed);
	id_window_free(c->dedup);
	free(c->threads);
	free(c->started_ms);
	free(c->overrun_told);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	jv_doc_free(c->config);
	jv_doc_free(c->match);
	consumer_spec_free(c->spec);
	free(c);
}

/* ---- dispatches -------------------------------------------------------------- */

void
dispatch_done(struct hub *hub, struct dispatch *dsp, enum settle how)
{
	int cur = atomic_load(&dsp->worst);

	/* The worst verdict wins: reject > failed > release > accept. */
	while ((int)how > cur &&
	    !atomic_compare_exchange_weak(&dsp->worst, &cur, (int)how))
		;
	if (atomic_fetch_sub(&dsp->pending, 1) == 1)
		hub_post_settle(hub, dsp);
}
