/*
 * JSON values as Python's json module sees them, which is what fedmsg
 * signs.  jansson cannot be used for this: it loses integers beyond 64
 * bits, refuses lone surrogates, NUL in keys and NaN/Infinity (see
 * README.md, "Canonical JSON").  Names use the prefix jv_ because jansson,
 * linked into the same programs, owns json_.
 *
 * A parsed document lives in one arena (struct jv_doc); every value and
 * string in it is owned by the doc and freed with it.  Strings are WTF-8:
 * UTF-8 where lone surrogates (kept by Python) use their 3-byte form, so
 * memcmp order is code-point order.  Strings may contain NUL bytes.
 * Objects are sorted by key bytes and hold each key once (the last
 * occurrence wins, as in Python); the doc remembers that a key was
 * duplicated (jv_doc_duplicate), because other JSON readers keep the first
 * copy and would see different content.
 */
#ifndef FM_JSON_H
#define FM_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum jv_type {
	JV_NULL,
	JV_FALSE,
	JV_TRUE,
	JV_INT,	/* arbitrary size; canonical decimal text in str */
	JV_FLOAT,	/* double in num (may be inf/nan) */
	JV_STRING,
	JV_ARRAY,
	JV_OBJECT,
};

struct jv_member;

struct jv {
	enum jv_type	 type : 8;
	/*
	 * STRING from the parser: printable ASCII without '"' or '\\', so its
	 * canonical JSON is itself in quotes (the writer copies it without a
	 * scan).  0 = unknown: the writer escapes as usual.
	 */
	unsigned	 plain : 1;
	uint32_t	 len;	/* bytes (INT, STRING), count (ARRAY, OBJECT) */
	union {
		double			 num;
		const char		*str;
		struct jv	*items;
		struct jv_member	*members;
	} u;
};

struct jv_member {
	const char		*key;
	uint32_t		 key_len;
	bool			 key_plain;	/* as jv.plain, for the key */
	struct jv	 value;
};

struct jv_doc;

struct jv_parse_opts {
	size_t	max_depth;	/* nesting limit; 0 = FM_DEFAULT_MAX_JSON_DEPTH */
	/*
	 * Strings without escapes point into the input instead of being copied;
	 * the caller then keeps the input alive as long as the doc.
	 */
	bool	borrow_input;
};

/*
 * Parse one JSON value (leading/trailing whitespace allowed) with Python's
 * json.loads() rules: raw UTF-8 must be valid, control characters inside
 * strings are errors, NaN/Infinity/-Infinity are accepted, numbers keep
 * int vs float.  Returns the doc, or NULL with a reason (and byte offset)
 * in err[FM_ERRLEN].
 */
struct jv_doc *jv_parse(const char *text, size_t len,
    const struct jv_parse_opts *opts, char *err);

const struct jv *jv_doc_root(const struct jv_doc *doc);
void jv_doc_free(struct jv_doc *doc);

/*
 * Did any object in the document hold a key twice (compared after
 * decoding escapes, at any depth)?  If so, the first one found: its key
 * bytes (owned by the doc, or in the input with borrow_input) and the byte
 * offset of the object holding it.  Each pointer may be NULL.
 */
bool jv_doc_duplicate(const struct jv_doc *doc, const char **key,
    size_t *key_len, size_t *at);

/* Member lookup by key bytes (binary search); NULL when absent. */
const struct jv *jv_getn(const struct jv *obj,
    const char *key, size_t key_len);
const struct jv *jv_get(const struct jv *obj,
    const char *key);

/* True for what Python treats as false: null, false, 0, 0.0, "", [], {}. */
bool jv_is_falsy(const struct jv *v);

#endif
