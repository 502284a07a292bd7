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

const char *
broker_address_topic(const char *dest)
{
	static const char *const prefixes[] = { "topic://", "queue://",
	    "/topic/", "/queue/", "/exchange/amq.topic/", NULL };
	const char *const *p;
	const char *vt;

	for (p = prefixes; *p; p++)
		if (strncmp(dest, *p, strlen(*p)) == 0) {
			dest += strlen(*p);
			break;
		}
	/* UMB consumer queues: Consumer.<sa>.<name>.VirtualTopic.<...> */
	if (strncmp(dest, "Consumer.", 9) == 0 &&
	    (vt = strstr(dest, ".VirtualTopic.")) != NULL)
		dest = vt + 1;
	return dest;
}
