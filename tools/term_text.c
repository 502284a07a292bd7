/* Terminal-safe text (term_text.h). */

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "term_text.h"
#include "utf8.h"

static const char hexdig[] = "0123456789abcdef";

void
text_add_u(struct buf *b, unsigned u)
{
	char e[6] = { '\\', 'u', hexdig[(u >> 12) & 15], hexdig[(u >> 8) & 15],
	    hexdig[(u >> 4) & 15], hexdig[u & 15] };

	buf_add(b, e, sizeof(e));
}

/*
 * Append text for people: UTF-8 kept, controls escaped (\n \t \r, \xHH for
 * other C0 and DEL, \uHHHH for C1 and the line and paragraph separators
 * U+2028/9), lone surrogates and stray bytes shown
 * as U+FFFD.  At most max input bytes (0: all), cut at a character
 * boundary and followed by "..." when cut.
 */
void
text_add(struct buf *b, const char *str, size_t len, size_t max, int esc)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, k;

	while (i < len) {
		unsigned c = s[i];

		k = utf8_decode(s + i, len - i, &c, UTF8_SURROGATES);
		if (max && i + (k ? k : 1) > max) {
			buf_add(b, "...", 3);
			return;
		}
		if (k == 0) {
			buf_add(b, "\xef\xbf\xbd", 3);
			i++;
			continue;
		}
		if (k == 1) {
			if (c == '\\' && (esc & ESC_BACKSLASH))
				buf_add(b, "\\\\", 2);
			else if (c == '"' && (esc & ESC_QUOTE))
				buf_add(b, "\\\"", 2);
			else if (c >= 0x20 && c < 0x7f)
				buf_addc(b, (char)c);
			else if (c == '\n')
				buf_add(b, "\\n", 2);
			else if (c == '\t')
				buf_add(b, "\\t", 2);
			else if (c == '\r')
				buf_add(b, "\\r", 2);
			else
				buf_printf(b, "\\x%02x", c);
		} else {
			if ((c >= 0x80 && c < 0xa0) || c == 0x2028 ||
			    c == 0x2029)
				text_add_u(b, c);
			else if (c >= 0xd800 && c < 0xe000)
				buf_add(b, "\xef\xbf\xbd", 3);
			else
				buf_add(b, s + i, k);
		}
		i += k;
	}
}

/* Append a JSON string literal; UTF-8 raw, the rest as Python escapes. */
void
text_json_string(struct buf *b, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, k;

	buf_addc(b, '"');
	while (i < len) {
		unsigned c = s[i];

		k = utf8_decode(s + i, len - i, &c, UTF8_SURROGATES);
		if (k == 0) {
			text_add_u(b, 0xfffd);
			i++;
			continue;
		}
		if (k == 1) {
			switch (c) {
			case '"': buf_add(b, "\\\"", 2); break;
			case '\\': buf_add(b, "\\\\", 2); break;
			case '\b': buf_add(b, "\\b", 2); break;
			case '\f': buf_add(b, "\\f", 2); break;
			case '\n': buf_add(b, "\\n", 2); break;
			case '\r': buf_add(b, "\\r", 2); break;
			case '\t': buf_add(b, "\\t", 2); break;
			default:
				if (c < 0x20 || c == 0x7f)
					text_add_u(b, c);
				else
					buf_addc(b, (char)c);
			}
		} else {
			if ((c >= 0x80 && c < 0xa0) ||
			    (c >= 0xd800 && c < 0xe000) ||
			    c == 0x2028 || c == 0x2029)
				text_add_u(b, c);
			else
				buf_add(b, s + i, k);
		}
		i += k;
	}
	buf_addc(b, '"');
}
