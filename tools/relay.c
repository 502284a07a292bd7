/*
 * The relay loop (relay.h).
 *
 * One thread owns the sockets: it receives, checks the frames and the
 * topic, and forwards the exact body bytes.  When messages must be
 * validated or signed and more than one thread is asked for, that work
 * goes to worker threads (relay_pool.h), which hand the results back in
 * arrival order to the socket thread; it alone sends (ZeroMQ sockets are
 * not thread-safe).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fedmsg/message.h>

#include "config.h"
#include "heap.h"
#include "log.h"
#include "relay.h"
#include "relay_pool.h"
#include "signals.h"
#include "zep.h"

#define BATCH		256	/* messages read per poll wake-up */
#define FLUSH_EVERY	32	/* checked messages sent together at most */

static void
log_stats(const struct relay_stats *st)
{
	log_info("forwarded %llu; dropped: %llu bad frames, %llu not JSON "
	    "objects, %llu topic mismatches, %llu invalid, %llu unsignable, "
	    "%llu unsendable", (unsigned long long)st->forwarded,
	    (unsigned long long)st->bad_frames, (unsigned long long)st->bad_json,
	    (unsigned long long)st->topic_mismatch,
	    (unsigned long long)st->invalid, (unsigned long long)st->sign_failed,
	    (unsigned long long)st->send_failed);
}

static void
forward(void *out, struct fm_msg *m, struct relay_stats *st)
{
	if (zep_send_msg(out, m) < 0) {
		st->send_failed++;
		log_warn("cannot forward %s: %s", fm_msg_id(m) ?
		    fm_msg_id(m) : "-", zmq_strerror(errno));
	} else {
		st->forwarded++;
	}
	fm_msg_unref(m);
}

/* A checked message waiting to go out, with the frames it came in. */
struct ready {
	struct fm_msg		*m;
	struct zep_frames	 f;	/* when forwarded unchanged */
};

/* Send the frames m came in, without a copy. */
static void
forward_frames(void *out, struct zep_frames *f, struct fm_msg *m,
    struct relay_stats *st)
{
	/* The first frame is queued, so the second cannot be refused. */
	if (zmq_msg_send(&f->topic, out, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0 &&
	    zmq_msg_send(&f->body, out, ZMQ_DONTWAIT) >= 0) {
		st->forwarded++;
	} else {
		st->send_failed++;
		log_warn("cannot forward %s: %s", fm_msg_id(m) ?
		    fm_msg_id(m) : "-", zmq_strerror(errno));
	}
	zep_frames_close(f);
	fm_msg_unref(m);
}

/* Send a checked message: in the frames f it came in when unchanged. */
static void
forward_checked(void *out, struct fm_msg *m, struct zep_frames *f,
    bool unchanged, struct relay_stats *st)
{
	if (unchanged)
		forward_frames(out, f, m, st);
	else
		forward(out, m, st);
}

/*
 * Send what one thread checked in a row.  Sending them together lets
 * ZeroMQ's I/O thread write them in one wake-up: sent one by one between
 * two verifies, each cost a wake-up of that thread and a send() of its own
 * (with --validate, 8-25 % of the relay's CPU per message).  Only messages
 * that were already waiting are held back, by at most FLUSH_EVERY - 1
 * checks (about 0.5 ms); 256 at a time was slower again.  unchanged: they
 * go out in the frames they came in, which the I/O thread allocated and
 * now frees (a copy each, and frees across threads, less).
 */
static void
forward_all(void *out, struct ready *ready, size_t *n, bool unchanged,
    struct relay_stats *st)
{
	size_t i;

	for (i = 0; i < *n; i++)
		forward_checked(out, ready[i].m, &ready[i].f, unchanged, st);
	*n = 0;
}

/* Forward what the workers checked, in arrival order, as far as it is. */
static void
forward_ready(struct relay_pool *pool, void *out, struct relay_stats *st)
{
	struct zep_frames f;
	struct fm_msg *m;
	bool unchanged;

	while (relay_pool_next(pool, &m, &f, &unchanged))
		forward_checked(out, m, &f, unchanged, st);
}

/*
 * Read one message off the inbound socket and check it; NULL if dropped.
 * keep: where the frames it came in go when it is not dropped (the caller
 * closes or sends them), or NULL to close them here.
 */
static struct fm_msg *
receive_one(void *in, const struct fm_config *cfg, size_t max,
    struct relay_stats *st, bool *empty, struct zep_frames *keep)
{
	struct zep_frames f;
	struct fm_msg *m;
	char err[FM_ERRLEN];
	enum zep_rc rc = zep_recv(in, ZMQ_DONTWAIT, max, &f);

	*empty = rc == ZEP_AGAIN || rc == ZEP_ERROR;
	if (rc == ZEP_BAD_COUNT || rc == ZEP_TOO_BIG) {
		st->bad_frames++;
		log_warn("dropped a message with %s", rc == ZEP_TOO_BIG ?
		    "an oversize frame" : "a frame count other than two");
	}
	if (rc != ZEP_OK)
		return NULL;
	if (fm_msg_parse(zmq_msg_data(&f.body), zmq_msg_size(&f.body),
	    &cfg->limits, &m, err) < 0) {
		st->bad_json++;
		log_warn("dropped a message that is not a fedmsg envelope: %s",
		    err);
		m = NULL;
	} else if (!zep_topic_matches(&f, m)) {
		st->topic_mismatch++;
		log_warn("dropped %s: topic frame '%.*s' is not the body's topic",
		    fm_msg_id(m) ? fm_msg_id(m) : "-",
		    (int)zmq_msg_size(&f.topic), (char *)zmq_msg_data(&f.topic));
		fm_msg_unref(m);
		m = NULL;
	}
	if (m && keep)
		*keep = f;
	else
		zep_frames_close(&f);
	return m;
}

int
relay_run(const struct fm_config *cfg, const struct relay_opts *o,
    volatile sig_atomic_t *stop, struct relay_stats *st)
{
	void *ctx = zep_context(cfg), *in = NULL, *out = NULL;
	struct relay_pool *pool = NULL;	/* --threads N > 1: the workers */
	struct ready ready[FLUSH_EVERY];	/* checked, not yet sent */
	size_t nready = 0;
	struct fm_validator *v = NULL;
	size_t i, max = cfg->limits.max_message_bytes ?
	    cfg->limits.max_message_bytes : FM_DEFAULT_MAX_MESSAGE_BYTES;
	unsigned threads = o->threads ? o->threads : 1;
	/* forwarded unchanged (not signed): the frames it came in go out */
	bool unchanged = o->signer == NULL;
	const char *ri[1] = { cfg->relay_inbound };
	const char **outs = NULL;
	char bound[512], err[FM_ERRLEN];
	time_t last_stats = time(NULL);
	int rc = -1;

	memset(st, 0, sizeof(*st));
	if (cfg->relay_inbound == NULL) {
		log_err("relay_inbound is not set in the config");
		return -1;
	}
	if ((in = zep_bind_first(ctx, cfg, ZMQ_XSUB, ri, 1, false, bound,
	    sizeof(bound), err)) == NULL) {
		log_err("inbound: %s", err);
		goto done;
	}
	zmq_send(in, "\x01", 1, 0);	/* XSUB: subscribe to everything */
	log_info("inbound (XSUB) bound on %s", bound);
	{
		size_t n = fm_config_endpoint_count(cfg, "relay_outbound");

		if ((outs = calloc(n ? n : 1, sizeof(*outs))) == NULL)
			goto done;
		for (i = 0; i < n; i++)
			outs[i] = fm_config_endpoint(cfg, "relay_outbound", i);
		if (n == 0) {
			log_err("endpoints has no 'relay_outbound' entry");
			goto done;
		}
		if ((out = zep_bind_first(ctx, cfg, ZMQ_PUB, outs, n, true, bound,
		    sizeof(bound), err)) == NULL) {
			log_err("outbound: %s", err);
			goto done;
		}
		log_info("outbound (PUB) bound on %s", bound);
	}
	if (o->validate && (v = fm_config_validator(cfg, err)) == NULL) {
		log_err("%s", err);
		goto done;
	}
	if (threads > 1 && (v || o->signer)) {
		if ((pool = relay_pool_new(ctx, threads, o, v, err)) == NULL) {
			log_err("%s", err);
			goto done;
		}
		log_info("validating/signing on %u threads",
		    threads < RELAY_POOL_MAX_THREADS ? threads :
		    RELAY_POOL_MAX_THREADS);
	}

	while (!*stop) {
		/* a full ring: read nothing until results come back */
		size_t room = pool ? relay_pool_room(pool) : BATCH;
		zmq_pollitem_t items[2] = {
			{ in, 0, room ? ZMQ_POLLIN : 0, 0 },
			{ pool ? relay_pool_results(pool) : NULL, 0, ZMQ_POLLIN,
			    0 },
		};
		int n;

		n = zmq_poll(items, pool ? 2 : 1, 1000);
		if (n < 0 && errno != EINTR) {
			log_err("poll: %s", zmq_strerror(errno));
			break;
		}
		if (n > 0 && (items[0].revents & ZMQ_POLLIN)) {
			for (i = 0; i < BATCH && i < room; i++) {
				bool empty;
				struct zep_frames f;
				struct fm_msg *m = receive_one(in, cfg, max, st,
				    &empty, unchanged ? &f : NULL);

				if (empty)
					break;
				if (m == NULL)
					continue;
				if (pool) {
					relay_pool_add(pool, m,
					    unchanged ? &f : NULL);
					continue;
				}
				if ((m = relay_check(o, v, m, &st->invalid,
				    &st->sign_failed)) != NULL) {
					ready[nready].m = m;
					if (unchanged)
						ready[nready].f = f;
					nready++;
				} else if (unchanged) {
					zep_frames_close(&f);
				}
				if (nready == FLUSH_EVERY)
					forward_all(out, ready, &nready,
					    unchanged, st);
			}
			forward_all(out, ready, &nready, unchanged, st);
			if (pool)
				relay_pool_flush(pool);
		}
		if (n > 0 && pool && (items[1].revents & ZMQ_POLLIN)) {
			relay_pool_collect(pool);
			forward_ready(pool, out, st);
		}
		if (o->stats_interval &&
		    time(NULL) - last_stats >= (time_t)o->stats_interval) {
			log_stats(st);
			last_stats = time(NULL);
		}
	}
	rc = 0;
done:
	if (pool) {	/* what the workers still hold goes out, in order */
		relay_pool_stop(pool, &st->invalid, &st->sign_failed);
		forward_ready(pool, out, st);
		relay_pool_free(pool);
	}
	zep_close_now(in);
	zep_close_now(out);
	free(outs);
	fm_validator_free(v);
	log_stats(st);
	return rc;
}

/* ---- the command line shared by fedmsg-relay and fedmsg-signing-relay -- */

static const char usage[] =
"usage: %s [--config PATH] [--validate] [--threads N]\n"
"           [--stats SECONDS] [-v] [-h]\n"
"\n"
"Binds relay_inbound (for active publishers) and the first free URL of\n"
"endpoints[\"relay_outbound\"], and forwards every message%s.\n"
"Messages with a frame count other than two, an oversize frame, a body\n"
"that is not a JSON object or a topic frame that differs from the body's\n"
"topic are dropped, counted and logged.\n"
"\n"
"  --config PATH     config file or directory (default $FEDMSG_CONFIG,\n"
"                    else /etc/fedmsg.d)\n"
"  --validate        also drop messages whose signature is not valid\n"
"                    (fedmsg's relay never validates)\n"
"  --threads N       validate/sign on N threads (order kept)\n"
"  --stats SECONDS   log counters every SECONDS\n"
"  -v, --verbose     log more\n"
"  -h, --help        this text\n";

int
relay_main(int argc, char **argv, const char *prog, bool signing)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "validate", no_argument, NULL, 'V' },
		{ "threads", required_argument, NULL, 't' },
		{ "stats", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static volatile sig_atomic_t stop;
	struct relay_opts o;
	struct relay_stats st;
	struct fm_config *cfg;
	const char *config = NULL;
	enum fm_log_level level = FM_LOG_INFO;
	char err[FM_ERRLEN];
	const char *what = signing ? " signed with certnames[\"signing_relay\"]\n"
	    "(an old signature is replaced, never signed over)" : " unchanged";
	int c, rc;

	memset(&o, 0, sizeof(o));
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'V': o.validate = true; break;
		case 't': o.threads = (unsigned)atoi(optarg); break;
		case 's': o.stats_interval = (unsigned)atoi(optarg); break;
		case 'v': level = FM_LOG_DEBUG; break;
		case 'h':
			printf(usage, prog, what);
			return 0;
		default:
			fprintf(stderr, usage, prog, what);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, usage, prog, what);
		return 2;
	}
	log_init(prog, level);
	heap_keep_freed();	/* a page fault per message otherwise */
	if (fm_config_load(config, &cfg, err) < 0) {
		log_err("%s", err);
		return 2;
	}
	if (signing &&
	    (o.signer = fm_config_signer(cfg, "signing_relay", err)) == NULL) {
		log_err("%s", err);
		fm_config_free(cfg);
		return 2;
	}
	catch_stop_signals(&stop);
	rc = relay_run(cfg, &o, &stop, &st);
	fm_signer_free(o.signer);
	fm_config_free(cfg);
	zep_shutdown();
	return rc < 0 ? 1 : 0;
}
