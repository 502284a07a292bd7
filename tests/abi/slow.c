/*
 * slow: a test consumer that sleeps msg.sleep_ms (else config "sleep_ms",
 * default 0) in consume(), then appends "<msg_id> <attempt>\n" to config
 * "file" and returns OK.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <fedmsg/plugin.h>

#include "record.h"

struct state {
	const struct fm_host	*host;
	void			*hctx;
	char			 file[2048];
	int64_t			 sleep_ms;
};

static int
s_init(const struct fm_host *host, void *hctx, void **state)
{
	struct state *st = calloc(1, sizeof(*st));
	const struct fm_json *cfg;
	int rc;

	if (st == NULL || host->abi_minor < 1) {
		free(st);
		return -1;
	}
	st->host = host;
	st->hctx = hctx;
	cfg = host->config(hctx);
	rc = host->json_int(cfg, "/sleep_ms", &st->sleep_ms);
	if (host->json_string_copy(cfg, "/file", st->file, sizeof(st->file),
	    NULL) != FM_JSON_OK || (rc != FM_JSON_OK && rc != FM_JSON_EABSENT)) {
		host->log(hctx, FM_LOG_ERR, "config: want {\"file\": PATH, "
		    "\"sleep_ms\": N}");
		free(st);
		return -1;
	}
	*state = st;
	return 0;
}

static int
s_consume(void *state, struct fm_msg *msg)
{
	struct state *st = state;
	const char *id = st->host->msg_id(msg);
	int64_t ms = st->sleep_ms;
	struct timespec ts;
	char line[512];

	(void)st->host->json_int(st->host->msg_json(msg), "/msg/sleep_ms", &ms);
	if (ms > 0) {
		ts.tv_sec = (time_t)(ms / 1000);
		ts.tv_nsec = (long)(ms % 1000) * 1000000;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	snprintf(line, sizeof(line), "%s %u\n", id ? id : "-",
	    st->host->msg_attempt(msg));
	if (record_line(st->file, line) != 0)
		return -1;
	return FM_CONSUME_OK;
}

static void
s_fini(void *state)
{
	free(state);
}

static const char *const s_topics[] = { "", NULL };

static const struct fm_plugin plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"slow", "1.1", NULL, s_topics,
	s_init, s_consume, NULL, s_fini,
};

FM_PLUGIN_DEFINE(plugin)
