/*
 * verdicts: a test consumer whose consume() returns the verdict it is told
 * to, and records every call so tests can see what it consumed and on
 * which attempt.
 *
 * Config (the consumer entry's "config"):
 *	"file"		required: each consume() appends "<msg_id> <attempt>\n"
 *			(with "stamps": 1, "<msg_id> <attempt> <monotonic ms>\n")
 *	"field"		the payload field naming the verdict (read at
 *			"/msg/<field>"), default "verdict"
 *	"script"	"ok,retry,ok,drop,halt,error": the verdicts of successive
 *			consume() calls (retries included) for messages without
 *			the field and whose msg_id does not start with "probe-"
 *	"default"	the verdict otherwise, default "ok"
 * Verdicts: ok, retry, drop, halt, error (-1), error-N (-N).
 * reload() re-reads the config (a bad one keeps the old) and restarts the
 * script.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <fedmsg/plugin.h>

#include "record.h"

struct conf {
	char	 file[2048];
	char	 field[80];		/* "/msg/<field>" */
	char	 script[1024];
	int	 dflt;
	bool	 stamps;
};

struct state {
	const struct fm_host	*host;
	void			*hctx;
	pthread_mutex_t		 mu;
	struct conf		 c;
	size_t			 pos;	/* next script entry (byte offset) */
};

/* A verdict word; 0 with *rc, -1 when unknown. */
static int
word(const char *w, size_t n, int *rc)
{
	if (n == 2 && strncmp(w, "ok", 2) == 0)
		*rc = FM_CONSUME_OK;
	else if (n == 5 && strncmp(w, "retry", 5) == 0)
		*rc = FM_CONSUME_RETRY;
	else if (n == 4 && strncmp(w, "drop", 4) == 0)
		*rc = FM_CONSUME_DROP;
	else if (n == 4 && strncmp(w, "halt", 4) == 0)
		*rc = FM_CONSUME_HALT;
	else if (n == 5 && strncmp(w, "error", 5) == 0)
		*rc = -1;
	else if (n > 6 && n < 12 && strncmp(w, "error-", 6) == 0)
		*rc = -atoi(w + 6);
	else
		return -1;
	return 0;
}

/* A string of the config into out; absent leaves out alone. */
static int
opt_str(struct state *st, const char *ptr, char *out, size_t size)
{
	int rc = st->host->json_string_copy(st->host->config(st->hctx), ptr,
	    out, size, NULL);

	return rc == FM_JSON_EABSENT ? 0 : rc;
}

static int
load(struct state *st, struct conf *c)
{
	const struct fm_json *cfg = st->host->config(st->hctx);
	char dflt[32] = "ok", field[64] = "verdict";
	int64_t stamps = 0;
	int rc;

	if (st->host->abi_minor < 1) {
		st->host->log(st->hctx, FM_LOG_ERR, "needs plugin ABI 1.1");
		return -1;
	}
	memset(c, 0, sizeof(*c));
	if (st->host->json_string_copy(cfg, "/file", c->file,
	    sizeof(c->file), NULL) != FM_JSON_OK || c->file[0] != '/') {
		st->host->log(st->hctx, FM_LOG_ERR, "config: 'file' (an "
		    "absolute path) is required");
		return -1;
	}
	rc = st->host->json_int(cfg, "/stamps", &stamps);
	if (opt_str(st, "/field", field, sizeof(field)) < 0 ||
	    opt_str(st, "/script", c->script, sizeof(c->script)) < 0 ||
	    opt_str(st, "/default", dflt, sizeof(dflt)) < 0 ||
	    (rc != FM_JSON_OK && rc != FM_JSON_EABSENT) ||
	    word(dflt, strlen(dflt), &c->dflt) < 0) {
		st->host->log(st->hctx, FM_LOG_ERR, "config: a bad value in "
		    "field, script, default or stamps");
		return -1;
	}
	snprintf(c->field, sizeof(c->field), "/msg/%s", field);
	c->stamps = stamps != 0;
	return 0;
}

static int
v_init(const struct fm_host *host, void *hctx, void **state)
{
	struct state *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return -1;
	st->host = host;
	st->hctx = hctx;
	if (load(st, &st->c) != 0) {
		free(st);
		return -1;
	}
	pthread_mutex_init(&st->mu, NULL);
	host->log(hctx, FM_LOG_INFO, "verdicts: recording to %s", st->c.file);
	*state = st;
	return 0;
}

static int
v_consume(void *state, struct fm_msg *msg)
{
	struct state *st = state;
	const char *id = st->host->msg_id(msg), *w;
	unsigned attempt = st->host->msg_attempt(msg);
	char line[2300];
	size_t n;
	int rc;

	if (id == NULL)
		id = "-";
	pthread_mutex_lock(&st->mu);
	rc = st->c.dflt;
	if (st->host->json_string(st->host->msg_json(msg), st->c.field, &w,
	    &n) == FM_JSON_OK) {
		if (word(w, n, &rc) < 0)
			rc = -99;
	} else if (strncmp(id, "probe-", 6) != 0 &&
	    st->c.script[st->pos] != '\0') {
		const char *s = st->c.script + st->pos;

		n = strcspn(s, ",");
		if (word(s, n, &rc) < 0)
			rc = -98;
		st->pos += n + (s[n] == ',');
	}
	if (st->c.stamps)
		snprintf(line, sizeof(line), "%s %u %lld\n", id, attempt,
		    record_mono_ms());
	else
		snprintf(line, sizeof(line), "%s %u\n", id, attempt);
	if (record_line(st->c.file, line) != 0)
		st->host->log(st->hctx, FM_LOG_ERR, "cannot append to %s",
		    st->c.file);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

static int
v_reload(void *state)
{
	struct state *st = state;
	struct conf c;

	if (load(st, &c) != 0) {
		st->host->log(st->hctx, FM_LOG_ERR, "verdicts: reload failed, "
		    "keeping %s", st->c.file);
		return -1;
	}
	pthread_mutex_lock(&st->mu);
	st->c = c;
	st->pos = 0;
	pthread_mutex_unlock(&st->mu);
	st->host->log(st->hctx, FM_LOG_INFO, "verdicts: now recording to %s",
	    c.file);
	return 0;
}

static void
v_fini(void *state)
{
	struct state *st = state;

	pthread_mutex_destroy(&st->mu);
	free(st);
}

static const char *const v_topics[] = { "", NULL };

static const struct fm_plugin plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"verdicts", "1.1", NULL, v_topics,
	v_init, v_consume, v_reload, v_fini,
};

FM_PLUGIN_DEFINE(plugin)
