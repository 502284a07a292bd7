/*
 * Configuration: fedmsg's own key names, stored as JSON.  A path is either
 * one file or a directory whose *.json files are deep-merged in name order
 * (nested objects merged key by key, later files win), like /etc/fedmsg.d.
 * The JSON that Python's fedmsg-config prints loads as is.
 *
 * Every known key is listed once, with its type and default, in the table
 * in config.c.  Unknown top-level keys give a warning naming the key and
 * file (dotted keys such as "datanommer.enabled" belong to applications and
 * are accepted silently); a known key with the wrong type is an error
 * naming the key and file, and the program must not start.
 */
#ifndef FM_CONFIG_H
#define FM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <fedmsg/crypto.h>
#include <fedmsg/message.h>

/* Where to look when no --config is given and $FEDMSG_CONFIG is unset. */
#define FM_CONFIG_DEFAULT_PATH "/etc/fedmsg.d"

/*
 * The merged configuration.  Typed fields hold the effective value of each
 * key (the default when unset); strings point into root and live as long
 * as the config.  Read-only after fm_config_load().
 */
struct fm_config {
	json_t		*root;		/* merged JSON, owned */
	char		*source;	/* the path that was loaded, owned */
	json_t		*origin;	/* top-level key -> file that set it last */

	/* fedmsg's keys */
	const char	*name;		/* NULL when unset */
	bool		 active;
	const char	*environment;	/* "dev" */
	const char	*topic_prefix;	/* "org.fedoraproject" */
	const char	*relay_inbound;	/* first entry, NULL when unset */
	bool		 sign_messages;	/* false */
	bool		 validate_signatures; /* true */
	const char	*crypto_backend;	/* "x509" */
	const char	*ssldir;	/* "/etc/pki/fedmsg" */
	const char	*ca_cert_location; /* NULL when unset: validation fails clearly */
	const char	*crl_location;	/* NULL/"" when unset: no revocation check */
	bool		 routing_nitpicky;
	int64_t		 high_water_mark;	/* 0 */
	int64_t		 zmq_linger;		/* 1000 ms */
	int64_t		 io_threads;		/* 1 */
	double		 post_init_sleep;	/* 0.5 s */
	double		 timeout;		/* 2 s */
	bool		 zmq_strict;

	/* fedmsg-c keys (README.md, "Configuration") */
	struct fm_limits limits;	/* max_message_bytes, max_json_depth */
	int64_t		 validate_max_age;	/* 0 = off */
	int64_t		 validate_max_future;	/* 0 = off, or 60 s with max_age */
	int64_t		 validate_verified_cache;	/* entries, 0 = off */
	int64_t		 crl_cache_expiry;	/* fedmsg's key: re-read CA/CRL after N s */
};

/*
 * Load path (a file or a *.json directory); NULL means $FEDMSG_CONFIG, else
 * FM_CONFIG_DEFAULT_PATH.  Warnings go to stderr through the log.  Returns
 * 0 and a new config in *out (free with fm_config_free), or -1 with a
 * message naming the file and key in err[FM_ERRLEN].
 */
int fm_config_load(const char *path, struct fm_config **out, char *err);
void fm_config_free(struct fm_config *cfg);

/* A top-level value, borrowed from the config; NULL when absent. */
json_t *fm_config_get(const struct fm_config *cfg, const char *key);

/*
 * endpoints[name] as a list: the number of URLs, and the i-th URL
 * (borrowed).  A single string counts as a one-element list.
 */
size_t fm_config_endpoint_count(const struct fm_config *cfg, const char *name);
const char *fm_config_endpoint(const struct fm_config *cfg, const char *name,
    size_t i);

/* certnames[key], borrowed; NULL when absent. */
const char *fm_config_certname(const struct fm_config *cfg, const char *key);

/*
 * A validator for this config: ca_cert_location (required, with a clear
 * error when unset: fedmsg-c never downloads Fedora's CA), crl_location,
 * routing_policy, routing_nitpicky, crypto_validate_backends, freshness
 * and reload settings.  Returns NULL with err[FM_ERRLEN] on error.
 */
struct fm_validator *fm_config_validator(const struct fm_config *cfg,
    char *err);

/*
 * Add a routing policy (object: topic -> list of allowed CNs; an empty
 * list lets nobody publish on the topic) to v.  Returns 0, or -1 with
 * err[FM_ERRLEN] when the shape is wrong or memory runs out.
 */
int fm_validator_allow_policy(struct fm_validator *v, json_t *policy,
    char *err);

/*
 * A signer for certnames[key]: <ssldir>/<certname>.crt and .key.  Returns
 * NULL with err[FM_ERRLEN] naming the key or file on error.
 */
struct fm_signer *fm_config_signer(const struct fm_config *cfg,
    const char *key, char *err);

/* The short host name (gethostname() cut at the first dot), static. */
const char *fm_short_hostname(void);

#endif
