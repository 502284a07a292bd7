/*
 * libFuzzer target: a broker delivery that is not a fedmsg envelope, as
 * fedmsg-bridge, the hub on a broker and fedmsg-tail --broker wrap it
 * (broker_wrap()): body, message-id, typed headers and text properties
 * all come from whoever can publish on the broker.
 *
 * The input: a flags byte, then NUL-separated fields: the body (handed
 * over in a buffer of its exact size, no NUL after it, as the broker
 * libraries do), the message-id, the typed headers as JSON (AMQP 0-9-1),
 * a translated body (koji_map's), then property name/value pairs.
 *
 * Checked: a refusal has a reason; an envelope has the given topic and a
 * msg_id (the delivery's own when it is fedmsg-shaped and fedora-messaging
 * rules are off), and its canonical JSON is a fixed point (it parses
 * again and re-emits byte for byte).  Any difference calls abort().
 *
 *   make build/fuzz/fuzz_broker_wrap
 *   build/fuzz/fuzz_broker_wrap tests/fuzz/corpus/fuzz_broker_wrap
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/message.h>

#include "broker_wrap.h"

#include "fuzz_die.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define F_FEDORA_MESSAGING	0x01
#define F_MESSAGE_ID		0x02
#define F_HEADERS		0x04
#define F_TRANSLATED		0x08
#define MAX_PROPS		8
#define TOPIC			"org.fedoraproject.dev.fuzz.wrap"

/* The next NUL-terminated field of [*p, end), or NULL at the end. */
static char *
next_field(char **p, char *end)
{
	char *f = *p, *nul;

	if (f >= end)
		return NULL;
	nul = memchr(f, '\0', (size_t)(end - f));
	*p = nul ? nul + 1 : end;
	return f;
}

/* The canonical text of m parses again and re-emits the same bytes. */
static void
check_fixed_point(const struct fm_msg *m)
{
	struct fm_limits big = { SIZE_MAX, 0 };
	struct fm_msg *m2 = NULL;
	char err[FM_ERRLEN], *c1, *c2;
	size_t n1, n2;

	if ((c1 = fm_msg_canonical(m, false, &n1)) == NULL)
		die("fm_msg_canonical", "NULL");
	if (fm_msg_parse(c1, n1, &big, &m2, err) != 0)
		die("the envelope's canonical text does not parse", err);
	if ((c2 = fm_msg_canonical(m2, false, &n2)) == NULL)
		die("fm_msg_canonical of the re-parse", "NULL");
	if (n1 != n2 || memcmp(c1, c2, n1) != 0)
		die("canonical text", "not a fixed point");
	free(c1);
	free(c2);
	fm_msg_unref(m2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fm_limits lim;
	struct broker_prop props[MAX_PROPS];
	struct broker_wrap_opts o;
	struct broker_in in;
	struct fm_msg *m;
	char err[FM_ERRLEN], *text, *p, *end, *body, *f, *name, *value;
	char *exact = NULL;
	unsigned flags;
	const char *id;

	if (size == 0)
		return 0;
	flags = data[0];
	/* a NUL after the copy, so that the last field is terminated */
	if ((text = malloc(size)) == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	p = text;
	end = text + size;

	memset(&in, 0, sizeof(in));
	memset(&o, 0, sizeof(o));
	body = next_field(&p, end);
	if (body != NULL) {
		/* the body alone, in a buffer of its size: nothing after it */
		in.len = strlen(body);
		if ((exact = malloc(in.len ? in.len : 1)) == NULL)
			goto out;
		memcpy(exact, body, in.len);
		in.body = exact;
	}
	f = next_field(&p, end);
	if (flags & F_MESSAGE_ID)
		in.message_id = f;
	f = next_field(&p, end);
	if (flags & F_HEADERS)
		in.headers_json = f;
	f = next_field(&p, end);
	if (flags & F_TRANSLATED)
		o.body = f;
	in.props = props;
	while (in.nprops < MAX_PROPS && (name = next_field(&p, end)) &&
	    (value = next_field(&p, end))) {
		props[in.nprops].name = name;
		props[in.nprops].value = value;
		in.nprops++;
	}
	in.subject = TOPIC;
	(void)broker_parse_sent_at(in.message_id);

	o.topic = TOPIC;
	o.username = "fuzz";
	o.seq = 7;
	o.fedora_messaging = (flags & F_FEDORA_MESSAGING) != 0;
	o.lim = &lim;
	err[0] = '\0';
	if ((m = broker_wrap(&in, &o, err)) == NULL) {
		if (err[0] == '\0')
			die("a refusal", "no reason");
		goto out;
	}
	if (fm_msg_topic(m) == NULL || strcmp(fm_msg_topic(m), TOPIC) != 0)
		die("the envelope", "not on the given topic");
	if ((id = fm_msg_id(m)) == NULL || *id == '\0')
		die("the envelope", "no msg_id");
	if (!o.fedora_messaging && in.message_id &&
	    strlen(in.message_id) == FM_MSG_ID_LEN &&
	    in.message_id[4] == '-' && strcmp(id, in.message_id) != 0)
		die("the envelope", "a fedmsg-shaped message-id not kept");
	check_fixed_point(m);
	fm_msg_unref(m);
out:
	free(exact);
	free(text);
	return 0;
}
