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
#define BROKER_CLI_ADDRESS_DEFAULT "/topic/{topic}"

/* getopt_long codes of the options below. */
enum {
	BROKER_CLI_BROKER = 0x1000, BROKER_CLI_USER, BROKER_CLI_PASSWORD_FILE,
	BROKER_CLI_VHOST, BROKER_CLI_TLS_CA, BROKER_CLI_TLS_CERT,
	BROKER_CLI_TLS_KEY, BROKER_CLI_TLS_HOSTNAME, BROKER_CLI_PLAINTEXT,
	BROKER_CLI_SOURCE, BROKER_CLI_ADDRESS, BROKER_CLI_FORMAT,
};

/*
 * Entries for a tool's struct option table: the connection; a receiving
 * tool adds BROKER_CLI_SOURCE_OPT, a sending one BROKER_CLI_SEND_OPTS.
 */
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
	    BROKER_CLI_PLAINTEXT }
#define BROKER_CLI_SOURCE_OPT \
	{ "source", required_argument, NULL, BROKER_CLI_SOURCE }
#define BROKER_CLI_SEND_OPTS \
	{ "address", required_argument, NULL, BROKER_CLI_ADDRESS }, \
	{ "format", required_argument, NULL, BROKER_CLI_FORMAT }

/* The --help text of the connection options, of --source, and of
   --address and --format. */
extern const char broker_cli_usage[], broker_cli_source_usage[],
    broker_cli_send_usage[];

struct broker_cli {
	const char	*urls[BROKER_CLI_MAX_URLS];	/* --broker, in order */
	size_t		 nurls;
	const char	*source;	/* --source; NULL: the default */
	const char	*address;	/* --address; NULL: "/topic/{topic}" */
	int		 format;	/* --format: enum broker_format */
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
 * Is that source the AMQP 0-9-1 default (no --source), which a tool may
 * narrow to other routing keys ("/exchange/amq.topic/<pattern>")?
 */
bool broker_cli_source_is_default_091(const struct broker_cli *c);

/*
 * Wait up to timeout_ms for the link's socket or timer and let it work
 * (callbacks run from here).  -1 when the poll failed (errno; EINTR when a
 * signal came).
 */
int broker_cli_poll(struct broker *b, int timeout_ms);

/* Free what the options hold (not the link). */
void broker_cli_free(struct broker_cli *c);

#endif
