/*
 * STOMP frame codec (see stomp_frame.h).
 *
 * The parser keeps the input in one buffer and parses in place: header
 * names and values are unescaped where they lie (unescaping only ever
 * shrinks), and the octet after each (':' or the EOL) is overwritten with a
 * NUL, so a frame handed out is a set of pointers into the buffer.  Every
 * scan resumes where the previous one stopped, so feeding a frame one octet
 * at a time costs the same as feeding it whole.  Consumed octets are
 * dropped (memmove) at the next feed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "stomp_frame.h"

/* Above this, an empty input buffer is freed rather than kept. */
#define KEEP_CAP	(256u * 1024)

enum pstate {
	PS_EOL,		/* between frames: heart-beats */
	PS_COMMAND,
	PS_HEADERS,
	PS_BODY_LEN,	/* content-length octets, then NUL */
	PS_BODY_NUL,	/* up to the first NUL */
	PS_BIG_HEAD,	/* headers of a body over max_body: hand them out */
	PS_BIG_BODY,	/* then read past skip octets and the NUL */
};

/* A header's place, relative to the frame's first octet. */
struct hoff {
	size_t	no, nl, vo, vl;
};

struct stomp_parser {
	struct stomp_limits	 lim;
	bool			 unescape;
	struct buf		 in;
	uint64_t		 base;	/* stream offset of in.data[0] */
	size_t			 start;	/* current frame (or unparsed data) */
	size_t			 pos;	/* scan position */
	size_t			 line;	/* current header line */
	size_t			 body;	/* body start */
	enum pstate		 st;
	bool			 raw;	/* CONNECT/CONNECTED: no unescaping */
	bool			 have_cl;
	size_t			 cl;
	size_t			 skip;	/* PS_BIG_BODY: octets still to pass */
	struct hoff		*hoff;
	struct stomp_header	*hdr;
	size_t			 nh, hcap;
	uint64_t		 heartbeats, frames;
	enum stomp_perr		 err;
	char			 errbuf[200];
};

struct stomp_parser *
stomp_parser_new(const struct stomp_limits *lim)
{
	struct stomp_parser *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	if (lim)
		p->lim = *lim;
	if (p->lim.max_frame == 0)
		p->lim.max_frame = STOMP_DEFAULT_MAX_FRAME;
	if (p->lim.max_headers == 0)
		p->lim.max_headers = STOMP_DEFAULT_MAX_HEADERS;
	if (p->lim.max_line == 0)
		p->lim.max_line = STOMP_DEFAULT_MAX_LINE;
	if (p->lim.max_command == 0)
		p->lim.max_command = STOMP_DEFAULT_MAX_COMMAND;
	p->unescape = true;
	return p;
}

void
stomp_parser_free(struct stomp_parser *p)
{
	if (p == NULL)
		return;
	buf_free(&p->in);
	free(p->hoff);
	free(p->hdr);
	free(p);
}

void
stomp_parser_reset(struct stomp_parser *p)
{
	buf_free(&p->in);
	p->base = 0;
	p->start = p->pos = p->line = p->body = 0;
	p->st = PS_EOL;
	p->nh = 0;
	p->heartbeats = p->frames = 0;
	p->err = STOMP_E_NONE;
	p->errbuf[0] = '\0';
}

void
stomp_parser_set_unescape(struct stomp_parser *p, bool on)
{
	p->unescape = on;
}

enum stomp_perr
stomp_parser_errcode(const struct stomp_parser *p)
{
	return p->err;
}

const char *
stomp_parser_error(const struct stomp_parser *p)
{
	return p->err ? p->errbuf : "no error";
}

uint64_t
stomp_parser_heartbeats(const struct stomp_parser *p)
{
	return p->heartbeats;
}

uint64_t
stomp_parser_frames(const struct stomp_parser *p)
{
	return p->frames;
}

size_t
stomp_parser_partial(const struct stomp_parser *p)
{
	if (p->st == PS_BIG_BODY)
		return p->skip + 1;	/* what is missing of it */
	return p->st == PS_EOL ? 0 : p->in.len - p->start;
}

size_t
stomp_parser_capacity(const struct stomp_parser *p)
{
	return p->in.cap + p->hcap * (sizeof(struct hoff) +
	    sizeof(struct stomp_header));
}

static enum stomp_result perr(struct stomp_parser *, enum stomp_perr, size_t,
    const char *, ...) __attribute__((format(printf, 4, 5)));

/* Record error code at buffer position at; always returns STOMP_ERROR. */
static enum stomp_result
perr(struct stomp_parser *p, enum stomp_perr code, size_t at,
    const char *fmt, ...)
{
	va_list ap;
	int n;

	p->err = code;
	va_start(ap, fmt);
	n = vsnprintf(p->errbuf, sizeof(p->errbuf), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(p->errbuf))
		snprintf(p->errbuf + n, sizeof(p->errbuf) - (size_t)n,
		    " at byte %llu", (unsigned long long)(p->base + at));
	return STOMP_ERROR;
}

int
stomp_parser_feed(struct stomp_parser *p, const void *data, size_t len)
{
	if (p->err)
		return -1;
	if (p->start > 0) {
		size_t shift = p->start;

		memmove(p->in.data, p->in.data + shift, p->in.len - shift);
		p->in.len -= shift;
		p->base += shift;
		p->start = 0;
		p->pos -= shift;
		p->line = p->line >= shift ? p->line - shift : 0;
		p->body = p->body >= shift ? p->body - shift : 0;
		if (p->in.len == 0 && p->in.cap > KEEP_CAP)
			buf_free(&p->in);
	}
	if (len == 0)
		return 0;
	if (buf_add(&p->in, data, len) < 0) {
		buf_free(&p->in);
		perr(p, STOMP_E_NOMEM, 0, "out of memory");
		return -1;
	}
	return 0;
}

bool
stomp_command_is_raw(const char *command)
{
	return strcmp(command, "CONNECT") == 0 ||
	    strcmp(command, "CONNECTED") == 0;
}

/*
 * Unescape data[from, to) in place; returns the new length, or -1 with
 * the error recorded.
 */
static ssize_t
unescape(struct stomp_parser *p, size_t from, size_t to)
{
	char *d = p->in.data;
	size_t r, w = from;

	for (r = from; r < to; r++) {
		if (d[r] != '\\') {
			d[w++] = d[r];
			continue;
		}
		if (r + 1 == to) {
			perr(p, STOMP_E_BAD_ESCAPE, r,
			    "STOMP header ends with a lone backslash");
			return -1;
		}
		switch (d[++r]) {
		case 'r':
			d[w++] = '\r';
			break;
		case 'n':
			d[w++] = '\n';
			break;
		case 'c':
			d[w++] = ':';
			break;
		case '\\':
			d[w++] = '\\';
			break;
		default:
			perr(p, STOMP_E_BAD_ESCAPE, r - 1,
			    "undefined STOMP header escape '\\%c' (0x%02x)",
			    d[r] >= 0x21 && d[r] < 0x7f ? d[r] : '?',
			    (unsigned char)d[r]);
			return -1;
		}
	}
	return (ssize_t)(w - from);
}

/*
 * A content-length value: decimal digits only, nothing trimmed.  Returns
 * 0 (SIZE_MAX when it does not fit), or -1.
 */
static int
parse_length(const char *s, size_t n, size_t *out)
{
	size_t i, v = 0;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (SIZE_MAX - 9) / 10)
			v = SIZE_MAX;
		else
			v = v * 10 + (size_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static int
grow_headers(struct stomp_parser *p)
{
	size_t cap = p->hcap ? p->hcap * 2 : 16;
	struct hoff *ho;
	struct stomp_header *h;

	if (cap > p->lim.max_headers)
		cap = p->lim.max_headers;
	if ((ho = realloc(p->hoff, cap * sizeof(*ho))) == NULL)
		return -1;
	p->hoff = ho;
	if ((h = realloc(p->hdr, cap * sizeof(*h))) == NULL)
		return -1;
	p->hdr = h;
	p->hcap = cap;
	return 0;
}

/* One complete header line data[line, end). */
static enum stomp_result
header_line(struct stomp_parser *p, size_t end)
{
	char *d = p->in.data;
	char *colon;
	size_t c, line = p->line;
	ssize_t nl, vl;
	struct hoff *h;

	if (p->nh >= p->lim.max_headers)
		return perr(p, STOMP_E_TOO_MANY_HEADERS, line,
		    "STOMP frame has more than %zu headers",
		    p->lim.max_headers);
	if ((colon = memchr(d + line, ':', end - line)) == NULL)
		return perr(p, STOMP_E_BAD_HEADER, line,
		    "STOMP header line without ':'");
	if ((c = (size_t)(colon - d)) == line)
		return perr(p, STOMP_E_BAD_HEADER, line,
		    "STOMP header with an empty name");
	if (p->nh == p->hcap && grow_headers(p) < 0)
		return perr(p, STOMP_E_NOMEM, line, "out of memory");
	if (p->raw || !p->unescape) {
		nl = (ssize_t)(c - line);
		vl = (ssize_t)(end - c - 1);
	} else if ((nl = unescape(p, line, c)) < 0 ||
	    (vl = unescape(p, c + 1, end)) < 0)
		return STOMP_ERROR;
	d[line + (size_t)nl] = '\0';
	d[c + 1 + (size_t)vl] = '\0';
	h = &p->hoff[p->nh++];
	h->no = line - p->start;
	h->nl = (size_t)nl;
	h->vo = c + 1 - p->start;
	h->vl = (size_t)vl;
	if (!p->have_cl && h->nl == 14 &&
	    memcmp(d + line, "content-length", 14) == 0) {
		if (parse_length(d + c + 1, h->vl, &p->cl) < 0)
			return perr(p, STOMP_E_BAD_CONTENT_LENGTH, c + 1,
			    "bad STOMP content-length (not a decimal number)");
		p->have_cl = true;
	}
	return STOMP_NEED_MORE;
}

static enum stomp_result
emit(struct stomp_parser *p, struct stomp_frame *f, size_t body_len)
{
	char *base = p->in.data + p->start;
	size_t i;

	for (i = 0; i < p->nh; i++) {
		p->hdr[i].name = base + p->hoff[i].no;
		p->hdr[i].name_len = p->hoff[i].nl;
		p->hdr[i].value = base + p->hoff[i].vo;
		p->hdr[i].value_len = p->hoff[i].vl;
	}
	f->command = base;
	f->headers = p->hdr;
	f->nheaders = p->nh;
	f->body = p->in.data + p->body;
	f->body_len = body_len;
	f->skipped = 0;
	p->frames++;
	p->st = PS_EOL;
	p->start = p->pos;
	return STOMP_FRAME;
}

static enum stomp_result
too_large(struct stomp_parser *p)
{
	return perr(p, STOMP_E_FRAME_TOO_LARGE, p->start,
	    "STOMP frame larger than %zu octets", p->lim.max_frame);
}

/* Internal: the state advanced, go on parsing. */
#define ADVANCE	2

static int
st_eol(struct stomp_parser *p)
{
	const char *d = p->in.data;
	size_t len = p->in.len;

	while (p->pos < len) {
		p->start = p->pos;
		if (d[p->pos] == '\n') {
			p->heartbeats++;
			p->pos++;
		} else if (d[p->pos] == '\r') {
			if (p->pos + 1 == len)
				return STOMP_NEED_MORE;
			if (d[p->pos + 1] != '\n')
				return perr(p, STOMP_E_BAD_EOL, p->pos,
				    "CR without LF between STOMP frames");
			p->heartbeats++;
			p->pos += 2;
		} else {
			p->st = PS_COMMAND;
			p->nh = 0;
			p->have_cl = false;
			return ADVANCE;
		}
	}
	p->start = p->pos;
	return STOMP_NEED_MORE;
}

static int
st_command(struct stomp_parser *p)
{
	char *d = p->in.data;
	size_t end, len = p->in.len;

	for (; p->pos < len; p->pos++) {
		char c = d[p->pos];

		if (c == '\n')
			break;
		if (c == '\r') {
			if (p->pos + 1 == len)
				return STOMP_NEED_MORE;
			if (d[p->pos + 1] == '\n')
				continue;
		}
		if (c < 'A' || c > 'Z')
			return perr(p, STOMP_E_BAD_COMMAND, p->pos,
			    "bad octet 0x%02x in STOMP command",
			    (unsigned char)c);
		if (p->pos - p->start >= p->lim.max_command)
			return perr(p, STOMP_E_COMMAND_TOO_LONG, p->start,
			    "STOMP command longer than %zu octets",
			    p->lim.max_command);
	}
	if (p->pos == len)
		return STOMP_NEED_MORE;
	end = p->pos;
	if (d[end - 1] == '\r')
		end--;
	if (end == p->start)
		return perr(p, STOMP_E_BAD_COMMAND, p->start,
		    "empty STOMP command");
	d[end] = '\0';
	p->raw = stomp_command_is_raw(d + p->start);
	p->line = ++p->pos;
	p->st = PS_HEADERS;
	return ADVANCE;
}

static size_t
sat_add(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/*
 * The limits are checked as if the input arrived one octet at a time, so
 * that the verdict (and the error) does not depend on how it was chunked:
 * an EOL or NUL is only looked for up to the octet at which the partial
 * line or frame would have been refused.  window() is that bound, partial()
 * the check made when the bound is reached without finding the octet.
 */
static size_t
window(const struct stomp_parser *p, bool line)
{
	size_t w = sat_add(p->start, p->lim.max_frame);

	if (line && sat_add(p->line, sat_add(p->lim.max_line, 2)) < w)
		w = sat_add(p->line, sat_add(p->lim.max_line, 2));
	if (w > p->in.len)
		w = p->in.len;
	return w < p->pos ? p->pos : w;
}

static int
partial(struct stomp_parser *p, size_t upto, bool line)
{
	if (line && upto - p->line > p->lim.max_line + 1)
		return perr(p, STOMP_E_LINE_TOO_LONG, p->line,
		    "STOMP header line longer than %zu octets",
		    p->lim.max_line);
	if (upto - p->start >= p->lim.max_frame)
		return too_large(p);
	return STOMP_NEED_MORE;
}

static int
st_headers(struct stomp_parser *p)
{
	const char *d = p->in.data, *q;
	size_t end, w;
	int r;

	for (;;) {
		w = window(p, true);
		q = p->pos < w ? memchr(d + p->pos, '\n', w - p->pos) : NULL;
		if (q == NULL) {
			p->pos = w;
			return partial(p, w, true);
		}
		end = (size_t)(q - d);
		p->pos = end + 1;
		if (end > p->line && d[end - 1] == '\r')
			end--;
		if (end - p->line > p->lim.max_line)
			return perr(p, STOMP_E_LINE_TOO_LONG, p->line,
			    "STOMP header line longer than %zu octets",
			    p->lim.max_line);
		if (p->pos - p->start > p->lim.max_frame)
			return too_large(p);
		if (end == p->line)
			break;
		if ((r = header_line(p, end)) != STOMP_NEED_MORE)
			return r;
		p->line = p->pos;
	}
	/* the blank line: the body follows */
	p->body = p->pos;
	if (!p->have_cl) {
		p->st = PS_BODY_NUL;
		return ADVANCE;
	}
	if (p->lim.max_body && p->cl > p->lim.max_body && p->cl < SIZE_MAX) {
		p->st = PS_BIG_HEAD;
		return ADVANCE;
	}
	if (p->cl >= p->lim.max_frame ||
	    p->body - p->start + p->cl + 1 > p->lim.max_frame) {
		if (p->cl == SIZE_MAX)
			return perr(p, STOMP_E_FRAME_TOO_LARGE, p->start,
			    "STOMP content-length exceeds the frame size "
			    "limit (%zu octets)", p->lim.max_frame);
		return perr(p, STOMP_E_FRAME_TOO_LARGE, p->start,
		    "STOMP content-length %zu exceeds the frame size limit "
		    "(%zu octets)", p->cl, p->lim.max_frame);
	}
	p->st = PS_BODY_LEN;
	return ADVANCE;
}

enum stomp_result
stomp_parser_next(struct stomp_parser *p, struct stomp_frame *f)
{
	const char *d, *q;
	size_t w, nul;
	int r = ADVANCE;

	if (p->err)
		return STOMP_ERROR;
	while (r == ADVANCE) {
		switch (p->st) {
		case PS_EOL:
			r = st_eol(p);
			break;
		case PS_COMMAND:
			r = st_command(p);
			break;
		case PS_HEADERS:
			r = st_headers(p);
			break;
		case PS_BODY_LEN:
			d = p->in.data;
			if (p->in.len - p->body < p->cl + 1) {
				p->pos = p->in.len;
				return STOMP_NEED_MORE;
			}
			if (d[p->body + p->cl] != '\0')
				return perr(p, STOMP_E_NO_NUL, p->body + p->cl,
				    "no NUL after the %zu octets of STOMP "
				    "content-length", p->cl);
			p->pos = p->body + p->cl + 1;
			return emit(p, f, p->cl);
		case PS_BIG_HEAD:
			emit(p, f, 0);
			f->body = "";
			f->skipped = p->cl;
			p->pos = p->start = p->body;
			p->skip = p->cl;
			p->st = PS_BIG_BODY;
			return STOMP_FRAME;
		case PS_BIG_BODY:
			w = p->in.len - p->pos < p->skip ? p->in.len - p->pos :
			    p->skip;
			p->pos += w;
			p->skip -= w;
			p->start = p->pos;	/* nothing of it is kept */
			if (p->skip > 0 || p->pos == p->in.len)
				return STOMP_NEED_MORE;
			if (p->in.data[p->pos] != '\0')
				return perr(p, STOMP_E_NO_NUL, p->pos,
				    "no NUL after the %zu octets of STOMP "
				    "content-length", p->cl);
			p->start = ++p->pos;
			p->st = PS_EOL;
			break;
		case PS_BODY_NUL:
			d = p->in.data;
			w = window(p, false);
			q = p->pos < w ? memchr(d + p->pos, '\0', w - p->pos) :
			    NULL;
			if (q == NULL) {
				p->pos = w;
				return (enum stomp_result)partial(p, w, false);
			}
			nul = (size_t)(q - d);
			p->pos = nul + 1;
			return emit(p, f, nul - p->body);
		}
	}
	return (enum stomp_result)r;
}

/* ---- frames ------------------------------------------------------------ */

const struct stomp_header *
stomp_frame_header(const struct stomp_frame *f, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < f->nheaders; i++)
		if (f->headers[i].name_len == n &&
		    memcmp(f->headers[i].name, name, n) == 0)
			return &f->headers[i];
	return NULL;
}

const char *
stomp_frame_value(const struct stomp_frame *f, const char *name)
{
	const struct stomp_header *h = stomp_frame_header(f, name);

	if (h == NULL || memchr(h->value, '\0', h->value_len))
		return NULL;
	return h->value;
}

static bool
good_command(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s < 'A' || *s > 'Z')
			return false;
	return true;
}

static void
put_escaped(struct buf *out, const char *s, size_t n)
{
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		const char *e;

		switch (s[i]) {
		case '\r':
			e = "\\r";
			break;
		case '\n':
			e = "\\n";
			break;
		case ':':
			e = "\\c";
			break;
		case '\\':
			e = "\\\\";
			break;
		default:
			continue;
		}
		buf_add(out, s + run, i - run);
		buf_add(out, e, 2);
		run = i + 1;
	}
	buf_add(out, s + run, n - run);
}

static int
fail(struct buf *out, size_t mark, const char **why, const char *text)
{
	if (why)
		*why = text;
	if (out->data && !out->oom) {
		out->len = mark;
		out->data[mark] = '\0';
	}
	return -1;
}

int
stomp_frame_write(struct buf *out, const struct stomp_frame *f,
    unsigned flags, const char **why)
{
	const struct stomp_header *h, *cl = NULL;
	bool esc, add_cl = (flags & STOMP_W_CONTENT_LENGTH) != 0;
	size_t i, n, mark = out->len;

	if (!good_command(f->command))
		return fail(out, mark, why, "bad STOMP command");
	esc = !(flags & STOMP_W_NO_ESCAPE) && !stomp_command_is_raw(f->command);
	if (!add_cl && (cl = stomp_frame_header(f, "content-length")) != NULL) {
		if (parse_length(cl->value, cl->value_len, &n) < 0 ||
		    n != f->body_len)
			return fail(out, mark, why,
			    "content-length does not match the body");
	}
	if (!add_cl && cl == NULL && f->body_len &&
	    memchr(f->body, '\0', f->body_len))
		return fail(out, mark, why,
		    "a body with a NUL needs content-length");
	buf_adds(out, f->command);
	buf_addc(out, '\n');
	if (add_cl)
		buf_printf(out, "content-length:%zu\n", f->body_len);
	for (i = 0; i < f->nheaders; i++) {
		h = &f->headers[i];
		if (h->name_len == 0)
			return fail(out, mark, why, "empty STOMP header name");
		if (add_cl && h->name_len == 14 &&
		    memcmp(h->name, "content-length", 14) == 0)
			continue;
		if (esc) {
			put_escaped(out, h->name, h->name_len);
			buf_addc(out, ':');
			put_escaped(out, h->value, h->value_len);
		} else {
			if (memchr(h->name, ':', h->name_len) ||
			    memchr(h->name, '\r', h->name_len) ||
			    memchr(h->name, '\n', h->name_len))
				return fail(out, mark, why, "CR, LF or ':' in "
				    "an unescaped STOMP header name");
			if (memchr(h->value, '\r', h->value_len) ||
			    memchr(h->value, '\n', h->value_len))
				return fail(out, mark, why, "CR or LF in an "
				    "unescaped STOMP header value");
			buf_add(out, h->name, h->name_len);
			buf_addc(out, ':');
			buf_add(out, h->value, h->value_len);
		}
		buf_addc(out, '\n');
	}
	buf_addc(out, '\n');
	buf_add(out, f->body, f->body_len);
	buf_addc(out, '\0');
	if (out->oom)
		return fail(out, mark, why, "out of memory");
	return 0;
}

int
stomp_frame_build(struct buf *out, const char *command,
    const char *const *hdrs, const void *body, size_t body_len,
    unsigned flags, const char **why)
{
	struct stomp_header local[32], *h = local;
	struct stomp_frame f;
	size_t i, n = 0, max = 0;
	int r;

	for (i = 0; hdrs && hdrs[i]; i += 2)
		max++;
	if (max > sizeof(local) / sizeof(local[0]) &&
	    (h = calloc(max, sizeof(*h))) == NULL) {
		if (why)
			*why = "out of memory";
		return -1;
	}
	for (i = 0; hdrs && hdrs[i]; i += 2) {
		if (hdrs[i + 1] == NULL)
			continue;	/* an optional header left out */
		h[n].name = hdrs[i];
		h[n].name_len = strlen(hdrs[i]);
		h[n].value = hdrs[i + 1];
		h[n].value_len = strlen(hdrs[i + 1]);
		n++;
	}
	f.command = command;
	f.headers = h;
	f.nheaders = n;
	f.body = body ? body : "";
	f.body_len = body ? body_len : 0;
	r = stomp_frame_write(out, &f, flags, why);
	if (h != local)
		free(h);
	return r;
}
