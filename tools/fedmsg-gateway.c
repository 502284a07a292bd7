/*
 * fedmsg-gateway: subscribe to every endpoint in the config and
 * re-publish everything, byte for byte, on one bound PUB socket that
 * outside clients connect to (fedmsg's port 9940).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fedmsg/bus.h>

#include "config.h"
#include "heap.h"
#include "log.h"
#include "signals.h"
#include "zep.h"

static const char usage[] =
"usage: fedmsg-gateway [--config PATH] [--bind URL] [--validate] [-v] [-h]\n"
"\n"
"Subscribes to all endpoints of the config and re-publishes every message\n"
"unchanged on tcp://*:<fedmsg.consumers.gateway.port> (default 9940), with\n"
"fedmsg.consumers.gateway.high_water_mark (default 1000) as its HWM.\n"
"\n"
"  --config PATH   config file or directory\n"
"  --bind URL      bind this URL instead (e.g. tcp://127.0.0.1:9940)\n"
"  --validate      drop messages whose signature is not valid (fedmsg's\n"
"                  gateway forwards without validating)\n"
"  -v, --verbose   log more\n"
"  -h, --help      this text\n";

static int64_t
int_key(const struct fm_config *cfg, const char *key, int64_t dflt)
{
	json_t *v = fm_config_get(cfg, key);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "bind", required_argument, NULL, 'b' },
		{ "validate", no_argument, NULL, 'V' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static volatile sig_atomic_t stop;
	struct fm_bus_opts bo = FM_BUS_OPTS_INIT;
	struct fm_config *cfg = NULL;
	struct fm_subscriber *sub = NULL;
	struct fm_sub_stats st;
	const char *config = NULL, *bind_url = NULL;
	enum fm_log_level level = FM_LOG_INFO;
	char err[FM_ERRLEN], url[512];
	uint64_t forwarded = 0, failed = 0;
	void *pub = NULL;
	int c, validate = 0, hwm, status = 1;

	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'b': bind_url = optarg; break;
		case 'V': validate = 1; break;
		case 'v': level = FM_LOG_DEBUG; break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	log_init("fedmsg-gateway", level);
	heap_keep_freed();	/* a page fault per message otherwise */
	if (optind != argc) {
		fputs(usage, stderr);
		return 2;
	}
	if (fm_config_load(config, &cfg, err) < 0) {
		log_err("%s", err);
		return 2;
	}
	if (bind_url)
		snprintf(url, sizeof(url), "%s", bind_url);
	else
		snprintf(url, sizeof(url), "tcp://*:%lld", (long long)int_key(cfg,
		    "fedmsg.consumers.gateway.port", 9940));
	hwm = (int)int_key(cfg, "fedmsg.consumers.gateway.high_water_mark",
	    1000);
	if ((pub = zmq_socket(zep_context(cfg), ZMQ_PUB)) != NULL)
		zep_apply_options(pub, cfg, false);	/* max_message_bytes */
	if (pub == NULL ||
	    zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
	    zmq_bind(pub, url) < 0) {
		log_err("bind %s: %s", url, zmq_strerror(errno));
		goto out;
	}
	log_info("publishing on %s", url);
	bo.config = cfg;
	if ((sub = fm_subscriber_open(&bo, NULL, NULL, validate, err)) == NULL) {
		log_err("%s", err);
		goto out;
	}
	catch_stop_signals(&stop);
	while (!stop) {
		struct fm_received r;
		int rc = fm_subscriber_recv(sub, 1000, &r, err);

		if (rc < 0) {
			if (stop || errno == EINTR)
				continue;
			log_err("%s", err);
			goto out;
		}
		if (rc == 0)
			continue;
		if (zep_send_msg(pub, r.msg) < 0) {
			failed++;
			log_warn("cannot forward: %s", zmq_strerror(errno));
		} else {
			forwarded++;
		}
		fm_msg_unref(r.msg);
	}
	status = 0;
out:
	if (sub) {
		fm_subscriber_stats(sub, &st);
		log_info("forwarded %llu, unsendable %llu; dropped: %llu bad "
		    "frames, %llu not JSON objects, %llu topic mismatches, %llu "
		    "invalid", (unsigned long long)forwarded,
		    (unsigned long long)failed, (unsigned long long)st.bad_frames,
		    (unsigned long long)st.bad_json,
		    (unsigned long long)st.topic_mismatch,
		    (unsigned long long)st.invalid);
	}
	fm_subscriber_close(sub);
	if (pub) {
		zmq_setsockopt(pub, ZMQ_LINGER, &(int){ 0 }, sizeof(int));
		zmq_close(pub);
	}
	fm_config_free(cfg);
	zep_shutdown();
	return status;
}
