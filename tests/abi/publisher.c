/*
 * publisher: for every consumed message, publish a reply through
 * host->publish: modname config "modname" (default "pubtest"), topic
 * config "topic" (default "reply"), payload
 *	{"in_reply_to": <msg_id>, "orig_topic": <topic>, "signer": <CN>}
 * Returns OK when the hub took the reply, else -1 (an error verdict).
 */
#define _POSIX_C_SOURCE 200809L

#include <fedmsg/plugin.h>

#include "abi_util.h"

struct state {
	const struct fm_host	*host;
	void			*hctx;
	char			 modname[64];
	char			 topic[128];
};

static int
p_init(const struct fm_host *host, void *hctx, void **state)
{
	struct state *st = calloc(1, sizeof(*st));
	const char *json = host->config_json(hctx);

	if (st == NULL)
		return -1;
	st->host = host;
	st->hctx = hctx;
	snprintf(st->modname, sizeof(st->modname), "pubtest");
	snprintf(st->topic, sizeof(st->topic), "reply");
	if (abi_get_str(json, "modname", st->modname, sizeof(st->modname)) < 0 ||
	    abi_get_str(json, "topic", st->topic, sizeof(st->topic)) < 0) {
		host->log(hctx, FM_LOG_ERR, "config: bad %s", json);
		free(st);
		return -1;
	}
	*state = st;
	return 0;
}

static int
p_consume(void *state, struct fm_msg *msg)
{
	struct state *st = state;
	const char *id = st->host->msg_id(msg);
	const char *topic = st->host->msg_topic(msg);
	const char *signer = st->host->msg_signer(msg);
	char eid[600], etopic[600], esigner[600], json[2000];

	if (abi_json_escape(id ? id : "", eid, sizeof(eid)) != 0 ||
	    abi_json_escape(topic ? topic : "", etopic, sizeof(etopic)) != 0 ||
	    abi_json_escape(signer ? signer : "", esigner, sizeof(esigner)) != 0)
		return FM_CONSUME_DROP;
	snprintf(json, sizeof(json), "{\"in_reply_to\":\"%s\",\"orig_topic\":"
	    "\"%s\",\"signer\":\"%s\"}", eid, etopic, esigner);
	if (st->host->publish(st->hctx, st->modname, st->topic, json, 0) != 0)
		return -1;
	return FM_CONSUME_OK;
}

static void
p_fini(void *state)
{
	free(state);
}

static const char *const p_topics[] = { "", NULL };

static const struct fm_plugin plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"publisher", "1.0", NULL, p_topics,
	p_init, p_consume, NULL, p_fini,
};

FM_PLUGIN_DEFINE(plugin)
