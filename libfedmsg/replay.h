/*
 * Replay of recent messages and gap detection, done so that it works
 * (fedmsg's does not: see "nothing is added" below).
 *
 * A publisher with replay_endpoints[name] keeps its recent messages in a
 * bounded store and answers fedmsg's REQ/REP replay queries on that URL
 * from a thread of its own.  Messages are stored and served with their
 * exact signed bytes; nothing is added to them (fedmsg's seq_id broke every
 * signature).  The sequence number is the envelope's own "i", which the
 * signature covers; the query keys seq_id, seq_ids and seq_id_range are
 * answered against "i".
 *
 * A subscriber keeps, per endpoints name listed in replay_endpoints, the
 * last "i" seen.  When a message arrives with a jump, it asks the replay
 * endpoint for the missing range (exclusive of what it has) and hands the
 * replayed messages over, in order, before the live one.  A lower "i"
 * than expected means the publisher restarted: tracking starts again.
 */
#ifndef FM_REPLAY_H
#define FM_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <fedmsg/message.h>

struct fm_config;

/* ---- store + server (publisher side) ----------------------------------- */

struct replay_store;

/* A store keeping at most max_msgs messages and max_bytes of bodies. */
struct replay_store *replay_store_new(size_t max_msgs, size_t max_bytes);
/* Add (takes a new reference); evicts the oldest beyond the bounds. */
void replay_store_add(struct replay_store *st, struct fm_msg *msg);
void replay_store_free(struct replay_store *st);

/*
 * Answer one query (the JSON text of fedmsg's query object) with the
 * matching messages in "i" order: returns the number of matches and a
 * malloc'ed array of new references in *out (caller unrefs each and frees
 * the array), or -1 with fedmsg's error text in err[FM_ERRLEN]
 * ("Unsupported field: ...", "There was no match for the given query").
 * Thread-safe with respect to replay_store_add().
 */
ssize_t replay_store_query(struct replay_store *st, const char *query,
    size_t len, struct fm_msg ***out, char *err);

struct replay_server;

/*
 * Serve st on url (bound REP socket) in a new thread until stopped.
 * Returns NULL with err[FM_ERRLEN] when the URL cannot be bound.
 */
struct replay_server *replay_server_start(const struct fm_config *cfg,
    const char *url, struct replay_store *st, char *err);
void replay_server_stop(struct replay_server *srv);

/* ---- gap detection (subscriber side) ------------------------------------ */

struct gap_tracker;

/* Tracks the names in the config's replay_endpoints (NULL if none). */
struct gap_tracker *gap_tracker_new(const struct fm_config *cfg);
void gap_tracker_free(struct gap_tracker *gt);

/*
 * Look at a message that arrived from endpoints[name].  When it reveals a
 * gap, fetch the missing messages from the replay endpoint (waiting at
 * most timeout_ms) and return them: a count and a malloc'ed array of new
 * references in *missing, oldest first, without msg itself.  Returns 0
 * when there is nothing to fill (or name is not tracked), -1 when the
 * replay endpoint did not answer (logged; the gap stays counted).
 */
ssize_t gap_check(struct gap_tracker *gt, const char *name,
    const struct fm_msg *msg, int timeout_ms, struct fm_msg ***missing);

/* Messages detected missing and messages recovered, since creation. */
void gap_stats(const struct gap_tracker *gt, uint64_t *missed,
    uint64_t *recovered);

#endif
