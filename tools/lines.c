#include <errno.h>
#include <string.h>

#include "lines.h"

int
read_line(FILE *f, size_t max, struct buf *out, bool *too_long)
{
	bool any = false;
	int c;

	out->len = 0;
	if (out->data)
		out->data[0] = '\0';
	*too_long = false;
	while ((c = getc_unlocked(f)) != EOF) {
		any = true;
		if (c == '\n')
			return 1;
		if (out->len < max)
			buf_addc(out, (char)c);
		else
			*too_long = true;	/* keep draining to the newline */
	}
	if (ferror(f))
		return -1;
	return any ? 1 : 0;
}
