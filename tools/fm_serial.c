/*
 * fedora-messaging's serialised form (fm_serial.h), written the way
 * Python's json.dumps(sort_keys=True, ensure_ascii=False) writes it: our
 * JSON tree (json.h) keeps integers of any size and sorts keys in code
 * point order, canon_float() is Python's float repr; only the separators
 * and the non-ASCII text differ from fedmsg's canonical JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fedmsg/message.h>

#include "buf.h"
#include "canon.h"
#include "fm_serial.h"
#include "json.h"
#include "utf8.h"

/* A string as json.dumps(ensure_ascii=False) writes it. */
static void
py_string(struct buf *b, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str, *end = s + len;

	buf_addc(b, '"');
	while (s < end) {
		unsigned c = *s;
		size_t used;

		switch (c) {
		case '"': buf_adds(b, "\\\""); s++; continue;
		case '\\': buf_adds(b, "\\\\"); s++; continue;
		case '\b': buf_adds(b, "\\b"); s++; continue;
		case '\t': buf_adds(b, "\\t"); s++; continue;
		case '\n': buf_adds(b, "\\n"); s++; continue;
		case '\f': buf_adds(b, "\\f"); s++; continue;
		case '\r': buf_adds(b, "\\r"); s++; continue;
		default:
			break;
		}
		if (c < 0x20) {
			buf_printf(b, "\\u%04x", c);
			s++;
			continue;
		}
		if (c < 0x80) {		/* DEL included: Python leaves it */
			buf_addc(b, (char)c);
			s++;
			continue;
		}
		used = utf8_decode(s, (size_t)(end - s), &c, UTF8_SURROGATES);
		if (used == 0) {	/* not from our parser: U+FFFD */
			buf_adds(b, "\xef\xbf\xbd");
			s++;
		} else if (c >= 0xd800 && c <= 0xdfff) {
			/* a lone surrogate has no UTF-8: its escape */
			buf_printf(b, "\\u%04x", c);
			s += used;
		} else {
			buf_add(b, s, used);
			s += used;
		}
	}
	buf_addc(b, '"');
}

static void
py_value(struct buf *b, const struct jv *v)
{
	char num[PYFLOAT_MAX];
	uint32_t i;

	switch (v->type) {
	case JV_NULL:
		buf_adds(b, "null");
		break;
	case JV_FALSE:
		buf_adds(b, "false");
		break;
	case JV_TRUE:
		buf_adds(b, "true");
		break;
	case JV_INT:
		buf_add(b, v->u.str, v->len);
		break;
	case JV_FLOAT:
		buf_add(b, num, canon_float(v->u.num, num));
		break;
	case JV_STRING:
		py_string(b, v->u.str, v->len);
		break;
	case JV_ARRAY:
		buf_addc(b, '[');
		for (i = 0; i < v->len; i++) {
			if (i)
				buf_adds(b, ", ");
			py_value(b, &v->u.items[i]);
		}
		buf_addc(b, ']');
		break;
	case JV_OBJECT:		/* sorted by the parser */
		buf_addc(b, '{');
		for (i = 0; i < v->len; i++) {
			if (i)
				buf_adds(b, ", ");
			py_string(b, v->u.members[i].key,
			    v->u.members[i].key_len);
			buf_adds(b, ": ");
			py_value(b, &v->u.members[i].value);
		}
		buf_addc(b, '}');
		break;
	}
}

/* The headers as JSON text (malloc'ed): the typed ones, else the
   properties as strings. */
static char *
headers_text(const struct broker_in *in)
{
	json_t *h;
	char *text;
	size_t i;

	if (in->headers_json)
		return strdup(in->headers_json);
	if ((h = json_object()) == NULL)
		return NULL;
	for (i = 0; i < in->nprops; i++)
		json_object_set_new(h, in->props[i].name,
		    json_string(in->props[i].value));
	text = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	return text;
}

char *
fm_serial_dumps(const struct broker_in *in, const char *topic, char *err)
{
	struct jv_doc *body = NULL, *headers = NULL;
	struct buf b = BUF_INIT;
	const struct jv *prio;
	char *htext = NULL, *out = NULL;

	if ((body = jv_parse(in->body, in->len, NULL, err)) == NULL) {
		char why[FM_ERRLEN];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, FM_ERRLEN, "the body is not JSON: %s", why);
		return NULL;
	}
	if ((htext = headers_text(in)) == NULL ||
	    (headers = jv_parse(htext, strlen(htext), NULL, err)) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		goto done;
	}
	/* the keys of SERIALIZED_MESSAGE_SCHEMA, sorted */
	buf_adds(&b, "{\"body\": ");
	py_value(&b, jv_doc_root(body));
	buf_adds(&b, ", \"headers\": ");
	py_value(&b, jv_doc_root(headers));
	buf_adds(&b, ", \"id\": ");
	if (in->message_id && *in->message_id)
		py_string(&b, in->message_id, strlen(in->message_id));
	else
		buf_adds(&b, "null");
	/* Message.priority: the AMQP priority or 0, which fedora-messaging
	   mirrors in the "priority" header (the property is not ours) */
	prio = jv_get(jv_doc_root(headers), "priority");
	buf_adds(&b, ", \"priority\": ");
	if (prio && prio->type == JV_INT)
		buf_add(&b, prio->u.str, prio->len);
	else
		buf_addc(&b, '0');
	/* Message.queue: the queue it came from, when one was named */
	buf_adds(&b, ", \"queue\": ");
	if (in->source && strncmp(in->source, "/queue/", 7) == 0)
		py_string(&b, in->source + 7, strlen(in->source + 7));
	else
		buf_adds(&b, "null");
	buf_adds(&b, ", \"topic\": ");
	py_string(&b, topic, strlen(topic));
	buf_addc(&b, '}');
	if (b.oom)
		snprintf(err, FM_ERRLEN, "out of memory");
	else
		out = buf_steal(&b, NULL);
done:
	buf_free(&b);
	free(htext);
	jv_doc_free(headers);
	jv_doc_free(body);
	return out;
}
