/*
 * Wrapping a broker payload in a fedmsg envelope (broker_wrap.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "broker_wrap.h"
#include "log.h"

int64_t
broker_parse_sent_at(const char *s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || (end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return 0;
	if (*end == '.')	/* microseconds from other publishers */
		end += 1 + strspn(end + 1, "0123456789");
	if (*end && strcmp(end, "+00:00") && strcmp(end, "Z"))
		return 0;	/* only UTC is written by fedora-messaging */
	return (int64_t)timegm(&tm);
}

struct fm_msg *
broker_wrap(const struct broker_in *in, const struct broker_wrap_opts *o,
    char *err)
{
	struct fm_msg_fields f;
	struct fm_msg *m = NULL;
	json_t *headers = NULL;
	char *htext = NULL, idbuf[300];
	size_t i;

	if (o->topic == NULL || *o->topic == '\0') {
		snprintf(err, FM_ERRLEN, "no topic (no routing key, subject or "
		    "destination)");
		return NULL;
	}
	/*
	 * An empty body is no JSON.  Refused here, because fm_msg_build()
	 * reads a payload length of 0 as "NUL-terminated", and a broker's
	 * empty body (AMQP 1.0 binary of size 0) points into the broker
	 * library's buffer, not at a terminated string.
	 */
	if (o->body == NULL && (in->body == NULL || in->len == 0)) {
		snprintf(err, FM_ERRLEN, "the body is empty, not JSON");
		return NULL;
	}
	if (o->fedora_messaging && in->headers_json)
		headers = json_loads(in->headers_json, 0, NULL);
	if (headers == NULL && o->body == NULL) {
		headers = json_object();
		for (i = 0; i < in->nprops; i++)
			json_object_set_new(headers, in->props[i].name,
			    json_string(in->props[i].value));
	}
	/* transport metadata of RabbitMQ federation, not application data */
	json_object_del(headers, "x-received-from");
	if (headers && (htext = json_dumps(headers, JSON_COMPACT)) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		goto out;
	}
	memset(&f, 0, sizeof(f));
	f.topic = o->topic;
	f.msg_json = o->body ? o->body : in->body;
	f.msg_len = o->body ? strlen(o->body) : in->len;
	f.headers_json = htext;
	f.i = o->seq;
	f.username = o->username;
	if (o->fedora_messaging) {
		const char *id = in->message_id;
		int64_t sent = broker_parse_sent_at(json_string_value(
		    json_object_get(headers, "sent-at")));

		if (id == NULL || *id == '\0' || strlen(id) > 200) {
			snprintf(err, FM_ERRLEN, "no message_id (or one over "
			    "200 bytes)");
			goto out;
		}
		f.timestamp = sent;
		if (strlen(id) >= 5 && strspn(id, "0123456789") == 4 &&
		    id[4] == '-') {
			f.msg_id = id;
		} else {
			/* the year of sending, so a redelivery keeps its id */
			time_t t = sent ? (time_t)sent : time(NULL);
			struct tm tm;

			gmtime_r(&t, &tm);
			snprintf(idbuf, sizeof(idbuf), "%04d-%s",
			    tm.tm_year + 1900, id);
			f.msg_id = idbuf;
		}
	} else if (in->message_id && strlen(in->message_id) ==
	    FM_MSG_ID_LEN && in->message_id[4] == '-') {
		/* keep a fedmsg-shaped id ("YYYY-uuid"), else make one */
		f.msg_id = in->message_id;
	}
	if (fm_msg_build(&f, o->lim, &m, err) < 0)
		m = NULL;
out:
	json_decref(headers);
	free(htext);
	return m;
}
