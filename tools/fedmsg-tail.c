/*
 * fedmsg-tail: watch the bus.  Subscribes like fedmsg.tail_messages()
 * (fm_subscriber_open, libfedmsg/bus.c) and prints each message in one of
 * fedmsg-tail's formats (terse.h), filtered by topic regular expressions.
 * With --broker it watches a broker instead (broker_cli.h): envelopes as
 * they are, other bodies wrapped as fedmsg-bridge wraps them
 * (broker_wrap.h).
 */
#include <errno.h>
#include <getopt.h>
#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fedmsg/bus.h>
#include <fedmsg/crypto.h>
#include <fedmsg/message.h>

#include "broker_cli.h"
#include "broker_wrap.h"
#include "clock.h"
#include "config.h"
#include "fm_serial.h"
#include "log.h"
#include "signals.h"
#include "terse.h"
#include "topic_binding.h"
#include "zep.h"

static const char usage[] =
"usage: fedmsg-tail [--config PATH] [--endpoint NAME]... [--topic PREFIX]...\n"
"                   [--validate | --no-validate] [--include REGEXP]\n"
"                   [--exclude REGEXP] [--count N] [--timeout SECONDS]\n"
"                   [--json | --pretty | --really-pretty | --terse |\n"
"                    --query PATH[,PATH...]] [-v]\n"
"                   [--broker URL [--source ADDRESS] [broker options]]\n"
"\n"
"Subscribes to the fedmsg bus the way fedmsg.tail_messages() does and\n"
"prints every message received, until SIGINT or SIGTERM.  With --broker,\n"
"receives from a broker instead (below).\n"
"\n"
"  --config PATH          fedmsg-c config (file or directory of *.json);\n"
"                         default $FEDMSG_CONFIG, else /etc/fedmsg.d\n"
"  --endpoint NAME        connect only to the URLs of endpoints[NAME]\n"
"                         (repeatable); default: every entry except\n"
"                         relay_inbound\n"
"  --topic PREFIX         receive only topics starting with PREFIX\n"
"                         (repeatable; a raw prefix, '*' is not special);\n"
"                         default: everything\n"
"  --validate             drop messages whose signature does not validate\n"
"  --no-validate          do not check signatures; default: the config's\n"
"                         validate_signatures\n"
"  --include REGEXP       print only messages whose topic matches this POSIX\n"
"                         extended regular expression; default: topics\n"
"                         without \"_heartbeat\" (fedmsg's default\n"
"                         '^((?!_heartbeat).)*$' is accepted as that)\n"
"  --exclude REGEXP       do not print messages whose topic matches it;\n"
"                         default \"_heartbeat\"\n"
"  --count N              exit after printing N messages\n"
"  --timeout SECONDS      exit when nothing was printed for SECONDS\n"
"                         (fractions allowed); default: never\n"
"  -v, --verbose          log more on stderr, and message counters at exit\n"
"                         (twice: debug)\n"
"  -h, --help             this text\n"
"\n"
"Output, one message per line unless said otherwise.  The default is\n"
"\"<ISO 8601 time> <topic> <canonical JSON>\" (the message's timestamp in\n"
"local time; the envelope without signature and certificate).\n"
"  --json                 each envelope as received, signatures included\n"
"                         (for fedmsg-verify and jq); line breaks between\n"
"                         JSON tokens become spaces\n"
"  --pretty               the envelope as JSON indented by two spaces,\n"
"                         without signature and certificate, timestamp as\n"
"                         ctime text (several lines)\n"
"  --really-pretty        the same with the numeric timestamp, in colour\n"
"                         when standard output is a terminal and NO_COLOR\n"
"                         is unset (several lines)\n"
"  --terse                \"<HH:MM:SS> <topic> <summary>\", with summaries\n"
"                         for dist-git, koji, robosignatory and logger\n"
"                         messages and key=value pairs for the others\n"
"  --query PATH[,PATH...] only the fields at these dotted paths (e.g.\n"
"                         msg.commit.repo; a number indexes a list),\n"
"                         tab-separated; null and missing are empty,\n"
"                         lists and objects canonical JSON, strings raw\n"
"                         with \\ tab, newline and other control characters\n"
"                         backslash-escaped\n"
"\n"
"fedmsg's --cowsay, --users and --packages are not supported.\n"
"\n"
"On a broker (--broker): a body that is a fedmsg envelope (a JSON object\n"
"with a topic) is shown as it is; any other JSON body is wrapped in an\n"
"unsigned envelope whose topic is the routing key, subject or destination,\n"
"as fedmsg-bridge wraps it (AMQP 0-9-1: fedora-messaging's rules).\n"
"--endpoint is not used; --topic prefixes and --include/--exclude filter\n"
"as usual; on AMQP 0-9-1 without --source the broker filters by --topic:\n"
"each prefix, taken at a word, is a binding of a private queue to\n"
"amq.topic (a.b binds \"a.b.#\": a.b and below, not a.bc).\n"
"--validate checks envelopes' signatures (wrapped messages are\n"
"unsigned: they fail); without it nothing is validated.  --json prints\n"
"fedora-messaging's serialised form of each message (message.dumps(): body,\n"
"headers, id, priority, queue, topic), which fedora-messaging's loads()\n"
"and `fedora-messaging publish` read.  Messages are acknowledged once\n"
"printed (or filtered out).\n"
"\n"
"Exit status: 0 when stopped by a signal, --count or --timeout; 1 on a\n"
"socket or output error; 2 on a usage or configuration error.\n";

/* fedmsg's default --include, which needs a lookahead POSIX lacks. */
static const char fedmsg_default_include[] = "^((?!_heartbeat).)*$";

/* Longest wait in one fm_subscriber_recv(), so a signal that arrives just
 * before the poll starts is seen soon anyway. */
#define SLICE_MS	500

enum format { FMT_DEFAULT, FMT_JSON, FMT_PRETTY, FMT_REALLY_PRETTY,
	FMT_TERSE, FMT_QUERY };

static const char *const format_flags[] = { "", "--json", "--pretty",
	"--really-pretty", "--terse", "--query" };

struct opts {
	const char	*config;
	const char	**names, **topics;	/* NULL-terminated or NULL */
	size_t		 nnames, ntopics;
	int		 validate;		/* -1 config, 0, 1 */
	const char	*include, *exclude;	/* NULL: "_heartbeat" rule */
	uint64_t	 count;			/* 0: no limit */
	int64_t		 timeout_ms;		/* -1: none */
	enum format	 format;
	char		*query;			/* copy of --query's argument */
	const char	**paths;
	size_t		 npaths;
	int		 verbose;
	struct broker_cli broker;		/* --broker and its options */
};

struct topic_filter {
	regex_t		 inc, exc;
	bool		 has_inc, has_exc;
};

static volatile sig_atomic_t stop;

static int
compile(regex_t *re, const char *pattern, const char *flag)
{
	char msg[256];
	int rc;

	if ((rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB)) != 0) {
		regerror(rc, re, msg, sizeof(msg));
		log_err("%s '%s': %s", flag, pattern, msg);
		return -1;
	}
	return 0;
}

/* fedmsg: printed when the topic matches include and not exclude. */
static bool
wanted(const struct topic_filter *f, const char *topic)
{
	bool heartbeat = strstr(topic, "_heartbeat") != NULL;

	if (f->has_exc ? regexec(&f->exc, topic, 0, NULL, 0) == 0 : heartbeat)
		return false;
	return f->has_inc ? regexec(&f->inc, topic, 0, NULL, 0) == 0 :
	    !heartbeat;
}

/*
 * Does topic start with one of the --topic prefixes?  The SUB sockets
 * filter already, but messages replayed to fill a gap bypass them.
 */
static bool
subscribed(const struct opts *o, const char *topic)
{
	size_t i;

	for (i = 0; i < o->ntopics; i++)
		if (strncmp(topic, o->topics[i], strlen(o->topics[i])) == 0)
			return true;
	return o->ntopics == 0;
}

/* The topic for the default line, controls replaced by '?'. */
static void
put_topic(const char *t, FILE *out)
{
	const unsigned char *s = (const unsigned char *)t;

	for (; *s; s++) {
		if (*s < 0x20 || *s == 0x7f)
			putc('?', out);
		else if (*s == 0xc2 && s[1] >= 0x80 && s[1] < 0xa0) {
			putc('?', out);	/* C1 control */
			s++;
		} else
			putc(*s, out);
	}
}

/* Print one message in the chosen format; -1 when out of memory. */
static int
print_msg(const struct opts *o, const struct fm_msg *m, bool colour)
{
	char when[TAIL_ISO_LEN], *text = NULL;
	const char *body, *topic;
	size_t len, i;

	switch (o->format) {
	case FMT_DEFAULT:
		if ((text = fm_msg_canonical(m, true, &len)) == NULL)
			return -1;
		tail_iso_time(m, when);
		topic = fm_msg_topic(m);
		fputs(when, stdout);
		putchar(' ');
		put_topic(topic ? topic : "-", stdout);
		putchar(' ');
		fwrite(text, 1, len, stdout);
		break;
	case FMT_JSON:
		/* JSON allows line breaks only between tokens: spaces do */
		body = fm_msg_body(m, &len);
		for (i = 0; i < len; i++)
			putchar(body[i] == '\n' || body[i] == '\r' ?
			    ' ' : body[i]);
		break;
	case FMT_PRETTY:
		text = tail_pretty(m, TAIL_CTIME);
		break;
	case FMT_REALLY_PRETTY:
		text = tail_pretty(m, colour ? TAIL_COLOR : 0);
		break;
	case FMT_TERSE:
		text = terse_line(m);
		break;
	case FMT_QUERY:
		text = tail_query(m, o->paths, o->npaths);
		break;
	}
	if (o->format != FMT_DEFAULT && o->format != FMT_JSON) {
		if (text == NULL)
			return -1;
		fputs(text, stdout);
	}
	putchar('\n');
	free(text);
	return 0;
}

static int
set_format(struct opts *o, enum format f)
{
	if (o->format != FMT_DEFAULT && o->format != f) {
		log_err("%s and %s cannot be combined", format_flags[o->format],
		    format_flags[f]);
		return -1;
	}
	o->format = f;
	return 0;
}

/* Split --query's a.b,c.d into o->paths. */
static int
set_query(struct opts *o, const char *arg)
{
	char *p;
	size_t n = 1;

	free(o->query);
	free(o->paths);
	o->paths = NULL;
	if ((o->query = strdup(arg)) == NULL)
		goto oom;
	for (p = o->query; *p; p++)
		n += *p == ',';
	if ((o->paths = calloc(n, sizeof(*o->paths))) == NULL)
		goto oom;
	o->npaths = 0;
	for (p = o->query;;) {
		char *comma = strchr(p, ',');

		if (comma)
			*comma = '\0';
		if (*p == '\0') {
			log_err("--query: empty field name in '%s'", arg);
			return -1;
		}
		o->paths[o->npaths++] = p;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return 0;
oom:
	log_err("out of memory");
	return -1;
}

/* Parse argv into o; returns 0, 1 after --help, or -1 on a usage error. */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "endpoint", required_argument, NULL, 'e' },
		{ "topic", required_argument, NULL, 't' },
		{ "validate", no_argument, NULL, 'V' },
		{ "no-validate", no_argument, NULL, 'N' },
		{ "include", required_argument, NULL, 'i' },
		{ "exclude", required_argument, NULL, 'x' },
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "really-pretty", no_argument, NULL, 'P' },
		{ "terse", no_argument, NULL, 's' },
		{ "query", required_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		BROKER_CLI_LONGOPTS,
		BROKER_CLI_SOURCE_OPT,
		{ NULL, 0, NULL, 0 }
	};
	char *end;
	double secs;
	long long n;
	int c;

	o->names = calloc((size_t)argc + 1, sizeof(*o->names));
	o->topics = calloc((size_t)argc + 1, sizeof(*o->topics));
	if (o->names == NULL || o->topics == NULL) {
		log_err("out of memory");
		return -1;
	}
	while ((c = getopt_long(argc, argv, "hv", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'e': o->names[o->nnames++] = optarg; break;
		case 't': o->topics[o->ntopics++] = optarg; break;
		case 'V': o->validate = 1; break;
		case 'N': o->validate = 0; break;
		case 'i':
			o->include = strcmp(optarg, fedmsg_default_include) ?
			    optarg : NULL;
			break;
		case 'x': o->exclude = optarg; break;
		case 'n':
			errno = 0;
			n = strtoll(optarg, &end, 10);
			if (end == optarg || *end != '\0' || n <= 0 ||
			    errno == ERANGE) {
				log_err("--count wants a positive integer");
				return -1;
			}
			o->count = (uint64_t)n;
			break;
		case 'T':
			secs = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(secs > 0) ||
			    secs > 1e9) {
				log_err("--timeout wants a positive number of "
				    "seconds");
				return -1;
			}
			o->timeout_ms = (int64_t)(secs * 1000 + 0.999);
			break;
		case 'j': if (set_format(o, FMT_JSON) < 0) return -1; break;
		case 'p': if (set_format(o, FMT_PRETTY) < 0) return -1; break;
		case 'P':
			if (set_format(o, FMT_REALLY_PRETTY) < 0)
				return -1;
			break;
		case 's': if (set_format(o, FMT_TERSE) < 0) return -1; break;
		case 'q':
			if (set_format(o, FMT_QUERY) < 0 ||
			    set_query(o, optarg) < 0)
				return -1;
			break;
		case 'v': o->verbose++; break;
		case 'h':
			fputs(usage, stdout);
			fputs(broker_cli_usage, stdout);
			fputs(broker_cli_source_usage, stdout);
			return 1;
		default:
			switch (broker_cli_option(&o->broker, c, optarg)) {
			case 1:
				continue;
			case 0:
				fputs(usage, stderr);
				break;
			}
			return -1;
		}
	}
	if (optind < argc) {
		log_err("unexpected argument '%s'", argv[optind]);
		fputs(usage, stderr);
		return -1;
	}
	return 0;
}

/* ---- --broker ------------------------------------------------------------------ */

struct btail {
	const struct opts		*o;
	const struct topic_filter	*filt;
	bool				 colour;
	struct broker			*b;
	struct fm_validator		*val;	/* --validate; else NULL */
	const struct fm_limits		*lim;
	int64_t				 seq, last;
	uint64_t			 received, shown, unreadable, invalid;
	int				 status;	/* -1: running */
};

static void
bt_on_up(void *ctx)
{
	(void)ctx;
	log_info("connected to the broker");
}

static void
bt_on_down(void *ctx, const char *why)
{
	(void)ctx;
	log_warn("broker: %s", why);
}

static void
bt_on_sent(void *ctx, uint64_t token, enum broker_outcome o, const char *why)
{
	(void)ctx, (void)token, (void)o, (void)why;
}

/* The envelope a delivery is: its body if that is one, else wrapped. */
static struct fm_msg *
bt_envelope(struct btail *t, const struct broker_in *in, const char *topic,
    char *err)
{
	struct broker_wrap_opts wo;
	struct fm_msg *m = NULL;

	if (fm_msg_parse(in->body, in->len, t->lim, &m, err) == 0 &&
	    fm_msg_topic(m) != NULL)
		return m;
	fm_msg_unref(m);
	memset(&wo, 0, sizeof(wo));
	wo.topic = topic;
	wo.username = "fedmsg-tail";
	wo.seq = ++t->seq;
	/* fedora-messaging's rules where its headers and id are there */
	wo.fedora_messaging = in->headers_json != NULL && in->message_id &&
	    *in->message_id;
	wo.lim = t->lim;
	return broker_wrap(in, &wo, err);
}

static void
bt_on_message(void *ctx, const struct broker_in *in, struct broker_delivery *d)
{
	struct btail *t = ctx;
	const char *topic = in->subject && *in->subject ? in->subject :
	    in->destination && *in->destination ? in->destination :
	    in->source ? in->source : "";
	char err[FM_ERRLEN], *line = NULL;
	struct fm_msg *m = NULL;
	int rc = 0;

	if (t->status >= 0) {
		/* done (--count, an output error): for the next watcher */
		t->b->ops->settle(t->b, d, SETTLE_RELEASE);
		return;
	}
	t->received++;
	topic = broker_address_topic(topic);
	if ((m = bt_envelope(t, in, topic, err)) == NULL) {
		t->unreadable++;
		log_warn("skipped a message on %s: %s", topic, err);
		goto done;
	}
	if (fm_msg_topic(m))
		topic = fm_msg_topic(m);
	if (!subscribed(t->o, topic) || !wanted(t->filt, topic)) {
		log_debug("skipped %s", topic);
		goto done;
	}
	if (t->val && fm_validator_check(t->val, m, err) != FM_VALID) {
		t->invalid++;
		log_warn("dropped invalid message %s: %s",
		    fm_msg_id(m) ? fm_msg_id(m) : "-", err);
		goto done;
	}
	if (t->o->format == FMT_JSON) {
		if ((line = fm_serial_dumps(in, topic, err)) == NULL) {
			t->unreadable++;
			log_warn("skipped a message on %s: %s", topic, err);
			goto done;
		}
		puts(line);
	} else
		rc = print_msg(t->o, m, t->colour);
	if (rc < 0 || fflush(stdout) == EOF || ferror(stdout)) {
		log_err(rc < 0 ? "out of memory" : "standard output: %s",
		    strerror(errno));
		t->status = 1;
		goto done;
	}
	t->last = clock_ms();
	if (++t->shown == t->o->count)
		t->status = 0;
done:
	free(line);
	fm_msg_unref(m);
	/* printed or not wanted: either way this watcher is done with it */
	t->b->ops->settle(t->b, d, SETTLE_ACCEPT);
}

/*
 * Receive from source; on AMQP 0-9-1 without --source, --topic prefixes
 * become the private queues' bindings, so the broker does the filtering
 * (one queue for each binding: no message matches two).  0 or -1 (logged).
 */
static int
subscribe_sources(struct btail *t, const char *source)
{
	char **keys, addr[1024];
	int rc = 0;
	size_t i;

	if (t->o->ntopics == 0 ||
	    !broker_cli_source_is_default_091(&t->o->broker)) {
		if (t->b->ops->subscribe(t->b, source) == 0)
			return 0;
		log_err("cannot receive from %s", source);
		return -1;
	}
	if ((keys = topic_bindings(t->o->topics, t->o->ntopics)) == NULL) {
		log_err("out of memory");
		return -1;
	}
	for (i = 0; keys[i] && rc == 0; i++) {
		if ((size_t)snprintf(addr, sizeof(addr), "/exchange/amq.topic/%s",
		    keys[i]) >= sizeof(addr)) {
			log_err("--topic %s: too long for a routing key",
			    keys[i]);
			rc = -1;
		} else if (t->b->ops->subscribe(t->b, addr) < 0) {
			log_err("cannot receive from %s", addr);
			rc = -1;
		} else {
			log_debug("receiving from %s", addr);
		}
	}
	topic_bindings_free(keys);
	return rc;
}

/* fedmsg-tail --broker: the exit status. */
static int
tail_broker(struct opts *o, const struct topic_filter *filt, bool colour)
{
	struct broker_callbacks cb = { NULL, bt_on_up, bt_on_down, bt_on_sent,
	    bt_on_message };
	struct fm_config *cfg = NULL;
	struct btail t;
	const char *source = broker_cli_source(&o->broker);
	char err[FM_ERRLEN];
	int64_t left;

	memset(&t, 0, sizeof(t));
	t.o = o;
	t.filt = filt;
	t.colour = colour;
	t.status = 2;
	if (source == NULL) {
		log_err("--source is needed for %s (e.g. /topic/# on RabbitMQ, "
		    "/topic/> on ActiveMQ)", o->broker.urls[0]);
		return 2;
	}
	if (fm_config_load(o->config, &cfg, err) < 0) {
		log_err("%s", err);
		return 2;
	}
	t.lim = &cfg->limits;
	if (o->validate == 1 && (t.val = fm_config_validator(cfg, err)) ==
	    NULL) {
		log_err("%s", err);
		goto out;
	}
	cb.ctx = &t;
	if ((t.b = broker_cli_open(&o->broker, &cb, err)) == NULL) {
		log_err("%s", err);
		goto out;
	}
	if (subscribe_sources(&t, source) < 0)
		goto out;
	catch_signals(&stop, NULL, false);
	t.status = -1;
	t.last = clock_ms();
	while (!stop && t.status < 0) {
		int wait = SLICE_MS;

		if (o->timeout_ms >= 0) {
			if ((left = t.last + o->timeout_ms - clock_ms()) <= 0)
				break;
			if (left < wait)
				wait = (int)left;
		}
		if (broker_cli_poll(t.b, wait) < 0 && errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			t.status = 1;
		}
	}
	if (t.status < 0)
		t.status = 0;
	if (o->verbose)
		log_info("%llu received, %llu printed; dropped: %llu "
		    "unreadable, %llu invalid",
		    (unsigned long long)t.received,
		    (unsigned long long)t.shown,
		    (unsigned long long)t.unreadable,
		    (unsigned long long)t.invalid);
out:
	if (t.b)
		t.b->ops->free(t.b);
	fm_validator_free(t.val);
	fm_config_free(cfg);
	return t.status;
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct topic_filter filt;
	struct fm_bus_opts bo = FM_BUS_OPTS_INIT;
	struct fm_subscriber *sub = NULL;
	struct fm_sub_stats st;
	struct fm_received r;
	char err[FM_ERRLEN];
	uint64_t shown = 0;
	int64_t last;
	bool colour;
	int rc, status = 2;

	log_init("fedmsg-tail", FM_LOG_WARN);
	memset(&o, 0, sizeof(o));
	memset(&filt, 0, sizeof(filt));
	o.validate = -1;
	o.timeout_ms = -1;
	if ((rc = parse_args(argc, argv, &o)) != 0) {
		status = rc > 0 ? 0 : 2;
		goto out;
	}
	if (o.verbose)
		log_init("fedmsg-tail", o.verbose > 1 ? FM_LOG_DEBUG : FM_LOG_INFO);
	if (o.include && compile(&filt.inc, o.include, "--include") < 0)
		goto out;
	filt.has_inc = o.include != NULL;
	if (o.exclude && compile(&filt.exc, o.exclude, "--exclude") < 0)
		goto out;
	filt.has_exc = o.exclude != NULL;
	colour = o.format == FMT_REALLY_PRETTY && isatty(STDOUT_FILENO) &&
	    (getenv("NO_COLOR") == NULL || *getenv("NO_COLOR") == '\0');

	if (broker_cli_wanted(&o.broker)) {
		status = tail_broker(&o, &filt, colour);
		goto out;
	}
	bo.config_path = o.config;
	err[0] = '\0';
	sub = fm_subscriber_open(&bo, o.nnames ? o.names : NULL,
	    o.ntopics ? o.topics : NULL, o.validate, err);
	if (sub == NULL) {
		log_err("%s", err);
		goto out;
	}
	catch_signals(&stop, NULL, false);	/* SIGPIPE ends a `| head` */
	status = 0;
	last = clock_ms();
	while (!stop) {
		int wait = SLICE_MS;
		const char *topic;

		if (o.timeout_ms >= 0) {
			int64_t left = last + o.timeout_ms - clock_ms();

			if (left <= 0)
				break;
			if (left < wait)
				wait = (int)left;
		}
		err[0] = '\0';
		rc = fm_subscriber_recv(sub, wait, &r, err);
		if (rc < 0) {
			if (errno == EINTR && err[0] == '\0')
				continue;	/* the loop looks at stop */
			log_err("%s", err[0] ? err : strerror(errno));
			status = 1;
			break;
		}
		if (rc == 0)
			continue;
		topic = fm_msg_topic(r.msg);
		if (!subscribed(&o, topic ? topic : "") ||
		    !wanted(&filt, topic ? topic : "")) {
			log_debug("%s: skipped %s", r.endpoint_url,
			    topic ? topic : "-");
			fm_msg_unref(r.msg);
			continue;
		}
		rc = print_msg(&o, r.msg, colour);
		fm_msg_unref(r.msg);
		if (rc < 0) {
			log_err("out of memory");
			status = 1;
			break;
		}
		if (fflush(stdout) == EOF || ferror(stdout)) {
			log_err("standard output: %s", strerror(errno));
			status = 1;
			break;
		}
		last = clock_ms();
		if (++shown == o.count)
			break;
	}
	if (o.verbose) {
		fm_subscriber_stats(sub, &st);
		log_info("%llu received, %llu printed; dropped: %llu bad "
		    "frames, %llu not JSON, %llu topic mismatches, %llu "
		    "invalid", (unsigned long long)st.received,
		    (unsigned long long)shown,
		    (unsigned long long)st.bad_frames,
		    (unsigned long long)st.bad_json,
		    (unsigned long long)st.topic_mismatch,
		    (unsigned long long)st.invalid);
	}
out:
	fm_subscriber_close(sub);
	if (sub)
		zep_shutdown();
	if (filt.has_inc)
		regfree(&filt.inc);
	if (filt.has_exc)
		regfree(&filt.exc);
	free(o.names);
	free(o.topics);
	free(o.query);
	free(o.paths);
	broker_cli_free(&o.broker);
	return status;
}
