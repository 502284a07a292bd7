/*
 * slow: a test consumer that sleeps msg.sleep_ms (else config "sleep_ms",
 * default 0) in consume(), then appends "<msg_id> <attempt>\n" to config
 * "file" and returns OK.  With msg.gate = PATH it first creates PATH.busy
 * and waits (at most 60 s) until the test creates PATH: a consumer held
 * busy on a condition, not for a time.
 */
#define _POSIX_C_SOURCE 200809L

#include <fedmsg/plugin.h>

#include "abi_util.h"

struct state {
	const struct fm_host	*host;
	void			*hctx;
	char			 file[2048];
	long long		 sleep_ms;
};

static int
s_init(const struct fm_host *host, void *hctx, void **state)
{
	struct state *st = calloc(1, sizeof(*st));
	const char *json = host->config_json(hctx);

	if (st == NULL)
		return -1;
	st->host = host;
	st->hctx = hctx;
	if (abi_get_str(json, "file", st->file, sizeof(st->file)) != 0 ||
	    abi_get_int(json, "sleep_ms", &st->sleep_ms) < 0) {
		host->log(hctx, FM_LOG_ERR, "config: want {\"file\": PATH, "
		    "\"sleep_ms\": N}, got %s", json);
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
	char *body = abi_body(st->host, msg), line[512], gate[2048] = "";
	char busy[sizeof(gate) + 8];
	long long ms = st->sleep_ms;
	struct timespec ts;

	if (body != NULL) {
		(void)abi_get_int(body, "sleep_ms", &ms);
		if (abi_get_str(body, "gate", gate, sizeof(gate)) != 0)
			gate[0] = '\0';
	}
	free(body);
	if (gate[0] != '\0') {
		long long until = abi_mono_ms() + 60000;

		snprintf(busy, sizeof(busy), "%s.busy", gate);
		(void)abi_append(busy, "");
		while (access(gate, F_OK) != 0 && abi_mono_ms() < until) {
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
	if (abi_append(st->file, line) != 0)
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
	"slow", "1.0", NULL, s_topics,
	s_init, s_consume, NULL, s_fini,
};

FM_PLUGIN_DEFINE(plugin)
