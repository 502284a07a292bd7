/* Internal access to a message's parsed tree (for the signer/validator). */
#ifndef FM_MSG_H
#define FM_MSG_H

#include <fedmsg/message.h>

#include "buf.h"
#include "json.h"

/* The envelope object; owned by the message, valid while it is. */
const struct jv *msg_root(const struct fm_msg *m);

/*
 * Append m's canonical text (without signature and certificate when
 * unsigned_) to b, as fm_msg_canonical() returns it; -1 on OOM.  For
 * callers that reuse one buffer instead of a malloc per message.
 */
int msg_canonical_buf(const struct fm_msg *m, bool unsigned_, struct buf *b);

/*
 * Record the signer's CN once a validator accepted the message, taking
 * the malloc'ed cn (freed if a CN is already recorded: the first
 * recording wins).  Safe from several threads.
 */
void msg_take_signer(const struct fm_msg *m, char *cn);

/*
 * fm_msg_parse() refuses a body that holds any key twice (at any depth,
 * keys compared decoded).  With MSG_KEEP_DUPLICATES such a body is parsed
 * (the last copy counts, as in Python) so that a tool can say what it is;
 * fm_validator_check() then judges it FM_INVALID_DUPLICATE_KEY.  Never
 * forward or deliver a message parsed that way.
 */
#define MSG_KEEP_DUPLICATES	0x1u
int msg_parse(const void *body, size_t len, const struct fm_limits *lim,
    unsigned flags, struct fm_msg **out, char *err);

/* Does the message hold a duplicate key?  If so, why[FM_ERRLEN] says which. */
bool msg_duplicate(const struct fm_msg *m, char *why);

#endif
