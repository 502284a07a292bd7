/*
 * Koji protonmsg -> Fedora buildsys.* (koji_map.h).  The Fedora bodies
 * are those of Fedora's koji hub plugin (spec publishers-consumers.md
 * 2.2-2.3); the Koji ones those of koji's plugins/hub/protonmsg.py (2.5).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "koji_map.h"

/* Fedora's plugin deletes these everywhere (floats that differed by host). */
static const char *const volatile_keys[] = { "weight", "start_ts",
    "create_ts", "completion_ts", NULL };

struct ctx {
	json_t	*in;		/* the Koji body (borrowed) */
	json_t	*out;		/* the Fedora body being built */
	char	*why;
	bool	 bad;		/* a required field was missing: why says */
};

static void
fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->bad)
		return;		/* keep the first reason */
	c->bad = true;
	va_start(ap, fmt);
	vsnprintf(c->why, KOJI_WHYLEN, fmt, ap);
	va_end(ap);
}

/* in.<obj>.<key>, or in.<key> when obj is NULL; NULL when absent. */
static json_t *
field(struct ctx *c, const char *obj, const char *key)
{
	json_t *o = obj ? json_object_get(c->in, obj) : c->in;

	return json_is_object(o) ? json_object_get(o, key) : NULL;
}

/* Copy a required string or integer (type: JSON_STRING or JSON_INTEGER). */
static void
required(struct ctx *c, const char *to, const char *obj, const char *key,
    json_type type)
{
	json_t *v = field(c, obj, key);

	if (v == NULL || json_typeof(v) != type)
		fail(c, "%s%s%s is missing or not %s", obj ? obj : "",
		    obj ? "." : "", key, type == JSON_STRING ? "a string" :
		    "an integer");
	else
		json_object_set(c->out, to, v);
}

/* Copy a build's name, version and release (required strings) from in.obj. */
static void
nvr(struct ctx *c, const char *obj)
{
	static const char *const keys[] = { "name", "version", "release" };
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		required(c, keys[i], obj, keys[i], JSON_STRING);
}

/* Copy an optional value of the given JSON type; null otherwise. */
static void
opt(struct ctx *c, const char *to, const char *obj, const char *key,
    json_type type)
{
	json_t *v = field(c, obj, key);

	json_object_set_new(c->out, to, v && json_typeof(v) == type ?
	    json_incref(v) : json_null());
}

/* Copy a value of any type (null when absent). */
static void
any(struct ctx *c, const char *to, const char *obj, const char *key)
{
	json_t *v = field(c, obj, key);

	json_object_set_new(c->out, to, v ? json_deep_copy(v) : json_null());
}

static void
strip_volatile(json_t *v, int depth)
{
	const char *const *k;
	const char *key;
	json_t *e;
	size_t i;

	if (depth > 64)		/* json.c bounds nesting; stay bounded too */
		return;
	if (json_is_object(v)) {
		for (k = volatile_keys; *k; k++)
			json_object_del(v, *k);
		json_object_foreach(v, key, e)
			strip_volatile(e, depth + 1);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			strip_volatile(e, depth + 1);
	}
}

static bool
attribute_is_state(struct ctx *c)
{
	json_t *a = field(c, NULL, "attribute");

	if (!json_is_string(a) || strcmp(json_string_value(a), "state")) {
		fail(c, "attribute is not \"state\" (Fedora publishes state "
		    "changes only)");
		return false;
	}
	return true;
}

static const char *
build_state_change(struct ctx *c)
{
	json_t *o = field(c, NULL, "old"), *n = field(c, NULL, "new");

	if (!attribute_is_state(c))
		return NULL;
	if (!json_is_integer(n) || !(json_is_integer(o) || json_is_null(o))) {
		fail(c, "old/new are not build state numbers");
		return NULL;
	}
	required(c, "build_id", "info", "id", JSON_INTEGER);
	nvr(c, "info");
	opt(c, "epoch", "info", "epoch", JSON_INTEGER);
	opt(c, "owner", "info", "owner_name", JSON_STRING);
	json_object_set_new(c->out, "attribute", json_string("state"));
	json_object_set(c->out, "old", o);
	json_object_set(c->out, "new", n);
	opt(c, "task_id", "info", "task_id", JSON_INTEGER);
	/* the task's request is not in the Koji message: never guessed */
	json_object_set_new(c->out, "request", json_null());
	return "build.state.change";
}

static const char *
tag_change(struct ctx *c, const char *topic)
{
	required(c, "tag", "tag", "name", JSON_STRING);
	required(c, "tag_id", "tag", "id", JSON_INTEGER);
	required(c, "build_id", "build", "id", JSON_INTEGER);
	nvr(c, "build");
	required(c, "user", "user", "name", JSON_STRING);
	opt(c, "owner", "build", "owner_name", JSON_STRING);
	return topic;
}

/* A scratch build's parent task: Fedora's plugin publishes only those. */
static bool
scratch_parent(struct ctx *c, json_t *info)
{
	json_t *req = json_object_get(info, "request");
	json_t *last = json_array_size(req) ?
	    json_array_get(req, json_array_size(req) - 1) : NULL;

	if (!json_is_null(json_object_get(info, "parent"))) {
		fail(c, "a child task (Fedora publishes scratch parent tasks "
		    "only)");
		return false;
	}
	if (!json_is_object(last) ||
	    !json_is_true(json_object_get(last, "scratch"))) {
		fail(c, "not a scratch build task (Fedora publishes "
		    "build.state.change for the others)");
		return false;
	}
	return true;
}

static const char *
task_state_change(struct ctx *c)
{
	json_t *info = field(c, NULL, "info");
	json_t *req, *first;
	const char *slash;

	if (!attribute_is_state(c))
		return NULL;
	if (!json_is_object(info)) {
		fail(c, "info is missing or not an object");
		return NULL;
	}
	if (!scratch_parent(c, info))
		return NULL;
	required(c, "id", "info", "id", JSON_INTEGER);
	required(c, "method", "info", "method", JSON_STRING);
	json_object_set_new(c->out, "attribute", json_string("state"));
	opt(c, "old", NULL, "old", JSON_STRING);
	required(c, "new", NULL, "new", JSON_STRING);
	/* Koji's task info has the owner's id; Fedora resolved the name */
	json_object_set_new(c->out, "owner", json_null());
	req = json_object_get(info, "request");
	first = json_array_get(req, 0);
	if (json_is_string(first)) {
		slash = strrchr(json_string_value(first), '/');
		json_object_set_new(c->out, "srpm", json_string(slash ?
		    slash + 1 : json_string_value(first)));
	} else {
		json_object_set_new(c->out, "srpm", json_null());
	}
	json_object_set_new(c->out, "info", json_deep_copy(info));
	return "task.state.change";
}

static const char *
package_list_change(struct ctx *c)
{
	json_t *owner = field(c, NULL, "owner");

	required(c, "tag", "tag", "name", JSON_STRING);
	required(c, "package", "package", "name", JSON_STRING);
	required(c, "action", NULL, "action", JSON_STRING);
	/* Koji passes the owner's id; Fedora resolved it to a name */
	json_object_set_new(c->out, "owner", json_is_string(owner) ?
	    json_incref(owner) : json_null());
	any(c, "block", NULL, "block");
	any(c, "extra_arches", NULL, "extra_arches");
	any(c, "force", NULL, "force");
	any(c, "update", NULL, "update");
	return "package.list.change";
}

static const char *
rpm_sign(struct ctx *c)
{
	json_t *key = field(c, NULL, "sigkey");

	if (!json_is_string(key) || json_string_length(key) == 0) {
		fail(c, "sigkey is empty or missing (Fedora drops those)");
		return NULL;
	}
	required(c, "sigkey", NULL, "sigkey", JSON_STRING);
	opt(c, "sighash", NULL, "sighash", JSON_STRING);
	if (!json_is_object(field(c, NULL, "rpm")) ||
	    !json_is_object(field(c, NULL, "build"))) {
		fail(c, "rpm or build is missing or not an object");
		return NULL;
	}
	any(c, "rpm", NULL, "rpm");
	any(c, "build", NULL, "build");
	return "rpm.sign";
}

/*
 * The verdict once a translation has written its n results (each NULL when
 * not made): KOJI_MAPPED when all were made; otherwise every one is freed
 * and set to NULL, and why keeps the translation's reason or says "out of
 * memory".
 */
static enum koji_verdict
all_made(char **const res[], size_t n, char why[KOJI_WHYLEN])
{
	size_t i;

	for (i = 0; i < n && *res[i] != NULL; i++)
		;
	if (i == n)
		return KOJI_MAPPED;
	for (i = 0; i < n; i++) {
		free(*res[i]);
		*res[i] = NULL;
	}
	if (why[0] == '\0')
		snprintf(why, KOJI_WHYLEN, "out of memory");
	return KOJI_SKIPPED;
}

/* The Fedora topic and body for one callback type; NULL when skipped. */
static const char *
translate(struct ctx *c, const char *type)
{
	if (strcmp(type, "BuildStateChange") == 0)
		return build_state_change(c);
	if (strcmp(type, "Tag") == 0)
		return tag_change(c, "tag");
	if (strcmp(type, "Untag") == 0)
		return tag_change(c, "untag");
	if (strcmp(type, "TaskStateChange") == 0)
		return task_state_change(c);
	if (strcmp(type, "PackageListChange") == 0)
		return package_list_change(c);
	if (strcmp(type, "RPMSign") == 0)
		return rpm_sign(c);
	if (strcmp(type, "RepoInit") == 0) {
		required(c, "tag", "tag", "name", JSON_STRING);
		required(c, "tag_id", "tag", "id", JSON_INTEGER);
		required(c, "repo_id", NULL, "repo_id", JSON_INTEGER);
		return "repo.init";
	}
	if (strcmp(type, "RepoDone") == 0) {
		required(c, "tag", "repo", "tag_name", JSON_STRING);
		required(c, "tag_id", "repo", "tag_id", JSON_INTEGER);
		required(c, "repo_id", "repo", "id", JSON_INTEGER);
		return "repo.done";
	}
	/* Import, BuildPromote, ...: Fedora's plugin publishes no body */
	fail(c, "event type \"%.64s\" has no Fedora buildsys message", type);
	return NULL;
}

enum koji_verdict
koji_to_fedora(const char *type, const char *body, size_t len,
    const char *instance, char **topic, char **body_out,
    char why[KOJI_WHYLEN])
{
	struct ctx c;
	json_error_t je;
	const char *t;

	*topic = *body_out = NULL;
	memset(&c, 0, sizeof(c));
	c.why = why;
	why[0] = '\0';
	if (type == NULL || *type == '\0') {
		snprintf(why, KOJI_WHYLEN, "no \"type\" property (not a Koji "
		    "protonmsg message)");
		return KOJI_SKIPPED;
	}
	c.in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(c.in)) {
		snprintf(why, KOJI_WHYLEN, "%.40s: body is not a JSON object%s"
		    "%.120s", type, c.in ? "" : ": ", c.in ? "" : je.text);
		json_decref(c.in);
		return KOJI_SKIPPED;
	}
	c.out = json_object();
	t = translate(&c, type);
	if (t != NULL && !c.bad) {
		json_object_set_new(c.out, "instance", json_string(instance));
		strip_volatile(c.out, 0);
		*body_out = json_dumps(c.out, JSON_COMPACT);
		*topic = strdup(t);
	} else if (!c.bad) {
		fail(&c, "%.40s: not translated", type);
	}
	json_decref(c.out);
	json_decref(c.in);
	return all_made((char **const[]){ topic, body_out }, 2, why);
}

/* ---- Fedora buildsys.* -> Koji protonmsg (the UMB shape) ------------------------ */

static const char *const build_states[] = { "BUILDING", "COMPLETE",
    "DELETED", "FAILED", "CANCELED" };

struct rev {
	struct ctx	 c;		/* c.in Fedora's body, c.out Koji's */
	json_t		*props;
	char		 address[128];
};

/* in.<key> (copied) into obj.<to> when present and not null. */
static void
put(struct rev *r, json_t *obj, const char *to, const char *key)
{
	json_t *v = json_object_get(r->c.in, key);

	if (v && !json_is_null(v))
		json_object_set_new(obj, to, json_deep_copy(v));
}

/* A property: a scalar, never null (AMQP 1.0 text properties). */
static void
prop(struct rev *r, const char *name, json_t *v)
{
	if (v && (json_is_string(v) || json_is_integer(v) ||
	    json_is_boolean(v)))
		json_object_set(r->props, name, v);
}

static void
lower_into(char *dst, size_t n, const char *prefix, const char *s)
{
	size_t i, k = (size_t)snprintf(dst, n, "%s", prefix);

	for (i = 0; s[i] && k + 1 < n; i++)
		dst[k++] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
	dst[k < n ? k : n - 1] = '\0';
}

/* Koji's build dict from Fedora's flat fields. */
static json_t *
build_dict(struct rev *r, const char *id_key, const char *owner_key)
{
	json_t *b = json_object(), *n = json_object_get(r->c.in, "name");
	json_t *v = json_object_get(r->c.in, "version");
	json_t *rel = json_object_get(r->c.in, "release");

	if (!json_is_integer(json_object_get(r->c.in, id_key)) ||
	    !json_is_string(n) || !json_is_string(v) || !json_is_string(rel)) {
		fail(&r->c, "%s, name, version or release is missing", id_key);
		return b;
	}
	put(r, b, "id", id_key);
	put(r, b, "build_id", id_key);
	{
		char nvr[768];

		snprintf(nvr, sizeof(nvr), "%.255s-%.255s-%.255s",
		    json_string_value(n), json_string_value(v),
		    json_string_value(rel));
		json_object_set_new(b, "nvr", json_string(nvr));
	}
	put(r, b, "name", "name");
	put(r, b, "version", "version");
	put(r, b, "release", "release");
	put(r, b, "epoch", "epoch");
	put(r, b, "owner_name", owner_key);
	prop(r, "name", n);
	prop(r, "version", v);
	prop(r, "release", rel);
	return b;
}

static void
rev_build_state(struct rev *r)
{
	json_t *o = json_object_get(r->c.in, "old");
	json_t *n = json_object_get(r->c.in, "new"), *info;
	json_int_t nv = json_integer_value(n), ov = json_integer_value(o);

	if (!json_is_integer(n) || nv < 0 || nv > 4 ||
	    !(json_is_null(o) || o == NULL || (json_is_integer(o) && ov >= 0 &&
	    ov <= 4))) {
		fail(&r->c, "old/new are not Koji build states");
		return;
	}
	json_object_set_new(r->props, "type", json_string("BuildStateChange"));
	info = build_dict(r, "build_id", "owner");
	put(r, info, "task_id", "task_id");
	json_object_set(info, "state", n);
	json_object_set_new(r->c.out, "attribute", json_string("state"));
	json_object_set_new(r->c.out, "old", json_is_integer(o) ?
	    json_incref(o) : json_null());
	json_object_set(r->c.out, "new", n);
	json_object_set_new(r->c.out, "info", info);
	json_object_set_new(r->props, "attribute", json_string("state"));
	if (json_is_integer(o))
		json_object_set_new(r->props, "old",
		    json_string(build_states[ov]));
	json_object_set_new(r->props, "new", json_string(build_states[nv]));
	lower_into(r->address, sizeof(r->address), "build.",
	    build_states[nv]);
}

static void
rev_tag(struct rev *r, const char *type, const char *address)
{
	json_t *tag = json_object(), *user = json_object();
	json_t *t = json_object_get(r->c.in, "tag");
	json_t *u = json_object_get(r->c.in, "user");

	if (!json_is_string(t) || !json_is_string(u)) {
		fail(&r->c, "tag or user is missing or not a string");
		json_decref(tag);
		json_decref(user);
		return;
	}
	json_object_set_new(r->props, "type", json_string(type));
	put(r, tag, "id", "tag_id");
	json_object_set(tag, "name", t);
	json_object_set(user, "name", u);
	json_object_set_new(r->c.out, "tag", tag);
	json_object_set_new(r->c.out, "build", build_dict(r, "build_id",
	    "owner"));
	json_object_set_new(r->c.out, "user", user);
	prop(r, "tag", t);
	prop(r, "user", u);
	snprintf(r->address, sizeof(r->address), "%s", address);
}

static void
rev_task(struct rev *r)
{
	json_t *info = json_object_get(r->c.in, "info");
	json_t *n = json_object_get(r->c.in, "new");

	if (!json_is_object(info) || !json_is_string(n) ||
	    !json_is_integer(json_object_get(info, "id"))) {
		fail(&r->c, "info (with an id) or new is missing");
		return;
	}
	json_object_set_new(r->props, "type", json_string("TaskStateChange"));
	json_object_set_new(r->c.out, "attribute", json_string("state"));
	put(r, r->c.out, "old", "old");
	json_object_set(r->c.out, "new", n);
	json_object_set_new(r->c.out, "info", json_deep_copy(info));
	prop(r, "id", json_object_get(info, "id"));
	prop(r, "parent", json_object_get(info, "parent"));
	prop(r, "method", json_object_get(info, "method"));
	json_object_set_new(r->props, "attribute", json_string("state"));
	prop(r, "old", json_object_get(r->c.in, "old"));
	prop(r, "new", n);
	lower_into(r->address, sizeof(r->address), "task.",
	    json_string_value(n));
}

static void
rev_repo(struct rev *r, bool done)
{
	json_t *t = json_object_get(r->c.in, "tag"), *o = json_object();

	if (!json_is_string(t) ||
	    !json_is_integer(json_object_get(r->c.in, "repo_id"))) {
		fail(&r->c, "tag or repo_id is missing");
		json_decref(o);
		return;
	}
	json_object_set_new(r->props, "type", json_string(done ? "RepoDone" :
	    "RepoInit"));
	if (done) {
		put(r, o, "id", "repo_id");
		put(r, o, "tag_id", "tag_id");
		json_object_set(o, "tag_name", t);
		json_object_set_new(r->c.out, "repo", o);
	} else {
		put(r, o, "id", "tag_id");
		json_object_set(o, "name", t);
		json_object_set_new(r->c.out, "tag", o);
		put(r, r->c.out, "repo_id", "repo_id");
	}
	prop(r, "tag", t);
	prop(r, "repo_id", json_object_get(r->c.in, "repo_id"));
	snprintf(r->address, sizeof(r->address), "repo.%s", done ? "done" :
	    "init");
}

static void
rev_package(struct rev *r)
{
	json_t *t = json_object_get(r->c.in, "tag");
	json_t *p = json_object_get(r->c.in, "package");
	json_t *a = json_object_get(r->c.in, "action");
	static const char *const keys[] = { "owner", "block", "extra_arches",
	    "force", "update", NULL };
	const char *const *k;

	if (!json_is_string(t) || !json_is_string(p) || !json_is_string(a) ||
	    strspn(json_string_value(a), "abcdefghijklmnopqrstuvwxyz") !=
	    json_string_length(a) || json_string_length(a) == 0) {
		fail(&r->c, "tag, package or action is missing");
		return;
	}
	json_object_set_new(r->props, "type", json_string("PackageListChange"));
	json_object_set(r->c.out, "action", a);
	json_object_set_new(r->c.out, "tag", json_pack("{sO}", "name", t));
	json_object_set_new(r->c.out, "package", json_pack("{sO}", "name", p));
	for (k = keys; *k; k++)
		put(r, r->c.out, *k, *k);
	prop(r, "tag", t);
	prop(r, "package", p);
	prop(r, "action", a);
	lower_into(r->address, sizeof(r->address), "package.",
	    json_string_value(a));
}

static void
rev_sign(struct rev *r)
{
	json_t *key = json_object_get(r->c.in, "sigkey");
	json_t *b = json_object_get(r->c.in, "build");
	json_t *rpm = json_object_get(r->c.in, "rpm");
	static const char *const bp[] = { "name", "version", "release", NULL };
	static const char *const rp[] = { "name", "version", "release", "arch",
	    NULL };
	const char *const *k;
	char name[32];

	if (!json_is_string(key) || json_string_length(key) == 0 ||
	    !json_is_object(b) || !json_is_object(rpm)) {
		fail(&r->c, "sigkey, build or rpm is missing (the koji <= 1.10 "
		    "form has no build)");
		return;
	}
	json_object_set_new(r->props, "type", json_string("RPMSign"));
	put(r, r->c.out, "sigkey", "sigkey");
	put(r, r->c.out, "sighash", "sighash");
	put(r, r->c.out, "build", "build");
	put(r, r->c.out, "rpm", "rpm");
	prop(r, "sigkey", key);
	for (k = bp; *k; k++)
		prop(r, *k, json_object_get(b, *k));
	for (k = rp; *k; k++) {
		snprintf(name, sizeof(name), "rpm_%s", *k);
		prop(r, name, json_object_get(rpm, *k));
	}
	snprintf(r->address, sizeof(r->address), "sign.rpm");
}

enum koji_verdict
koji_from_fedora(const char *event, const char *msg, size_t len,
    char **address, char **body_out, char **props_json,
    char why[KOJI_WHYLEN])
{
	struct rev r;
	json_error_t je;

	*address = *body_out = *props_json = NULL;
	memset(&r, 0, sizeof(r));
	r.c.why = why;
	why[0] = '\0';
	r.c.in = json_loadb(msg, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(r.c.in)) {
		snprintf(why, KOJI_WHYLEN, "buildsys.%.60s: msg is not a JSON "
		    "object", event);
		json_decref(r.c.in);
		return KOJI_SKIPPED;
	}
	r.c.out = json_object();
	r.props = json_object();
	if (strcmp(event, "build.state.change") == 0)
		rev_build_state(&r);
	else if (strcmp(event, "tag") == 0)
		rev_tag(&r, "Tag", "build.tag");
	else if (strcmp(event, "untag") == 0)
		rev_tag(&r, "Untag", "build.untag");
	else if (strcmp(event, "task.state.change") == 0)
		rev_task(&r);
	else if (strcmp(event, "repo.init") == 0)
		rev_repo(&r, false);
	else if (strcmp(event, "repo.done") == 0)
		rev_repo(&r, true);
	else if (strcmp(event, "package.list.change") == 0)
		rev_package(&r);
	else if (strcmp(event, "rpm.sign") == 0)
		rev_sign(&r);
	else
		fail(&r.c, "buildsys.%.60s has no Koji protonmsg form", event);
	if (!r.c.bad && r.address[0]) {
		*body_out = json_dumps(r.c.out, JSON_COMPACT);
		*props_json = json_dumps(r.props, JSON_COMPACT);
		*address = strdup(r.address);
	}
	json_decref(r.c.in);
	json_decref(r.c.out);
	json_decref(r.props);
	return all_made((char **const[]){ address, body_out, props_json }, 3,
	    why);
}

/* ---- the envelope in protonmsg's shape, and the config ----------------------------- */

enum koji_verdict
koji_umb_from_envelope(const char *event, const char *env, size_t len,
    struct koji_umb *u, char why[KOJI_WHYLEN])
{
	json_t *e = json_loadb(env, len, 0, NULL), *pj, *v;
	char *msg, *props;
	const char *k;
	enum koji_verdict r;

	memset(u, 0, offsetof(struct koji_umb, props));
	u->nprops = 0;
	msg = json_dumps(json_object_get(e, "msg"), JSON_COMPACT |
	    JSON_ENCODE_ANY);
	json_decref(e);
	if (msg == NULL) {
		snprintf(why, KOJI_WHYLEN, "no \"msg\" in the envelope");
		return KOJI_SKIPPED;
	}
	r = koji_from_fedora(event, msg, strlen(msg), &u->address, &u->body,
	    &props, why);
	free(msg);
	if (r != KOJI_MAPPED)
		return r;
	pj = json_loads(props, 0, NULL);
	free(props);
	json_object_foreach(pj, k, v) {
		size_t i = u->nprops;

		if (i == KOJI_MAX_PROPS || strlen(k) > 64)
			break;
		if (json_is_string(v))
			snprintf(u->vals[i], 257, "%s", json_string_value(v));
		else if (json_is_integer(v))
			snprintf(u->vals[i], 257, "%" JSON_INTEGER_FORMAT,
			    json_integer_value(v));
		else
			snprintf(u->vals[i], 257, "%s", json_is_true(v) ?
			    "true" : "false");
		snprintf(u->keys[i], 65, "%s", k);
		u->props[i].name = u->keys[i];
		u->props[i].value = u->vals[i];
		u->nprops++;
	}
	json_decref(pj);
	return KOJI_MAPPED;
}

void
koji_umb_free(struct koji_umb *u)
{
	free(u->address);
	free(u->body);
	u->address = u->body = NULL;
}

int
koji_settings_parse(json_t *k, struct koji_settings *ks,
    const char **unknown, char *err, size_t errlen)
{
	json_t *t = json_object_get(k, "topic");
	json_t *i = json_object_get(k, "instance"), *v;
	const char *key;

	memset(ks, 0, sizeof(*ks));
	*unknown = NULL;
	if (k == NULL)
		return 0;
	if (!json_is_object(k) || (t && !json_is_string(t)) ||
	    (i && !json_is_string(i))) {
		snprintf(err, errlen, "koji must be an object {\"topic\": "
		    "string, \"instance\": string}");
		return -1;
	}
	json_object_foreach(k, key, v)
		if (*unknown == NULL && strcmp(key, "topic") &&
		    strcmp(key, "instance"))
			*unknown = key;
	ks->topic = strdup(t ? json_string_value(t) :
	    "org.fedoraproject.prod.buildsys");
	ks->instance = strdup(i ? json_string_value(i) : "primary");
	if (ks->topic == NULL || ks->instance == NULL) {
		koji_settings_free(ks);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

void
koji_settings_free(struct koji_settings *ks)
{
	free(ks->topic);
	free(ks->instance);
	ks->topic = ks->instance = NULL;
}
