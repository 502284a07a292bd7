/*
 * fanout: when the file named by config "trigger" appears (looked for
 * every 50 ms on a timer), remove it and publish config "count" messages
 * (default 10), each on a topic of its own: "fan.<i>", modname "fanout",
 * payload {"i": <i>}.  A publish the hub refuses is logged and the rest
 * still go.  For the hub's bound on addresses with publishes waiting
 * (test_hub_broker_publish.py).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fedmsg/plugin.h>

struct state {
	const struct fm_host	*host;
	void			*hctx;
	char			 trigger[512];
	int64_t			 count;
};

static void
fan(void *arg)
{
	struct state *st = arg;
	char topic[64], payload[64];
	int64_t i;

	if (unlink(st->trigger) != 0)
		return;			/* not there (yet) */
	for (i = 0; i < st->count; i++) {
		snprintf(topic, sizeof(topic), "fan.%lld", (long long)i);
		snprintf(payload, sizeof(payload), "{\"i\": %lld}",
		    (long long)i);
		(void)st->host->publish(st->hctx, "fanout", topic, payload, 0);
	}
}

static int
f_init(const struct fm_host *host, void *hctx, void **state)
{
	struct state *st = calloc(1, sizeof(*st));
	int rc;

	if (st == NULL || host->abi_minor < 1) {
		free(st);
		return -1;
	}
	st->host = host;
	st->hctx = hctx;
	st->count = 10;
	rc = host->json_int(host->config(hctx), "/count", &st->count);
	if (host->json_string_copy(host->config(hctx), "/trigger", st->trigger,
	    sizeof(st->trigger), NULL) < 0 ||
	    (rc < 0 && rc != FM_JSON_EABSENT) || st->count < 0 ||
	    host->timer_add(hctx, 50, fan, st) < 0) {
		host->log(hctx, FM_LOG_ERR, "config: trigger (a path) is "
		    "required, count a number of messages");
		free(st);
		return -1;
	}
	*state = st;
	return 0;
}

static int
f_consume(void *state, struct fm_msg *msg)
{
	(void)state;
	(void)msg;
	return FM_CONSUME_OK;
}

static void
f_fini(void *state)
{
	free(state);
}

static const char *const f_topics[] = { "", NULL };

static const struct fm_plugin plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"fanout", "1.1", NULL, f_topics,
	f_init, f_consume, NULL, f_fini,
};

FM_PLUGIN_DEFINE(plugin)
