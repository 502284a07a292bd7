/*
 * The relay loop (relay.h).
 *
 * One thread owns the sockets: it receives, checks the frames and the
 * topic, and forwards the exact body bytes.  When messages must be
 * validated or signed and more than one thread is asked for, that work
 * goes to worker threads over inproc sockets, sharded by topic so that
 * each topic keeps its order; workers hand the results back to the socket
 * thread, which alone sends (ZeroMQ sockets are not thread-safe).
 * Messages cross threads as pointers: the message itself is immutable.
 * Pointers go in batches, one ZeroMQ message per worker per poll wake-up
 * (and one back per batch): a hand-off per message cost a wake-up of the
 * other thread each, which made 2 threads slower than 1.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fedmsg/message.h>

#include "config.h"
#include "heap.h"
#include "log.h"
#include "relay.h"
#include "signals.h"
#include "zep.h"

#define MAX_WORKERS	64
#define BATCH		256	/* messages read per poll wake-up */
#define FLUSH_EVERY	32	/* checked messages sent together at most */

struct worker {
	pthread_t		 thread;
	bool			 started;
	void			*feed;		/* PAIR, socket thread's end */
	void			*in;		/* PAIR, the worker's end */
	void			*back;		/* PUSH: worker -> socket thread */
	const struct relay_opts	*o;
	struct fm_validator	*validator;	/* shared, thread-safe */
	/* counters owned by the worker, read after join */
	uint64_t		 invalid, sign_failed;
};

/*
 * Validate and/or sign one message.  Returns the message to forward (a
 * reference the caller owns) or NULL when it is dropped.
 */
static struct fm_msg *
process(const struct relay_opts *o, struct fm_validator *v, struct fm_msg *m,
    uint64_t *invalid, uint64_t *sign_failed)
{
	char err[FM_ERRLEN];
	struct fm_msg *out;

	if (v && fm_validator_check(v, m, err) != FM_VALID) {
		(*invalid)++;
		log_warn("dropped invalid message %s on %s: %s",
		    fm_msg_id(m) ? fm_msg_id(m) : "-", fm_msg_topic(m), err);
		fm_msg_unref(m);
		return NULL;
	}
	if (o->signer == NULL)
		return m;
	if (fm_signer_sign(o->signer, m, &out, err) < 0) {
		(*sign_failed)++;
		log_warn("cannot sign %s: %s", fm_msg_id(m) ?
		    fm_msg_id(m) : "-", err);
		out = NULL;
	}
	fm_msg_unref(m);
	return out;
}

/* Send a batch of n message pointers on s; on failure drop them. */
static void
send_batch(void *s, struct fm_msg **batch, size_t n)
{
	size_t i;

	if (n && zmq_send(s, batch, n * sizeof(*batch), 0) < 0)
		for (i = 0; i < n; i++)
			fm_msg_unref(batch[i]);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct fm_msg *in[BATCH], *out[BATCH];

	for (;;) {
		int n = zmq_recv(w->in, in, sizeof(in), 0);
		size_t i, k = 0, count;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || n % (int)sizeof(in[0]) != 0 ||
		    n > (int)sizeof(in) || in[0] == NULL)
			break;		/* a NULL pointer: stop */
		count = (size_t)n / sizeof(in[0]);
		for (i = 0; i < count; i++)
			if ((out[k] = process(w->o, w->validator, in[i],
			    &w->invalid, &w->sign_failed)) != NULL)
				k++;
		send_batch(w->back, out, k);
	}
	return NULL;
}

static uint32_t
topic_hash(const char *s)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

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
		if (unchanged)
			forward_frames(out, &ready[i].f, ready[i].m, st);
		else
			forward(out, ready[i].m, st);
	*n = 0;
}

/* Forward the batches the workers sent back, as many as are there. */
static void
forward_back(void *back, void *out, struct relay_stats *st)
{
	struct fm_msg *batch[BATCH];
	int n;

	while ((n = zmq_recv(back, batch, sizeof(batch), ZMQ_DONTWAIT)) > 0) {
		size_t i, count = (size_t)n / sizeof(batch[0]);

		for (i = 0; i < count; i++)
			forward(out, batch[i], st);
	}
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

static void
close_socket(void *s)
{
	int zero = 0;

	if (s) {
		zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_close(s);
	}
}

int
relay_run(const struct fm_config *cfg, const struct relay_opts *o,
    volatile sig_atomic_t *stop, struct relay_stats *st)
{
	void *ctx = zep_context(cfg), *in = NULL, *out = NULL, *back = NULL;
	struct worker workers[MAX_WORKERS];
	/* per worker k, the pointers read in this wake-up: BATCH from k */
	struct fm_msg **pending = NULL;
	size_t npending[MAX_WORKERS] = { 0 };
	struct ready ready[FLUSH_EVERY];	/* checked, not yet sent */
	size_t nready = 0;
	struct fm_validator *v = NULL;
	size_t nw = 0, i, max = cfg->limits.max_message_bytes ?
	    cfg->limits.max_message_bytes : FM_DEFAULT_MAX_MESSAGE_BYTES;
	unsigned threads = o->threads ? o->threads : 1;
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
		char url[64];

		if (threads > MAX_WORKERS)
			threads = MAX_WORKERS;
		if ((pending = calloc((size_t)threads * BATCH,
		    sizeof(*pending))) == NULL)
			goto done;
		snprintf(url, sizeof(url), "inproc://relay-back-%p", (void *)st);
		if ((back = zmq_socket(ctx, ZMQ_PULL)) == NULL ||
		    zmq_bind(back, url) < 0)
			goto done;
		for (nw = 0; nw < threads; nw++) {
			struct worker *w = &workers[nw];
			char wurl[96];

			memset(w, 0, sizeof(*w));
			w->o = o;
			w->validator = v;
			snprintf(wurl, sizeof(wurl), "%s-%zu", url, nw);
			w->feed = zmq_socket(ctx, ZMQ_PAIR);
			w->in = zmq_socket(ctx, ZMQ_PAIR);
			w->back = zmq_socket(ctx, ZMQ_PUSH);
			if (w->feed == NULL || w->in == NULL || w->back == NULL)
				goto done;
			/* pointers in flight are never dropped: no HWM */
			zmq_setsockopt(w->feed, ZMQ_SNDHWM, &(int){ 0 }, sizeof(int));
			zmq_setsockopt(w->back, ZMQ_SNDHWM, &(int){ 0 }, sizeof(int));
			if (zmq_bind(w->feed, wurl) < 0 ||
			    zmq_connect(w->in, wurl) < 0 ||
			    zmq_connect(w->back, url) < 0 ||
			    pthread_create(&w->thread, NULL, worker_main, w) != 0)
				goto done;
			w->started = true;
		}
		log_info("validating/signing on %zu threads", nw);
	}

	while (!*stop) {
		zmq_pollitem_t items[2] = {
			{ in, 0, ZMQ_POLLIN, 0 },
			{ back, 0, ZMQ_POLLIN, 0 },
		};
		int n;

		n = zmq_poll(items, back ? 2 : 1, 1000);
		if (n < 0 && errno != EINTR) {
			log_err("poll: %s", zmq_strerror(errno));
			break;
		}
		if (n > 0 && (items[0].revents & ZMQ_POLLIN)) {
			for (i = 0; i < BATCH; i++) {
				bool empty;
				struct zep_frames f;
				/* forwarded unchanged (not signed, one thread):
				   the frames it came in go out again */
				struct fm_msg *m = receive_one(in, cfg, max, st,
				    &empty, nw == 0 && o->signer == NULL ? &f :
				    NULL);

				if (empty)
					break;
				if (m == NULL)
					continue;
				if (nw) {
					size_t k = topic_hash(fm_msg_topic(m)) %
					    nw;

					pending[k * BATCH + npending[k]++] = m;
					continue;
				}
				if ((m = process(o, v, m, &st->invalid,
				    &st->sign_failed)) != NULL) {
					ready[nready].m = m;
					if (o->signer == NULL)
						ready[nready].f = f;
					nready++;
				} else if (o->signer == NULL) {
					zep_frames_close(&f);
				}
				if (nready == FLUSH_EVERY)
					forward_all(out, ready, &nready,
					    o->signer == NULL, st);
			}
			forward_all(out, ready, &nready, o->signer == NULL,
			    st);
			for (i = 0; i < nw; i++) {
				send_batch(workers[i].feed, pending + i * BATCH,
				    npending[i]);
				npending[i] = 0;
			}
		}
		if (n > 0 && back && (items[1].revents & ZMQ_POLLIN))
			forward_back(back, out, st);
		if (o->stats_interval &&
		    time(NULL) - last_stats >= (time_t)o->stats_interval) {
			log_stats(st);
			last_stats = time(NULL);
		}
	}
	rc = 0;
done:
	for (i = 0; i < nw && i < MAX_WORKERS; i++) {
		struct worker *w = &workers[i];
		struct fm_msg *none = NULL;

		if (w->started) {
			zmq_send(w->feed, &none, sizeof(none), 0);
			pthread_join(w->thread, NULL);
		}
		st->invalid += w->invalid;
		st->sign_failed += w->sign_failed;
		close_socket(w->feed);
		close_socket(w->in);
		close_socket(w->back);
	}
	if (back)	/* results that arrived after the last poll */
		forward_back(back, out, st);
	close_socket(back);
	free(pending);
	close_socket(in);
	close_socket(out);
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
"  --threads N       validate/sign on N threads (order kept per topic)\n"
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
