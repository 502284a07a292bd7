/*
 * Reading a message's parsed tree (json.h) for fedmsg-tail's renderings:
 * values at dotted paths, and appending them for people (term_text.h).
 */
#ifndef FM_MSG_TREE_H
#define FM_MSG_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <fedmsg/message.h>

#include "buf.h"
#include "json.h"

#define FIELD_MAX	200	/* input bytes of one text field in a summary */

/* v at a dotted path below root ("commit.repo"; digits index arrays). */
const struct jv *tree_lookup(const struct jv *v, const char *path, size_t len);
const struct jv *tree_get(const struct jv *v, const char *path);
/* A string at path, or NULL (also for the empty string). */
const struct jv *tree_sget(const struct jv *v, const char *path);
bool tree_str_is(const struct jv *v, const char *s);
/* An integer at path that fits a long long, into *out. */
bool tree_int_at(const struct jv *v, const char *path, long long *out);
/* Append a value for people: text escaped and cut, containers elided. */
void tree_add_value(struct buf *b, const struct jv *v, size_t max);
/* Append the value at path, or "?" when it is missing or null. */
void tree_add(struct buf *b, const struct jv *v, const char *path);
/* The first line of the string at path (without its line end), cut. */
bool tree_first_line(struct buf *b, const struct jv *v, const char *path);
/* Local time of the message's timestamp, false when it has none. */
bool msg_local_tm(const struct fm_msg *m, struct tm *tm);

#endif
