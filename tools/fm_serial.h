/*
 * fedora-messaging's serialised form of a broker message: the line its
 * message.dumps() writes and message.loads() reads back (the
 * SERIALIZED_MESSAGE_SCHEMA object, keys sorted, ", " and ": " as
 * separators, non-ASCII as is).  For fedmsg-tail --broker --json.
 */
#ifndef FM_FM_SERIAL_H
#define FM_FM_SERIAL_H

#include "broker.h"

/*
 * {"body": ..., "headers": {...}, "id": ..., "priority": null,
 * "queue": null, "topic": ...} for in, topic given (the routing key,
 * subject or destination); headers are the typed AMQP 0-9-1 headers, else
 * the text properties.  malloc'ed, without a newline; NULL when the body
 * is not JSON (err[FM_ERRLEN] says why) or out of memory.
 */
char *fm_serial_dumps(const struct broker_in *in, const char *topic,
    char *err);

#endif
