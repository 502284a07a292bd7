/*
 * fedora-messaging's serialised form (fm_serial.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fedmsg/message.h>

#include "fm_serial.h"

char *
fm_serial_dumps(const struct broker_in *in, const char *topic, char *err)
{
	json_t *o, *body, *headers = NULL;
	json_error_t je;
	char *text = NULL;
	size_t i;

	body = json_loadb(in->body, in->len, JSON_DECODE_ANY |
	    JSON_ALLOW_NUL, &je);
	if (body == NULL) {
		snprintf(err, FM_ERRLEN, "the body is not JSON: %s", je.text);
		return NULL;
	}
	if (in->headers_json)
		headers = json_loads(in->headers_json, 0, NULL);
	if (headers == NULL) {
		headers = json_object();
		for (i = 0; i < in->nprops; i++)
			json_object_set_new(headers, in->props[i].name,
			    json_string(in->props[i].value));
	}
	o = json_object();
	json_object_set_new(o, "body", body);
	json_object_set_new(o, "headers", headers);
	json_object_set_new(o, "id", in->message_id && *in->message_id ?
	    json_string(in->message_id) : json_null());
	json_object_set_new(o, "priority", json_null());
	json_object_set_new(o, "queue", json_null());
	json_object_set_new(o, "topic", json_string(topic));
	/* Python's json.dumps(sort_keys=True, ensure_ascii=False) */
	if (o)
		text = json_dumps(o, JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (text == NULL)
		snprintf(err, FM_ERRLEN, "out of memory");
	json_decref(o);
	return text;
}
