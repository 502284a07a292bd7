/*
 * example: the consumer to copy.  It counts messages per topic prefix
 * (the first four dot-separated parts: "org.fedoraproject.prod.buildsys")
 * and per value of one payload field it reads from the hub's parsed tree
 * (config "field", a JSON Pointer; default "/msg/agent", who did it, in
 * most fedmsg payloads), logs every count_every-th message, and every
 * interval_ms publishes what it counted since the previous summary, built
 * with the host's payload builder, as modname "example", topic "summary":
 *
 *	{"total": 3, "other": 0, "prefixes": {"org.fedoraproject.prod.git": 3},
 *	 "field": "/msg/agent", "values": {"zbyszek": 2}, "other_values": 0,
 *	 "no_value": 1}
 *
 * ("other": messages whose prefix was not among the NKEEP kept;
 * "other_values" likewise for field values.)
 *
 * Enabled by its entry under "consumers" (config_key is NULL).  Config:
 *	"count_every"	integer >= 1, default 100
 *	"interval_ms"	integer 100..86400000, default 60000
 *	"field"		JSON Pointer into the envelope, default "/msg/agent";
 *			messages where it is absent or not a string count
 *			as "no_value"
 * Needs plugin ABI 1.1 (a hub of fedmsg-c 0.2 or later).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/plugin.h>
#include <fedmsg/plugin_config.h>	/* fm_config_*: typed config reads */

#define NKEEP	16		/* prefixes and values kept; the rest: "other" */
#define KEYLEN	64

/* Counts per name, for at most NKEEP names. */
struct tally {
	size_t			 n;
	unsigned long long	 count[NKEEP];
	char			 name[NKEEP][KEYLEN];
};

struct example {
	const struct fm_host	*host;	/* services, valid until fini() */
	void			*hctx;	/* passed back on every host call */
	pthread_mutex_t		 lock;	/* consume() and timer may overlap */
	long long		 every, interval_ms;
	char			*field;	/* JSON Pointer; ours (free it) */
	unsigned long long	 seen, total, other, other_values, no_value;
	struct tally		 prefixes, values;
};

/* Count one name; false when the tally is full and the name is new. */
static int
count(struct tally *t, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strncmp(t->name[i], name, len) == 0 &&
		    t->name[i][len] == '\0')
			break;
	if (i == t->n) {
		if (t->n == NKEEP || len >= KEYLEN || memchr(name, 0, len))
			return 0;
		memcpy(t->name[t->n], name, len);
		t->name[t->n++][len] = '\0';
	}
	t->count[i]++;
	return 1;
}

/* Read the config: set the defaults, then read what is given. */
static int
read_config(struct example *ex)
{
	struct fm_config c;

	ex->every = 100;
	ex->interval_ms = 60000;
	if (fm_config_open(&c, ex->host, ex->hctx) != 0 ||
	    fm_config_int(&c, "count_every", 1, 1000000000, &ex->every) < 0 ||
	    fm_config_int(&c, "interval_ms", 100, 86400000,
	    &ex->interval_ms) < 0 ||
	    fm_config_string(&c, "field", &ex->field) < 0) {
		ex->host->log(ex->hctx, FM_LOG_ERR, "config: %s", c.err);
		return -1;	/* log why, then refuse */
	}
	if (ex->field == NULL && (ex->field = strdup("/msg/agent")) == NULL)
		return -1;
	/* a bad pointer is a config error, not a per-message surprise */
	if (ex->host->json_type(ex->host->config(ex->hctx), ex->field) ==
	    FM_JSON_ESYNTAX) {
		ex->host->log(ex->hctx, FM_LOG_ERR, "config: 'field' is not a "
		    "JSON Pointer: %s", ex->field);
		return -1;
	}
	fm_config_warn_unknown(&c);	/* typos show up */
	return 0;
}

/* An object {name: count} of a tally, into the builder. */
static void
build_tally(const struct fm_host *h, struct fm_builder *b, const char *key,
    const struct tally *t)
{
	size_t i;

	h->build_key(b, key, strlen(key));
	h->build_object_begin(b);
	for (i = 0; i < t->n; i++) {
		h->build_key(b, t->name[i], strlen(t->name[i]));
		h->build_int(b, (int64_t)t->count[i]);
	}
	h->build_object_end(b);
}

/* Timer callback (a worker thread): publish the counts, then reset. */
static void
summary(void *arg)
{
	struct example *ex = arg;
	const struct fm_host *h = ex->host;
	struct fm_builder *b = h->builder_new();

	/* The builder escapes and checks the JSON; no sprintf of JSON. */
	pthread_mutex_lock(&ex->lock);
	h->build_object_begin(b);
	h->build_key(b, "total", 5);
	h->build_int(b, (int64_t)ex->total);
	h->build_key(b, "other", 5);
	h->build_int(b, (int64_t)ex->other);
	build_tally(h, b, "prefixes", &ex->prefixes);
	h->build_key(b, "field", 5);
	h->build_string(b, ex->field, strlen(ex->field));
	build_tally(h, b, "values", &ex->values);
	h->build_key(b, "other_values", 12);
	h->build_int(b, (int64_t)ex->other_values);
	h->build_key(b, "no_value", 8);
	h->build_int(b, (int64_t)ex->no_value);
	h->build_object_end(b);
	ex->total = ex->other = ex->other_values = ex->no_value = 0;
	memset(&ex->prefixes, 0, sizeof(ex->prefixes));
	memset(&ex->values, 0, sizeof(ex->values));
	pthread_mutex_unlock(&ex->lock);
	/* The host takes b, builds, signs and sends the envelope. */
	if (h->publish_built(ex->hctx, "example", "summary", b) != 0)
		h->log(ex->hctx, FM_LOG_WARN, "summary not published");
}

static int
ex_consume(void *state, struct fm_msg *msg)
{
	struct example *ex = state;
	const struct fm_host *h = ex->host;
	const char *topic = h->msg_topic(msg), *e, *value;
	size_t vlen;
	int dots = 0, has_value;

	if (topic == NULL)	/* nothing to count: drop it */
		return FM_CONSUME_DROP;
	for (e = topic; *e != '\0' && !(*e == '.' && ++dots == 4); e++)
		;	/* to the 4th '.' or the end */
	/* A field of the validated tree: no parsing, borrowed, not copied. */
	has_value = h->json_string(h->msg_json(msg), ex->field, &value,
	    &vlen) == FM_JSON_OK;
	pthread_mutex_lock(&ex->lock);
	if (!count(&ex->prefixes, topic, (size_t)(e - topic)))
		ex->other++;
	if (!has_value)
		ex->no_value++;
	else if (!count(&ex->values, value, vlen))
		ex->other_values++;
	ex->total++;
	if (++ex->seen % (unsigned long long)ex->every == 0)
		h->log(ex->hctx, FM_LOG_INFO, "%llu messages, last %s",
		    ex->seen, topic);
	pthread_mutex_unlock(&ex->lock);
	return FM_CONSUME_OK;	/* or FM_CONSUME_RETRY to be called again */
}

static void
ex_free(struct example *ex)
{
	pthread_mutex_destroy(&ex->lock);
	free(ex->field);
	free(ex);
}

static int
ex_init(const struct fm_host *host, void *hctx, void **state)
{
	struct example *ex = calloc(1, sizeof(*ex));

	if (ex == NULL)
		return -1;	/* (log why when you can) */
	ex->host = host;
	ex->hctx = hctx;
	pthread_mutex_init(&ex->lock, NULL);
	if (read_config(ex) != 0 || host->timer_add(hctx,
	    (unsigned)ex->interval_ms, summary, ex) < 0) {
		ex_free(ex);	/* nonzero: the hub refuses to start us */
		return -1;
	}
	*state = ex;
	return 0;
}

static void
ex_fini(void *state)	/* after it the hub calls nothing of ours */
{
	ex_free(state);
}

/* "": every topic (the consumer entry's "topics" replaces this) */
static const char *const ex_topics[] = { "", NULL };

static const struct fm_plugin plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"example", "0.2.0", NULL, ex_topics,
	ex_init, ex_consume, NULL /* reload: optional */, ex_fini,
};

FM_PLUGIN_DEFINE(plugin)
