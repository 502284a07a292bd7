/*
 * The fedmsg envelope: parsing a body frame into an immutable, refcounted
 * message that keeps its exact bytes, and building new envelopes the way
 * fedmsg.core.FedMsgContext.publish() does.
 */
#include <errno.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <fedmsg/message.h>

#include "buf.h"
#include "canon.h"
#include "json.h"
#include "msg.h"

struct fm_msg {
	atomic_int		 refs;
	char			*raw;		/* body bytes + NUL, after the struct */
	size_t			 raw_len;
	struct jv_doc		*doc;		/* borrows strings from raw */
	/* NUL-terminated copies of the string fields callers ask for, all in
	 * one allocation, fields (NULL where a field is absent or no string) */
	char			*topic, *msg_id, *username, *crypto;
	char			*fields;
	_Atomic(char *)		 signer;	/* set once by a validator */
};

/*
 * Copy the string fields callers ask for, NUL-terminated, into one
 * allocation (a malloc and a free per message instead of four).  A field
 * that is absent, not a string or holds a NUL stays NULL; so do all on OOM.
 */
static void
copy_fields(struct fm_msg *m, const struct jv *root)
{
	static const char *const keys[] = { "topic", "msg_id", "username",
	    "crypto" };
	char **dst[] = { &m->topic, &m->msg_id, &m->username, &m->crypto };
	const struct jv *v[4] = { NULL, NULL, NULL, NULL };
	size_t i, k, total = 0;
	char *p;

	/* one pass over the members (unique: the parser keeps the last of
	 * a duplicated key) instead of four binary searches */
	for (i = 0; i < root->len; i++) {
		const struct jv_member *mb = &root->u.members[i];

		/* the four keys differ in length or first byte */
		switch (mb->key_len) {
		case 5: k = 0; break;
		case 6: k = mb->key[0] == 'm' ? 1 : 3; break;
		case 8: k = 2; break;
		default: continue;
		}
		if (memcmp(mb->key, keys[k], mb->key_len) == 0)
			v[k] = &mb->value;
	}
	for (i = 0; i < 4; i++) {
		if (v[i] == NULL || v[i]->type != JV_STRING ||
		    memchr(v[i]->u.str, 0, v[i]->len))
			v[i] = NULL;
		else
			total += (size_t)v[i]->len + 1;
	}
	if (total == 0 || (m->fields = p = malloc(total)) == NULL)
		return;
	for (i = 0; i < 4; i++) {
		if (v[i] == NULL)
			continue;
		memcpy(p, v[i]->u.str, v[i]->len);
		p[v[i]->len] = '\0';
		*dst[i] = p;
		p += v[i]->len + 1;
	}
}

/*
 * The reason an envelope holding a duplicate key is refused: the key as
 * JSON text (cut when long) and the offset of its object.
 */
static void
duplicate_reason(const struct jv_doc *doc, char *err)
{
	struct buf b = BUF_INIT;
	const char *key;
	size_t key_len, at;

	if (!jv_doc_duplicate(doc, &key, &key_len, &at))
		return;
	canon_string(&b, key, key_len);
	if (b.oom || b.data == NULL) {
		snprintf(err, FM_ERRLEN, "duplicate key in the object at byte "
		    "%zu", at);
	} else {
		snprintf(err, FM_ERRLEN, "duplicate key %.*s%s in the object at "
		    "byte %zu: JSON readers disagree on which copy counts",
		    b.len > 64 ? 64 : (int)b.len, b.data, b.len > 64 ? "..." : "",
		    at);
	}
	buf_free(&b);
}

bool
msg_duplicate(const struct fm_msg *m, char *why)
{
	if (!jv_doc_duplicate(m->doc, NULL, NULL, NULL))
		return false;
	if (why)
		duplicate_reason(m->doc, why);
	return true;
}

int
fm_msg_parse(const void *body, size_t len, const struct fm_limits *lim,
    struct fm_msg **out, char *err)
{
	return msg_parse(body, len, lim, 0, out, err);
}

int
msg_parse(const void *body, size_t len, const struct fm_limits *lim,
    unsigned flags, struct fm_msg **out, char *err)
{
	struct jv_parse_opts opts = { 0, true };
	size_t max = lim && lim->max_message_bytes ? lim->max_message_bytes :
	    FM_DEFAULT_MAX_MESSAGE_BYTES;
	const struct jv *root;
	struct fm_msg *m;

	*out = NULL;
	if (len > max) {
		snprintf(err, FM_ERRLEN, "message too large: %zu bytes, "
		    "limit %zu", len, max);
		return -1;
	}
	/* the struct and the body in one allocation (len is the size of a
	 * buffer in memory: the sum cannot overflow) */
	if ((m = malloc(sizeof(*m) + len + 1)) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return -1;
	}
	memset(m, 0, sizeof(*m));
	m->raw = (char *)(m + 1);
	atomic_init(&m->refs, 1);
	atomic_init(&m->signer, NULL);
	if (len)
		memcpy(m->raw, body, len);
	m->raw[len] = '\0';
	m->raw_len = len;
	opts.max_depth = lim ? lim->max_json_depth : 0;
	if ((m->doc = jv_parse(m->raw, len, &opts, err)) == NULL)
		goto fail;
	root = jv_doc_root(m->doc);
	if (root->type != JV_OBJECT) {
		snprintf(err, FM_ERRLEN, "body is not a JSON object");
		goto fail;
	}
	/*
	 * We read the last copy of a duplicated key, as Python does, but the
	 * bytes we forward are read by consumers that keep the first: what
	 * a signature was checked over would not be what they act on.
	 */
	if (!(flags & MSG_KEEP_DUPLICATES) &&
	    jv_doc_duplicate(m->doc, NULL, NULL, NULL)) {
		duplicate_reason(m->doc, err);
		goto fail;
	}
	copy_fields(m, root);
	*out = m;
	return 0;
fail:
	fm_msg_unref(m);
	return -1;
}

struct fm_msg *
fm_msg_ref(struct fm_msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

void
fm_msg_unref(struct fm_msg *m)
{
	if (m == NULL ||
	    atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	jv_doc_free(m->doc);
	free(m->fields);
	free(atomic_load(&m->signer));
	free(m);
}

const char *
fm_msg_signer(const struct fm_msg *m)
{
	return atomic_load(&((struct fm_msg *)m)->signer);
}

void
msg_take_signer(const struct fm_msg *cm, char *cn)
{
	struct fm_msg *m = (struct fm_msg *)cm;	/* an annotation, not content */
	char *expected = NULL;

	if (cn != NULL &&
	    !atomic_compare_exchange_strong(&m->signer, &expected, cn))
		free(cn);
}

const char *
fm_msg_body(const struct fm_msg *m, size_t *len)
{
	if (len)
		*len = m->raw_len;
	return m->raw;
}

const char *fm_msg_topic(const struct fm_msg *m) { return m->topic; }
const char *fm_msg_id(const struct fm_msg *m) { return m->msg_id; }
const char *fm_msg_username(const struct fm_msg *m) { return m->username; }
const char *fm_msg_crypto(const struct fm_msg *m) { return m->crypto; }

const struct jv *
msg_root(const struct fm_msg *m)
{
	return jv_doc_root(m->doc);
}

bool
fm_msg_seq(const struct fm_msg *m, int64_t *i)
{
	const struct jv *v = jv_get(msg_root(m), "i");
	char *end;
	long long n;

	if (v == NULL || v->type != JV_INT || v->len > 20)
		return false;
	{
		char tmp[24];

		memcpy(tmp, v->u.str, v->len);
		tmp[v->len] = '\0';
		errno = 0;
		n = strtoll(tmp, &end, 10);
		if (*end != '\0' || errno == ERANGE)
			return false;
	}
	*i = n;
	return true;
}

bool
fm_msg_timestamp(const struct fm_msg *m, double *ts)
{
	const struct jv *v = jv_get(msg_root(m), "timestamp");
	char tmp[32];

	if (v == NULL)
		return false;
	if (v->type == JV_FLOAT) {
		*ts = v->u.num;
		return true;
	}
	if (v->type != JV_INT || v->len >= sizeof(tmp))
		return false;
	memcpy(tmp, v->u.str, v->len);
	tmp[v->len] = '\0';
	*ts = strtod(tmp, NULL);
	return true;
}

static const char *const credentials[] = { "signature", "certificate", NULL };

int
msg_canonical_buf(const struct fm_msg *m, bool unsigned_, struct buf *b)
{
	/* The text is rarely longer than the body: one allocation, no
	 * regrowth and copies (it grows as usual if it is longer). */
	buf_reserve(b, m->raw_len);
	canon_object_with(b, msg_root(m), unsigned_ ? credentials : NULL,
	    NULL, 0);
	return b->oom ? -1 : 0;
}

char *
fm_msg_canonical(const struct fm_msg *m, bool unsigned_, size_t *len)
{
	struct buf b = BUF_INIT;

	msg_canonical_buf(m, unsigned_, &b);
	return buf_steal(&b, len);
}

char *
fm_msg_member_json(const struct fm_msg *m, const char *key, size_t *len)
{
	const struct jv *v = jv_get(msg_root(m), key);
	struct buf b = BUF_INIT;

	if (v == NULL)
		return NULL;
	canon_value(&b, v);
	return buf_steal(&b, len);
}

char *
fm_topic_build(const char *prefix, const char *env, const char *modname,
    const char *topic)
{
	struct buf b = BUF_INIT;

	if (topic == NULL || *topic == '\0')
		topic = "unspecified";
	buf_printf(&b, "%s.%s", modname, topic);
	if (b.data && strncmp(b.data, prefix, strlen(prefix)) != 0) {
		buf_free(&b);
		buf_printf(&b, "%s.%s.%s.%s", prefix, env, modname, topic);
	}
	return buf_steal(&b, NULL);
}

int
fm_msg_id_new(char out[FM_MSG_ID_LEN + 1])
{
	unsigned char u[16];
	struct tm tm;
	time_t now = time(NULL);

	if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u))
		return -1;
	u[6] = (u[6] & 0x0f) | 0x40;	/* version 4 */
	u[8] = (u[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	localtime_r(&now, &tm);		/* fedmsg uses the local year */
	snprintf(out, FM_MSG_ID_LEN + 1, "%04d-%02x%02x%02x%02x-%02x%02x-"
	    "%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", tm.tm_year + 1900,
	    u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
	    u[10], u[11], u[12], u[13], u[14], u[15]);
	return 0;
}

/* getpass.getuser(): LOGNAME, USER, LNAME, USERNAME, else the passwd entry. */
static const char *
current_user(void)
{
	static const char *const vars[] = { "LOGNAME", "USER", "LNAME",
	    "USERNAME" };
	struct passwd *pw;
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *s = getenv(vars[i]);

		if (s && *s)
			return s;
	}
	pw = getpwuid(getuid());
	return pw ? pw->pw_name : "unknown";
}

/* Canonical text of a user-supplied string, refusing invalid UTF-8. */
static int
string_text(struct buf *b, const char *what, const char *s, char *err)
{
	struct buf q = BUF_INIT;
	struct jv_doc *doc;
	char perr[FM_ERRLEN];

	/* Validate through the parser: quote it as JSON first. */
	buf_addc(&q, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			buf_addc(&q, '\\');
		if ((unsigned char)*s < 0x20)
			buf_printf(&q, "\\u%04x", (unsigned char)*s);
		else
			buf_addc(&q, *s);
	}
	buf_addc(&q, '"');
	if (q.oom || (doc = jv_parse(q.data, q.len, NULL, perr)) == NULL) {
		snprintf(err, FM_ERRLEN, "%s: %s", what, q.oom ?
		    "out of memory" : perr);
		buf_free(&q);
		return -1;
	}
	canon_value(b, jv_doc_root(doc));
	jv_doc_free(doc);
	buf_free(&q);
	return 0;
}

int
fm_msg_build(const struct fm_msg_fields *f, const struct fm_limits *lim,
    struct fm_msg **out, char *err)
{
	struct jv_parse_opts opts = { lim ? lim->max_json_depth : 0, false };
	struct buf topic = BUF_INIT, payload = BUF_INIT, id = BUF_INIT;
	struct buf user = BUF_INIT, hdrs = BUF_INIT, body = BUF_INIT;
	char i_text[24], ts_text[24], gen_id[FM_MSG_ID_LEN + 1];
	struct canon_extra ex[7];
	size_t n = 0;
	int rc = -1;

	*out = NULL;
	if (f->topic == NULL || *f->topic == '\0') {
		snprintf(err, FM_ERRLEN, "topic is empty");
		return -1;
	}
	if (string_text(&topic, "topic", f->topic, err) < 0)
		goto done;
	if (f->msg_json) {
		size_t len = f->msg_len ? f->msg_len : strlen(f->msg_json);
		struct jv_doc *doc = jv_parse(f->msg_json, len, &opts, err);

		if (doc == NULL)
			goto done;
		/* fedmsg sends `msg or dict()` */
		if (jv_is_falsy(jv_doc_root(doc)))
			buf_adds(&payload, "{}");
		else
			canon_value(&payload, jv_doc_root(doc));
		jv_doc_free(doc);
	} else {
		buf_adds(&payload, "{}");
	}
	if (f->headers_json) {
		struct jv_doc *doc = jv_parse(f->headers_json,
		    strlen(f->headers_json), &opts, err);

		if (doc == NULL)
			goto done;
		if (jv_doc_root(doc)->type != JV_OBJECT) {
			jv_doc_free(doc);
			snprintf(err, FM_ERRLEN, "headers is not a JSON object");
			goto done;
		}
		canon_value(&hdrs, jv_doc_root(doc));
		jv_doc_free(doc);
	}
	if (f->msg_id == NULL && fm_msg_id_new(gen_id) < 0) {
		snprintf(err, FM_ERRLEN, "no randomness for a msg_id");
		goto done;
	}
	if (string_text(&id, "msg_id", f->msg_id ? f->msg_id : gen_id, err) < 0 ||
	    string_text(&user, "username", f->username ? f->username :
	    current_user(), err) < 0)
		goto done;
	snprintf(i_text, sizeof(i_text), "%lld", (long long)f->i);
	snprintf(ts_text, sizeof(ts_text), "%lld", (long long)(f->timestamp ?
	    f->timestamp : (int64_t)time(NULL)));

	ex[n++] = (struct canon_extra){ "topic", topic.data, topic.len };
	ex[n++] = (struct canon_extra){ "msg", payload.data, payload.len };
	ex[n++] = (struct canon_extra){ "msg_id", id.data, id.len };
	ex[n++] = (struct canon_extra){ "i", i_text, strlen(i_text) };
	ex[n++] = (struct canon_extra){ "timestamp", ts_text, strlen(ts_text) };
	ex[n++] = (struct canon_extra){ "username", user.data, user.len };
	if (f->headers_json)
		ex[n++] = (struct canon_extra){ "headers", hdrs.data, hdrs.len };
	if (payload.oom || hdrs.oom) {
		snprintf(err, FM_ERRLEN, "out of memory");
		goto done;
	}
	canon_object_with(&body, NULL, NULL, ex, n);
	if (body.oom) {
		snprintf(err, FM_ERRLEN, "out of memory");
		goto done;
	}
	rc = fm_msg_parse(body.data, body.len, lim, out, err);
done:
	buf_free(&topic);
	buf_free(&payload);
	buf_free(&id);
	buf_free(&user);
	buf_free(&hdrs);
	buf_free(&body);
	return rc;
}
