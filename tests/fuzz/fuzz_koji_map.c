/*
 * libFuzzer target: the Koji <-> Fedora translations of a bridge with
 * "koji" (bridge/koji_map.c).  Koji's protonmsg messages come from
 * whoever can publish on the broker's Koji addresses; the reverse reads
 * the "msg" of envelopes from the bus.
 *
 * The input: the protonmsg "type" (or the Fedora event), a newline, then
 * the body, handed over in a buffer of its exact size (no NUL after it).
 * It goes through koji_to_fedora(), koji_from_fedora() and
 * koji_umb_from_envelope().
 *
 * Checked: a skip has a reason; a mapping has a topic (an address), a
 * body that is a JSON object and properties that are one; a Fedora body
 * mapped from Koji maps back to Koji without harm.  Any difference calls
 * abort().
 *
 *   make build/fuzz/fuzz_koji_map
 *   build/fuzz/fuzz_koji_map tests/fuzz/corpus/fuzz_koji_map
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "koji_map.h"

#include "fuzz_die.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* text is a JSON object (jansson, as the broker side reads it). */
static void
check_object(const char *what, const char *text)
{
	json_t *j;

	if (text == NULL)
		die(what, "NULL");
	if ((j = json_loads(text, 0, NULL)) == NULL || !json_is_object(j))
		die(what, "not a JSON object");
	json_decref(j);
}

static void
check_skip(const char *what, const char *why)
{
	if (why[0] == '\0')
		die(what, "skipped without a reason");
}

/* Fedora's event and body back to Koji: what a reverse bridge does. */
static void
from_fedora(const char *event, const char *msg, size_t len)
{
	char *address = NULL, *body = NULL, *props = NULL;
	char why[KOJI_WHYLEN] = "";
	json_t *j;

	if (koji_from_fedora(event, msg, len, &address, &body, &props,
	    why) == KOJI_MAPPED) {
		if (address == NULL || *address == '\0')
			die("koji_from_fedora", "no address");
		if (body == NULL || (j = json_loads(body, JSON_DECODE_ANY,
		    NULL)) == NULL)
			die("koji_from_fedora", "a body that is not JSON");
		json_decref(j);
		check_object("koji_from_fedora's properties", props);
	} else {
		check_skip("koji_from_fedora", why);
	}
	free(address);
	free(body);
	free(props);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char *type, *body, *topic = NULL, *out = NULL;
	char why[KOJI_WHYLEN] = "";
	struct koji_umb u;
	size_t tlen, blen;

	if (nl == NULL)
		return 0;
	tlen = (size_t)(nl - data);
	blen = size - tlen - 1;
	if ((type = malloc(tlen + 1)) == NULL)
		return 0;
	memcpy(type, data, tlen);
	type[tlen] = '\0';
	/* the body alone, in a buffer of its size: nothing after it */
	if ((body = malloc(blen ? blen : 1)) == NULL) {
		free(type);
		return 0;
	}
	memcpy(body, nl + 1, blen);

	if (koji_to_fedora(tlen ? type : NULL, body, blen, "primary", &topic,
	    &out, why) == KOJI_MAPPED) {
		if (topic == NULL || *topic == '\0')
			die("koji_to_fedora", "no topic");
		check_object("koji_to_fedora's body", out);
		from_fedora(topic, out, strlen(out));
	} else {
		check_skip("koji_to_fedora", why);
	}
	free(topic);
	free(out);

	from_fedora(type, body, blen);

	why[0] = '\0';
	if (koji_umb_from_envelope(type, body, blen, &u, why) ==
	    KOJI_MAPPED) {
		size_t i;

		if (u.address == NULL || u.body == NULL)
			die("koji_umb_from_envelope", "no address or body");
		for (i = 0; i < u.nprops; i++)
			if (u.props[i].name == NULL || u.props[i].value == NULL)
				die("koji_umb_from_envelope", "a NULL property");
		koji_umb_free(&u);
	} else {
		check_skip("koji_umb_from_envelope", why);
	}
	free(type);
	free(body);
	return 0;
}
