/*
 * fedmsg-logger --broker: each message built and signed as fm_publish()
 * does (topic <topic_prefix>.<environment>.<modname>.<topic>), put in the
 * chosen format (broker_format.h) and sent to a broker, one at a time,
 * each confirmed by the broker before the next (the logger keeps no
 * spool: a message is sent or the program says it was not).
 */
#ifndef FM_LOGGER_BROKER_H
#define FM_LOGGER_BROKER_H

#include "broker_cli.h"
#include "config.h"

struct logger_broker;

/*
 * Connect with c's options and wait up to timeout_ms for the link; sign
 * with certnames["<cert_prefix>.<short host name>"] when the config's
 * sign_messages is true.  NULL with err[FM_ERRLEN].  cfg and c must
 * outlive it.
 */
struct logger_broker *logger_broker_open(struct broker_cli *c,
    const struct fm_config *cfg, const char *cert_prefix, int timeout_ms,
    char *err);

/*
 * Send msg_json (a JSON value) on topic from modname and wait up to the
 * timeout for the broker's confirmation.  0, or -1 with err[FM_ERRLEN]
 * (refused, unroutable, connection lost, timeout, bad message).
 */
int logger_broker_publish(struct logger_broker *lb, const char *topic,
    const char *modname, const char *msg_json, char *err);

void logger_broker_close(struct logger_broker *lb);

#endif
