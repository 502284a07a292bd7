/*
 * fedmsg's canonical JSON: Python's json.dumps(sort_keys=True,
 * separators=(',', ':'), ensure_ascii=True), byte for byte.
 */
#ifndef FM_CANON_H
#define FM_CANON_H

#include <stddef.h>

#include "buf.h"
#include "json.h"

/* Python repr() of a double ("0.1", "1e-07", "-0.0", "NaN", ...). */
#define PYFLOAT_MAX 32
size_t canon_float(double x, char out[PYFLOAT_MAX]);

/* Append a string (WTF-8 bytes, may hold NUL) as an ASCII JSON string. */
void canon_string(struct buf *b, const char *s, size_t len);

/* Append the canonical text of v. */
void canon_value(struct buf *b, const struct jv *v);

/*
 * A top-level member given as ready canonical text, to add to or replace
 * in an object while emitting it.
 */
struct canon_extra {
	const char	*key;		/* NUL-free key */
	const char	*text;		/* canonical JSON of the value */
	size_t		 text_len;
};

/*
 * Append object obj (may be NULL for {}) without the keys in skip (a NULL
 * terminated list, may be NULL) and with the extras merged in key order.
 * An extra replaces a member of the same key.  extras need not be sorted.
 */
void canon_object_with(struct buf *b, const struct jv *obj,
    const char *const *skip, const struct canon_extra *extras,
    size_t nextras);

#endif
