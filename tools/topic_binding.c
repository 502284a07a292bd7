/*
 * Routing-key patterns from fedmsg-tail's --topic prefixes (topic_binding.h).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "topic_binding.h"

/* p without its trailing dots: the words it names. */
static size_t
words_len(const char *p)
{
	size_t n = strlen(p);

	while (n > 0 && p[n - 1] == '.')
		n--;
	return n;
}

/* Do the words of a cover those of b (a is b, or b's words start with a's)? */
static bool
covers(const char *a, const char *b)
{
	size_t na = words_len(a), nb = words_len(b);

	if (na == 0)
		return true;
	return nb >= na && strncmp(a, b, na) == 0 &&
	    (nb == na || b[na] == '.');
}

char **
topic_bindings(const char *const *prefixes, size_t n)
{
	char **out = calloc(n + 2, sizeof(*out));
	size_t i, j, k = 0;

	if (out == NULL)
		return NULL;
	if (n == 0) {
		if ((out[0] = strdup("#")) == NULL) {
			free(out);
			return NULL;
		}
		return out;
	}
	for (i = 0; i < n; i++) {
		size_t len = words_len(prefixes[i]);
		bool covered = false;

		/* covered by another; of two equal ones the first is kept */
		for (j = 0; j < n && !covered; j++)
			covered = j != i && covers(prefixes[j], prefixes[i]) &&
			    (!covers(prefixes[i], prefixes[j]) || j < i);
		if (covered)
			continue;
		if ((out[k] = malloc(len + 3)) == NULL) {
			topic_bindings_free(out);
			return NULL;
		}
		memcpy(out[k], prefixes[i], len);
		strcpy(out[k] + len, len ? ".#" : "#");
		k++;
	}
	return out;
}

void
topic_bindings_free(char **patterns)
{
	size_t i;

	if (patterns == NULL)
		return;
	for (i = 0; patterns[i]; i++)
		free(patterns[i]);
	free(patterns);
}
