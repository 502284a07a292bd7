/* Internal access to a message's parsed tree (for the signer/validator). */
#ifndef FM_MSG_H
#define FM_MSG_H

#include <fedmsg/message.h>

#include "json.h"

/* The envelope object; owned by the message, valid while it is. */
const struct jv *msg_root(const struct fm_msg *m);

#endif
