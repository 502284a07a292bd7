/*
 * Coalescing on broker -> ZeroMQ bridges: how long the bridges' loop
 * waits after a turn, so that the next turn forwards several messages
 * with one wake-up of ZeroMQ's I/O thread instead of one each.
 */
#ifndef FM_COALESCE_H
#define FM_COALESCE_H

#include <stdint.h>

/* A turn that took this many messages from one bridge's source: behind. */
#define COALESCE_FEW		16
/* The default wait of a STOMP -> ZeroMQ bridge; AMQP's is 0 (README). */
#define COALESCE_STOMP_US	500
/* The longest wait a bridge may ask for (the coalesce_us key). */
#define COALESCE_MAX_US		10000

/*
 * The wait before the next turn, in microseconds, for n bridges of which
 * bridge i took taken[i] messages this turn and asks for wait_us[i]
 * (0: never waits): the least wait_us of those that took 1 to
 * COALESCE_FEW - 1; 0 when none did, or when any bridge took more (it is
 * behind and must not be slowed).
 */
unsigned coalesce_wait(const uint64_t *taken, const unsigned *wait_us,
    int n);

#endif
