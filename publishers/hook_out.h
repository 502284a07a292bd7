/*
 * Where fedmsg-git-hook's signed messages go: first to a local spool (so a
 * relay or broker that is down loses nothing and never stalls a push),
 * then, in order, to relay_inbound or a broker.  A record is the signed
 * body, msg_id included, so a later run or `--flush` sends exactly the
 * same message.
 */
#ifndef FM_HOOK_OUT_H
#define FM_HOOK_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hook_broker.h"

struct hook_out;

/*
 * Open the spool DIR (NULL: no spool, messages go straight to the relay
 * and are lost when it is down), waiting until deadline (CLOCK_MONOTONIC
 * ms) while another run holds it.  Never NULL except on OOM; a spool
 * that cannot be opened is logged and left out.  cfg is borrowed.
 */
struct hook_out *ho_open(struct fm_config *cfg, const char *dir,
    uint64_t max_bytes, int64_t deadline_ms);

/*
 * Deliver to a broker (hook_broker.h, borrowed) instead of relay_inbound.
 */
void ho_set_broker(struct hook_out *h, struct hook_broker *b);

/* Queue one signed body (copied).  Returns 0, or -1 (logged). */
int ho_add(struct hook_out *h, const char *body, size_t len);

/*
 * Send everything pending, oldest first, to relay_inbound (or the
 * broker), spending no more
 * than until deadline_ms waiting for the relay.  Returns the number of
 * messages still pending (0: all sent).
 */
uint64_t ho_deliver(struct hook_out *h, int64_t deadline_ms);

/* Monotonic clock in ms. */
int64_t ho_now_ms(void);

void ho_close(struct hook_out *h);

#endif
