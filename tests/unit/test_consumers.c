/*
 * The consumer plugins (consumers/): the typed config reader they share
 * (include/fedmsg/plugin_config.h, over the hub's real accessors), then
 * exec, archive and example loaded with dlopen() from
 * build/asan/plugins/<name>.so, their ASan+UBSan build
 * ($FM_TEST_PLUGIN_DIR overrides), and driven through a mock host whose
 * message accessors, ABI 1.1 JSON accessors and builder are the hub's
 * (pj_fill_host); only log, publish, config and timers are mocked.  The
 * plugins must have been built first: the unit target depends on them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fedmsg/message.h>
#include <fedmsg/plugin.h>
#include <fedmsg/plugin_config.h>

#include "json.h"
#include "plugin_json.h"
#include "testutil.h"

/* ---- the mock host ------------------------------------------------------ */

#define MAXPUB	8
#define MAXTIMER 4

struct mock {
	pthread_mutex_t	 lock;
	const char	*config;
	char		*cfg_text;	/* what cfg_doc was parsed from */
	struct jv_doc	*cfg_doc;
	char		 logs[65536];
	size_t		 loglen;
	int		 npub;
	char		 pub_modname[MAXPUB][32];
	char		 pub_topic[MAXPUB][32];
	char		*pub_json[MAXPUB];
	int		 ntimer;
	unsigned	 interval[MAXTIMER];
	void		(*timer_fn[MAXTIMER])(void *);
	void		*timer_arg[MAXTIMER];
};

static struct mock M = { .lock = PTHREAD_MUTEX_INITIALIZER };
static const char *mock_signer = "hub.example.org";

static void mock_log(void *, enum fm_log_level, const char *, ...)
    FM_PRINTF(3, 4);

static void
mock_log(void *hctx, enum fm_log_level lvl, const char *fmt, ...)
{
	static const char lv[] = "EWID";
	struct mock *m = hctx;
	char line[1024];
	va_list ap;
	int n;

	assert_ptr_equal(m, &M);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (getenv("FM_TEST_VERBOSE") != NULL)
		fprintf(stderr, "  plugin log %c: %s\n", lv[lvl], line);
	pthread_mutex_lock(&m->lock);
	n = snprintf(m->logs + m->loglen, sizeof(m->logs) - m->loglen,
	    "%c: %s\n", lv[lvl], line);
	if (n > 0 && (size_t)n < sizeof(m->logs) - m->loglen)
		m->loglen += (size_t)n;
	pthread_mutex_unlock(&m->lock);
}

static int
mock_publish(void *hctx, const char *modname, const char *topic,
    const char *json, size_t len)
{
	struct mock *m = hctx;

	assert_ptr_equal(m, &M);
	assert_true(m->npub < MAXPUB);
	snprintf(m->pub_modname[m->npub], 32, "%s", modname);
	snprintf(m->pub_topic[m->npub], 32, "%s", topic);
	if (len == 0)
		len = strlen(json);
	m->pub_json[m->npub] = strndup(json, len);
	m->npub++;
	return 0;
}

static const char *
mock_config_json(void *hctx)
{
	assert_ptr_equal(hctx, &M);
	return M.config;
}

static struct fm_host host;

/* M.config parsed by the hub's parser (again whenever the text changed). */
static const struct fm_json *
mock_config(void *hctx)
{
	char err[FM_ERRLEN];

	assert_ptr_equal(hctx, &M);
	if (M.cfg_doc == NULL || strcmp(M.cfg_text, M.config) != 0) {
		jv_doc_free(M.cfg_doc);
		free(M.cfg_text);
		M.cfg_text = strdup(M.config);
		assert_non_null(M.cfg_text);
		if ((M.cfg_doc = jv_parse(M.config, strlen(M.config), NULL,
		    err)) == NULL)
			fail_msg("config %s: %s", M.config, err);
	}
	return pj_doc(jv_doc_root(M.cfg_doc));
}

/* The builder's text goes to mock_publish, as the hub's does. */
static int
mock_publish_built(void *hctx, const char *modname, const char *topic,
    struct fm_builder *b)
{
	char err[128];
	const char *json;
	size_t len = 0;
	int rc = -1;

	if ((json = pj_builder_text(b, &len, err, sizeof(err))) == NULL)
		mock_log(hctx, FM_LOG_WARN, "mock: builder failed: %s", err);
	else
		rc = mock_publish(hctx, modname, topic, json, len);
	host.builder_free(b);
	return rc;
}

static struct fm_msg *
mock_ref(struct fm_msg *msg)
{
	return fm_msg_ref(msg);
}

static void
mock_unref(struct fm_msg *msg)
{
	fm_msg_unref(msg);
}

static const char *
mock_topic(const struct fm_msg *msg)
{
	return fm_msg_topic(msg);
}

static const char *
mock_id(const struct fm_msg *msg)
{
	return fm_msg_id(msg);
}

static const char *
mock_body(const struct fm_msg *msg, size_t *len)
{
	return fm_msg_body(msg, len);
}

static double
mock_timestamp(const struct fm_msg *msg)
{
	double ts;

	return fm_msg_timestamp(msg, &ts) ? ts : 0;
}

static const char *
mock_signer_fn(const struct fm_msg *msg)
{
	(void)msg;
	return mock_signer;
}

static unsigned
mock_attempt(const struct fm_msg *msg)
{
	(void)msg;
	return 1;
}

static int
mock_timer_add(void *hctx, unsigned interval_ms, void (*fn)(void *),
    void *arg)
{
	struct mock *m = hctx;

	assert_ptr_equal(m, &M);
	if (m->ntimer == MAXTIMER)
		return -1;
	m->interval[m->ntimer] = interval_ms;
	m->timer_fn[m->ntimer] = fn;
	m->timer_arg[m->ntimer] = arg;
	return m->ntimer++;
}

/* host: the 1.0 entries mocked, the 1.1 ones the hub's own. */
static void
host_setup(void)
{
	memset(&host, 0, sizeof(host));
	host.abi_major = FM_PLUGIN_ABI_MAJOR;
	host.abi_minor = FM_PLUGIN_ABI_MINOR;
	host.size = sizeof(host);
	host.log = mock_log;
	host.publish = mock_publish;
	host.config_json = mock_config_json;
	host.msg_ref = mock_ref;
	host.msg_unref = mock_unref;
	host.msg_topic = mock_topic;
	host.msg_id = mock_id;
	host.msg_body = mock_body;
	host.msg_timestamp = mock_timestamp;
	host.msg_signer = mock_signer_fn;
	host.msg_attempt = mock_attempt;
	host.timer_add = mock_timer_add;
	pj_fill_host(&host);
	host.config = mock_config;
	host.publish_built = mock_publish_built;
}

static void
mock_reset(void)
{
	int i;

	for (i = 0; i < M.npub; i++)
		free(M.pub_json[i]);
	M.npub = 0;
	M.ntimer = 0;
	M.loglen = 0;
	M.logs[0] = '\0';
	M.config = "{}";
}

static bool
logged(const char *needle)
{
	return strstr(M.logs, needle) != NULL;
}

#define assert_logged(s) do {						\
	if (!logged(s))							\
		fail_msg("expected log '%s'; got:\n%s", (s), M.logs);	\
} while (0)

/* ---- helpers ------------------------------------------------------------ */

/* A JSON string literal for s (one of 8 rotating static buffers). */
static const char *
jstr(const char *s)
{
	static char bufs[8][8192];
	static int k;
	char *b = bufs[k++ % 8], *o = b;

	*o++ = '"';
	for (; *s != '\0'; s++) {
		assert_true(o - b < 8000);
		if (*s == '"' || *s == '\\')
			o += sprintf(o, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			o += sprintf(o, "\\u%04x", (unsigned)*s);
		else
			*o++ = *s;
	}
	*o++ = '"';
	*o = '\0';
	return b;
}

static const char *cfgf(const char *, ...) FM_PRINTF(1, 2);

/* printf into one of 8 rotating static buffers. */
static const char *
cfgf(const char *fmt, ...)
{
	static char bufs[8][16384];
	static int k;
	char *b = bufs[k++ % 8];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof(bufs[0]), fmt, ap);
	va_end(ap);
	return b;
}

static char tmpdir[64];

static int
group_setup(void **state)
{
	(void)state;
	host_setup();
	umask(022);
	return tu_tmpdir(tmpdir, sizeof(tmpdir), "fm-test-consumers");
}

static int
group_teardown(void **state)
{
	(void)state;
	mock_reset();
	jv_doc_free(M.cfg_doc);
	free(M.cfg_text);
	M.cfg_doc = NULL;
	M.cfg_text = NULL;
	if (getenv("FM_TEST_KEEP") == NULL)
		tu_remove_tree(tmpdir);
	return 0;
}

/* "<tmpdir>/<name>" (one of 32 rotating static buffers). */
static const char *
tpath(const char *fmt, ...) FM_PRINTF(1, 2);

static const char *
tpath(const char *fmt, ...)
{
	static char bufs[32][512];
	static int k;
	char *b = bufs[k++ % 32];
	int n;
	va_list ap;

	n = snprintf(b, 512, "%s/", tmpdir);
	va_start(ap, fmt);
	vsnprintf(b + n, 512 - (size_t)n, fmt, ap);
	va_end(ap);
	return b;
}

static bool
exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Whether pid runs (a zombie does not: PID 1 may be slow to reap). */
static bool
proc_alive(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL || p[1] == '\0')
		return false;
	return p[2] != 'Z' && p[2] != 'X';
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
today_utc(char day[16])
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(day, 16, "%Y-%m-%d", &tm);
}

static struct fm_msg *
mkmsg(const char *topic, const char *msg_json, const char *id)
{
	struct fm_msg_fields f;
	struct fm_msg *m = NULL;
	char err[FM_ERRLEN];

	memset(&f, 0, sizeof(f));
	f.topic = topic;
	f.msg_json = msg_json;
	f.msg_id = id;
	f.i = 1;
	f.timestamp = 1700000000;
	f.username = "tester";
	if (fm_msg_build(&f, NULL, &m, err) != 0)
		fail_msg("fm_msg_build: %s", err);
	return m;
}

static const char *
body_of(struct fm_msg *m, size_t *len)
{
	return fm_msg_body(m, len);
}

/* A loaded plugin. */
struct plug {
	void			*dl;
	const struct fm_plugin	*p;
	void			*state;
};

static void
plug_load(struct plug *pl, const char *name)
{
	const char *dir = getenv("FM_TEST_PLUGIN_DIR");
	char path[1024];
	fm_plugin_entry_fn entry;
	void *sym;

	if (dir == NULL || *dir == '\0')
		dir = "build/asan/plugins";
	snprintf(path, sizeof(path), "%s/%s.so", dir, name);
	if (!exists(path))
		fail_msg("%s is missing: run `make %s` (the unit target must "
		    "depend on $(PLUGINS))", path, path);
	memset(pl, 0, sizeof(*pl));
	if ((pl->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL)
		fail_msg("dlopen %s: %s", path, dlerror());
	if ((sym = dlsym(pl->dl, FM_PLUGIN_ENTRY_NAME)) == NULL)
		fail_msg("dlsym %s: %s", FM_PLUGIN_ENTRY_NAME, dlerror());
	entry = (fm_plugin_entry_fn)sym;
	pl->p = entry();
	assert_non_null(pl->p);
	mock_reset();
}

/* init with config text; returns init's result. */
static int
plug_init(struct plug *pl, const char *config)
{
	mock_reset();
	M.config = config;
	pl->state = NULL;
	return pl->p->init(&host, &M, &pl->state);
}

static void
plug_init_ok(struct plug *pl, const char *config)
{
	if (plug_init(pl, config) != 0)
		fail_msg("init(%s) failed:\n%s", config, M.logs);
	assert_non_null(pl->state);
}

static void
plug_fini(struct plug *pl)
{
	if (pl->state != NULL)
		pl->p->fini(pl->state);
	pl->state = NULL;
}

static void
plug_unload(struct plug *pl)
{
	plug_fini(pl);
	dlclose(pl->dl);
	mock_reset();
}

static int
consume_one(struct plug *pl, struct fm_msg *m)
{
	int rc = pl->p->consume(pl->state, m);

	fm_msg_unref(m);
	return rc;
}

/* ---- the config reader (plugin_config.h over the hub's accessors) ----- */

/* Open M.config as text through the mock host; fails the test if not. */
static void
cfg_open(struct fm_config *c, const char *text)
{
	mock_reset();
	M.config = text;
	if (fm_config_open(c, &host, &M) != 0)
		fail_msg("fm_config_open(%s): %s", text, c->err);
}

static void
test_cfg_values(void **state)
{
	static const char text[] = " {\"s\": \"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t"
	    "\\u00e9\\ud83d\\ude00\\u20AC\xc3\xa9\", \"i\": -42, \"big\": "
	    "9223372036854775807, \"b\": true, \"f\": false, \"arr\": "
	    "[\"x\", \"\", \"\\u0041\"], \"o\": {\"k\": \"v\", \"n\": [1, "
	    "{\"deep\": null}]}, \"n\": null, \"ints\": [1, -2, 255], "
	    "\"fl\": 1.5e3, \"e\": [], \"u\": 1, \"a/b~c\": \"esc\" } ";
	struct fm_config c, sub;
	char *s = NULL, **v = NULL, *k;
	long long i = 7, *iv = NULL;
	double d = 0;
	bool b = false;
	size_t n = 0;

	(void)state;
	cfg_open(&c, text);
	assert_int_equal(fm_config_size(&c), 13);
	assert_int_equal(fm_config_string(&c, "s", &s), 0);
	assert_string_equal(s, "a\"b\\c/d\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80"
	    "\xe2\x82\xac\xc3\xa9");
	free(s);
	assert_int_equal(fm_config_int(&c, "i", -100, 100, &i), 0);
	assert_int_equal(i, -42);
	assert_int_equal(fm_config_int(&c, "big", 0, INT64_MAX, &i), 0);
	assert_true(i == INT64_MAX);
	assert_int_equal(fm_config_bool(&c, "b", &b), 0);
	assert_true(b);
	assert_int_equal(fm_config_bool(&c, "f", &b), 0);
	assert_false(b);
	assert_int_equal(fm_config_double(&c, "fl", 0, 1e4, &d), 0);
	assert_true(d == 1500.0);
	assert_int_equal(fm_config_strings(&c, "arr", &v, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0], "x");
	assert_string_equal(v[1], "");
	assert_string_equal(v[2], "A");
	assert_null(v[3]);
	fm_config_strv_free(v);
	assert_int_equal(fm_config_strings(&c, "e", &v, &n), 0);
	assert_int_equal(n, 0);
	assert_null(v[0]);
	fm_config_strv_free(v);
	assert_int_equal(fm_config_ints(&c, "ints", 0, 255, &iv, &n), -1);
	assert_string_equal(c.err, "'ints[1]' must be between 0 and 255");
	assert_int_equal(fm_config_ints(&c, "ints", -255, 255, &iv, &n), 0);
	assert_int_equal(n, 3);
	assert_true(iv[0] == 1 && iv[1] == -2 && iv[2] == 255);
	free(iv);
	/* '/' and '~' in a key are escaped for the pointer */
	assert_int_equal(fm_config_string(&c, "a/b~c", &s), 0);
	assert_string_equal(s, "esc");
	free(s);

	/* A nested object: a reader of its own, keys in code point order. */
	assert_int_equal(fm_config_object(&c, "o", &sub), 0);
	assert_int_equal(fm_config_size(&sub), 2);
	assert_non_null(k = fm_config_key(&sub, 0));
	assert_string_equal(k, "k");
	free(k);
	assert_null(fm_config_key(&sub, 2));
	assert_int_equal(fm_config_string(&sub, "k", &s), 0);
	assert_string_equal(s, "v");
	free(s);
	mock_reset();
	assert_int_equal(fm_config_warn_unknown(&sub), 1);
	assert_string_equal(M.logs, "W: unknown config key 'o.n'\n");

	/* Absent: 1 and the output untouched. */
	i = 7;
	assert_int_equal(fm_config_int(&c, "absent", 0, 10, &i), 1);
	assert_int_equal(i, 7);
	s = (char *)"keep";
	assert_int_equal(fm_config_string(&c, "absent", &s), 1);
	assert_string_equal(s, "keep");
	assert_int_equal(fm_config_object(&c, "absent", &sub), 1);

	/* Wrong types and ranges: -1 with a clear reason. */
	assert_int_equal(fm_config_int(&c, "s", 0, 10, &i), -1);
	assert_string_equal(c.err, "'s' must be an integer, not a string");
	assert_int_equal(fm_config_int(&c, "fl", 0, 10000, &i), -1);
	assert_string_equal(c.err, "'fl' must be an integer, not a float");
	assert_int_equal(fm_config_int(&c, "i", 0, 10, &i), -1);
	assert_string_equal(c.err, "'i' must be between 0 and 10");
	assert_int_equal(fm_config_int(&c, "n", 0, 10, &i), -1);
	assert_string_equal(c.err, "'n' must be an integer, not null");
	assert_int_equal(fm_config_double(&c, "fl", 0, 10, &d), -1);
	assert_string_equal(c.err, "'fl' must be between 0 and 10");
	assert_int_equal(fm_config_bool(&c, "i", &b), -1);
	assert_string_equal(c.err, "'i' must be a boolean, not a number");
	assert_int_equal(fm_config_string(&c, "arr", &s), -1);
	assert_string_equal(c.err, "'arr' must be a string, not an array");
	assert_int_equal(fm_config_strings(&c, "ints", &v, &n), -1);
	assert_string_equal(c.err, "'ints[0]' must be a string, not a number");
	assert_int_equal(fm_config_strings(&c, "s", &v, &n), -1);
	assert_string_equal(c.err, "'s' must be an array of strings, not a "
	    "string");
	assert_int_equal(fm_config_object(&c, "arr", &sub), -1);
	assert_string_equal(c.err, "'arr' must be an object, not an array");
	assert_int_equal(fm_config_ints(&c, "arr", 0, 1, &iv, &n), -1);
	assert_string_equal(c.err, "'arr[0]' must be an integer, not a string");

	/* Everything was asked for except "u". */
	mock_reset();
	assert_int_equal(fm_config_warn_unknown(&c), 1);
	assert_string_equal(M.logs, "W: unknown config key 'u'\n");
}

static void
test_cfg_errors(void **state)
{
	struct fm_config c;
	struct fm_host old;
	char text[4096], *s = (char *)"keep", **v = NULL;
	long long i = 0, *iv = NULL;
	size_t n, k;

	(void)state;
	/* NUL inside a string or a key: refused, never truncated. */
	cfg_open(&c, "{\"a\": \"x\\u0000y\", \"l\": [\"ok\", \"\\u0000\"], "
	    "\"k\\u0000\": 1}");
	assert_int_equal(fm_config_string(&c, "a", &s), -1);
	assert_string_equal(c.err, "'a' holds a NUL character");
	assert_string_equal(s, "keep");
	assert_int_equal(fm_config_strings(&c, "l", &v, &n), -1);
	assert_string_equal(c.err, "'l[1]' holds a NUL character");
	assert_null(fm_config_key(&c, 1));
	assert_non_null(strstr(c.err, "NUL"));

	/* Integers beyond int64, floats, booleans are not integers. */
	cfg_open(&c, "{\"huge\": 99999999999999999999, \"neg\": "
	    "-99999999999999999999, \"f\": 3.0, \"t\": true, \"is\": [1, "
	    "2.5], \"ib\": [false]}");
	assert_int_equal(fm_config_int(&c, "huge", 0, INT64_MAX, &i), -1);
	assert_string_equal(c.err, "'huge' must be between 0 and "
	    "9223372036854775807");
	assert_int_equal(fm_config_int(&c, "neg", INT64_MIN, 0, &i), -1);
	assert_int_equal(fm_config_int(&c, "f", 0, 10, &i), -1);
	assert_string_equal(c.err, "'f' must be an integer, not a float");
	assert_int_equal(fm_config_int(&c, "t", 0, 10, &i), -1);
	assert_string_equal(c.err, "'t' must be an integer, not a boolean");
	assert_int_equal(fm_config_ints(&c, "is", 0, 10, &iv, &n), -1);
	assert_string_equal(c.err, "'is[1]' must be an integer, not a float");
	assert_int_equal(fm_config_ints(&c, "ib", 0, 10, &iv, &n), -1);
	assert_string_equal(c.err, "'ib[0]' must be an integer, not a "
	    "boolean");
	assert_int_equal(i, 0);

	/* A key longer than a pointer may be: an error, not a crash. */
	memset(text, 'k', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(fm_config_int(&c, text, 0, 1, &i), -1);
	assert_non_null(strstr(c.err, "too long"));

	/* Many unknown keys: each named once. */
	{
		char *o = text;

		*o++ = '{';
		for (k = 0; k < 100; k++)
			o += sprintf(o, "%s\"k%zu\":%zu", k ? "," : "", k, k);
		strcpy(o, "}");
	}
	cfg_open(&c, text);
	assert_int_equal(fm_config_size(&c), 100);
	assert_int_equal(fm_config_int(&c, "k7", 0, 10, &i), 0);
	assert_int_equal(i, 7);
	assert_int_equal(fm_config_warn_unknown(&c), 99);
	assert_logged("W: unknown config key 'k99'\n");
	assert_false(logged("'k7'"));

	/* Not an object; a host older than ABI 1.1. */
	mock_reset();
	M.config = "[1]";
	assert_int_equal(fm_config_open(&c, &host, &M), -1);
	assert_string_equal(c.err, "config is not an object");
	old = host;
	old.abi_minor = 0;
	M.config = "{}";
	assert_int_equal(fm_config_open(&c, &old, &M), -1);
	assert_string_equal(c.err, "this hub is older than plugin ABI 1.1");
}

/* ---- descriptors -------------------------------------------------------- */

static void
test_descriptors(void **state)
{
	static const char *const names[] = { "exec", "archive", "example" };
	struct plug pl;
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		plug_load(&pl, names[i]);
		assert_int_equal(pl.p->abi_major, FM_PLUGIN_ABI_MAJOR);
		assert_int_equal(pl.p->abi_minor, FM_PLUGIN_ABI_MINOR);
		assert_int_equal(pl.p->size, sizeof(struct fm_plugin));
		assert_string_equal(pl.p->name, names[i]);
		assert_string_equal(pl.p->version, "0.2.0");
		assert_null(pl.p->config_key);
		assert_non_null(pl.p->topics);
		assert_string_equal(pl.p->topics[0], "");
		assert_null(pl.p->topics[1]);
		assert_non_null(pl.p->init);
		assert_non_null(pl.p->consume);
		assert_non_null(pl.p->fini);
		/* Only the entry symbol is exported. */
		assert_null(dlsym(pl.dl, "fm_config_open"));
		assert_null(dlsym(pl.dl, "plugin"));
		plug_unload(&pl);
	}
}

/* ---- exec --------------------------------------------------------------- */

/* An exec config running /bin/sh -c script with extra arguments. */
static const char *
sh_config(const char *script, const char *args, const char *extra)
{
	return cfgf("{\"argv\": [\"/bin/sh\", \"-c\", %s%s%s]%s%s}",
	    jstr(script), args[0] ? ", " : "", args, extra[0] ? ", " : "",
	    extra);
}

static void
test_exec_stdin_and_placeholders(void **state)
{
	static const char topic[] = "org.example.prod.it-s_a:topic.1";
	char payload[1024], args[2048], *got, *want, out[512], argsf[512];
	struct fm_msg *m;
	struct plug pl;
	size_t len, glen;
	const char *body;

	(void)state;
	snprintf(out, sizeof(out), "%s", tpath("exec-stdin"));
	snprintf(argsf, sizeof(argsf), "%s", tpath("exec-args"));
	plug_load(&pl, "exec");
	snprintf(args, sizeof(args), "%s, %s, %s, %s, %s, %s, %s, %s",
	    jstr(out), jstr(argsf), jstr("{topic}"), jstr("id={msg_id}!"),
	    jstr("{signer}"), jstr("{timestamp}"), jstr("{unknown}"),
	    jstr("{topic}{{msg_id}}"));
	plug_init_ok(&pl, sh_config("cd \"$(dirname \"$0\")\" && "
	    "cat > \"$0\" && f=$1 && shift && "
	    "printf '%s\\n' \"$@\" > \"$f\"; exit 0", args, "\"timeout\": 10"));
	assert_logged("W: argv[9]: '{unknown}' is not a placeholder");
	assert_false(logged("argv[10]"));

	snprintf(payload, sizeof(payload), "{\"text\": \"it's $(touch %s) "
	    "`touch %s` \\\"q\\\" ; touch %s '\\n' \\u00e9\"}",
	    tpath("pwned3"), tpath("pwned4"), tpath("pwned5"));
	m = mkmsg(topic, payload, "2024-abc");
	body = body_of(m, &len);
	want = strndup(body, len);
	assert_int_equal(consume_one(&pl, m), FM_CONSUME_OK);
	got = tu_read_file(out, &glen);
	assert_int_equal(glen, len);
	assert_memory_equal(got, want, len);
	free(got);
	free(want);
	got = tu_read_file(argsf, &glen);
	assert_string_equal(got, "org.example.prod.it-s_a:topic.1\n"
	    "id=2024-abc!\nhub.example.org\n1700000000\n{unknown}\n"
	    "org.example.prod.it-s_a:topic.1{2024-abc}\n");
	free(got);
	assert_false(exists(tpath("pwned3")));
	assert_false(exists(tpath("pwned4")));
	assert_false(exists(tpath("pwned5")));

	/* Absent values: "" (and the host's 0 timestamp). */
	mock_signer = NULL;
	m = NULL;
	{
		char err[FM_ERRLEN];
		static const char b[] = "{\"msg\": {}}";

		assert_int_equal(fm_msg_parse(b, sizeof(b) - 1, NULL, &m,
		    err), 0);
	}
	assert_int_equal(consume_one(&pl, m), FM_CONSUME_OK);
	mock_signer = "hub.example.org";
	got = tu_read_file(argsf, &glen);
	assert_string_equal(got, "\nid=!\n\n0\n{unknown}\n{}\n");
	free(got);
	got = tu_read_file(out, &glen);
	assert_string_equal(got, "{\"msg\": {}}");
	free(got);
	plug_unload(&pl);
}

/* A message parsed from body text (any timestamp, topic or msg_id). */
static struct fm_msg *
rawmsg(const char *body)
{
	struct fm_msg *m = NULL;
	char err[FM_ERRLEN];

	if (fm_msg_parse(body, strlen(body), NULL, &m, err) != 0)
		fail_msg("fm_msg_parse %s: %s", body, err);
	return m;
}

/* consume() of body; returns the verdict and whether the program ran. */
static int
consume_raw(struct plug *pl, const char *body, const char *ranf, bool *ran)
{
	int rc;

	unlink(ranf);
	rc = consume_one(pl, rawmsg(body));
	*ran = exists(ranf);
	return rc;
}

/*
 * Option injection: a placeholder may not start an argument with '-'
 * unless a literal "--" comes before; {topic} and {msg_id} must be of
 * [A-Za-z0-9._:-] without ".."; {timestamp} must be finite, in [0, 1e15).
 * Each refusal drops the message, logged, without running anything.
 */
static void
test_exec_placeholder_rules(void **state)
{
	static const struct {
		const char	*body;
		int		 verdict;
		const char	*log;
	} cases[] = {
		{ "{\"msg_id\": \"-rf\", \"topic\": \"a.b\", \"timestamp\": 1}",
		  FM_CONSUME_DROP, "argv[4] '{msg_id}' would start with '-'" },
		{ "{\"msg_id\": \"--help\", \"topic\": \"a\", \"timestamp\": 1}",
		  FM_CONSUME_DROP, "would start with '-'" },
		{ "{\"msg_id\": \"ok-1\", \"topic\": \"-x.y\", \"timestamp\": 1}",
		  FM_CONSUME_DROP, "argv[5] '{topic}{msg_id}' would start" },
		{ "{\"msg_id\": \"a b\", \"topic\": \"a\", \"timestamp\": 1}",
		  FM_CONSUME_DROP, "{msg_id} has characters outside" },
		{ "{\"msg_id\": \"$(touch x)\", \"topic\": \"a\"}",
		  FM_CONSUME_DROP, "{msg_id} has characters outside" },
		{ "{\"msg_id\": \"x\", \"topic\": \"a/../../etc\"}",
		  FM_CONSUME_DROP, "message x: {topic} has characters outside" },
		{ "{\"msg_id\": \"x\", \"topic\": \"a..b\"}",
		  FM_CONSUME_DROP, "{topic} has characters" },
		{ "{\"msg_id\": \"x\\n\", \"topic\": \"a\"}",
		  FM_CONSUME_DROP, "{msg_id} has characters" },
		{ "{\"msg_id\": \"x\", \"topic\": \"a\", \"timestamp\": NaN}",
		  FM_CONSUME_DROP, "{timestamp} nan is not a number from 0" },
		{ "{\"msg_id\": \"x\", \"topic\": \"a\", \"timestamp\": Infinity}",
		  FM_CONSUME_DROP, "{timestamp} inf is not" },
		{ "{\"msg_id\": \"x\", \"topic\": \"a\", \"timestamp\": -Infinity}",
		  FM_CONSUME_DROP, "{timestamp} -inf is not" },
		{ "{\"msg_id\": \"x\", \"topic\": \"a\", \"timestamp\": 1e30}",
		  FM_CONSUME_DROP, "{timestamp} 1e+30 is not" },
		{ "{\"msg_id\": \"x\", \"topic\": \"a\", \"timestamp\": -5}",
		  FM_CONSUME_DROP, "{timestamp} -5 is not" },
		{ "{\"msg_id\": \"x\", \"topic\": \"a\", \"timestamp\": 1e15}",
		  FM_CONSUME_DROP, "{timestamp} 1e+15 is not" },
		{ "{\"msg_id\": \"2024-A.b_c:d-E\", \"topic\": \"org.x-y_z\", "
		  "\"timestamp\": 1700000000.25}", FM_CONSUME_OK, NULL },
	};
	const char *ranf = tpath("exec-ran"), *argsf = tpath("exec-rule-args");
	char *got;
	struct plug pl;
	bool ran;
	size_t i;
	int rc;

	(void)state;
	plug_load(&pl, "exec");
	/* $0 is the marker file: "{msg_id}" is argv[4], before any "--" */
	plug_init_ok(&pl, sh_config("cat > /dev/null; : > \"$0\"; "
	    "printf '%s\\n' \"$1\" \"$2\" \"$3\" > \"$4\"", cfgf("%s, \"{msg_id}\", "
	    "\"{topic}{msg_id}\", \"--ts={timestamp}\", %s", jstr(ranf),
	    jstr(argsf)), ""));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		M.loglen = 0;
		M.logs[0] = '\0';
		rc = consume_raw(&pl, cases[i].body, ranf, &ran);
		if (rc != cases[i].verdict || ran != (rc == FM_CONSUME_OK))
			fail_msg("%s: verdict %d, ran %d; log:\n%s",
			    cases[i].body, rc, ran, M.logs);
		if (cases[i].log != NULL && !logged(cases[i].log))
			fail_msg("%s: expected '%s' in:\n%s", cases[i].body,
			    cases[i].log, M.logs);
	}
	got = tu_read_file(argsf, NULL);
	assert_string_equal(got, "2024-A.b_c:d-E\norg.x-y_z2024-A.b_c:d-E\n"
	    "--ts=1700000000.25\n");
	free(got);

	/* {signer} too: a CN starting with '-' */
	mock_signer = "-evil.example.org";
	plug_fini(&pl);
	plug_init_ok(&pl, sh_config("cat > /dev/null; : > \"$0\"",
	    cfgf("%s, \"{signer}\"", jstr(ranf)), ""));
	rc = consume_raw(&pl, "{\"msg_id\": \"x\"}", ranf, &ran);
	mock_signer = "hub.example.org";
	assert_int_equal(rc, FM_CONSUME_DROP);
	assert_false(ran);
	assert_logged("argv[4] '{signer}' would start with '-'");
	plug_fini(&pl);

	/* after a literal "--" a leading '-' is the program's business */
	plug_init_ok(&pl, sh_config("cat > /dev/null; printf '%s\\n' \"$@\" > "
	    "\"$0\"", cfgf("%s, \"--\", \"{msg_id}\", \"{timestamp}\"",
	    jstr(argsf)), ""));
	rc = consume_one(&pl, rawmsg("{\"msg_id\": \"-rf\", \"timestamp\": "
	    "12.5}"));
	assert_int_equal(rc, FM_CONSUME_OK);
	got = tu_read_file(argsf, NULL);
	assert_string_equal(got, "--\n-rf\n12.5\n");
	free(got);
	plug_fini(&pl);

	/* values not used by argv are not checked */
	plug_init_ok(&pl, sh_config("cat > /dev/null; : > \"$0\"",
	    jstr(ranf), ""));
	rc = consume_raw(&pl, "{\"msg_id\": \"-rf $(x)\", \"topic\": \"a b\", "
	    "\"timestamp\": NaN}", ranf, &ran);
	assert_int_equal(rc, FM_CONSUME_OK);
	assert_true(ran);
	plug_unload(&pl);
}

/*
 * {/json/pointer} placeholders: a string as it is, a number as its JSON
 * text (integers of any size exactly, floats as Python's repr), true or
 * false; absent, null, an array or an object skips the message (DROP,
 * logged with the placeholder and the msg_id) unless "missing": "empty".
 */
static void
test_exec_json_pointers(void **state)
{
	static const struct {
		const char	*msg;	/* the payload */
		const char	*log;
	} skips[] = {
		{ "{\"n\": 1}", "message id-1: placeholder {/msg/commit/repo} "
		  "is absent (skipped: drop)" },
		{ "{\"commit\": {\"repo\": null}}", "{/msg/commit/repo} is null" },
		{ "{\"commit\": {\"repo\": {\"a\": 1}}}",
		  "{/msg/commit/repo} is an object" },
		{ "{\"commit\": {\"repo\": [\"a\"]}}",
		  "{/msg/commit/repo} is an array" },
		{ "{\"commit\": []}", "{/msg/commit/repo} is absent" },
		{ "{\"commit\": \"rpms\"}", "{/msg/commit/repo} is absent" },
		{ "{\"commit\": {\"repo\": \"a\\u0000b\"}}",
		  "{/msg/commit/repo} is a string holding a NUL character" },
		{ "{\"commit\": {\"repo\": \"-rf\"}}",
		  "message id-1: argv[4] '{/msg/commit/repo}' would start with "
		  "'-' from a placeholder" },
		{ "{\"commit\": {\"repo\": -1}}", "would start with '-'" },
	};
	const char *ranf = tpath("exec-ptr-ran"), *argsf = tpath("exec-ptr-args");
	char body[512], *got;
	struct plug pl;
	bool ran;
	size_t i;
	int rc;

	(void)state;
	plug_load(&pl, "exec");
	plug_init_ok(&pl, sh_config("cat > /dev/null; printf '%s\\n' \"$@\" > "
	    "\"$0\"", cfgf("%s, \"{/msg/commit/repo}\", \"n={/msg/n}\", "
	    "\"{/msg/big}\", \"{/msg/f}\", \"{/msg/e}\", \"{/msg/t}\", "
	    "\"{/msg/u}\", \"{/msg/a~1b/0}\", \"{/msg/commit/repo}/{/msg/n}\", "
	    "\"{/msg/m~0}\"", jstr(argsf)), ""));
	assert_false(logged("W:"));
	rc = consume_one(&pl, rawmsg("{\"msg_id\": \"id-0\", \"msg\": "
	    "{\"commit\": {\"repo\": \"rpms/bash\"}, \"n\": 42, \"big\": "
	    "123456789012345678901234567890, \"f\": 0.1, \"e\": 1e16, "
	    "\"t\": true, \"u\": \"caf\\u00e9 it's $(x) {/msg/n}\", "
	    "\"a/b\": [\"x y\"], \"m~\": false}}"));
	assert_int_equal(rc, FM_CONSUME_OK);
	got = tu_read_file(argsf, NULL);
	assert_string_equal(got, "rpms/bash\nn=42\n"
	    "123456789012345678901234567890\n0.1\n1e+16\ntrue\n"
	    "caf\xc3\xa9 it's $(x) {/msg/n}\nx y\nrpms/bash/42\nfalse\n");
	free(got);
	plug_fini(&pl);

	/* Skipped messages: dropped, logged, nothing run. */
	plug_init_ok(&pl, sh_config("cat > /dev/null; : > \"$0\"",
	    cfgf("%s, \"{/msg/commit/repo}\"", jstr(ranf)), ""));
	for (i = 0; i < sizeof(skips) / sizeof(skips[0]); i++) {
		M.loglen = 0;
		M.logs[0] = '\0';
		snprintf(body, sizeof(body), "{\"msg_id\": \"id-1\", \"msg\": "
		    "%s}", skips[i].msg);
		rc = consume_raw(&pl, body, ranf, &ran);
		if (rc != FM_CONSUME_DROP || ran || !logged(skips[i].log))
			fail_msg("%s: verdict %d, ran %d, expected '%s' in:\n%s",
			    body, rc, ran, skips[i].log, M.logs);
	}
	/* a bad msg_id is not echoed into the log */
	rc = consume_raw(&pl, "{\"msg_id\": \"$(x) y\", \"msg\": {}}", ranf,
	    &ran);
	assert_int_equal(rc, FM_CONSUME_DROP);
	assert_logged("message (bad msg_id): placeholder {/msg/commit/repo}");
	plug_fini(&pl);

	/* "missing": "empty": "" for absent, null, arrays and objects */
	plug_init_ok(&pl, sh_config("cat > /dev/null; printf '%s\\n' \"$@\" > "
	    "\"$0\"", cfgf("%s, \"r={/msg/commit/repo}\", \"{/msg/x}\"",
	    jstr(argsf)), "\"missing\": \"empty\""));
	rc = consume_one(&pl, rawmsg("{\"msg_id\": \"id-2\", \"msg\": "
	    "{\"x\": null}}"));
	assert_int_equal(rc, FM_CONSUME_OK);
	got = tu_read_file(argsf, NULL);
	assert_string_equal(got, "r=\n\n");
	free(got);
	rc = consume_one(&pl, rawmsg("{\"msg_id\": \"id-2\", \"msg\": "
	    "{\"x\": [1], \"commit\": {\"repo\": \"r\"}}}"));
	assert_int_equal(rc, FM_CONSUME_OK);
	got = tu_read_file(argsf, NULL);
	assert_string_equal(got, "r=r\n\n");
	free(got);
	plug_unload(&pl);
}

static void
test_exec_exit_codes(void **state)
{
	static const struct {
		const char	*code;
		int		 custom;	/* with the lists below */
		int		 dflt;		/* with the defaults */
	} cases[] = {
		{ "0", FM_CONSUME_OK, FM_CONSUME_OK },
		{ "75", FM_CONSUME_RETRY, FM_CONSUME_RETRY },
		{ "76", FM_CONSUME_RETRY, FM_CONSUME_DROP },
		{ "65", FM_CONSUME_DROP, FM_CONSUME_DROP },
		{ "3", FM_CONSUME_DROP, FM_CONSUME_DROP },
		{ "255", FM_CONSUME_DROP, FM_CONSUME_DROP },
	};
	const char *script = "cat > /dev/null; exit \"$0\"";
	sigset_t usr1, oldmask;
	void (*oldterm)(int);
	struct plug pl;
	size_t i;
	int pass, rc;

	(void)state;
	plug_load(&pl, "exec");
	for (pass = 0; pass < 2; pass++) {
		plug_init_ok(&pl, sh_config(script, "\"{msg_id}\"", pass == 0 ?
		    "\"retry_exit_codes\": [75, 76], \"drop_exit_codes\": [65]"
		    : ""));
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			rc = consume_one(&pl, mkmsg("org.example.t", "{}",
			    cases[i].code));
			if (rc != (pass == 0 ? cases[i].custom : cases[i].dflt))
				fail_msg("exit %s (pass %d): verdict %d",
				    cases[i].code, pass, rc);
		}
		assert_logged("exit status 3 (drop)");
		assert_logged("message 75: exit status 75 (retry)");
		plug_fini(&pl);
	}
	/*
	 * Killed by a signal we did not send: DROP.  And the child has
	 * default dispositions and an empty mask whatever the hub's are: a
	 * shell keeps an inherited SIG_IGN, and would not die here.
	 */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &oldmask);
	oldterm = signal(SIGTERM, SIG_IGN);
	plug_init_ok(&pl, sh_config("kill -USR1 $$; exit 0", "", ""));
	assert_int_equal(consume_one(&pl, mkmsg("org.example.t", "{}", "x")),
	    FM_CONSUME_DROP);
	assert_logged("message x: killed by signal 10 (drop)");
	plug_fini(&pl);
	plug_init_ok(&pl, sh_config("kill -TERM $$; exit 0", "", ""));
	assert_int_equal(consume_one(&pl, mkmsg("org.example.t", "{}", "y")),
	    FM_CONSUME_DROP);
	assert_logged("message y: killed by signal 15 (drop)");
	signal(SIGTERM, oldterm);
	pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
	plug_unload(&pl);
}

/* The pid in path (written by a child before the timeout), or -1. */
static pid_t
read_pid_file(const char *path)
{
	char *txt;
	pid_t pid;

	if (!exists(path))
		return -1;
	txt = tu_read_file(path, NULL);
	pid = (pid_t)atoi(txt);
	free(txt);
	return pid;
}

/* Whether pid is gone within 5 s; if not, kill it (no stray processes). */
static bool
wait_gone(pid_t pid)
{
	int i;

	for (i = 0; i < 500 && proc_alive(pid); i++)
		usleep(10000);
	if (!proc_alive(pid))
		return true;
	kill(pid, SIGKILL);
	return false;
}

static void
test_exec_timeout(void **state)
{
	const char *pidf = tpath("exec-bgpid");
	struct plug pl;
	double t0, dt;
	char *txt;
	pid_t bg;
	int i;

	(void)state;
	plug_load(&pl, "exec");

	/* SIGTERM to the whole process group after the timeout. */
	plug_init_ok(&pl, sh_config("sleep 5 & echo $! > \"$0\"; wait",
	    jstr(pidf), "\"timeout\": 1"));
	t0 = now_s();
	assert_int_equal(consume_one(&pl, mkmsg("org.example.t", "{}", "t1")),
	    FM_CONSUME_RETRY);
	dt = now_s() - t0;
	if (dt < 0.9 || dt > 3.0)
		fail_msg("timeout took %.2f s", dt);
	assert_logged("message t1: timed out after 1s, killed (retry)");
	txt = tu_read_file(pidf, NULL);
	bg = (pid_t)atoi(txt);
	free(txt);
	assert_true(bg > 0);
	for (i = 0; i < 100 && proc_alive(bg); i++)
		usleep(10000);
	assert_false(proc_alive(bg));
	plug_fini(&pl);

	/*
	 * Processes that left the process group are killed too: one in its
	 * own session (setsid), one double-forked into a new session (its
	 * parent exits at once), one ignoring SIGTERM in its own session.
	 * The program waits until all three wrote their pids (the timeout
	 * leaves room for a loaded machine).
	 */
	plug_init_ok(&pl, sh_config("cd \"$0\" || exit 1; "
	    "setsid sh -c 'echo $$ > p1.tmp; mv p1.tmp p1; exec sleep 1000' & "
	    "(setsid sh -c 'echo $$ > p2.tmp; mv p2.tmp p2; exec sleep 1000' &) ; "
	    "setsid sh -c 'trap \"\" TERM; echo $$ > p3.tmp; mv p3.tmp p3; "
	    "while :; do sleep 1; done' & "
	    "while ! [ -e p1 ] || ! [ -e p2 ] || ! [ -e p3 ]; do sleep 0.1; "
	    "done; wait", jstr(tpath("%s", "")), "\"timeout\": 5"));
	for (i = 1; i <= 3; i++)
		unlink(tpath("p%d", i));
	assert_int_equal(consume_one(&pl, mkmsg("org.example.t", "{}", "t3")),
	    FM_CONSUME_RETRY);
	{
		char bad[256] = "";
		size_t o = 0;

		/* every survivor is killed before failing: none left behind */
		for (i = 1; i <= 3; i++) {
			if ((bg = read_pid_file(tpath("p%d", i))) <= 0)
				o += (size_t)snprintf(bad + o, sizeof(bad) - o,
				    " p%d: no pid written;", i);
			else if (!wait_gone(bg))
				o += (size_t)snprintf(bad + o, sizeof(bad) - o,
				    " p%d (pid %d) survived the timeout;", i,
				    (int)bg);
		}
		if (o > 0)
			fail_msg("setsid children:%s", bad);
	}
	plug_fini(&pl);

	/* A program ignoring SIGTERM gets SIGKILL 2 s later. */
	plug_init_ok(&pl, sh_config("trap '' TERM; sleep 10; exit 0", "",
	    "\"timeout\": 1"));
	t0 = now_s();
	assert_int_equal(consume_one(&pl, mkmsg("org.example.t", "{}", "t2")),
	    FM_CONSUME_RETRY);
	dt = now_s() - t0;
	if (dt < 2.9 || dt > 5.0)
		fail_msg("SIGKILL escalation took %.2f s", dt);
	plug_unload(&pl);
}

/* A payload of about n bytes. */
static char *
big_payload(size_t n)
{
	char *p = malloc(n + 32), *o = p;
	size_t i;

	assert_non_null(p);
	o += sprintf(o, "{\"blob\": \"");
	for (i = 0; i < n; i++)
		*o++ = (char)('a' + i % 26);
	strcpy(o, "\"}");
	return p;
}

static void
test_exec_big_bodies(void **state)
{
	const char *out = tpath("exec-big");
	char *payload = big_payload(1 << 20), *got, *want;
	const char *body;
	struct fm_msg *m;
	struct plug pl;
	sigset_t pending;
	size_t len, glen;
	double t0, dt;

	(void)state;
	plug_load(&pl, "exec");

	/* 1 MiB, much more than a pipe holds, read entirely. */
	plug_init_ok(&pl, sh_config("cat > \"$0\"", jstr(out), ""));
	m = mkmsg("org.example.big", payload, "big1");
	body = body_of(m, &len);
	want = strndup(body, len);
	assert_int_equal(consume_one(&pl, m), FM_CONSUME_OK);
	got = tu_read_file(out, &glen);
	assert_int_equal(glen, len);
	assert_memory_equal(got, want, len);
	free(got);
	free(want);
	plug_fini(&pl);

	/* Not read at all: EPIPE, no SIGPIPE (it would kill this test). */
	plug_init_ok(&pl, sh_config("exit 0", "", ""));
	assert_int_equal(consume_one(&pl, mkmsg("org.example.big", payload,
	    "big2")), FM_CONSUME_OK);
	sigpending(&pending);
	assert_false(sigismember(&pending, SIGPIPE));
	plug_fini(&pl);

	/* Not read and not exiting: the write itself times out. */
	plug_init_ok(&pl, sh_config("sleep 5", "", "\"timeout\": 1"));
	t0 = now_s();
	assert_int_equal(consume_one(&pl, mkmsg("org.example.big", payload,
	    "big3")), FM_CONSUME_RETRY);
	dt = now_s() - t0;
	if (dt < 0.9 || dt > 3.0)
		fail_msg("timeout while writing took %.2f s", dt);
	plug_unload(&pl);
	free(payload);
}

static void
test_exec_env_and_fds(void **state)
{
	const char *out = tpath("exec-env");
	char *got;
	struct plug pl;
	int fd;

	(void)state;
	setenv("FM_TEST_INHERITED", "secret", 1);
	setenv("FM_TEST_REPLACED", "old", 1);
	setenv("LANG", "C.UTF-8", 1);
	fd = open("/dev/null", O_RDONLY);	/* not close-on-exec */
	assert_true(fd > 2);
	plug_load(&pl, "exec");
	/* only PATH, LANG and "env": nothing of the hub's environment */
	plug_init_ok(&pl, sh_config("printf '%s|%s|%s|%s|%s|' \"$FM_TEST_VAR\" "
	    "\"${FM_TEST_INHERITED-unset}\" \"$FM_TEST_REPLACED\" \"$PATH\" "
	    "\"$LANG\" > \"$0\"; "
	    "[ -e /proc/self/fd/$1 ] && echo open >> \"$0\" || "
	    "echo closed >> \"$0\"; /usr/bin/env >> \"$0\"",
	    cfgf("%s, \"%d\"", jstr(out), fd),
	    "\"env\": {\"FM_TEST_VAR\": \"a b 'c' $(d)\", "
	    "\"FM_TEST_REPLACED\": \"new\"}"));
	assert_int_equal(consume_one(&pl, mkmsg("org.example.t", "{}", "e")),
	    FM_CONSUME_OK);
	got = tu_read_file(out, NULL);
	{
		static const char want[] = "a b 'c' $(d)|unset|new|"
		    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:"
		    "/bin|C.UTF-8|closed\n";
		char *l, *nl;

		if (strncmp(got, want, sizeof(want) - 1) != 0)
			fail_msg("child saw:\n%s", got);
		/* env(1)'s view: the shell may add PWD (and OLDPWD) only */
		for (l = got + sizeof(want) - 1; *l; l = nl + 1) {
			assert_non_null(nl = strchr(l, '\n'));
			if (strncmp(l, "PATH=", 5) && strncmp(l, "LANG=", 5) &&
			    strncmp(l, "FM_TEST_VAR=", 12) &&
			    strncmp(l, "FM_TEST_REPLACED=", 17) &&
			    strncmp(l, "PWD=", 4) && strncmp(l, "OLDPWD=", 7))
				fail_msg("unexpected variable: %.*s",
				    (int)(nl - l), l);
		}
	}
	free(got);
	plug_fini(&pl);

	/* "env" may set PATH and LANG; LANG defaults to C.UTF-8 */
	unsetenv("LANG");
	plug_init_ok(&pl, sh_config("printf '%s|%s' \"$PATH\" \"$LANG\" > "
	    "\"$0\"", jstr(out), "\"env\": {\"PATH\": \"/opt/x/bin\"}"));
	assert_int_equal(consume_one(&pl, mkmsg("org.example.t", "{}", "e2")),
	    FM_CONSUME_OK);
	got = tu_read_file(out, NULL);
	assert_string_equal(got, "/opt/x/bin|C.UTF-8");
	free(got);
	unsetenv("FM_TEST_INHERITED");
	unsetenv("FM_TEST_REPLACED");
	close(fd);
	plug_unload(&pl);
}

static void
test_exec_topics_filter(void **state)
{
	const char *out = tpath("exec-topics");
	struct plug pl;

	(void)state;
	plug_load(&pl, "exec");
	plug_init_ok(&pl, sh_config("cat > /dev/null; echo \"$1\" >> \"$0\"",
	    cfgf("%s, \"{topic}\"", jstr(out)),
	    "\"topics\": [\"org.example.*.keep\", \"exact.topic\"]"));
	assert_int_equal(consume_one(&pl, mkmsg("org.example.prod.keep", "{}",
	    "1")), FM_CONSUME_OK);
	assert_int_equal(consume_one(&pl, mkmsg("org.example.prod.skip", "{}",
	    "2")), FM_CONSUME_OK);
	assert_int_equal(consume_one(&pl, mkmsg("exact.topic", "{}", "3")),
	    FM_CONSUME_OK);
	assert_int_equal(consume_one(&pl, mkmsg("exact.topic.more", "{}",
	    "4")), FM_CONSUME_OK);
	/* '*' spans dots too (fnmatch without FNM_PERIOD/PATHNAME) */
	assert_int_equal(consume_one(&pl, mkmsg("org.example.a.b.keep", "{}",
	    "5")), FM_CONSUME_OK);
	assert_int_equal(consume_one(&pl, mkmsg("org.example.keep", "{}",
	    "6")), FM_CONSUME_OK);
	{
		char *got = tu_read_file(out, NULL);

		assert_string_equal(got, "org.example.prod.keep\n"
		    "exact.topic\norg.example.a.b.keep\n");
		free(got);
	}
	plug_unload(&pl);
}

static void
test_exec_bad_configs(void **state)
{
	static const struct {
		const char	*config;
		const char	*log;
	} cases[] = {
		{ "{}", "E: config: 'argv' is required" },
		{ "{\"argv\": []}", "'argv' is required" },
		{ "{\"argv\": \"/bin/true\"}", "E: config: 'argv' must be an "
		    "array of strings, not a string" },
		{ "{\"argv\": [\"/bin/true\", 1]}", "'argv[1]' must be a "
		    "string, not a number" },
		{ "{\"argv\": [\"true\"]}", "argv[0] 'true' must be an "
		    "absolute path" },
		{ "{\"argv\": [\"/nonexistent/prog\"]}", "argv[0] "
		    "'/nonexistent/prog': No such file or directory" },
		{ "{\"argv\": [\"/etc/passwd\"]}", "Permission denied" },
		{ "{\"argv\": [\"/bin/true\"], \"timeout\": \"30\"}",
		    "'timeout' must be an integer, not a string" },
		{ "{\"argv\": [\"/bin/true\"], \"timeout\": 0}",
		    "'timeout' must be between 1 and 86400" },
		{ "{\"argv\": [\"/bin/true\"], \"timeout\": 1.5}",
		    "'timeout' must be an integer, not a float" },
		{ "{\"argv\": [\"/bin/true\"], \"topics\": \"a.b\"}",
		    "'topics' must be an array of strings" },
		{ "{\"argv\": [\"/bin/true\"], \"env\": [\"A=B\"]}",
		    "'env' must be an object, not an array" },
		{ "{\"argv\": [\"/bin/true\"], \"env\": {\"A\": 1}}",
		    "'env': 'A' must be a string, not a number" },
		{ "{\"argv\": [\"/bin/true\"], \"env\": {\"A=B\": \"x\"}}",
		    "'env': bad variable name 'A=B'" },
		{ "{\"argv\": [\"/bin/true\"], \"env\": {\"\": \"x\"}}",
		    "'env': bad variable name ''" },
		{ "{\"argv\": [\"/bin/true\"], \"retry_exit_codes\": [256]}",
		    "'retry_exit_codes[0]' must be between 1 and 255" },
		{ "{\"argv\": [\"/bin/true\"], \"retry_exit_codes\": 75}",
		    "'retry_exit_codes' must be an array of integers" },
		{ "{\"argv\": [\"/bin/true\"], \"drop_exit_codes\": [\"65\"]}",
		    "'drop_exit_codes[0]' must be an integer, not a string" },
		{ "{\"argv\": [\"/bin/true\"], \"retry_exit_codes\": [75, 3], "
		    "\"drop_exit_codes\": [3]}", "exit code 3 is in both" },
		{ "{\"argv\": [\"/bin/true\"], \"drop_exit_codes\": [75]}",
		    "exit code 75 is in both" },
		/* (invalid JSON and duplicate keys: the hub refuses them) */
		{ "[\"/bin/true\"]", "E: config: config is not an object" },
		{ "{\"argv\": [\"/bin/echo\", \"{/msg/a\"]}", "E: config: "
		    "argv[1]: '{/msg/a' has \"{/\" without a closing '}'" },
		{ "{\"argv\": [\"/bin/echo\", \"x={/msg/~2}\"]}", "E: config: "
		    "argv[1]: '{/msg/~2}' is not a JSON Pointer" },
		{ "{\"argv\": [\"/bin/true\"], \"missing\": \"sometimes\"}",
		    "E: config: 'missing' must be \"skip\" or \"empty\", not "
		    "'sometimes'" },
		{ "{\"argv\": [\"/bin/true\"], \"missing\": false}",
		    "E: config: 'missing' must be a string, not a boolean" },
	};
	struct plug pl;
	size_t i;

	(void)state;
	plug_load(&pl, "exec");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (plug_init(&pl, cases[i].config) == 0)
			fail_msg("init accepted %s", cases[i].config);
		assert_null(pl.state);
		if (!logged(cases[i].log))
			fail_msg("%s: expected '%s' in:\n%s", cases[i].config,
			    cases[i].log, M.logs);
	}
	plug_unload(&pl);
}

static void
test_exec_unknown_keys_and_reload(void **state)
{
	const char *a = tpath("exec-reload-a"), *b = tpath("exec-reload-b");
	const char *script = "cat > /dev/null; echo \"$1\" >> \"$0\"";
	const char *prog = tpath("exec-prog");
	char cfg1[4096], cfg2[4096];
	struct plug pl;
	char *got;

	(void)state;
	plug_load(&pl, "exec");
	snprintf(cfg1, sizeof(cfg1), "%s", sh_config(script,
	    cfgf("%s, \"{msg_id}\"", jstr(a)), "\"bogus\": 1, \"comand\": "
	    "\"x\", \"timeout\": 5"));
	plug_init_ok(&pl, cfg1);
	assert_logged("W: unknown config key 'bogus'\n");
	assert_logged("W: unknown config key 'comand'\n");
	assert_false(logged("'timeout'"));
	assert_int_equal(consume_one(&pl, mkmsg("t", "{}", "m1")),
	    FM_CONSUME_OK);

	/* reload: the new config is used; a bad one keeps the old. */
	snprintf(cfg2, sizeof(cfg2), "%s", sh_config(script,
	    cfgf("%s, \"{msg_id}\"", jstr(b)), ""));
	M.config = cfg2;
	assert_int_equal(pl.p->reload(pl.state), 0);
	assert_int_equal(consume_one(&pl, mkmsg("t", "{}", "m2")),
	    FM_CONSUME_OK);
	M.config = "{\"argv\": 1}";
	assert_int_not_equal(pl.p->reload(pl.state), 0);
	assert_logged("reload failed; keeping the previous config");
	assert_int_equal(consume_one(&pl, mkmsg("t", "{}", "m3")),
	    FM_CONSUME_OK);
	got = tu_read_file(a, NULL);
	assert_string_equal(got, "m1\n");
	free(got);
	got = tu_read_file(b, NULL);
	assert_string_equal(got, "m2\nm3\n");
	free(got);
	plug_fini(&pl);

	/* A program that cannot be started at run time: RETRY. */
	write_file(prog, "#!/bin/sh\ncat > /dev/null\n");
	assert_int_equal(chmod(prog, 0755), 0);
	plug_init_ok(&pl, cfgf("{\"argv\": [%s]}", jstr(prog)));
	assert_int_equal(consume_one(&pl, mkmsg("t", "{}", "r1")),
	    FM_CONSUME_OK);
	assert_int_equal(chmod(prog, 0644), 0);
	assert_int_equal(consume_one(&pl, mkmsg("t", "{}", "r2")),
	    FM_CONSUME_RETRY);
	assert_logged("cannot start: Permission denied (retry)");
	unlink(prog);
	assert_int_equal(consume_one(&pl, mkmsg("t", "{}", "r3")),
	    FM_CONSUME_RETRY);
	assert_logged("cannot start: No such file or directory (retry)");
	plug_unload(&pl);
}

/* Several consume() at once (a consumer with "threads" > 1). */
struct par {
	struct plug	*pl;
	int		 id;
	int		 bad;
};

static void *
exec_par_thread(void *arg)
{
	struct par *p = arg;
	char id[32];
	int i;

	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "%d-%d", p->id, i);
		if (consume_one(p->pl, mkmsg("t", "{}", id)) != FM_CONSUME_OK)
			p->bad++;
	}
	return NULL;
}

static void
test_exec_concurrent(void **state)
{
	const char *out = tpath("exec-par");
	struct par par[4];
	pthread_t th[4];
	struct plug pl;
	char *got, *l;
	int i, n = 0;

	(void)state;
	plug_load(&pl, "exec");
	plug_init_ok(&pl, sh_config("cat > /dev/null; echo \"$1\" >> \"$0\"",
	    cfgf("%s, \"{msg_id}\"", jstr(out)), ""));
	for (i = 0; i < 4; i++) {
		par[i].pl = &pl;
		par[i].id = i;
		par[i].bad = 0;
		assert_int_equal(pthread_create(&th[i], NULL, exec_par_thread,
		    &par[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(par[i].bad, 0);
	}
	got = tu_read_file(out, NULL);
	for (l = got; (l = strchr(l, '\n')) != NULL; l++)
		n++;
	assert_int_equal(n, 40);
	free(got);
	plug_unload(&pl);
}

/* ---- archive ------------------------------------------------------------ */

static char *
archive_file(const char *dir, const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return tu_read_file(path, NULL);
}

static void
test_archive_exact_bytes(void **state)
{
	const char *dir = tpath("arch1/sub/dir");
	char day[16], name[1024], *want, *got;
	struct fm_msg *m1, *m2;
	const char *b1, *b2;
	struct plug pl;
	size_t l1, l2;
	struct stat sb;

	(void)state;
	today_utc(day);
	plug_load(&pl, "archive");
	plug_init_ok(&pl, cfgf("{\"dir\": %s}", jstr(dir)));
	assert_logged("I: appending to ");
	assert_int_equal(stat(dir, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0750);

	m1 = mkmsg("org.example.prod.a", "{\"text\": \"it's \\u00e9 \\\"x\\\""
	    "\\n\"}", "id-1");
	m2 = mkmsg("org.example.prod.b", "{\"n\": 1.5}", "id-2");
	b1 = body_of(m1, &l1);
	b2 = body_of(m2, &l2);
	want = malloc(l1 + l2 + 3);
	memcpy(want, b1, l1);
	want[l1] = '\n';
	memcpy(want + l1 + 1, b2, l2);
	strcpy(want + l1 + 1 + l2, "\n");
	assert_int_equal(pl.p->consume(pl.state, m1), FM_CONSUME_OK);
	assert_int_equal(pl.p->consume(pl.state, m2), FM_CONSUME_OK);
	fm_msg_unref(m1);
	fm_msg_unref(m2);
	snprintf(name, sizeof(name), "fedmsg-%s.jsonl", day);
	got = archive_file(dir, name);
	assert_string_equal(got, want);
	free(got);
	free(want);
	snprintf(name, sizeof(name), "%s/fedmsg-%s.jsonl", dir, day);
	assert_int_equal(stat(name, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0640);
	plug_unload(&pl);
}

static void
test_archive_newlines(void **state)
{
	static const char body[] = "\r\n{\"topic\" :\n\"a.b\",\r\n\"msg\":"
	    "{\"z\":\"line\\nbreak\"}}\n";
	const char *dir = tpath("arch-nl");
	struct fm_msg *m = NULL;
	char err[FM_ERRLEN], *got, *want;
	struct plug pl;
	size_t i;

	(void)state;
	assert_int_equal(fm_msg_parse(body, sizeof(body) - 1, NULL, &m, err),
	    0);
	plug_load(&pl, "archive");
	plug_init_ok(&pl, cfgf("{\"dir\": %s, \"rotate_daily\": false}",
	    jstr(dir)));
	assert_int_equal(consume_one(&pl, m), FM_CONSUME_OK);
	got = archive_file(dir, "fedmsg.jsonl");
	want = strdup(body);
	for (i = 0; want[i] != '\0'; i++)
		if (want[i] == '\n' || want[i] == '\r')
			want[i] = ' ';
	assert_int_equal(strlen(got), sizeof(body));
	assert_memory_equal(got, want, sizeof(body) - 1);
	assert_int_equal(got[sizeof(body) - 1], '\n');
	/* Still the same message. */
	assert_int_equal(fm_msg_parse(got, sizeof(body) - 1, NULL, &m, err),
	    0);
	assert_string_equal(fm_msg_topic(m), "a.b");
	fm_msg_unref(m);
	free(got);
	free(want);
	plug_unload(&pl);
}

static void
test_archive_rotation(void **state)
{
	const char *dir = tpath("arch-rot");
	char id[16], *got, *big;
	struct fm_msg *m;
	struct plug pl;
	size_t len, i;

	(void)state;
	m = mkmsg("org.example.rot", "{}", "id-0");
	(void)body_of(m, &len);
	fm_msg_unref(m);
	plug_load(&pl, "archive");
	/* Room for two lines (and a bit) per file. */
	plug_init_ok(&pl, cfgf("{\"dir\": %s, \"prefix\": \"rot\", "
	    "\"rotate_daily\": false, \"max_bytes\": %zu}", jstr(dir),
	    2 * (len + 1) + 3));
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "id-%zu", i);
		assert_int_equal(consume_one(&pl, mkmsg("org.example.rot",
		    "{}", id)), FM_CONSUME_OK);
	}
	got = archive_file(dir, "rot.jsonl");
	assert_int_equal(strlen(got), 2 * (len + 1));
	assert_non_null(strstr(got, "\"id-0\""));
	assert_non_null(strstr(got, "\"id-1\""));
	free(got);
	got = archive_file(dir, "rot.1.jsonl");
	assert_int_equal(strlen(got), 2 * (len + 1));
	assert_non_null(strstr(got, "\"id-2\""));
	assert_non_null(strstr(got, "\"id-3\""));
	free(got);
	got = archive_file(dir, "rot.2.jsonl");
	assert_int_equal(strlen(got), len + 1);
	assert_non_null(strstr(got, "\"id-4\""));
	free(got);

	/* Larger than max_bytes alone: a file of its own. */
	big = big_payload(1000);
	assert_int_equal(consume_one(&pl, mkmsg("org.example.rot", big,
	    "big")), FM_CONSUME_OK);
	assert_int_equal(consume_one(&pl, mkmsg("org.example.rot", "{}",
	    "id-5")), FM_CONSUME_OK);
	free(big);
	got = archive_file(dir, "rot.3.jsonl");
	assert_true(strlen(got) > 1000);
	assert_non_null(strstr(got, "\"big\""));
	free(got);
	got = archive_file(dir, "rot.4.jsonl");
	assert_non_null(strstr(got, "\"id-5\""));
	free(got);
	plug_fini(&pl);

	/* Restart: continues the latest file. */
	plug_init_ok(&pl, cfgf("{\"dir\": %s, \"prefix\": \"rot\", "
	    "\"rotate_daily\": false, \"max_bytes\": %zu}", jstr(dir),
	    2 * (len + 1) + 3));
	assert_logged("rot.4.jsonl");
	assert_int_equal(consume_one(&pl, mkmsg("org.example.rot", "{}",
	    "id-6")), FM_CONSUME_OK);
	got = archive_file(dir, "rot.4.jsonl");
	assert_int_equal(strlen(got), 2 * (len + 1));
	free(got);
	assert_false(exists(cfgf("%s/rot.5.jsonl", dir)));
	plug_unload(&pl);
}

static void
test_archive_continue_today(void **state)
{
	const char *dir = tpath("arch-cont");
	char day[16], *got, *want;
	struct fm_msg *m;
	const char *b;
	struct plug pl;
	size_t len;

	(void)state;
	today_utc(day);
	assert_int_equal(mkdir(dir, 0700), 0);
	write_file(cfgf("%s/fedmsg-%s.jsonl", dir, day), "old0\n");
	write_file(cfgf("%s/fedmsg-%s.2.jsonl", dir, day), "old2\n");
	write_file(cfgf("%s/fedmsg-%s.10x.jsonl", dir, day), "junk\n");
	write_file(cfgf("%s/fedmsg-%s.03.jsonl", dir, day), "junk\n");
	write_file(cfgf("%s/fedmsg-2001-01-01.7.jsonl", dir), "other day\n");
	write_file(cfgf("%s/other-%s.9.jsonl", dir, day), "other prefix\n");
	plug_load(&pl, "archive");
	plug_init_ok(&pl, cfgf("{\"dir\": %s}", jstr(dir)));
	m = mkmsg("org.example.c", "{}", "cont");
	b = body_of(m, &len);
	want = malloc(len + 8);
	memcpy(want, "old2\n", 5);
	memcpy(want + 5, b, len);
	strcpy(want + 5 + len, "\n");
	assert_int_equal(consume_one(&pl, m), FM_CONSUME_OK);
	got = tu_read_file(cfgf("%s/fedmsg-%s.2.jsonl", dir, day), NULL);
	assert_string_equal(got, want);
	free(got);
	free(want);
	got = tu_read_file(cfgf("%s/fedmsg-%s.jsonl", dir, day), NULL);
	assert_string_equal(got, "old0\n");
	free(got);
	plug_unload(&pl);
}

struct apar {
	struct plug	*pl;
	struct fm_msg	**msgs;
	int		 n;
	int		 bad;
};

static void *
archive_par_thread(void *arg)
{
	struct apar *p = arg;
	int i;

	for (i = 0; i < p->n; i++)
		if (p->pl->p->consume(p->pl->state, p->msgs[i]) !=
		    FM_CONSUME_OK)
			p->bad++;
	return NULL;
}

static void
test_archive_concurrent(void **state)
{
	enum { NT = 4, NM = 250 };
	const char *dir = tpath("arch-par");
	struct fm_msg *msgs[NT][NM];
	struct apar par[NT];
	pthread_t th[NT];
	struct plug pl;
	char id[32], *got, *l, *nl;
	size_t len, n = 0;
	int t, i;

	(void)state;
	for (t = 0; t < NT; t++)
		for (i = 0; i < NM; i++) {
			snprintf(id, sizeof(id), "thread-%d-msg-%03d", t, i);
			msgs[t][i] = mkmsg("org.example.par", "{\"k\": "
			    "\"some text to make lines longer\"}", id);
		}
	(void)body_of(msgs[0][0], &len);
	plug_load(&pl, "archive");
	plug_init_ok(&pl, cfgf("{\"dir\": %s, \"rotate_daily\": false, "
	    "\"max_bytes\": 0, \"fsync\": true}", jstr(dir)));
	for (t = 0; t < NT; t++) {
		par[t].pl = &pl;
		par[t].msgs = msgs[t];
		par[t].n = NM;
		par[t].bad = 0;
		assert_int_equal(pthread_create(&th[t], NULL,
		    archive_par_thread, &par[t]), 0);
	}
	for (t = 0; t < NT; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(par[t].bad, 0);
	}
	got = archive_file(dir, "fedmsg.jsonl");
	for (l = got; (nl = strchr(l, '\n')) != NULL; l = nl + 1) {
		assert_int_equal((size_t)(nl - l), len);
		assert_memory_equal(l, "{\"i\":1,\"msg\":", 13);
		n++;
	}
	assert_int_equal(*l, '\0');
	assert_int_equal(n, NT * NM);
	free(got);
	for (t = 0; t < NT; t++)
		for (i = 0; i < NM; i++)
			fm_msg_unref(msgs[t][i]);
	plug_unload(&pl);
}

static void
test_archive_write_errors(void **state)
{
	const char *dir = tpath("arch-err");
	struct rlimit old, lim;
	struct fm_msg *m1, *m2;
	struct plug pl;
	size_t l1, l2;
	struct stat sb;
	char path[1024];
	void (*oldh)(int);
	char *got;

	(void)state;
	m1 = mkmsg("org.example.err", "{}", "err-1");
	m2 = mkmsg("org.example.err", "{}", "err-2");
	(void)body_of(m1, &l1);
	(void)body_of(m2, &l2);
	plug_load(&pl, "archive");
	plug_init_ok(&pl, cfgf("{\"dir\": %s, \"rotate_daily\": false}",
	    jstr(dir)));
	snprintf(path, sizeof(path), "%s/fedmsg.jsonl", dir);
	assert_int_equal(pl.p->consume(pl.state, m1), FM_CONSUME_OK);

	/* A file size limit: the write is cut short, then refused. */
	oldh = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = l1 + 1 + 10;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(pl.p->consume(pl.state, m2), FM_CONSUME_RETRY);
	lim.rlim_cur = l1 + 1;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, l1 + 1);	/* the partial line undone */
	assert_int_equal(pl.p->consume(pl.state, m2), FM_CONSUME_RETRY);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, oldh);
	assert_logged("short write (10 of ");
	assert_logged("write: File too large (retry err-2)");

	/* The retry works. */
	assert_int_equal(pl.p->consume(pl.state, m2), FM_CONSUME_OK);
	got = tu_read_file(path, NULL);
	assert_int_equal(strlen(got), l1 + l2 + 2);
	assert_non_null(strstr(got, "\"err-1\""));
	assert_non_null(strstr(got, "\"err-2\""));
	free(got);
	fm_msg_unref(m1);
	fm_msg_unref(m2);
	plug_unload(&pl);
}

/*
 * A symlink named like an archive file is never followed (it used to
 * redirect our appends to its target), nor a hard link or a FIFO; a
 * directory writable by others, or owned by someone else, is refused.
 */
static void
test_archive_unsafe_paths(void **state)
{
	const char *dir = tpath("arch-unsafe"), *target = tpath("victim");
	char lpath[1024], *got;
	struct plug pl;
	struct stat sb;

	(void)state;
	write_file(target, "precious\n");
	assert_int_equal(mkdir(dir, 0750), 0);
	snprintf(lpath, sizeof(lpath), "%s/fedmsg.jsonl", dir);
	assert_int_equal(symlink(target, lpath), 0);
	plug_load(&pl, "archive");
	if (plug_init(&pl, cfgf("{\"dir\": %s, \"rotate_daily\": false}",
	    jstr(dir))) == 0) {
		assert_int_equal(consume_one(&pl, mkmsg("t", "{}", "s1")),
		    FM_CONSUME_RETRY);
		plug_fini(&pl);
	}
	assert_logged("(a symbolic link: refused)");
	got = tu_read_file(target, NULL);
	assert_string_equal(got, "precious\n");
	free(got);
	assert_int_equal(lstat(lpath, &sb), 0);
	assert_true(S_ISLNK(sb.st_mode));
	unlink(lpath);

	/* a hard link to another file, and a FIFO (which would block) */
	assert_int_equal(link(target, lpath), 0);
	assert_int_not_equal(plug_init(&pl, cfgf("{\"dir\": %s, "
	    "\"rotate_daily\": false}", jstr(dir))), 0);
	assert_logged("a file with other hard links: refused");
	unlink(lpath);
	assert_int_equal(mkfifo(lpath, 0640), 0);
	assert_int_not_equal(plug_init(&pl, cfgf("{\"dir\": %s, "
	    "\"rotate_daily\": false}", jstr(dir))), 0);
	/* (refused by the open itself: no reader, ENXIO) */
	assert_logged("arch-unsafe/fedmsg.jsonl: ");
	unlink(lpath);
	got = tu_read_file(target, NULL);
	assert_string_equal(got, "precious\n");
	free(got);

	/* group or other writable: refused; 0750 or 0700 is fine */
	assert_int_equal(chmod(dir, 0770), 0);
	assert_int_not_equal(plug_init(&pl, cfgf("{\"dir\": %s}", jstr(dir))),
	    0);
	assert_logged("is group or other writable (mode 0770): refused");
	assert_int_equal(chmod(dir, 01777), 0);
	assert_int_not_equal(plug_init(&pl, cfgf("{\"dir\": %s}", jstr(dir))),
	    0);
	assert_logged("(mode 1777): refused");
	assert_int_equal(chmod(dir, 0700), 0);
	plug_init_ok(&pl, cfgf("{\"dir\": %s}", jstr(dir)));
	plug_fini(&pl);

	/* owned by another user (root can make one) */
	if (geteuid() == 0) {
		assert_int_equal(chown(dir, 65534, 65534), 0);
		assert_int_not_equal(plug_init(&pl, cfgf("{\"dir\": %s}",
		    jstr(dir))), 0);
		assert_logged("is owned by uid 65534, not by us (uid 0): "
		    "refused");
		assert_int_equal(chown(dir, 0, 0), 0);
	}
	plug_unload(&pl);
}

static void
test_archive_configs(void **state)
{
	const char *file = tpath("arch-a-file"), *dir = tpath("arch-cfg");
	const struct {
		const char	*config;
		const char	*log;
	} cases[] = {
		{ "{\"dir\": \"relative/dir\"}", "'dir' must be an absolute "
		    "path, not 'relative/dir'" },
		{ "{\"dir\": 5}", "'dir' must be a string, not a number" },
		{ cfgf("{\"dir\": %s, \"prefix\": \"a/b\"}", jstr(dir)),
		    "'prefix' 'a/b' must be" },
		{ "{\"dir\": \"/tmp\", \"prefix\": \".hidden\"}",
		    "'prefix' '.hidden' must be" },
		{ "{\"dir\": \"/tmp\", \"prefix\": \"\"}", "'prefix' '' must" },
		{ "{\"dir\": \"/tmp\", \"max_bytes\": \"big\"}",
		    "'max_bytes' must be an integer, not a string" },
		{ "{\"dir\": \"/tmp\", \"max_bytes\": -1}",
		    "'max_bytes' must be between 0 and" },
		{ "{\"dir\": \"/tmp\", \"rotate_daily\": \"yes\"}",
		    "'rotate_daily' must be a boolean, not a string" },
		{ "{\"dir\": \"/tmp\", \"fsync\": 1}",
		    "'fsync' must be a boolean, not a number" },
		{ cfgf("{\"dir\": %s}", jstr(cfgf("%s/sub", file))),
		    "cannot create" },
	};
	struct plug pl;
	size_t i;
	char *c[sizeof(cases) / sizeof(cases[0])];

	(void)state;
	write_file(file, "x");
	plug_load(&pl, "archive");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		c[i] = strdup(cases[i].config);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (plug_init(&pl, c[i]) == 0)
			fail_msg("init accepted %s", c[i]);
		if (!logged(cases[i].log))
			fail_msg("%s: expected '%s' in:\n%s", c[i],
			    cases[i].log, M.logs);
		free(c[i]);
	}

	/* Unknown keys warn; reload switches files. */
	plug_init_ok(&pl, cfgf("{\"dir\": %s, \"max_size\": 5, \"rotate_"
	    "daily\": false}", jstr(dir)));
	assert_logged("W: unknown config key 'max_size'\n");
	assert_int_equal(consume_one(&pl, mkmsg("t", "{}", "r1")),
	    FM_CONSUME_OK);
	M.config = cfgf("{\"dir\": %s, \"prefix\": \"second\", "
	    "\"rotate_daily\": false}", jstr(dir));
	assert_int_equal(pl.p->reload(pl.state), 0);
	assert_int_equal(consume_one(&pl, mkmsg("t", "{}", "r2")),
	    FM_CONSUME_OK);
	M.config = "{\"dir\": \"nope\"}";
	assert_int_not_equal(pl.p->reload(pl.state), 0);
	assert_logged("reload failed; keeping ");
	assert_int_equal(consume_one(&pl, mkmsg("t", "{}", "r3")),
	    FM_CONSUME_OK);
	{
		char *a = archive_file(dir, "fedmsg.jsonl");
		char *b = archive_file(dir, "second.jsonl");

		assert_non_null(strstr(a, "\"r1\""));
		assert_null(strstr(a, "\"r2\""));
		assert_non_null(strstr(b, "\"r2\""));
		assert_non_null(strstr(b, "\"r3\""));
		free(a);
		free(b);
	}
	plug_unload(&pl);
}

/* ---- example ------------------------------------------------------------ */

static void
test_example(void **state)
{
	static const char *const topics[] = {
		"org.fedoraproject.prod.buildsys.tag",
		"org.fedoraproject.prod.buildsys.untag",
		"org.fedoraproject.prod.git.receive",
		"a.\"q\\.c.d.e.f",
		"short",
	};
	/* "agent": a string twice, a number, absent, a string with '"' */
	static const char *const payloads[] = {
		"{\"agent\": \"ralph\"}", "{\"agent\": \"ralph\"}",
		"{\"agent\": 7}", "{}", "{\"agent\": \"a\\\"b\\u00e9\"}",
	};
	struct fm_msg *m = NULL;
	struct plug pl;
	char err[FM_ERRLEN], t[32], p[64];
	size_t i;

	(void)state;
	plug_load(&pl, "example");
	plug_init_ok(&pl, "{\"count_every\": 2, \"interval_ms\": 1000}");
	assert_int_equal(M.ntimer, 1);
	assert_int_equal(M.interval[0], 1000);
	assert_ptr_equal(M.timer_arg[0], pl.state);
	for (i = 0; i < 5; i++)
		assert_int_equal(consume_one(&pl, mkmsg(topics[i], payloads[i],
		    "x")), FM_CONSUME_OK);
	assert_logged("I: 2 messages, last org.fedoraproject.prod.buildsys."
	    "untag\n");
	assert_logged("I: 4 messages, last a.\"q\\.c.d.e.f\n");
	assert_false(logged("5 messages"));
	/* No topic: DROP. */
	assert_int_equal(fm_msg_parse("{}", 2, NULL, &m, err), 0);
	assert_int_equal(consume_one(&pl, m), FM_CONSUME_DROP);

	M.timer_fn[0](M.timer_arg[0]);
	assert_int_equal(M.npub, 1);
	assert_string_equal(M.pub_modname[0], "example");
	assert_string_equal(M.pub_topic[0], "summary");
	assert_string_equal(M.pub_json[0], "{\"total\":5,\"other\":0,"
	    "\"prefixes\":{\"org.fedoraproject.prod.buildsys\":2,"
	    "\"org.fedoraproject.prod.git\":1,\"a.\\\"q\\\\.c.d\":1,"
	    "\"short\":1},\"field\":\"/msg/agent\",\"values\":{\"ralph\":2,"
	    "\"a\\\"b\xc3\xa9\":1},\"other_values\":0,\"no_value\":2}");
	/* It is JSON the library accepts as a payload. */
	m = mkmsg("t", M.pub_json[0], "y");
	fm_msg_unref(m);

	/* Counts restart; more prefixes and values than kept: "other*". */
	for (i = 0; i < 20; i++) {
		snprintf(t, sizeof(t), "p.%zu.x.y.z", i);
		snprintf(p, sizeof(p), "{\"agent\": \"u%zu\"}", i);
		assert_int_equal(consume_one(&pl, mkmsg(t, p, "x")),
		    FM_CONSUME_OK);
	}
	M.timer_fn[0](M.timer_arg[0]);
	assert_int_equal(M.npub, 2);
	assert_non_null(strstr(M.pub_json[1], "{\"total\":20,\"other\":4,"));
	assert_non_null(strstr(M.pub_json[1], "\"p.15.x.y\":1},"));
	assert_non_null(strstr(M.pub_json[1], "\"u15\":1},\"other_values\":4,"
	    "\"no_value\":0}"));
	M.timer_fn[0](M.timer_arg[0]);
	assert_string_equal(M.pub_json[2], "{\"total\":0,\"other\":0,"
	    "\"prefixes\":{},\"field\":\"/msg/agent\",\"values\":{},"
	    "\"other_values\":0,\"no_value\":0}");
	plug_fini(&pl);

	/* A nested field named by the config. */
	plug_init_ok(&pl, "{\"field\": \"/msg/build/tags/1\"}");
	assert_int_equal(consume_one(&pl, mkmsg("a.b.c.d.e", "{\"build\": "
	    "{\"tags\": [\"f40\", \"f41-updates\"]}}", "x")), FM_CONSUME_OK);
	assert_int_equal(consume_one(&pl, mkmsg("a.b.c.d.e", "{\"build\": "
	    "{\"tags\": [\"f40\"]}}", "x")), FM_CONSUME_OK);
	M.timer_fn[0](M.timer_arg[0]);
	assert_non_null(strstr(M.pub_json[0], "\"field\":\"/msg/build/tags/1\","
	    "\"values\":{\"f41-updates\":1},\"other_values\":0,"
	    "\"no_value\":1}"));
	plug_fini(&pl);

	/* Defaults, unknown keys, bad values. */
	plug_init_ok(&pl, "{\"count_evry\": 3}");
	assert_logged("W: unknown config key 'count_evry'\n");
	assert_int_equal(M.interval[0], 60000);
	plug_fini(&pl);
	assert_int_not_equal(plug_init(&pl, "{\"count_every\": 0}"), 0);
	assert_logged("E: config: 'count_every' must be between 1 and");
	assert_int_not_equal(plug_init(&pl, "{\"interval_ms\": true}"), 0);
	assert_logged("'interval_ms' must be an integer, not a boolean");
	assert_int_equal(M.ntimer, 0);
	assert_int_not_equal(plug_init(&pl, "{\"field\": \"msg/agent\"}"), 0);
	assert_logged("E: config: 'field' is not a JSON Pointer: msg/agent");
	assert_int_not_equal(plug_init(&pl, "{\"field\": 3}"), 0);
	assert_logged("'field' must be a string, not a number");
	plug_unload(&pl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cfg_values),
		cmocka_unit_test(test_cfg_errors),
		cmocka_unit_test(test_descriptors),
		cmocka_unit_test(test_exec_stdin_and_placeholders),
		cmocka_unit_test(test_exec_placeholder_rules),
		cmocka_unit_test(test_exec_json_pointers),
		cmocka_unit_test(test_exec_exit_codes),
		cmocka_unit_test(test_exec_timeout),
		cmocka_unit_test(test_exec_big_bodies),
		cmocka_unit_test(test_exec_env_and_fds),
		cmocka_unit_test(test_exec_topics_filter),
		cmocka_unit_test(test_exec_bad_configs),
		cmocka_unit_test(test_exec_unknown_keys_and_reload),
		cmocka_unit_test(test_exec_concurrent),
		cmocka_unit_test(test_archive_exact_bytes),
		cmocka_unit_test(test_archive_newlines),
		cmocka_unit_test(test_archive_rotation),
		cmocka_unit_test(test_archive_continue_today),
		cmocka_unit_test(test_archive_concurrent),
		cmocka_unit_test(test_archive_write_errors),
		cmocka_unit_test(test_archive_unsafe_paths),
		cmocka_unit_test(test_archive_configs),
		cmocka_unit_test(test_example),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
