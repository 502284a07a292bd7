/*
 * fedmsg-git-hook's outbox (hook_out.h): brokers/spool.c on disk, then
 * libfedmsg's active publisher.  A record is acknowledged once ZeroMQ took
 * it on a connection the relay had subscribed on (fm_publisher_open waits
 * for that), so a message is sent once under its msg_id, or stays spooled.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fedmsg/bus.h>
#include <fedmsg/message.h>

#include "hook_out.h"
#include "log.h"
#include "spool.h"

/* side spools: "<DIR>/side-<13-digit epoch ms>-<pid>" (ho_open), so
 * that their names sort oldest first */
#define SIDE_PREFIX	"side-"

struct hook_out {
	struct fm_config	*cfg;
	struct spool		*sp;
	char			*side;	/* sp is this side spool, not DIR */
	struct hook_broker	*broker;	/* borrowed; NULL: the relay */
	/* Without a spool: the bodies in memory, sent once. */
	char			**mem;
	size_t			*mem_len, n_mem, cap_mem;
	size_t			 mem_next;	/* the broker's next one */
	bool			*mem_done;	/* accepted by the broker */
};

int64_t
ho_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Remove a side spool's directory: its files, then itself. */
static void
remove_side(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	if (rmdir(path) < 0 && errno != ENOENT)	/* (another run took it) */
		log_warn("spool: cannot remove %s: %s", path, strerror(errno));
}

/*
 * Move the records of every side spool in DIR that no run holds into
 * sp (DIR's, held by this run, so no other run adopts at once), oldest
 * side first, and remove them.  A crash in between sends some twice,
 * under their msg_ids: never none.
 */
static void
adopt_sides(struct spool *sp, const char *dir, uint64_t max_bytes)
{
	struct dirent **names;
	char path[4096], err[256];
	int i, n;

	if ((n = scandir(dir, &names, NULL, alphasort)) < 0)
		return;
	for (i = 0; i < n; i++) {
		struct spool *side;
		const void *data;
		uint64_t id, nid;
		size_t len;
		bool moved = true;

		if (strncmp(names[i]->d_name, SIDE_PREFIX,
		    strlen(SIDE_PREFIX)) != 0 ||
		    snprintf(path, sizeof(path), "%s/%s", dir,
		    names[i]->d_name) >= (int)sizeof(path) ||
		    (side = spool_open(path, max_bytes, SPOOL_DROP_NEW, false,
		    err)) == NULL)
			continue;	/* its run still holds it */
		while (spool_next(side, &id, &data, &len, err) == 1) {
			if (spool_append(sp, data, len, &nid, err) != 0) {
				log_err("spool: %s kept: %s", path, err);
				moved = false;
				break;
			}
			spool_ack(side, id, err);
		}
		spool_close(side);
		if (moved) {
			log_info("spool: took over the messages of %s", path);
			remove_side(path);
		}
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

struct hook_out *
ho_open(struct fm_config *cfg, const char *dir, uint64_t max_bytes,
    int64_t deadline_ms)
{
	struct hook_out *h = calloc(1, sizeof(*h));
	char err[256], side[4096];
	struct timespec now;

	if (h == NULL)
		return NULL;
	h->cfg = cfg;
	if (dir == NULL)
		return h;
	/* Another push's run holds the spool (flock): wait for it. */
	for (;;) {
		h->sp = spool_open(dir, max_bytes, SPOOL_DROP_NEW, false, err);
		if (h->sp || ho_now_ms() >= deadline_ms)
			break;
		nanosleep(&(struct timespec){ 0, 50 * 1000000 }, NULL);
	}
	if (h->sp) {
		adopt_sides(h->sp, dir, max_bytes);
		return h;
	}
	/*
	 * Still held (that run waits on a relay that is down, say): a side
	 * spool of this run's own in DIR, which the next run holding DIR
	 * (or --flush) takes over if anything is left in it.
	 */
	log_warn("spool %s: %s; using a side spool", dir, err);
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(side, sizeof(side), "%s/%s%013lld-%ld", dir, SIDE_PREFIX,
	    (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000,
	    (long)getpid());
	if ((h->sp = spool_open(side, max_bytes, SPOOL_DROP_NEW, false,
	    err)) == NULL || (h->side = strdup(side)) == NULL)
		log_err("spool %s: %s; sending without a spool (messages are "
		    "lost if the relay is down)", side, err);
	return h;
}

void
ho_set_broker(struct hook_out *h, struct hook_broker *b)
{
	h->broker = b;
}

int
ho_add(struct hook_out *h, const char *body, size_t len)
{
	char err[256];
	uint64_t id;
	int rc;

	if (h->sp) {
		rc = spool_append(h->sp, body, len, &id, err);
		if (rc == 1)
			log_err("spool full: a message was dropped");
		else if (rc < 0)
			log_err("spool: %s", err);
		return rc == 0 ? 0 : -1;
	}
	if (h->n_mem == h->cap_mem) {
		size_t cap = h->cap_mem ? h->cap_mem * 2 : 16;
		char **m = realloc(h->mem, cap * sizeof(*m));
		size_t *l = m ? realloc(h->mem_len, cap * sizeof(*l)) : NULL;

		if (m)
			h->mem = m;
		if (l == NULL) {
			log_err("out of memory");
			return -1;
		}
		h->mem_len = l;
		h->cap_mem = cap;
	}
	if ((h->mem[h->n_mem] = malloc(len + 1)) == NULL) {
		log_err("out of memory");
		return -1;
	}
	memcpy(h->mem[h->n_mem], body, len);
	h->mem_len[h->n_mem++] = len;
	return 0;
}

static int
send_body(struct fm_publisher *p, const struct fm_config *cfg,
    const void *body, size_t len)
{
	struct fm_msg *m;
	char err[FM_ERRLEN];
	int rc;

	if (fm_msg_parse(body, len, &cfg->limits, &m, err) < 0) {
		/* Our own record, damaged: nothing better to do than skip. */
		log_err("spooled message unreadable, skipped: %s", err);
		return 0;
	}
	rc = fm_publisher_send(p, m, err);
	if (rc < 0)
		log_err("%s", err);
	else
		log_info("sent %s", fm_msg_id(m) ? fm_msg_id(m) : "?");
	fm_msg_unref(m);
	return rc;
}

/* The spool, or the bodies in memory, as the broker's source. */
static int
spool_src_next(void *ctx, uint64_t *token, const void **data, size_t *len)
{
	struct hook_out *h = ctx;
	char err[256];
	int rc = spool_next(h->sp, token, data, len, err);

	if (rc < 0)
		log_err("spool: %s", err);
	return rc == 1;
}

static void
spool_src_ack(void *ctx, uint64_t token)
{
	struct hook_out *h = ctx;
	char err[256];

	if (spool_ack(h->sp, token, err) < 0)
		log_err("spool: %s", err);
}

static int
mem_src_next(void *ctx, uint64_t *token, const void **data, size_t *len)
{
	struct hook_out *h = ctx;

	if (h->mem_next == h->n_mem)
		return 0;
	*token = h->mem_next;
	*data = h->mem[h->mem_next];
	*len = h->mem_len[h->mem_next++];
	return 1;
}

static void
mem_src_ack(void *ctx, uint64_t token)
{
	struct hook_out *h = ctx;

	if (token < h->n_mem)
		h->mem_done[token] = true;
}

static uint64_t
deliver_broker(struct hook_out *h, uint64_t pending, int64_t deadline_ms)
{
	struct hb_source src = { h, spool_src_next, spool_src_ack };
	struct spool_stats st;
	uint64_t sent, dropped = 0;
	size_t i;

	if (h->sp == NULL) {
		src = (struct hb_source){ h, mem_src_next, mem_src_ack };
		if ((h->mem_done = calloc(h->n_mem, sizeof(bool))) == NULL) {
			log_err("out of memory");
			return pending;
		}
	}
	sent = hb_deliver(h->broker, &h->cfg->limits, &src, deadline_ms,
	    &dropped);
	if (h->sp) {
		spool_stats(h->sp, &st);
		pending = st.pending;
	} else
		for (pending = 0, i = 0; i < h->n_mem; i++)
			pending += !h->mem_done[i];
	if (pending)
		log_warn("broker: %llu message(s) sent, %llu %s",
		    (unsigned long long)sent, (unsigned long long)pending,
		    h->sp ? "stay in the spool (delivered by the next push or "
		    "--flush)" : "lost");
	else
		log_info("%llu message(s) sent to the broker",
		    (unsigned long long)sent);
	return pending;
}

uint64_t
ho_deliver(struct hook_out *h, int64_t deadline_ms)
{
	struct fm_bus_opts o = FM_BUS_OPTS_INIT;
	struct fm_publisher *p;
	struct spool_stats st;
	char err[FM_ERRLEN];
	int64_t left = deadline_ms - ho_now_ms();
	uint64_t pending;
	size_t i;

	if (h->sp)
		spool_stats(h->sp, &st);
	pending = h->sp ? st.pending : h->n_mem;
	if (pending == 0)
		return 0;
	if (h->broker)
		return deliver_broker(h, pending, deadline_ms);
	o.config = h->cfg;
	o.name = "relay_inbound";
	o.active = 1;
	o.sign = 0;		/* signed when spooled */
	o.connect_timeout_ms = left > 1 ? (int)left : 1;
	/* Closing waits zmq_linger for the queue: keep it within the bound. */
	if (h->cfg->zmq_linger > left)
		h->cfg->zmq_linger = left > 0 ? left : 0;
	if ((p = fm_publisher_open(&o, err)) == NULL) {
		log_warn("%s; %llu message(s) %s", err,
		    (unsigned long long)pending, h->sp ? "stay in the spool "
		    "(delivered by the next push or --flush)" : "lost");
		return pending;
	}
	if (h->sp) {
		const void *data;
		uint64_t id;
		size_t len;

		while (spool_next(h->sp, &id, &data, &len, err) == 1) {
			if (send_body(p, h->cfg, data, len) < 0)
				break;
			if (spool_ack(h->sp, id, err) < 0)
				log_err("spool: %s", err);
		}
		spool_stats(h->sp, &st);
		pending = st.pending;
	} else {
		for (i = 0; i < h->n_mem; i++)
			if (send_body(p, h->cfg, h->mem[i], h->mem_len[i]) < 0)
				break;
		pending = h->n_mem - i;
	}
	fm_publisher_close(p);
	return pending;
}

void
ho_close(struct hook_out *h)
{
	struct spool_stats st;
	size_t i;

	if (h == NULL)
		return;
	if (h->sp)
		spool_stats(h->sp, &st);
	spool_close(h->sp);
	/* an emptied side spool goes; one with messages waits for a run */
	if (h->side && h->sp && st.pending == 0)
		remove_side(h->side);
	free(h->side);
	for (i = 0; i < h->n_mem; i++)
		free(h->mem[i]);
	free(h->mem);
	free(h->mem_len);
	free(h->mem_done);
	free(h);
}
