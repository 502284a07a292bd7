/*
 * RFC 6901 JSON Pointers ("/msg/build/nvr", "/msg/tags/0") over a parsed
 * document (json.h), and typed reads of what they point at.  What the
 * plugin ABI's accessors, exec's placeholders and the hub's match filters
 * share.  Nothing here allocates: results point into the document.
 */
#ifndef FM_JPTR_H
#define FM_JPTR_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"

/* Results: 0 or one of these (the values of plugin.h's FM_JSON_E*). */
enum jptr_rc {
	JPTR_OK = 0,
	JPTR_ABSENT = -1,	/* nothing there (or an index out of range) */
	JPTR_TYPE = -2,		/* something of another type */
	JPTR_SYNTAX = -3,	/* not a JSON Pointer */
	JPTR_RANGE = -4,	/* a number that does not fit the type asked */
};

/*
 * Resolve ptr (NUL-terminated) from root.  "" is the root itself; every
 * other pointer starts with '/'; "~0" is '~' and "~1" is '/', any other
 * '~' is a syntax error.  An array index is "0" or a decimal without a
 * leading zero; "-" (past the end) and other tokens find nothing in an
 * array.  Returns JPTR_OK with *out set, JPTR_ABSENT or JPTR_SYNTAX.
 */
int jptr_get(const struct jv *root, const char *ptr, const struct jv **out);

/* Checks ptr's syntax only: JPTR_OK or JPTR_SYNTAX. */
int jptr_check(const char *ptr);

/* Typed reads of a value (not a pointer): JPTR_OK, JPTR_TYPE or JPTR_RANGE. */
/* A JSON integer that fits int64 (a float, even 3.0, is JPTR_TYPE). */
int jv_as_int64(const struct jv *v, int64_t *out);
/* Any number, rounded as Python's float() does; JPTR_RANGE past DBL_MAX. */
int jv_as_double(const struct jv *v, double *out);

/* JSON equality as Python's == on json.loads() results: 1 == 1.0, true
 * is not 1 (fedmsg payloads compare that way in consumers' filters). */
int jv_equal(const struct jv *a, const struct jv *b);

#endif
