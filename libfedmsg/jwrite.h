/*
 * A JSON writer: values appended one call at a time, checked for shape
 * (a key before each object member, balanced containers, one top-level
 * value).  What a plugin publishes through the ABI's builder, so that no
 * plugin escapes JSON by hand.  The first error sticks: later calls do
 * nothing, and jw_finish() reports it.
 */
#ifndef FM_JWRITE_H
#define FM_JWRITE_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"

struct jw;

/* A new, empty writer (NULL when out of memory); free with jw_free(). */
struct jw *jw_new(void);
void jw_free(struct jw *w);

/* Each returns 0, or -1 once the writer is in error. */
int jw_object_begin(struct jw *w);
int jw_object_end(struct jw *w);
int jw_array_begin(struct jw *w);
int jw_array_end(struct jw *w);
/* A member name, inside an object, before its value.  len bytes. */
int jw_key(struct jw *w, const char *key, size_t len);
/* UTF-8 text, len bytes (may hold NUL); invalid UTF-8 is refused when the
 * text is parsed back (jw_finish's caller does). */
int jw_string(struct jw *w, const char *s, size_t len);
int jw_int(struct jw *w, int64_t n);
/* As Python's json.dumps writes it: NaN and Infinity included. */
int jw_double(struct jw *w, double d);
int jw_bool(struct jw *w, int b);
int jw_null(struct jw *w);
/* A copy of a parsed value (canonical text). */
int jw_value(struct jw *w, const struct jv *v);

/*
 * The text, owned by the writer (valid until jw_free), and its length;
 * or NULL with the reason in err[errlen] when the writer is in error or
 * the value is incomplete.
 */
const char *jw_finish(struct jw *w, size_t *len, char *err, size_t errlen);

#endif
