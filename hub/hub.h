/*
 * fedmsg-hub: one main thread owns the bus (a transport), validates every
 * message before any consumer sees it, dispatches to the consumers'
 * queues, settles broker deliveries with the consumers' verdicts, and
 * sends what consumers publish.  Consumers run on their own threads
 * (consumer.h) and talk back only through two queues drained here: the
 * settlements and the outbox, with an eventfd to wake the loop.
 *
 *     bus --> transport --> validate --> consumer queues --> workers
 *                ^                                             |
 *                +---- settle / publish <-- eventfd <----------+
 */
#ifndef FM_HUB_H
#define FM_HUB_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

struct hub;

struct hub_opts {
	const char	*config_path;		/* NULL: $FEDMSG_CONFIG or default */
	const char	*const *only;		/* --with-consumers; NULL: all */
	bool		 check_only;		/* load, init, report, exit */
	volatile sig_atomic_t *stop;		/* SIGTERM/SIGINT */
	volatile sig_atomic_t *reload;		/* SIGHUP */
};

/* Run until *stop; returns the process exit status. */
int hub_run(const struct hub_opts *o);

/* Counters the metrics and status pages read (main thread writes). */
struct hub_counters {
	uint64_t	 received;
	uint64_t	 invalid[16];		/* by enum fm_verdict */
	uint64_t	 unrouted;		/* no consumer wanted it */
	uint64_t	 published;
	uint64_t	 publish_failed;
	uint64_t	 paused;		/* times credit was withheld */
};

/* Render the Prometheus text or the JSON status; malloc'ed. */
char *hub_metrics_text(struct hub *hub);
char *hub_status_json(struct hub *hub, bool deltas);

#endif
