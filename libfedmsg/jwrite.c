/*
 * The JSON writer (jwrite.h).  A stack records, per open container, its
 * kind and whether a member or item was written (for commas) and, in an
 * object, whether a key waits for its value.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "canon.h"
#include "jwrite.h"

/* Deep enough for any payload; fedmsg's parser limit is 1000. */
#define JW_MAX_DEPTH	256

enum frame { F_ARRAY, F_OBJECT_KEY, F_OBJECT_VALUE };

struct jw {
	struct buf	 b;
	unsigned char	 kind[JW_MAX_DEPTH];
	bool		 any[JW_MAX_DEPTH];	/* an item already written */
	unsigned	 depth;
	bool		 done;		/* the top-level value is complete */
	char		 err[128];	/* "" while fine */
};

struct jw *
jw_new(void)
{
	return calloc(1, sizeof(struct jw));
}

void
jw_free(struct jw *w)
{
	if (w == NULL)
		return;
	buf_free(&w->b);
	free(w);
}

static int
jw_fail(struct jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
jw_fail(struct jw *w, const char *fmt, ...)
{
	va_list ap;

	if (w->err[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(w->err, sizeof(w->err), fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Before any value: is one allowed here?  Writes the separating comma. */
static int
before_value(struct jw *w, const char *what)
{
	if (w->err[0])
		return -1;
	if (w->depth == 0) {
		if (w->done)
			return jw_fail(w, "%s after the complete value", what);
		return 0;
	}
	switch (w->kind[w->depth - 1]) {
	case F_OBJECT_KEY:
		return jw_fail(w, "%s in an object without a key first", what);
	case F_OBJECT_VALUE:
		w->kind[w->depth - 1] = F_OBJECT_KEY;
		return 0;
	default:
		if (w->any[w->depth - 1])
			buf_addc(&w->b, ',');
		w->any[w->depth - 1] = true;
		return 0;
	}
}

/* After a scalar or a closed container. */
static int
after_value(struct jw *w)
{
	if (w->depth == 0)
		w->done = true;
	return w->b.oom ? jw_fail(w, "out of memory") : 0;
}

static int
open_container(struct jw *w, char c, enum frame kind, const char *what)
{
	if (before_value(w, what) < 0)
		return -1;
	if (w->depth == JW_MAX_DEPTH)
		return jw_fail(w, "nesting deeper than %d", JW_MAX_DEPTH);
	w->kind[w->depth] = (unsigned char)kind;
	w->any[w->depth] = false;
	w->depth++;
	buf_addc(&w->b, c);
	return w->b.oom ? jw_fail(w, "out of memory") : 0;
}

static int
close_container(struct jw *w, char c, bool object)
{
	enum frame k;

	if (w->err[0])
		return -1;
	if (w->depth == 0)
		return jw_fail(w, "%s end with no %s open",
		    object ? "object" : "array", object ? "object" : "array");
	k = w->kind[w->depth - 1];
	if (object != (k != F_ARRAY))
		return jw_fail(w, "%s end inside an %s",
		    object ? "object" : "array", object ? "array" : "object");
	if (k == F_OBJECT_VALUE)
		return jw_fail(w, "object end after a key without a value");
	w->depth--;
	buf_addc(&w->b, c);
	return after_value(w);
}

int jw_object_begin(struct jw *w) { return open_container(w, '{', F_OBJECT_KEY, "object"); }
int jw_array_begin(struct jw *w) { return open_container(w, '[', F_ARRAY, "array"); }
int jw_object_end(struct jw *w) { return close_container(w, '}', true); }
int jw_array_end(struct jw *w) { return close_container(w, ']', false); }

/* JSON string text; non-ASCII bytes are kept (checked when parsed back). */
static void
put_string(struct buf *b, const char *s, size_t len)
{
	size_t i;

	buf_addc(b, '"');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			buf_addc(b, '\\');
			buf_addc(b, (char)c);
		} else if (c < 0x20) {
			buf_printf(b, "\\u%04x", c);
		} else {
			buf_addc(b, (char)c);
		}
	}
	buf_addc(b, '"');
}

int
jw_key(struct jw *w, const char *key, size_t len)
{
	if (w->err[0])
		return -1;
	if (w->depth == 0 || w->kind[w->depth - 1] != F_OBJECT_KEY)
		return jw_fail(w, "key \"%.40s\" outside an object or where a "
		    "value is due", key ? key : "");
	if (key == NULL)
		return jw_fail(w, "NULL key");
	if (w->any[w->depth - 1])
		buf_addc(&w->b, ',');
	w->any[w->depth - 1] = true;
	put_string(&w->b, key, len);
	buf_addc(&w->b, ':');
	w->kind[w->depth - 1] = F_OBJECT_VALUE;
	return w->b.oom ? jw_fail(w, "out of memory") : 0;
}

int
jw_string(struct jw *w, const char *s, size_t len)
{
	if (before_value(w, "string") < 0)
		return -1;
	if (s == NULL)
		return jw_fail(w, "NULL string");
	put_string(&w->b, s, len);
	return after_value(w);
}

int
jw_int(struct jw *w, int64_t n)
{
	if (before_value(w, "integer") < 0)
		return -1;
	buf_printf(&w->b, "%lld", (long long)n);
	return after_value(w);
}

int
jw_double(struct jw *w, double d)
{
	char num[PYFLOAT_MAX];

	if (before_value(w, "number") < 0)
		return -1;
	buf_add(&w->b, num, canon_float(d, num));
	return after_value(w);
}

int
jw_bool(struct jw *w, int v)
{
	if (before_value(w, "boolean") < 0)
		return -1;
	buf_adds(&w->b, v ? "true" : "false");
	return after_value(w);
}

int
jw_null(struct jw *w)
{
	if (before_value(w, "null") < 0)
		return -1;
	buf_adds(&w->b, "null");
	return after_value(w);
}

int
jw_value(struct jw *w, const struct jv *v)
{
	if (before_value(w, "value") < 0)
		return -1;
	if (v == NULL)
		return jw_fail(w, "NULL value");
	canon_value(&w->b, v);
	return after_value(w);
}

const char *
jw_finish(struct jw *w, size_t *len, char *err, size_t errlen)
{
	if (w->err[0] == '\0' && !w->done)
		jw_fail(w, w->depth ? "%u container(s) left open" :
		    "nothing written", w->depth);
	if (w->err[0]) {
		snprintf(err, errlen, "%s", w->err);
		return NULL;
	}
	*len = w->b.len;
	return w->b.data;
}
