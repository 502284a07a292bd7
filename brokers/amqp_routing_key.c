/*
 * Subject, else the "x-routing-key" annotation (amqp_routing_key.h).
 */
#include <stdbool.h>
#include <string.h>

#include <proton/codec.h>

#include "amqp_routing_key.h"

#define ANNOTATION	"x-routing-key"

/* The string value of the "x-routing-key" key in an annotations map. */
static bool
annotation(pn_data_t *d, pn_bytes_t *out)
{
	bool found = false;
	size_t i, n;

	pn_data_rewind(d);
	if (!pn_data_next(d) || pn_data_type(d) != PN_MAP)
		return false;
	n = pn_data_get_map(d) / 2;
	pn_data_enter(d);
	for (i = 0; i < n && !found && pn_data_next(d); i++) {
		pn_bytes_t k = { 0, NULL };
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
			*out = pn_data_get_string(d);
		else if (pn_data_type(d) == PN_SYMBOL)
			*out = pn_data_get_symbol(d);
		else
			continue;
		found = true;
	}
	pn_data_exit(d);
	return found;
}

bool
amqp_routing_key(pn_message_t *m, pn_bytes_t *key)
{
	/* proton hands the subject over as a C string: no NUL inside */
	const char *s = pn_message_get_subject(m);

	if (s && *s) {
		*key = pn_bytes(strlen(s), s);
		return true;
	}
	if (!annotation(pn_message_annotations(m), key) || key->start == NULL)
		*key = pn_bytes(0, "");
	return key->size == 0 || memchr(key->start, 0, key->size) == NULL;
}
