/*
 * Unit tests for libfedmsg/config.c: loading files and directories, the key
 * table's type checks and defaults, and building a validator and a signer
 * from a config (with the test PKI in tests/data/vectors/certs).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

/* ---- helpers ------------------------------------------------------------ */

static const char *
data_dir(void)
{
	const char *d = getenv("FM_TEST_DATA");

	return d != NULL && *d != '\0' ? d : "tests/data";
}

/* A path under the test data directory (static; one at a time). */
static const char *
data(const char *rel)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/%s", data_dir(), rel);
	return path;
}

/* A scratch directory for configs written by the tests. */
struct scratch {
	char	dir[64];
	char	path[4][4096];	/* files written, to remove */
	int	n;
};

static void
scratch_init(struct scratch *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/fm-test-config.XXXXXX");
	assert_non_null(mkdtemp(s->dir));
}

/* Write text to name in the scratch directory; returns the path. */
static const char *
scratch_file(struct scratch *s, const char *name, const char *text)
{
	char dir[sizeof(s->dir)], *p;
	FILE *f;

	assert_true(s->n < 4);
	/* A copy: GCC's -Wrestrict cannot tell dir and path[] apart. */
	memcpy(dir, s->dir, sizeof(dir));
	p = s->path[s->n++];
	snprintf(p, sizeof(s->path[0]), "%s/%s", dir, name);
	assert_non_null(f = fopen(p, "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return p;
}

static void
scratch_done(struct scratch *s)
{
	int i;

	for (i = 0; i < s->n; i++)
		unlink(s->path[i]);
	assert_int_equal(rmdir(s->dir), 0);
}

/*
 * Load path with stderr captured into log[len], so warnings can be
 * checked (and do not clutter the test output).
 */
static int
load_logged(const char *path, struct fm_config **cfg, char *err,
    char *log, size_t len)
{
	char tmpl[] = "/tmp/fm-test-log.XXXXXX";
	int fd, saved, rc;
	ssize_t n;

	assert_true((fd = mkstemp(tmpl)) >= 0);
	unlink(tmpl);
	fflush(stderr);
	assert_true((saved = dup(STDERR_FILENO)) >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	rc = fm_config_load(path, cfg, err);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	n = pread(fd, log, len - 1, 0);
	log[n > 0 ? n : 0] = '\0';
	close(fd);
	return rc;
}

/* Load a config that must fail; returns the error text (static). */
static const char *
load_error(const char *path)
{
	static char err[FM_ERRLEN];
	struct fm_config *cfg = (struct fm_config *)1;
	char log[1024];

	err[0] = '\0';
	assert_int_equal(load_logged(path, &cfg, err, log, sizeof(log)), -1);
	assert_null(cfg);
	assert_true(err[0] != '\0');
	return err;
}

/* Write one config file and expect loading it to fail. */
static void
expect_error(const char *text, const char *want)
{
	struct scratch s;
	const char *err;

	scratch_init(&s);
	err = load_error(scratch_file(&s, "x.json", text));
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
	/* Every error names the file. */
	assert_non_null(strstr(err, s.path[0]));
	scratch_done(&s);
}

static struct fm_config *
load_ok(const char *path)
{
	struct fm_config *cfg = NULL;
	char err[FM_ERRLEN] = "", log[1024];

	if (load_logged(path, &cfg, err, log, sizeof(log)) != 0)
		fail_msg("loading %s: %s", path, err);
	assert_non_null(cfg);
	if (log[0] != '\0')
		fail_msg("unexpected output loading %s: %s", path, log);
	return cfg;
}

static struct fm_config *
load_text(const char *text)
{
	struct fm_config *cfg;
	struct scratch s;

	scratch_init(&s);
	cfg = load_ok(scratch_file(&s, "c.json", text));
	scratch_done(&s);
	return cfg;
}

/* ---- loading ------------------------------------------------------------ */

static void
test_defaults(void **state)
{
	struct fm_config *cfg;

	(void)state;
	cfg = load_text("{}");
	assert_null(cfg->name);
	assert_false(cfg->active);
	assert_string_equal(cfg->environment, "dev");
	assert_string_equal(cfg->topic_prefix, "org.fedoraproject");
	assert_null(cfg->relay_inbound);
	assert_false(cfg->sign_messages);
	assert_true(cfg->validate_signatures);
	assert_string_equal(cfg->crypto_backend, "x509");
	assert_string_equal(cfg->ssldir, "/etc/pki/fedmsg");
	assert_null(cfg->ca_cert_location);
	assert_null(cfg->crl_location);
	assert_false(cfg->routing_nitpicky);
	assert_int_equal(cfg->high_water_mark, 0);
	assert_int_equal(cfg->zmq_linger, 1000);
	assert_int_equal(cfg->io_threads, 1);
	assert_true(cfg->post_init_sleep == 0.5);
	assert_true(cfg->timeout == 2.0);
	assert_false(cfg->zmq_strict);
	assert_int_equal(cfg->limits.max_message_bytes, 0);
	assert_int_equal(cfg->limits.max_json_depth, 0);
	assert_int_equal(cfg->validate_max_age, 0);
	assert_int_equal(cfg->validate_max_future, 0);
	assert_int_equal(cfg->validate_verified_cache, FM_DEFAULT_VERIFIED_CACHE);
	assert_int_equal(cfg->crl_cache_expiry, 0);
	/* Defaults are not inserted: absent keys stay absent. */
	assert_null(fm_config_get(cfg, "timeout"));
	assert_int_equal(fm_config_endpoint_count(cfg, "relay_outbound"), 0);
	assert_null(fm_config_endpoint(cfg, "relay_outbound", 0));
	assert_null(fm_config_certname(cfg, "shell.myhost"));
	fm_config_free(cfg);
	fm_config_free(NULL);
}

static void
test_file(void **state)
{
	struct fm_config *cfg;

	(void)state;
	cfg = load_text("{\n"
	    "  \"name\": \"relay_inbound\",\n"
	    "  \"active\": true,\n"
	    "  \"environment\": \"stg\",\n"
	    "  \"topic_prefix\": \"org.example\",\n"
	    "  \"relay_inbound\": \"tcp://127.0.0.1:2003\",\n"
	    "  \"sign_messages\": true,\n"
	    "  \"validate_signatures\": false,\n"
	    "  \"crypto_backend\": \"gpg\",\n"
	    "  \"ssldir\": \"/srv/pki\",\n"
	    "  \"ca_cert_location\": \"/srv/pki/ca.crt\",\n"
	    "  \"crl_location\": \"\",\n"
	    "  \"routing_nitpicky\": true,\n"
	    "  \"high_water_mark\": 5000,\n"
	    "  \"zmq_linger\": -1,\n"
	    "  \"io_threads\": 4,\n"
	    "  \"post_init_sleep\": 1,\n"
	    "  \"timeout\": 0.25,\n"
	    "  \"zmq_strict\": true,\n"
	    "  \"max_message_bytes\": 1048576,\n"
	    "  \"max_json_depth\": 64,\n"
	    "  \"validate_max_age\": 300,\n"
	    "  \"validate_max_future\": 30,\n"
	    "  \"crl_cache_expiry\": 3600\n"
	    "}\n");
	assert_string_equal(cfg->name, "relay_inbound");
	assert_true(cfg->active);
	assert_string_equal(cfg->environment, "stg");
	assert_string_equal(cfg->topic_prefix, "org.example");
	assert_string_equal(cfg->relay_inbound, "tcp://127.0.0.1:2003");
	assert_true(cfg->sign_messages);
	assert_false(cfg->validate_signatures);
	assert_string_equal(cfg->crypto_backend, "gpg");
	assert_string_equal(cfg->ssldir, "/srv/pki");
	assert_string_equal(cfg->ca_cert_location, "/srv/pki/ca.crt");
	assert_string_equal(cfg->crl_location, "");
	assert_true(cfg->routing_nitpicky);
	assert_int_equal(cfg->high_water_mark, 5000);
	assert_int_equal(cfg->zmq_linger, -1);
	assert_int_equal(cfg->io_threads, 4);
	assert_true(cfg->post_init_sleep == 1.0);
	assert_true(cfg->timeout == 0.25);
	assert_true(cfg->zmq_strict);
	assert_int_equal(cfg->limits.max_message_bytes, 1048576);
	assert_int_equal(cfg->limits.max_json_depth, 64);
	assert_int_equal(cfg->validate_max_age, 300);
	assert_int_equal(cfg->validate_max_future, 30);
	assert_int_equal(cfg->crl_cache_expiry, 3600);
	assert_true(json_is_integer(fm_config_get(cfg, "high_water_mark")));
	assert_null(fm_config_get(cfg, "no_such_key"));
	assert_non_null(strstr(cfg->source, "/c.json"));
	fm_config_free(cfg);
}

/* null means "unset" for the typed fields, as fedmsg-config prints None. */
static void
test_nulls(void **state)
{
	struct fm_config *cfg;

	(void)state;
	cfg = load_text("{\"environment\": null, \"topic_prefix\": null, "
	    "\"relay_inbound\": null, \"crypto_backend\": null, "
	    "\"ssldir\": null, \"ca_cert_location\": null, "
	    "\"crl_location\": null, \"cert_prefix\": null, "
	    "\"certnames\": null, \"routing_policy\": null, "
	    "\"crypto_validate_backends\": null, \"persistent_store\": null, "
	    "\"srv_endpoints\": null, \"logging\": null, \"irc\": null, "
	    "\"stomp_heartbeat\": null, \"consumers\": null}");
	assert_string_equal(cfg->environment, "dev");
	assert_string_equal(cfg->topic_prefix, "org.fedoraproject");
	assert_null(cfg->relay_inbound);
	assert_string_equal(cfg->crypto_backend, "x509");
	assert_string_equal(cfg->ssldir, "/etc/pki/fedmsg");
	assert_null(cfg->ca_cert_location);
	assert_null(cfg->crl_location);
	assert_true(json_is_null(fm_config_get(cfg, "persistent_store")));
	assert_null(fm_config_certname(cfg, "shell.myhost"));
	fm_config_free(cfg);
}

static void
test_directory_merge(void **state)
{
	struct fm_config *cfg;
	json_t *log, *loggers, *pol;

	(void)state;
	cfg = load_ok(data("config/merge.d"));
	assert_string_equal(cfg->source, data("config/merge.d"));

	/* strcmp order: 10-base, 20-more, 30-override, 9-last. */
	assert_string_equal(cfg->name, "nine");
	assert_int_equal(cfg->high_water_mark, 9);
	assert_string_equal(cfg->environment, "prod");
	/* 30-override set it to null: the default applies. */
	assert_string_equal(cfg->topic_prefix, "org.fedoraproject");

	/* Nested objects merge member by member; lists are replaced. */
	assert_int_equal(fm_config_endpoint_count(cfg, "relay_outbound"), 1);
	assert_string_equal(fm_config_endpoint(cfg, "relay_outbound", 0),
	    "tcp://127.0.0.1:4001");
	assert_int_equal(fm_config_endpoint_count(cfg, "bodhi.myhost"), 1);
	assert_string_equal(fm_config_endpoint(cfg, "bodhi.myhost", 0),
	    "tcp://127.0.0.1:3009");
	assert_null(fm_config_endpoint(cfg, "bodhi.myhost", 1));
	assert_int_equal(fm_config_endpoint_count(cfg, "fas.myhost"), 1);
	assert_string_equal(fm_config_endpoint(cfg, "fas.myhost", 0),
	    "tcp://127.0.0.1:3101");

	log = fm_config_get(cfg, "logging");
	assert_int_equal(json_integer_value(json_object_get(log, "version")),
	    1);
	loggers = json_object_get(log, "loggers");
	/* Three levels deep: "level" replaced, "propagate" kept. */
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(loggers, "fedmsg"), "level")), "DEBUG");
	assert_true(json_is_false(json_object_get(
	    json_object_get(loggers, "fedmsg"), "propagate")));
	/* An object replaced by a non-object. */
	assert_string_equal(json_string_value(json_object_get(loggers,
	    "moksha")), "replaced by a string");

	pol = fm_config_get(cfg, "routing_policy");
	assert_int_equal(json_array_size(json_object_get(pol,
	    "org.example.dev.a")), 1);
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(pol, "org.example.dev.a"), 0)), "cn-two");
	assert_int_equal(json_array_size(json_object_get(pol,
	    "org.example.dev.b")), 0);
	fm_config_free(cfg);
}

/* What Python's fedmsg-config prints for fedmsg's sample fedmsg.d. */
static void
test_fedmsg_config_dump(void **state)
{
	struct fm_config *cfg;

	(void)state;
	cfg = load_ok(data("config/fedmsg-config-dump.json"));
	assert_string_equal(cfg->environment, "dev");
	assert_string_equal(cfg->topic_prefix, "org.fedoraproject");
	assert_string_equal(cfg->relay_inbound, "tcp://127.0.0.1:2003");
	assert_false(cfg->active);
	assert_false(cfg->sign_messages);
	assert_true(cfg->validate_signatures);
	assert_string_equal(cfg->crypto_backend, "x509");
	assert_string_equal(cfg->ssldir, "/etc/pki/fedmsg");
	assert_string_equal(cfg->ca_cert_location, "/etc/pki/fedmsg/ca.crt");
	assert_string_equal(cfg->crl_location, "/etc/pki/fedmsg/crl.pem");
	assert_int_equal(cfg->crl_cache_expiry, 10);
	assert_int_equal(cfg->zmq_linger, 1000);
	assert_true(cfg->post_init_sleep == 0.5);
	assert_int_equal(fm_config_endpoint_count(cfg, "fedmsg-hub.myhost"),
	    4);
	assert_string_equal(fm_config_endpoint(cfg, "fedmsg-hub.myhost", 3),
	    "tcp://127.0.0.1:3010");
	assert_int_equal(fm_config_endpoint_count(cfg,
	    "fedora-infrastructure"), 2);
	assert_string_equal(fm_config_certname(cfg, "shell.myhost"),
	    "shell-myhost.example.org");
	/* Application settings are kept as they are. */
	assert_int_equal(json_integer_value(fm_config_get(cfg,
	    "fedmsg.consumers.gateway.port")), 9940);
	assert_true(json_is_false(fm_config_get(cfg, "moksha.blocking_mode")));
	fm_config_free(cfg);
}

static void
test_endpoint_listify(void **state)
{
	struct fm_config *cfg;

	(void)state;
	cfg = load_text("{\"endpoints\": {\"one\": \"tcp://h:1\", "
	    "\"two\": [\"tcp://h:2\", \"tcp://h:3\"], \"none\": []}, "
	    "\"relay_inbound\": [\"tcp://h:9\", \"tcp://h:10\"]}");
	assert_int_equal(fm_config_endpoint_count(cfg, "one"), 1);
	assert_string_equal(fm_config_endpoint(cfg, "one", 0), "tcp://h:1");
	assert_null(fm_config_endpoint(cfg, "one", 1));
	assert_int_equal(fm_config_endpoint_count(cfg, "two"), 2);
	assert_string_equal(fm_config_endpoint(cfg, "two", 0), "tcp://h:2");
	assert_string_equal(fm_config_endpoint(cfg, "two", 1), "tcp://h:3");
	assert_null(fm_config_endpoint(cfg, "two", 2));
	assert_int_equal(fm_config_endpoint_count(cfg, "none"), 0);
	assert_null(fm_config_endpoint(cfg, "none", 0));
	assert_int_equal(fm_config_endpoint_count(cfg, "missing"), 0);
	/* A list for relay_inbound: the first entry. */
	assert_string_equal(cfg->relay_inbound, "tcp://h:9");
	fm_config_free(cfg);

	cfg = load_text("{\"relay_inbound\": []}");
	assert_null(cfg->relay_inbound);
	fm_config_free(cfg);
}

static void
test_certname(void **state)
{
	struct fm_config *cfg;

	(void)state;
	cfg = load_text("{\"certnames\": {\"shell.myhost\": "
	    "\"shell-myhost.example.org\", \"bodhi.app01\": "
	    "\"bodhi-app01.stg.phx2.fedoraproject.org\"}}");
	assert_string_equal(fm_config_certname(cfg, "shell.myhost"),
	    "shell-myhost.example.org");
	assert_string_equal(fm_config_certname(cfg, "bodhi.app01"),
	    "bodhi-app01.stg.phx2.fedoraproject.org");
	assert_null(fm_config_certname(cfg, "shell.other"));
	fm_config_free(cfg);
}

static void
test_unknown_key_warns(void **state)
{
	struct fm_config *cfg = NULL;
	struct scratch s;
	const char *path;
	char err[FM_ERRLEN] = "", log[2048], want[4200];

	(void)state;
	scratch_init(&s);
	path = scratch_file(&s, "x.json", "{\"enviroment\": \"prod\", "
	    "\"datanommer.enabled\": true, \"moksha.blocking_mode\": 1, "
	    "\"fedmsg.consumers.gateway.port\": \"not checked\"}");
	assert_int_equal(load_logged(path, &cfg, err, log, sizeof(log)), 0);
	assert_non_null(cfg);
	snprintf(want, sizeof(want), "config: %s: unknown key 'enviroment'",
	    path);
	if (strstr(log, want) == NULL)
		fail_msg("warning missing, log: %s", log);
	/* One warning, and dotted keys are silent. */
	assert_null(strstr(strstr(log, want) + strlen(want), "unknown key"));
	assert_null(strstr(log, "datanommer"));
	assert_null(strstr(log, "moksha"));
	assert_null(strstr(log, "gateway"));
	/* The typo does not count as "environment". */
	assert_string_equal(cfg->environment, "dev");
	fm_config_free(cfg);
	scratch_done(&s);
}

static void
test_wrong_types(void **state)
{
	(void)state;
	expect_error("{\"high_water_mark\": \"lots\"}",
	    ": key 'high_water_mark' must be an integer, got string");
	expect_error("{\"high_water_mark\": 1.5}",
	    "key 'high_water_mark' must be an integer, got float");
	expect_error("{\"high_water_mark\": -1}",
	    "key 'high_water_mark' must be an integer from 0 to 2147483647, "
	    "got -1");
	/* fedmsg's config is Python: bools are true/false, not 0/1. */
	expect_error("{\"sign_messages\": 1}",
	    "key 'sign_messages' must be a boolean (true or false), got "
	    "integer");
	expect_error("{\"active\": \"true\"}",
	    "key 'active' must be a boolean (true or false), got string");
	expect_error("{\"active\": null}",
	    "key 'active' must be a boolean (true or false), got null");
	expect_error("{\"environment\": 3}",
	    "key 'environment' must be a string or null, got integer");
	expect_error("{\"timeout\": \"2\"}",
	    "key 'timeout' must be a number, got string");
	expect_error("{\"timeout\": -0.5}",
	    "key 'timeout' must be a number from 0 to 2147483647, got -0.5");
	expect_error("{\"endpoints\": [\"tcp://h:1\"]}",
	    "key 'endpoints' must be an object, got list");
	expect_error("{\"endpoints\": null}",
	    "key 'endpoints' must be an object, got null");
	expect_error("{\"endpoints\": {\"a\": \"tcp://h:1\", \"b\": 5}}",
	    "key 'endpoints' entry 'b' must be a string or a list of "
	    "strings, got integer");
	expect_error("{\"endpoints\": {\"b\": [\"tcp://h:1\", 5]}}",
	    "key 'endpoints' entry 'b' must be a string or a list of "
	    "strings, got a list containing integer");
	expect_error("{\"relay_inbound\": 2003}",
	    "key 'relay_inbound' must be a string or a list of strings or "
	    "null, got integer");
	expect_error("{\"routing_policy\": {\"t\": \"cn\"}}",
	    "key 'routing_policy' entry 't' must be a list of strings, got "
	    "string");
	expect_error("{\"routing_policy\": [\"t\"]}",
	    "key 'routing_policy' must be an object or null, got list");
	expect_error("{\"certnames\": {\"shell.h\": [\"x\"]}}",
	    "key 'certnames' entry 'shell.h' must be a string, got list");
	expect_error("{\"crypto_validate_backends\": \"x509\"}",
	    "key 'crypto_validate_backends' must be a list of strings or "
	    "null, got string");
	expect_error("{\"srv_endpoints\": [{}]}",
	    "key 'srv_endpoints' must be a list of strings or null, got a "
	    "list containing object");
	expect_error("{\"logging\": \"debug\"}",
	    "key 'logging' must be an object or null, got string");
	expect_error("{\"irc\": {}}",
	    "key 'irc' must be a list or null, got object");
	expect_error("{\"max_message_bytes\": 0}",
	    "key 'max_message_bytes' must be an integer >= 1, got 0");
	expect_error("{\"max_json_depth\": 0}",
	    "key 'max_json_depth' must be an integer from 1 to");
	expect_error("{\"validate_max_age\": -5}",
	    "key 'validate_max_age' must be an integer from 0 to 4294967295, "
	    "got -5");
	expect_error("{\"validate_verified_cache\": -1}",
	    "key 'validate_verified_cache' must be an integer from 0 to "
	    "4294967295, got -1");
	expect_error("{\"validate_max_future\": 4294967296}",
	    "key 'validate_max_future' must be an integer from 0 to "
	    "4294967295, got 4294967296");
	expect_error("{\"crl_cache_expiry\": -1}",
	    "key 'crl_cache_expiry' must be an integer from 0 to");
	expect_error("{\"io_threads\": 0}",
	    "key 'io_threads' must be an integer from 1 to");
	expect_error("{\"plugin_dir\": false}",
	    "key 'plugin_dir' must be a string or null, got boolean");
	expect_error("{\"hub\": []}",
	    "key 'hub' must be an object or null, got list");
}

/* In a directory, the error names the file that set the key last. */
static void
test_wrong_type_in_directory(void **state)
{
	struct fm_config *cfg;
	struct scratch s;
	const char *err;
	char want[4200];

	(void)state;
	scratch_init(&s);
	scratch_file(&s, "10-ok.json", "{\"high_water_mark\": 0, "
	    "\"endpoints\": {\"bad\": 5}}");
	scratch_file(&s, "20-x.json", "{\"high_water_mark\": \"x\", "
	    "\"endpoints\": {\"good\": \"tcp://h:1\"}}");
	err = load_error(s.dir);
	snprintf(want, sizeof(want), "config: %s: key 'high_water_mark' "
	    "must be an integer, got string", s.path[1]);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" is not \"%s\"", err, want);
	scratch_done(&s);

	/* A nested entry is blamed on the file it came from. */
	scratch_init(&s);
	scratch_file(&s, "10-a.json", "{\"endpoints\": {\"bad\": 5}}");
	scratch_file(&s, "20-b.json", "{\"endpoints\": {\"good\": "
	    "\"tcp://h:1\"}}");
	err = load_error(s.dir);
	snprintf(want, sizeof(want), "config: %s: key 'endpoints' entry "
	    "'bad' must be", s.path[0]);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" is not \"%s\"", err, want);
	scratch_done(&s);

	/* A later file can repair a bad value, as in fedmsg. */
	scratch_init(&s);
	scratch_file(&s, "10-a.json", "{\"high_water_mark\": \"x\"}");
	scratch_file(&s, "20-b.json", "{\"high_water_mark\": 7}");
	cfg = load_ok(s.dir);
	assert_int_equal(cfg->high_water_mark, 7);
	fm_config_free(cfg);
	scratch_done(&s);
}

static void
test_bad_json(void **state)
{
	struct scratch s;
	const char *err;
	char want[4200];

	(void)state;
	expect_error("{\n  \"environment\": \"dev\",\n  \"timeout\": ,\n}\n",
	    "x.json:3:");
	expect_error("{\"a\": 1, \"a\": 2}", "duplicate object key");
	expect_error("[1, 2]", "the top level must be a JSON object");
	expect_error("", "x.json:");
	expect_error("{\"environment\": \"\\u0000\"}", "x.json:1:");

	/* In a directory, the broken file is named. */
	scratch_init(&s);
	scratch_file(&s, "10-ok.json", "{}");
	scratch_file(&s, "20-broken.json", "{\n\n  \"x\" 1\n}");
	err = load_error(s.dir);
	snprintf(want, sizeof(want), "config: %s:3:", s.path[1]);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
	scratch_done(&s);
}

static void
test_missing_and_empty(void **state)
{
	struct fm_config *cfg;
	struct scratch s;
	const char *err;
	char want[4200];

	(void)state;
	err = load_error("/nonexistent/fedmsg.d");
	assert_string_equal(err,
	    "config: /nonexistent/fedmsg.d: No such file or directory");

	/* path NULL: $FEDMSG_CONFIG, else the default. */
	assert_int_equal(setenv("FEDMSG_CONFIG", "/nonexistent/env.json", 1),
	    0);
	err = load_error(NULL);
	assert_non_null(strstr(err, "/nonexistent/env.json"));
	assert_non_null(strstr(err, "$FEDMSG_CONFIG"));
	assert_int_equal(setenv("FEDMSG_CONFIG",
	    data("config/fedmsg-config-dump.json"), 1), 0);
	cfg = load_ok(NULL);
	assert_string_equal(cfg->source,
	    data("config/fedmsg-config-dump.json"));
	fm_config_free(cfg);
	assert_int_equal(unsetenv("FEDMSG_CONFIG"), 0);
	if (access(FM_CONFIG_DEFAULT_PATH, F_OK) != 0) {
		err = load_error(NULL);
		assert_non_null(strstr(err, FM_CONFIG_DEFAULT_PATH));
	}

	/* A directory with no *.json files. */
	scratch_init(&s);
	scratch_file(&s, "base.py", "config = dict()\n");
	scratch_file(&s, "notes.json.orig", "{}");
	err = load_error(s.dir);
	snprintf(want, sizeof(want), "config: no *.json files in %s", s.dir);
	assert_string_equal(err, want);
	scratch_done(&s);
}

/* ---- validator and signer ----------------------------------------------- */

#define ALPHA	"alpha-app01.vectors.example.org"
#define BETA	"beta-pkgs02.vectors.example.org"

/* A config using the test PKI, with extra members spliced in. */
static struct fm_config *
crypto_config(const char *extra)
{
	char text[8192];
	char certs[4096];

	snprintf(certs, sizeof(certs), "%s", data("vectors/certs"));
	snprintf(text, sizeof(text), "{\n"
	    "  \"ssldir\": \"%s\",\n"
	    "  \"certnames\": {\"shell.myhost\": \"" ALPHA "\", "
	    "\"beta.myhost\": \"" BETA "\", \"gone.myhost\": \"missing\"},\n"
	    "  \"routing_policy\": {\n"
	    "    \"org.fedoraproject.dev.logger.log\": [\"" ALPHA "\"],\n"
	    "    \"org.fedoraproject.dev.beta.only\": [\"" BETA "\"],\n"
	    "    \"org.fedoraproject.dev.closed\": []\n"
	    "  }%s%s\n}\n", certs, *extra ? ",\n  " : "", extra);
	return load_text(text);
}

/* Build, sign with signer and validate a message on topic. */
static enum fm_verdict
roundtrip(struct fm_signer *signer, struct fm_validator *v,
    const char *topic, int64_t timestamp)
{
	struct fm_msg_fields f;
	struct fm_msg *plain = NULL, *signed_ = NULL;
	char err[FM_ERRLEN], reason[FM_ERRLEN];
	enum fm_verdict verdict;

	memset(&f, 0, sizeof(f));
	f.topic = topic;
	f.msg_json = "{\"log\": \"hello\"}";
	f.i = 1;
	f.timestamp = timestamp;
	f.username = "tester";
	if (fm_msg_build(&f, NULL, &plain, err) != 0)
		fail_msg("fm_msg_build: %s", err);
	if (fm_signer_sign(signer, plain, &signed_, err) != 0)
		fail_msg("fm_signer_sign: %s", err);
	verdict = fm_validator_check(v, signed_, reason);
	fm_msg_unref(plain);
	fm_msg_unref(signed_);
	return verdict;
}

static void
test_validator_and_signer(void **state)
{
	struct fm_config *cfg;
	struct fm_validator *v;
	struct fm_signer *alpha, *beta;
	struct fm_validator_stats st;
	char ca[4200], pki[8400], extra[8800], err[FM_ERRLEN];

	(void)state;
	snprintf(ca, sizeof(ca), "\"ca_cert_location\": \"%s\"",
	    data("vectors/certs/ca.crt"));
	snprintf(pki, sizeof(pki), "%s, \"crl_location\": \"%s\"", ca,
	    data("vectors/certs/crl.pem"));
	cfg = crypto_config(pki);

	alpha = fm_config_signer(cfg, "shell.myhost", err);
	if (alpha == NULL)
		fail_msg("fm_config_signer: %s", err);
	assert_string_equal(fm_signer_cn(alpha), ALPHA);
	assert_non_null(beta = fm_config_signer(cfg, "beta.myhost", err));
	assert_string_equal(fm_signer_cn(beta), BETA);

	assert_null(fm_config_signer(cfg, "shell.other", err));
	assert_non_null(strstr(err, "certnames has no entry 'shell.other'"));
	/* A certname whose files do not exist: the signer names the file. */
	assert_null(fm_config_signer(cfg, "gone.myhost", err));
	assert_non_null(strstr(err, "missing.crt"));

	v = fm_config_validator(cfg, err);
	if (v == NULL)
		fail_msg("fm_config_validator: %s", err);
	assert_int_equal(roundtrip(alpha, v,
	    "org.fedoraproject.dev.logger.log", 0), FM_VALID);
	/* the verify-once cache is on by default */
	fm_validator_stats(v, &st);
	assert_int_equal(st.verified_entries, 1);
	/* routing_policy reached the validator. */
	assert_int_equal(roundtrip(beta, v,
	    "org.fedoraproject.dev.logger.log", 0), FM_INVALID_ROUTING);
	assert_int_equal(roundtrip(beta, v,
	    "org.fedoraproject.dev.beta.only", 0), FM_VALID);
	assert_int_equal(roundtrip(alpha, v,
	    "org.fedoraproject.dev.beta.only", 0), FM_INVALID_ROUTING);
	/* An empty list: nobody may publish. */
	assert_int_equal(roundtrip(alpha, v,
	    "org.fedoraproject.dev.closed", 0), FM_INVALID_ROUTING);
	/* Not in the policy, routing_nitpicky false: allowed. */
	assert_int_equal(roundtrip(alpha, v,
	    "org.fedoraproject.dev.elsewhere", 0), FM_VALID);
	/* No freshness window by default. */
	assert_int_equal(roundtrip(alpha, v,
	    "org.fedoraproject.dev.logger.log", (int64_t)time(NULL) - 86400),
	    FM_VALID);
	fm_validator_free(v);
	fm_config_free(cfg);

	/*
	 * routing_nitpicky, validate_max_age and validate_verified_cache
	 * (0: off) are passed on.
	 */
	snprintf(extra, sizeof(extra), "%s, \"routing_nitpicky\": true, "
	    "\"validate_max_age\": 600, \"crl_cache_expiry\": 3600, "
	    "\"validate_verified_cache\": 0", pki);
	cfg = crypto_config(extra);
	assert_non_null(v = fm_config_validator(cfg, err));
	assert_int_equal(roundtrip(alpha, v,
	    "org.fedoraproject.dev.elsewhere", 0), FM_INVALID_ROUTING);
	assert_int_equal(roundtrip(alpha, v,
	    "org.fedoraproject.dev.logger.log", 0), FM_VALID);
	fm_validator_stats(v, &st);
	assert_int_equal(st.verified_entries, 0);
	assert_int_equal(roundtrip(alpha, v,
	    "org.fedoraproject.dev.logger.log", (int64_t)time(NULL) - 86400),
	    FM_INVALID_STALE);
	fm_validator_free(v);
	fm_config_free(cfg);

	fm_signer_free(alpha);
	fm_signer_free(beta);
}

static void
test_validator_backends(void **state)
{
	struct fm_config *cfg;
	struct fm_validator *v;
	struct fm_signer *alpha;
	char ca[4200], extra[8192], err[FM_ERRLEN];

	(void)state;
	snprintf(ca, sizeof(ca), "\"ca_cert_location\": \"%s\"",
	    data("vectors/certs/ca.crt"));
	cfg = crypto_config(ca);
	assert_non_null(alpha = fm_config_signer(cfg, "shell.myhost", err));
	fm_config_free(cfg);

	/* Only gpg allowed: the validator exists, x509 messages fail. */
	snprintf(extra, sizeof(extra), "%s, \"crypto_validate_backends\": "
	    "[\"gpg\"]", ca);
	cfg = crypto_config(extra);
	if ((v = fm_config_validator(cfg, err)) == NULL)
		fail_msg("fm_config_validator: %s", err);
	assert_int_equal(roundtrip(alpha, v,
	    "org.fedoraproject.dev.logger.log", 0), FM_INVALID_BACKEND);
	fm_validator_free(v);
	fm_config_free(cfg);

	/* An empty list means crypto_backend. */
	snprintf(extra, sizeof(extra), "%s, \"crypto_validate_backends\": "
	    "[], \"crypto_backend\": \"gpg\"", ca);
	cfg = crypto_config(extra);
	assert_non_null(v = fm_config_validator(cfg, err));
	assert_int_equal(roundtrip(alpha, v,
	    "org.fedoraproject.dev.logger.log", 0), FM_INVALID_BACKEND);
	fm_validator_free(v);
	fm_config_free(cfg);

	snprintf(extra, sizeof(extra), "%s, \"crypto_validate_backends\": "
	    "[\"gpg\", \"x509\"]", ca);
	cfg = crypto_config(extra);
	assert_non_null(v = fm_config_validator(cfg, err));
	assert_int_equal(roundtrip(alpha, v,
	    "org.fedoraproject.dev.logger.log", 0), FM_VALID);
	fm_validator_free(v);
	fm_config_free(cfg);

	/* fedmsg raises ValueError for other names. */
	snprintf(extra, sizeof(extra), "%s, \"crypto_validate_backends\": "
	    "[\"x509_ng\"]", ca);
	cfg = crypto_config(extra);
	assert_null(fm_config_validator(cfg, err));
	assert_non_null(strstr(err, "crypto_validate_backends: 'x509_ng' is "
	    "not a crypto backend"));
	fm_config_free(cfg);

	fm_signer_free(alpha);
}

static void
test_validator_errors(void **state)
{
	struct fm_config *cfg;
	char extra[8192], err[FM_ERRLEN];

	(void)state;
	/* Unset, null and empty ca_cert_location: never a download. */
	cfg = crypto_config("");
	assert_null(fm_config_validator(cfg, err));
	assert_non_null(strstr(err, "validate_signatures needs "
	    "ca_cert_location: fedmsg-c never downloads a CA (fedmsg would "
	    "fetch https://fedoraproject.org/fedmsg/ca.crt)"));
	fm_config_free(cfg);
	cfg = crypto_config("\"ca_cert_location\": null");
	assert_null(fm_config_validator(cfg, err));
	assert_non_null(strstr(err, "never downloads a CA"));
	fm_config_free(cfg);
	cfg = crypto_config("\"ca_cert_location\": \"\"");
	assert_null(fm_config_validator(cfg, err));
	assert_non_null(strstr(err, "never downloads a CA"));
	fm_config_free(cfg);

	/* URLs, as in fedmsg's sample ssl.py. */
	cfg = crypto_config("\"ca_cert_location\": "
	    "\"https://fedoraproject.org/fedmsg/ca.crt\"");
	assert_null(fm_config_validator(cfg, err));
	assert_non_null(strstr(err, ": ca_cert_location "
	    "'https://fedoraproject.org/fedmsg/ca.crt' is a URL; fedmsg-c "
	    "reads only local files"));
	fm_config_free(cfg);
	snprintf(extra, sizeof(extra), "\"ca_cert_location\": \"%s\", "
	    "\"crl_location\": \"http://example.org/crl.pem\"",
	    data("vectors/certs/ca.crt"));
	cfg = crypto_config(extra);
	assert_null(fm_config_validator(cfg, err));
	assert_non_null(strstr(err, "crl_location 'http://example.org/crl.pem' "
	    "is a URL"));
	fm_config_free(cfg);

	/* A missing CA file is the validator's error, naming the path. */
	cfg = crypto_config("\"ca_cert_location\": \"/nonexistent/ca.crt\"");
	assert_null(fm_config_validator(cfg, err));
	assert_non_null(strstr(err, "/nonexistent/ca.crt"));
	fm_config_free(cfg);
}

static void
test_short_hostname(void **state)
{
	char full[256];
	const char *h;

	(void)state;
	h = fm_short_hostname();
	assert_non_null(h);
	assert_true(*h != '\0');
	assert_null(strchr(h, '.'));
	assert_ptr_equal(h, fm_short_hostname());
	assert_int_equal(gethostname(full, sizeof(full)), 0);
	full[sizeof(full) - 1] = '\0';
	assert_int_equal(strncmp(full, h, strlen(h)), 0);
	assert_true(full[strlen(h)] == '\0' || full[strlen(h)] == '.');
}

/*
 * In a config directory, a *.json that cannot be looked at (a dangling
 * link) is an error naming it, not a config quietly missing its keys.
 */
static void
test_unreadable_entry_in_directory(void **state)
{
	struct fm_config *cfg = NULL;
	char err[FM_ERRLEN] = "", log[1024] = "", link[4200];
	struct scratch s;

	(void)state;
	scratch_init(&s);
	scratch_file(&s, "10-base.json", "{\"environment\": \"dev\"}");
	assert_int_equal(load_logged(s.dir, &cfg, err, log, sizeof(log)), 0);
	fm_config_free(cfg);
	cfg = NULL;
	snprintf(link, sizeof(link), "%s/20-ssl.json", s.dir);
	assert_int_equal(symlink("/nonexistent/fm-test-ssl.json", link), 0);
	assert_int_equal(load_logged(s.dir, &cfg, err, log, sizeof(log)), -1);
	assert_null(cfg);
	assert_non_null(strstr(err, "20-ssl.json: No such file or directory"));
	unlink(link);
	scratch_done(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_nulls),
		cmocka_unit_test(test_directory_merge),
		cmocka_unit_test(test_unreadable_entry_in_directory),
		cmocka_unit_test(test_fedmsg_config_dump),
		cmocka_unit_test(test_endpoint_listify),
		cmocka_unit_test(test_certname),
		cmocka_unit_test(test_unknown_key_warns),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_wrong_type_in_directory),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_missing_and_empty),
		cmocka_unit_test(test_validator_and_signer),
		cmocka_unit_test(test_validator_backends),
		cmocka_unit_test(test_validator_errors),
		cmocka_unit_test(test_short_hostname),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
