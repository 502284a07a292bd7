/*
 * What travels on a broker for a fedmsg envelope, per format
 * (broker_format.h; README "Message formats").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "broker_format.h"
#include "canon.h"
#include "json.h"
#include "jwrite.h"
#include "msg.h"

int
broker_format_from_name(const char *name)
{
	if (strcmp(name, "fedmsg") == 0)
		return BROKER_FORMAT_FEDMSG;
	if (strcmp(name, "fedora-messaging") == 0)
		return BROKER_FORMAT_FEDORA_MESSAGING;
	if (strcmp(name, "umb") == 0)
		return BROKER_FORMAT_UMB;
	return -1;
}

/* props[0..]: topic and the origin marker; how many. */
static size_t
base_props(struct broker_form *f, const struct broker_form_opts *o,
    const char *topic)
{
	size_t n = 0;

	if (topic)
		f->props[n++] = (struct broker_prop){ "topic", topic };
	if (o->origin)
		f->props[n++] = (struct broker_prop){ BROKER_ORIGIN_PROP,
		    o->origin };
	return n;
}

/*
 * Names a broker interprets itself (STOMP/JMS headers, ActiveMQ and
 * RabbitMQ extensions): a payload field called "timestamp" or "priority"
 * must not become one, or ActiveMQ drops the connection.
 */
static bool
reserved_name(const char *k, size_t n)
{
	static const char *const names[] = { "ack", "content-length",
	    "content-type", "correlation-id", "destination", "expires", "id",
	    "message-id", "persistent", "priority", "receipt", "redelivered",
	    "reply-to", "subscription", "timestamp", "transaction",
	    "transformation", "type", "topic", BROKER_ORIGIN_PROP, NULL };
	const char *const *p;

	if ((n >= 3 && strncasecmp(k, "JMS", 3) == 0) ||
	    (n >= 4 && strncmp(k, "amq-", 4) == 0) ||
	    (n >= 9 && strncmp(k, "activemq.", 9) == 0) ||
	    (n >= 2 && strncmp(k, "x-", 2) == 0))
		return true;
	for (p = names; *p; p++)
		if (strlen(*p) == n && strncasecmp(*p, k, n) == 0)
			return true;
	return false;
}

/*
 * Copy the payload's top-level scalars as properties, as UMB producers do
 * (numbers in fedmsg's own spelling), except names brokers reserve.
 */
static size_t
copy_props(const struct fm_msg *m, struct broker_prop *props, size_t max,
    char (*vals)[257], char (*keys)[65], bool umb)
{
	const struct jv *msg = jv_get(msg_root(m), "msg");
	uint32_t i;
	size_t n = 0;

	if (msg == NULL || msg->type != JV_OBJECT)
		return 0;
	for (i = 0; i < msg->len && n < max; i++) {
		const struct jv_member *mb = &msg->u.members[i];
		const struct jv *v = &mb->value;

		if (mb->key_len > 64 || memchr(mb->key, 0, mb->key_len) ||
		    memchr(mb->key, ':', mb->key_len) ||
		    reserved_name(mb->key, mb->key_len) ||
		    (umb && mb->key_len == 6 && memcmp(mb->key, "msg_id", 6) == 0))
			continue;
		switch (v->type) {
		case JV_STRING:
			/*
			 * header-safe text only (STOMP 1.1 has no \r escape);
			 * "umb" keeps line feeds, which STOMP escapes
			 */
			if (v->len > 256 || memchr(v->u.str, 0, v->len) ||
			    memchr(v->u.str, '\r', v->len) ||
			    (!umb && memchr(v->u.str, '\n', v->len)))
				continue;
			snprintf(vals[n], 257, "%.*s", (int)v->len, v->u.str);
			break;
		case JV_TRUE:
		case JV_FALSE:
			snprintf(vals[n], 257, "%s", v->type == JV_TRUE ? "true" :
			    "false");
			break;
		case JV_INT:
			if (v->len > 256)
				continue;
			snprintf(vals[n], 257, "%.*s", (int)v->len, v->u.str);
			break;
		case JV_FLOAT:
			canon_float(v->u.num, vals[n]);
			break;
		default:
			continue;
		}
		snprintf(keys[n], 65, "%.*s", (int)mb->key_len, mb->key);
		props[n].name = keys[n];
		props[n].value = vals[n];
		n++;
	}
	return n;
}

/*
 * STOMP has only text headers: name = text, a name already there
 * replaced (later wins, as in the AMQP headers); text that is not
 * header-safe (a NUL or CR, over 256 bytes) or a name that does not fit
 * is left out.
 */
static void
text_header(struct broker_form *f, struct broker_out *out, const char *k,
    size_t kl, const char *v, size_t vl)
{
	size_t i;

	if (kl == 0 || kl > 64 || memchr(k, 0, kl) || memchr(k, ':', kl) ||
	    vl > 256 || memchr(v, 0, vl) || memchr(v, '\r', vl))
		return;
	for (i = 0; i < out->nprops; i++)
		if (strlen(out->props[i].name) == kl &&
		    memcmp(out->props[i].name, k, kl) == 0)
			break;
	if (i == out->nprops) {
		if (i == BROKER_FORM_PROPS)
			return;
		snprintf(f->keys[i], 65, "%.*s", (int)kl, k);
		f->props[i].name = f->keys[i];
		out->nprops++;
	}
	snprintf(f->vals[i], 257, "%.*s", (int)vl, v);
	f->props[i].value = f->vals[i];
}

/* A scalar header value as STOMP text (as copy_props spells it). */
static void
text_header_jv(struct broker_form *f, struct broker_out *out, const char *k,
    size_t kl, const struct jv *v)
{
	char num[40];

	switch (v->type) {
	case JV_STRING:
	case JV_INT:
		text_header(f, out, k, kl, v->u.str, v->len);
		break;
	case JV_TRUE:
	case JV_FALSE:
		text_header(f, out, k, kl, v->type == JV_TRUE ? "true" :
		    "false", v->type == JV_TRUE ? 4 : 5);
		break;
	case JV_FLOAT:
		canon_float(v->u.num, num);
		text_header(f, out, k, kl, num, strlen(num));
		break;
	default:
		break;		/* null, lists, objects: no text form */
	}
}

/*
 * fedora-messaging's form of an envelope, as fedmsg-migration-tools'
 * zmq_to_amqp publishes it: the body is "msg"; the headers are the
 * envelope's "headers" plus the schema, an integer severity, sent-at
 * (from "timestamp"), priority 0, the user filter headers for the
 * payload's agent/user/username, and our origin marker.  AMQP: typed
 * headers (headers_json); STOMP: the same as text headers after "topic"
 * (an envelope header a broker reserves left out, but our priority).
 */
static int
fedora_messaging_form(struct broker_form *f, const struct broker_form_opts *o,
    const struct fm_msg *m, struct broker_out *out, char *err)
{
	static const char *const users[] = { "agent", "user", "username",
	    NULL };
	const struct jv *root = msg_root(m), *msg = jv_get(root, "msg");
	const struct jv *h = jv_get(root, "headers");
	const char *const *u;
	const char *schema = o->schema ? o->schema : "base.message";
	struct jw *hw = f->hw;
	bool stomp = strcmp(o->proto, "stomp") == 0;
	char sent[40], key[300];
	double ts;
	time_t t;
	struct tm tm;
	size_t hl;
	uint32_t i;

	jw_value(f->bw, msg);
	if ((out->body = jw_finish(f->bw, &out->len, err, FM_ERRLEN)) == NULL)
		return -1;
	if (stomp)
		out->nprops = base_props(f, o, fm_msg_topic(m));
	t = fm_msg_timestamp(m, &ts) ? (time_t)ts : time(NULL);
	gmtime_r(&t, &tm);
	strftime(sent, sizeof(sent), "%Y-%m-%dT%H:%M:%S+00:00", &tm);
	jw_object_begin(hw);
	if (h && h->type == JV_OBJECT)
		for (i = 0; i < h->len; i++) {
			const struct jv_member *mb = &h->u.members[i];

			if (mb->key_len > 128)
				continue;	/* not an AMQP short string */
			jw_key(hw, mb->key, mb->key_len);
			jw_value(hw, &mb->value);
			if (stomp && !reserved_name(mb->key, mb->key_len))
				text_header_jv(f, out, mb->key, mb->key_len,
				    &mb->value);
		}
	/* later keys win when a parser meets a name twice: ours last */
	jw_key(hw, "fedora_messaging_schema", 23);
	jw_string(hw, schema, strlen(schema));
	jw_key(hw, "fedora_messaging_severity", 25);
	jw_int(hw, 20);		/* INFO, fedora-messaging's default */
	jw_key(hw, "sent-at", 7);
	jw_string(hw, sent, strlen(sent));
	jw_key(hw, "priority", 8);
	jw_int(hw, 0);
	if (stomp) {
		text_header(f, out, "fedora_messaging_schema", 23, schema,
		    strlen(schema));
		text_header(f, out, "fedora_messaging_severity", 25, "20", 2);
		text_header(f, out, "sent-at", 7, sent, strlen(sent));
		text_header(f, out, "priority", 8, "0", 1);
	}
	for (u = users; msg && msg->type == JV_OBJECT && *u; u++) {
		const struct jv *v = jv_get(msg, *u);
		int n;

		if (v == NULL || v->type != JV_STRING || v->len == 0 ||
		    v->len > 100 || memchr(v->u.str, 0, v->len))
			continue;
		n = snprintf(key, sizeof(key), "fedora_messaging_user_%.*s",
		    (int)v->len, v->u.str);
		jw_key(hw, key, (size_t)n);
		jw_bool(hw, 1);
		if (stomp)	/* a name over 64 bytes is left out */
			text_header(f, out, key, (size_t)n, "true", 4);
	}
	if (o->origin) {
		jw_key(hw, BROKER_ORIGIN_PROP, strlen(BROKER_ORIGIN_PROP));
		jw_string(hw, o->origin, strlen(o->origin));
		if (stomp)
			text_header(f, out, BROKER_ORIGIN_PROP,
			    strlen(BROKER_ORIGIN_PROP), o->origin,
			    strlen(o->origin));
	}
	jw_object_end(hw);
	out->headers_json = jw_finish(hw, &hl, err, FM_ERRLEN);
	return out->headers_json ? 0 : -1;
}

/*
 * Is this payload member a scalar "umb" carries typed on AMQP?  The
 * same names as copy_props (up to 64 bytes, no NUL or ':', none a broker
 * reserves, not msg_id), strings of any length; integers that fit in 64
 * bits (bigger ones go as their text).
 */
static void
umb_typed_member(struct jw *hw, const struct jv_member *mb)
{
	const struct jv *v = &mb->value;
	char num[32];
	long long n;

	if (mb->key_len > 64 || memchr(mb->key, 0, mb->key_len) ||
	    memchr(mb->key, ':', mb->key_len) ||
	    reserved_name(mb->key, mb->key_len) ||
	    (mb->key_len == 6 && memcmp(mb->key, "msg_id", 6) == 0))
		return;
	switch (v->type) {
	case JV_STRING:
	case JV_TRUE:
	case JV_FALSE:
	case JV_FLOAT:
		jw_key(hw, mb->key, mb->key_len);
		jw_value(hw, v);
		break;
	case JV_INT:
		jw_key(hw, mb->key, mb->key_len);
		snprintf(num, sizeof(num), "%.*s", v->len < 31 ? (int)v->len :
		    31, v->u.str);
		errno = 0;
		n = strtoll(num, NULL, 10);
		if (v->len < 31 && errno == 0)
			jw_int(hw, n);
		else
			jw_string(hw, v->u.str, v->len);
		break;
	default:
		break;
	}
}

/*
 * "umb": the payload as UMB consumers read it.  The body is "msg"; the
 * properties are topic, msg_id, our origin marker and the payload's
 * top-level scalars: typed on AMQP (headers_json: integers stay
 * integers, booleans booleans), text headers on STOMP (copy_props; the
 * frame writer escapes them per STOMP 1.2).
 */
static int
umb_form(struct broker_form *f, const struct broker_form_opts *o,
    const struct fm_msg *m, struct broker_out *out, char *err)
{
	struct broker_prop *props = f->props;
	struct jw *bw = f->bw, *hw = f->hw;
	const struct jv *msg = jv_get(msg_root(m), "msg");
	size_t hl;
	uint32_t i;

	if (msg == NULL) {
		snprintf(err, FM_ERRLEN, "no \"msg\"");
		return -1;
	}
	jw_value(bw, msg);
	if ((out->body = jw_finish(bw, &out->len, err, FM_ERRLEN)) == NULL)
		return -1;
	out->nprops = base_props(f, o, fm_msg_topic(m));
	if (out->message_id)
		props[out->nprops++] = (struct broker_prop){ "msg_id",
		    out->message_id };
	if (strcmp(o->proto, "stomp") == 0) {
		out->nprops += copy_props(m, props + out->nprops,
		    BROKER_FORM_PROPS - out->nprops, f->vals, f->keys, true);
		return 0;
	}
	jw_object_begin(hw);
	for (i = 0; msg->type == JV_OBJECT && i < msg->len; i++)
		umb_typed_member(hw, &msg->u.members[i]);
	jw_object_end(hw);
	out->headers_json = jw_finish(hw, &hl, err, FM_ERRLEN);
	return out->headers_json ? 0 : -1;
}


int
broker_form_make(struct broker_form *f, const struct broker_form_opts *o,
    const struct fm_msg *m, const char *env, size_t len,
    struct broker_out *out, char *err)
{
	int rc;

	memset(f, 0, sizeof(*f));
	out->props = f->props;
	out->nprops = 0;
	out->headers_json = NULL;
	if (o->format == BROKER_FORMAT_FEDMSG) {
		out->body = env;
		out->len = len;
		out->nprops = base_props(f, o, fm_msg_topic(m));
		out->nprops += copy_props(m, f->props + out->nprops,
		    BROKER_FORM_PROPS - out->nprops, f->vals, f->keys, false);
		return 0;
	}
	if ((f->bw = jw_new()) == NULL || (f->hw = jw_new()) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return -1;
	}
	if (o->format == BROKER_FORMAT_UMB)
		rc = umb_form(f, o, m, out, err);
	else
		rc = fedora_messaging_form(f, o, m, out, err);
	return rc < 0 ? -2 : 0;
}

void
broker_form_free(struct broker_form *f)
{
	jw_free(f->bw);
	jw_free(f->hw);
	f->bw = f->hw = NULL;
}
