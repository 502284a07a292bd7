/*
 * noop: the benchmark's consumer plugin.  It wants every topic, counts
 * each message and returns FM_CONSUME_OK without looking at it, so what
 * a hub benchmark measures is the hub: receiving, validating, queueing and
 * calling the plugin.  The hub reports the count as
 * fedmsg_consumer_ok_total{consumer="..."} on /metrics; the plugin logs
 * its own count when it is unloaded, as a cross-check.
 *
 * With config {"read": [POINTER, ...]} it also reads those fields of each
 * message through the ABI 1.1 accessors (a string, an integer or a
 * number, by type), so a bench can weigh what reading fields costs.
 *
 * Built against include/fedmsg/plugin.h only, like consumers/<name>/:
 * build/bench/noop_consumer.so (see the Makefile's bench rules).
 * tests/bench/bench_plugin.c includes this file to time the same
 * consume() called directly and through dlopen().
 */
#include <stdatomic.h>
#include <stdlib.h>

#include <fedmsg/plugin.h>
#include <fedmsg/plugin_config.h>

struct noop {
	const struct fm_host	*host;
	void			*hctx;
	atomic_ullong		 count;
	char			**read;		/* pointers; NULL: none */
	atomic_ullong		 got;		/* fields read (a sink) */
};

static int
noop_init(const struct fm_host *host, void *hctx, void **state)
{
	struct noop *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return -1;
	n->host = host;
	n->hctx = hctx;
	atomic_init(&n->count, 0);
	atomic_init(&n->got, 0);
	if (host->abi_minor >= 1) {
		struct fm_config c;

		if (fm_config_open(&c, host, hctx) != 0 ||
		    fm_config_strings(&c, "read", &n->read, NULL) < 0) {
			host->log(hctx, FM_LOG_ERR, "config: %s", c.err);
			free(n);
			return -1;
		}
	}
	*state = n;
	return 0;
}

/* Read one field as a consumer that knows its type would: a string,
 * else an integer, else any number. */
static unsigned
read_field(const struct fm_host *h, const struct fm_json *doc,
    const char *ptr)
{
	const char *s;
	size_t len;
	int64_t i;
	double d;
	int rc;

	if ((rc = h->json_string(doc, ptr, &s, &len)) != FM_JSON_ETYPE)
		return rc == FM_JSON_OK;
	if ((rc = h->json_int(doc, ptr, &i)) != FM_JSON_ETYPE)
		return rc == FM_JSON_OK;
	return h->json_double(doc, ptr, &d) == FM_JSON_OK;
}

static int
noop_consume(void *state, struct fm_msg *msg)
{
	struct noop *n = state;

	if (n->read != NULL) {
		const struct fm_json *doc = n->host->msg_json(msg);
		unsigned got = 0;
		char **p;

		for (p = n->read; *p != NULL; p++)
			got += read_field(n->host, doc, *p);
		atomic_fetch_add_explicit(&n->got, got, memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&n->count, 1, memory_order_relaxed);
	return FM_CONSUME_OK;
}

static void
noop_fini(void *state)
{
	struct noop *n = state;

	n->host->log(n->hctx, FM_LOG_INFO, "noop: consumed %llu messages, "
	    "read %llu fields", (unsigned long long)atomic_load(&n->count),
	    (unsigned long long)atomic_load(&n->got));
	fm_config_strv_free(n->read);
	free(n);
}

static const char *const noop_topics[] = { "", NULL };

static const struct fm_plugin noop_plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"noop", "1.0.0", NULL, noop_topics,
	noop_init, noop_consume, NULL, noop_fini,
};

FM_PLUGIN_DEFINE(noop_plugin)
