/* Reading a message's parsed tree (msg_tree.h). */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "msg_tree.h"
#include "term_text.h"

/* v at a dotted path below root ("commit.repo"; digits index arrays). */
const struct jv *
tree_lookup(const struct jv *v, const char *path, size_t len)
{
	const char *p = path, *end = path + len;

	while (v != NULL) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);

		if (v->type == JV_OBJECT) {
			v = jv_getn(v, p, n);
		} else if (v->type == JV_ARRAY && n > 0 && n < 10 &&
		    strspn(p, "0123456789") >= n) {
			unsigned long idx = strtoul(p, NULL, 10);

			v = idx < v->len ? &v->u.items[idx] : NULL;
		} else {
			v = NULL;
		}
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	return v;
}

const struct jv *
tree_get(const struct jv *v, const char *path)
{
	return tree_lookup(v, path, strlen(path));
}

/* A string at path, or NULL (also for the empty string). */
const struct jv *
tree_sget(const struct jv *v, const char *path)
{
	v = tree_get(v, path);
	return v && v->type == JV_STRING && v->len > 0 ? v : NULL;
}

bool
tree_str_is(const struct jv *v, const char *s)
{
	return v && v->type == JV_STRING && v->len == strlen(s) &&
	    memcmp(v->u.str, s, v->len) == 0;
}

/* An integer at path that fits a long long, into *out. */
bool
tree_int_at(const struct jv *v, const char *path, long long *out)
{
	char tmp[24], *end;

	v = tree_get(v, path);
	if (v == NULL || v->type != JV_INT || v->len >= sizeof(tmp))
		return false;
	memcpy(tmp, v->u.str, v->len);
	tmp[v->len] = '\0';
	*out = strtoll(tmp, &end, 10);
	return *end == '\0';
}

/* Append a value for people: text escaped and cut, containers elided. */
void
tree_add_value(struct buf *b, const struct jv *v, size_t max)
{
	char num[PYFLOAT_MAX];

	switch (v->type) {
	case JV_NULL: buf_adds(b, "null"); break;
	case JV_FALSE: buf_adds(b, "false"); break;
	case JV_TRUE: buf_adds(b, "true"); break;
	case JV_INT: text_add(b, v->u.str, v->len, max, 0); break;
	case JV_FLOAT: buf_add(b, num, canon_float(v->u.num, num)); break;
	case JV_STRING: text_add(b, v->u.str, v->len, max, 0); break;
	case JV_ARRAY: buf_adds(b, v->len ? "[...]" : "[]"); break;
	case JV_OBJECT: buf_adds(b, v->len ? "{...}" : "{}"); break;
	}
}

/* Append the value at path, or "?" when it is missing or null. */
void
tree_add(struct buf *b, const struct jv *v, const char *path)
{
	v = tree_get(v, path);
	if (v == NULL || v->type == JV_NULL)
		buf_addc(b, '?');
	else
		tree_add_value(b, v, FIELD_MAX);
}

/* The first line of the string at path (without its line end), cut. */
bool
tree_first_line(struct buf *b, const struct jv *v, const char *path)
{
	const char *nl;
	size_t n;

	if ((v = tree_sget(v, path)) == NULL)
		return false;
	n = v->len;
	if ((nl = memchr(v->u.str, '\n', n)) != NULL)
		n = (size_t)(nl - v->u.str);
	if (n > 0 && v->u.str[n - 1] == '\r')
		n--;
	text_add(b, v->u.str, n, FIELD_MAX, 0);
	return true;
}

/* Local time of the message's timestamp, false when it has none. */
bool
msg_local_tm(const struct fm_msg *m, struct tm *tm)
{
	double ts;
	time_t t;

	if (!fm_msg_timestamp(m, &ts) || !isfinite(ts) ||
	    ts < -1e15 || ts > 1e15)
		return false;
	t = (time_t)ts;		/* time.ctime() rounds down (no libm here) */
	if ((double)t > ts)
		t--;
	return localtime_r(&t, tm) != NULL;
}
