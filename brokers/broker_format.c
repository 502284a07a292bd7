/*
 * Envelopes in their broker forms (broker_format.h), moved here from the
 * bridge so that fedmsg-git-hook sends what fedmsg-bridge sends.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "broker_format.h"
#include "canon.h"
#include "json.h"
#include "msg.h"

/*
 * Names a broker interprets itself (STOMP/JMS headers, ActiveMQ and
 * RabbitMQ extensions): a payload field called "timestamp" or "priority"
 * must not become one, or ActiveMQ drops the connection.
 */
bool
broker_reserved_name(const char *k, size_t n)
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
size_t
broker_copy_props(const struct fm_msg *m, struct broker_prop *props,
    size_t max, char (*vals)[257], char (*keys)[65])
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
		    broker_reserved_name(mb->key, mb->key_len))
			continue;
		switch (v->type) {
		case JV_STRING:
			/* header-safe text only (STOMP 1.1 has no \r escape) */
			if (v->len > 256 || memchr(v->u.str, 0, v->len) ||
			    memchr(v->u.str, '\r', v->len) ||
			    memchr(v->u.str, '\n', v->len))
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
 * fedora-messaging's form of an envelope, as fedmsg-migration-tools'
 * zmq_to_amqp publishes it: the body is "msg"; the headers are the
 * envelope's "headers" plus the schema, an integer severity, sent-at
 * (from "timestamp"), priority 0, the user filter headers for the
 * payload's agent/user/username, and our origin marker.  *body and
 * *headers are owned by the writers, freed by the caller.
 */
int
broker_fedora_messaging_form(const struct fm_msg *m, const char *schema,
    const char *origin, struct jw *bw, struct jw *hw, const char **body,
    size_t *bl, const char **headers, char *err)
{
	static const char *const users[] = { "agent", "user", "username",
	    NULL };
	const struct jv *root = msg_root(m), *msg = jv_get(root, "msg");
	const struct jv *h = jv_get(root, "headers");
	const char *const *u;
	char sent[40], key[300];
	double ts;
	time_t t;
	struct tm tm;
	size_t hl;
	uint32_t i;

	jw_value(bw, msg);
	if ((*body = jw_finish(bw, bl, err, FM_ERRLEN)) == NULL)
		return -1;
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
		}
	/* later keys win when a parser meets a name twice: ours last */
	jw_key(hw, "fedora_messaging_schema", 23);
	jw_string(hw, schema, strlen(schema));
	jw_key(hw, "fedora_messaging_severity", 25);
	jw_int(hw, BROKER_FM_SEVERITY);
	jw_key(hw, "sent-at", 7);
	jw_string(hw, sent, strlen(sent));
	jw_key(hw, "priority", 8);
	jw_int(hw, 0);
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
	}
	if (origin) {
		jw_key(hw, BROKER_ORIGIN_PROP, strlen(BROKER_ORIGIN_PROP));
		jw_string(hw, origin, strlen(origin));
	}
	jw_object_end(hw);
	*headers = jw_finish(hw, &hl, err, FM_ERRLEN);
	return *headers ? 0 : -1;
}
