/*
 * fedmsg-hub: run the consumer plugins named in the config's "consumers"
 * on validated messages from the bus.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "hub.h"
#include "log.h"
#include "names.h"
#include "signals.h"

static const char usage[] =
"usage: fedmsg-hub [--config PATH] [--with-consumers NAME,...] [--check]\n"
"                  [-v] [-h]\n"
"\n"
"Loads every consumer of the config's \"consumers\" object (a plugin .so\n"
"and its settings), validates every message from the bus before any\n"
"consumer sees it, and runs each consumer on its own threads and queue.\n"
"\n"
"  --config PATH            config file or directory (default\n"
"                           $FEDMSG_CONFIG, else /etc/fedmsg.d)\n"
"  --with-consumers LIST    run only these consumers (comma-separated)\n"
"  --check                  load and initialise everything, print the\n"
"                           status as JSON and exit (config check)\n"
"  -v, --verbose            log more\n"
"  -h, --help               this text\n"
"\n"
"Signals: SIGTERM/SIGINT drain the queues and exit; SIGHUP reloads the\n"
"config, the CA and the CRL.  Exit status: 0 stopped cleanly, 1 runtime\n"
"error, 2 configuration error, 3 every consumer halted.\n";

static volatile sig_atomic_t stop, reload;

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "with-consumers", required_argument, NULL, 'w' },
		{ "check", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct hub_opts o;
	enum fm_log_level level = FM_LOG_INFO;
	char *list = NULL, err[FM_ERRLEN];
	const char *only[65];
	int c, rc;

	memset(&o, 0, sizeof(o));
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o.config_path = optarg; break;
		case 'w': list = optarg; break;
		case 'n': o.check_only = true; break;
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
	log_init("fedmsg-hub", level);
	heap_keep_freed();	/* a page fault per message otherwise */
	if (list) {
		if (names_split(list, only, 65, err) < 0) {
			log_err("--with-consumers: %s", err);
			return 2;
		}
		o.only = only;
	}
	catch_signals(&stop, &reload, true);
	o.stop = &stop;
	o.reload = &reload;
	rc = hub_run(&o);
	return rc;
}
