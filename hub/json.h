/*
 * JSON values as Python's json module sees them, which is what fedmsg
 * signs.  jansson cannot be used for this: it loses integers beyond 64
 * bits, refuses lone surrogates, NUL in keys and NaN/Infinity (see
 * README.md, "Canonical JSON").
 *
 * A parsed document lives in one arena (struct json_doc); every value and
 * string in it is owned by the doc and freed with it.  Strings are WTF-8:
 * UTF-8 where lone surrogates (kept by Python) use their 3-byte form, so
 * memcmp order is code-point order.  Strings may contain NUL bytes.
 * Objects are sorted by key bytes and hold each key once (the last
 * occurrence wins, as in Python).
 */
#ifndef FM_JSON_H
#define FM_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum json_type {
	JSON_NULL,
	JSON_FALSE,
	JSON_TRUE,
	JSON_INT,	/* arbitrary size; canonical decimal text in str */
	JSON_FLOAT,	/* double in num (may be inf/nan) */
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json_member;

struct json_value {
	enum json_type	 type;
	uint32_t	 len;	/* bytes (INT, STRING), count (ARRAY, OBJECT) */
	union {
		double			 num;
		const char		*str;
		struct json_value	*items;
		struct json_member	*members;
	} u;
};

struct json_member {
	const char		*key;
	uint32_t		 key_len;
	struct json_value	 value;
};

struct json_doc;

struct json_parse_opts {
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
struct json_doc *json_parse(const char *text, size_t len,
    const struct json_parse_opts *opts, char *err);

const struct json_value *json_doc_root(const struct json_doc *doc);
void json_doc_free(struct json_doc *doc);

/* Member lookup by key bytes (binary search); NULL when absent. */
const struct json_value *json_object_getn(const struct json_value *obj,
    const char *key, size_t key_len);
const struct json_value *json_object_get(const struct json_value *obj,
    const char *key);

/* True for what Python treats as false: null, false, 0, 0.0, "", [], {}. */
bool json_is_falsy(const struct json_value *v);

#endif
