/*
 * Broker connection settings from a JSON config object, shared by the
 * bridges and the hub's broker transport, and the choice of protocol by
 * URL scheme.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fedmsg/message.h>

#include "broker.h"
#include "jget.h"

/* The first line of a secret file (passwords never sit in the config). */
static char *
read_secret(const char *path, char *err)
{
	FILE *f = fopen(path, "r");
	char buf[1024];
	size_t n;

	if (f == NULL) {
		snprintf(err, FM_ERRLEN, "password_file %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

int
broker_opts_from_json(json_t *obj, struct broker_opts *bo, char **secret,
    char *err)
{
	json_t *tls = json_object_get(obj, "tls");
	json_t *hb = json_object_get(obj, "heartbeat");
	json_t *credit = json_object_get(obj, "credit");
	json_t *rto = json_object_get(obj, "confirm_timeout");

	*secret = NULL;
	if ((tls && !json_is_object(tls)) || (hb && !json_is_number(hb)) ||
	    (credit && !json_is_integer(credit))) {
		snprintf(err, FM_ERRLEN, "tls must be an object, heartbeat a "
		    "number of seconds, credit an integer");
		return -1;
	}
	if (rto && (!json_is_number(rto) || json_number_value(rto) < 0.1 ||
	    json_number_value(rto) > 3600)) {
		snprintf(err, FM_ERRLEN, "confirm_timeout must be a number of "
		    "seconds from 0.1 to 3600");
		return -1;
	}
	bo->user = jget_str(obj, "user");
	bo->vhost = jget_str(obj, "vhost");
	bo->tls.ca = jget_str(tls, "ca");
	bo->tls.cert = jget_str(tls, "cert");
	bo->tls.key = jget_str(tls, "key");
	bo->tls.hostname = jget_str(tls, "hostname");
	bo->heartbeat_ms = (unsigned)(json_number_value(hb) * 1000);
	bo->credit = (unsigned)json_integer_value(credit);
	bo->confirm_timeout_ms = (unsigned)(json_number_value(rto) * 1000);
	if (jget_str(obj, "password_file") &&
	    (*secret = read_secret(jget_str(obj, "password_file"),
	    err)) == NULL)
		return -1;
	bo->password = *secret;
	return 0;
}

struct broker *
broker_new(const struct broker_opts *bo, const struct broker_callbacks *cb,
    char *err)
{
	const char *url = bo->nurls ? bo->urls[0] : "";

	if (strncmp(url, "amqp://", 7) == 0 || strncmp(url, "amqps://", 8) == 0)
		return amqp_broker_new(bo, cb, err);
	if (strncmp(url, "stomp", 5) == 0)
		return stomp_broker_new(bo, cb, err);
	snprintf(err, FM_ERRLEN, "%s: want amqp://, amqps://, stomp:// or "
	    "stomp+ssl://", url);
	return NULL;
}
