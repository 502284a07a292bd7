/*
 * The --broker options of the tools (broker_cli.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <fedmsg/message.h>

#include "broker_cli.h"
#include "broker_format.h"
#include "clock.h"
#include "log.h"

const char broker_cli_usage[] =
"\nBroker (instead of the ZeroMQ bus), spelled like a bridge's config keys:\n"
"  --broker URL           amqp:// amqps:// (AMQP 1.0), amqp091:// amqps091://\n"
"                         (AMQP 0-9-1), stomp:// stomp+ssl://; repeatable\n"
"                         (a failover list, tried in turn)\n"
"  --user NAME            broker user (\"user\")\n"
"  --password-file PATH   its password, the file's first line, mode 600\n"
"                         (\"password_file\")\n"
"  --vhost NAME           virtual host (\"vhost\")\n"
"  --tls-ca PATH, --tls-cert PATH, --tls-key PATH, --tls-hostname NAME\n"
"                         TLS CA, client certificate and key (EXTERNAL),\n"
"                         name to verify (\"tls\": ca, cert, key, hostname)\n"
"  --allow-plaintext-credentials\n"
"                         allow --user over a plain URL (loopback brokers)\n";

const char broker_cli_source_usage[] =
"  --source ADDRESS       what to receive from (a bridge's \"source\"); for\n"
"                         AMQP 0-9-1 default \"/exchange/amq.topic/#\" (a\n"
"                         private queue bound to amq.topic)\n";

const char broker_cli_send_usage[] =
"  --address TEMPLATE     where to send, \"{topic}\" replaced by the topic (a\n"
"                         bridge's \"address\"); default \"/topic/{topic}\"\n"
"                         (AMQP 0-9-1: exchange amq.topic, the topic as\n"
"                         routing key)\n"
"  --format NAME          fedmsg (the signed envelope, default),\n"
"                         fedora-messaging or umb (the payload; README\n"
"                         \"Message formats\", a bridge's \"format\")\n";

/* obj[key] = arg: 1, or -1 (logged) when arg is not UTF-8 */
static int
set(json_t *obj, const char *key, const char *arg)
{
	if (json_object_set_new(obj, key, json_string(arg)) < 0) {
		log_err("%s: not UTF-8 text", arg);
		return -1;
	}
	return 1;
}

static json_t *
tls_of(struct broker_cli *c)
{
	json_t *t = json_object_get(c->settings, "tls");

	if (t == NULL) {
		t = json_object();
		json_object_set_new(c->settings, "tls", t);
	}
	return t;
}

int
broker_cli_option(struct broker_cli *c, int opt, const char *arg)
{
	if (opt < BROKER_CLI_BROKER || opt > BROKER_CLI_FORMAT)
		return 0;
	if (c->settings == NULL && (c->settings = json_object()) == NULL) {
		log_err("out of memory");
		return -1;
	}
	switch (opt) {
	case BROKER_CLI_BROKER:
		if (c->nurls == BROKER_CLI_MAX_URLS) {
			log_err("--broker: at most %d URLs", BROKER_CLI_MAX_URLS);
			return -1;
		}
		c->urls[c->nurls++] = arg;
		return 1;
	case BROKER_CLI_SOURCE:
		c->source = arg;
		return 1;
	case BROKER_CLI_ADDRESS:
		c->address = arg;
		return 1;
	case BROKER_CLI_FORMAT:
		if ((c->format = broker_format_from_name(arg)) < 0) {
			log_err("--format: \"%s\" is not fedmsg, "
			    "fedora-messaging or umb", arg);
			return -1;
		}
		return 1;
	case BROKER_CLI_USER:
		return set(c->settings, "user", arg);
	case BROKER_CLI_PASSWORD_FILE:
		return set(c->settings, "password_file", arg);
	case BROKER_CLI_VHOST:
		return set(c->settings, "vhost", arg);
	case BROKER_CLI_TLS_CA:
		return set(tls_of(c), "ca", arg);
	case BROKER_CLI_TLS_CERT:
		return set(tls_of(c), "cert", arg);
	case BROKER_CLI_TLS_KEY:
		return set(tls_of(c), "key", arg);
	case BROKER_CLI_TLS_HOSTNAME:
		return set(tls_of(c), "hostname", arg);
	case BROKER_CLI_PLAINTEXT:
		json_object_set_new(c->settings,
		    "allow_plaintext_credentials", json_true());
		return 1;
	}
	return 0;
}

bool
broker_cli_wanted(const struct broker_cli *c)
{
	return c->nurls > 0;
}

static bool
is_amqp091(const char *url)
{
	return strncasecmp(url, "amqp091://", 10) == 0 ||
	    strncasecmp(url, "amqps091://", 11) == 0;
}

const char *
broker_cli_source(const struct broker_cli *c)
{
	if (c->source)
		return c->source;
	return c->nurls && is_amqp091(c->urls[0]) ?
	    "/exchange/amq.topic/#" : NULL;
}

bool
broker_cli_source_is_default_091(const struct broker_cli *c)
{
	return c->source == NULL && c->nurls && is_amqp091(c->urls[0]);
}

struct broker *
broker_cli_open(struct broker_cli *c, const struct broker_callbacks *cb,
    char *err)
{
	struct broker_opts bo;

	if (c->settings == NULL && (c->settings = json_object()) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	memset(&bo, 0, sizeof(bo));
	if (broker_opts_from_json(c->settings, &bo, &c->secret, err) < 0)
		return NULL;
	bo.urls = c->urls;
	bo.nurls = c->nurls;
	bo.name = "cli";
	return broker_new(&bo, cb, err);
}

int
broker_cli_poll(struct broker *b, int timeout_ms)
{
	zmq_pollitem_t it;
	int64_t now = clock_ms();
	int t = b->ops->timeout_ms(b, now), rc;

	if (t >= 0 && t < timeout_ms)
		timeout_ms = t;
	memset(&it, 0, sizeof(it));
	b->ops->poll_item(b, &it);
	if (it.fd < 0) {
		rc = zmq_poll(NULL, 0, timeout_ms);
		it.revents = 0;
	} else
		rc = zmq_poll(&it, 1, timeout_ms);
	if (rc < 0)
		return -1;
	b->ops->handle(b, rc > 0 ? it.revents : 0, clock_ms());
	return 0;
}

void
broker_cli_free(struct broker_cli *c)
{
	json_decref(c->settings);
	c->settings = NULL;
	broker_secret_free(c->secret);
	c->secret = NULL;
}
