/*
 * JSON accessors and the builder of plugin ABI 1.1 (plugin.h).  A
 * struct fm_json handle is the address of the struct jv it stands for:
 * plugins never dereference it, and every accessor converts it back.
 */
#include <stdio.h>
#include <string.h>

#include <fedmsg/message.h>

#include "buf.h"
#include "canon.h"
#include "jptr.h"
#include "jwrite.h"
#include "msg.h"
#include "plugin_json.h"

const struct fm_json *
pj_doc(const struct jv *root)
{
	return (const struct fm_json *)(const void *)root;
}

const struct jv *
pj_root(const struct fm_json *doc)
{
	return (const struct jv *)(const void *)doc;
}

/* Resolve, with the ABI's codes (jptr's have the same values). */
static int
at(const struct fm_json *doc, const char *ptr, const struct jv **v)
{
	if (doc == NULL || ptr == NULL)
		return FM_JSON_EINVAL;
	return jptr_get(pj_root(doc), ptr, v);
}

static int
j_type(const struct fm_json *doc, const char *ptr)
{
	const struct jv *v;
	int rc = at(doc, ptr, &v);

	if (rc == FM_JSON_EABSENT)
		return FM_JSON_ABSENT;
	if (rc < 0)
		return rc;
	switch (v->type) {
	case JV_NULL:
		return FM_JSON_NULL;
	case JV_FALSE:
	case JV_TRUE:
		return FM_JSON_BOOL;
	case JV_INT:
	case JV_FLOAT:
		return FM_JSON_NUMBER;
	case JV_STRING:
		return FM_JSON_STRING;
	case JV_ARRAY:
		return FM_JSON_ARRAY;
	default:
		return FM_JSON_OBJECT;
	}
}

static int
j_string(const struct fm_json *doc, const char *ptr, const char **s,
    size_t *len)
{
	const struct jv *v;
	int rc = at(doc, ptr, &v);

	if (rc < 0)
		return rc;
	if (s == NULL)
		return FM_JSON_EINVAL;
	if (v->type != JV_STRING)
		return FM_JSON_ETYPE;
	*s = v->u.str;
	if (len)
		*len = v->len;
	return FM_JSON_OK;
}

/* Copy n bytes and a NUL into buf[size], or "" and ENOSPC. */
static int
copy_out(const char *s, size_t n, char *buf, size_t size, size_t *len)
{
	if (len)
		*len = n;
	if (buf == NULL || size <= n) {
		if (buf && size)
			buf[0] = '\0';
		return FM_JSON_ENOSPC;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	return FM_JSON_OK;
}

static int
j_string_copy(const struct fm_json *doc, const char *ptr, char *buf,
    size_t size, size_t *len)
{
	const char *s;
	size_t n;
	int rc = j_string(doc, ptr, &s, &n);

	return rc < 0 ? rc : copy_out(s, n, buf, size, len);
}

static int
j_int(const struct fm_json *doc, const char *ptr, int64_t *out)
{
	const struct jv *v;
	int64_t n;
	int rc = at(doc, ptr, &v);

	if (rc < 0)
		return rc;
	if (out == NULL)
		return FM_JSON_EINVAL;
	if ((rc = jv_as_int64(v, &n)) == JPTR_OK)
		*out = n;
	return rc;
}

static int
j_int_text(const struct fm_json *doc, const char *ptr, const char **text,
    size_t *len)
{
	const struct jv *v;
	int rc = at(doc, ptr, &v);

	if (rc < 0)
		return rc;
	if (text == NULL)
		return FM_JSON_EINVAL;
	if (v->type != JV_INT)
		return FM_JSON_ETYPE;
	*text = v->u.str;
	if (len)
		*len = v->len;
	return FM_JSON_OK;
}

static int
j_double(const struct fm_json *doc, const char *ptr, double *out)
{
	const struct jv *v;
	double d;
	int rc = at(doc, ptr, &v);

	if (rc < 0)
		return rc;
	if (out == NULL)
		return FM_JSON_EINVAL;
	if ((rc = jv_as_double(v, &d)) == JPTR_OK)
		*out = d;
	return rc;
}

static int
j_bool(const struct fm_json *doc, const char *ptr, int *out)
{
	const struct jv *v;
	int rc = at(doc, ptr, &v);

	if (rc < 0)
		return rc;
	if (out == NULL)
		return FM_JSON_EINVAL;
	if (v->type != JV_TRUE && v->type != JV_FALSE)
		return FM_JSON_ETYPE;
	*out = v->type == JV_TRUE;
	return FM_JSON_OK;
}

static int
j_length(const struct fm_json *doc, const char *ptr, size_t *n)
{
	const struct jv *v;
	int rc = at(doc, ptr, &v);

	if (rc < 0)
		return rc;
	if (n == NULL)
		return FM_JSON_EINVAL;
	if (v->type != JV_ARRAY && v->type != JV_OBJECT)
		return FM_JSON_ETYPE;
	*n = v->len;
	return FM_JSON_OK;
}

static int
j_member(const struct fm_json *doc, const char *ptr, size_t index,
    const char **key, size_t *len)
{
	const struct jv *v;
	int rc = at(doc, ptr, &v);

	if (rc < 0)
		return rc;
	if (key == NULL)
		return FM_JSON_EINVAL;
	if (v->type != JV_OBJECT)
		return FM_JSON_ETYPE;
	if (index >= v->len)
		return FM_JSON_EABSENT;
	*key = v->u.members[index].key;
	if (len)
		*len = v->u.members[index].key_len;
	return FM_JSON_OK;
}

static int
j_text(const struct fm_json *doc, const char *ptr, char *buf, size_t size,
    size_t *len)
{
	struct buf b = BUF_INIT;
	const struct jv *v;
	int rc = at(doc, ptr, &v);

	if (rc < 0)
		return rc;
	canon_value(&b, v);
	if (b.oom)
		rc = FM_JSON_ENOSPC;
	else
		rc = copy_out(b.data ? b.data : "", b.len, buf, size, len);
	buf_free(&b);
	return rc;
}

static const struct fm_json *
h_msg_json(const struct fm_msg *m)
{
	return pj_doc(msg_root(m));
}

static const char *
h_msg_username(const struct fm_msg *m)
{
	return fm_msg_username(m);
}

static int
h_msg_timestamp_get(const struct fm_msg *m, double *ts)
{
	double t;

	if (!fm_msg_timestamp(m, &t))
		return 0;
	if (ts)
		*ts = t;
	return 1;
}

/* ---- the builder: a struct jw behind the ABI's opaque name ---------- */

static struct jw *W(struct fm_builder *b) { return (struct jw *)(void *)b; }

static struct fm_builder *
b_new(void)
{
	return (struct fm_builder *)(void *)jw_new();
}

static void b_free(struct fm_builder *b) { jw_free(W(b)); }
static int b_obj(struct fm_builder *b) { return b ? jw_object_begin(W(b)) : -1; }
static int b_obj_end(struct fm_builder *b) { return b ? jw_object_end(W(b)) : -1; }
static int b_arr(struct fm_builder *b) { return b ? jw_array_begin(W(b)) : -1; }
static int b_arr_end(struct fm_builder *b) { return b ? jw_array_end(W(b)) : -1; }
static int b_int(struct fm_builder *b, int64_t n) { return b ? jw_int(W(b), n) : -1; }
static int b_double(struct fm_builder *b, double d) { return b ? jw_double(W(b), d) : -1; }
static int b_bool(struct fm_builder *b, int v) { return b ? jw_bool(W(b), v) : -1; }
static int b_null(struct fm_builder *b) { return b ? jw_null(W(b)) : -1; }

static int
b_key(struct fm_builder *b, const char *key, size_t len)
{
	return b ? jw_key(W(b), key, len) : -1;
}

static int
b_string(struct fm_builder *b, const char *s, size_t len)
{
	return b ? jw_string(W(b), s, len) : -1;
}

static int
b_json(struct fm_builder *b, const struct fm_json *doc, const char *ptr)
{
	const struct jv *v = NULL;

	if (b == NULL)
		return -1;
	if (at(doc, ptr, &v) < 0)
		v = NULL;	/* jw_value records the error */
	return jw_value(W(b), v);
}

const char *
pj_builder_text(struct fm_builder *b, size_t *len, char *err, size_t errlen)
{
	if (b == NULL) {
		snprintf(err, errlen, "no builder (builder_new() failed?)");
		return NULL;
	}
	return jw_finish(W(b), len, err, errlen);
}

void
pj_fill_host(struct fm_host *h)
{
	h->msg_json = h_msg_json;
	h->json_type = j_type;
	h->json_string = j_string;
	h->json_string_copy = j_string_copy;
	h->json_int = j_int;
	h->json_int_text = j_int_text;
	h->json_double = j_double;
	h->json_bool = j_bool;
	h->json_length = j_length;
	h->json_member = j_member;
	h->json_text = j_text;
	h->msg_username = h_msg_username;
	h->msg_timestamp_get = h_msg_timestamp_get;
	h->builder_new = b_new;
	h->builder_free = b_free;
	h->build_object_begin = b_obj;
	h->build_object_end = b_obj_end;
	h->build_array_begin = b_arr;
	h->build_array_end = b_arr_end;
	h->build_key = b_key;
	h->build_string = b_string;
	h->build_int = b_int;
	h->build_double = b_double;
	h->build_bool = b_bool;
	h->build_null = b_null;
	h->build_json = b_json;
}
