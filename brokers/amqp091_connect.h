/*
 * Getting an AMQP 0-9-1 connection ready (rabbitmq-c) off the poll loop.
 *
 * rabbitmq-c's TCP/TLS open, login, channel.open, confirm.select,
 * declarations, basic.qos and basic.consume are blocking calls.  Done on
 * the poll loop, a broker that accepts TCP and then says nothing (or a
 * slow one) would stall every other link of the process for up to
 * connect_timeout per call.  So one attempt runs on a thread of its own
 * and hands the ready connection back: the loop polls a091_connect_fd()
 * and takes the result with a091_connect_finish().
 *
 * The attempt owns copies of everything it reads, so the link may be
 * freed while it runs (a091_connect_abandon): the thread then finishes
 * alone, bounded by the timeouts, and frees what is left.
 */
#ifndef FM_AMQP091_CONNECT_H
#define FM_AMQP091_CONNECT_H

#include <stdbool.h>
#include <stdint.h>

#include <amqp.h>
#include <jansson.h>

#define A091_CHANNEL	1

/* What one attempt needs; a091_connect_start takes every pointer. */
struct a091_connect_req {
	char		*url_text;	/* for error texts */
	char		*host, *port;
	bool		 tls;
	char		*vhost;
	char		*user, *password; /* password NULL with a TLS client
					     certificate: SASL EXTERNAL */
	char		*ca, *cert, *key;
	unsigned	 timeout_ms;	/* each blocking step */
	unsigned	 heartbeat_s;
	uint16_t	 prefetch;	/* basic.qos */
	json_t		*topology;	/* a deep copy, or NULL */
	char	       **sources;	/* addresses to consume */
	int		 nsources;
};

/* Free a request's contents (after a failed start, or unused). */
void a091_connect_req_clear(struct a091_connect_req *r);

struct a091_connect;

/*
 * Start an attempt on a new thread; it owns *r (cleared here) from now
 * on.  NULL with err[FM_ERRLEN] when no thread can be started (then *r is
 * cleared too).
 */
struct a091_connect *a091_connect_start(struct a091_connect_req *r,
    char *err);

/* A descriptor that becomes readable when the attempt has ended. */
int a091_connect_fd(const struct a091_connect *c);

/* Whether the attempt has ended (the result can be taken). */
bool a091_connect_done(const struct a091_connect *c);

/*
 * The result of an ended attempt, and c freed.  A ready connection
 * (channel A091_CHANNEL open in confirm mode, declared, consuming), with
 * queues[i] the queue consumed for sources[i] (malloc'ed, the caller
 * frees each and the array); or NULL with the reason in err[FM_ERRLEN].
 */
amqp_connection_state_t a091_connect_finish(struct a091_connect *c,
    char ***queues, char *err);

/* Give up an attempt still running: the thread frees it when it ends. */
void a091_connect_abandon(struct a091_connect *c);

/*
 * The blocking steps, also used on a connection already up (a new
 * subscription): the topology's declarations (fedora-messaging's TOML
 * shape), and consuming one source (*queue: the queue, malloc'ed).
 * 0, or -1 with err[FM_ERRLEN].
 */
int a091_declare(amqp_connection_state_t conn, json_t *topology, char *err);
int a091_consume(amqp_connection_state_t conn, const char *address,
    char **queue, char *err);

/* The server's reason for a failed synchronous call, or the library's. */
void a091_reply_text(amqp_rpc_reply_t r, const char *what, char *out,
    size_t len);

#endif
