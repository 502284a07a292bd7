/*
 * fedmsg-logger --broker (logger_broker.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/crypto.h>
#include <fedmsg/message.h>

#include "broker_format.h"
#include "clock.h"
#include "logger_broker.h"
#include "log.h"

struct logger_broker {
	struct broker_cli	*c;
	const struct fm_config	*cfg;
	struct broker		*b;
	struct fm_signer	*signer;
	int			 timeout_ms;
	char			 origin[300];	/* BROKER_ORIGIN_PROP's value */
	int64_t			 seq;
	uint64_t		 token;		/* of the message in flight */
	int			 verdict;	/* -1 waiting; enum broker_outcome */
	char			 why[FM_ERRLEN];
	char			 down[FM_ERRLEN];	/* last on_down reason */
};

static void
lb_on_up(void *ctx)
{
	(void)ctx;
	log_info("connected to the broker");
}

static void
lb_on_down(void *ctx, const char *why)
{
	struct logger_broker *lb = ctx;

	snprintf(lb->down, sizeof(lb->down), "%s", why);
	log_info("broker: %s", why);
}

static void
lb_on_sent(void *ctx, uint64_t token, enum broker_outcome o, const char *why)
{
	struct logger_broker *lb = ctx;

	if (token != lb->token)
		return;
	lb->verdict = (int)o;
	snprintf(lb->why, sizeof(lb->why), "%s", why ? why : "");
}

static void
lb_on_message(void *ctx, const struct broker_in *in,
    struct broker_delivery *d)
{
	struct logger_broker *lb = ctx;

	(void)in;
	lb->b->ops->settle(lb->b, d, SETTLE_RELEASE);	/* not ours */
}

/* Poll until done(lb) or the deadline; false on timeout or poll error. */
static bool
wait_for(struct logger_broker *lb, bool (*done)(struct logger_broker *),
    int64_t deadline)
{
	while (!done(lb)) {
		int64_t left = deadline - clock_ms();

		if (left <= 0)
			return false;
		if (broker_cli_poll(lb->b, left > 200 ? 200 : (int)left) < 0 &&
		    errno != EINTR)
			return false;
	}
	return true;
}

static bool
is_up(struct logger_broker *lb)
{
	return lb->b->ops->is_up(lb->b);
}

static bool
has_verdict(struct logger_broker *lb)
{
	return lb->verdict >= 0;
}

struct logger_broker *
logger_broker_open(struct broker_cli *c, const struct fm_config *cfg,
    const char *cert_prefix, int timeout_ms, char *err)
{
	struct broker_callbacks cb = { NULL, lb_on_up, lb_on_down, lb_on_sent,
	    lb_on_message };
	struct logger_broker *lb;
	char key[512];

	if (c->source) {
		snprintf(err, FM_ERRLEN, "--source is for fedmsg-tail; "
		    "fedmsg-logger sends to --address");
		return NULL;
	}
	if ((lb = calloc(1, sizeof(*lb))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	lb->c = c;
	lb->cfg = cfg;
	lb->timeout_ms = timeout_ms;
	snprintf(lb->origin, sizeof(lb->origin), "%s/fedmsg-logger",
	    fm_short_hostname());
	if (cfg->sign_messages) {
		snprintf(key, sizeof(key), "%s.%s", cert_prefix,
		    fm_short_hostname());
		if ((lb->signer = fm_config_signer(cfg, key, err)) == NULL)
			goto fail;
	}
	cb.ctx = lb;
	if ((lb->b = broker_cli_open(c, &cb, err)) == NULL)
		goto fail;
	if (!wait_for(lb, is_up, clock_ms() + timeout_ms)) {
		snprintf(err, FM_ERRLEN, "no connection to %s within %d ms%s%s",
		    c->urls[0], timeout_ms, lb->down[0] ? ": " : "", lb->down);
		goto fail;
	}
	return lb;
fail:
	logger_broker_close(lb);
	return NULL;
}

int
logger_broker_publish(struct logger_broker *lb, const char *topic,
    const char *modname, const char *msg_json, char *err)
{
	static const char *const outcomes[] = { "accepted", "refused",
	    "lost with the connection", "unroutable (no queue is bound)",
	    "rejected for good" };
	struct fm_msg_fields f;
	struct fm_msg *m = NULL, *s;
	struct broker_form form;
	struct broker_form_opts fo;
	struct broker_out out;
	const char *env;
	char *address = NULL;
	int64_t deadline = clock_ms() + lb->timeout_ms;
	double ts;
	size_t len;
	int rc = -1;

	memset(&form, 0, sizeof(form));
	memset(&f, 0, sizeof(f));
	f.topic = fm_topic_build(lb->cfg->topic_prefix, lb->cfg->environment,
	    modname, topic);
	f.msg_json = msg_json;
	f.i = ++lb->seq;
	if (f.topic == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return -1;
	}
	if (fm_msg_build(&f, &lb->cfg->limits, &m, err) < 0)
		goto done;
	if (lb->signer) {
		if (fm_signer_sign(lb->signer, m, &s, err) < 0)
			goto done;
		fm_msg_unref(m);
		m = s;
	}
	env = fm_msg_body(m, &len);
	address = broker_address(lb->c->address ? lb->c->address :
	    BROKER_CLI_ADDRESS_DEFAULT, f.topic);
	if (address == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		goto done;
	}
	memset(&out, 0, sizeof(out));
	out.address = address;
	out.message_id = fm_msg_id(m);
	out.subject = f.topic;
	out.creation_ms = fm_msg_timestamp(m, &ts) ? (int64_t)(ts * 1000) : 0;
	fo = (struct broker_form_opts){ (enum broker_format)lb->c->format,
	    lb->b->ops->proto, lb->origin, NULL };
	if (broker_form_make(&form, &fo, m, env, len, &out, err) < 0)
		goto done;
	/* the link may have dropped since: wait for it and for credit */
	while (!lb->b->ops->can_send(lb->b, address)) {
		if (clock_ms() >= deadline) {
			snprintf(err, FM_ERRLEN, "the broker took nothing "
			    "within %d ms%s%s", lb->timeout_ms,
			    lb->down[0] ? ": " : "", lb->down);
			goto done;
		}
		if (broker_cli_poll(lb->b, 100) < 0 && errno != EINTR)
			goto poll_failed;
	}
	lb->token++;
	lb->verdict = -1;
	if ((rc = lb->b->ops->send(lb->b, &out, lb->token)) < 0) {
		snprintf(err, FM_ERRLEN, "%s cannot be sent to %s",
		    fm_msg_id(m), address);
		rc = -1;
		goto done;
	}
	rc = -1;
	if (!wait_for(lb, has_verdict, deadline)) {
		snprintf(err, FM_ERRLEN, "no confirmation from the broker "
		    "within %d ms", lb->timeout_ms);
		goto done;
	}
	if (lb->verdict != BROKER_ACCEPTED) {
		snprintf(err, FM_ERRLEN, "%s was %s%s%s", fm_msg_id(m),
		    outcomes[lb->verdict], lb->why[0] ? ": " : "", lb->why);
		goto done;
	}
	log_info("%s sent to %s", fm_msg_id(m), address);
	rc = 0;
	goto done;
poll_failed:
	snprintf(err, FM_ERRLEN, "poll: %s", strerror(errno));
done:
	broker_form_free(&form);
	free(address);
	free((char *)f.topic);
	fm_msg_unref(m);
	return rc;
}

void
logger_broker_close(struct logger_broker *lb)
{
	if (lb == NULL)
		return;
	if (lb->b)
		lb->b->ops->free(lb->b);
	fm_signer_free(lb->signer);
	free(lb);
}
