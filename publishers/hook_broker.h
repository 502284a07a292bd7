/*
 * fedmsg-git-hook straight to a broker (config key git_hook.broker): the
 * spooled signed envelopes sent over the brokers/ layer (AMQP 1.0, AMQP
 * 0-9-1, STOMP) in one of fedmsg-bridge's formats, within the run's
 * deadline.  A record is acknowledged (dropped from the spool) only once
 * the broker accepted it.
 */
#ifndef FM_HOOK_BROKER_H
#define FM_HOOK_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <fedmsg/message.h>

struct hook_broker;

/*
 * The settings of a git_hook.broker object: "url" (a URL, a failover
 * list or an array of URLs), "address" (template, default
 * "/topic/{topic}"), "format" ("fedmsg": the signed envelope as the body,
 * "fedora-messaging", "umb": the payload as the body), "schema"
 * (fedora-messaging), and the credentials/TLS keys of a bridge.  obj is
 * borrowed and must outlive the result.  NULL with err[FM_ERRLEN].
 */
struct hook_broker *hb_new(json_t *obj, char *err);
void hb_free(struct hook_broker *b);

/* Where the records come from (the spool or memory). */
struct hb_source {
	void	*ctx;
	/* 1: the next record, its token and bytes (valid until the next
	   call); 0: none left */
	int	(*next)(void *ctx, uint64_t *token, const void **data,
		    size_t *len);
	/* the broker has it: never send it again */
	void	(*ack)(void *ctx, uint64_t token);
};

/*
 * Connect and send what src hands out, in order, until all are
 * accepted, the broker refuses one or goes down, or deadline_ms
 * (CLOCK_MONOTONIC ms) passes.  Returns how many were accepted; a
 * record that cannot be read or encoded is acknowledged (logged) and
 * counted in *dropped.
 */
uint64_t hb_deliver(struct hook_broker *b, const struct fm_limits *lim,
    const struct hb_source *src, int64_t deadline_ms, uint64_t *dropped);

#endif
