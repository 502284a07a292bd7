/*
 * The routing key of a received AMQP 1.0 message.
 */
#ifndef FM_AMQP_ROUTING_KEY_H
#define FM_AMQP_ROUTING_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include <proton/codec.h>
#include <proton/message.h>

/*
 * The message's subject; when it has none, its "x-routing-key" message
 * annotation (RabbitMQ 4 gives a message published over AMQP 0-9-1 its
 * routing key there and may leave the subject empty); else empty.  Whole,
 * in m's own memory (valid until m changes), not NUL-terminated, in *key.
 * False when the key holds a NUL byte: as a C string it would be cut
 * there, into another topic.
 */
bool amqp_routing_key(pn_message_t *m, pn_bytes_t *key);

#endif
