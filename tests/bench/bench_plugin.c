/*
 * bench_plugin: what calling a consumer plugin costs per message.
 *
 *   bench_plugin [-n CALLS] [-r ROUNDS] PLUGIN.so
 *
 * PLUGIN.so is build/bench/noop_consumer.so (tests/bench/noop_consumer.c,
 * which this file also includes, so the same consume() is compiled in
 * here).  With one message (built with fm_msg_build), it times CALLS
 * calls of:
 *
 *   direct          the compiled-in consume(), a direct call to a
 *                   function kept out of line (noinline, noipa)
 *   local_indirect  the compiled-in copy through its struct fm_plugin, as
 *                   the hub calls: c->pl->consume(c->state, msg)
 *   dlopen          the plugin loaded with dlopen(RTLD_NOW | RTLD_LOCAL)
 *                   and fm_plugin_entry_v1(), called the same way
 *   dlopen_read5    the same plugin, configured to read five fields of a
 *                   3 KB signed git.receive envelope through the hub's
 *                   ABI 1.1 accessors (the hub's own plugin_json.c)
 *
 * ROUNDS times each, interleaved; the best round of each counts.  Output:
 *   plugin NAME CALLS NS_PER_CALL
 * Exit status: 0 measured, 1 the plugin failed (load, init, count), 2
 * usage.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fedmsg/message.h>

#include "bench_payload.h"
#include "json.h"
#include "plugin_json.h"
#include "noop_consumer.c"

/* The five fields a consumer of git.receive typically wants. */
#define READ5 "{\"read\":[\"/msg/commit/repo\",\"/msg/commit/branch\"," \
    "\"/msg/commit/username\",\"/msg/commit/stats/total/additions\"," \
    "\"/msg/ratio\"]}"

#if defined(__clang__)
#define OUT_OF_LINE	__attribute__((noinline))
#else
#define OUT_OF_LINE	__attribute__((noinline, noipa))
#endif

static void h_log(void *hctx, enum fm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
h_log(void *hctx, enum fm_log_level level, const char *fmt, ...)
{
	va_list ap;

	(void)hctx;
	if (level > FM_LOG_WARN)
		return;
	va_start(ap, fmt);
	fputs("bench_plugin: plugin: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int
h_publish(void *hctx, const char *modname, const char *topic,
    const char *json, size_t len)
{
	(void)hctx; (void)modname; (void)topic; (void)json; (void)len;
	return -1;
}

/* hctx is the config text; config() parses it once. */
static const char *h_config_json(void *hctx) { return hctx ? hctx : "{}"; }

static const struct fm_json *
h_config(void *hctx)
{
	static struct jv_doc *docs[2];
	int k = hctx != NULL;
	const char *text = h_config_json(hctx);
	char err[FM_ERRLEN];

	if (docs[k] == NULL &&
	    (docs[k] = jv_parse(text, strlen(text), NULL, err)) == NULL) {
		fprintf(stderr, "bench_plugin: %s\n", err);
		exit(1);
	}
	return pj_doc(jv_doc_root(docs[k]));
}
static struct fm_msg *h_msg_ref(struct fm_msg *m) { return fm_msg_ref(m); }
static void h_msg_unref(struct fm_msg *m) { fm_msg_unref(m); }
static const char *h_msg_topic(const struct fm_msg *m) { return fm_msg_topic(m); }
static const char *h_msg_id(const struct fm_msg *m) { return fm_msg_id(m); }
static const char *h_msg_signer(const struct fm_msg *m) { return fm_msg_signer(m); }
static unsigned h_msg_attempt(const struct fm_msg *m) { (void)m; return 1; }

static const char *
h_msg_body(const struct fm_msg *m, size_t *len)
{
	return fm_msg_body(m, len);
}

static double
h_msg_timestamp(const struct fm_msg *m)
{
	double ts;

	return fm_msg_timestamp(m, &ts) ? ts : 0;
}

static int
h_timer_add(void *hctx, unsigned ms, void (*fn)(void *), void *arg)
{
	(void)hctx; (void)ms; (void)fn; (void)arg;
	return -1;
}

static struct fm_host host = {
	.abi_major = FM_PLUGIN_ABI_MAJOR,
	.abi_minor = FM_PLUGIN_ABI_MINOR,
	.size = sizeof(struct fm_host),
	.log = h_log,
	.publish = h_publish,
	.config_json = h_config_json,
	.msg_ref = h_msg_ref,
	.msg_unref = h_msg_unref,
	.msg_topic = h_msg_topic,
	.msg_id = h_msg_id,
	.msg_body = h_msg_body,
	.msg_timestamp = h_msg_timestamp,
	.msg_signer = h_msg_signer,
	.msg_attempt = h_msg_attempt,
	.timer_add = h_timer_add,
	.config = h_config,
};

/* A 3 KB signed-looking envelope around the git.receive sample. */
static struct fm_msg *
big_message(void)
{
	static const char head[] = "{\"certificate\":\"";
	char text[8192], *o = text, err[FM_ERRLEN];
	struct fm_msg *m;
	int i;

	o += sprintf(o, "%s", head);
	for (i = 0; i < 1600; i++)
		*o++ = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"[i % 32];
	o += sprintf(o, "\",\"crypto\":\"x509\",\"i\":1,\"msg\":{"
	    BENCH_GIT_RECEIVE_MEMBERS ",\"msg_id\":\"2026-bench\","
	    "\"signature\":\"");
	for (i = 0; i < 344; i++)
		*o++ = "abcdefghijklmnopqrstuvwxyz012345"[i % 32];
	o += sprintf(o, "\",\"timestamp\":1700000000,\"topic\":"
	    "\"org.fedoraproject.prod.git.receive\",\"username\":"
	    "\"apache\"}");
	if (fm_msg_parse(text, (size_t)(o - text), NULL, &m, err) < 0) {
		fprintf(stderr, "bench_plugin: %s\n", err);
		exit(1);
	}
	return m;
}

static OUT_OF_LINE int
direct_consume(void *state, struct fm_msg *msg)
{
	return noop_consume(state, msg);
}

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ns per call of consume through *plp (NULL: direct_consume). */
static double
timed(const struct fm_plugin *const volatile *plp, void *state,
    struct fm_msg *msg, unsigned long calls, int *sink)
{
	double t0, t1;
	unsigned long i;
	int acc = 0;

	t0 = now_sec();
	if (plp == NULL) {
		for (i = 0; i < calls; i++)
			acc += direct_consume(state, msg);
	} else {
		for (i = 0; i < calls; i++)
			acc += (*plp)->consume(state, msg);
	}
	t1 = now_sec();
	*sink += acc;
	return (t1 - t0) * 1e9 / (double)calls;
}

int
main(int argc, char **argv)
{
	struct fm_limits lim = { 0, 0 };
	struct fm_msg_fields f;
	struct fm_msg *msg = NULL;
	const struct fm_plugin *volatile local_pl = &noop_plugin, *volatile dl_pl;
	fm_plugin_entry_fn entry;
	void *dl, *local_state = NULL, *dl_state = NULL, *read_state = NULL;
	struct fm_msg *big;
	unsigned long calls = 20000000;
	double best[4] = { 1e9, 1e9, 1e9, 1e9 };
	char err[FM_ERRLEN], *end;
	int c, r, rounds = 5, sink = 0;

	while ((c = getopt(argc, argv, "n:r:")) != -1) {
		switch (c) {
		case 'n':
			calls = strtoul(optarg, &end, 10);
			if (*end != '\0' || calls == 0)
				goto usage;
			break;
		case 'r':
			rounds = atoi(optarg);
			if (rounds < 1 || rounds > 100)
				goto usage;
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 1)
		goto usage;

	memset(&f, 0, sizeof(f));
	f.topic = "org.fedoraproject.prod.bench.plugin";
	f.msg_json = "{\"n\":1}";
	f.i = 1;
	f.username = "apache";
	if (fm_msg_build(&f, &lim, &msg, err) < 0) {
		fprintf(stderr, "bench_plugin: %s\n", err);
		return 1;
	}
	big = big_message();
	pj_fill_host(&host);
	host.config = h_config;
	if ((dl = dlopen(argv[optind], RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "bench_plugin: %s\n", dlerror());
		return 1;
	}
	*(void **)&entry = dlsym(dl, FM_PLUGIN_ENTRY_NAME);
	if (entry == NULL || (dl_pl = entry()) == NULL ||
	    dl_pl->abi_major != FM_PLUGIN_ABI_MAJOR ||
	    dl_pl->init(&host, NULL, &dl_state) != 0 ||
	    dl_pl->init(&host, (void *)READ5, &read_state) != 0 ||
	    local_pl->init(&host, NULL, &local_state) != 0) {
		fprintf(stderr, "bench_plugin: %s: not a working plugin\n",
		    argv[optind]);
		return 1;
	}
	/* warm up */
	timed(NULL, local_state, msg, calls / 20 + 1, &sink);
	timed(&local_pl, local_state, msg, calls / 20 + 1, &sink);
	timed(&dl_pl, dl_state, msg, calls / 20 + 1, &sink);
	timed(&dl_pl, read_state, big, calls / 200 + 1, &sink);
	for (r = 0; r < rounds; r++) {
		double ns;

		if ((ns = timed(NULL, local_state, msg, calls, &sink)) < best[0])
			best[0] = ns;
		if ((ns = timed(&local_pl, local_state, msg, calls,
		    &sink)) < best[1])
			best[1] = ns;
		if ((ns = timed(&dl_pl, dl_state, msg, calls, &sink)) < best[2])
			best[2] = ns;
		/* a tenth of the calls: each one does five lookups */
		if ((ns = timed(&dl_pl, read_state, big, calls / 10 + 1,
		    &sink)) < best[3])
			best[3] = ns;
	}
	/* Every call returned FM_CONSUME_OK (0) and was counted. */
	if (sink != 0 || atomic_load(&((struct noop *)dl_state)->count) !=
	    (unsigned long long)rounds * calls + calls / 20 + 1) {
		fprintf(stderr, "bench_plugin: the plugin miscounted\n");
		return 1;
	}
	printf("plugin direct %lu %.3f\n", calls, best[0]);
	printf("plugin local_indirect %lu %.3f\n", calls, best[1]);
	printf("plugin dlopen %lu %.3f\n", calls, best[2]);
	printf("plugin dlopen_read5 %lu %.3f\n", calls / 10 + 1, best[3]);
	/* all five fields were found in every call */
	if (atomic_load(&((struct noop *)read_state)->got) !=
	    5ull * atomic_load(&((struct noop *)read_state)->count)) {
		fprintf(stderr, "bench_plugin: the reads missed fields\n");
		return 1;
	}
	local_pl->fini(local_state);
	dl_pl->fini(dl_state);
	dl_pl->fini(read_state);
	fm_msg_unref(big);
	dlclose(dl);
	fm_msg_unref(msg);
	return 0;
usage:
	fprintf(stderr, "usage: bench_plugin [-n CALLS] [-r ROUNDS] "
	    "PLUGIN.so\n");
	return 2;
}
