/*
 * Bridges between fedmsg's ZeroMQ bus and brokers (AMQP 1.0, STOMP), one
 * per entry of the config's "bridges" object (README.md, "Bridges").
 *
 * ZeroMQ -> broker: the signed envelope travels unchanged as the body;
 * every accepted message is spooled on disk until the broker confirms it.
 * Broker -> ZeroMQ: signed envelopes are validated and forwarded
 * unchanged; plain JSON bodies (Brew, dist-git on UMB) are wrapped in a
 * fedmsg envelope, signed with the bridge's certificate.  A delivery is
 * accepted only once the message is on the ZeroMQ socket.
 *
 * With "koji", Koji's protonmsg messages become Fedora's buildsys.* and
 * buildsys.* goes to the broker in protonmsg's shape (koji_map.h).
 *
 * Loops are cut twice: what a bridge sends to a broker carries the
 * property fedmsg_c_bridge, which the other direction drops, and every
 * msg_id a bridge forwarded is remembered in a bounded cache.
 *
 * All bridges of a process run on one thread and one poll loop.
 */
#ifndef FM_BRIDGE_H
#define FM_BRIDGE_H

#include <signal.h>
#include <stdint.h>

struct fm_config;

/* Counters of one bridge. */
struct bridge_stats {
	uint64_t	 in;		/* taken from the source */
	uint64_t	 out;		/* confirmed by the destination */
	uint64_t	 invalid;	/* failed validation */
	uint64_t	 not_json;	/* body not a JSON object */
	uint64_t	 looped;	/* our own messages coming back */
	uint64_t	 wrapped;	/* plain bodies wrapped and signed */
	uint64_t	 retried;	/* refused or lost, sent again */
	uint64_t	 dropped;	/* spool full, or unsendable */
	uint64_t	 filtered;	/* topic not wanted */
	uint64_t	 skipped;	/* Koji events with no Fedora form */
};

/*
 * Run every bridge in cfg until *stop.  Returns 0, or 2 when the "bridges"
 * config is wrong (logged), or 1 on a runtime failure.
 */
int bridges_run(const struct fm_config *cfg, const char *const *only,
    volatile sig_atomic_t *stop);

#endif
