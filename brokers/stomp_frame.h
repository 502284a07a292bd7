/*
 * STOMP 1.2 / 1.1 frame codec, without I/O.
 *
 * Parser: an incremental parser that is fed bytes as they arrive and
 * hands out complete frames:
 *
 *	stomp_parser_feed(p, data, len);
 *	while ((r = stomp_parser_next(p, &f)) == STOMP_FRAME)
 *		... use f ...
 *	if (r == STOMP_ERROR)
 *		... stomp_parser_error(p) says why; the stream is unusable ...
 *
 * Wire rules: COMMAND EOL *(name:value EOL) EOL body NUL, EOL = LF or
 * CRLF.  EOLs between frames are heart-beats (counted).  Header names and
 * values are unescaped (\r \n \c \\; any other backslash sequence is an
 * error) except in CONNECT and CONNECTED frames.  Nothing is trimmed.  A
 * header may repeat: all occurrences are kept in order and the lookup
 * functions return the first (the one that counts).  With content-length
 * exactly that many octets are read (NULs allowed) and a NUL must follow;
 * without it the body ends at the first NUL.
 *
 * Header names and values are (pointer, length) pairs and may contain NUL
 * bytes: RabbitMQ forwards AMQP 1.0 messages with a binary
 * x-amqp-1.0-properties header.  Each is also NUL-terminated for
 * convenience; stomp_frame_value() refuses (NULL) a value with a NUL
 * inside rather than truncate it silently.
 *
 * Memory: the parser buffers the unparsed input plus at most one frame,
 * which is bounded by the limits (a frame that would exceed max_frame is
 * refused as soon as that is known, before its body is buffered: a
 * content-length of 2 GB fails at the end of the headers).  Feed in
 * chunks and drain with stomp_parser_next() after each one.
 *
 * Writer: stomp_frame_write() appends one encoded frame to a struct buf.
 */
#ifndef FM_STOMP_FRAME_H
#define FM_STOMP_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Default limits (a zero field of struct stomp_limits means these). */
#define STOMP_DEFAULT_MAX_FRAME		(16u * 1024 * 1024)	/* octets */
#define STOMP_DEFAULT_MAX_HEADERS	1000u
#define STOMP_DEFAULT_MAX_LINE		(64u * 1024)		/* octets */
#define STOMP_DEFAULT_MAX_COMMAND	32u			/* octets */

struct stomp_limits {
	/* whole frame from the command's first octet to the final NUL */
	size_t	max_frame;
	/* header lines per frame */
	size_t	max_headers;
	/* one header line as sent (escaped), without its EOL */
	size_t	max_line;
	/* the command line, without its EOL */
	size_t	max_command;
	/*
	 * A content-length above this: the frame comes out with its headers
	 * and an empty body, skipped set, and its body is read past without
	 * being buffered (a broker's oversized MESSAGE can then be refused
	 * instead of failing the connection it would come back on).  0: no
	 * such frames; max_frame still bounds the rest.
	 */
	size_t	max_body;
};

struct stomp_header {
	const char	*name;		/* NUL-terminated; may contain NULs */
	size_t		 name_len;
	const char	*value;		/* NUL-terminated; may contain NULs */
	size_t		 value_len;
};

struct stomp_frame {
	const char		*command;	/* e.g. "MESSAGE" */
	const struct stomp_header *headers;	/* in wire order */
	size_t			 nheaders;
	const char		*body;	/* NUL-terminated; may contain NULs */
	size_t			 body_len;
	size_t			 skipped; /* body octets not kept (over
					     max_body; body is ""), or 0 */
};

enum stomp_result {
	STOMP_ERROR = -1,	/* see stomp_parser_error(); sticky */
	STOMP_NEED_MORE = 0,	/* feed more bytes */
	STOMP_FRAME = 1,	/* *frame is set */
};

enum stomp_perr {
	STOMP_E_NONE = 0,
	STOMP_E_NOMEM,
	STOMP_E_BAD_EOL,		/* CR without LF between frames */
	STOMP_E_BAD_COMMAND,		/* empty, or not A-Z */
	STOMP_E_COMMAND_TOO_LONG,
	STOMP_E_LINE_TOO_LONG,
	STOMP_E_TOO_MANY_HEADERS,
	STOMP_E_BAD_HEADER,		/* no ':', or empty name */
	STOMP_E_BAD_ESCAPE,
	STOMP_E_BAD_CONTENT_LENGTH,	/* not 1-19 decimal digits */
	STOMP_E_FRAME_TOO_LARGE,	/* also a too large content-length */
	STOMP_E_NO_NUL,			/* no NUL after content-length octets */
};

struct stomp_parser;

/* lim may be NULL (all defaults).  Returns NULL when out of memory. */
struct stomp_parser *stomp_parser_new(const struct stomp_limits *lim);
void stomp_parser_free(struct stomp_parser *p);
/* Forget everything buffered and any error (a new connection). */
void stomp_parser_reset(struct stomp_parser *p);

/*
 * Unescape header names and values of frames other than CONNECT and
 * CONNECTED (default true; false for a STOMP 1.0 peer).
 */
void stomp_parser_set_unescape(struct stomp_parser *p, bool on);

/*
 * Append received bytes (copied).  Returns 0, or -1 when out of memory or
 * the parser is already in error.  Invalidates the last frame handed out.
 */
int stomp_parser_feed(struct stomp_parser *p, const void *data, size_t len);

/*
 * Parse on.  STOMP_FRAME: *frame points into the parser and stays valid
 * until the next call of any stomp_parser_* function on p.
 */
enum stomp_result stomp_parser_next(struct stomp_parser *p,
    struct stomp_frame *frame);

/* Why the last STOMP_ERROR happened (a text with the byte offset). */
enum stomp_perr stomp_parser_errcode(const struct stomp_parser *p);
const char *stomp_parser_error(const struct stomp_parser *p);

/* Heart-beats (EOLs between frames) seen since new/reset. */
uint64_t stomp_parser_heartbeats(const struct stomp_parser *p);
/* Frames handed out since new/reset. */
uint64_t stomp_parser_frames(const struct stomp_parser *p);
/* Octets of an incomplete frame held right now (0 = between frames). */
size_t stomp_parser_partial(const struct stomp_parser *p);
/* Octets of memory the input buffer holds (for tests of the bounds). */
size_t stomp_parser_capacity(const struct stomp_parser *p);

/* ---- frames ------------------------------------------------------------ */

/* The first header called name, or NULL. */
const struct stomp_header *stomp_frame_header(const struct stomp_frame *f,
    const char *name);
/* Its value as a C string; NULL if absent or if it contains a NUL. */
const char *stomp_frame_value(const struct stomp_frame *f, const char *name);

/* Does this command's header set go unescaped (CONNECT, CONNECTED)? */
bool stomp_command_is_raw(const char *command);

/* stomp_frame_write() flags */
#define STOMP_W_CONTENT_LENGTH	0x1	/* add content-length, drop any given */
#define STOMP_W_NO_ESCAPE	0x2	/* STOMP 1.0 peer: never escape */

/*
 * Append the encoded frame to out: command, headers in order (escaped
 * unless the command is CONNECT/CONNECTED or STOMP_W_NO_ESCAPE), blank
 * line, body, NUL.  Returns 0, or -1 with a static reason in *why (if not
 * NULL) and out unchanged when the frame cannot be encoded: bad command,
 * empty header name, a CR/LF (or ':' in a name) that may not be escaped,
 * a NUL in the body without content-length, a content-length that does not
 * match the body, or out of memory.
 */
int stomp_frame_write(struct buf *out, const struct stomp_frame *f,
    unsigned flags, const char **why);

/*
 * Shortcut for building frames from C strings: hdrs is a list of name,
 * value, name, value, ... ended by a NULL name (NULL hdrs = no headers);
 * a pair whose value is NULL is left out.
 */
int stomp_frame_build(struct buf *out, const char *command,
    const char *const *hdrs, const void *body, size_t body_len,
    unsigned flags, const char **why);

#endif
