/*
 * A broker message that is not a fedmsg envelope (a fedora-messaging
 * publisher's payload, Brew's protonmsg, dist-git on UMB) as an unsigned
 * fedmsg envelope, the way fedmsg-migration-tools' AmqpToZmq builds it.
 * Used by fedmsg-bridge (which then signs it) and by the hub on a
 * broker-authenticated source.
 */
#ifndef FM_BROKER_WRAP_H
#define FM_BROKER_WRAP_H

#include <stdbool.h>
#include <stdint.h>

#include <fedmsg/message.h>

#include "broker.h"

struct broker_wrap_opts {
	const char		*topic;		/* the envelope's topic */
	const char		*username;	/* its "username" */
	int64_t			 seq;		/* its "i" */
	/*
	 * fedora-messaging rules: the typed AMQP 0-9-1 headers kept,
	 * msg_id "<year>-<message_id>" unless it starts with a year (the
	 * year of sent-at: a redelivery keeps its id), timestamp from
	 * sent-at, and a message_id required.  Otherwise the text
	 * properties become headers and a fedmsg-shaped message_id
	 * ("YYYY-uuid") is kept, else one is made.
	 */
	bool			 fedora_messaging;
	const struct fm_limits	*lim;
	/*
	 * A payload of the caller's instead of in->body (NUL-terminated; a
	 * translation such as koji_map.h's), carried without the message's
	 * properties as headers: they described the original body.
	 */
	const char		*body;
};

/*
 * A new unsigned envelope with msg = in->body (JSON text; o->body when
 * set), or NULL with a
 * reason in err[FM_ERRLEN].
 */
struct fm_msg *broker_wrap(const struct broker_in *in,
    const struct broker_wrap_opts *o, char *err);

/* "2019-07-30T19:12:22+00:00" (fedora-messaging's sent-at) as seconds
   since the epoch; 0 when absent or not UTC ISO 8601. */
int64_t broker_parse_sent_at(const char *s);

#endif
