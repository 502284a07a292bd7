/*
 * Subject, else the "x-routing-key" annotation (amqp_routing_key.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <proton/codec.h>

#include "amqp_routing_key.h"

#define ANNOTATION	"x-routing-key"

/* The string value of the "x-routing-key" key in an annotations map. */
static bool
annotation(pn_data_t *d, char *out, size_t len)
{
	bool found = false;
	size_t i, n;

	pn_data_rewind(d);
	if (!pn_data_next(d) || pn_data_type(d) != PN_MAP)
		return false;
	n = pn_data_get_map(d) / 2;
	pn_data_enter(d);
	for (i = 0; i < n && !found && pn_data_next(d); i++) {
		pn_bytes_t k = { 0, NULL }, v;
		bool key = false;

		/* annotation keys are symbols; a string is taken too */
		if (pn_data_type(d) == PN_SYMBOL) {
			k = pn_data_get_symbol(d);
			key = true;
		} else if (pn_data_type(d) == PN_STRING) {
			k = pn_data_get_string(d);
			key = true;
		}
		if (!pn_data_next(d))
			break;
		if (!key || k.size != strlen(ANNOTATION) ||
		    memcmp(k.start, ANNOTATION, k.size) != 0)
			continue;
		if (pn_data_type(d) == PN_STRING)
			v = pn_data_get_string(d);
		else if (pn_data_type(d) == PN_SYMBOL)
			v = pn_data_get_symbol(d);
		else
			continue;
		snprintf(out, len, "%.*s", (int)v.size, v.start);
		found = true;
	}
	pn_data_exit(d);
	return found;
}

const char *
amqp_routing_key(pn_message_t *m, char *out, size_t len)
{
	const char *s = pn_message_get_subject(m);

	if (len == 0)
		return out;
	out[0] = '\0';
	if (s && *s) {
		snprintf(out, len, "%s", s);
		return out;
	}
	if (!annotation(pn_message_annotations(m), out, len))
		out[0] = '\0';
	return out;
}
