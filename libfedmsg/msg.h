/* Internal access to a message's parsed tree (for the signer/validator). */
#ifndef FM_MSG_H
#define FM_MSG_H

#include <fedmsg/message.h>

#include "json.h"

/* The envelope object; owned by the message, valid while it is. */
const struct jv *msg_root(const struct fm_msg *m);

/*
 * Record the signer's CN (copied) once a validator accepted the message.
 * The first recording wins; safe from several threads.
 */
void msg_set_signer(const struct fm_msg *m, const char *cn);

#endif
