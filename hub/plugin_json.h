/*
 * The ABI 1.1 half of the host table (plugin.h): JSON Pointer accessors
 * over the hub's parsed trees and the payload builder.  consumer.c adds
 * the calls that need a consumer (config, publish_built).
 */
#ifndef FM_PLUGIN_JSON_H
#define FM_PLUGIN_JSON_H

#include <fedmsg/plugin.h>

#include "json.h"

/* A tree as the opaque document handle plugins see, and back. */
const struct fm_json *pj_doc(const struct jv *root);
const struct jv *pj_root(const struct fm_json *doc);

/* Fill the accessor and builder entries of a host table. */
void pj_fill_host(struct fm_host *h);

/* The builder's text (owned by b), or NULL with the reason in err. */
const char *pj_builder_text(struct fm_builder *b, size_t *len, char *err,
    size_t errlen);

#endif
