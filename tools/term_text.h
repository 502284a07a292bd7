/*
 * Text from messages made safe for a terminal (fedmsg-tail): UTF-8 kept,
 * control characters (C0, DEL, C1, U+2028/9) escaped, so a message cannot
 * move the cursor or change colours.
 */
#ifndef FM_TERM_TEXT_H
#define FM_TERM_TEXT_H

#include <stddef.h>

#include "buf.h"

#define ESC_BACKSLASH	0x1	/* write \ as \\ (--query: reversible) */
#define ESC_QUOTE	0x2	/* write " as \" (quoted values) */

/* Append "\uXXXX". */
void text_add_u(struct buf *b, unsigned u);
/*
 * Append str[0..len) for people, cut with "..." beyond max bytes (0: no
 * limit); esc: ESC_* flags.
 */
void text_add(struct buf *b, const char *str, size_t len, size_t max, int esc);
/* Append a JSON string literal: UTF-8 raw, the rest as Python escapes. */
void text_json_string(struct buf *b, const char *str, size_t len);

#endif
