/* Refusal counts per send and the pause after each (resend_limit.h). */
#include "resend_limit.h"

unsigned
resend_limit_count(struct resend_limit *r, uint64_t token, int64_t now_ms)
{
	unsigned n = 0, hold;
	int i, newest = -1;

	for (i = 0; i < r->n && n == 0; i++)
		if (r->t[i].token == token)
			n = ++r->t[i].n;
	if (n == 0 && r->n < RESEND_TRACKED) {
		r->t[r->n].token = token;
		n = r->t[r->n++].n = 1;
	} else if (n == 0) {
		/* full: an older token takes the newest one's place */
		for (i = 0; i < r->n; i++)
			if (newest < 0 || r->t[i].token > r->t[newest].token)
				newest = i;
		if (token < r->t[newest].token) {
			r->t[newest].token = token;
			n = r->t[newest].n = 1;
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
