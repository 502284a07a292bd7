/*
 * CI messages -> ResultsDB results, after ResultsDB-Updater's utils.py and
 * message.py (read, not copied): the same test case names, outcomes,
 * items, types, data, groups and notes, and the same rejections with the
 * same reasons.  Python's semantics of its lookups are kept: a missing
 * optional field is None, a JSON null is None, a missing required field
 * is "Missing field "a.b"", the first error wins.
 */
#include <ctype.h>
#include <fnmatch.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapping.h"

#define MAX_RESULT_DATA_SIZE	8192	/* code points of a data value */

/* "no default": the field is required */
static char required_marker;
#define REQ	((json_t *)&required_marker)

/* Which ResultsDB-Updater Message class reads the message. */
enum msg_class { MSG_V1, MSG_V2, MSG_V2_1 };

struct ctx {
	const struct rdb_input	*in;
	enum msg_class		 cls;
	char			*why;
	int			 err;	/* the first error sticks */
	int			 nomem;
};

static void
reject(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err)
		return;
	c->err = 1;
	va_start(ap, fmt);
	vsnprintf(c->why, RDB_WHYLEN, fmt, ap);
	va_end(ap);
}

/* Python's msg._get over keys: NULL (None) for JSON null; def when a key
 * is missing or a step is not an object; REQ -> "Missing field". */
static json_t *
vget(struct ctx *c, json_t *v, json_t *def, const char *first, va_list ap)
{
	char path[256] = "";
	const char *k;
	json_t *out = v;
	int missing = 0;

	for (k = first; k != NULL; k = va_arg(ap, const char *)) {
		if (path[0] != '\0')
			strncat(path, ".", sizeof(path) - strlen(path) - 1);
		strncat(path, k, sizeof(path) - strlen(path) - 1);
		if (missing)
			continue;
		if (!json_is_object(out)) {	/* Python returns default */
			missing = 1;
			continue;
		}
		out = json_object_get(out, k);
		if (out == NULL)
			missing = 1;
	}
	if (missing) {
		if (def == REQ) {
			reject(c, "Missing field \"%s\"", path);
			return NULL;
		}
		return def;
	}
	return json_is_null(out) ? NULL : out;
}

/* msg.get(keys..., default=def) on the CI message body */
static json_t *
get(struct ctx *c, json_t *def, const char *first, ...)
{
	va_list ap;
	json_t *v;

	if (c->err)
		return NULL;
	va_start(ap, first);
	v = vget(c, c->in->body, def, first, ap);
	va_end(ap);
	return v;
}

/* A default string value, owned by a static table (never freed). */
static json_t *
dstr(struct ctx *c, const char *s)
{
	json_t *v = json_string(s);

	if (v == NULL)
		c->nomem = 1;
	/* the caller stores it in data (json_object_set increfs) or drops
	   it; a small leak would be worse than this: keep a list */
	return v;
}

/* msg.system(field, default): "system" may be an object or a list of one */
static json_t *
sys_get(struct ctx *c, const char *field, json_t *def)
{
	json_t *s, *v;

	if (c->err)
		return NULL;
	s = json_object_get(c->in->body, "system");
	if (json_is_array(s))
		s = json_array_size(s) > 0 ? json_array_get(s, 0) : NULL;
	if (!json_is_object(s) || (v = json_object_get(s, field)) == NULL) {
		if (def == REQ) {
			reject(c, "Missing field \"system.%s\"", field);
			return NULL;
		}
		return def;
	}
	return json_is_null(v) ? NULL : v;
}

/* msg.result.get(field, ...): V2 reads under "test" */
static json_t *
res_get(struct ctx *c, const char *field, json_t *def)
{
	return c->cls == MSG_V1 ? get(c, def, field, NULL) :
	    get(c, def, "test", field, NULL);
}

/* msg.contact(field): "ci" before 0.2.1, "contact" since */
static json_t *
contact(struct ctx *c, const char *field, json_t *def)
{
	return get(c, def, c->cls == MSG_V2_1 ? "contact" : "ci", field, NULL);
}

/* str(value) as Python prints it: malloc'd */
static char *
pystr(json_t *v)
{
	char *s = NULL;

	if (v == NULL)
		return strdup("None");
	if (json_is_string(v))
		return strndup(json_string_value(v), json_string_length(v));
	if (json_is_true(v))
		return strdup("True");
	if (json_is_false(v))
		return strdup("False");
	s = json_dumps(v, JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	return s;
}

/* Set data[key] = v (None: JSON null), Python dict semantics. */
static void
put(struct ctx *c, json_t *data, const char *key, json_t *v)
{
	if (c->err || c->nomem)
		return;
	if (json_object_set(data, key, v ? v : json_null()) != 0)
		c->nomem = 1;
}

/* The same, only when v is not None. */
static void
put_opt(struct ctx *c, json_t *data, const char *key, json_t *v)
{
	if (v != NULL)
		put(c, data, key, v);
}

static void
put_new(struct ctx *c, json_t *data, const char *key, json_t *v)
{
	if (v == NULL) {
		c->nomem = 1;
		return;
	}
	put(c, data, key, v);
	json_decref(v);
}

static void
put_str(struct ctx *c, json_t *data, const char *key, const char *s)
{
	put_new(c, data, key, json_string(s));
}

/* ----- shared steps of create_result() ---------------------------- */

static size_t
utf8_len(const char *s, size_t n)
{
	size_t i, cp = 0;

	for (i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			cp++;
	return cp;
}

/* byte offset of code point cp */
static size_t
utf8_off(const char *s, size_t n, size_t cp)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80 && k++ == cp)
			return i;
	return n;
}

/* Length of str(v) in code points. */
static size_t
pylen(json_t *v)
{
	char *s;
	size_t n;

	if (json_is_string(v))
		return utf8_len(json_string_value(v), json_string_length(v));
	s = pystr(v);
	n = s ? utf8_len(s, strlen(s)) : 0;
	free(s);
	return n;
}

/* json.dumps(dict) as a string (Python's default separators) */
static json_t *
dumped(json_t *v)
{
	char *s = json_dumps(v, JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_t *out = s ? json_string(s) : NULL;

	free(s);
	return out;
}

/* json_serialize_data() then crop_data(): dicts become JSON strings (also
 * as list items), long strings are cropped, other long values rejected. */
static void
serialize_data(struct ctx *c, json_t *data)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach(data, k, v) {
		if (c->err || c->nomem)
			return;
		if (json_is_object(v)) {
			put_new(c, data, k, dumped(v));
			v = json_object_get(data, k);
		} else if (json_is_array(v)) {
			for (i = 0; i < json_array_size(v); i++)
				if (json_is_object(json_array_get(v, i)) &&
				    json_array_set_new(v, i,
				    dumped(json_array_get(v, i))) != 0)
					c->nomem = 1;
		}
		if (json_is_string(v)) {
			const char *s = json_string_value(v);
			size_t n = json_string_length(v);

			if (utf8_len(s, n) > MAX_RESULT_DATA_SIZE) {
				size_t cut = utf8_off(s, n,
				    MAX_RESULT_DATA_SIZE - 3);
				char *t = malloc(cut + 4);

				if (t == NULL) {
					c->nomem = 1;
					return;
				}
				if (c->in->warn)
					c->in->warn(c->in->warn_arg, "Cropping "
					    "large value for field %s", k);
				memcpy(t, s, cut);
				memcpy(t + cut, "...", 4);
				put_new(c, data, k, json_stringn(t, cut + 3));
				free(t);
			}
		} else if (json_is_array(v)) {
			for (i = 0; i < json_array_size(v); i++)
				if (pylen(json_array_get(v, i)) >
				    MAX_RESULT_DATA_SIZE) {
					reject(c, "Result value \"%s\" contains "
					    "items that are too large", k);
					return;
				}
		} else if (v != NULL && !json_is_null(v) &&
		    pylen(v) > MAX_RESULT_DATA_SIZE) {
			reject(c, "Result value \"%s\" is too large", k);
			return;
		}
	}
}

static const char *
header(struct ctx *c, const char *name)
{
	json_t *v = json_object_get(c->in->headers, name);

	return json_is_string(v) && json_string_length(v) > 0 ?
	    json_string_value(v) : NULL;
}

/* update_publisher_id() */
static void
set_publisher(struct ctx *c, json_t *data)
{
	const char *p = header(c, "JMSXUserID");

	if (p != NULL && json_is_object(data))
		put_str(c, data, "publisher_id", p);
}

/*
 * create_result(): the private test case check, the data serialized and
 * cropped, and the payload.  Steals data.  testcase: a name (string) or
 * an object with "name"; ref_url, note: None allowed; group: stolen.
 */
static void
add_result(struct ctx *c, struct rdb_results *out, json_t *testcase,
    json_t *outcome, json_t *ref_url, json_t *data, json_t *group,
    json_t *note)
{
	json_t *name = json_is_object(testcase) ?
	    json_object_get(testcase, "name") : testcase;
	const char *pub = header(c, "JMSXUserID");
	char *tname = pystr(name);
	json_t *p = NULL;
	size_t i;

	if (c->err || c->nomem || tname == NULL)
		goto out;
	for (i = 0; i < c->in->npriv; i++) {
		const struct rdb_private *pv = &c->in->priv[i];

		if (fnmatch(pv->glob, tname, 0) == 0 &&
		    (pub == NULL || strcmp(pub, pv->publisher) != 0)) {
			reject(c, "Test case \"%s\" is private (matches \"%s\") "
			    "but message JMSXUserID \"%s\" does not match "
			    "\"%s\"", tname, pv->glob, pub ? pub : "None",
			    pv->publisher);
			goto out;
		}
	}
	if (!json_is_object(data)) {
		/* Python: data.items() on a non-dict raises */
		reject(c, "Result data is not an object");
		goto out;
	}
	serialize_data(c, data);
	if (c->err || c->nomem)
		goto out;
	if (out->n == RDB_MAX_RESULTS) {
		reject(c, "more than %d results in one message",
		    RDB_MAX_RESULTS);
		goto out;
	}
	/* note or '' */
	note = note && !(json_is_string(note) && json_string_length(note) ==
	    0) && !json_is_false(note) ? json_incref(note) : json_string("");
	p = json_pack("{sOs[O]sOsOsosO}", "testcase", testcase ? testcase :
	    json_null(), "groups", group, "outcome", outcome ? outcome :
	    json_null(), "ref_url", ref_url ? ref_url : json_null(),
	    "note", note, "data", data);
	if (p == NULL) {
		c->nomem = 1;
		goto out;
	}
	out->r[out->n].payload = p;
	out->r[out->n].group = json_array_get(json_object_get(p, "groups"), 0);
	{
		json_t *tc = json_object_get(p, "testcase");
		json_t *nm = json_is_object(tc) ? json_object_get(tc, "name") :
		    tc;

		out->r[out->n].testcase = json_is_string(nm) ?
		    json_string_value(nm) : "";
	}
	out->n++;
out:
	free(tname);
	json_decref(data);
	json_decref(group);
}

/* ----- _test_result_outcome() ---------------------------------------- */

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static json_t *
outcome_of(struct ctx *c, json_t *status)
{
	const char *t = c->in->topic ? c->in->topic : "";
	char buf[256];
	size_t i;

	if (c->err)
		return NULL;
	if (ends_with(t, ".error"))
		return json_string("ERROR");
	if (ends_with(t, ".queued"))
		return json_string("QUEUED");
	if (ends_with(t, ".running"))
		return json_string("RUNNING");
	if (!json_is_string(status)) {
		char *r = pystr(status);

		reject(c, "Unexpected result status/outcome, expected a string, "
		    "got: %s", r ? r : "?");
		free(r);
		return NULL;
	}
	snprintf(buf, sizeof(buf), "%s", json_string_value(status));
	for (i = 0; buf[i]; i++)
		buf[i] = (char)tolower((unsigned char)buf[i]);
	if (strcmp(buf, "pass") == 0)
		return json_string("PASSED");
	if (strcmp(buf, "fail") == 0 || strcmp(buf, "failure") == 0)
		return json_string("FAILED");
	for (i = 0; buf[i]; i++)
		buf[i] = (char)toupper((unsigned char)buf[i]);
	return json_string(buf);
}

/* ----- semantic versions: which Message class ------------------------- */

/* "MAJOR.MINOR.PATCH[-pre][+build]"; 0 and the triple, or -1. */
static int
semver(const char *s, long v[3], int *pre)
{
	int i;
	char *e;

	for (i = 0; i < 3; i++) {
		if (!isdigit((unsigned char)*s) || (s[0] == '0' &&
		    isdigit((unsigned char)s[1])))
			return -1;
		v[i] = strtol(s, &e, 10);
		s = e;
		if (i < 2 && *s++ != '.')
			return -1;
	}
	*pre = *s == '-';
	return *s == '\0' || *s == '-' || *s == '+' ? 0 : -1;
}

/* v < (a.b.c), prereleases of a.b.c not below it (semantic_version's
 * SimpleSpec "<a.b.c") */
static int
below(const long v[3], long a, long b, long cc)
{
	long w[3] = { a, b, cc };
	int i;

	for (i = 0; i < 3; i++)
		if (v[i] != w[i])
			return v[i] < w[i];
	return 0;
}

static enum msg_class
msg_class(json_t *body)
{
	json_t *ver = json_object_get(body, "version");
	long v[3];
	int pre;

	if (ver == NULL)
		return MSG_V1;			/* '0.1.0' */
	if (!json_is_string(ver) ||
	    semver(json_string_value(ver), v, &pre) != 0)
		return MSG_V1;			/* parse failure: Message */
	if (below(v, 0, 2, 0))
		return MSG_V1;
	if (below(v, 0, 2, 1))
		return MSG_V2;
	return MSG_V2_1;
}

/* ----- handle_ci_umb(): CI messages 0.x ------------------------------- */

/* "/topic/VirtualTopic.eng.ci.<ns>.<artifact>.<event>.<state>" -> ns */
static int
topic_namespace(const char *t, char *ns, size_t size)
{
	const char *p = t, *q;
	int dots = 0;

	if (strncmp(t, "/topic/VirtualTopic.eng.ci.", 27) != 0)
		return -1;
	for (q = t; *q; q++)
		dots += *q == '.';
	if (dots != 6)
		return -1;
	p = t + 27;
	q = strchr(p, '.');
	snprintf(ns, size, "%.*s", (int)(q - p), p);
	return 0;
}

static json_t *
join3(json_t *a, json_t *b, json_t *cc)
{
	char *x = pystr(a), *y = pystr(b), *z = pystr(cc), *s = NULL;
	json_t *out = NULL;

	if (x && y && z && asprintf(&s, "%s.%s.%s", x, y, z) >= 0)
		out = json_string(s);
	free(x);
	free(y);
	free(z);
	free(s);
	return out;
}

/* '{}-{}'.format(...) of two or three values */
static json_t *
fmt_join(const char *sep1, json_t *a, const char *sep2, json_t *b,
    json_t *cc)
{
	char *x = pystr(a), *y = pystr(b), *z = cc ? pystr(cc) : NULL;
	char *s = NULL;
	json_t *out = NULL;

	if (x && y && (cc == NULL || z) && asprintf(&s, "%s%s%s%s%s", x,
	    sep1, y, cc ? sep2 : "", cc ? z : "") >= 0)
		out = json_string(s);
	free(x);
	free(y);
	free(z);
	free(s);
	return out;
}

static json_t *
map_compose(struct ctx *c, json_t *data, const char *item_type)
{
	json_t *arch = sys_get(c, "architecture", REQ);
	json_t *variant = sys_get(c, "variant", NULL);
	json_t *cid = get(c, NULL, "artifact", "id", NULL);
	json_t *unk = dstr(c, "unknown");
	char *a, *b, *d, *s = NULL;

	if (cid == NULL)
		cid = get(c, REQ, "artifact", "compose_id", NULL);
	a = pystr(cid);
	b = pystr(variant ? variant : unk);
	d = pystr(arch);
	if (!c->err && a && b && d && asprintf(&s, "%s/%s/%s", a, b, d) >= 0)
		put_str(c, data, "item", s);
	free(a);
	free(b);
	free(d);
	free(s);
	json_decref(unk);
	put_opt(c, data, "log", get(c, REQ, "run", "log", NULL));
	put_str(c, data, "type", item_type);
	put_opt(c, data, "productmd.compose.id", cid);
	put_opt(c, data, "system_provider", sys_get(c, "provider", REQ));
	put_opt(c, data, "system_architecture", arch);
	put_opt(c, data, "system_variant", variant);
	put_opt(c, data, "category", res_get(c, "category", REQ));
	return data;
}

static void
map_umb_item(struct ctx *c, json_t *data, const char *item_type)
{
	if (strcmp(item_type, "productmd-compose") == 0) {
		map_compose(c, data, item_type);
	} else if (strcmp(item_type, "product-build") == 0) {
		json_t *p = get(c, REQ, "artifact", "name", NULL);
		json_t *v = get(c, REQ, "artifact", "version", NULL);
		json_t *r = get(c, REQ, "artifact", "release", NULL);

		if (!c->err)
			put_new(c, data, "item", fmt_join("-", p, "-", v, r));
		put_opt(c, data, "product", p);
		put_opt(c, data, "version", v);
		put_opt(c, data, "release", r);
		put_opt(c, data, "log", get(c, REQ, "run", "log", NULL));
		put_str(c, data, "type", item_type);
		put_opt(c, data, "system_architecture",
		    sys_get(c, "architecture", REQ));
		put_opt(c, data, "category", res_get(c, "category", REQ));
	} else if (strcmp(item_type, "component-version") == 0) {
		json_t *comp = get(c, REQ, "artifact", "component", NULL);
		json_t *v = get(c, REQ, "artifact", "version", NULL);

		if (!c->err)
			put_new(c, data, "item", fmt_join("-", comp, "", v,
			    NULL));
		put_opt(c, data, "log", get(c, REQ, "run", "log", NULL));
		put_str(c, data, "type", item_type);
		put_opt(c, data, "component", comp);
		put_opt(c, data, "version", v);
		put_opt(c, data, "category", res_get(c, "category", REQ));
	} else if (strcmp(item_type, "container-image") == 0) {
		json_t *repo = get(c, REQ, "artifact", "repository", NULL);
		json_t *dg = get(c, REQ, "artifact", "digest", NULL);
		static const char *const art[] = { "repository", "digest",
		    "format", "pull_ref", "scratch", "nvr", "issuer" };
		size_t i;

		if (!c->err)
			put_new(c, data, "item", fmt_join("@", repo, "", dg,
			    NULL));
		put_opt(c, data, "log", get(c, REQ, "run", "log", NULL));
		put_opt(c, data, "rebuild", get(c, NULL, "run", "rebuild",
		    NULL));
		put_opt(c, data, "xunit", res_get(c, "xunit", NULL));
		put_str(c, data, "type", item_type);
		for (i = 0; i < sizeof(art) / sizeof(art[0]); i++)
			put_opt(c, data, art[i], get(c, NULL, "artifact",
			    art[i], NULL));
		put_opt(c, data, "system_os", sys_get(c, "os", NULL));
		put_opt(c, data, "system_provider", sys_get(c, "provider",
		    NULL));
		put_opt(c, data, "system_architecture",
		    sys_get(c, "architecture", NULL));
		put_opt(c, data, "category", res_get(c, "category", REQ));
	} else if (strcmp(item_type, "redhat-container-image") == 0) {
		/* table: data key, artifact field, required */
		static const struct { const char *key, *field; int req; }
		t[] = {
			{ "item", "id", 1 }, { "brew_task_id", "task_id", 0 },
			{ "brew_build_id", "build_id", 0 },
			{ "full_names", "full_names", 1 },
			{ "registry_url", "registry_url", 0 },
			{ "tag", "tag", 0 }, { "issuer", "issuer", 1 },
			{ "component", "component", 1 },
			{ "name", "name", 0 },
			{ "namespace", "namespace", 1 },
			{ "scratch", "scratch", 1 }, { "nvr", "nvr", 1 },
			{ "source", "source", 1 },
		};
		size_t i;

		for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
			put(c, data, t[i].key, get(c, t[i].req ? REQ : NULL,
			    "artifact", t[i].field, NULL));
			if (i == 0) {
				put_str(c, data, "type", item_type);
			} else if (i == 2) {
				put(c, data, "category", res_get(c,
				    "category", REQ));
			}
		}
		put(c, data, "rebuild", get(c, NULL, "run", "rebuild", NULL));
		put(c, data, "log", get(c, REQ, "run", "log", NULL));
	} else if (strcmp(item_type, "redhat-module") == 0) {
		json_t *nsvc = get(c, REQ, "artifact", "nsvc", NULL);
		char *s = c->err ? NULL : pystr(nsvc), *item = NULL;
		regex_t re;
		regmatch_t m[5];
		int ok;

		if (c->err || s == NULL)
			goto module_out;
		/* greedy: the last three ':' split (Python's re.match) */
		if (regcomp(&re, "^(.*):(.*):(.*):(.*)", REG_EXTENDED) != 0) {
			c->nomem = 1;
			goto module_out;
		}
		ok = json_is_string(nsvc) && regexec(&re, s, 5, m, 0) == 0;
		regfree(&re);
		if (!ok) {
			reject(c, "Invalid nsvc \"%s\" encountered", s);
			goto module_out;
		}
		{
			int i;
			char *stream = strndup(s + m[2].rm_so,
			    (size_t)(m[2].rm_eo - m[2].rm_so));

			for (i = 0; stream && stream[i]; i++)
				if (stream[i] == '-')
					stream[i] = '_';
			if (stream == NULL || asprintf(&item,
			    "%.*s-%s-%.*s.%.*s",
			    (int)(m[1].rm_eo - m[1].rm_so), s + m[1].rm_so,
			    stream, (int)(m[3].rm_eo - m[3].rm_so),
			    s + m[3].rm_so, (int)(m[4].rm_eo - m[4].rm_so),
			    s + m[4].rm_so) < 0) {
				item = NULL;
				c->nomem = 1;
			}
			free(stream);
		}
		if (item == NULL)
			goto module_out;
		put_str(c, data, "item", item);
		put_str(c, data, "type", item_type);
		put(c, data, "mbs_id", get(c, NULL, "artifact", "id", NULL));
		put(c, data, "category", res_get(c, "category", REQ));
		put(c, data, "context", get(c, REQ, "artifact", "context",
		    NULL));
		put(c, data, "name", get(c, REQ, "artifact", "name", NULL));
		put_str(c, data, "nsvc", item);
		put(c, data, "stream", get(c, REQ, "artifact", "stream",
		    NULL));
		put(c, data, "version", get(c, REQ, "artifact", "version",
		    NULL));
		put(c, data, "issuer", get(c, NULL, "artifact", "issuer",
		    NULL));
		put(c, data, "rebuild", get(c, NULL, "run", "rebuild", NULL));
		put(c, data, "log", get(c, REQ, "run", "log", NULL));
		put(c, data, "system_os", sys_get(c, "os", NULL));
		put(c, data, "system_provider", sys_get(c, "provider", NULL));
module_out:
		free(s);
		free(item);
	} else if (strcmp(item_type, "redhat-advisory") == 0) {
		put(c, data, "item", get(c, REQ, "artifact", "id", NULL));
		put_str(c, data, "type", item_type);
		put(c, data, "category", res_get(c, "category", REQ));
		put(c, data, "numeric_id", get(c, NULL, "artifact",
		    "numeric_id", NULL));
		put(c, data, "pipeline_id", get(c, REQ, "pipeline", "id",
		    NULL));
		put(c, data, "pipeline_name", get(c, REQ, "pipeline", "name",
		    NULL));
		put(c, data, "pipeline_build", get(c, NULL, "pipeline",
		    "build", NULL));
		put(c, data, "pipeline_stage", get(c, NULL, "pipeline",
		    "stage", "name", NULL));
		put(c, data, "log", get(c, REQ, "run", "log", NULL));
		put(c, data, "log_raw", get(c, NULL, "run", "log_raw", NULL));
		put(c, data, "log_stream", get(c, NULL, "run", "log_stream",
		    NULL));
		put(c, data, "system_os", sys_get(c, "os", NULL));
		put(c, data, "system_provider", sys_get(c, "provider", NULL));
	} else if (strcmp(item_type, "brew-build") == 0) {
		json_t *item = get(c, REQ, "artifact", "nvr", NULL);
		json_t *comp = get(c, REQ, "artifact", "component", NULL);
		json_t *sc = get(c, NULL, "artifact", "scratch", NULL);
		json_t *task = get(c, NULL, "artifact", "id", NULL);
		int scratch = 0;

		/* a bool, or a string "true" in the wild; else false */
		if (json_is_boolean(sc))
			scratch = json_is_true(sc);
		else if (json_is_string(sc))
			scratch = strcasecmp(json_string_value(sc),
			    "true") == 0;
		put(c, data, "item", item);
		put_str(c, data, "type", scratch ? "brew-build_scratch" :
		    item_type);
		put(c, data, "brew_task_id", task);
		put(c, data, "category", res_get(c, "category", REQ));
		put(c, data, "component", comp);
		put_new(c, data, "scratch", json_boolean(scratch));
		put(c, data, "issuer", get(c, NULL, "artifact", "issuer",
		    NULL));
		put(c, data, "rebuild", get(c, NULL, "run", "rebuild", NULL));
		put(c, data, "log", get(c, REQ, "run", "log", NULL));
		put(c, data, "system_os", sys_get(c, "os", NULL));
		put(c, data, "system_provider", sys_get(c, "provider", NULL));
	} else if (strcmp(item_type, "brew-build-group") == 0) {
		json_t *item = get(c, REQ, "artifact", "id", NULL);
		json_t *repo = get(c, REQ, "artifact", "repository", NULL);
		json_t *builds = get(c, REQ, "artifact", "builds", NULL);

		put(c, data, "item", item);
		put_str(c, data, "type", item_type);
		put(c, data, "category", res_get(c, "category", REQ));
		put(c, data, "repository", repo);
		if (builds != NULL)	/* serialized in place: a copy */
			put_new(c, data, "builds", json_deep_copy(builds));
		else
			put(c, data, "builds", NULL);
		put(c, data, "rebuild", get(c, NULL, "run", "rebuild", NULL));
		put(c, data, "log", get(c, REQ, "run", "log", NULL));
		put(c, data, "system_os", sys_get(c, "os", NULL));
		put(c, data, "system_provider", sys_get(c, "provider", NULL));
	} else if (strcmp(item_type, "product-scenario") == 0) {
		json_t *ps = get(c, REQ, "artifact", "id", NULL);
		json_t *products = get(c, REQ, "artifact", "products", NULL);
		json_t *items = json_array(), *pdata = json_array(), *p;
		size_t i;

		if (items == NULL || pdata == NULL)
			c->nomem = 1;
		if (!c->err && !json_is_array(products))
			reject(c, "Unexpected \"artifact.products\": not a list");
		for (i = 0; !c->err && !c->nomem &&
		    i < json_array_size(products); i++) {
			json_t *nvr, *id;

			p = json_array_get(products, i);
			if (!json_is_object(p)) {
				reject(c, "Unexpected product: not an object");
				break;
			}
			json_array_append_new(pdata, dumped(p));
			nvr = json_object_get(p, "nvr");
			id = json_object_get(p, "id");
			if (nvr == NULL && id == NULL) {
				reject(c, "Missing field \"id\" of a product");
				break;
			}
			json_array_append(items, nvr ? nvr : id);
		}
		if (!c->err && !c->nomem) {
			json_array_insert(items, 0, ps ? ps : json_null());
			put(c, data, "item", items);
			put_str(c, data, "type", item_type);
			put(c, data, "rebuild", get(c, NULL, "run", "rebuild",
			    NULL));
			put(c, data, "log", get(c, REQ, "run", "log", NULL));
			put(c, data, "system_os", sys_get(c, "os", NULL));
			put(c, data, "system_provider", sys_get(c,
			    "provider", NULL));
			put(c, data, "products", pdata);
		}
		json_decref(items);
		json_decref(pdata);
	} else {
		reject(c, "Unknown artifact type \"%s\"", item_type);
	}
}

static enum rdb_map_rc
handle_ci_umb(struct ctx *c, struct rdb_results *out)
{
	json_t *ver = json_object_get(c->in->body, "version");
	json_t *atype, *run_url, *status = NULL, *outcome, *data, *group;
	json_t *testcase, *docs, *scenario, *note;
	char *item_type = NULL, ns[128];
	static const char *const ckeys[] = { "name", "team", "url", "irc",
	    "email" };
	size_t i;

	if (ver == NULL || json_is_null(ver)) {
		if (c->in->warn)
			c->in->warn(c->in->warn_arg, "Missing required version "
			    "information, using default version 0.1.0");
	} else if (json_is_string(ver) && json_string_length(ver) > 0 &&
	    strncmp(json_string_value(ver), "0.", 2) != 0) {
		reject(c, "Unsupported version: %s (supported are only "
		    "versions less than 1.0.0)", json_string_value(ver));
		return RDB_MAP_REJECTED;
	}
	atype = get(c, REQ, "artifact", "type", NULL);
	run_url = get(c, REQ, "run", "url", NULL);
	if (c->cls == MSG_V1)
		status = get(c, NULL, "status", NULL);
	else if (ends_with(c->in->topic ? c->in->topic : "", ".complete"))
		status = get(c, REQ, "test", "result", NULL);
	outcome = outcome_of(c, status);
	if (c->err)
		goto fail;
	group = json_pack("{ssso}", "uuid", "", "url", run_url ? json_incref(
	    run_url) : json_null());
	data = json_object();
	item_type = pystr(atype);
	if (group == NULL || data == NULL || item_type == NULL) {
		c->nomem = 1;
		json_decref(group);
		json_decref(data);
		goto fail;
	}
	map_umb_item(c, data, item_type);
	/* result_data.update(msg.contact_dict) */
	for (i = 0; i < 5; i++) {
		char key[16];
		json_t *na = NULL;

		snprintf(key, sizeof(key), "ci_%s", ckeys[i]);
		if (i == 2 || i == 3)
			na = dstr(c, "not available");
		put(c, data, key, contact(c, ckeys[i], na ? na : REQ));
		json_decref(na);
	}
	{
		json_t *rec = c->cls == MSG_V1 ? get(c, NULL, "recipients",
		    NULL) : get(c, NULL, "notification", "recipients", NULL);
		json_t *empty = json_array();

		/* default [] (a JSON null stays None) */
		if (rec == NULL && (c->cls == MSG_V1 ?
		    !json_object_get(c->in->body, "recipients") : 1))
			put(c, data, "recipients", empty);
		else
			put(c, data, "recipients", rec);
		json_decref(empty);
	}
	set_publisher(c, data);
	scenario = res_get(c, "scenario", NULL);
	if (scenario != NULL)
		put(c, data, "scenario", scenario);
	testcase = join3(res_get(c, "namespace", REQ), res_get(c, "type", REQ),
	    res_get(c, "category", REQ));
	if (!c->err && testcase == NULL)
		c->nomem = 1;
	docs = res_get(c, "docs", NULL);
	if (testcase != NULL) {
		json_t *tc = json_pack("{sO}", "name", testcase);

		json_decref(testcase);
		testcase = tc;
		if (tc && json_is_string(docs))
			json_object_set(tc, "ref_url", docs);
	}
	/* verify_topic_and_testcase_name() */
	if (!c->err && testcase != NULL) {
		const char *name = json_string_value(json_object_get(testcase,
		    "name"));
		size_t nl = strcspn(name, ".");

		if (topic_namespace(c->in->topic ? c->in->topic : "", ns,
		    sizeof(ns)) != 0) {
			if (c->in->warn)
				c->in->warn(c->in->warn_arg, "The message "
				    "topic \"%s\" uses old scheme not "
				    "containing namespace from test case name "
				    "\"%s\"", c->in->topic ? c->in->topic :
				    "None", name);
		} else if (strlen(ns) != nl || strncmp(ns, name, nl) != 0) {
			reject(c, "Test case \"%s\" namespace \"%.*s\" does not "
			    "match message topic \"%s\" namespace \"%s\"",
			    name, (int)nl, name, c->in->topic, ns);
		}
	}
	if (!c->err && strcmp(json_string_value(outcome), "ERROR") == 0) {
		json_t *r = c->cls == MSG_V1 ? get(c, REQ, "reason", NULL) :
		    get(c, REQ, "error", "reason", NULL);
		json_t *issue = get(c, NULL, "error", "issue_url", NULL);

		if (!c->err && json_is_string(r)) {
			const char *s = json_string_value(r);
			size_t n = json_string_length(r);

			put_new(c, data, "error_reason", json_stringn(s,
			    utf8_off(s, n, 256)));
		} else if (!c->err) {
			reject(c, "Unexpected error reason: not a string");
		}
		if (issue != NULL && !(json_is_string(issue) &&
		    json_string_length(issue) == 0) && !json_is_false(issue))
			put(c, data, "issue_url", issue);
	}
	note = res_get(c, "note", NULL);
	add_result(c, out, testcase, outcome, run_url, data, group, note);
	json_decref(testcase);
fail:
	json_decref(outcome);
	free(item_type);
	return c->nomem ? RDB_MAP_NOMEM : c->err ? RDB_MAP_REJECTED :
	    RDB_MAP_OK;
}

/* ----- handle_ci_metrics(): the old platformci tier1 format ----------- */

static enum rdb_map_rc
handle_ci_metrics(struct ctx *c, struct rdb_results *out)
{
	json_t *unassigned = dstr(c, "unassigned"), *unknown =
	    dstr(c, "unknown");
	json_t *team, *test_name, *tc_url, *grp_url, *build_type, *artifact;
	json_t *task, *tests, *component, *recips, *tier, *ulist;
	json_t *recipients = NULL, *test_type, *overall;
	char *g = NULL, *tn = NULL, *tm = NULL, *tt = NULL;
	size_t i;

	ulist = json_pack("[s]", "unknown");
	team = get(c, unassigned, "team", NULL);
	if (json_is_string(team) && strcmp(json_string_value(team),
	    "unassigned") == 0 && c->in->warn)
		c->in->warn(c->in->warn_arg, "Missing \"team\". Using "
		    "\"unassigned\" as the team namespace section of the "
		    "Test Case");
	test_name = get(c, NULL, "job_name", NULL);
	if (test_name == NULL) {
		test_name = get(c, REQ, "job_names", NULL);
		if (c->in->warn)
			c->in->warn(c->in->warn_arg, "Using with \"job_names\" "
			    "field.");
	}
	tc_url = get(c, REQ, "jenkins_job_url", NULL);
	grp_url = get(c, REQ, "jenkins_build_url", NULL);
	build_type = get(c, unknown, "build_type", NULL);
	artifact = get(c, unknown, "artifact", NULL);
	task = get(c, unknown, "brew_task_id", NULL);
	tests = get(c, REQ, "tests", NULL);
	if (!c->err && !json_is_string(grp_url))
		reject(c, "Unexpected \"jenkins_build_url\": not a string");
	component = get(c, unknown, "component", NULL);
	recips = get(c, unknown, "recipients", NULL);
	if (!c->err && !json_is_string(recips))
		reject(c, "Unexpected \"recipients\": not a string");
	tier = get(c, ulist, "CI_tier", NULL);
	if (!c->err && !json_is_array(tests))
		reject(c, "Unexpected \"tests\": not a list");
	if (c->err || c->nomem)
		goto out;
	{	/* recipients.split(',') */
		const char *s = json_string_value(recips), *e;

		recipients = json_array();
		for (;; s = e + 1) {
			e = strchr(s, ',');
			json_array_append_new(recipients, json_stringn(s,
			    e ? (size_t)(e - s) : strlen(s)));
			if (e == NULL)
				break;
		}
	}
	{	/* '{0}/console'.format(url.rstrip('/')) */
		const char *u = json_string_value(grp_url);
		size_t n = strlen(u);

		while (n > 0 && u[n - 1] == '/')
			n--;
		if (asprintf(&g, "%.*s/console", (int)n, u) < 0)
			g = NULL;
	}
	tt = strdup(json_is_string(task) && strcmp(json_string_value(task),
	    "unknown") == 0 ? "unknown" : "koji_build");
	if (tt && json_is_string(build_type) &&
	    strcmp(json_string_value(build_type), "scratch") == 0) {
		char *x = NULL;

		if (asprintf(&x, "%s_scratch", tt) < 0)
			x = NULL;
		free(tt);
		tt = x;
	}
	tn = pystr(test_name);
	tm = pystr(team);
	if (g == NULL || tt == NULL || tn == NULL || tm == NULL ||
	    recipients == NULL) {
		c->nomem = 1;
		goto out;
	}
	test_type = json_string(tt);
	overall = json_string("PASSED");
	for (i = 0; i < json_array_size(tests) && !c->err; i++) {
		json_t *t = json_array_get(tests, i), *failed, *d, *tc, *ex;
		const char *outcome = "FAILED";
		char *exs, *name = NULL;

		if (!json_is_object(t)) {
			reject(c, "Unexpected test: not an object");
			break;
		}
		failed = json_object_get(t, "failed");
		/* int(test['failed']) == 0: an int, or a string of one */
		if (failed != NULL && ((json_is_integer(failed) &&
		    json_integer_value(failed) == 0) ||
		    (json_is_string(failed) && atoll(json_string_value(
		    failed)) == 0 && strspn(json_string_value(failed),
		    " 0+-") == strlen(json_string_value(failed)) &&
		    strchr(json_string_value(failed), '0'))))
			outcome = "PASSED";
		else
			json_string_set(overall, "FAILED");
		ex = json_object_get(t, "executor");
		exs = pystr(ex ? ex : unknown);
		if (exs == NULL || asprintf(&name, "%s.%s.%s", tm, tn,
		    exs) < 0) {
			free(exs);
			c->nomem = 1;
			break;
		}
		free(exs);
		d = json_deep_copy(t);
		put(c, d, "item", component);
		put(c, d, "type", test_type);
		put(c, d, "recipients", recipients);
		put(c, d, "CI_tier", tier);
		put(c, d, "job_name", test_name);
		put(c, d, "artifact", artifact);
		put(c, d, "brew_task_id", task);
		set_publisher(c, d);
		tc = json_pack("{sssO}", "name", name, "ref_url", tc_url ?
		    tc_url : json_null());
		free(name);
		{
			json_t *oc = json_string(outcome), *ru = json_string(g);

			add_result(c, out, tc, oc, ru, d, json_pack("{sssO}",
			    "uuid", "", "ref_url", grp_url), NULL);
			/* add_result took data and group; the rest is ours */
			json_decref(oc);
			json_decref(ru);
		}
		json_decref(tc);
	}
	if (!c->err && !c->nomem) {
		json_t *d = json_pack("{sOsOsOsOsOsOsO}", "item", component ?
		    component : json_null(), "type", test_type, "recipients",
		    recipients, "CI_tier", tier ? tier : json_null(),
		    "job_name", test_name ? test_name : json_null(),
		    "artifact", artifact ? artifact : json_null(),
		    "brew_task_id", task ? task : json_null());
		json_t *tc = NULL;
		char *name = NULL;

		if (d != NULL && asprintf(&name, "%s.%s", tm, tn) >= 0)
			tc = json_pack("{sssO}", "name", name, "ref_url",
			    tc_url ? tc_url : json_null());
		free(name);
		set_publisher(c, d);
		{
			json_t *ru = json_string(g);

			add_result(c, out, tc, overall, ru, d, json_pack(
			    "{sssO}", "uuid", "", "ref_url", grp_url), NULL);
			json_decref(ru);
		}
		json_decref(tc);
	}
	json_decref(test_type);
	json_decref(overall);
out:
	json_decref(recipients);
	json_decref(unassigned);
	json_decref(unknown);
	json_decref(ulist);
	free(g);
	free(tn);
	free(tm);
	free(tt);
	return c->nomem ? RDB_MAP_NOMEM : c->err ? RDB_MAP_REJECTED :
	    RDB_MAP_OK;
}

/* ----- handle_resultsdb_format(): single and bulk results -------------- */

static enum rdb_map_rc
handle_resultsdb_format(struct ctx *c, struct rdb_results *out)
{
	json_t *ref = get(c, REQ, "ref_url", NULL), *gref = NULL, *results;
	json_t *empty = json_string("");
	json_t *tname = get(c, empty, "testcase", "name", NULL);
	const char *k;
	json_t *v;

	if (c->err)
		goto out;
	gref = json_incref(ref);
	if (json_is_string(tname) && strncmp(json_string_value(tname),
	    "dist.rpmdiff", 12) == 0) {
		regex_t re;
		regmatch_t m[4];
		const char *u = json_is_string(ref) ? json_string_value(ref) :
		    "";
		int ok;

		if (regcomp(&re, "^(http.+/run/)([0-9]+)/?([0-9]+)?$",
		    REG_EXTENDED) != 0) {
			c->nomem = 1;
			goto out;
		}
		ok = json_is_string(ref) && regexec(&re, u, 4, m, 0) == 0;
		regfree(&re);
		if (!ok) {
			reject(c, "The ref_url \"%s\" did not match the rpmdiff "
			    "URL scheme", u);
			goto out;
		}
		json_decref(gref);
		gref = json_stringn(u, (size_t)m[2].rm_eo);
	}
	results = get(c, NULL, "results", NULL);
	/* "if results:" - a non-empty dict (or list: Python would fail) */
	if (results != NULL && ((json_is_object(results) &&
	    json_object_size(results) > 0) || (json_is_array(results) &&
	    json_array_size(results) > 0) || (json_is_string(results) &&
	    json_string_length(results) > 0) || json_is_true(results) ||
	    json_is_number(results))) {
		if (!json_is_object(results)) {
			reject(c, "Unexpected \"results\": not an object");
			goto out;
		}
		json_object_foreach(results, k, v) {
			json_t *d, *ro, *rref, *rnote;

			if (c->err || c->nomem)
				break;
			if (!json_is_object(v)) {
				reject(c, "Unexpected result \"%s\": not an "
				    "object", k);
				break;
			}
			d = json_object_get(v, "data");
			d = d ? json_deep_copy(d) : json_object();
			set_publisher(c, d);
			ro = json_object_get(v, "outcome");
			if (ro == NULL) {
				json_decref(d);
				reject(c, "Missing field \"outcome\" of result "
				    "\"%s\"", k);
				break;
			}
			rref = json_object_get(v, "ref_url");
			rnote = json_object_get(v, "note");
			{
				json_t *tc = json_string(k);

				add_result(c, out, tc, ro, rref ? rref : empty,
				    d, json_pack("{sssO}", "uuid", "",
				    "ref_url", gref), rnote ? rnote : empty);
				json_decref(tc);
			}
		}
	} else {
		json_t *d = get(c, REQ, "data", NULL);
		json_t *tc = get(c, REQ, "testcase", NULL);
		json_t *oc = get(c, REQ, "outcome", NULL);
		json_t *note = get(c, empty, "note", NULL);

		if (c->err)
			goto out;
		out->lookup_group = 1;
		d = d ? json_deep_copy(d) : NULL;
		set_publisher(c, d);
		add_result(c, out, tc, oc, ref, d, json_pack("{sssOsO}", "uuid",
		    "", "ref_url", gref, "description", gref), note);
	}
out:
	json_decref(gref);
	json_decref(empty);
	return c->nomem ? RDB_MAP_NOMEM : c->err ? RDB_MAP_REJECTED :
	    RDB_MAP_OK;
}

/* ----- dispatch: CIConsumer._consume_helper() -------------------------- */

static int
has(json_t *o, const char *k)
{
	return json_object_get(o, k) != NULL;
}

enum rdb_map_rc
rdb_map(const struct rdb_input *in, struct rdb_results *out,
    char why[RDB_WHYLEN])
{
	struct ctx c = { in, MSG_V1, why, 0, 0 };
	enum rdb_map_rc rc;
	json_t *b = in->body;
	const char *t = in->topic ? in->topic : "";

	memset(out, 0, sizeof(*out));
	why[0] = '\0';
	if (!json_is_object(b)) {
		snprintf(why, RDB_WHYLEN, "Dropping non-dict message.");
		return RDB_MAP_IGNORED;
	}
	c.cls = msg_class(b);
	if (strcmp(t, "/topic/VirtualTopic.eng.platformci.tier1.result") == 0)
		rc = handle_ci_metrics(&c, out);
	else if (has(b, "run") && has(b, "artifact") && (has(b, "ci") ||
	    has(b, "contact")))
		rc = handle_ci_umb(&c, out);
	else if ((has(b, "data") && has(b, "outcome") && has(b, "ref_url") &&
	    has(b, "testcase")) || (has(b, "results") && has(b, "ref_url")))
		rc = handle_resultsdb_format(&c, out);
	else {
		snprintf(why, RDB_WHYLEN, "Received unhandled message");
		return RDB_MAP_IGNORED;
	}
	if (rc != RDB_MAP_OK)
		rdb_results_free(out);
	if (rc == RDB_MAP_NOMEM)
		snprintf(why, RDB_WHYLEN, "out of memory");
	return rc;
}

void
rdb_results_free(struct rdb_results *out)
{
	size_t i;

	for (i = 0; i < out->n; i++)
		json_decref(out->r[i].payload);
	out->n = 0;
}
