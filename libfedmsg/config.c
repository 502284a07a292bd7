/*
 * Configuration loading (config.h): JSON files with fedmsg's key names,
 * deep-merged like fedmsg.config._recursive_update(), checked against one
 * table of every key fedmsg knows plus fedmsg-c's own.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

/* What a key's value must be.  K_ANY is 0 so an unset elem means "any". */
enum ktype {
	K_ANY,
	K_STRING,
	K_BOOL,
	K_INT,
	K_NUMBER,
	K_OBJECT,
	K_LIST,
	K_STRINGS,		/* a list of strings */
	K_STRING_OR_LIST,	/* a string or a list of strings */
};

struct key {
	const char	*name;
	enum ktype	 type;
	enum ktype	 elem;	/* K_OBJECT: what each member must be */
	bool		 nullok;
	int64_t		 min;	/* K_INT, K_NUMBER: range, checked when */
	int64_t		 max;	/* min < max */
	const char	*dstr;	/* default of a K_STRING, NULL: none */
	double		 dnum;	/* default of a K_BOOL, K_INT or K_NUMBER */
};

#define I32	INT32_MAX
#define U32	((int64_t)UINT32_MAX)
#define I64	INT64_MAX
#define SZ	((int64_t)(SIZE_MAX < INT64_MAX ? SIZE_MAX : INT64_MAX))

/* Table rows: name, then range and default, or what members must be. */
#define STR(n, d)	{ n, K_STRING, K_ANY, true, 0, 0, d, 0 }
#define BOOL(n, d)	{ n, K_BOOL, K_ANY, false, 0, 0, NULL, d }
#define INT(n, lo, hi, d) { n, K_INT, K_ANY, false, lo, hi, NULL, d }
#define NUM(n, lo, hi, d) { n, K_NUMBER, K_ANY, false, lo, hi, NULL, d }
#define OBJ(n, elem)	{ n, K_OBJECT, elem, true, 0, 0, NULL, 0 }
#define LIST(n)		{ n, K_LIST, K_ANY, true, 0, 0, NULL, 0 }
#define STRS(n)		{ n, K_STRINGS, K_ANY, true, 0, 0, NULL, 0 }
#define ANY(n)		{ n, K_ANY, K_ANY, true, 0, 0, NULL, 0 }

/*
 * Every key, once.  Defaults are what fedmsg-c uses when a key is unset
 * or null (those of fedmsg's own loader, fedmsg.config); keys without
 * one are read only when present.  Strings, objects and lists may be null
 * because fedmsg-config prints Python's None that way; booleans and
 * numbers may not.  Keys with a dot belong to applications (moksha.*,
 * fedmsg.consumers.*) and are not here.
 */
static const struct key keys[] = {
	/* Where to publish and subscribe; endpoints values are listified. */
	{ "endpoints", K_OBJECT, K_STRING_OR_LIST, false, 0, 0, NULL, 0 },
	{ "relay_inbound", K_STRING_OR_LIST, K_ANY, true, 0, 0, NULL, 0 },
	BOOL("active", false),
	STR("name", NULL),
	STR("environment", "dev"),
	STR("topic_prefix", "org.fedoraproject"),
	STR("topic_prefix_re", NULL),
	OBJ("replay_endpoints", K_STRING),
	STRS("srv_endpoints"),
	ANY("persistent_store"),

	/* Signing and validation. */
	BOOL("sign_messages", false),
	BOOL("validate_signatures", true),
	STR("crypto_backend", "x509"),
	STRS("crypto_validate_backends"),	/* empty: crypto_backend */
	STR("ssldir", "/etc/pki/fedmsg"),
	OBJ("certnames", K_STRING),
	STR("cert_prefix", NULL),
	STR("ca_cert_location", NULL),		/* no download fallback */
	STR("ca_cert_cache", NULL),
	INT("ca_cert_cache_expiry", 0, I64, 0),
	STR("crl_location", NULL),
	STR("crl_cache", NULL),
	/* fedmsg: 3600; here re-reading unchanged files, 0 = never. */
	INT("crl_cache_expiry", 0, U32, 0),
	OBJ("routing_policy", K_STRINGS),
	BOOL("routing_nitpicky", false),
	STR("gpg_home", NULL),
	STR("gpg_signing_key", NULL),
	OBJ("gpg_keys", K_ANY),

	/* ZeroMQ.  The keepalive and reconnect keys apply only when set. */
	INT("high_water_mark", 0, I32, 0),
	INT("io_threads", 1, I32, 1),
	INT("zmq_linger", -1, I32, 1000),
	NUM("post_init_sleep", 0, I32, 0.5),
	NUM("timeout", 0, I32, 2),
	BOOL("print_config", false),
	BOOL("zmq_enabled", true),
	BOOL("zmq_strict", false),
	INT("zmq_tcp_keepalive", -1, I32, 0),
	INT("zmq_tcp_keepalive_cnt", -1, I32, 0),
	INT("zmq_tcp_keepalive_idle", -1, I32, 0),
	INT("zmq_tcp_keepalive_intvl", -1, I32, 0),
	INT("zmq_reconnect_ivl", -1, I32, 0),
	INT("zmq_reconnect_ivl_max", 0, I32, 0),

	/* Consumers' backlog recovery, tools, logging. */
	STR("status_directory", NULL),
	STR("datagrepper_url", NULL),
	BOOL("skip_last_message", false),
	BOOL("mute", false),
	OBJ("logging", K_ANY),

	/* IRC bot. */
	LIST("irc"),
	OBJ("irc_color_lookup", K_ANY),
	STR("irc_default_color", NULL),
	STR("irc_method", NULL),

	/* Moksha's STOMP and AMQP transports (for moksha; unused here). */
	STR("stomp_uri", NULL),
	STR("stomp_user", NULL),
	STR("stomp_pass", NULL),
	STR("stomp_ssl_crt", NULL),
	STR("stomp_ssl_key", NULL),
	{ "stomp_heartbeat", K_INT, K_ANY, true, 0, I32, NULL, 0 },
	STR("stomp_queue", NULL),
	STR("amqp_broker", NULL),
	/* Read by moksha only, not by fedmsg-c: any type. */
	ANY("stomp_broker"),
	ANY("stomp_port"),
	ANY("stomp_delay"),
	ANY("stomp_ack_mode"),
	ANY("stomp_send_explicit_nacks"),
	ANY("stomp_unescape_headers"),
	ANY("amqp_broker_host"),
	ANY("amqp_broker_port"),
	ANY("amqp_broker_user"),
	ANY("amqp_broker_pass"),
	ANY("amqp_broker_username"),
	ANY("amqp_broker_password"),
	ANY("amqp_broker_ssl"),
	ANY("amqp_broker_threaded"),

	/* fedmsg-c's own (README.md, "Configuration"); unset = built in. */
	INT("max_message_bytes", 1, SZ, 0),
	INT("max_json_depth", 1, I32, 0),
	INT("validate_max_age", 0, U32, 0),	/* seconds, 0 = off */
	INT("validate_max_future", 0, U32, 0),	/* 0 = 60 with max_age */
	/* messages remembered as verified (verify-once cache), 0 = off */
	INT("validate_verified_cache", 0, U32, FM_DEFAULT_VERIFIED_CACHE),
	STR("plugin_dir", NULL),
	/* Reserved for the consumer, bridge and hub settings. */
	OBJ("consumers", K_ANY),
	OBJ("bridges", K_ANY),
	OBJ("hub", K_ANY),
};

/* State while loading: which file last set each key, for messages. */
struct load {
	json_t	*root;		/* merged so far */
	json_t	*origin;	/* key -> file */
	json_t	*sub;		/* key -> { member -> file }, object values */
	char	*err;
};

static int
fail(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail(char *err, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		va_start(ap, fmt);
		vsnprintf(err, FM_ERRLEN, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static const struct key *
find_key(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* A key the code below names: a typo there is a bug, caught by any test. */
static const struct key *
known(const char *name)
{
	const struct key *k = find_key(name);

	if (k == NULL)
		abort();
	return k;
}

/* ---- loading files ----------------------------------------------------- */

/*
 * Note which file set each top-level key (and each member of an object
 * value, which a later file may merge into) before doc is merged in.
 */
static int
track(struct load *ld, json_t *doc, const char *path)
{
	const char *k, *m;
	json_t *v, *mv, *old, *subs;

	json_object_foreach(doc, k, v) {
		old = json_object_get(ld->root, k);
		if (json_object_set_new(ld->origin, k,
		    json_string_nocheck(path)) != 0)
			return -1;
		if (!json_is_object(v)) {
			json_object_del(ld->sub, k);
			continue;
		}
		subs = json_is_object(old) ? json_object_get(ld->sub, k) : NULL;
		if (subs == NULL) {
			if ((subs = json_object()) == NULL ||
			    json_object_set_new(ld->sub, k, subs) != 0)
				return -1;
		}
		json_object_foreach(v, m, mv) {
			if (json_object_set_new(subs, m,
			    json_string_nocheck(path)) != 0)
				return -1;
		}
	}
	return 0;
}

static int
merge_file(struct load *ld, const char *path)
{
	json_error_t je;
	json_t *doc;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return fail(ld->err, "config: %s: %s", path, strerror(errno));
	doc = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
	fclose(f);
	if (doc == NULL) {
		if (je.line < 0)
			return fail(ld->err, "config: %s: %s", path, je.text);
		return fail(ld->err, "config: %s:%d:%d: %s", path, je.line,
		    je.column, je.text);
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		return fail(ld->err, "config: %s: the top level must be a JSON "
		    "object", path);
	}
	/* As fedmsg's _recursive_update(): objects merge, the rest replace. */
	if (track(ld, doc, path) != 0 ||
	    json_object_update_recursive(ld->root, doc) != 0) {
		json_decref(doc);
		return fail(ld->err, "config: %s: out of memory", path);
	}
	json_decref(doc);
	return 0;
}

static int
json_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	/* Hidden files are editor droppings (.#x.json), not config. */
	return d->d_name[0] != '.' && n > 5 &&
	    strcmp(d->d_name + n - 5, ".json") == 0;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/*
 * Merge dir/name if it is a regular file (or a link to one); a directory
 * is skipped.  One that cannot be looked at (a dangling link) is an
 * error, as for fedmsg, not a config quietly missing its keys.
 */
static int
merge_entry(struct load *ld, const char *dir, const char *name, int *used)
{
	struct stat st;
	char *path;
	int rc = 0;

	if (asprintf(&path, "%s%s%s", dir,
	    dir[strlen(dir) - 1] == '/' ? "" : "/", name) < 0)
		return fail(ld->err, "config: out of memory");
	if (stat(path, &st) < 0)
		rc = fail(ld->err, "config: %s: %s", path, strerror(errno));
	else if (S_ISREG(st.st_mode)) {
		(*used)++;
		rc = merge_file(ld, path);
	}
	free(path);
	return rc;
}

static int
merge_dir(struct load *ld, const char *dir)
{
	struct dirent **names;
	int i, n, used = 0, rc = 0;

	if ((n = scandir(dir, &names, json_file, by_name)) < 0)
		return fail(ld->err, "config: %s: %s", dir, strerror(errno));
	for (i = 0; i < n; i++) {
		if (rc == 0)
			rc = merge_entry(ld, dir, names[i]->d_name, &used);
		free(names[i]);
	}
	free(names);
	if (rc == 0 && used == 0)
		rc = fail(ld->err, "config: no *.json files in %s", dir);
	return rc;
}

/* ---- checking ---------------------------------------------------------- */

static const char *
json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:	return "object";
	case JSON_ARRAY:	return "list";
	case JSON_STRING:	return "string";
	case JSON_INTEGER:	return "integer";
	case JSON_REAL:		return "float";
	case JSON_TRUE:
	case JSON_FALSE:	return "boolean";
	case JSON_NULL:		return "null";
	}
	return "?";
}

static const char *
want_kind(enum ktype t)
{
	switch (t) {
	case K_ANY:		return "anything";
	case K_STRING:		return "a string";
	case K_BOOL:		return "a boolean (true or false)";
	case K_INT:		return "an integer";
	case K_NUMBER:		return "a number";
	case K_OBJECT:		return "an object";
	case K_LIST:		return "a list";
	case K_STRINGS:		return "a list of strings";
	case K_STRING_OR_LIST:	return "a string or a list of strings";
	}
	return "?";
}

/* The first item of a list that is not a string, or NULL. */
static json_t *
non_string(const json_t *list)
{
	size_t i;
	json_t *item;

	json_array_foreach(list, i, item)
		if (!json_is_string(item))
			return item;
	return NULL;
}

static bool
type_ok(const json_t *v, enum ktype t)
{
	switch (t) {
	case K_ANY:		return true;
	case K_STRING:		return json_is_string(v);
	case K_BOOL:		return json_is_boolean(v);
	case K_INT:		return json_is_integer(v);
	case K_NUMBER:		return json_is_number(v);
	case K_OBJECT:		return json_is_object(v);
	case K_LIST:		return json_is_array(v);
	case K_STRINGS:
		return json_is_array(v) && non_string(v) == NULL;
	case K_STRING_OR_LIST:
		return json_is_string(v) ||
		    (json_is_array(v) && non_string(v) == NULL);
	}
	return false;
}

/* What v is, for "must be X, got Y": a list says what spoiled it. */
static void
got_kind(const json_t *v, enum ktype want, char *out, size_t len)
{
	const json_t *bad;

	if ((want == K_STRINGS || want == K_STRING_OR_LIST) &&
	    json_is_array(v) && (bad = non_string(v)) != NULL)
		snprintf(out, len, "a list containing %s", json_kind(bad));
	else
		snprintf(out, len, "%s", json_kind(v));
}

static const char *
origin_of(const struct load *ld, const char *key, const char *member)
{
	json_t *f = NULL;

	if (member != NULL)
		f = json_object_get(json_object_get(ld->sub, key), member);
	if (f == NULL)
		f = json_object_get(ld->origin, key);
	return f ? json_string_value(f) : "?";
}

static int
check_range(const struct load *ld, const struct key *k, const json_t *v)
{
	const char *file = origin_of(ld, k->name, NULL);
	char range[64];
	double d;

	if (k->min >= k->max)
		return 0;
	if (k->max == INT64_MAX)
		snprintf(range, sizeof(range), ">= %lld", (long long)k->min);
	else
		snprintf(range, sizeof(range), "from %lld to %lld",
		    (long long)k->min, (long long)k->max);
	if (json_is_integer(v)) {
		if (json_integer_value(v) >= k->min &&
		    json_integer_value(v) <= k->max)
			return 0;
		return fail(ld->err, "config: %s: key '%s' must be %s %s, "
		    "got %lld", file, k->name, want_kind(k->type), range,
		    (long long)json_integer_value(v));
	}
	d = json_real_value(v);
	if (d >= (double)k->min && d <= (double)k->max)
		return 0;
	return fail(ld->err, "config: %s: key '%s' must be %s %s, got %g",
	    file, k->name, want_kind(k->type), range, d);
}

static int
check_key(const struct load *ld, const struct key *k, json_t *v)
{
	const char *m, *file = origin_of(ld, k->name, NULL);
	char got[64];
	json_t *mv;

	if (json_is_null(v) && k->nullok)
		return 0;
	if (!type_ok(v, k->type)) {
		got_kind(v, k->type, got, sizeof(got));
		return fail(ld->err, "config: %s: key '%s' must be %s%s, "
		    "got %s", file, k->name, want_kind(k->type),
		    k->nullok ? " or null" : "", got);
	}
	if (k->type == K_INT || k->type == K_NUMBER)
		return check_range(ld, k, v);
	if (k->type != K_OBJECT || k->elem == K_ANY)
		return 0;
	json_object_foreach(v, m, mv) {
		if (type_ok(mv, k->elem))
			continue;
		got_kind(mv, k->elem, got, sizeof(got));
		return fail(ld->err, "config: %s: key '%s' entry '%s' must be "
		    "%s, got %s", origin_of(ld, k->name, m), k->name, m,
		    want_kind(k->elem), got);
	}
	return 0;
}

static int
check_all(const struct load *ld)
{
	const struct key *k;
	const char *name;
	json_t *v;

	json_object_foreach(ld->root, name, v) {
		/* "moksha.blocking_mode" and such belong to applications. */
		if (strchr(name, '.') != NULL)
			continue;
		if ((k = find_key(name)) == NULL) {
			log_warn("config: %s: unknown key '%s' (ignored)",
			    origin_of(ld, name, NULL), name);
			continue;
		}
		if (check_key(ld, k, v) != 0)
			return -1;
	}
	return 0;
}

/* ---- typed values ------------------------------------------------------ */

/* A set, non-null value; NULL means "use the default". */
static json_t *
value(const struct fm_config *cfg, const char *name)
{
	json_t *v = json_object_get(cfg->root, name);

	return json_is_null(v) ? NULL : v;
}

static const char *
get_str(const struct fm_config *cfg, const char *name)
{
	json_t *v = value(cfg, name);

	return v ? json_string_value(v) : known(name)->dstr;
}

static bool
get_bool(const struct fm_config *cfg, const char *name)
{
	json_t *v = value(cfg, name);

	return v ? json_is_true(v) : known(name)->dnum != 0;
}

static int64_t
get_int(const struct fm_config *cfg, const char *name)
{
	json_t *v = value(cfg, name);

	return v ? json_integer_value(v) : (int64_t)known(name)->dnum;
}

static double
get_num(const struct fm_config *cfg, const char *name)
{
	json_t *v = value(cfg, name);

	return v ? json_number_value(v) : known(name)->dnum;
}

static void
fill(struct fm_config *cfg)
{
	json_t *ri = value(cfg, "relay_inbound");

	cfg->name = get_str(cfg, "name");
	cfg->active = get_bool(cfg, "active");
	cfg->environment = get_str(cfg, "environment");
	cfg->topic_prefix = get_str(cfg, "topic_prefix");
	/* fedmsg's sample config lists it; a relay binds one address. */
	cfg->relay_inbound = json_is_array(ri) ?
	    json_string_value(json_array_get(ri, 0)) : json_string_value(ri);
	cfg->sign_messages = get_bool(cfg, "sign_messages");
	cfg->validate_signatures = get_bool(cfg, "validate_signatures");
	cfg->crypto_backend = get_str(cfg, "crypto_backend");
	cfg->ssldir = get_str(cfg, "ssldir");
	cfg->ca_cert_location = get_str(cfg, "ca_cert_location");
	cfg->crl_location = get_str(cfg, "crl_location");
	cfg->routing_nitpicky = get_bool(cfg, "routing_nitpicky");
	cfg->high_water_mark = get_int(cfg, "high_water_mark");
	cfg->zmq_linger = get_int(cfg, "zmq_linger");
	cfg->io_threads = get_int(cfg, "io_threads");
	cfg->post_init_sleep = get_num(cfg, "post_init_sleep");
	cfg->timeout = get_num(cfg, "timeout");
	cfg->zmq_strict = get_bool(cfg, "zmq_strict");

	cfg->limits.max_message_bytes = (size_t)get_int(cfg,
	    "max_message_bytes");
	cfg->limits.max_json_depth = (size_t)get_int(cfg, "max_json_depth");
	cfg->validate_max_age = get_int(cfg, "validate_max_age");
	cfg->validate_max_future = get_int(cfg, "validate_max_future");
	cfg->validate_verified_cache = get_int(cfg, "validate_verified_cache");
	cfg->crl_cache_expiry = get_int(cfg, "crl_cache_expiry");
}

/* ---- public ------------------------------------------------------------ */

int
fm_config_load(const char *path, struct fm_config **out, char *err)
{
	struct load ld = { NULL, NULL, NULL, err };
	struct fm_config *cfg;
	const char *how = "";
	const char *env;
	struct stat st;
	int rc;

	*out = NULL;
	if (path == NULL) {
		/* Empty counts as unset, as in fedmsg's os.environ.get(). */
		if ((env = getenv("FEDMSG_CONFIG")) != NULL && *env != '\0') {
			path = env;
			how = " (from $FEDMSG_CONFIG)";
		} else {
			path = FM_CONFIG_DEFAULT_PATH;
			how = " (the default; give a config path or set "
			    "$FEDMSG_CONFIG)";
		}
	}
	if (*path == '\0')
		return fail(err, "config: empty path");
	if (stat(path, &st) != 0)
		return fail(err, "config: %s%s: %s", path, how,
		    strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return fail(err, "config: %s%s: not a file or directory", path,
		    how);

	if ((ld.root = json_object()) == NULL ||
	    (ld.origin = json_object()) == NULL ||
	    (ld.sub = json_object()) == NULL) {
		rc = fail(err, "config: out of memory");
		goto out;
	}
	rc = S_ISDIR(st.st_mode) ? merge_dir(&ld, path) : merge_file(&ld, path);
	if (rc == 0)
		rc = check_all(&ld);
	if (rc != 0)
		goto out;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL ||
	    (cfg->source = strdup(path)) == NULL) {
		free(cfg);
		rc = fail(err, "config: out of memory");
		goto out;
	}
	cfg->root = ld.root;
	cfg->origin = ld.origin;
	ld.root = ld.origin = NULL;
	fill(cfg);
	*out = cfg;
out:
	json_decref(ld.root);
	json_decref(ld.origin);
	json_decref(ld.sub);
	return rc;
}

void
fm_config_free(struct fm_config *cfg)
{
	if (cfg == NULL)
		return;
	json_decref(cfg->root);
	json_decref(cfg->origin);
	free(cfg->source);
	free(cfg);
}

json_t *
fm_config_get(const struct fm_config *cfg, const char *key)
{
	return json_object_get(cfg->root, key);
}

size_t
fm_config_endpoint_count(const struct fm_config *cfg, const char *name)
{
	json_t *v = json_object_get(value(cfg, "endpoints"), name);

	if (json_is_string(v))
		return 1;
	return json_array_size(v);
}

const char *
fm_config_endpoint(const struct fm_config *cfg, const char *name, size_t i)
{
	json_t *v = json_object_get(value(cfg, "endpoints"), name);

	if (json_is_string(v))
		return i == 0 ? json_string_value(v) : NULL;
	return json_string_value(json_array_get(v, i));
}

const char *
fm_config_certname(const struct fm_config *cfg, const char *key)
{
	return json_string_value(json_object_get(value(cfg, "certnames"),
	    key));
}

/* The file that set a top-level key, else the path that was loaded. */
static const char *
key_file(const struct fm_config *cfg, const char *key)
{
	const char *f = json_string_value(json_object_get(cfg->origin, key));

	return f ? f : cfg->source;
}

/* "scheme://...": fedmsg fetched https:// locations; we never download. */
static bool
is_url(const char *s)
{
	if (!isalpha((unsigned char)*s))
		return false;
	while (isalnum((unsigned char)*s) || *s == '+' || *s == '-' ||
	    *s == '.')
		s++;
	return strncmp(s, "://", 3) == 0;
}

static int
local_file(const struct fm_config *cfg, const char *key, const char *loc,
    char *err)
{
	if (loc == NULL || !is_url(loc))
		return 0;
	return fail(err, "config: %s: %s '%s' is a URL; fedmsg-c reads only "
	    "local files (download it once and give its path)",
	    key_file(cfg, key), key, loc);
}

/*
 * Which backends may validate, as fedmsg.crypto.init(): names must be
 * "x509" or "gpg" (fedmsg raises ValueError otherwise); an empty list means
 * crypto_backend, where anything but "gpg" is x509.
 */
static int
backends(const struct fm_config *cfg, bool *x509, char *err)
{
	json_t *list = value(cfg, "crypto_validate_backends"), *b;
	const char *name;
	size_t i;

	*x509 = false;
	if (json_array_size(list) == 0) {
		*x509 = strcmp(cfg->crypto_backend, "gpg") != 0;
		return 0;
	}
	json_array_foreach(list, i, b) {
		name = json_string_value(b);
		if (strcmp(name, "x509") == 0)
			*x509 = true;
		else if (strcmp(name, "gpg") != 0)
			return fail(err, "config: %s: crypto_validate_backends"
			    ": '%s' is not a crypto backend (x509 or gpg)",
			    key_file(cfg, "crypto_validate_backends"), name);
	}
	return 0;
}

struct fm_validator *
fm_config_validator(const struct fm_config *cfg, char *err)
{
	struct fm_validator_config vc;
	struct fm_validator *v;

	if (cfg->ca_cert_location == NULL || *cfg->ca_cert_location == '\0') {
		fail(err, "config: %s: validate_signatures needs "
		    "ca_cert_location: fedmsg-c never downloads a CA (fedmsg "
		    "would fetch https://fedoraproject.org/fedmsg/ca.crt)",
		    cfg->source);
		return NULL;
	}
	memset(&vc, 0, sizeof(vc));
	if (local_file(cfg, "ca_cert_location", cfg->ca_cert_location,
	    err) != 0 ||
	    local_file(cfg, "crl_location", cfg->crl_location, err) != 0 ||
	    backends(cfg, &vc.allow_x509, err) != 0)
		return NULL;
	vc.ca_path = cfg->ca_cert_location;
	vc.crl_path = cfg->crl_location;
	vc.routing_nitpicky = cfg->routing_nitpicky;
	/* All ranges were checked against UINT32_MAX at load. */
	vc.reload_max_age = (unsigned)cfg->crl_cache_expiry;
	vc.max_age = (unsigned)cfg->validate_max_age;
	vc.max_future = (unsigned)cfg->validate_max_future;
	vc.verified_cache_size = cfg->validate_verified_cache == 0 ||
	    cfg->validate_verified_cache >= FM_VERIFIED_CACHE_OFF ?
	    FM_VERIFIED_CACHE_OFF : (unsigned)cfg->validate_verified_cache;
	if ((v = fm_validator_new(&vc, err)) == NULL)
		return NULL;

	if (fm_validator_allow_policy(v, value(cfg, "routing_policy"), err) < 0) {
		fm_validator_free(v);
		return NULL;
	}
	return v;
}

int
fm_validator_allow_policy(struct fm_validator *v, json_t *policy, char *err)
{
	const char *topic;
	json_t *cns, *cn;
	size_t i;

	if (policy == NULL || json_is_null(policy))
		return 0;
	if (!json_is_object(policy))
		return fail(err, "routing_policy must be an object of topic -> "
		    "list of CNs");
	json_object_foreach(policy, topic, cns) {
		if (!json_is_array(cns))
			return fail(err, "routing_policy: '%s' must be a list of "
			    "CNs", topic);
		/* An empty list (cn NULL) lets nobody publish on the topic. */
		if (json_array_size(cns) == 0 &&
		    fm_validator_allow(v, topic, NULL) != 0)
			return fail(err, "routing_policy: out of memory");
		json_array_foreach(cns, i, cn) {
			if (!json_is_string(cn))
				return fail(err, "routing_policy: '%s' must be a "
				    "list of CN strings", topic);
			if (fm_validator_allow(v, topic,
			    json_string_value(cn)) != 0)
				return fail(err, "routing_policy: out of memory");
		}
	}
	return 0;
}

struct fm_signer *
fm_config_signer(const struct fm_config *cfg, const char *key, char *err)
{
	const char *name = fm_config_certname(cfg, key);
	const char *sep;
	struct fm_signer *s;
	char *crt = NULL, *pem = NULL;

	if (name == NULL) {
		fail(err, "config: %s: certnames has no entry '%s'",
		    key_file(cfg, "certnames"), key);
		return NULL;
	}
	sep = *cfg->ssldir != '\0' &&
	    cfg->ssldir[strlen(cfg->ssldir) - 1] == '/' ? "" : "/";
	if (asprintf(&crt, "%s%s%s.crt", cfg->ssldir, sep, name) < 0)
		crt = NULL;
	if (asprintf(&pem, "%s%s%s.key", cfg->ssldir, sep, name) < 0)
		pem = NULL;
	if (crt == NULL || pem == NULL) {
		fail(err, "config: out of memory");
		s = NULL;
	} else
		s = fm_signer_load(crt, pem, err);
	free(crt);
	free(pem);
	return s;
}

static char hostname[256];
static pthread_once_t hostname_once = PTHREAD_ONCE_INIT;

static void
hostname_init(void)
{
	char *dot;

	if (gethostname(hostname, sizeof(hostname) - 1) != 0)
		snprintf(hostname, sizeof(hostname), "localhost");
	hostname[sizeof(hostname) - 1] = '\0';
	if ((dot = strchr(hostname, '.')) != NULL)
		*dot = '\0';
}

const char *
fm_short_hostname(void)
{
	/* Once: callers keep the pointer, and may be on several threads. */
	pthread_once(&hostname_once, hostname_init);
	return hostname;
}
