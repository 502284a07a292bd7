/*
 * fedmsg-check: wait for one status report from a hub's monitoring socket
 * (moksha.monitoring.socket) and check that the named consumers and
 * producers are there and initialised.  Works against fedmsg-c's
 * fedmsg-hub and Python moksha hubs alike: both publish, every 5 s, one
 * single-frame JSON document {"consumers": [...], "producers": [...]}
 * (hub/hub_report.c writes ours).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "zep.h"

static const char usage[] =
"usage: fedmsg-check [--config PATH] [--timeout SECONDS]\n"
"                    [-c|--consumer NAME]... [-p|--producer NAME]...\n"
"                    [--socket URL] [-h]\n"
"\n"
"Subscribes to the hub's monitoring socket (moksha.monitoring.socket),\n"
"waits for one status report and prints it as indented JSON.  Each NAME\n"
"given must be in the report and initialised.\n"
"\n"
"  --config PATH          config file or directory (default $FEDMSG_CONFIG,\n"
"                         else /etc/fedmsg.d)\n"
"  --timeout SECONDS      how long to wait for a report (default 10; the\n"
"                         hub sends one every 5 s)\n"
"  -c, --consumer NAME    a consumer that must be running (repeatable)\n"
"  -p, --producer NAME    a producer that must be running (repeatable)\n"
"  --socket URL           connect here instead of moksha.monitoring.socket\n"
"                         (then the config is optional)\n"
"  -h, --help             this text\n"
"\n"
"Exit status: 0 all is well (the report is on stdout), 1 no report in\n"
"time or a named consumer/producer is missing or not initialised (the\n"
"reasons are on stderr), 2 usage or configuration error.\n";

/* Bytes: a bound on a report, and how much of each text is shown. */
#define REPORT_MAX_BYTES	(64 * 1024 * 1024)
#define NAME_SHOWN		128	/* a consumer or producer name */
#define ERROR_SHOWN		400	/* last_error */
#define LIST_SHOWN		480	/* the list of running names */

struct opts {
	const char	 *config;
	const char	 *socket;
	int		  timeout;	/* seconds */
	const char	**consumers;	/* from argv */
	const char	**producers;
	size_t		  nconsumers, nproducers;
};

/*
 * Append text from the report, made safe for one line on a terminal:
 * control characters and backslashes become \xNN, and anything past max
 * bytes is cut (at a character boundary) and shown as "...".
 */
static void
add_printable(struct buf *b, const char *s, size_t len, size_t max)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i >= max && (c & 0xc0) != 0x80) {
			buf_adds(b, "...");
			return;
		}
		if (c < 0x20 || c == 0x7f || c == '\\')
			buf_printf(b, "\\x%02x", c);
		else
			buf_addc(b, (char)c);
	}
}

static const char *
printable(struct buf *b, const char *s, size_t len, size_t max)
{
	b->len = 0;
	add_printable(b, s, len, max);
	return b->data && !b->oom ? b->data : "?";
}

/* The "name" of a consumer or producer entry; NULL when it has none. */
static json_t *
entry_name(json_t *e)
{
	json_t *name = json_object_get(e, "name");

	return json_is_string(name) ? name : NULL;
}

/*
 * The entry of the list called name; the last one wins when several have
 * the name, as in fedmsg-check's dict.  Names may hold NUL bytes.
 */
static json_t *
find(json_t *list, const char *name)
{
	size_t i, len = strlen(name);
	json_t *e, *n, *found = NULL;

	json_array_foreach(list, i, e) {
		if ((n = entry_name(e)) != NULL &&
		    json_string_length(n) == len &&
		    memcmp(json_string_value(n), name, len) == 0)
			found = e;
	}
	return found;
}

/* "a, b, c" for the names in list, or "none". */
static void
running(struct buf *b, json_t *list)
{
	size_t i, shown = 0, more = 0;
	json_t *e, *n;

	b->len = 0;
	json_array_foreach(list, i, e) {
		if ((n = entry_name(e)) == NULL)
			continue;
		if (b->len >= LIST_SHOWN) {
			more++;
			continue;
		}
		if (shown++)
			buf_adds(b, ", ");
		add_printable(b, json_string_value(n), json_string_length(n),
		    NAME_SHOWN);
	}
	if (more)
		buf_printf(b, " and %zu more", more);
	if (shown == 0)
		buf_adds(b, "none");
}

/*
 * Check each named consumer (or producer) in the report's list: log why
 * for each that is missing or not initialised.  Returns how many failed.
 */
static size_t
check_names(json_t *list, const char *kind, const char **names, size_t n)
{
	struct buf what = BUF_INIT, list_text = BUF_INIT, why = BUF_INIT;
	size_t i, bad = 0;

	for (i = 0; i < n; i++) {
		json_t *e = find(list, names[i]), *last;
		const char *name;

		name = printable(&what, names[i], strlen(names[i]), NAME_SHOWN);
		if (e == NULL) {
			running(&list_text, list);
			log_err("%s %s not found; running: %s", kind, name,
			    list_text.oom ? "?" : list_text.data);
			bad++;
			continue;
		}
		/* fedmsg: anything but true is "not initialized" */
		if (json_is_true(json_object_get(e, "initialized")))
			continue;
		last = json_object_get(e, "last_error");
		if (json_is_string(last) && json_string_length(last) > 0)
			log_err("%s %s is not initialized; last error: %s",
			    kind, name, printable(&why, json_string_value(last),
			    json_string_length(last), ERROR_SHOWN));
		else
			log_err("%s %s is not initialized", kind, name);
		bad++;
	}
	buf_free(&what);
	buf_free(&list_text);
	buf_free(&why);
	return bad;
}

/*
 * Is this a status report?  An object with the lists "consumers" and
 * "producers", which is what moksha and fedmsg-c's hub always send.
 */
static bool
is_report(json_t *doc, char *why, size_t len)
{
	static const char *const lists[] = { "consumers", "producers" };
	size_t i;

	if (!json_is_object(doc)) {
		snprintf(why, len, "not a JSON object");
		return false;
	}
	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		if (!json_is_array(json_object_get(doc, lists[i]))) {
			snprintf(why, len, "no \"%s\" list", lists[i]);
			return false;
		}
	return true;
}

/*
 * Receive one single-frame message within the timeout.  Returns 0 with
 * the report in *out, 1 (a check failure: nothing came, or not a report)
 * or 2 (the URL or the socket is unusable), the reason logged.
 */
static int
receive_report(const struct fm_config *cfg, const char *url, int timeout,
    json_t **out)
{
	zmq_pollitem_t item;
	int64_t deadline;
	zmq_msg_t part;
	json_error_t jerr;
	json_t *doc = NULL;
	char why[160];
	void *sock;
	int64_t maxsize = REPORT_MAX_BYTES;
	long long left;
	int rc = 1, frames;

	*out = NULL;
	if ((sock = zmq_socket(zep_context(cfg), ZMQ_SUB)) == NULL) {
		log_err("cannot make a SUB socket: %s", zmq_strerror(errno));
		return 2;
	}
	zmq_setsockopt(sock, ZMQ_LINGER, &(int){ 0 }, sizeof(int));
	zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxsize, sizeof(maxsize));
	zep_apply_options(sock, cfg, true);
	if (zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "", 0) < 0 ||
	    zmq_connect(sock, url) < 0) {
		log_err("monitoring socket %s: %s", url, zmq_strerror(errno));
		rc = 2;
		goto out;
	}
	deadline = clock_ms() + (int64_t)timeout * 1000;
	for (;;) {
		if ((left = deadline - clock_ms()) <= 0) {
			log_err("no status report received from %s within %d "
			    "second%s (is the hub running, with "
			    "moksha.monitoring.socket set to this URL?)", url,
			    timeout, timeout == 1 ? "" : "s");
			goto out;
		}
		item = (zmq_pollitem_t){ sock, 0, ZMQ_POLLIN, 0 };
		if (zep_poll_for(&item, 1, (int)left) < 0) {
			log_err("poll: %s", zmq_strerror(errno));
			goto out;
		}
		if (!(item.revents & ZMQ_POLLIN))
			continue;
		zmq_msg_init(&part);
		if (zmq_msg_recv(&part, sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&part);
			if (errno == EAGAIN || errno == EINTR)
				continue;
			log_err("receive: %s", zmq_strerror(errno));
			goto out;
		}
		break;
	}
	frames = 1;
	if (zmq_msg_more(&part)) {
		zmq_msg_t extra;
		int more = 1;

		/* the rest of the message is here already: drop it */
		while (more) {
			zmq_msg_init(&extra);
			if (zmq_msg_recv(&extra, sock, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&extra);
				break;
			}
			frames++;
			more = zmq_msg_more(&extra);
			zmq_msg_close(&extra);
		}
		log_err("%s sent a %d-frame message, not a single-frame status "
		    "report (is it a fedmsg endpoint rather than "
		    "moksha.monitoring.socket?)", url, frames);
		zmq_msg_close(&part);
		goto out;
	}
	doc = json_loadb(zmq_msg_data(&part), zmq_msg_size(&part),
	    JSON_ALLOW_NUL, &jerr);
	zmq_msg_close(&part);
	if (doc == NULL) {
		log_err("%s sent something that is not a status report: "
		    "invalid JSON at byte %d: %s", url, jerr.position,
		    jerr.text);
		goto out;
	}
	if (!is_report(doc, why, sizeof(why))) {
		log_err("%s sent something that is not a status report: %s",
		    url, why);
		json_decref(doc);
		goto out;
	}
	*out = doc;
	rc = 0;
out:
	zmq_close(sock);
	return rc;
}

/*
 * Load the config unless it can be done without: with --socket and
 * neither --config nor $FEDMSG_CONFIG, a missing /etc/fedmsg.d is fine.
 * Returns 0, or 2 with the reason logged.
 */
static int
load_config(const struct opts *o, struct fm_config **cfg)
{
	const char *env = getenv("FEDMSG_CONFIG");
	char err[FM_ERRLEN];
	struct stat st;

	*cfg = NULL;
	if (o->socket && o->config == NULL && (env == NULL || *env == '\0') &&
	    stat(FM_CONFIG_DEFAULT_PATH, &st) != 0 && errno == ENOENT)
		return 0;
	if (fm_config_load(o->config, cfg, err) < 0) {
		log_err("%s", err);
		return 2;
	}
	return 0;
}

/* The URL to connect to; NULL (and the reason logged) when there is none. */
static const char *
monitoring_url(const struct opts *o, const struct fm_config *cfg)
{
	json_t *v;

	if (o->socket)
		return o->socket;
	v = fm_config_get(cfg, "moksha.monitoring.socket");
	if (v && !json_is_string(v) && !json_is_null(v)) {
		log_err("config %s: moksha.monitoring.socket must be a string "
		    "(a ZeroMQ URL)", cfg->source);
		return NULL;
	}
	if (v == NULL || json_is_null(v) || json_string_length(v) == 0) {
		log_err("no monitoring endpoint has been configured: set "
		    "\"moksha.monitoring.socket\" in the config (%s), as the "
		    "hub has it, or give --socket URL", cfg->source);
		return NULL;
	}
	return json_string_value(v);
}

static int
parse_timeout(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0 || v < 1 ||
	    v > INT_MAX / 1000) {
		log_err("--timeout wants a whole number of seconds, 1 to %d",
		    INT_MAX / 1000);
		return -1;
	}
	*out = (int)v;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 't' },
		{ "consumer", required_argument, NULL, 'c' },
		{ "producer", required_argument, NULL, 'p' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct opts o;
	struct fm_config *cfg = NULL;
	const char *url;
	json_t *report = NULL;
	char *text;
	size_t bad;
	int c, status = 2;

	log_init("fedmsg-check", FM_LOG_WARN);
	memset(&o, 0, sizeof(o));
	o.timeout = 10;
	o.consumers = calloc((size_t)argc, sizeof(*o.consumers));
	o.producers = calloc((size_t)argc, sizeof(*o.producers));
	if (o.consumers == NULL || o.producers == NULL) {
		log_err("out of memory");
		goto out;
	}
	while ((c = getopt_long(argc, argv, "c:p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'C': o.config = optarg; break;
		case 'c': o.consumers[o.nconsumers++] = optarg; break;
		case 'p': o.producers[o.nproducers++] = optarg; break;
		case 's':
			if (*optarg == '\0') {
				log_err("--socket wants a ZeroMQ URL");
				goto out;
			}
			o.socket = optarg;
			break;
		case 't':
			if (parse_timeout(optarg, &o.timeout) < 0)
				goto out;
			break;
		case 'h':
			fputs(usage, stdout);
			status = 0;
			goto out;
		default:
			fputs(usage, stderr);
			goto out;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		goto out;
	}
	if (load_config(&o, &cfg) != 0 ||
	    (url = monitoring_url(&o, cfg)) == NULL)
		goto out;
	if ((status = receive_report(cfg, url, o.timeout, &report)) != 0)
		goto out;

	bad = check_names(json_object_get(report, "consumers"), "consumer",
	    o.consumers, o.nconsumers);
	bad += check_names(json_object_get(report, "producers"), "producer",
	    o.producers, o.nproducers);
	if (bad) {
		status = 1;
		goto out;
	}
	if ((text = json_dumps(report, JSON_INDENT(4) | JSON_SORT_KEYS)) ==
	    NULL) {
		log_err("out of memory");
		status = 1;
		goto out;
	}
	if (printf("%s\n", text) < 0 || fflush(stdout) != 0) {
		log_err("stdout: %s", strerror(errno));
		status = 2;
	}
	free(text);
out:
	json_decref(report);
	fm_config_free(cfg);
	zep_shutdown();
	free(o.consumers);
	free(o.producers);
	return status;
}
