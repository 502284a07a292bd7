/* Refusal counts per send and the pause after each (resend_limit.h). */
#include "resend_limit.h"

/*
 * The place a new token takes in a full table, or -1: the one refused
 * longest ago if that is stale, else the newest if token is older.
 */
static int
place_for(const struct resend_limit *r, uint64_t token, int64_t now_ms)
{
	int i, newest = 0, stalest = 0;

	for (i = 1; i < r->n; i++) {
		if (r->t[i].token > r->t[newest].token)
			newest = i;
		if (r->t[i].last_ms < r->t[stalest].last_ms)
			stalest = i;
	}
	if (now_ms - r->t[stalest].last_ms >= RESEND_STALE_MS)
		return stalest;
	return token < r->t[newest].token ? newest : -1;
}

unsigned
resend_limit_count(struct resend_limit *r, uint64_t token, int64_t now_ms)
{
	unsigned n = 0, hold;
	int i;

	for (i = 0; i < r->n && n == 0; i++)
		if (r->t[i].token == token) {
			n = ++r->t[i].n;
			r->t[i].last_ms = now_ms;
		}
	if (n == 0) {
		i = r->n < RESEND_TRACKED ? r->n++ : place_for(r, token,
		    now_ms);
		if (i >= 0) {
			r->t[i].token = token;
			r->t[i].last_ms = now_ms;
			n = r->t[i].n = 1;
		}
	}
	if (n >= RESEND_TRIES)
		return n;	/* given up: nothing to wait for */
	hold = RESEND_HOLD_MS << (n > 1 ? (n - 1 < 5 ? n - 1 : 5) : 0);
	r->hold_until = now_ms + (hold < RESEND_HOLD_MAX_MS ? hold :
	    RESEND_HOLD_MAX_MS);
	return n;
}

void
resend_limit_forget(struct resend_limit *r, uint64_t token)
{
	int i;

	for (i = 0; i < r->n; i++)
		if (r->t[i].token == token) {
			r->t[i] = r->t[--r->n];
			return;
		}
}

bool
resend_limit_holding(const struct resend_limit *r, int64_t now_ms)
{
	return now_ms < r->hold_until;
}
