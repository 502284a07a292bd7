/*
 * fedmsg-c message API: the fedmsg envelope, parsed the way Python's json
 * module reads it and re-emitted as fedmsg's canonical JSON.
 *
 * A struct fm_msg is immutable and reference counted.  It keeps the exact
 * body bytes it was parsed from (or built as), so a relay forwards them
 * verbatim and signatures stay valid whatever the sender's spelling.
 *
 * Thread rules: an fm_msg may be read from any number of threads at once;
 * fm_msg_ref()/fm_msg_unref() are atomic.  Nothing here keeps global state.
 */
#ifndef FEDMSG_MESSAGE_H
#define FEDMSG_MESSAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults for struct fm_limits (documented in README.md). */
#define FM_DEFAULT_MAX_MESSAGE_BYTES	(8u * 1024 * 1024)
#define FM_DEFAULT_MAX_JSON_DEPTH	1000u
/* Python 3.11 refuses to parse integers longer than this (int_max_str_digits). */
#define FM_MAX_INT_DIGITS		4300u

/* Input limits; a zero field means "use the default". */
struct fm_limits {
	size_t	max_message_bytes;
	size_t	max_json_depth;
};

/* Size of the buffer callers pass for error texts. */
#define FM_ERRLEN 256

struct fm_msg;

/*
 * Parse a body frame.  The body must be one JSON object (whitespace around
 * it allowed), UTF-8, within the limits, and no object in it may hold a key
 * twice (keys compared after decoding escapes): readers that keep the first
 * copy would act on other content than the signature covers.  On success returns 0 and stores
 * a new message with one reference in *out; the bytes are copied.
 * On failure returns -1 and writes a specific reason (with the byte offset
 * where it applies) into err[FM_ERRLEN].
 */
int fm_msg_parse(const void *body, size_t len, const struct fm_limits *lim,
    struct fm_msg **out, char *err);

/* Take another reference; returns msg. */
struct fm_msg *fm_msg_ref(struct fm_msg *msg);
/* Drop a reference; frees the message with the last one.  NULL is fine. */
void fm_msg_unref(struct fm_msg *msg);

/* The exact body bytes (not NUL-terminated inside; a NUL follows them). */
const char *fm_msg_body(const struct fm_msg *msg, size_t *len);

/*
 * Top-level string fields, NUL-terminated UTF-8 owned by the message, or
 * NULL when absent, not a string, or containing a NUL character.
 */
const char *fm_msg_topic(const struct fm_msg *msg);
const char *fm_msg_id(const struct fm_msg *msg);
const char *fm_msg_username(const struct fm_msg *msg);
const char *fm_msg_crypto(const struct fm_msg *msg);

/*
 * The CN of the certificate that signed the message, recorded by the first
 * validator that accepted it (fm_validator_check); NULL before that, or
 * when the message was never validated.
 */
const char *fm_msg_signer(const struct fm_msg *msg);

/* "i" as an integer; returns false when absent or not an int64. */
bool fm_msg_seq(const struct fm_msg *msg, int64_t *i);
/* "timestamp" (int or float) as seconds; false when absent/not a number. */
bool fm_msg_timestamp(const struct fm_msg *msg, double *ts);

/*
 * Canonical JSON (fedmsg.encoding.dumps) of the whole envelope, or of it
 * without the top-level "signature" and "certificate" when unsigned is
 * true: the text fedmsg signs.  Returns a malloc'ed NUL-terminated string
 * the caller frees, length in *len (may be NULL), or NULL on OOM.
 */
char *fm_msg_canonical(const struct fm_msg *msg, bool unsigned_, size_t *len);

/*
 * Canonical JSON of the "msg" member (or of "headers"), malloc'ed, or NULL
 * when absent.  For handing a payload across an ABI as text.
 */
char *fm_msg_member_json(const struct fm_msg *msg, const char *key,
    size_t *len);

/*
 * Build the fully qualified topic the way fedmsg.publish() does:
 * topic defaults to "unspecified"; t = modname "." topic; when t does not
 * start with prefix, t = prefix "." env "." t.  Returns a malloc'ed string.
 */
char *fm_topic_build(const char *prefix, const char *env,
    const char *modname, const char *topic);

/*
 * Make a msg_id: "<local year>-<uuid4>".  out must hold FM_MSG_ID_LEN + 1.
 * Returns 0, or -1 if the system gave no randomness.
 */
#define FM_MSG_ID_LEN 41
int fm_msg_id_new(char out[FM_MSG_ID_LEN + 1]);

/* What fm_msg_build() needs; see fedmsg's FedMsgContext.publish(). */
struct fm_msg_fields {
	const char	*topic;		/* fully qualified (fm_topic_build) */
	const char	*msg_json;	/* payload as JSON text; NULL = {} */
	size_t		 msg_len;	/* 0 = strlen(msg_json) */
	const char	*headers_json;	/* optional "headers" object text */
	const char	*msg_id;	/* NULL: generated */
	int64_t		 i;		/* sequence number within the sender */
	int64_t		 timestamp;	/* NULL-like 0: time(NULL) */
	const char	*username;	/* NULL: from the environment/passwd */
};

/*
 * Build an unsigned envelope.  A falsy payload (null, {}, [], "", 0, 0.0,
 * false) becomes {} as in fedmsg.  The body is canonical JSON.  Returns 0
 * and a new message in *out, or -1 with a reason in err[FM_ERRLEN].
 */
int fm_msg_build(const struct fm_msg_fields *f, const struct fm_limits *lim,
    struct fm_msg **out, char *err);

#ifdef __cplusplus
}
#endif
#endif /* FEDMSG_MESSAGE_H */
