#include <stdio.h>
#include <string.h>

#include "names.h"

int
names_split(char *list, const char **out, size_t cap, char *err)
{
	char *tok, *save;
	size_t n = 0;

	for (tok = strtok_r(list, ",", &save); tok;
	    tok = strtok_r(NULL, ",", &save)) {
		if (n + 1 >= cap) {
			snprintf(err, FM_ERRLEN, "more than %zu names in the "
			    "list", cap - 1);
			return -1;
		}
		out[n++] = tok;
	}
	if (n == 0) {
		snprintf(err, FM_ERRLEN, "an empty list of names");
		return -1;
	}
	out[n] = NULL;
	return (int)n;
}
