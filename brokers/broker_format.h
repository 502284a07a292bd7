/*
 * How a signed fedmsg envelope travels on a broker, shared by fedmsg-bridge
 * (ZeroMQ -> broker) and fedmsg-git-hook (straight to a broker): the
 * payload's top-level scalars as properties/headers (UMB producers' way),
 * and fedora-messaging's form (the payload as the body, typed headers).
 */
#ifndef FM_BROKER_FORMAT_H
#define FM_BROKER_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#include <fedmsg/message.h>

#include "broker.h"
#include "jwrite.h"

/* The property marking what a fedmsg-c bridge sent (loop prevention). */
#define BROKER_ORIGIN_PROP	"fedmsg_c_bridge"
/* fedora-messaging's generic class, and its default severity (INFO). */
#define BROKER_FM_SCHEMA	"base.message"
#define BROKER_FM_SEVERITY	20

/* A name brokers interpret themselves (JMS*, timestamp, priority, ...). */
bool broker_reserved_name(const char *k, size_t n);

/*
 * Up to max of the envelope's msg top-level scalars as properties (text,
 * numbers in fedmsg's spelling, true/false), skipping reserved names and
 * texts that cannot be a header.  Names and values are written to keys[]
 * and vals[] (max entries each, the caller's), props point into them.
 * Returns how many.
 */
size_t broker_copy_props(const struct fm_msg *m, struct broker_prop *props,
    size_t max, char (*vals)[257], char (*keys)[65]);

/*
 * fedora-messaging's form of an envelope, as fedmsg-migration-tools'
 * zmq_to_amqp publishes it: *body is "msg"; *headers (a JSON object text)
 * the envelope's "headers" plus fedora_messaging_schema (schema),
 * severity, sent-at, priority 0, the fedora_messaging_user_<name> filter
 * headers for the payload's agent/user/username and, when origin is not
 * NULL, BROKER_ORIGIN_PROP = origin.  *body and *headers are owned by the
 * writers bw and hw.  Returns 0, or -1 with err[FM_ERRLEN].
 */
int broker_fedora_messaging_form(const struct fm_msg *m, const char *schema,
    const char *origin, struct jw *bw, struct jw *hw, const char **body,
    size_t *bl, const char **headers, char *err);

#endif
