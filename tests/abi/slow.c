/*
 * slow: a test consumer that sleeps msg.sleep_ms (else config "sleep_ms",
 * default 0) in consume(), then appends "<msg_id> <attempt>\n" to config
 * "file" and returns OK.  With msg.gate = PATH it first creates PATH.busy
 * and waits (at most 60 s) until the test creates PATH: a consumer held
 * busy on a condition, not for a time.
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
	const struct fm_json *doc = st->host->msg_json(msg);
	char line[512], gate[2048] = "", busy[sizeof(gate) + 8];
	int64_t ms = st->sleep_ms;
	struct timespec ts;

	(void)st->host->json_int(doc, "/msg/sleep_ms", &ms);
	if (st->host->json_string_copy(doc, "/msg/gate", gate, sizeof(gate),
	    NULL) != FM_JSON_OK)
		gate[0] = '\0';
	if (gate[0] != '\0') {
		long long until = record_mono_ms() + 60000;

		snprintf(busy, sizeof(busy), "%s.busy", gate);
		(void)record_line(busy, "");
		while (access(gate, F_OK) != 0 && record_mono_ms() < until) {
			ts.tv_sec = 0;
			ts.tv_nsec = 10 * 1000000L;
			nanosleep(&ts, NULL);
		}
	}
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
