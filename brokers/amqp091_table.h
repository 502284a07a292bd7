/*
 * AMQP 0-9-1 field tables (rabbitmq-c) <-> jansson objects.
 */
#ifndef FM_AMQP091_TABLE_H
#define FM_AMQP091_TABLE_H

#include <amqp.h>
#include <jansson.h>

/*
 * obj (an object, or NULL for an empty table) as a field table: strings
 * 'S', integers 'l', reals 'd', booleans 't', null 'V', arrays 'A',
 * objects 'F'.  Entry arrays come from pool; strings point into obj, so
 * obj must outlive *out.  Returns 0, or -1 (not an object, a key over 128
 * bytes, nesting over 16, out of memory).
 */
int amqp091_table_from_json(json_t *obj, amqp_pool_t *pool, amqp_table_t *out);

/* A field table as a new JSON object (NULL: out of memory or too deep). */
json_t *amqp091_table_to_json(const amqp_table_t *t);

#endif
