/*
 * fedmsg-verify: check fedmsg envelopes, one JSON document per line, and
 * say for each why it is valid or not.  The tool admins reach for when
 * signatures fail.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fedmsg/crypto.h>
#include <fedmsg/message.h>

#include "buf.h"
#include "config.h"
#include "lines.h"
#include "log.h"
#include "msg.h"

static const char usage[] =
"usage: fedmsg-verify [--config PATH] [--ca FILE] [--crl FILE]\n"
"                     [--routing-policy FILE.json] [--nitpicky]\n"
"                     [--canonical] [--now EPOCH] [FILE...]\n"
"\n"
"Reads fedmsg envelopes, one JSON document per line, from the FILEs or\n"
"standard input, and prints one line per message:\n"
"  valid <msg_id>\n"
"  invalid <msg_id>: <reason> (<verdict>)\n"
"  invalid -: <reason>            (not a JSON object, too large, ...)\n"
"\n"
"  --config PATH          fedmsg-c config (file or directory of *.json):\n"
"                         ca_cert_location, crl_location, routing_policy,\n"
"                         routing_nitpicky and limits come from it\n"
"  --ca FILE              trusted CA certificate (PEM; the first one counts)\n"
"  --crl FILE             CRL to check revocation against; without it (and\n"
"                         without crl_location) no revocation check is done\n"
"  --routing-policy FILE  JSON object: topic -> list of allowed signer CNs\n"
"  --nitpicky             reject topics missing from the routing policy\n"
"  --canonical            print the exact canonical text that is signed\n"
"                         (without signature/certificate) instead; of a\n"
"                         duplicated key the last copy counts, as in Python\n"
"  --now EPOCH            validate as if the clock said EPOCH (seconds)\n"
"  -h, --help             this text\n"
"\n"
"Exit status: 0 all valid, 1 some invalid, 2 usage or I/O error.\n";

struct opts {
	const char	*config, *ca, *crl, *policy;
	bool		 nitpicky, canonical;
	int64_t		 now;		/* 0: the real clock */
};

static struct fm_validator *
make_validator(const struct opts *o, struct fm_config *cfg)
{
	struct fm_validator_config vc;
	struct fm_validator *v;
	json_t *policy = NULL;
	json_error_t jerr;
	char err[FM_ERRLEN];

	memset(&vc, 0, sizeof(vc));
	vc.allow_x509 = true;
	if (cfg) {
		vc.ca_path = cfg->ca_cert_location;
		vc.crl_path = cfg->crl_location;
		vc.routing_nitpicky = cfg->routing_nitpicky;
		vc.max_age = (unsigned)cfg->validate_max_age;
		vc.max_future = (unsigned)cfg->validate_max_future;
		policy = json_incref(fm_config_get(cfg, "routing_policy"));
	}
	if (o->ca)
		vc.ca_path = o->ca;
	if (o->crl)
		vc.crl_path = o->crl;
	if (o->nitpicky)
		vc.routing_nitpicky = true;
	if (vc.ca_path == NULL) {
		log_err("no CA: give --ca FILE, or --config with "
		    "ca_cert_location");
		json_decref(policy);
		return NULL;
	}
	if (o->policy) {
		json_decref(policy);
		if ((policy = json_load_file(o->policy, 0, &jerr)) == NULL) {
			log_err("%s:%d:%d: %s", o->policy, jerr.line,
			    jerr.column, jerr.text);
			return NULL;
		}
	}
	if ((v = fm_validator_new(&vc, err)) == NULL) {
		log_err("%s", err);
		json_decref(policy);
		return NULL;
	}
	if (fm_validator_allow_policy(v, policy, err) < 0) {
		log_err("%s", err);
		fm_validator_free(v);
		v = NULL;
	}
	json_decref(policy);
	return v;
}

/*
 * Text from a sender (msg_id, and topics or CNs inside reasons) made safe
 * for one output line: control characters, and spaces too when
 * word is true, are shown as \xNN (they could forge result lines), and
 * very long texts are cut.
 */
static const char *
printable(const char *id, bool word, char *out, size_t len)
{
	size_t o = 0;

	if (id == NULL || *id == '\0')
		return "-";
	for (; *id && o + 5 < len; id++) {
		unsigned char c = (unsigned char)*id;

		if (c < 0x20 || (word && c == ' ') || c == 0x7f || c == '\\')
			o += (size_t)snprintf(out + o, len - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	if (*id)
		o += (size_t)snprintf(out + o, len - o, "...");
	out[o < len ? o : len - 1] = '\0';
	return out;
}

/* Handle one line; returns 0 valid, 1 invalid, 2 bad input in --canonical. */
static int
one(const struct opts *o, struct fm_validator *v, const struct fm_limits *lim,
    const char *line, size_t len, bool too_long)
{
	char err[FM_ERRLEN];
	struct fm_msg *m;
	enum fm_verdict verdict;
	char idbuf[128], why[FM_ERRLEN + 64];
	const char *id;

	if (too_long) {
		snprintf(err, sizeof(err), "message too large: more than %zu "
		    "bytes", lim->max_message_bytes);
		m = NULL;
	} else if (msg_parse(line, len, lim, MSG_KEEP_DUPLICATES, &m,
	    err) < 0) {
		/*
		 * Duplicate keys are parsed as Python does (the last copy), for
		 * a verdict that names them and for --canonical.
		 */
		m = NULL;
	}
	if (m == NULL) {
		if (o->canonical) {
			log_err("not a fedmsg envelope: %s", err);
			return 2;
		}
		printf("invalid -: %s\n", printable(err, false, why, sizeof(why)));
		return 1;
	}
	if (o->canonical) {
		size_t n;
		char *text = fm_msg_canonical(m, true, &n);

		if (text)
			fwrite(text, 1, n, stdout);
		putchar('\n');
		free(text);
		fm_msg_unref(m);
		return text ? 0 : 2;
	}
	id = printable(fm_msg_id(m), true, idbuf, sizeof(idbuf));
	verdict = o->now ? fm_validator_check_at(v, m, o->now, err) :
	    fm_validator_check(v, m, err);
	if (verdict == FM_VALID)
		printf("valid %s\n", id);
	else
		printf("invalid %s: %s (%s)\n", id, printable(err, false, why,
		    sizeof(why)), fm_verdict_name(verdict));
	fm_msg_unref(m);
	return verdict == FM_VALID ? 0 : 1;
}

static int
run_file(const struct opts *o, struct fm_validator *v,
    const struct fm_limits *lim, FILE *f, const char *name, int *worst)
{
	struct buf line = BUF_INIT;
	bool too_long;
	int r;

	while ((r = read_line(f, lim->max_message_bytes, &line, &too_long)) > 0) {
		size_t i;
		int rc;

		for (i = 0; i < line.len && line.data[i] != '\0' &&
		    strchr(" \t\r", line.data[i]); i++)
			;
		if (i == line.len && !too_long)
			continue;	/* blank line */
		rc = one(o, v, lim, line.data, line.len, too_long);
		if (rc > *worst)
			*worst = rc;
		fflush(stdout);
	}
	buf_free(&line);
	if (r < 0) {
		log_err("%s: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "ca", required_argument, NULL, 'a' },
		{ "crl", required_argument, NULL, 'r' },
		{ "routing-policy", required_argument, NULL, 'p' },
		{ "nitpicky", no_argument, NULL, 'n' },
		{ "canonical", no_argument, NULL, 'C' },
		{ "now", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct opts o;
	struct fm_config *cfg = NULL;
	struct fm_validator *v = NULL;
	struct fm_limits lim = { FM_DEFAULT_MAX_MESSAGE_BYTES, 0 };
	char err[FM_ERRLEN], *end;
	int c, worst = 0, status = 2;

	log_init("fedmsg-verify", FM_LOG_WARN);
	memset(&o, 0, sizeof(o));
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o.config = optarg; break;
		case 'a': o.ca = optarg; break;
		case 'r': o.crl = optarg; break;
		case 'p': o.policy = optarg; break;
		case 'n': o.nitpicky = true; break;
		case 'C': o.canonical = true; break;
		case 't':
			o.now = strtoll(optarg, &end, 10);
			if (*end != '\0' || o.now <= 0) {
				log_err("--now wants seconds since the epoch");
				return 2;
			}
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (o.config && fm_config_load(o.config, &cfg, err) < 0) {
		log_err("%s", err);
		return 2;
	}
	if (cfg && cfg->limits.max_message_bytes)
		lim = cfg->limits;
	if (!o.canonical && (v = make_validator(&o, cfg)) == NULL)
		goto out;
	if (optind == argc) {
		if (run_file(&o, v, &lim, stdin, "stdin", &worst) < 0)
			goto out;
	}
	for (; optind < argc; optind++) {
		FILE *f = fopen(argv[optind], "r");

		if (f == NULL) {
			log_err("%s: %s", argv[optind], strerror(errno));
			goto out;
		}
		c = run_file(&o, v, &lim, f, argv[optind], &worst);
		fclose(f);
		if (c < 0)
			goto out;
	}
	status = worst;
out:
	fm_validator_free(v);
	fm_config_free(cfg);
	return status;
}
