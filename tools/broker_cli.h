/*
 * The --broker options of the command-line tools (fedmsg-tail), spelled
 * like a bridge's config keys (README "Bridges"): they are put in a JSON
 * object of those keys and read by broker_opts_from_json(), so a tool and
 * a bridge read the same settings the same way.
 */
#ifndef FM_BROKER_CLI_H
#define FM_BROKER_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include <jansson.h>

#include "broker.h"

#define BROKER_CLI_MAX_URLS	16

/* getopt_long codes of the options below. */
enum {
	BROKER_CLI_BROKER = 0x1000, BROKER_CLI_USER, BROKER_CLI_PASSWORD_FILE,
	BROKER_CLI_VHOST, BROKER_CLI_TLS_CA, BROKER_CLI_TLS_CERT,
	BROKER_CLI_TLS_KEY, BROKER_CLI_TLS_HOSTNAME, BROKER_CLI_PLAINTEXT,
	BROKER_CLI_SOURCE,
};

/* Entries for a tool's struct option table. */
#define BROKER_CLI_LONGOPTS \
	{ "broker", required_argument, NULL, BROKER_CLI_BROKER }, \
	{ "user", required_argument, NULL, BROKER_CLI_USER }, \
	{ "password-file", required_argument, NULL, BROKER_CLI_PASSWORD_FILE }, \
	{ "vhost", required_argument, NULL, BROKER_CLI_VHOST }, \
	{ "tls-ca", required_argument, NULL, BROKER_CLI_TLS_CA }, \
	{ "tls-cert", required_argument, NULL, BROKER_CLI_TLS_CERT }, \
	{ "tls-key", required_argument, NULL, BROKER_CLI_TLS_KEY }, \
	{ "tls-hostname", required_argument, NULL, BROKER_CLI_TLS_HOSTNAME }, \
	{ "allow-plaintext-credentials", no_argument, NULL, \
	    BROKER_CLI_PLAINTEXT }, \
	{ "source", required_argument, NULL, BROKER_CLI_SOURCE }

/* The --help text of those options. */
extern const char broker_cli_usage[];

struct broker_cli {
	const char	*urls[BROKER_CLI_MAX_URLS];	/* --broker, in order */
	size_t		 nurls;
	const char	*source;	/* --source; NULL: the default */
	json_t		*settings;	/* the bridge-style keys; owned */
	char		*secret;	/* the password read; owned */
};

/*
 * Take option c (getopt_long's code) with arg: 1 when it was one of ours,
 * 0 when not, -1 on an error (logged).
 */
int broker_cli_option(struct broker_cli *c, int opt, const char *arg);

/* Was --broker given? */
bool broker_cli_wanted(const struct broker_cli *c);

/*
 * The link for the options (broker_new(): the URL's scheme chooses the
 * protocol), or NULL with err[FM_ERRLEN].  Nothing connects before the
 * first broker_cli_poll().
 */
struct broker *broker_cli_open(struct broker_cli *c,
    const struct broker_callbacks *cb, char *err);

/*
 * The address to receive from: --source, else for AMQP 0-9-1 a private
 * queue bound to amq.topic for everything ("/exchange/amq.topic/#");
 * NULL when the protocol has no default (AMQP 1.0, STOMP).
 */
const char *broker_cli_source(const struct broker_cli *c);

/*
 * Wait up to timeout_ms for the link's socket or timer and let it work
 * (callbacks run from here).  -1 when the poll failed (errno; EINTR when a
 * signal came).
 */
int broker_cli_poll(struct broker *b, int timeout_ms);

/* Free what the options hold (not the link). */
void broker_cli_free(struct broker_cli *c);

#endif
