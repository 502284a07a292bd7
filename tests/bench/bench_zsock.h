/*
 * The ZeroMQ sockets of the bench programs: the high-water marks of
 * run_bus.sh's configs (high_water_mark 10000) and no linger.
 */
#ifndef FM_BENCH_ZSOCK_H
#define FM_BENCH_ZSOCK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <zmq.h>

#define HWM		10000

/* A socket of ctx, or exit(1) with who's name in the message. */
static inline void *
bench_zsock(void *ctx, int type, const char *who)
{
	void *s = zmq_socket(ctx, type);
	int hwm = HWM, zero = 0;

	if (s == NULL) {
		fprintf(stderr, "%s: zmq_socket: %s\n", who,
		    zmq_strerror(errno));
		exit(1);
	}
	zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	return s;
}

#endif
