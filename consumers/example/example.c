/*
 * example: a minimal consumer to copy.  It counts messages per topic
 * prefix (the first four dot-separated parts: "org.fedoraproject.prod.
 * buildsys"), logs every count_every-th message, and every interval_ms
 * publishes the counts since the previous summary as modname "example",
 * topic "summary": {"total":3,"other":0,"prefixes":{"a.b.c.d":3}}.
 *
 * Enabled by its entry under "consumers" (config_key is NULL).  Config:
 *	"count_every"	integer >= 1, default 100
 *	"interval_ms"	integer 100..86400000, default 60000
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/plugin.h>
#include "../common.h"		/* cfg_*: the config reader */

#define NPREFIX	16		/* prefixes kept; the rest count as "other" */

struct example {
	const struct fm_host	*host;	/* services, valid until fini() */
	void			*hctx;	/* passed back on every host call */
	pthread_mutex_t		 lock;	/* consume() and timer may overlap */
	long long		 every, interval_ms;
	unsigned long long	 seen, total, other, n, count[NPREFIX];
	char			 prefix[NPREFIX][64];
};

/* Read the config: set the defaults, then read what is given. */
static int
read_config(struct example *ex)
{
	struct cfg c;

	ex->every = 100;
	ex->interval_ms = 60000;
	if (cfg_parse(&c, ex->host->config_json(ex->hctx)) != 0 ||
	    cfg_get_int(&c, "count_every", 1, 1000000000, &ex->every) < 0 ||
	    cfg_get_int(&c, "interval_ms", 100, 86400000,
	    &ex->interval_ms) < 0) {
		ex->host->log(ex->hctx, FM_LOG_ERR, "config: %s", c.err);
		return -1;	/* log why, then refuse */
	}
	cfg_warn_unknown(&c, ex->host, ex->hctx);	/* typos show up */
	return 0;
}

/* Timer callback (a worker thread): publish the counts, then reset. */
static void
summary(void *arg)
{
	struct example *ex = arg;
	char json[8192], *o = json;	/* fits NPREFIX escaped prefixes */
	const char *p;
	size_t i;

	pthread_mutex_lock(&ex->lock);
	o += sprintf(o, "{\"total\":%llu,\"other\":%llu,\"prefixes\":{",
	    ex->total, ex->other);
	for (i = 0; i < ex->n; i++) {	/* JSON-escape: topics are data */
		o += sprintf(o, "%s\"", i > 0 ? "," : "");
		for (p = ex->prefix[i]; *p != '\0'; p++)
			if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
				o += sprintf(o, "\\u%04x", (unsigned)*p);
			else
				*o++ = *p;
		o += sprintf(o, "\":%llu", ex->count[i]);
	}
	strcpy(o, "}}");
	ex->total = ex->other = ex->n = 0;
	memset(ex->count, 0, sizeof(ex->count));
	pthread_mutex_unlock(&ex->lock);
	/* The host copies the text, builds, signs and sends the envelope. */
	if (ex->host->publish(ex->hctx, "example", "summary", json, 0) != 0)
		ex->host->log(ex->hctx, FM_LOG_WARN, "summary not published");
}

static int
ex_consume(void *state, struct fm_msg *msg)
{
	struct example *ex = state;
	const char *topic = ex->host->msg_topic(msg), *e;
	size_t len, i;
	int dots = 0;

	if (topic == NULL)	/* nothing to count: drop it */
		return FM_CONSUME_DROP;
	for (e = topic; *e != '\0' && !(*e == '.' && ++dots == 4); e++)
		;	/* to the 4th '.' or the end */
	len = (size_t)(e - topic);
	pthread_mutex_lock(&ex->lock);
	for (i = 0; i < ex->n; i++)
		if (strncmp(ex->prefix[i], topic, len) == 0 &&
		    ex->prefix[i][len] == '\0')
			break;
	if (i == ex->n && i < NPREFIX && len < sizeof(ex->prefix[i]))
		snprintf(ex->prefix[ex->n++], sizeof(ex->prefix[i]), "%.*s",
		    (int)len, topic);	/* a new prefix */
	if (i < ex->n)
		ex->count[i]++;
	else
		ex->other++;
	ex->total++;
	if (++ex->seen % (unsigned long long)ex->every == 0)
		ex->host->log(ex->hctx, FM_LOG_INFO, "%llu messages, last %s",
		    ex->seen, topic);
	pthread_mutex_unlock(&ex->lock);
	return FM_CONSUME_OK;	/* or FM_CONSUME_RETRY to be called again */
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
		pthread_mutex_destroy(&ex->lock);
		free(ex);	/* nonzero: the hub refuses to start us */
		return -1;
	}
	*state = ex;
	return 0;
}

static void
ex_fini(void *state)	/* after it the hub calls nothing of ours */
{
	pthread_mutex_destroy(&((struct example *)state)->lock);
	free(state);
}

/* "": every topic (the consumer entry's "topics" replaces this) */
static const char *const ex_topics[] = { "", NULL };

static const struct fm_plugin plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"example", "0.1.0", NULL, ex_topics,
	ex_init, ex_consume, NULL /* reload: optional */, ex_fini,
};

FM_PLUGIN_DEFINE(plugin)
