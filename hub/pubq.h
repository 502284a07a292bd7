/*
 * What consumers publish on a broker, waiting for its address to be
 * ready: one FIFO per address, each bounded.  A broker sender is opened
 * on first use (AMQP 1.0: a link with no credit yet) and a connection
 * can be down; a publish waits here until the link can take it, then
 * goes out in the order it was made.  Used by hub/transport_broker.c on
 * the hub's main thread only (no locking).
 */
#ifndef FM_PUBQ_H
#define FM_PUBQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fedmsg/message.h>

struct pubq;

/*
 * A queue holding at most per_address messages per address, for at most
 * max_addresses addresses at once (an address counts while something
 * waits for it); NULL: ENOMEM.
 */
struct pubq *pubq_new(size_t per_address, size_t max_addresses);

/*
 * Append msg (a new reference is taken) to address's FIFO; seq is the
 * publish's place in the order (increasing, the caller's).  0; -1 when
 * that FIFO is full (nothing taken); -2 out of memory; -3 when address
 * is new and max_addresses already have messages waiting (nothing taken).
 */
int pubq_push(struct pubq *q, const char *address, struct fm_msg *msg,
    uint64_t seq);

/*
 * Put back a message that was sent but lost (the connection dropped
 * before the broker confirmed it): in seq order among what waits, over
 * both bounds (it was taken once).  0, or -2 out of memory.
 */
int pubq_requeue(struct pubq *q, const char *address, struct fm_msg *msg,
    uint64_t seq);

/* Messages waiting for address (0 for one never seen). */
size_t pubq_waiting(const struct pubq *q, const char *address);

/* Messages waiting for any address. */
size_t pubq_len(const struct pubq *q);

/*
 * What pubq_flush() asks of the sender for the oldest message of an
 * address: PUBQ_SENT (taken: it leaves the queue), PUBQ_LATER (not now:
 * the address's FIFO waits, the others go on) or PUBQ_NEVER (it can never
 * be sent: it leaves the queue; the sender logs and counts it).
 */
enum pubq_try { PUBQ_SENT, PUBQ_LATER, PUBQ_NEVER };
typedef enum pubq_try (*pubq_send_fn)(void *ctx, const char *address,
    struct fm_msg *msg, uint64_t seq);

/*
 * Offer every address's messages in order; returns how many left.  The
 * FIFOs emptied are freed (their addresses no longer count).
 */
size_t pubq_flush(struct pubq *q, pubq_send_fn send, void *ctx);

/* Drop everything (references released) and free; NULL is fine. */
void pubq_free(struct pubq *q);

#endif
