/*
 * The hub's HTTP endpoint on loopback (libmicrohttpd, its own thread):
 *   /metrics  Prometheus text format
 *   /status   JSON: consumers, backlogs, counters, last errors
 *   /live     {"status": "OK"} while the process answers
 */
#ifndef FM_METRICS_H
#define FM_METRICS_H

struct hub;
struct metrics;

/*
 * Listen on addr, "HOST:PORT" where HOST is a loopback IPv4 address (the
 * endpoint has no authentication, so it is never exposed further).
 * Returns NULL with err[FM_ERRLEN].
 */
struct metrics *metrics_start(struct hub *hub, const char *addr, char *err);
void metrics_stop(struct metrics *m);

#endif
