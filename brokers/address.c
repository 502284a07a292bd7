#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

char *
broker_address(const char *tmpl, const char *topic)
{
	const char *p = strstr(tmpl, "{topic}");
	char *out;

	if (p == NULL)
		return strdup(tmpl);
	if (asprintf(&out, "%.*s%s%s", (int)(p - tmpl), tmpl, topic,
	    p + strlen("{topic}")) < 0)
		return NULL;
	return out;
}
