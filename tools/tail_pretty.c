/*
 * fedmsg-tail's other renderings (terse.h): indented JSON, --query field
 * extraction and the ISO time, from the message's parsed tree.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <fedmsg/message.h>

#include "buf.h"
#include "canon.h"
#include "json.h"
#include "msg.h"
#include "msg_tree.h"
#include "term_text.h"
#include "terse.h"

/* ---- pretty JSON -------------------------------------------------------- */

static void
indent(struct buf *b, unsigned depth)
{
	char *p;

	buf_addc(b, '\n');
	if ((p = buf_reserve(b, 2 * (size_t)depth)) != NULL) {
		memset(p, ' ', 2 * (size_t)depth);
		b->len += 2 * (size_t)depth;
		b->data[b->len] = '\0';
	}
}

static void
coloured(struct buf *b, int flags, const char *colour, const char *s,
    size_t n)
{
	if (flags & TAIL_COLOR)
		buf_adds(b, colour);
	buf_add(b, s, n);
	if (flags & TAIL_COLOR)
		buf_adds(b, C_OFF);
}

static void
pretty_string(struct buf *b, int flags, const char *colour, const char *s,
    size_t n)
{
	if (flags & TAIL_COLOR)
		buf_adds(b, colour);
	text_json_string(b, s, n);
	if (flags & TAIL_COLOR)
		buf_adds(b, C_OFF);
}

static bool
credential(const struct jv_member *mb)
{
	return (mb->key_len == 9 && memcmp(mb->key, "signature", 9) == 0) ||
	    (mb->key_len == 11 && memcmp(mb->key, "certificate", 11) == 0);
}

static void pretty_value(struct buf *, const struct jv *, unsigned, int,
    const struct fm_msg *);

/* m is set for the envelope itself: credentials go, timestamp may change. */
static void
pretty_object(struct buf *b, const struct jv *v, unsigned depth, int flags,
    const struct fm_msg *m)
{
	uint32_t i;
	bool first = true;

	buf_addc(b, '{');
	for (i = 0; i < v->len; i++) {
		const struct jv_member *mb = &v->u.members[i];
		struct tm tm;
		char when[64];

		if (m && credential(mb))
			continue;
		if (!first)
			buf_addc(b, ',');
		first = false;
		indent(b, depth + 1);
		pretty_string(b, flags, C_KEY, mb->key, mb->key_len);
		buf_add(b, ": ", 2);
		if (m && (flags & TAIL_CTIME) && mb->key_len == 9 &&
		    memcmp(mb->key, "timestamp", 9) == 0 &&
		    msg_local_tm(m, &tm) &&
		    strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm))
			pretty_string(b, flags, C_STR, when, strlen(when));
		else
			pretty_value(b, &mb->value, depth + 1, flags, NULL);
	}
	if (!first)
		indent(b, depth);
	buf_addc(b, '}');
}

static void
pretty_value(struct buf *b, const struct jv *v, unsigned depth, int flags,
    const struct fm_msg *m)
{
	char num[PYFLOAT_MAX];
	uint32_t i;

	switch (v->type) {
	case JV_NULL: coloured(b, flags, C_LIT, "null", 4); break;
	case JV_FALSE: coloured(b, flags, C_LIT, "false", 5); break;
	case JV_TRUE: coloured(b, flags, C_LIT, "true", 4); break;
	case JV_INT: coloured(b, flags, C_NUM, v->u.str, v->len); break;
	case JV_FLOAT:
		coloured(b, flags, C_NUM, num, canon_float(v->u.num, num));
		break;
	case JV_STRING:
		pretty_string(b, flags, C_STR, v->u.str, v->len);
		break;
	case JV_ARRAY:
		buf_addc(b, '[');
		for (i = 0; i < v->len; i++) {
			if (i > 0)
				buf_addc(b, ',');
			indent(b, depth + 1);
			pretty_value(b, &v->u.items[i], depth + 1, flags, NULL);
		}
		if (v->len > 0)
			indent(b, depth);
		buf_addc(b, ']');
		break;
	case JV_OBJECT:
		pretty_object(b, v, depth, flags, m);
		break;
	}
}

char *
tail_pretty(const struct fm_msg *m, int flags)
{
	struct buf b = BUF_INIT;

	pretty_value(&b, msg_root(m), 0, flags, m);
	return buf_steal(&b, NULL);
}

/* ---- --query ------------------------------------------------------------ */

char *
tail_query(const struct fm_msg *m, const char *const *paths, size_t npaths)
{
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < npaths; i++) {
		const struct jv *v = tree_get(msg_root(m), paths[i]);

		if (i > 0)
			buf_addc(&b, '\t');
		if (v == NULL || v->type == JV_NULL)
			continue;
		if (v->type == JV_STRING)
			text_add(&b, v->u.str, v->len, 0, ESC_BACKSLASH);
		else
			canon_value(&b, v);
	}
	return buf_steal(&b, NULL);
}

/* ---- time --------------------------------------------------------------- */

void
tail_iso_time(const struct fm_msg *m, char out[TAIL_ISO_LEN])
{
	struct tm tm;
	time_t now;
	size_t n;

	if (!msg_local_tm(m, &tm)) {
		now = time(NULL);
		localtime_r(&now, &tm);
	}
	/* strftime's %z is +hhmm; ISO 8601 extended format wants +hh:mm */
	n = strftime(out, TAIL_ISO_LEN, "%Y-%m-%dT%H:%M:%S%z", &tm);
	if (n >= 5 && n + 1 < TAIL_ISO_LEN) {
		memmove(out + n - 1, out + n - 2, 3);
		out[n - 2] = ':';
	} else if (n == 0) {
		snprintf(out, TAIL_ISO_LEN, "-");
	}
}
