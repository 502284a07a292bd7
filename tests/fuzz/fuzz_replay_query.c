/*
 * libFuzzer target: a replay query as a publisher's replay endpoint
 * receives it (the REQ frame's bytes, from anyone who can connect),
 * answered by replay_store_query() over a store that has already evicted
 * its oldest messages and holds the awkward ones: equal "i", gaps, equal
 * timestamps, a message without "i", one without a timestamp, one
 * without a msg_id, and two sharing a msg_id.
 *
 * Checked: a query is answered or refused with a reason, never both; an
 * answer lists only the store's own messages, each once, in "i" order
 * (messages without "i" last, ties in arrival order), and no more than
 * the store holds.  Any difference calls abort().
 *
 *   make build/fuzz/fuzz_replay_query
 *   build/fuzz/fuzz_replay_query tests/fuzz/corpus/fuzz_replay_query
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/message.h>

#include "replay.h"

#include "fuzz_die.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ADDED	40	/* messages added to the store */
#define KEPT	32	/* the store's bound: the first 8 are evicted */

static struct replay_store *store;
static struct fm_msg *held[ADDED];	/* arrival order; ours to unref */

/* Message k (0-based arrival): its JSON, one awkward case every few. */
static void
message_text(int k, char *out, size_t cap)
{
	char seq[32] = "", ts[40] = "", id[64] = "";

	if (k != 17)				/* 17 has no "i" */
		snprintf(seq, sizeof(seq), "\"i\":%d,",
		    k == 21 ? 20 :		/* the same as 19 */
		    k < 30 ? k + 1 : k + 5);	/* then a gap */
	if (k == 25)				/* the same second as a float */
		snprintf(ts, sizeof(ts), "\"timestamp\":1.7e9,");
	else if (k % 7 == 0)			/* equal timestamps */
		snprintf(ts, sizeof(ts), "\"timestamp\":1700000000,");
	else if (k != 23)			/* 23 has no timestamp */
		snprintf(ts, sizeof(ts), "\"timestamp\":%d.25,",
		    1700000000 + k);
	if (k != 27)				/* 27 has no msg_id */
		snprintf(id, sizeof(id), "\"msg_id\":\"2026-%04d\",",
		    k == 29 ? 28 : k);		/* 28 and 29 share one */
	snprintf(out, cap, "{%s%s%s\"msg\":{\"k\":%d},"
	    "\"topic\":\"org.fedoraproject.dev.replay.fuzz\"}",
	    seq, ts, id, k);
}

static void
setup(void)
{
	char text[512], err[FM_ERRLEN];
	int k;

	if ((store = replay_store_new(KEPT, 1 << 20)) == NULL)
		die("replay_store_new", "NULL");
	for (k = 0; k < ADDED; k++) {
		message_text(k, text, sizeof(text));
		if (fm_msg_parse(text, strlen(text), NULL, &held[k], err) != 0)
			die("fm_msg_parse", err);
		replay_store_add(store, held[k]);
	}
}

/* The arrival index of m among the kept messages, or -1. */
static int
arrival_of(const struct fm_msg *m)
{
	int k;

	for (k = ADDED - KEPT; k < ADDED; k++)
		if (held[k] == m)
			return k;
	return -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fm_msg **out = NULL;
	char err[FM_ERRLEN];
	bool seen[ADDED] = { false };
	int prev = -1;
	ssize_t n, i;

	if (store == NULL)
		setup();
	err[0] = '\0';
	n = replay_store_query(store, (const char *)data, size, &out, err);
	if (n < 0) {
		if (out != NULL)
			die("a refused query", "returned messages");
		if (err[0] == '\0')
			die("a refused query", "no reason");
		return 0;
	}
	if (n == 0 || n > KEPT || out == NULL)
		die("an answer", "empty, NULL or more than the store holds");
	for (i = 0; i < n; i++) {
		int k = arrival_of(out[i]);
		int64_t s, ps;
		bool has, phas;

		if (k < 0)
			die("an answer", "a message the store does not hold");
		if (seen[k])
			die("an answer", "a message listed twice");
		seen[k] = true;
		if (prev >= 0) {
			has = fm_msg_seq(out[i], &s);
			phas = fm_msg_seq(held[prev], &ps);
			if ((phas == has && has && ps > s) || (!phas && has) ||
			    (phas == has && (!has || ps == s) && prev > k))
				die("an answer", "not in \"i\" then arrival "
				    "order");
		}
		prev = k;
	}
	for (i = 0; i < n; i++)
		fm_msg_unref(out[i]);
	free(out);
	return 0;
}
