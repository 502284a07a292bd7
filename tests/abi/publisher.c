/*
 * publisher: for every consumed message, publish a reply built with the
 * host's payload builder: modname config "modname" (default "pubtest"),
 * topic config "topic" (default "reply"), payload
 *	{"in_reply_to": <msg_id>, "orig_topic": <topic>, "signer": <CN>,
 *	 "echo": <the consumed payload, copied>}
 * Returns OK when the hub took the reply, else -1 (an error verdict).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/plugin.h>

struct state {
	const struct fm_host	*host;
	void			*hctx;
	char			 modname[64];
	char			 topic[128];
};

/* A string of the config into out; absent keeps the default. */
static int
opt_str(const struct fm_host *h, void *hctx, const char *ptr, char *out,
    size_t size)
{
	int rc = h->json_string_copy(h->config(hctx), ptr, out, size, NULL);

	return rc == FM_JSON_EABSENT ? 0 : rc;
}

static int
p_init(const struct fm_host *host, void *hctx, void **state)
{
	struct state *st = calloc(1, sizeof(*st));

	if (st == NULL || host->abi_minor < 1) {
		free(st);
		return -1;
	}
	st->host = host;
	st->hctx = hctx;
	snprintf(st->modname, sizeof(st->modname), "pubtest");
	snprintf(st->topic, sizeof(st->topic), "reply");
	if (opt_str(host, hctx, "/modname", st->modname,
	    sizeof(st->modname)) < 0 ||
	    opt_str(host, hctx, "/topic", st->topic, sizeof(st->topic)) < 0) {
		host->log(hctx, FM_LOG_ERR, "config: modname and topic must be "
		    "short strings");
		free(st);
		return -1;
	}
	*state = st;
	return 0;
}

/* A member whose value is a C string, or null when s is NULL. */
static void
member(const struct fm_host *h, struct fm_builder *b, const char *key,
    const char *s)
{
	h->build_key(b, key, strlen(key));
	if (s)
		h->build_string(b, s, strlen(s));
	else
		h->build_null(b);
}

static int
p_consume(void *state, struct fm_msg *msg)
{
	struct state *st = state;
	const struct fm_host *h = st->host;
	struct fm_builder *b = h->builder_new();

	h->build_object_begin(b);
	member(h, b, "in_reply_to", h->msg_id(msg));
	member(h, b, "orig_topic", h->msg_topic(msg));
	member(h, b, "signer", h->msg_signer(msg));
	h->build_key(b, "echo", 4);
	if (h->json_type(h->msg_json(msg), "/msg") == FM_JSON_ABSENT)
		h->build_null(b);
	else
		h->build_json(b, h->msg_json(msg), "/msg");
	h->build_object_end(b);
	/* publish_built takes b, whatever happened to it */
	return h->publish_built(st->hctx, st->modname, st->topic, b) == 0 ?
	    FM_CONSUME_OK : -1;
}

static void
p_fini(void *state)
{
	free(state);
}

static const char *const p_topics[] = { "", NULL };

static const struct fm_plugin plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"publisher", "1.1", NULL, p_topics,
	p_init, p_consume, NULL, p_fini,
};

FM_PLUGIN_DEFINE(plugin)
