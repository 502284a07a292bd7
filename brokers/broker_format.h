/*
 * What travels on a broker for a fedmsg envelope, in each of the message
 * formats (README "Message formats"): the body, the properties and the
 * typed headers of a broker_out.  Shared by fedmsg-bridge (ZeroMQ ->
 * broker) and fedmsg-logger --broker.
 */
#ifndef FM_BROKER_FORMAT_H
#define FM_BROKER_FORMAT_H

#include <stddef.h>

#include <fedmsg/message.h>

#include "broker.h"

struct jw;

/* The property that marks what a fedmsg-c bridge sent (loop guard). */
#define BROKER_ORIGIN_PROP	"fedmsg_c_bridge"
/* Properties at most: topic, origin, msg_id and copied payload fields. */
#define BROKER_FORM_PROPS	40

enum broker_format {
	BROKER_FORMAT_FEDMSG,		/* the signed envelope as the body */
	BROKER_FORMAT_FEDORA_MESSAGING,	/* the payload, fedora-messaging's
					   headers (as fedmsg-migration-tools) */
	BROKER_FORMAT_UMB,		/* the payload, its scalars as
					   properties */
};

/* "fedmsg", "fedora-messaging" or "umb" as an enum broker_format; -1
   for any other name. */
int broker_format_from_name(const char *name);

struct broker_form_opts {
	enum broker_format	 format;
	const char		*proto;	 /* the link's broker_ops.proto:
					    "stomp" gets text headers */
	const char		*origin; /* BROKER_ORIGIN_PROP's value; NULL:
					    none */
	const char		*schema; /* fedora_messaging_schema; NULL:
					    "base.message" */
};

/* The parts a broker_out points into; broker_form_free() when sent. */
struct broker_form {
	struct broker_prop	 props[BROKER_FORM_PROPS];
	char			 vals[BROKER_FORM_PROPS][257];
	char			 keys[BROKER_FORM_PROPS][65];
	struct jw		*bw, *hw;	/* body and headers written */
};

/*
 * Set out's body, len, props, nprops and headers_json for envelope m,
 * whose exact text is env[0..len) (the "fedmsg" body), in o's format.
 * The caller sets the rest (address, message_id, subject, creation_ms)
 * and may set message_id first ("umb" copies it as a property).  0; -1
 * out of memory; -2 when m has no form in this format (err says why).
 * Call broker_form_free() whatever it returns.
 */
int broker_form_make(struct broker_form *f, const struct broker_form_opts *o,
    const struct fm_msg *m, const char *env, size_t len,
    struct broker_out *out, char *err);
void broker_form_free(struct broker_form *f);

#endif
