/*
 * How often the broker refused each send (AMQP 1.0 released or modified,
 * AMQP 0-9-1 basic.nack, a STOMP ERROR answering a SEND), so a link
 * resends a refused message a bounded number of times, pausing between,
 * then gives up on it instead of looping forever on one poison message.
 * The owner resends the oldest messages first, so the table keeps the
 * oldest tokens when it is full, unless one has not been refused for
 * RESEND_STALE_MS: its message went without a verdict (dropped from a
 * full spool while the broker refused everything), and a table full of
 * those would count no refusal again.  One per link; no allocation.
 */
#ifndef FM_RESEND_LIMIT_H
#define FM_RESEND_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define RESEND_TRIES	4	/* refused this often: given up */
#define RESEND_TRACKED	64	/* refused sends counted at once */
#define RESEND_HOLD_MS	500	/* first pause after a refusal, doubling */
#define RESEND_HOLD_MAX_MS 8000
/* not refused for this long: its place may go to another (8 x the
 * longest pause, so never one that is being resent) */
#define RESEND_STALE_MS	(8 * RESEND_HOLD_MAX_MS)

struct resend_limit {
	struct {
		uint64_t token;
		unsigned n;
		int64_t	 last_ms;	/* its latest refusal */
	}		 t[RESEND_TRACKED];
	int		 n;
	int64_t		 hold_until;	/* nothing is sent before this */
};

/*
 * One more refusal of token at now_ms: returns its count (1 the first
 * time; 0 when the table is full of older tokens refused within
 * RESEND_STALE_MS) and holds sending back
 * for a pause that doubles with the count (none at RESEND_TRIES: the
 * caller gives it up).
 */
unsigned resend_limit_count(struct resend_limit *r, uint64_t token,
    int64_t now_ms);

/* token was taken or given up: forget its count. */
void resend_limit_forget(struct resend_limit *r, uint64_t token);

/* Is sending held back at now_ms (a pause after a refusal)? */
bool resend_limit_holding(const struct resend_limit *r, int64_t now_ms);

#endif
