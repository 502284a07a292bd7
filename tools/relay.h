/*
 * The relay loop shared by fedmsg-relay and fedmsg-signing-relay: bind an
 * XSUB on relay_inbound for active publishers, bind a PUB on
 * endpoints["relay_outbound"], and forward each message.
 *
 * fedmsg binds a SUB socket inbound; on libzmq 4.3 a bound SUB does not
 * always get its subscription to a connecting PUB, and the relay forwards
 * nothing.
 * An XSUB that sends the subscribe-all message itself always does.
 */
#ifndef FM_RELAY_H
#define FM_RELAY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <fedmsg/crypto.h>

struct fm_config;

struct relay_opts {
	bool			 validate;	/* drop invalid messages */
	struct fm_signer	*signer;	/* re-sign everything (borrowed) */
	unsigned		 threads;	/* validating/signing threads; 0 = 1 */
	unsigned		 stats_interval;/* seconds between stats logs; 0 off */
};

struct relay_stats {
	uint64_t	 forwarded;
	uint64_t	 bad_frames;	/* frame count or size */
	uint64_t	 bad_json;
	uint64_t	 topic_mismatch;
	uint64_t	 invalid;
	uint64_t	 sign_failed;
	uint64_t	 send_failed;
};

/*
 * Run until *stop becomes true (set it from a signal handler).  Returns 0,
 * or -1 when the sockets cannot be set up (logged).
 */
int relay_run(const struct fm_config *cfg, const struct relay_opts *o,
    volatile sig_atomic_t *stop, struct relay_stats *st);

/* main() of fedmsg-relay (signing false) and fedmsg-signing-relay. */
int relay_main(int argc, char **argv, const char *prog, bool signing);

#endif
