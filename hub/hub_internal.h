/*
 * The hub's insides, shared by hub.c (the loop and dispatch), hub_report.c
 * (status JSON, Prometheus text, moksha's report) and hub_config.c
 * (checking the hub's and the consumers' config).  hub.h is the interface.
 */
#ifndef FM_HUB_INTERNAL_H
#define FM_HUB_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "consumer.h"
#include "hub.h"
#include "transport.h"

#define MAX_CONSUMERS	64

struct pending {
	struct fm_msg	*msg;		/* outbox */
	struct dispatch	*dsp;		/* settlements */
	struct pending	*next;
};

struct hub {
	const struct hub_opts	*o;
	struct fm_config	*cfg;
	struct transport	*bus;
	struct fm_validator	*validator;
	struct fm_signer	*signer;
	struct consumer		*cons[MAX_CONSUMERS];
	int			 ncons;
	int			 wake;		/* eventfd */

	pthread_mutex_t		 mu;		/* guards the lists and seq */
	struct pending		*settle_head, *settle_tail;
	struct pending		*out_head, *out_tail;
	size_t			 nout;
	int64_t			 seq;		/* "i" of what the hub publishes */

	bool			 paused;
	enum settle		 unrouted;	/* what no consumer wants */
	/*
	 * Broker deliveries wanted only by halted consumers: held unsettled
	 * until the hub stops (then released), so that the broker does not
	 * redeliver them in a loop.  Bounded by the credit (prefetch).
	 */
	struct delivery		**parked;
	size_t			 nparked, parked_cap;
	struct hub_counters	 n;
	pthread_mutex_t		 n_mu;		/* counters vs. metrics thread */
	void			*monitor;	/* moksha.monitoring.socket PUB */
	struct metrics		*metrics;
	/* hub settings */
	unsigned		 heartbeat_ms, drain_ms;
	int64_t			 next_heartbeat, next_monitor, next_watchdog;
	uint64_t		 watchdog_us;
	/* last monitoring report, for moksha's since-last-report counters */
	uint64_t		 last_in[MAX_CONSUMERS], last_ok[MAX_CONSUMERS];
	uint64_t		 last_err[MAX_CONSUMERS];
};

/* ---- hub_report.c ---- */

/* Send moksha's status report (with since-last-report counters). */
void hub_monitor_report(struct hub *h);

/* ---- hub_config.c ---- */

/* fedmsg's (Python's) truth of a config value; NULL is false. */
bool hub_truthy(json_t *v);
/* obj[key] as a number >= 0, dflt when absent or null; else logs and
 * sets *bad. */
double hub_num(json_t *obj, const char *key, double dflt, bool *bad);
/* Warn about keys of the "hub" object the hub does not know. */
void hub_check_keys(json_t *hubcfg);
/* A consumer's settings from its consumers.<name> object; NULL with err. */
struct consumer_spec *hub_consumer_spec(const char *name, json_t *e,
    char *err);

#endif
