/*
 * noop: the benchmark's consumer plugin.  It wants every topic, counts
 * each message and returns FM_CONSUME_OK without looking at it, so what
 * a hub benchmark measures is the hub: receiving, validating, queueing and
 * calling the plugin.  The hub reports the count as
 * fedmsg_consumer_ok_total{consumer="..."} on /metrics; the plugin logs
 * its own count when it is unloaded, as a cross-check.
 *
 * Built against include/fedmsg/plugin.h only, like consumers/<name>/:
 * build/bench/noop_consumer.so (see the Makefile's bench rules).
 * tests/bench/bench_plugin.c includes this file to time the same
 * consume() called directly and through dlopen().
 */
#include <stdatomic.h>
#include <stdlib.h>

#include <fedmsg/plugin.h>

struct noop {
	const struct fm_host	*host;
	void			*hctx;
	atomic_ullong		 count;
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
	*state = n;
	return 0;
}

static int
noop_consume(void *state, struct fm_msg *msg)
{
	struct noop *n = state;

	(void)msg;
	atomic_fetch_add_explicit(&n->count, 1, memory_order_relaxed);
	return FM_CONSUME_OK;
}

static void
noop_fini(void *state)
{
	struct noop *n = state;

	n->host->log(n->hctx, FM_LOG_INFO, "noop: consumed %llu messages",
	    (unsigned long long)atomic_load(&n->count));
	free(n);
}

static const char *const noop_topics[] = { "", NULL };

static const struct fm_plugin noop_plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"noop", "1.0.0", NULL, noop_topics,
	noop_init, noop_consume, NULL, noop_fini,
};

FM_PLUGIN_DEFINE(noop_plugin)
