/*
 * The STOMP frame codec (brokers/stomp_frame.c): framing, EOLs and
 * heart-beats, header escaping, repeated headers, content-length, binary
 * header values, the limits, incremental feeding and the writer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "stomp_frame.h"

#define S(lit)	lit, sizeof(lit) - 1

/* ---- helpers ---------------------------------------------------------- */

static struct stomp_parser *
parser(void)
{
	struct stomp_parser *p = stomp_parser_new(NULL);

	assert_non_null(p);
	return p;
}

/* Exactly one frame from data (fed whole); fails the test otherwise. */
static void
one(struct stomp_parser *p, const char *data, size_t len, struct stomp_frame *f)
{
	assert_int_equal(stomp_parser_feed(p, data, len), 0);
	if (stomp_parser_next(p, f) != STOMP_FRAME)
		fail_msg("no frame: %s", stomp_parser_error(p));
}

/* Feed data whole and expect an error with this code. */
static void
expect_error(const char *data, size_t len, enum stomp_perr code)
{
	struct stomp_parser *p = parser();
	struct stomp_frame f;
	enum stomp_result r;

	assert_int_equal(stomp_parser_feed(p, data, len), 0);
	while ((r = stomp_parser_next(p, &f)) == STOMP_FRAME)
		;
	if (r != STOMP_ERROR)
		fail_msg("no error for %.*s", (int)len, data);
	if (stomp_parser_errcode(p) != code)
		fail_msg("error %d (%s), want %d", stomp_parser_errcode(p),
		    stomp_parser_error(p), code);
	assert_non_null(strstr(stomp_parser_error(p), " at byte "));
	/* sticky */
	assert_int_equal(stomp_parser_next(p, &f), STOMP_ERROR);
	assert_int_equal(stomp_parser_feed(p, "\n", 1), -1);
	stomp_parser_free(p);
}

static void
assert_header(const struct stomp_header *h, const char *name, size_t nl,
    const char *value, size_t vl)
{
	assert_int_equal(h->name_len, nl);
	assert_memory_equal(h->name, name, nl);
	assert_int_equal(h->name[nl], '\0');
	assert_int_equal(h->value_len, vl);
	if (vl)
		assert_memory_equal(h->value, value, vl);
	assert_int_equal(h->value[vl], '\0');
}

/* A dump of a frame with every length spelled out. */
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
	buf_printf(b, "}%zu:", f->body_len);
	buf_add(b, f->body, f->body_len);
	buf_addc(b, '\n');
}

/*
 * Parse data fed in chunks of `chunk` octets (0 = whole) and return the
 * dump of all frames, the heart-beat count and the final verdict.
 */
static char *
parse_all(const char *data, size_t len, size_t chunk, uint64_t *hb,
    enum stomp_result *last, char *err, size_t errlen, size_t *outlen)
{
	struct stomp_parser *p = parser();
	struct buf b = BUF_INIT;
	struct stomp_frame f;
	enum stomp_result r = STOMP_NEED_MORE;
	size_t off = 0, n;
	char *s;

	if (chunk == 0)
		chunk = len ? len : 1;
	while (off < len) {
		n = len - off < chunk ? len - off : chunk;
		if (stomp_parser_feed(p, data + off, n) < 0)
			break;
		off += n;
		while ((r = stomp_parser_next(p, &f)) == STOMP_FRAME)
			dump(&b, &f);
		if (r == STOMP_ERROR)
			break;
	}
	*hb = stomp_parser_heartbeats(p);
	*last = r;
	snprintf(err, errlen, "%s", stomp_parser_error(p));
	stomp_parser_free(p);
	buf_addc(&b, '.');
	s = buf_steal(&b, outlen);
	assert_non_null(s);
	return s;
}

/* ---- framing ------------------------------------------------------------ */

static void
test_simple_frame(void **state)
{
	static const char in[] = "MESSAGE\ndestination:/queue/a\n"
	    "message-id:ID\\cx-1\nsubscription:0\n\nhello\0";
	struct stomp_parser *p = parser();
	struct stomp_frame f;

	(void)state;
	one(p, in, sizeof(in) - 1, &f);
	assert_string_equal(f.command, "MESSAGE");
	assert_int_equal(f.nheaders, 3);
	assert_header(&f.headers[0], S("destination"), S("/queue/a"));
	assert_header(&f.headers[1], S("message-id"), S("ID:x-1"));
	assert_header(&f.headers[2], S("subscription"), S("0"));
	assert_int_equal(f.body_len, 5);
	assert_memory_equal(f.body, "hello", 6);
	assert_string_equal(stomp_frame_value(&f, "message-id"), "ID:x-1");
	assert_null(stomp_frame_value(&f, "ack"));
	assert_null(stomp_frame_header(&f, "Destination"));	/* case matters */
	assert_int_equal(stomp_parser_next(p, &f), STOMP_NEED_MORE);
	assert_int_equal(stomp_parser_frames(p), 1);
	assert_int_equal(stomp_parser_partial(p), 0);
	stomp_parser_free(p);
}

static void
test_no_headers_no_body(void **state)
{
	struct stomp_parser *p = parser();
	struct stomp_frame f;

	(void)state;
	one(p, S("DISCONNECT\n\n\0"), &f);
	assert_string_equal(f.command, "DISCONNECT");
	assert_int_equal(f.nheaders, 0);
	assert_int_equal(f.body_len, 0);
	assert_string_equal(f.body, "");
	stomp_parser_free(p);
}

static void
test_crlf(void **state)
{
	static const char in[] = "\r\nRECEIPT\r\nreceipt-id:77\r\n"
	    "x:a\rb\r\n\r\n\0\r\n\r\n";
	struct stomp_parser *p = parser();
	struct stomp_frame f;

	(void)state;
	one(p, in, sizeof(in) - 1, &f);
	assert_string_equal(f.command, "RECEIPT");
	assert_int_equal(f.nheaders, 2);
	assert_header(&f.headers[0], S("receipt-id"), S("77"));
	/* a CR inside a line is data; only the one before LF is an EOL */
	assert_header(&f.headers[1], S("x"), S("a\rb"));
	assert_int_equal(f.body_len, 0);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_NEED_MORE);
	assert_int_equal(stomp_parser_heartbeats(p), 3);
	stomp_parser_free(p);
}

static void
test_heartbeats(void **state)
{
	struct stomp_parser *p = parser();
	struct stomp_frame f;

	(void)state;
	assert_int_equal(stomp_parser_feed(p, S("\n\n\r\n")), 0);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_NEED_MORE);
	assert_int_equal(stomp_parser_heartbeats(p), 3);
	/* a CR alone waits for its LF */
	assert_int_equal(stomp_parser_feed(p, S("\r")), 0);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_NEED_MORE);
	assert_int_equal(stomp_parser_heartbeats(p), 3);
	assert_int_equal(stomp_parser_partial(p), 0);
	assert_int_equal(stomp_parser_feed(p, S("\n")), 0);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_NEED_MORE);
	assert_int_equal(stomp_parser_heartbeats(p), 4);
	/* EOLs after a frame's NUL count too */
	assert_int_equal(stomp_parser_feed(p, S("RECEIPT\nreceipt-id:1\n\n\0\n\n")), 0);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_FRAME);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_NEED_MORE);
	assert_int_equal(stomp_parser_heartbeats(p), 6);
	/* CR followed by anything but LF is an error */
	assert_int_equal(stomp_parser_feed(p, S("\rX")), 0);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_ERROR);
	assert_int_equal(stomp_parser_errcode(p), STOMP_E_BAD_EOL);
	/* reset forgets the error and the counts */
	stomp_parser_reset(p);
	assert_int_equal(stomp_parser_heartbeats(p), 0);
	one(p, S("RECEIPT\nreceipt-id:2\n\n\0"), &f);
	assert_string_equal(stomp_frame_value(&f, "receipt-id"), "2");
	stomp_parser_free(p);
}

static void
test_several_frames_one_feed(void **state)
{
	static const char in[] = "MESSAGE\na:1\n\nx\0\nMESSAGE\na:2\n\ny\0"
	    "RECEIPT\nreceipt-id:9\n\n\0";
	struct stomp_parser *p = parser();
	struct stomp_frame f;

	(void)state;
	assert_int_equal(stomp_parser_feed(p, in, sizeof(in) - 1), 0);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_FRAME);
	assert_string_equal(stomp_frame_value(&f, "a"), "1");
	assert_string_equal(f.body, "x");
	assert_int_equal(stomp_parser_next(p, &f), STOMP_FRAME);
	assert_string_equal(stomp_frame_value(&f, "a"), "2");
	assert_string_equal(f.body, "y");
	assert_int_equal(stomp_parser_next(p, &f), STOMP_FRAME);
	assert_string_equal(f.command, "RECEIPT");
	assert_int_equal(stomp_parser_next(p, &f), STOMP_NEED_MORE);
	assert_int_equal(stomp_parser_heartbeats(p), 1);
	stomp_parser_free(p);
}

/* ---- headers --------------------------------------------------------- */

static void
test_escapes_decoded(void **state)
{
	static const char in[] = "MESSAGE\n"
	    "a\\cb:c\\nd\\\\e\\r\n"
	    "k:v:w\n"		/* a raw colon in a value is data */
	    "empty:\n"
	    "\n\0";
	struct stomp_parser *p = parser();
	struct stomp_frame f;

	(void)state;
	one(p, in, sizeof(in) - 1, &f);
	assert_int_equal(f.nheaders, 3);
	assert_header(&f.headers[0], S("a:b"), S("c\nd\\e\r"));
	assert_header(&f.headers[1], S("k"), S("v:w"));
	assert_header(&f.headers[2], S("empty"), S(""));
	stomp_parser_free(p);
}

static void
test_connect_connected_not_decoded(void **state)
{
	static const char in[] = "CONNECTED\nversion:1.2\n"
	    "server:x\\cy\\n\n\n\0"
	    "CONNECT\npasscode:a\\b:c\n\n\0";
	struct stomp_parser *p = parser();
	struct stomp_frame f;

	(void)state;
	one(p, in, sizeof(in) - 1, &f);
	assert_string_equal(f.command, "CONNECTED");
	assert_header(&f.headers[1], S("server"), S("x\\cy\\n"));
	assert_int_equal(stomp_parser_next(p, &f), STOMP_FRAME);
	assert_string_equal(f.command, "CONNECT");
	assert_header(&f.headers[0], S("passcode"), S("a\\b:c"));
	stomp_parser_free(p);
}

static void
test_unescape_off(void **state)
{
	struct stomp_parser *p = parser();
	struct stomp_frame f;

	(void)state;
	stomp_parser_set_unescape(p, false);
	one(p, S("MESSAGE\nm:a\\tb\\c\n\n\0"), &f);
	assert_header(&f.headers[0], S("m"), S("a\\tb\\c"));
	stomp_parser_free(p);
}

static void
test_bad_escapes(void **state)
{
	(void)state;
	expect_error(S("MESSAGE\na:b\\tc\n\n\0"), STOMP_E_BAD_ESCAPE);
	expect_error(S("MESSAGE\na:bc\\\n\n\0"), STOMP_E_BAD_ESCAPE);
	expect_error(S("MESSAGE\na\\x:b\n\n\0"), STOMP_E_BAD_ESCAPE);
	expect_error(S("ERROR\na:\\\r\n\r\n\0"), STOMP_E_BAD_ESCAPE);
}

static void
test_repeated_header_first_wins(void **state)
{
	static const char in[] = "MESSAGE\nfoo:World\nfoo:Hello\n"
	    "content-length:2\ncontent-length:5\n\nab\0";
	struct stomp_parser *p = parser();
	struct stomp_frame f;

	(void)state;
	one(p, in, sizeof(in) - 1, &f);
	assert_int_equal(f.nheaders, 4);
	assert_string_equal(stomp_frame_value(&f, "foo"), "World");
	assert_header(&f.headers[1], S("foo"), S("Hello"));
	/* the first content-length decides the body */
	assert_int_equal(f.body_len, 2);
	assert_string_equal(f.body, "ab");
	stomp_parser_free(p);
}

static void
test_bad_header_lines(void **state)
{
	(void)state;
	expect_error(S("MESSAGE\nnocolon\n\n\0"), STOMP_E_BAD_HEADER);
	expect_error(S("MESSAGE\n:value\n\n\0"), STOMP_E_BAD_HEADER);
}

static void
test_binary_header_value(void **state)
{
	/* RabbitMQ: AMQP 1.0 properties as a binary header (escaped 1.2) */
	static const char in[] = "MESSAGE\n"
	    "x-amqp-1.0-properties:\0S\x73\xd0\0\0\0\x0e\0\\n\\r\\c\x01\xff\n"
	    "destination:/queue/q\n\n{}\0";
	static const char want[] = "\0S\x73\xd0\0\0\0\x0e\0\n\r:\x01\xff";
	struct stomp_parser *p = parser();
	const struct stomp_header *h;
	struct stomp_frame f;

	(void)state;
	one(p, in, sizeof(in) - 1, &f);
	h = stomp_frame_header(&f, "x-amqp-1.0-properties");
	assert_non_null(h);
	assert_int_equal(h->value_len, sizeof(want) - 1);
	assert_memory_equal(h->value, want, sizeof(want) - 1);
	/* never silently cut at the NUL */
	assert_null(stomp_frame_value(&f, "x-amqp-1.0-properties"));
	assert_string_equal(stomp_frame_value(&f, "destination"),
	    "/queue/q");
	assert_string_equal(f.body, "{}");
	stomp_parser_free(p);
}

/* ---- bodies ------------------------------------------------------------ */

static void
test_content_length_with_nuls(void **state)
{
	static const char in[] = "MESSAGE\ncontent-length:5\n\na\0b\0c\0"
	    "\nRECEIPT\nreceipt-id:1\n\n\0";
	struct stomp_parser *p = parser();
	struct stomp_frame f;

	(void)state;
	one(p, in, sizeof(in) - 1, &f);
	assert_int_equal(f.body_len, 5);
	assert_memory_equal(f.body, "a\0b\0c\0", 6);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_FRAME);
	assert_string_equal(f.command, "RECEIPT");
	stomp_parser_free(p);
}

/*
 * A content-length over max_body: the frame comes out with its headers,
 * an empty body and skipped set, at any chunking; its body is read past
 * without being buffered, and the next frame parses as usual.
 */
static void
test_body_over_max_body_skipped(void **state)
{
	static const char head[] = "MESSAGE\nack:a1\ncontent-length:20\n\n";
	static const char next[] = "MESSAGE\ncontent-length:3\n\nabc";
	const struct stomp_limits lim = { .max_body = 8 };
	char data[256];
	size_t len = 0, chunk, off, n, seen;
	struct stomp_frame f;
	enum stomp_result r;

	(void)state;
	memcpy(data, head, sizeof(head) - 1);
	len = sizeof(head) - 1;
	memset(data + len, 0, 20);		/* a body of NULs and octets */
	memset(data + len + 5, 'x', 10);
	len += 20;
	data[len++] = '\0';
	memcpy(data + len, next, sizeof(next));	/* with its NUL */
	len += sizeof(next);
	for (chunk = 1; chunk <= len; chunk++) {
		struct stomp_parser *p = stomp_parser_new(&lim);

		assert_non_null(p);
		for (off = 0, seen = 0; off < len; off += n) {
			n = len - off < chunk ? len - off : chunk;
			assert_int_equal(stomp_parser_feed(p, data + off, n), 0);
			while ((r = stomp_parser_next(p, &f)) == STOMP_FRAME) {
				assert_string_equal(f.command, "MESSAGE");
				if (seen++ == 0) {
					assert_int_equal(f.skipped, 20);
					assert_int_equal(f.body_len, 0);
					assert_string_equal(f.body, "");
					assert_string_equal(stomp_frame_value(&f,
					    "ack"), "a1");
				} else {
					assert_int_equal(f.skipped, 0);
					assert_int_equal(f.body_len, 3);
					assert_memory_equal(f.body, "abc", 3);
				}
			}
			assert_int_equal(r, STOMP_NEED_MORE);
		}
		assert_int_equal(seen, 2);
		stomp_parser_free(p);
	}
}

/* A skipped body is never buffered: 4 MB in 4 KiB reads keep the buffer
 * to a read's size; a missing NUL after it is still an error. */
static void
test_skipped_body_not_buffered(void **state)
{
	static const char head[] =
	    "MESSAGE\nack:a2\ncontent-length:4000000\n\n";
	const struct stomp_limits lim = { .max_body = 1000 };
	struct stomp_parser *p = stomp_parser_new(&lim);
	char chunk[4096];
	struct stomp_frame f;
	size_t left = 4000000, n, frames = 0;

	(void)state;
	assert_non_null(p);
	memset(chunk, 'y', sizeof(chunk));
	assert_int_equal(stomp_parser_feed(p, head, sizeof(head) - 1), 0);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_FRAME);
	assert_int_equal(f.skipped, 4000000);
	while (left > 0) {
		n = left < sizeof(chunk) ? left : sizeof(chunk);
		assert_int_equal(stomp_parser_feed(p, chunk, n), 0);
		while (stomp_parser_next(p, &f) == STOMP_FRAME)
			frames++;
		assert_true(stomp_parser_capacity(p) <= 64 * 1024);
		assert_true(stomp_parser_partial(p) == left - n + 1);
		left -= n;
	}
	assert_int_equal(frames, 0);
	assert_int_equal(stomp_parser_feed(p, "Z", 1), 0);	/* not NUL */
	assert_int_equal(stomp_parser_next(p, &f), STOMP_ERROR);
	assert_int_equal(stomp_parser_errcode(p), STOMP_E_NO_NUL);
	stomp_parser_free(p);
}

static void
test_content_length_zero(void **state)
{
	struct stomp_parser *p = parser();
	struct stomp_frame f;

	(void)state;
	one(p, S("SEND\ncontent-length:0\n\n\0"), &f);
	assert_int_equal(f.body_len, 0);
	stomp_parser_free(p);
}

static void
test_content_length_without_nul(void **state)
{
	(void)state;
	expect_error(S("MESSAGE\ncontent-length:2\n\nabc\0"), STOMP_E_NO_NUL);
}

static void
test_bad_content_length(void **state)
{
	(void)state;
	expect_error(S("MESSAGE\ncontent-length:12a\n\n\0"),
	    STOMP_E_BAD_CONTENT_LENGTH);
	expect_error(S("MESSAGE\ncontent-length:-1\n\n\0"),
	    STOMP_E_BAD_CONTENT_LENGTH);
	expect_error(S("MESSAGE\ncontent-length:\n\n\0"),
	    STOMP_E_BAD_CONTENT_LENGTH);
	expect_error(S("MESSAGE\ncontent-length: 5\n\nabcde\0"),
	    STOMP_E_BAD_CONTENT_LENGTH);
	expect_error(S("MESSAGE\ncontent-length:5 \n\nabcde\0"),
	    STOMP_E_BAD_CONTENT_LENGTH);
}

static void
test_body_ends_at_first_nul(void **state)
{
	struct stomp_parser *p = parser();
	struct stomp_frame f;

	(void)state;
	/* without content-length "b" starts a new frame: a bad command */
	one(p, S("SEND\ndestination:/q\n\na\0b\0"), &f);
	assert_int_equal(f.body_len, 1);
	assert_string_equal(f.body, "a");
	assert_int_equal(stomp_parser_next(p, &f), STOMP_ERROR);
	assert_int_equal(stomp_parser_errcode(p), STOMP_E_BAD_COMMAND);
	stomp_parser_free(p);
}

/* ---- commands ------------------------------------------------------------- */

static void
test_bad_commands(void **state)
{
	(void)state;
	expect_error(S("message\n\n\0"), STOMP_E_BAD_COMMAND);
	expect_error(S("MESS AGE\n\n\0"), STOMP_E_BAD_COMMAND);
	expect_error(S("SEND\r\r\n\n\0"), STOMP_E_BAD_COMMAND);
	expect_error(S("\0"), STOMP_E_BAD_COMMAND);
	expect_error(S("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ\n\n\0"),
	    STOMP_E_COMMAND_TOO_LONG);
}

static void
test_garbage(void **state)
{
	static const char junk[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03";
	struct stomp_parser *p = parser();
	struct stomp_frame f;
	unsigned seed = 12345;
	char rnd[4096];
	int i, round;

	(void)state;
	/* a TLS ClientHello sent to a plain port fails on the first octet */
	expect_error(junk, sizeof(junk) - 1, STOMP_E_BAD_COMMAND);
	expect_error(S("HTTP/1.1 400 Bad Request\r\n\r\n"), STOMP_E_BAD_COMMAND);
	/* random octets: an error (or need-more), never a crash */
	for (round = 0; round < 200; round++) {
		enum stomp_result r;

		for (i = 0; i < (int)sizeof(rnd); i++) {
			seed = seed * 1103515245u + 12345u;
			rnd[i] = (char)(seed >> 16);
		}
		stomp_parser_reset(p);
		assert_int_equal(stomp_parser_feed(p, rnd, sizeof(rnd)), 0);
		while ((r = stomp_parser_next(p, &f)) == STOMP_FRAME)
			;
		assert_true(r == STOMP_ERROR || r == STOMP_NEED_MORE);
	}
	stomp_parser_free(p);
}

/* ---- limits --------------------------------------------------------------- */

static void
test_too_many_headers(void **state)
{
	struct buf b = BUF_INIT;
	struct stomp_parser *p = parser();
	struct stomp_frame f;
	int i;

	(void)state;
	buf_adds(&b, "MESSAGE\n");
	for (i = 0; i < 10000; i++)
		buf_printf(&b, "h%d:v\n", i);
	buf_adds(&b, "\n\0");
	assert_int_equal(stomp_parser_feed(p, b.data, b.len + 1), 0);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_ERROR);
	assert_int_equal(stomp_parser_errcode(p), STOMP_E_TOO_MANY_HEADERS);
	assert_non_null(strstr(stomp_parser_error(p), "more than 1000 headers"));
	stomp_parser_free(p);

	/* exactly the limit is fine */
	b.len = 0;
	buf_adds(&b, "MESSAGE\n");
	for (i = 0; i < 1000; i++)
		buf_printf(&b, "h%d:v\n", i);
	buf_adds(&b, "\n");
	p = parser();
	one(p, b.data, b.len + 1, &f);
	assert_int_equal(f.nheaders, 1000);
	assert_string_equal(stomp_frame_value(&f, "h999"), "v");
	stomp_parser_free(p);
	buf_free(&b);
}

static void
test_custom_limits(void **state)
{
	struct stomp_limits lim = { 64, 2, 10, 4, 0 };
	struct stomp_parser *p;
	struct stomp_frame f;

	(void)state;
	p = stomp_parser_new(&lim);
	assert_non_null(p);
	one(p, S("SEND\na:12345678\n\n\0"), &f);	/* a line of 10 */
	stomp_parser_free(p);
	lim.max_line = 5;
	p = stomp_parser_new(&lim);
	assert_int_equal(stomp_parser_feed(p, S("SEND\na:12345\n\n\0")), 0);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_ERROR);
	assert_int_equal(stomp_parser_errcode(p), STOMP_E_LINE_TOO_LONG);
	stomp_parser_free(p);
	lim.max_line = 100;
	p = stomp_parser_new(&lim);
	assert_int_equal(stomp_parser_feed(p, S("SENDX\n\n\0")), 0);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_ERROR);
	assert_int_equal(stomp_parser_errcode(p), STOMP_E_COMMAND_TOO_LONG);
	stomp_parser_free(p);
	p = stomp_parser_new(&lim);
	assert_int_equal(stomp_parser_feed(p, S("SEND\na:1\nb:2\nc:3\n\n\0")), 0);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_ERROR);
	assert_int_equal(stomp_parser_errcode(p), STOMP_E_TOO_MANY_HEADERS);
	stomp_parser_free(p);
	/* a 64-octet frame passes, 65 does not (command+EOL+EOL+NUL = 8) */
	p = stomp_parser_new(&lim);
	{
		char fr[80];

		memset(fr, 'x', sizeof(fr));
		memcpy(fr, "SEND\n\n", 6);
		fr[6 + 57] = '\0';
		one(p, fr, 64, &f);
		assert_int_equal(f.body_len, 57);
		stomp_parser_reset(p);
		fr[6 + 57] = 'x';
		fr[6 + 58] = '\0';
		assert_int_equal(stomp_parser_feed(p, fr, 65), 0);
		assert_int_equal(stomp_parser_next(p, &f), STOMP_ERROR);
		assert_int_equal(stomp_parser_errcode(p),
		    STOMP_E_FRAME_TOO_LARGE);
		/* the same with content-length: refused at the blank line */
		stomp_parser_reset(p);
		assert_int_equal(stomp_parser_feed(p,
		    S("SEND\ncontent-length:50\n\n")), 0);
		assert_int_equal(stomp_parser_next(p, &f), STOMP_ERROR);
		assert_int_equal(stomp_parser_errcode(p),
		    STOMP_E_FRAME_TOO_LARGE);
	}
	stomp_parser_free(p);
}

static void
test_line_too_long_default(void **state)
{
	struct stomp_parser *p = parser();
	struct stomp_frame f;
	char *big = malloc(70000);
	size_t i;

	(void)state;
	assert_non_null(big);
	memset(big, 'v', 70000);
	assert_int_equal(stomp_parser_feed(p, S("MESSAGE\nk:")), 0);
	/* fed without an EOL: refused once the line passes 64 KiB */
	for (i = 0; i < 70000; i += 1000) {
		assert_int_equal(stomp_parser_feed(p, big + i, 1000), 0);
		if (stomp_parser_next(p, &f) == STOMP_ERROR)
			break;
	}
	assert_true(i < 70000);
	assert_int_equal(stomp_parser_errcode(p), STOMP_E_LINE_TOO_LONG);
	assert_true(stomp_parser_capacity(p) < 200 * 1024);
	stomp_parser_free(p);
	free(big);
}

static void
test_huge_content_length_refused_fast(void **state)
{
	struct stomp_parser *p = parser();
	struct stomp_frame f;
	clock_t t0 = clock();

	(void)state;
	assert_int_equal(stomp_parser_feed(p,
	    S("MESSAGE\ndestination:/q\ncontent-length:2147483648\n\n")), 0);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_ERROR);
	assert_int_equal(stomp_parser_errcode(p), STOMP_E_FRAME_TOO_LARGE);
	assert_non_null(strstr(stomp_parser_error(p), "2147483648"));
	/* nothing of the body was waited for or buffered */
	assert_true(stomp_parser_capacity(p) < 64 * 1024);
	assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 0.5);
	stomp_parser_free(p);
	/* and one that does not fit in 64 bits */
	expect_error(S("MESSAGE\ncontent-length:99999999999999999999999\n\n"),
	    STOMP_E_FRAME_TOO_LARGE);
}

static void
test_frame_too_large_without_content_length(void **state)
{
	struct stomp_parser *p = parser();
	struct stomp_frame f;
	char *chunk = malloc(1 << 20);
	size_t fed = 0;
	enum stomp_result r = STOMP_NEED_MORE;

	(void)state;
	assert_non_null(chunk);
	memset(chunk, 'b', 1 << 20);
	assert_int_equal(stomp_parser_feed(p, S("SEND\n\n")), 0);
	while (fed < 20u << 20 && r == STOMP_NEED_MORE) {
		assert_int_equal(stomp_parser_feed(p, chunk, 1 << 20), 0);
		fed += 1 << 20;
		r = stomp_parser_next(p, &f);
	}
	assert_int_equal(r, STOMP_ERROR);
	assert_int_equal(stomp_parser_errcode(p), STOMP_E_FRAME_TOO_LARGE);
	assert_true(fed <= 17u << 20);
	stomp_parser_free(p);
	free(chunk);
}

static void
test_memory_released_after_big_frame(void **state)
{
	struct stomp_parser *p = parser();
	struct stomp_frame f;
	struct buf b = BUF_INIT;

	(void)state;
	buf_printf(&b, "MESSAGE\ncontent-length:%d\n\n", 4 << 20);
	assert_non_null(buf_reserve(&b, (4 << 20) + 1));
	memset(b.data + b.len, 'z', 4 << 20);
	b.len += 4 << 20;
	buf_addc(&b, '\0');
	one(p, b.data, b.len, &f);
	assert_int_equal(f.body_len, 4 << 20);
	assert_int_equal(stomp_parser_next(p, &f), STOMP_NEED_MORE);
	assert_true(stomp_parser_capacity(p) >= 4u << 20);
	assert_int_equal(stomp_parser_feed(p, S("\n")), 0);
	assert_true(stomp_parser_capacity(p) < 256 * 1024);
	stomp_parser_free(p);
	buf_free(&b);
}

/* ---- incremental feeding ------------------------------------------------ */

static const char stream[] =
    "\n\r\nCONNECTED\r\nversion:1.2\r\nheart-beat:0,1000\r\n"
    "server:Rabbit\\c3\r\n\r\n\0"
    "\nMESSAGE\ndestination:/topic/a.b\nmessage-id:ID\\c1\\\\2\n"
    "ack:T-1\nsubscription:s\ncontent-length:7\nx-bin:\0\1\2\\n\n\n"
    "{\0\"a\"}\0\0\n\n"
    "MESSAGE\ndestination:/topic/a.b\n\n{\"text\": \"\xc3\xa9t\xc3\xa9\"}\0"
    "RECEIPT\r\nreceipt-id:r-17\r\n\r\n\0"
    "ERROR\nmessage:Access refused\ncontent-type:text/plain\n"
    "content-length:12\n\nbad password\0\r\n";

static void
test_bytewise_equals_oneshot(void **state)
{
	char e1[256], e2[256], e3[256];
	enum stomp_result r1, r2, r3;
	uint64_t h1, h2, h3;
	size_t n1, n2, n3;
	char *a, *b, *c;

	(void)state;
	a = parse_all(stream, sizeof(stream) - 1, 0, &h1, &r1, e1, sizeof(e1),
	    &n1);
	b = parse_all(stream, sizeof(stream) - 1, 1, &h2, &r2, e2, sizeof(e2),
	    &n2);
	c = parse_all(stream, sizeof(stream) - 1, 7, &h3, &r3, e3, sizeof(e3),
	    &n3);
	assert_int_equal(r1, STOMP_NEED_MORE);
	assert_int_equal(h1, 6);
	assert_int_equal(n1, n2);
	assert_int_equal(n1, n3);
	assert_memory_equal(a, b, n1);
	assert_memory_equal(a, c, n1);
	assert_int_equal(h1, h2);
	assert_int_equal(h1, h3);
	assert_int_equal(r1, r2);
	assert_int_equal(r1, r3);
	assert_non_null(memmem(a, n1, S("[ERROR]")));
	assert_non_null(memmem(a, n1, S("12:bad password")));
	assert_non_null(memmem(a, n1, S("6:server=9:Rabbit\\c3")));
	assert_non_null(memmem(a, n1, S("5:x-bin=4:\0\1\2\n")));
	assert_non_null(memmem(a, n1, S("}7:{\0\"a\"}\0")));
	free(a);
	free(b);
	free(c);
}

static void
test_bytewise_errors_agree(void **state)
{
	static const char bad[] = "MESSAGE\na:1\n\nx\0MESSAGE\nb:\\q\n\n\0";
	char e1[256], e2[256];
	enum stomp_result r1, r2;
	uint64_t h1, h2;
	size_t n1, n2;
	char *a, *b;

	(void)state;
	a = parse_all(bad, sizeof(bad) - 1, 0, &h1, &r1, e1, sizeof(e1), &n1);
	b = parse_all(bad, sizeof(bad) - 1, 1, &h2, &r2, e2, sizeof(e2), &n2);
	assert_int_equal(r1, STOMP_ERROR);
	assert_int_equal(r2, STOMP_ERROR);
	assert_int_equal(n1, n2);
	assert_memory_equal(a, b, n1);
	/* the same error at the same stream offset */
	assert_string_equal(e1, e2);
	assert_non_null(strstr(e1, "at byte 25"));
	free(a);
	free(b);
}

/* ---- writer ------------------------------------------------------------- */

static void
test_write_escapes(void **state)
{
	static const char *const hdrs[] = {
		"destination", "/queue/a:b",
		"we\\ird:name", "line1\nline2\r",
		"skipped", NULL,
		NULL,
	};
	struct buf b = BUF_INIT;
	const char *why = NULL;
	struct stomp_parser *p = parser();
	struct stomp_frame f;

	(void)state;
	assert_int_equal(stomp_frame_build(&b, "SEND", hdrs, "hi", 2,
	    STOMP_W_CONTENT_LENGTH, &why), 0);
	assert_int_equal(b.len, strlen(b.data) + 1);
	assert_string_equal(b.data, "SEND\ncontent-length:2\n"
	    "destination:/queue/a\\cb\nwe\\\\ird\\cname:line1\\nline2\\r\n"
	    "\nhi");
	one(p, b.data, b.len, &f);
	assert_int_equal(f.nheaders, 3);
	assert_string_equal(stomp_frame_value(&f, "destination"), "/queue/a:b");
	assert_string_equal(stomp_frame_value(&f, "we\\ird:name"),
	    "line1\nline2\r");
	stomp_parser_free(p);
	buf_free(&b);
}

static void
test_write_connect_raw(void **state)
{
	static const char *const ok[] = {
		"accept-version", "1.1,1.2", "passcode", "p:a\\ss", NULL,
	};
	static const char *const crlf[] = { "passcode", "a\nb", NULL };
	static const char *const colon[] = { "a:b", "x", NULL };
	struct buf b = BUF_INIT;
	const char *why = NULL;

	(void)state;
	assert_int_equal(stomp_frame_build(&b, "CONNECT", ok, NULL, 0, 0,
	    &why), 0);
	assert_string_equal(b.data,
	    "CONNECT\naccept-version:1.1,1.2\npasscode:p:a\\ss\n\n");
	b.len = 0;
	assert_int_equal(stomp_frame_build(&b, "CONNECT", crlf, NULL, 0, 0,
	    &why), -1);
	assert_non_null(strstr(why, "CR or LF"));
	assert_int_equal(b.len, 0);
	assert_int_equal(stomp_frame_build(&b, "CONNECT", colon, NULL, 0, 0,
	    &why), -1);
	/* NO_ESCAPE (STOMP 1.0 peers) applies the same rules to any frame */
	assert_int_equal(stomp_frame_build(&b, "SEND", crlf, NULL, 0,
	    STOMP_W_NO_ESCAPE, &why), -1);
	buf_free(&b);
}

static void
test_write_refusals(void **state)
{
	static const char *const cl[] = { "content-length", "3", NULL };
	static const char *const empty[] = { "", "x", NULL };
	struct buf b = BUF_INIT;
	const char *why = NULL;

	(void)state;
	buf_adds(&b, "keep");
	assert_int_equal(stomp_frame_build(&b, "SEND", NULL, "a\0b", 3, 0,
	    &why), -1);
	assert_non_null(strstr(why, "NUL"));
	assert_string_equal(b.data, "keep");
	assert_int_equal(stomp_frame_build(&b, "SEND", cl, "ab", 2, 0, &why),
	    -1);
	assert_non_null(strstr(why, "does not match"));
	assert_int_equal(stomp_frame_build(&b, "send", NULL, NULL, 0, 0, &why),
	    -1);
	assert_int_equal(stomp_frame_build(&b, "", NULL, NULL, 0, 0, &why), -1);
	assert_int_equal(stomp_frame_build(&b, "SEND", empty, NULL, 0, 0,
	    &why), -1);
	assert_string_equal(b.data, "keep");
	assert_int_equal(b.len, 4);
	/* a given content-length that matches is kept verbatim */
	assert_int_equal(stomp_frame_build(&b, "SEND", cl, "a\0b", 3, 0, &why),
	    0);
	assert_memory_equal(b.data, "keepSEND\ncontent-length:3\n\na\0b\0", 31);
	buf_free(&b);
}

static void
test_write_parse_roundtrip(void **state)
{
	struct stomp_parser *p = parser(), *q = parser();
	struct buf b = BUF_INIT, d1 = BUF_INIT, d2 = BUF_INIT;
	struct stomp_frame f, g;
	const char *why;
	int n = 0;

	(void)state;
	assert_int_equal(stomp_parser_feed(p, stream, sizeof(stream) - 1), 0);
	while (stomp_parser_next(p, &f) == STOMP_FRAME) {
		b.len = 0;
		assert_int_equal(stomp_frame_write(&b, &f, 0, &why), 0);
		stomp_parser_reset(q);
		one(q, b.data, b.len, &g);
		d1.len = d2.len = 0;
		dump(&d1, &f);
		dump(&d2, &g);
		assert_int_equal(d1.len, d2.len);
		assert_memory_equal(d1.data, d2.data, d1.len);
		n++;
	}
	assert_int_equal(n, 5);
	stomp_parser_free(p);
	stomp_parser_free(q);
	buf_free(&b);
	buf_free(&d1);
	buf_free(&d2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_frame),
		cmocka_unit_test(test_no_headers_no_body),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_heartbeats),
		cmocka_unit_test(test_several_frames_one_feed),
		cmocka_unit_test(test_escapes_decoded),
		cmocka_unit_test(test_connect_connected_not_decoded),
		cmocka_unit_test(test_unescape_off),
		cmocka_unit_test(test_bad_escapes),
		cmocka_unit_test(test_repeated_header_first_wins),
		cmocka_unit_test(test_bad_header_lines),
		cmocka_unit_test(test_binary_header_value),
		cmocka_unit_test(test_content_length_with_nuls),
		cmocka_unit_test(test_body_over_max_body_skipped),
		cmocka_unit_test(test_skipped_body_not_buffered),
		cmocka_unit_test(test_content_length_zero),
		cmocka_unit_test(test_content_length_without_nul),
		cmocka_unit_test(test_bad_content_length),
		cmocka_unit_test(test_body_ends_at_first_nul),
		cmocka_unit_test(test_bad_commands),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_too_many_headers),
		cmocka_unit_test(test_custom_limits),
		cmocka_unit_test(test_line_too_long_default),
		cmocka_unit_test(test_huge_content_length_refused_fast),
		cmocka_unit_test(test_frame_too_large_without_content_length),
		cmocka_unit_test(test_memory_released_after_big_frame),
		cmocka_unit_test(test_bytewise_equals_oneshot),
		cmocka_unit_test(test_bytewise_errors_agree),
		cmocka_unit_test(test_write_escapes),
		cmocka_unit_test(test_write_connect_raw),
		cmocka_unit_test(test_write_refusals),
		cmocka_unit_test(test_write_parse_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
