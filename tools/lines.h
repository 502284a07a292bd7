/* Reading one JSON document per line, with a bound on the line length. */
#ifndef FM_LINES_H
#define FM_LINES_H

#include <stdbool.h>
#include <stdio.h>

#include "buf.h"

/*
 * Read the next line (without its '\n') into out, replacing its contents.
 * A line longer than max is consumed but not kept: *too_long is set and
 * out holds only its first max bytes.  NUL bytes are kept.  Returns 1 for
 * a line, 0 at end of input, -1 on a read error (errno set).
 */
int read_line(FILE *f, size_t max, struct buf *out, bool *too_long);

#endif
