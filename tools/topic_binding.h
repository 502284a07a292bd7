/*
 * fedmsg-tail --broker on AMQP 0-9-1: the routing-key patterns that make
 * the broker filter by --topic, so a watcher of one topic does not pull
 * the whole bus.  A topic exchange matches whole words, so a prefix is
 * taken at a word: "a.b" binds "a.b.#" (a.b and everything below it,
 * not a.bc); "a.b." binds "a.b.#" too; "" binds "#".
 */
#ifndef FM_TOPIC_BINDING_H
#define FM_TOPIC_BINDING_H

#include <stddef.h>

/*
 * The binding pattern of each prefix not already covered by another
 * (a.b covers a.b.c; a repeated prefix counts once), so no message
 * matches two bindings: a NULL-terminated array of malloc'ed strings in
 * prefixes' order, freed with topic_bindings_free(); NULL when out of
 * memory.  n == 0 gives { "#" }.
 */
char **topic_bindings(const char *const *prefixes, size_t n);

void topic_bindings_free(char **patterns);

#endif
