#include "utf8.h"

size_t
utf8_invalid_at(const void *s, size_t n)
{
	const unsigned char *u = s;
	size_t i = 0, k;
	unsigned cp;

	while (i < n) {
		if ((k = utf8_decode(u + i, n - i, &cp, 0)) == 0)
			return i;
		i += k;
	}
	return n;
}
