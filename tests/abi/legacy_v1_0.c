/*
 * legacy_v1_0: a plugin built against the ABI 1.0 header as it was
 * released (abi-1.0/plugin.h, frozen), so the hub's 1.1 host table must
 * serve it unchanged.  It uses only 1.0 calls: for every message it
 * appends "<msg_id> <abi_minor> <body bytes> <topic> <timestamp>\n" to
 * the file named by config_json() (the whole config is {"file": PATH}).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi-1.0/plugin.h"	/* not <fedmsg/plugin.h>: the 1.0 one */
#include "record.h"

struct state {
	const struct fm_host	*host;
	void			*hctx;
	char			 file[2048];
};

static int
l_init(const struct fm_host *host, void *hctx, void **state)
{
	struct state *st = calloc(1, sizeof(*st));
	const char *cfg = host->config_json(hctx);

	/* 1.0 had no accessors: the test gives exactly {"file":"PATH"} */
	if (st == NULL || sscanf(cfg, "{\"file\":\"%2047[^\"]\"}", st->file) != 1) {
		host->log(hctx, FM_LOG_ERR, "config must be {\"file\":PATH}");
		free(st);
		return -1;
	}
	st->host = host;
	st->hctx = hctx;
	*state = st;
	return 0;
}

static int
l_consume(void *state, struct fm_msg *msg)
{
	struct state *st = state;
	const char *id = st->host->msg_id(msg), *topic = st->host->msg_topic(msg);
	char line[1200];
	size_t len = 0;

	(void)st->host->msg_body(msg, &len);
	snprintf(line, sizeof(line), "%s %u %zu %s %.3f\n", id ? id : "-",
	    (unsigned)st->host->abi_minor, len, topic ? topic : "-",
	    st->host->msg_timestamp(msg));
	return record_line(st->file, line) == 0 ? FM_CONSUME_OK : -1;
}

static void
l_fini(void *state)
{
	free(state);
}

static const char *const l_topics[] = { "", NULL };

static const struct fm_plugin plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"legacy_v1_0", "1.0", NULL, l_topics,
	l_init, l_consume, NULL, l_fini,
};

FM_PLUGIN_DEFINE(plugin)
