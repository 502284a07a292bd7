/* Comma-separated name lists of the command lines (--only, --with-consumers). */
#ifndef FM_NAMES_H
#define FM_NAMES_H

#include <stddef.h>

#include <fedmsg/message.h>	/* FM_ERRLEN */

/*
 * Splits list in place at its commas into out[0..n-1] (pointers into list,
 * which the caller keeps alive), out[n] = NULL; empty names ("a,,b", a
 * trailing comma) are left out.  Returns n, or -1 with a reason in
 * err[FM_ERRLEN] when there are more than cap - 1 names or none at all:
 * a list is never cut short silently.
 */
int names_split(char *list, const char **out, size_t cap, char *err);

#endif
