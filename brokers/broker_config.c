/*
 * Broker connection settings from a JSON config object, shared by the
 * bridges and the hub's broker transport, and the choice of protocol by
 * URL scheme.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

#include <jansson.h>

#include <fedmsg/message.h>

#include "broker.h"
#include "net.h"
#include "jget.h"

/*
 * The first line of a secret file (passwords never sit in the config).
 * Like ssh with its keys: a file that group or others may read is
 * refused.  read(2), not stdio, so no library buffer keeps a copy; ours
 * is wiped.
 */
static char *
read_secret(const char *path, char *err)
{
	char buf[1024], *out = NULL;
	struct stat st;
	size_t n = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, FM_ERRLEN, "password_file %s: %s", path,
		    strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, FM_ERRLEN, "password_file %s: not a regular file",
		    path);
		goto done;
	}
	if (st.st_mode & 077) {
		snprintf(err, FM_ERRLEN, "password_file %s: mode %04o lets "
		    "group or others read it; chmod 600 it", path,
		    (unsigned)(st.st_mode & 07777));
		goto done;
	}
	while (n < sizeof(buf) - 1 &&
	    (r = read(fd, buf + n, sizeof(buf) - 1 - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, FM_ERRLEN, "password_file %s: %s", path,
			    strerror(errno));
			goto done;
		}
		n += (size_t)r;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if ((out = strdup(buf)) == NULL)
		snprintf(err, FM_ERRLEN, "out of memory");
done:
	explicit_bzero(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return out;
}

void
broker_secret_free(char *secret)
{
	if (secret) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
}

/* The first of keys that obj holds as something but a string or null
 * (where null means unset), or NULL. */
static const char *
not_a_string(const json_t *obj, const char *const *keys)
{
	for (; *keys; keys++) {
		const json_t *v = json_object_get(obj, *keys);

		if (v && !json_is_string(v) && !json_is_null(v))
			return *keys;
	}
	return NULL;
}

int
broker_opts_from_json(json_t *obj, struct broker_opts *bo, char **secret,
    char *err)
{
	static const char *const strings[] = { "user", "vhost",
	    "password_file", NULL };
	static const char *const tls_strings[] = { "ca", "cert", "key",
	    "hostname", NULL };
	const char *bad;
	json_t *tls = json_object_get(obj, "tls");
	json_t *hb = json_object_get(obj, "heartbeat");
	json_t *credit = json_object_get(obj, "credit");
	json_t *rto = json_object_get(obj, "confirm_timeout");
	json_t *cto = json_object_get(obj, "connect_timeout");
	json_t *clear = json_object_get(obj, "allow_plaintext_credentials");

	*secret = NULL;
	if ((tls && !json_is_object(tls)) || (hb && !json_is_number(hb)) ||
	    (credit && !json_is_integer(credit))) {
		snprintf(err, FM_ERRLEN, "tls must be an object, heartbeat a "
		    "number of seconds, credit an integer");
		return -1;
	}
	if (hb && (json_number_value(hb) < 0 ||
	    json_number_value(hb) > 3600)) {
		snprintf(err, FM_ERRLEN, "heartbeat must be from 0 to 3600 "
		    "seconds");
		return -1;
	}
	if (credit && (json_integer_value(credit) < 0 ||
	    json_integer_value(credit) > 65535)) {
		snprintf(err, FM_ERRLEN, "credit must be from 0 to 65535");
		return -1;
	}
	if ((bad = not_a_string(obj, strings)) != NULL ||
	    (bad = not_a_string(tls, tls_strings)) != NULL) {
		snprintf(err, FM_ERRLEN, "%s%s must be a string",
		    not_a_string(obj, strings) ? "" : "tls.", bad);
		return -1;
	}
	if (rto && (!json_is_number(rto) || json_number_value(rto) < 0.1 ||
	    json_number_value(rto) > 3600)) {
		snprintf(err, FM_ERRLEN, "confirm_timeout must be a number of "
		    "seconds from 0.1 to 3600");
		return -1;
	}
	if (cto && (!json_is_number(cto) || json_number_value(cto) < 0.1 ||
	    json_number_value(cto) > 3600)) {
		snprintf(err, FM_ERRLEN, "connect_timeout must be a number of "
		    "seconds from 0.1 to 3600");
		return -1;
	}
	if (clear && !json_is_boolean(clear)) {
		snprintf(err, FM_ERRLEN, "allow_plaintext_credentials must be "
		    "true or false");
		return -1;
	}
	bo->allow_plaintext_credentials = json_is_true(clear);
	bo->user = jget_str(obj, "user");
	bo->vhost = jget_str(obj, "vhost");
	bo->tls.ca = jget_str(tls, "ca");
	bo->tls.cert = jget_str(tls, "cert");
	bo->tls.key = jget_str(tls, "key");
	bo->tls.hostname = jget_str(tls, "hostname");
	bo->heartbeat_ms = (unsigned)(json_number_value(hb) * 1000);
	bo->credit = (unsigned)json_integer_value(credit);
	bo->confirm_timeout_ms = (unsigned)(json_number_value(rto) * 1000);
	bo->connect_timeout_ms = (unsigned)(json_number_value(cto) * 1000);
	if (jget_str(obj, "password_file") &&
	    (*secret = read_secret(jget_str(obj, "password_file"),
	    err)) == NULL)
		return -1;
	bo->password = *secret;
	bo->topology = obj;
	return 0;
}

struct broker *
broker_new(const struct broker_opts *bo, const struct broker_callbacks *cb,
    char *err)
{
	const char *url = bo->nurls ? bo->urls[0] : "";
	char shown[512];

	/* the scheme of the first URL in "failover:(url,...)" */
	if (strncasecmp(url, "failover:", 9) == 0) {
		const char *p = strchr(url, ':') + 1;

		url = p + strspn(p, "( \t");
	}
	if (strncasecmp(url, "amqp091://", 10) == 0 ||
	    strncasecmp(url, "amqps091://", 11) == 0)
		return amqp091_broker_new(bo, cb, err);
	if (strncmp(url, "amqp://", 7) == 0 || strncmp(url, "amqps://", 8) == 0)
		return amqp_broker_new(bo, cb, err);
	if (strncmp(url, "stomp", 5) == 0)
		return stomp_broker_new(bo, cb, err);
	snprintf(err, FM_ERRLEN, "%s: want amqp://, amqps:// (AMQP "
	    "1.0), amqp091://, amqps091:// (AMQP 0-9-1), stomp:// or "
	    "stomp+ssl://", net_url_shown(url, strlen(url), shown,
	    sizeof(shown)));
	return NULL;
}
