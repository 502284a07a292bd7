/*
 * fedmsg-bridge: relay signed fedmsg messages between ZeroMQ and AMQP 1.0
 * or STOMP brokers, both ways, per the config's "bridges".
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"
#include "config.h"
#include "heap.h"
#include "log.h"
#include "names.h"
#include "signals.h"

static const char usage[] =
"usage: fedmsg-bridge --config PATH [--only NAME,...] [-v] [-h]\n"
"\n"
"Runs every bridge of the config's \"bridges\" object: ZeroMQ -> broker\n"
"(spooled on disk until the broker accepts each message) and broker ->\n"
"ZeroMQ (validated, or wrapped and signed when the body is plain JSON).\n"
"See README.md, \"Bridges\", for every key.\n"
"\n"
"  --config PATH   config file or directory (default $FEDMSG_CONFIG,\n"
"                  else /etc/fedmsg.d)\n"
"  --only LIST     run only these bridges (comma-separated)\n"
"  -v, --verbose   log more\n"
"  -h, --help      this text\n"
"\n"
"At SIGTERM/SIGINT it stops reading ZeroMQ, waits up to 2 s for the\n"
"brokers to confirm what is in flight (the rest stays spooled), and exits.\n"
"\n"
"Exit status: 0 stopped by SIGTERM/SIGINT, 1 runtime error, 2 config error.\n";

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "only", required_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static volatile sig_atomic_t stop;
	const char *config = NULL, *only[33];
	char *list = NULL, err[FM_ERRLEN];
	enum fm_log_level level = FM_LOG_INFO;
	struct fm_config *cfg;
	int c, rc;

	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'o': list = optarg; break;
		case 'v': level = FM_LOG_DEBUG; break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		return 2;
	}
	log_init("fedmsg-bridge", level);
	heap_keep_freed();	/* a page fault per message otherwise */
	if (list && names_split(list, only, 33, err) < 0) {
		log_err("--only: %s", err);
		return 2;
	}
	if (fm_config_load(config, &cfg, err) < 0) {
		log_err("%s", err);
		return 2;
	}
	catch_stop_signals(&stop);
	rc = bridges_run(cfg, list ? only : NULL, &stop);
	fm_config_free(cfg);
	return rc;
}
