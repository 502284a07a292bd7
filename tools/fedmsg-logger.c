/*
 * fedmsg-logger: send log lines or a JSON value to the bus through the
 * relay, for dist-git hooks, scripts and cron jobs, as fedmsg-logger
 * does.  Always an active publisher: it connects to relay_inbound
 * and, unlike fedmsg, gives up with a clear error when no relay answers
 * instead of hanging.  With --broker it sends to a broker instead
 * (logger_broker.h).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/bus.h>
#include <fedmsg/crypto.h>
#include <fedmsg/message.h>

#include "broker_cli.h"
#include "buf.h"
#include "config.h"
#include "json.h"
#include "lines.h"
#include "log.h"
#include "logger_broker.h"
#include "signals.h"
#include "utf8.h"
#include "zep.h"

static const char usage[] =
"usage: fedmsg-logger [--config PATH] [--message TEXT] [--json-input]\n"
"                     [--topic TOPIC] [--modname NAME]\n"
"                     [--cert-prefix PREFIX] [--timeout SECONDS]\n"
"                     [--broker URL [--address TEMPLATE] [--format NAME]\n"
"                      [broker options]]\n"
"\n"
"Sends messages to the fedmsg bus through the relay listening on the\n"
"config's relay_inbound (fedmsg-relay), for hooks, scripts and cron jobs.\n"
"The topic is <topic_prefix>.<environment>.<modname>.<topic>, by default\n"
"org.fedoraproject.<environment>.logger.log.\n"
"\n"
"Without --message, each line of standard input, stripped of surrounding\n"
"whitespace, is sent as the message {\"log\": LINE}, as soon as it is read;\n"
"empty lines are skipped.  Input must be UTF-8.\n"
"\n"
"  --config PATH          fedmsg-c config (file or directory of *.json);\n"
"                         default $FEDMSG_CONFIG, else /etc/fedmsg.d\n"
"  --message TEXT         send the one message {\"log\": TEXT} (TEXT as is)\n"
"                         and leave standard input alone; an empty TEXT\n"
"                         counts as not given, as in fedmsg\n"
"  --json-input           send JSON as the message instead: all of standard\n"
"                         input as one JSON value, or TEXT with --message\n"
"  --topic TOPIC          default \"log\"\n"
"  --modname NAME         default \"logger\"\n"
"  --cert-prefix PREFIX   when sign_messages is true, sign with\n"
"                         certnames[\"PREFIX.<short host name>\"] from\n"
"                         ssldir; default \"shell\"\n"
"  --timeout SECONDS      how long to wait for the relay to take the\n"
"                         connection (default: the config's timeout, 2);\n"
"                         with --broker, for the connection and for each\n"
"                         message's confirmation (default 10)\n"
"  -h, --help             this text\n"
"\n"
"A line or JSON input longer than max_message_bytes is an error.  The\n"
"first bad line, or failed send, stops the program; the lines before it\n"
"have been sent.  SIGINT or SIGTERM stop reading the same way.  Messages\n"
"are queued to the relay, not acknowledged; on exit up to zmq_linger ms\n"
"are spent delivering queued ones.\n"
"\n"
"Exit status: 0 everything was sent; 1 no relay answered within the\n"
"timeout, bad input (not UTF-8, too long, not JSON), a send failed or a\n"
"signal stopped it; 2 usage or config error.\n"
"\n"
"With --broker the messages go to a broker instead of the relay (no\n"
"relay_inbound needed), built and signed the same way, in --format, one\n"
"at a time: each is confirmed by the broker (AMQP accepted, publisher\n"
"confirm, STOMP RECEIPT) before the next is sent; one refused, unroutable\n"
"or unconfirmed within --timeout is an error (exit 1).\n";

struct opts {
	const char	*config, *message, *topic, *modname, *cert_prefix;
	bool		 json_input;
	int		 timeout_ms;	/* 0: the config's timeout */
	struct broker_cli broker;	/* --broker and its options */
};

/* Where messages go: the relay (p) or a broker (lb). */
struct sink {
	struct fm_publisher	*p;
	struct logger_broker	*lb;
};

/* Python 3's str.isspace(), which str.strip() uses. */
static bool
py_space(unsigned long c)
{
	return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) ||
	    c == 0x85 || c == 0xa0 || c == 0x1680 ||
	    (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
	    c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Strip s[0..*len) (valid UTF-8) like str.strip(); returns the new start. */
static const char *
py_strip(const char *s, size_t *len)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned cp;
	size_t start = 0, end = *len, n, k;

	while (start < end &&
	    (n = utf8_decode(u + start, end - start, &cp, 0)) && py_space(cp))
		start += n;
	while (end > start) {
		for (k = end - 1; k > start && (u[k] & 0xc0) == 0x80; k--)
			;
		if (utf8_decode(u + k, end - k, &cp, 0) == 0 || !py_space(cp))
			break;
		end = k;
	}
	*len = end - start;
	return s + start;
}

/* Append s[0..len) to b as a JSON string literal (s is valid UTF-8). */
static void
add_json_string(struct buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	buf_addc(b, '"');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '"': buf_adds(b, "\\\""); break;
		case '\\': buf_adds(b, "\\\\"); break;
		case '\n': buf_adds(b, "\\n"); break;
		case '\r': buf_adds(b, "\\r"); break;
		case '\t': buf_adds(b, "\\t"); break;
		default:
			if (c < 0x20) {
				buf_adds(b, "\\u00");
				buf_addc(b, hex[c >> 4]);
				buf_addc(b, hex[c & 0xf]);
			} else
				buf_addc(b, (char)c);
		}
	}
	buf_addc(b, '"');
}

/* Check that s[0..len) is UTF-8; returns 0, or -1 with err. */
static int
check_utf8(const char *s, size_t len, char *err)
{
	size_t bad = utf8_invalid_at(s, len);

	if (bad < len) {
		snprintf(err, FM_ERRLEN, "not valid UTF-8 at byte %zu",
		    bad);
		return -1;
	}
	return 0;
}

/* The message JSON for one log text (valid UTF-8): {"log": TEXT}. */
static int
log_payload(struct buf *out, const char *s, size_t len)
{
	out->len = 0;
	buf_adds(out, "{\"log\": ");
	add_json_string(out, s, len);
	buf_addc(out, '}');
	if (out->oom) {
		log_err("out of memory");
		return -1;
	}
	return 0;
}

/*
 * Check JSON input the way json.loads() would take it, so that a bad one
 * fails before connecting.  The text may not hold a NUL: fm_publish()
 * takes a C string (and JSON forbids a raw NUL anyway).
 */
static int
check_json(const char *text, size_t len, const struct fm_limits *lim,
    char *err)
{
	struct jv_parse_opts po = { lim->max_json_depth, false };
	struct jv_doc *doc;
	const char *nul = memchr(text, '\0', len);

	if (nul != NULL) {
		snprintf(err, FM_ERRLEN, "a NUL character at byte %zu",
		    (size_t)(nul - text));
		return -1;
	}
	if ((doc = jv_parse(text, len, &po, err)) == NULL)
		return -1;
	jv_doc_free(doc);
	return 0;
}

/* Read all of f (at most max bytes) into out.  Returns 0 or -1 logged. */
static int
read_all(FILE *f, size_t max, struct buf *out)
{
	char chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (n > max - out->len) {
			log_err("standard input: more than max_message_bytes "
			    "(%zu bytes) of JSON", max);
			return -1;
		}
		buf_add(out, chunk, n);
		if (out->oom) {
			log_err("standard input: out of memory");
			return -1;
		}
	}
	if (ferror(f)) {
		log_err("standard input: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Fail early, with exit status 2, on what is wrong in the config rather
 * than with the relay: no relay_inbound, or no usable signing cert.
 */
static int
check_config(const struct fm_config *cfg, const struct opts *o)
{
	struct fm_signer *s;
	char key[512], err[FM_ERRLEN];

	if (!broker_cli_wanted(&o->broker) &&
	    (cfg->relay_inbound == NULL || *cfg->relay_inbound == '\0')) {
		log_err("%s: relay_inbound is not set: fedmsg-logger sends "
		    "through a relay", cfg->source ? cfg->source : "config");
		return -1;
	}
	if (!cfg->sign_messages)
		return 0;
	snprintf(key, sizeof(key), "%s.%s", o->cert_prefix,
	    fm_short_hostname());
	if ((s = fm_config_signer(cfg, key, err)) == NULL) {
		log_err("%s", err);
		return -1;
	}
	fm_signer_free(s);
	return 0;
}

static int
send_one(struct sink *k, const struct opts *o, const char *json,
    const char *what)
{
	char err[FM_ERRLEN];

	if ((k->lb ? logger_broker_publish(k->lb, o->topic, o->modname, json,
	    err) : fm_publish(k->p, o->topic, o->modname, json, err)) < 0) {
		log_err("%s: %s", what, err);
		return -1;
	}
	return 0;
}

/* Send each non-empty stdin line; returns 0 or -1 (logged). */
static int
send_lines(struct sink *k, const struct opts *o,
    const struct fm_limits *lim, volatile sig_atomic_t *stop)
{
	struct buf line = BUF_INIT, payload = BUF_INIT;
	char err[FM_ERRLEN], what[64];
	size_t lineno = 0, sent = 0, len;
	const char *text;
	bool too_long;
	int r, rc = -1;

	for (;;) {
		if (*stop) {
			r = -1;
			errno = EINTR;
			break;
		}
		if ((r = read_line(stdin, lim->max_message_bytes, &line,
		    &too_long)) <= 0)
			break;
		lineno++;
		snprintf(what, sizeof(what), "standard input line %zu", lineno);
		if (too_long) {
			log_err("%s: longer than max_message_bytes (%zu bytes)",
			    what, lim->max_message_bytes);
			goto out;
		}
		text = line.data ? line.data : "";
		if (check_utf8(text, line.len, err) < 0) {
			log_err("%s: %s", what, err);
			goto out;
		}
		len = line.len;
		text = py_strip(text, &len);
		if (len == 0)
			continue;
		if (log_payload(&payload, text, len) < 0)
			goto out;
		if (send_one(k, o, payload.data, what) < 0)
			goto out;
		sent++;
	}
	if (r < 0) {
		if (errno == EINTR && *stop)
			log_err("stopped by a signal after standard input "
			    "line %zu (messages sent: %zu)", lineno, sent);
		else
			log_err("standard input: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	buf_free(&line);
	buf_free(&payload);
	return rc;
}

/* s > 0 and s * 1000 <= INT_MAX: milliseconds, rounded up. */
static int
seconds_to_ms(double s)
{
	int ms = (int)(s * 1000);

	return (double)ms < s * 1000 ? ms + 1 : ms;
}

static int
parse_timeout(const char *arg, int *ms)
{
	char *end;
	double s;

	errno = 0;
	s = strtod(arg, &end);
	if (end == arg || *end != '\0' || errno != 0 || !isfinite(s) ||
	    s <= 0 || s * 1000 > INT_MAX)
		return -1;
	*ms = seconds_to_ms(s);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "message", required_argument, NULL, 'm' },
		{ "json-input", no_argument, NULL, 'j' },
		{ "topic", required_argument, NULL, 't' },
		{ "modname", required_argument, NULL, 'M' },
		{ "cert-prefix", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		BROKER_CLI_LONGOPTS,
		BROKER_CLI_SEND_OPTS,
		{ NULL, 0, NULL, 0 }
	};
	static volatile sig_atomic_t stop;
	struct fm_bus_opts bo = FM_BUS_OPTS_INIT;
	struct fm_config *cfg = NULL;
	struct fm_publisher *p = NULL;
	struct sink k = { NULL, NULL };
	struct fm_limits lim;
	struct opts o;
	struct buf payload = BUF_INIT;
	char err[FM_ERRLEN];
	int c, status = 2;

	log_init("fedmsg-logger", FM_LOG_WARN);
	memset(&o, 0, sizeof(o));
	o.topic = "log";
	o.modname = "logger";
	o.cert_prefix = "shell";
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o.config = optarg; break;
		case 'm': o.message = optarg; break;
		case 'j': o.json_input = true; break;
		case 't': o.topic = optarg; break;
		case 'M': o.modname = optarg; break;
		case 'p': o.cert_prefix = optarg; break;
		case 'T':
			if (parse_timeout(optarg, &o.timeout_ms) < 0) {
				log_err("--timeout wants a number of seconds "
				    "above 0");
				goto bad_usage;
			}
			break;
		case 'h':
			fputs(usage, stdout);
			fputs(broker_cli_usage, stdout);
			fputs(broker_cli_send_usage, stdout);
			broker_cli_free(&o.broker);
			return 0;
		default:
			switch (broker_cli_option(&o.broker, c, optarg)) {
			case 1:
				continue;
			case 0:
				fputs(usage, stderr);
				break;
			}
			goto bad_usage;
		}
	}
	if (optind < argc) {
		log_err("unexpected argument '%s'", argv[optind]);
		fputs(usage, stderr);
		goto bad_usage;
	}
	if (*o.modname == '\0') {
		log_err("--modname must not be empty");
		goto bad_usage;
	}
	if (*o.cert_prefix == '\0') {
		log_err("--cert-prefix must not be empty");
		goto bad_usage;
	}
	if (o.message && *o.message == '\0')
		o.message = NULL;	/* fedmsg: `if logger_message:` */

	if (fm_config_load(o.config, &cfg, err) < 0) {
		log_err("%s", err);
		goto bad_usage;
	}
	lim = cfg->limits;
	if (lim.max_message_bytes == 0)
		lim.max_message_bytes = FM_DEFAULT_MAX_MESSAGE_BYTES;
	if (o.timeout_ms == 0 && broker_cli_wanted(&o.broker))
		o.timeout_ms = 10000;
	if (o.timeout_ms == 0)
		o.timeout_ms = cfg->timeout > 0 && cfg->timeout * 1000 <
		    INT_MAX ? seconds_to_ms(cfg->timeout) : 2000;
	if (check_config(cfg, &o) < 0)
		goto out;

	/* Check what can be checked before waiting for the relay. */
	status = 1;
	if (o.message && o.json_input) {
		if (check_json(o.message, strlen(o.message), &lim, err) < 0) {
			log_err("--message is not JSON: %s", err);
			goto out;
		}
		buf_adds(&payload, o.message);
	} else if (o.message) {
		if (check_utf8(o.message, strlen(o.message), err) < 0) {
			log_err("--message: %s", err);
			goto out;
		}
		if (log_payload(&payload, o.message, strlen(o.message)) < 0)
			goto out;
	} else if (o.json_input) {
		if (read_all(stdin, lim.max_message_bytes, &payload) < 0)
			goto out;
		if (check_json(payload.data ? payload.data : "", payload.len,
		    &lim, err) < 0) {
			log_err("standard input is not JSON: %s", err);
			goto out;
		}
	}
	if (payload.oom) {
		log_err("out of memory");
		goto out;
	}

	if (broker_cli_wanted(&o.broker)) {
		if ((k.lb = logger_broker_open(&o.broker, cfg, o.cert_prefix,
		    o.timeout_ms, err)) == NULL) {
			log_err("%s", err);
			goto out;
		}
		goto send;
	}
	bo.config = cfg;
	bo.name = "relay_inbound";
	bo.active = 1;
	bo.cert_prefix = o.cert_prefix;
	bo.connect_timeout_ms = o.timeout_ms;
	if ((p = fm_publisher_open(&bo, err)) == NULL) {
		log_err("%s", err);
		goto out;
	}
	k.p = p;
send:
	catch_stop_signals(&stop);
	if (o.message || o.json_input) {
		if (send_one(&k, &o, payload.data, o.message ? "--message" :
		    "standard input") < 0)
			goto out;
	} else if (send_lines(&k, &o, &lim, &stop) < 0)
		goto out;
	status = 0;
out:
	/* Closing the context is what makes the socket linger (zmq_ctx_term). */
	fm_publisher_close(p);
	logger_broker_close(k.lb);
	broker_cli_free(&o.broker);
	zep_shutdown();
	buf_free(&payload);
	fm_config_free(cfg);
	return status;
bad_usage:	/* before anything but the --broker options was made */
	broker_cli_free(&o.broker);
	return 2;
}
