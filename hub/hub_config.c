/*
 * Checking the hub's config (hub_internal.h): the keys of "hub" and of
 * each consumers.<name> object, their types and ranges, and fedmsg's
 * truthiness.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consumer.h"
#include "hub_internal.h"
#include "log.h"

static const char *const hub_keys[] = { "name", "active", "cert",
    "metrics", "heartbeat_interval", "drain_timeout",
    "skip_broken_consumers", "bus", "source", "address", "user",
    "password_file", "vhost", "tls", "credit", "heartbeat",
    "confirm_timeout", "connect_timeout", "allow_plaintext_credentials",
    "broker_authenticated", "unrouted", "username", "exchanges", "queues",
    "bindings", "passive_declares", NULL };
static const char *const consumer_keys[] = { "plugin", "enabled",
    "config_key", "topics", "threads", "queue_size", "queue_full",
    "timeout", "max_attempts", "backoff", "max_backoff", "dedup_window",
    "config", "match", NULL };

static void
warn_unknown(json_t *obj, const char *const *known, const char *where)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		const char *const *k;

		for (k = known; *k && strcmp(*k, key) != 0; k++)
			;
		if (*k == NULL)
			log_warn("%s: unknown key '%s'", where, key);
	}
}

double
hub_num(json_t *obj, const char *key, double dflt, bool *bad)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return dflt;
	if (!json_is_number(v) || json_number_value(v) < 0) {
		*bad = true;
		log_err("key '%s' must be a number >= 0", key);
		return dflt;
	}
	return json_number_value(v);
}

bool
hub_truthy(json_t *v)
{
	return v && !json_is_null(v) && !json_is_false(v) &&
	    !(json_is_integer(v) && json_integer_value(v) == 0) &&
	    !(json_is_string(v) && json_string_length(v) == 0);
}

struct consumer_spec *
hub_consumer_spec(const char *name, json_t *e, char *err)
{
	struct consumer_spec *s = calloc(1, sizeof(*s));
	json_t *plugin = json_object_get(e, "plugin");
	json_t *topics = json_object_get(e, "topics");
	json_t *full = json_object_get(e, "queue_full");
	json_t *ck = json_object_get(e, "config_key");
	char where[300];
	bool bad = false, reserved = false, no_topics = false;

	snprintf(where, sizeof(where), "consumers.%s", name);
	if (s == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	warn_unknown(e, consumer_keys, where);
	s->name = strdup(name);
	s->plugin = strdup(json_is_string(plugin) ?
	    json_string_value(plugin) : name);
	s->config_key = json_is_string(ck) ? strdup(json_string_value(ck)) :
	    NULL;
	s->threads = (unsigned)hub_num(e, "threads", 1, &bad);
	s->queue_size = (size_t)hub_num(e, "queue_size", 1000, &bad);
	s->timeout_ms = (unsigned)(hub_num(e, "timeout", 60, &bad) * 1000);
	s->max_attempts = (unsigned)hub_num(e, "max_attempts", 3, &bad);
	s->backoff_ms = (unsigned)(hub_num(e, "backoff", 1, &bad) * 1000);
	s->max_backoff_ms = (unsigned)(hub_num(e, "max_backoff", 60, &bad) *
	    1000);
	s->dedup_window = (size_t)hub_num(e, "dedup_window", 10000, &bad);
	s->full = FULL_DROP_OLDEST;
	if (json_is_string(full) &&
	    strcmp(json_string_value(full), "drop_new") == 0)
		s->full = FULL_DROP_NEW;
	else if (full && !(json_is_string(full) &&
	    strcmp(json_string_value(full), "drop_oldest") == 0))
		bad = true;
	if (s->threads == 0)
		s->threads = 1;
	if (s->queue_size == 0)
		s->queue_size = 1;
	if (s->max_attempts == 0)
		s->max_attempts = 1;
	if (json_is_array(topics) && json_array_size(topics) == 0) {
		no_topics = true;	/* not "every topic": say so */
	} else if (json_is_array(topics)) {
		size_t i;
		json_t *t;

		s->topics = calloc(json_array_size(topics) + 1,
		    sizeof(*s->topics));
		json_array_foreach(topics, i, t) {
			if (!json_is_string(t) || s->topics == NULL) {
				bad = true;
				break;
			}
			s->topics[i] = strdup(json_string_value(t));
		}
	} else if (topics) {
		bad = true;
	}
	{
		json_t *c = json_object_get(e, "config");

		if (c && !json_is_object(c))
			bad = true;
		reserved = json_object_get(c, FM_HUB_CONFIG_MEMBER) != NULL;
		s->config_json = c ? json_dumps(c, JSON_COMPACT |
		    JSON_ENCODE_ANY) : strdup("{}");
		if ((c = json_object_get(e, "match")) != NULL) {
			if (!json_is_object(c))
				bad = true;
			else
				s->match_json = json_dumps(c, JSON_COMPACT);
		}
	}
	if (bad || reserved || no_topics || (plugin &&
	    !json_is_string(plugin)) || (ck && !json_is_string(ck)) ||
	    s->name == NULL || s->plugin == NULL) {
		if (no_topics)
			snprintf(err, FM_ERRLEN, "%s.topics is empty: list the "
			    "topics to consume, or leave topics out for the "
			    "plugin's own", where);
		else if (reserved)
			snprintf(err, FM_ERRLEN, "%s.config.%s: the hub's own "
			    "(it hands the plugin the entry's max_attempts "
			    "there): set max_attempts on the entry", where,
			    FM_HUB_CONFIG_MEMBER);
		else
			snprintf(err, FM_ERRLEN, "%s: a key has the wrong type "
			    "(plugin, config_key: strings; topics: list of "
			    "strings; queue_full: \"drop_oldest\" or "
			    "\"drop_new\"; config, match: objects; the rest "
			    "numbers >= 0)", where);
		consumer_spec_free(s);
		return NULL;
	}
	return s;
}

void
hub_check_keys(json_t *hubcfg)
{
	warn_unknown(hubcfg, hub_keys, "hub");
}
