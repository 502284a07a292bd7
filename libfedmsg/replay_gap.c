/*
 * The gap tracker (replay.h): it asks for exactly the missing range
 * (fedmsg asks for the already-seen "last" too) and uses every message of
 * the reply (fedmsg uses the first).
 */

#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <zmq.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "replay.h"
#include "zep.h"

/* The most messages one gap query asks for. */
#define GAP_MAX_REQUEST		10000

struct tracked {
	char		*name;
	char		*url;		/* as configured, for logs */
	char		*connect;	/* a "*" host made 127.0.0.1 */
	int64_t		 last;
	bool		 known;
};

struct gap_tracker {
	void			*ctx;
	struct fm_limits	 lim;
	int			 default_timeout_ms;
	struct tracked		*t;
	size_t			 n;
	_Atomic uint64_t	 missed, recovered;
};

/* fedmsg connects a URL whose host is "*" to 127.0.0.1 instead. */
static char *
connect_url(const char *url)
{
	const char *p = strstr(url, "://");
	char *out;

	if (p == NULL || p[3] != '*' || (p[4] != ':' && p[4] != '\0'))
		return strdup(url);
	if ((out = malloc(strlen(url) + 16)) == NULL)
		return NULL;
	sprintf(out, "%.*s127.0.0.1%s", (int)(p + 3 - url), url, p + 4);
	return out;
}

struct gap_tracker *
gap_tracker_new(const struct fm_config *cfg)
{
	json_t *re = fm_config_get(cfg, "replay_endpoints"), *v;
	struct gap_tracker *gt;
	const char *name;

	if (!json_is_object(re) || json_object_size(re) == 0)
		return NULL;
	if ((gt = calloc(1, sizeof(*gt))) == NULL ||
	    (gt->t = calloc(json_object_size(re), sizeof(*gt->t))) == NULL)
		goto oom;
	gt->ctx = zep_context(cfg);
	gt->lim = cfg->limits;
	gt->default_timeout_ms = cfg->timeout > 0 && cfg->timeout < 86400 ?
	    (int)(cfg->timeout * 1000) : 2000;
	atomic_init(&gt->missed, 0);
	atomic_init(&gt->recovered, 0);
	json_object_foreach(re, name, v) {
		struct tracked *t = &gt->t[gt->n];

		if (!json_is_string(v)) {
			log_warn("replay_endpoints[%s] is not a URL; ignored",
			    name);
			continue;
		}
		gt->n++;
		if ((t->name = strdup(name)) == NULL ||
		    (t->url = strdup(json_string_value(v))) == NULL ||
		    (t->connect = connect_url(t->url)) == NULL)
			goto oom;
	}
	if (gt->n == 0) {
		gap_tracker_free(gt);
		return NULL;
	}
	return gt;
oom:
	log_err("gap tracking: out of memory; replay is off");
	gap_tracker_free(gt);
	return NULL;
}

void
gap_tracker_free(struct gap_tracker *gt)
{
	size_t i;

	if (gt == NULL)
		return;
	for (i = 0; i < gt->n; i++) {
		free(gt->t[i].name);
		free(gt->t[i].url);
		free(gt->t[i].connect);
	}
	free(gt->t);
	free(gt);
}

void
gap_stats(const struct gap_tracker *gt, uint64_t *missed, uint64_t *recovered)
{
	if (missed)
		*missed = gt ? atomic_load(&gt->missed) : 0;
	if (recovered)
		*recovered = gt ? atomic_load(&gt->recovered) : 0;
}

/*
 * Ask t's replay endpoint for [first, last] (at most GAP_MAX_REQUEST) and
 * keep the messages of that range, in "i" order, one per "i" (the first
 * the server sent).  Returns their count or -1 (logged).
 */
static ssize_t
fetch(struct gap_tracker *gt, struct tracked *t, int64_t first, int64_t last,
    int timeout_ms, struct fm_msg ***out)
{
	char query[80], why[FM_ERRLEN] = "", skip1[FM_ERRLEN] = "";
	size_t span = (size_t)((uint64_t)last - (uint64_t)first) + 1;
	struct fm_msg **slot;
	size_t frames = 0, skipped = 0, k, w;
	int linger = 0;
	int64_t maxmsg = (int64_t)(gt->lim.max_message_bytes ?
	    gt->lim.max_message_bytes : FM_DEFAULT_MAX_MESSAGE_BYTES);
	int64_t deadline = clock_ms() + timeout_ms;
	void *sock = NULL;
	bool more = true;
	int n, rc;

	if ((slot = calloc(span, sizeof(*slot))) == NULL) {
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	if (gt->ctx == NULL || (sock = zmq_socket(gt->ctx, ZMQ_REQ)) == NULL) {
		snprintf(why, sizeof(why), "socket: %s", zmq_strerror(errno));
		goto fail;
	}
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	if (zmq_connect(sock, t->connect) < 0) {
		snprintf(why, sizeof(why), "connect: %s", zmq_strerror(errno));
		goto fail;
	}
	/* fedmsg's canonical JSON of {"seq_id_range": [first, last]} */
	n = snprintf(query, sizeof(query), "{\"seq_id_range\":[%" PRId64 ",%"
	    PRId64 "]}", first, last);
	if (zmq_send(sock, query, (size_t)n, ZMQ_DONTWAIT) < 0) {
		snprintf(why, sizeof(why), "send: %s", zmq_strerror(errno));
		goto fail;
	}
	for (;;) {
		zmq_pollitem_t pi = { sock, 0, ZMQ_POLLIN, 0 };
		int64_t left = deadline - clock_ms();

		rc = zmq_poll(&pi, 1, left > 0 ? (long)left : 0);
		if (rc > 0)
			break;
		if (rc == 0 || left <= 0) {
			snprintf(why, sizeof(why), "no answer within %d ms",
			    timeout_ms);
			goto fail;
		}
		if (errno != EINTR) {
			snprintf(why, sizeof(why), "poll: %s",
			    zmq_strerror(errno));
			goto fail;
		}
	}
	/* The frames of one reply arrive together. */
	while (more) {
		zmq_msg_t m;
		struct fm_msg *msg;
		char perr[FM_ERRLEN];
		int64_t i;
		size_t len;
		const char *data;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			snprintf(why, sizeof(why), "receive: %s",
			    zmq_strerror(errno));
			goto fail;
		}
		more = zmq_msg_more(&m);
		data = zmq_msg_data(&m);
		len = zmq_msg_size(&m);
		frames++;
		if (frames == 1 && !more && len >= 7 &&
		    memcmp(data, "error: ", 7) == 0) {
			snprintf(why, sizeof(why), "%.*s", (int)(len > 200 ?
			    200 : len), data);
			zmq_msg_close(&m);
			goto fail;
		}
		rc = fm_msg_parse(data, len, &gt->lim, &msg, perr);
		zmq_msg_close(&m);
		if (rc == 0 && fm_msg_seq(msg, &i) && i >= first && i <= last) {
			k = (size_t)((uint64_t)i - (uint64_t)first);
			if (slot[k] == NULL) {
				slot[k] = msg;
				continue;
			}
			snprintf(perr, sizeof(perr), "a second message %"
			    PRId64, i);
		} else if (rc == 0) {
			snprintf(perr, sizeof(perr), "not in [%" PRId64 ", %"
			    PRId64 "]", first, last);
		}
		fm_msg_unref(msg);
		if (skipped++ == 0)
			snprintf(skip1, sizeof(skip1), "frame %zu: %s", frames,
			    perr);
	}
	zmq_close(sock);
	if (skipped > 0)
		log_warn("replay from %s (%s): %zu of %zu reply frame(s) "
		    "skipped; first: %s", t->name, t->url, skipped, frames,
		    skip1);
	for (k = 0, w = 0; k < span; k++)
		if (slot[k] != NULL)
			slot[w++] = slot[k];
	if (w == 0) {
		free(slot);
		slot = NULL;
	}
	*out = slot;
	return (ssize_t)w;
fail:
	if (sock != NULL)
		zmq_close(sock);
	for (k = 0; slot != NULL && k < span; k++)
		fm_msg_unref(slot[k]);
	free(slot);
	log_warn("replay from %s (%s) failed: %s", t->name, t->url, why);
	return -1;
}

ssize_t
gap_check(struct gap_tracker *gt, const char *name, const struct fm_msg *msg,
    int timeout_ms, struct fm_msg ***missing)
{
	struct tracked *t = NULL;
	int64_t i, first;
	uint64_t gap, lost = 0;
	ssize_t n;
	size_t k;

	*missing = NULL;
	if (gt == NULL || name == NULL || !fm_msg_seq(msg, &i))
		return 0;
	for (k = 0; k < gt->n && t == NULL; k++)
		if (strcmp(gt->t[k].name, name) == 0)
			t = &gt->t[k];
	if (t == NULL)
		return 0;
	if (!t->known || (t->last < INT64_MAX && i == t->last + 1)) {
		t->known = true;
		t->last = i;
		return 0;
	}
	if (i == t->last)
		return 0;		/* a duplicate */
	if (i < t->last) {
		log_info("%s restarted: message %" PRId64 " after %" PRId64
		    "; tracking it again", name, i, t->last);
		t->last = i;
		return 0;
	}
	/* i > last + 1; the difference fits in uint64_t */
	gap = (uint64_t)i - (uint64_t)t->last - 1;
	first = t->last + 1;
	t->last = i;
	atomic_fetch_add(&gt->missed, gap);
	if (gap > GAP_MAX_REQUEST) {
		lost = gap - GAP_MAX_REQUEST;
		first = i - GAP_MAX_REQUEST;
		log_warn("%s: %" PRIu64 " messages missed; asking for the "
		    "newest %d only", name, gap, GAP_MAX_REQUEST);
	}
	log_debug("%s: messages %" PRId64 "..%" PRId64 " missed; asking %s",
	    name, first, i - 1, t->url);
	n = fetch(gt, t, first, i - 1, timeout_ms < 0 ?
	    gt->default_timeout_ms : timeout_ms, missing);
	if (n < 0)
		return -1;
	atomic_fetch_add(&gt->recovered, (uint64_t)n);
	if ((uint64_t)n < gap - lost)
		log_warn("%s: %" PRIu64 " of %" PRIu64 " missed messages "
		    "could not be replayed", name, gap - lost - (uint64_t)n,
		    gap - lost);
	return n;
}
