/*
 * The STOMP client session (see stomp.h), without I/O: bytes in
 * (stomp_session_input), events out (the callbacks), bytes to send out
 * (stomp_session_output), timers on the caller's clock.  The transport
 * that moves the bytes (failover, TCP, TLS) is stomp_conn.c; tests drive
 * a session in memory as well.
 *
 * Whatever ends a connection goes through fail() (an error: logged,
 * on_error(), then close_conn()) or close_conn() (the common path: parser,
 * output, receipts are dropped and the connection generation is bumped,
 * which makes old ack tokens stale and tells every loop in here to stop
 * touching the connection; the owner's closed() hook drops the stream).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fedmsg/message.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "stomp.h"
#include "stomp_frame.h"

#define OUT_KEEP_CAP	(1024 * 1024)	/* free a drained output buffer above */

struct sub {
	char	*id;
	char	*dest;
	char	*ack;
	char	**hdrs;		/* name, value, ..., NULL */
};

struct receipt {
	char	*id;		/* NULL once answered (out of order) */
	int64_t	 deadline;	/* 0 = not started yet */
};

struct stomp {
	/* configuration */
	char		*login, *passcode, *vhost;
	char		**connect_hdrs;
	unsigned	 cx, cy;
	unsigned	 connect_to, receipt_to, frame_to;
	size_t		 out_max, max_inflight;
	struct stomp_limits lim;
	struct stomp_callbacks cb;
	void		*arg;
	struct stomp_hooks hooks;
	void		*owner;

	/* the peer: set by the owner */
	char		*target;	/* URL text, for messages */
	char		*target_host;	/* default "host" header */
	bool		 target_tls;

	/* the connection */
	enum stomp_state st;
	bool		 running;	/* reconnect when the connection ends */
	bool		 announced;	/* on_connected() ran for it */
	uint64_t	 gen;		/* bumped at every close */
	struct stomp_parser *parser;
	uint64_t	 hb_seen;
	struct buf	 out;
	size_t		 out_off;
	char		 version[4];
	unsigned	 hb_tx, hb_rx;
	int64_t		 deadline;	/* connect or DISCONNECT receipt */
	int64_t		 last_rx, last_tx;
	int64_t		 connected_at;
	int64_t		 partial_since;
	uint64_t	 partial_frames;
	struct receipt	*rc;
	size_t		 rc_head, rc_len, rc_cap;
	size_t		 rc_new;	/* at the tail, timer not started */
	char		*disc_receipt;

	struct sub	*subs;
	size_t		 nsubs;
	size_t		 subs_unreceipted;	/* this connection's SUBSCRIBEs
						   not yet answered */

	struct buf	 token;
	char		 err[FM_ERRLEN];
	struct stomp_stats stats;
};

static const char *const state_names[] = {
	"disconnected", "connecting", "TLS handshake", "STOMP connecting",
	"connected", "disconnecting",
};

const char *
stomp_state_name(enum stomp_state st)
{
	return (unsigned)st < sizeof(state_names) / sizeof(state_names[0]) ?
	    state_names[st] : "?";
}

int64_t
stomp_now_ms(void)
{
	return clock_ms();
}

/* ---- small helpers ----------------------------------------------------- */

static char **
strv_dup(const char *const *v)
{
	size_t i, n = 0;
	char **d;

	while (v && v[n])
		n++;
	if ((d = calloc(n + 1, sizeof(*d))) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if ((d[i] = strdup(v[i])) == NULL) {
			while (i > 0)
				free(d[--i]);
			free(d);
			return NULL;
		}
	return d;
}

static void
strv_free(char **v)
{
	size_t i;

	for (i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static size_t
strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

static bool
has_crlf(const char *s)
{
	return s && strpbrk(s, "\r\n") != NULL;
}

static bool
in_session(const struct stomp *s)
{
	return s->st == STOMP_ST_STOMP_CONNECTING ||
	    s->st == STOMP_ST_CONNECTED || s->st == STOMP_ST_DISCONNECTING;
}

static size_t
out_pending(const struct stomp *s)
{
	return s->out.len - s->out_off;
}

/* ---- life cycle -------------------------------------------------------- */

static void
receipts_clear(struct stomp *s)
{
	size_t i;

	for (i = 0; i < s->rc_len; i++)
		free(s->rc[(s->rc_head + i) % s->rc_cap].id);
	s->rc_head = s->rc_len = s->rc_new = 0;
	s->subs_unreceipted = 0;
	free(s->disc_receipt);
	s->disc_receipt = NULL;
}

static void
sub_free(struct sub *sb)
{
	free(sb->id);
	free(sb->dest);
	free(sb->ack);
	strv_free(sb->hdrs);
}

struct stomp *
stomp_session_new(const struct stomp_opts *o, const struct stomp_hooks *h,
    void *owner, char *err)
{
	struct stomp *s;
	size_t i;

	if (has_crlf(o->login) || has_crlf(o->passcode) ||
	    has_crlf(o->vhost)) {
		snprintf(err, FM_ERRLEN, "STOMP login, passcode and host may "
		    "not contain CR or LF");
		return NULL;
	}
	for (i = 0; o->connect_headers && o->connect_headers[i]; i += 2)
		if (o->connect_headers[i + 1] == NULL ||
		    has_crlf(o->connect_headers[i]) ||
		    has_crlf(o->connect_headers[i + 1]) ||
		    strchr(o->connect_headers[i], ':') ||
		    !*o->connect_headers[i]) {
			snprintf(err, FM_ERRLEN, "bad STOMP CONNECT header "
			    "'%s'", o->connect_headers[i]);
			return NULL;
		}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	if ((o->login && (s->login = strdup(o->login)) == NULL) ||
	    (o->passcode && (s->passcode = strdup(o->passcode)) == NULL) ||
	    (o->vhost && (s->vhost = strdup(o->vhost)) == NULL) ||
	    (s->connect_hdrs = strv_dup(o->connect_headers)) == NULL ||
	    (s->parser = stomp_parser_new(&o->limits)) == NULL ||
	    (s->target = strdup("")) == NULL ||
	    (s->target_host = strdup("")) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		stomp_free(s);
		return NULL;
	}
	s->lim = o->limits;
	s->cx = o->hb_send_ms;
	s->cy = o->hb_recv_ms;
#define DEF(v, d) ((v) ? (v) : (d))
	s->connect_to = DEF(o->connect_timeout_ms,
	    STOMP_DEFAULT_CONNECT_TIMEOUT);
	s->receipt_to = DEF(o->receipt_timeout_ms,
	    STOMP_DEFAULT_RECEIPT_TIMEOUT);
	s->frame_to = DEF(o->frame_timeout_ms, STOMP_DEFAULT_FRAME_TIMEOUT);
	s->out_max = DEF(o->out_max, STOMP_DEFAULT_OUT_MAX);
	s->max_inflight = DEF(o->max_inflight, STOMP_DEFAULT_MAX_INFLIGHT);
#undef DEF
	s->cb = o->cb;
	s->arg = o->arg;
	if (h)
		s->hooks = *h;
	s->owner = owner;
	return s;
}

int
stomp_session_target(struct stomp *s, const char *url, const char *host,
    bool tls)
{
	char *t = strdup(url), *h = strdup(host);

	if (t == NULL || h == NULL) {
		free(t);
		free(h);
		return -1;
	}
	free(s->target);
	free(s->target_host);
	s->target = t;
	s->target_host = h;
	s->target_tls = tls;
	return 0;
}

void *
stomp_session_owner(const struct stomp *s)
{
	return s->owner;
}

uint64_t
stomp_session_generation(const struct stomp *s)
{
	return s->gen;
}

bool
stomp_session_running(const struct stomp *s)
{
	return s->running;
}

void
stomp_session_set_running(struct stomp *s, bool running)
{
	s->running = running;
}

/* Drop the connection's state; no callbacks. */
static void
drop_conn(struct stomp *s)
{
	if (s->parser)
		stomp_parser_reset(s->parser);
	s->hb_seen = 0;
	if (s->out.data)	/* maybe an unsent CONNECT: its passcode */
		explicit_bzero(s->out.data, s->out.len);
	if (s->out.oom || s->out.cap > OUT_KEEP_CAP)
		buf_free(&s->out);
	s->out.len = s->out_off = 0;
	receipts_clear(s);
	s->version[0] = '\0';
	s->hb_tx = s->hb_rx = 0;
	s->partial_since = 0;
	s->gen++;
	s->st = STOMP_ST_DISCONNECTED;
}

void
stomp_free(struct stomp *s)
{
	size_t i;

	if (s == NULL)
		return;
	if (s->hooks.free)
		s->hooks.free(s->owner);
	drop_conn(s);
	for (i = 0; i < s->nsubs; i++)
		sub_free(&s->subs[i]);
	free(s->subs);
	free(s->rc);
	free(s->login);
	if (s->passcode)
		explicit_bzero(s->passcode, strlen(s->passcode));
	free(s->passcode);
	free(s->vhost);
	free(s->target);
	free(s->target_host);
	strv_free(s->connect_hdrs);
	stomp_parser_free(s->parser);
	buf_free(&s->out);
	buf_free(&s->token);
	free(s);
}

/*
 * End the connection (reason for on_disconnected); the owner drops its
 * stream and, while running, schedules the next attempt.
 */
static void
close_conn(struct stomp *s, int64_t now, const char *reason)
{
	bool was = s->announced;
	int64_t connected_at = s->connected_at;
	char why[FM_ERRLEN];

	snprintf(why, sizeof(why), "%s", reason);
	drop_conn(s);
	s->announced = false;
	s->connected_at = 0;
	if (s->hooks.closed)
		s->hooks.closed(s->owner, now, connected_at);
	if (was && s->cb.on_disconnected)
		s->cb.on_disconnected(s->arg, why);
}

static void vfail(struct stomp *, int64_t, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

/* A failure: log, on_error(), close, reconnect later. */
static void
vfail(struct stomp *s, int64_t now, const char *fmt, va_list ap)
{
	uint64_t gen = s->gen;

	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	log_warn("stomp: %s", s->err);
	s->stats.failures++;
	if (s->cb.on_error)
		s->cb.on_error(s->arg, s->err);
	if (s->gen == gen && s->st != STOMP_ST_DISCONNECTED)
		close_conn(s, now, s->err);
}

static void fail(struct stomp *, int64_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail(struct stomp *s, int64_t now, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(s, now, fmt, ap);
	va_end(ap);
}

void
stomp_session_fail(struct stomp *s, int64_t now, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(s, now, fmt, ap);
	va_end(ap);
}

void
stomp_session_close(struct stomp *s, int64_t now, const char *reason)
{
	if (s->st != STOMP_ST_DISCONNECTED)
		close_conn(s, now, reason);
}

/* ---- output -------------------------------------------------------------- */

/*
 * Make room: drop what was written from the front of the buffer.  (A TLS
 * write being retried may see its bytes move: the context allows it.)
 */
static void
out_compact(struct stomp *s)
{
	if (s->out_off == 0)
		return;
	if (s->out_off == s->out.len) {
		s->out.len = s->out_off = 0;
	} else if (s->out_off >= 65536 && s->out_off >= s->out.len / 2) {
		memmove(s->out.data, s->out.data + s->out_off,
		    s->out.len - s->out_off);
		s->out.len -= s->out_off;
		s->out_off = 0;
	}
}

/* Queue a control frame (not subject to out_max). */
static int
queue(struct stomp *s, const char *command, const char *const *hdrs,
    unsigned flags)
{
	const char *why = NULL;

	out_compact(s);
	if (stomp_frame_build(&s->out, command, hdrs, NULL, 0, flags,
	    &why) < 0) {
		log_warn("stomp: cannot encode %s: %s", command, why);
		if (s->out.oom) {
			buf_free(&s->out);
			s->out_off = 0;
		}
		errno = EINVAL;
		return -1;
	}
	s->stats.frames_out++;
	return 0;
}

const void *
stomp_session_output(const struct stomp *s, size_t *len)
{
	*len = in_session(s) ? out_pending(s) : 0;
	return *len ? s->out.data + s->out_off : NULL;
}

void
stomp_session_output_done(struct stomp *s, size_t n, int64_t now)
{
	if (n > out_pending(s))
		n = out_pending(s);
	if (n) {
		s->out_off += n;
		s->stats.bytes_out += (uint64_t)n;
		s->last_tx = now;
	}
	if (out_pending(s) == 0) {
		/* the CONNECT frame holds the passcode: leave no copy */
		if (s->st == STOMP_ST_STOMP_CONNECTING && s->out.data)
			explicit_bzero(s->out.data, s->out.len);
		s->out.len = s->out_off = 0;
		if (s->out.cap > OUT_KEEP_CAP)
			buf_free(&s->out);
	}
}

/* ---- connecting ---------------------------------------------------------- */

void
stomp_session_attach(struct stomp *s, int64_t now)
{
	if (s->st != STOMP_ST_DISCONNECTED)
		close_conn(s, now, "disconnected");
	s->deadline = now + s->connect_to;
	s->st = STOMP_ST_CONNECTING;
}

void
stomp_session_handshaking(struct stomp *s)
{
	if (s->st == STOMP_ST_CONNECTING)
		s->st = STOMP_ST_TLS_HANDSHAKE;
}

void
stomp_session_open(struct stomp *s, int64_t now)
{
	const char *hdrs[16 + 1];
	char hb[32];
	size_t i, n = 0, extra = strv_len(s->connect_hdrs);
	const char **h = hdrs;
	int r;

	if (s->st == STOMP_ST_DISCONNECTED)
		s->deadline = now + s->connect_to;
	if (extra + 12 + 1 > sizeof(hdrs) / sizeof(hdrs[0]) &&
	    (h = calloc(extra + 13, sizeof(*h))) == NULL) {
		s->st = STOMP_ST_STOMP_CONNECTING;
		fail(s, now, "out of memory");
		return;
	}
	snprintf(hb, sizeof(hb), "%u,%u", s->cx, s->cy);
	h[n++] = "accept-version";
	h[n++] = "1.1,1.2";
	h[n++] = "host";
	h[n++] = s->vhost ? s->vhost : s->target_host;
	h[n++] = "login";
	h[n++] = s->login;
	h[n++] = "passcode";
	h[n++] = s->passcode;
	h[n++] = "heart-beat";
	h[n++] = hb;
	for (i = 0; i < extra; i++)
		h[n++] = s->connect_hdrs[i];
	h[n] = NULL;
	s->st = STOMP_ST_STOMP_CONNECTING;
	s->last_rx = s->last_tx = now;
	r = queue(s, "CONNECT", h, 0);
	if (h != hdrs)
		free(h);
	if (r != 0)
		fail(s, now, "cannot encode CONNECT");
}

/* ---- received frames ----------------------------------------------------- */

static int receipt_push(struct stomp *s, const char *id);

static struct sub *
find_sub(struct stomp *s, const char *id)
{
	size_t i;

	for (i = 0; id && i < s->nsubs; i++)
		if (strcmp(s->subs[i].id, id) == 0)
			return &s->subs[i];
	return NULL;
}

/*
 * A SUBSCRIBE asks for a RECEIPT (SUB_RECEIPT + its id): until it comes, an
 * ERROR naming no receipt is the SUBSCRIBE's (stomp_subscribing()), and
 * one that never comes ends the connection like a SEND's.
 */
static int
send_subscribe(struct stomp *s, const struct sub *sb)
{
	size_t i, n = 0, extra = strv_len(sb->hdrs);
	const char **h = calloc(extra + 9, sizeof(*h));
	char *rid = NULL;
	int r = -1;

	if (h == NULL || asprintf(&rid, "%s%s", SUB_RECEIPT, sb->id) < 0) {
		free(h);
		return -1;
	}
	h[n++] = "destination";
	h[n++] = sb->dest;
	h[n++] = "id";
	h[n++] = sb->id;
	h[n++] = "ack";
	h[n++] = sb->ack;
	h[n++] = "receipt";
	h[n++] = rid;
	for (i = 0; i < extra; i++)
		h[n++] = sb->hdrs[i];
	if (queue(s, "SUBSCRIBE", h, 0) == 0 && receipt_push(s, rid) == 0) {
		s->subs_unreceipted++;
		r = 0;
	}
	free(rid);
	free(h);
	return r;
}

/* "sx,sy" */
static void
parse_heartbeat(const char *v, unsigned long *sx, unsigned long *sy)
{
	char *e;

	*sx = *sy = 0;
	if (v == NULL)
		return;
	*sx = strtoul(v, &e, 10);
	if (*e != ',') {
		*sx = 0;
		return;
	}
	*sy = strtoul(e + 1, &e, 10);
	if (*e) {
		*sx = *sy = 0;
		return;
	}
	if (*sx > UINT_MAX / 4)
		*sx = UINT_MAX / 4;
	if (*sy > UINT_MAX / 4)
		*sy = UINT_MAX / 4;
}

static void
on_connected_frame(struct stomp *s, const struct stomp_frame *f, int64_t now)
{
	const char *v = stomp_frame_value(f, "version");
	const char *srv = stomp_frame_value(f, "server");
	unsigned long sx, sy;
	size_t i;

	if (v == NULL || strcmp(v, "1.0") == 0) {
		fail(s, now, "%s speaks only STOMP 1.0; 1.1 or 1.2 needed",
		    s->target);
		return;
	}
	if (strcmp(v, "1.2") != 0 && strcmp(v, "1.1") != 0) {
		fail(s, now, "%s answered with STOMP version '%s'; 1.1 or 1.2 "
		    "needed", s->target, v);
		return;
	}
	snprintf(s->version, sizeof(s->version), "%s", v);
	parse_heartbeat(stomp_frame_value(f, "heart-beat"), &sx, &sy);
	s->hb_tx = s->cx && sy ? (unsigned)(s->cx > sy ? s->cx : sy) : 0;
	s->hb_rx = s->cy && sx ? (unsigned)(s->cy > sx ? s->cy : sx) : 0;
	s->st = STOMP_ST_CONNECTED;
	s->connected_at = now;
	s->last_rx = now;
	s->stats.connects++;
	log_info("stomp: connected to %s (STOMP %s%s%s, heart-beats "
	    "send %u ms, receive %u ms)", s->target, s->version,
	    srv ? ", " : "", srv ? srv : "", s->hb_tx, s->hb_rx);
	for (i = 0; i < s->nsubs; i++)
		if (send_subscribe(s, &s->subs[i]) < 0) {
			fail(s, now, "cannot encode SUBSCRIBE %s",
			    s->subs[i].id);
			return;
		}
	s->announced = true;
	/* the owner writes the SUBSCRIBEs out after this input */
	if (s->cb.on_connected)
		s->cb.on_connected(s->arg, f);
}

/* ERROR frame text: "message: first line of the body". */
static void
error_text(const struct stomp_frame *f, char *buf, size_t len)
{
	const struct stomp_header *m = stomp_frame_header(f, "message");
	size_t bl = f->body_len, ml = 0;
	const char *nl;

	if ((nl = memchr(f->body, '\n', bl)) != NULL)
		bl = (size_t)(nl - f->body);
	if ((nl = memchr(f->body, '\0', bl)) != NULL)
		bl = (size_t)(nl - f->body);
	if (m) {
		ml = m->value_len;
		if ((nl = memchr(m->value, '\0', ml)) != NULL)
			ml = (size_t)(nl - m->value);
	}
	if (m && bl && (ml != bl || memcmp(m->value, f->body, bl) != 0))
		snprintf(buf, len, "%.*s: %.*s", (int)ml, m->value, (int)bl,
		    f->body);
	else if (m)
		snprintf(buf, len, "%.*s", (int)ml, m->value);
	else if (bl)
		snprintf(buf, len, "%.*s", (int)bl, f->body);
	else
		snprintf(buf, len, "(no message)");
}

/*
 * The token: "<gen>|2|<ack>" (STOMP 1.2 id) or
 * "<gen>|1|<len>|<message-id><subscription>" (1.1).
 */
static const char *
make_token(struct stomp *s, const struct stomp_frame *f)
{
	const char *sid = stomp_frame_value(f, "subscription");
	const char *ack = stomp_frame_value(f, "ack");
	const char *mid = stomp_frame_value(f, "message-id");
	struct sub *sb = find_sub(s, sid);

	if (sb && strcmp(sb->ack, "auto") == 0)
		return NULL;
	s->token.len = 0;
	if (strcmp(s->version, "1.2") == 0 && ack)
		buf_printf(&s->token, "%llu|2|%s", (unsigned long long)s->gen,
		    ack);
	else if (mid && sid)
		buf_printf(&s->token, "%llu|1|%zu|%s%s",
		    (unsigned long long)s->gen, strlen(mid), mid, sid);
	else {
		log_warn("stomp: MESSAGE without %s; cannot be acknowledged",
		    strcmp(s->version, "1.2") == 0 ? "ack header" :
		    "message-id/subscription");
		return NULL;
	}
	return s->token.oom ? NULL : s->token.data;
}

static void
on_receipt_frame(struct stomp *s, const struct stomp_frame *f, int64_t now)
{
	const char *id = stomp_frame_value(f, "receipt-id");
	size_t i, k;

	if (id == NULL) {
		log_warn("stomp: RECEIPT without receipt-id");
		return;
	}
	if (s->disc_receipt && strcmp(id, s->disc_receipt) == 0) {
		log_info("stomp: disconnected from %s", s->target);
		close_conn(s, now, "disconnected");
		return;
	}
	for (i = 0; i < s->rc_len; i++) {
		k = (s->rc_head + i) % s->rc_cap;
		if (s->rc[k].id && strcmp(s->rc[k].id, id) == 0)
			break;
	}
	if (i == s->rc_len) {
		log_debug("stomp: RECEIPT for unknown id '%s'", id);
		return;
	}
	free(s->rc[k].id);
	s->rc[k].id = NULL;
	while (s->rc_len && s->rc[s->rc_head].id == NULL) {
		s->rc_head = (s->rc_head + 1) % s->rc_cap;
		s->rc_len--;
	}
	if (strncmp(id, SUB_RECEIPT, strlen(SUB_RECEIPT)) == 0) {
		if (s->subs_unreceipted)
			s->subs_unreceipted--;
		return;		/* ours, not the owner's */
	}
	s->stats.receipts++;
	if (s->cb.on_receipt)
		s->cb.on_receipt(s->arg, id);
}

static void
dispatch(struct stomp *s, const struct stomp_frame *f, int64_t now)
{
	char text[FM_ERRLEN - 64];

	s->stats.frames_in++;
	if (strcmp(f->command, "ERROR") == 0) {
		const char *rid = stomp_frame_value(f, "receipt-id");

		error_text(f, text, sizeof(text));
		if (s->st != STOMP_ST_STOMP_CONNECTING && s->cb.on_error_frame)
			s->cb.on_error_frame(s->arg, rid, text);
		if (s->st == STOMP_ST_STOMP_CONNECTING)
			fail(s, now, "%s refused the connection: %s",
			    s->target, text);
		else if (rid)
			fail(s, now, "ERROR from %s (answering receipt "
			    "'%.40s'): %s", s->target, rid, text);
		else
			fail(s, now, "ERROR from %s: %s",
			    s->target, text);
		return;
	}
	if (s->st == STOMP_ST_STOMP_CONNECTING) {
		if (strcmp(f->command, "CONNECTED") == 0)
			on_connected_frame(s, f, now);
		else
			fail(s, now, "%s sent %s before CONNECTED",
			    s->target, f->command);
		return;
	}
	if (strcmp(f->command, "MESSAGE") == 0) {
		const char *tok;

		if (s->st != STOMP_ST_CONNECTED) {
			log_debug("stomp: MESSAGE while disconnecting dropped");
			return;
		}
		s->stats.messages++;
		tok = make_token(s, f);
		if (s->cb.on_message)
			s->cb.on_message(s->arg, f, tok);
	} else if (strcmp(f->command, "RECEIPT") == 0)
		on_receipt_frame(s, f, now);
	else
		log_warn("stomp: unexpected %s frame from %s ignored",
		    f->command, s->target);
}


/* ---- input --------------------------------------------------------------- */

void
stomp_session_input(struct stomp *s, const void *data, size_t n, int64_t now)
{
	uint64_t gen = s->gen, hb;
	struct stomp_frame f;
	enum stomp_result r;

	if (!in_session(s) || n == 0)
		return;
	s->stats.bytes_in += (uint64_t)n;
	s->last_rx = now;
	if (stomp_parser_feed(s->parser, data, n) < 0) {
		fail(s, now, "from %s: %s", s->target,
		    stomp_parser_error(s->parser));
		return;
	}
	while ((r = stomp_parser_next(s->parser, &f)) == STOMP_FRAME) {
		dispatch(s, &f, now);
		if (s->gen != gen)
			return;
	}
	hb = stomp_parser_heartbeats(s->parser);
	s->stats.heartbeats_in += hb - s->hb_seen;
	s->hb_seen = hb;
	if (r == STOMP_ERROR) {
		fail(s, now, "protocol error from %s: %s", s->target,
		    stomp_parser_error(s->parser));
		return;
	}
	if (stomp_parser_partial(s->parser) == 0)
		s->partial_since = 0;
	else if (s->partial_since == 0 ||
	    s->partial_frames != stomp_parser_frames(s->parser)) {
		s->partial_since = now;
		s->partial_frames = stomp_parser_frames(s->parser);
	}
}

void
stomp_session_input_end(struct stomp *s, int64_t now, const char *ioerr)
{
	const char *hint = s->target_tls ? "not a STOMP port" :
	    "TLS-only port or not a STOMP port";

	if (!in_session(s))
		return;
	if (ioerr == NULL) {
		if (s->st == STOMP_ST_DISCONNECTING)
			close_conn(s, now, "disconnected");
		else if (s->st == STOMP_ST_STOMP_CONNECTING)
			fail(s, now, "%s closed the connection before "
			    "CONNECTED (%s?)", s->target, hint);
		else
			fail(s, now, "%s closed the connection", s->target);
	} else if (s->st == STOMP_ST_STOMP_CONNECTING)
		fail(s, now, "read from %s before CONNECTED: %s (%s?)",
		    s->target, ioerr, hint);
	else
		fail(s, now, "read from %s: %s", s->target, ioerr);
}

/* ---- timers -------------------------------------------------------------- */

static void
min_at(int64_t *best, int64_t t)
{
	if (*best < 0 || t < *best)
		*best = t;
}

int
stomp_session_timeout_ms(const struct stomp *s, int64_t now_ms)
{
	int64_t at = -1;

	switch (s->st) {
	case STOMP_ST_DISCONNECTED:
		break;
	case STOMP_ST_CONNECTING:
	case STOMP_ST_TLS_HANDSHAKE:
	case STOMP_ST_STOMP_CONNECTING:
	case STOMP_ST_DISCONNECTING:
		min_at(&at, s->deadline);
		break;
	case STOMP_ST_CONNECTED:
		break;
	}
	if (s->st == STOMP_ST_CONNECTED || s->st == STOMP_ST_DISCONNECTING) {
		if (s->hb_rx)
			min_at(&at, s->last_rx + 2 * (int64_t)s->hb_rx);
		/* a beat is only due on an idle output */
		if (s->hb_tx && out_pending(s) == 0)
			min_at(&at, s->last_tx + s->hb_tx / 2);
		if (s->rc_len)
			min_at(&at, s->rc[s->rc_head].deadline ?
			    s->rc[s->rc_head].deadline : now_ms);
	}
	if (in_session(s) && s->partial_since)
		min_at(&at, s->partial_since + s->frame_to);
	if (at < 0)
		return -1;
	if (at <= now_ms)
		return 0;
	return at - now_ms > INT_MAX ? INT_MAX : (int)(at - now_ms);
}

static void
timers(struct stomp *s, int64_t now)
{
	size_t i;

	switch (s->st) {
	case STOMP_ST_DISCONNECTED:
		return;
	case STOMP_ST_CONNECTING:
	case STOMP_ST_TLS_HANDSHAKE:
	case STOMP_ST_STOMP_CONNECTING:
		if (now >= s->deadline)
			fail(s, now, "timed out after %u ms connecting to %s "
			    "(%s)", s->connect_to, s->target,
			    stomp_state_name(s->st));
		else if (s->st == STOMP_ST_STOMP_CONNECTING &&
		    s->partial_since &&
		    now - s->partial_since >= s->frame_to)
			fail(s, now, "%s sent an incomplete frame and nothing "
			    "more for %u ms", s->target, s->frame_to);
		return;
	case STOMP_ST_DISCONNECTING:
		if (now >= s->deadline) {
			log_warn("stomp: no RECEIPT for DISCONNECT from %s "
			    "within %u ms; closing", s->target, s->receipt_to);
			close_conn(s, now, "disconnected (no RECEIPT)");
			return;
		}
		break;
	case STOMP_ST_CONNECTED:
		break;
	}
	if (s->hb_rx && now - s->last_rx >= 2 * (int64_t)s->hb_rx) {
		fail(s, now, "no data from %s for %lld ms (heart-beat every "
		    "%u ms): connection dead", s->target,
		    (long long)(now - s->last_rx), s->hb_rx);
		return;
	}
	if (s->partial_since && now - s->partial_since >= s->frame_to) {
		fail(s, now, "%s sent an incomplete frame (%zu octets) and "
		    "nothing to complete it for %u ms", s->target,
		    stomp_parser_partial(s->parser), s->frame_to);
		return;
	}
	/* receipt timers start here, on the caller's clock */
	for (i = s->rc_len - (s->rc_new < s->rc_len ? s->rc_new : s->rc_len);
	    i < s->rc_len; i++)
		s->rc[(s->rc_head + i) % s->rc_cap].deadline = now +
		    s->receipt_to;
	s->rc_new = 0;
	if (s->rc_len && now >= s->rc[s->rc_head].deadline) {
		fail(s, now, "no RECEIPT for '%s' from %s within %u ms",
		    s->rc[s->rc_head].id, s->target, s->receipt_to);
		return;
	}
	if (s->hb_tx && out_pending(s) == 0 &&
	    now - s->last_tx >= s->hb_tx / 2) {
		out_compact(s);
		if (buf_addc(&s->out, '\n') == 0)
			s->stats.heartbeats_out++;
	}
}

void
stomp_session_tick(struct stomp *s, int64_t now)
{
	uint64_t gen = s->gen;

	timers(s, now);
	if (s->gen == gen && s->out.oom)
		fail(s, now, "out of memory");
}

/* ---- the caller's requests ----------------------------------------------- */

int
stomp_subscribe(struct stomp *s, const char *destination, const char *id,
    const char *ack, const char *const *headers)
{
	struct sub sb, *ns;
	size_t i;

	if (ack == NULL)
		ack = "client-individual";
	if (destination == NULL || !*destination || id == NULL || !*id ||
	    (strcmp(ack, "auto") != 0 && strcmp(ack, "client") != 0 &&
	    strcmp(ack, "client-individual") != 0)) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; headers && headers[i]; i += 2)
		if (headers[i + 1] == NULL) {
			errno = EINVAL;
			return -1;
		}
	if (find_sub(s, id)) {
		errno = EEXIST;
		return -1;
	}
	memset(&sb, 0, sizeof(sb));
	if ((sb.id = strdup(id)) == NULL ||
	    (sb.dest = strdup(destination)) == NULL ||
	    (sb.ack = strdup(ack)) == NULL ||
	    (sb.hdrs = strv_dup(headers)) == NULL ||
	    (ns = realloc(s->subs, (s->nsubs + 1) * sizeof(*ns))) == NULL) {
		sub_free(&sb);
		errno = ENOMEM;
		return -1;
	}
	s->subs = ns;
	if (s->st == STOMP_ST_CONNECTED && send_subscribe(s, &sb) < 0) {
		sub_free(&sb);
		errno = EINVAL;
		return -1;
	}
	s->subs[s->nsubs++] = sb;
	return 0;
}

bool
stomp_subscribing(const struct stomp *s)
{
	return s->subs_unreceipted > 0;
}

int
stomp_unsubscribe(struct stomp *s, const char *id)
{
	struct sub *sb = find_sub(s, id);
	const char *h[] = { "id", id, NULL };

	if (sb == NULL) {
		errno = ENOENT;
		return -1;
	}
	if (s->st == STOMP_ST_CONNECTED)
		queue(s, "UNSUBSCRIBE", h, 0);
	sub_free(sb);
	*sb = s->subs[--s->nsubs];
	return 0;
}

static int
receipt_push(struct stomp *s, const char *id)
{
	struct receipt *n;
	size_t i;
	char *d;

	if ((d = strdup(id)) == NULL)
		return -1;
	if (s->rc_len == s->rc_cap) {
		size_t cap = s->rc_cap ? s->rc_cap * 2 : 16;

		if ((n = calloc(cap, sizeof(*n))) == NULL) {
			free(d);
			return -1;
		}
		for (i = 0; i < s->rc_len; i++)
			n[i] = s->rc[(s->rc_head + i) % s->rc_cap];
		free(s->rc);
		s->rc = n;
		s->rc_cap = cap;
		s->rc_head = 0;
	}
	s->rc[(s->rc_head + s->rc_len) % s->rc_cap].id = d;
	s->rc[(s->rc_head + s->rc_len) % s->rc_cap].deadline = 0;
	s->rc_len++;
	s->rc_new++;
	return 0;
}

int
stomp_send(struct stomp *s, const char *destination,
    const char *const *headers, const void *body, size_t len,
    const char *receipt_id)
{
	size_t i, n = 0, extra = 0, mark, flen;
	const char **h, *why = NULL;
	int r;

	if (s->st != STOMP_ST_CONNECTED) {
		errno = ENOTCONN;
		return -1;
	}
	if (destination == NULL || !*destination ||
	    (receipt_id && (!*receipt_id || has_crlf(receipt_id)))) {
		errno = EINVAL;
		return -1;
	}
	if (receipt_id && s->rc_len - s->subs_unreceipted >= s->max_inflight) {
		errno = ENOBUFS;
		return -1;
	}
	while (headers && headers[extra]) {
		/* STOMP 1.1 has no escape for CR */
		if (strcmp(s->version, "1.1") == 0 &&
		    (strchr(headers[extra], '\r') ||
		    (headers[extra + 1] && strchr(headers[extra + 1], '\r')))) {
			errno = EINVAL;
			return -1;
		}
		extra += 2;
	}
	if ((h = calloc(extra + 5, sizeof(*h))) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	h[n++] = "destination";
	h[n++] = destination;
	if (receipt_id) {
		h[n++] = "receipt";
		h[n++] = receipt_id;
	}
	for (i = 0; i < extra; i++)
		h[n++] = headers[i];
	h[n] = NULL;
	out_compact(s);
	mark = s->out.len;
	r = stomp_frame_build(&s->out, "SEND", h, body ? body : "",
	    body ? len : 0, STOMP_W_CONTENT_LENGTH, &why);
	free(h);
	if (r < 0) {
		if (s->out.oom) {
			/* the queue is lost: start over */
			fail(s, stomp_now_ms(), "out of memory queueing SEND");
			errno = ENOMEM;
			return -1;
		}
		log_warn("stomp: cannot encode SEND to %s: %s", destination,
		    why);
		errno = EINVAL;
		return -1;
	}
	flen = s->out.len - mark;
	if (flen > s->out_max || out_pending(s) > s->out_max) {
		s->out.len = mark;
		s->out.data[mark] = '\0';
		errno = flen > s->out_max ? EMSGSIZE : ENOBUFS;
		return -1;
	}
	if (receipt_id && receipt_push(s, receipt_id) < 0) {
		s->out.len = mark;
		s->out.data[mark] = '\0';
		errno = ENOMEM;
		return -1;
	}
	s->stats.frames_out++;
	return 0;
}

static int
ack_frame(struct stomp *s, const char *command, const char *token,
    bool requeue)
{
	unsigned long long gen;
	char *e, *mid = NULL;
	const char *p;
	size_t ml;
	int r;

	if (token == NULL) {
		errno = EINVAL;
		return -1;
	}
	gen = strtoull(token, &e, 10);
	if (e == token || e[0] != '|' || (e[1] != '1' && e[1] != '2') ||
	    e[2] != '|') {
		errno = EINVAL;
		return -1;
	}
	if (gen != s->gen) {
		errno = ESTALE;
		return -1;
	}
	if (s->st != STOMP_ST_CONNECTED) {
		errno = ENOTCONN;
		return -1;
	}
	p = e + 3;
	if (e[1] == '2') {
		/* RabbitMQ reads requeue:false; ActiveMQ its redelivery policy */
		const char *h[] = { "id", p, requeue ? NULL : "requeue", "false",
		    NULL };

		return queue(s, command, h, 0);
	}
	ml = strtoul(p, &e, 10);
	if (e == p || *e != '|' || strlen(e + 1) < ml ||
	    (mid = strndup(e + 1, ml)) == NULL) {
		errno = EINVAL;
		return -1;
	}
	{
		const char *h[] = {
			"message-id", mid, "subscription", e + 1 + ml,
			requeue ? NULL : "requeue", "false", NULL,
		};

		r = queue(s, command, h, 0);
	}
	free(mid);
	return r;
}

int
stomp_ack(struct stomp *s, const char *ack_token)
{
	return ack_frame(s, "ACK", ack_token, true);
}

int
stomp_nack(struct stomp *s, const char *ack_token)
{
	return ack_frame(s, "NACK", ack_token, true);
}

int
stomp_reject(struct stomp *s, const char *ack_token)
{
	return ack_frame(s, "NACK", ack_token, false);
}

void
stomp_disconnect(struct stomp *s, int64_t now_ms)
{
	char id[48];

	s->running = false;
	switch (s->st) {
	case STOMP_ST_DISCONNECTED:
	case STOMP_ST_DISCONNECTING:
		return;
	case STOMP_ST_CONNECTED:
		snprintf(id, sizeof(id), "disconnect-%llu",
		    (unsigned long long)s->gen);
		{
			const char *h[] = { "receipt", id, NULL };

			if (queue(s, "DISCONNECT", h, 0) == 0 &&
			    (s->disc_receipt = strdup(id)) != NULL) {
				s->st = STOMP_ST_DISCONNECTING;
				s->deadline = now_ms + s->receipt_to;
				return;
			}
		}
		/* FALLTHROUGH */
	default:
		close_conn(s, now_ms, "disconnected");
	}
}

/* ---- queries ------------------------------------------------------------ */

enum stomp_state
stomp_state(const struct stomp *s)
{
	return s->st;
}

const char *
stomp_version(const struct stomp *s)
{
	return s->version[0] ? s->version : NULL;
}

const char *
stomp_url(const struct stomp *s)
{
	return s->target;
}

const char *
stomp_last_error(const struct stomp *s)
{
	return s->err;
}

void
stomp_heartbeats(const struct stomp *s, unsigned *send_ms, unsigned *recv_ms)
{
	if (send_ms)
		*send_ms = s->hb_tx;
	if (recv_ms)
		*recv_ms = s->hb_rx;
}

void
stomp_stats(const struct stomp *s, struct stomp_stats *st)
{
	*st = s->stats;
}
