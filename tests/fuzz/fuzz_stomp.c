/*
 * libFuzzer target: the STOMP frame parser and writer on any bytes.
 *
 * The input is a byte stream as a broker would send it.  For each of four
 * parser setups (default or small limits, unescaping on or off) it is
 * parsed twice, fed whole and fed in pseudo-random chunks (1 to 64 octets,
 * seeded from the input); both runs must produce the same frames, the
 * same heart-beat count and the same verdict, down to the error text with
 * its byte offset.  Every frame is then written back with
 * stomp_frame_write() and parsed again, and must come back identical.  The
 * writer may refuse only a frame it cannot represent (a CR in an unescaped
 * header).  Any difference calls abort().
 *
 *   make build/fuzz/fuzz_stomp
 *   build/fuzz/fuzz_stomp tests/fuzz/corpus/fuzz_stomp
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "stomp_frame.h"

#include "fuzz_die.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every length spelled out, so no two different frames dump the same. */
static void
dump(struct buf *b, const struct stomp_frame *f)
{
	size_t i;

	buf_printf(b, "[%s]%zu{", f->command, f->nheaders);
	for (i = 0; i < f->nheaders; i++) {
		buf_printf(b, "%zu:", f->headers[i].name_len);
		buf_add(b, f->headers[i].name, f->headers[i].name_len);
		buf_printf(b, "=%zu:", f->headers[i].value_len);
		buf_add(b, f->headers[i].value, f->headers[i].value_len);
	}
	buf_printf(b, "}%zu/%zu:", f->body_len, f->skipped);
	buf_add(b, f->body, f->body_len);
	buf_addc(b, '\n');
}

static bool
has(const char *p, size_t n, char c)
{
	return n && memchr(p, c, n) != NULL;
}

/* A CR/LF in a header the writer may not escape. */
static bool
unencodable(const struct stomp_frame *f, bool escaping)
{
	size_t i;

	if (escaping && !stomp_command_is_raw(f->command))
		return false;
	for (i = 0; i < f->nheaders; i++) {
		const struct stomp_header *h = &f->headers[i];

		if (has(h->name, h->name_len, '\r') ||
		    has(h->name, h->name_len, '\n') ||
		    has(h->name, h->name_len, ':') ||
		    has(h->value, h->value_len, '\r') ||
		    has(h->value, h->value_len, '\n'))
			return true;
	}
	return false;
}

/* Write f back, parse it again, compare. */
static void
roundtrip(const struct stomp_frame *f, bool unesc)
{
	struct buf enc = BUF_INIT, d1 = BUF_INIT, d2 = BUF_INIT;
	struct stomp_parser *p;
	struct stomp_frame g;
	const char *why = NULL;

	if (stomp_frame_write(&enc, f, unesc ? 0 : STOMP_W_NO_ESCAPE,
	    &why) < 0) {
		if (!unencodable(f, unesc))
			die("writer refused a parsed frame", why);
		buf_free(&enc);
		return;
	}
	if ((p = stomp_parser_new(NULL)) == NULL)
		die("stomp_parser_new", "out of memory");
	stomp_parser_set_unescape(p, unesc);
	if (stomp_parser_feed(p, enc.data, enc.len) < 0)
		die("feed", stomp_parser_error(p));
	if (stomp_parser_next(p, &g) != STOMP_FRAME)
		die("written frame does not parse", stomp_parser_error(p));
	dump(&d1, f);
	dump(&d2, &g);
	if (d1.len != d2.len || memcmp(d1.data, d2.data, d1.len) != 0)
		die("frame changed in write+parse", d1.data);
	if (stomp_parser_next(p, &g) != STOMP_NEED_MORE ||
	    stomp_parser_heartbeats(p) != 0)
		die("written frame has trailing data", d1.data);
	stomp_parser_free(p);
	buf_free(&enc);
	buf_free(&d1);
	buf_free(&d2);
}

struct run {
	struct buf	 frames;
	uint64_t	 heartbeats;
	int		 verdict;
	char		 err[256];
};

static void
parse(const uint8_t *data, size_t size, const struct stomp_limits *lim,
    bool unesc, uint32_t seed, struct run *r, bool check)
{
	struct stomp_parser *p = stomp_parser_new(lim);
	struct stomp_frame f;
	enum stomp_result res = STOMP_NEED_MORE;
	size_t off = 0, n;

	if (p == NULL)
		die("stomp_parser_new", "out of memory");
	stomp_parser_set_unescape(p, unesc);
	memset(r, 0, sizeof(*r));
	while (off < size) {
		if (seed) {
			seed ^= seed << 13;
			seed ^= seed >> 17;
			seed ^= seed << 5;
			n = 1 + seed % 64;
			if (n > size - off)
				n = size - off;
		} else
			n = size;
		if (stomp_parser_feed(p, data + off, n) < 0)
			break;
		off += n;
		while ((res = stomp_parser_next(p, &f)) == STOMP_FRAME) {
			dump(&r->frames, &f);
			if (f.skipped && (f.body_len || f.body[0]))
				die("a skipped body came out", f.command);
			if (check && !f.skipped)	/* its body is gone */
				roundtrip(&f, unesc);
		}
		if (res == STOMP_ERROR)
			break;
	}
	r->heartbeats = stomp_parser_heartbeats(p);
	r->verdict = res;
	snprintf(r->err, sizeof(r->err), "%s", stomp_parser_error(p));
	if (res == STOMP_ERROR && strstr(r->err, " at byte ") == NULL)
		die("error without an offset", r->err);
	stomp_parser_free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct stomp_limits small = { 512, 8, 64, 12, 100 };
	struct run a, b;
	uint32_t seed = 2166136261u;
	size_t i;
	int k;

	for (i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	if (seed == 0)
		seed = 1;
	for (k = 0; k < 4; k++) {
		const struct stomp_limits *lim = k & 1 ? &small : NULL;
		bool unesc = (k & 2) == 0;

		parse(data, size, lim, unesc, 0, &a, true);
		parse(data, size, lim, unesc, seed, &b, false);
		if (a.frames.len != b.frames.len || (a.frames.len &&
		    memcmp(a.frames.data, b.frames.data, a.frames.len) != 0))
			die("chunked feeding changes the frames",
			    a.frames.data ? a.frames.data : "");
		if (a.heartbeats != b.heartbeats)
			die("chunked feeding changes the heart-beats", "");
		if (a.verdict != b.verdict || strcmp(a.err, b.err) != 0)
			die("chunked feeding changes the verdict", a.err);
		buf_free(&a.frames);
		buf_free(&b.frames);
	}
	return 0;
}
