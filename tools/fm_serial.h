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
 * {"body": ..., "headers": {...}, "id": ..., "priority": N, "queue": ...,
 * "topic": ...} for in, topic given (the routing key, subject or
 * destination).  headers: the typed AMQP 0-9-1 headers, else the text
 * properties; priority: the "priority" header fedora-messaging mirrors
 * the AMQP priority in, else 0 (Message.priority's default); queue: the
 * name of a "/queue/NAME" source, else null.  A lone surrogate, which
 * has no UTF-8 form, is written as its JSON escape.  malloc'ed, without a
 * newline; NULL when the body is not JSON (err[FM_ERRLEN] says why) or
 * out of memory.
 */
char *fm_serial_dumps(const struct broker_in *in, const char *topic,
    char *err);

#endif
