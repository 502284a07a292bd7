/*
 * fedmsg-tail's renderings (terse.h): one-line summaries after the
 * fedmsg.meta processors (publishers-consumers.md section 4.3), indented
 * JSON and --query field extraction, all read from the message's parsed
 * tree so that big integers, lone surrogates and NaN survive.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <fedmsg/message.h>

#include "buf.h"
#include "canon.h"
#include "json.h"
#include "msg.h"
#include "terse.h"
#include "utf8.h"

#define FIELD_MAX	200	/* input bytes of one text field in a summary */
#define GENERIC_MAX	200	/* bytes of a key=value summary */

/* ---- text that is safe on a terminal ------------------------------------ */

#define ESC_BACKSLASH	0x1	/* write \ as \\ (--query: reversible) */
#define ESC_QUOTE	0x2	/* write " as \" (quoted values) */

static const char hexdig[] = "0123456789abcdef";

static void
add_u(struct buf *b, unsigned u)
{
	char e[6] = { '\\', 'u', hexdig[(u >> 12) & 15], hexdig[(u >> 8) & 15],
	    hexdig[(u >> 4) & 15], hexdig[u & 15] };

	buf_add(b, e, sizeof(e));
}

/*
 * Append text for people: UTF-8 kept, controls escaped (\n \t \r, \xHH for
 * other C0 and DEL, \uHHHH for C1 and the line and paragraph separators
 * U+2028/9), lone surrogates and stray bytes shown
 * as U+FFFD.  At most max input bytes (0: all), cut at a character
 * boundary and followed by "..." when cut.
 */
static void
add_text(struct buf *b, const char *str, size_t len, size_t max, int esc)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, k;

	while (i < len) {
		unsigned c = s[i];

		k = utf8_decode(s + i, len - i, &c, UTF8_SURROGATES);
		if (max && i + (k ? k : 1) > max) {
			buf_add(b, "...", 3);
			return;
		}
		if (k == 0) {
			buf_add(b, "\xef\xbf\xbd", 3);
			i++;
			continue;
		}
		if (k == 1) {
			if (c == '\\' && (esc & ESC_BACKSLASH))
				buf_add(b, "\\\\", 2);
			else if (c == '"' && (esc & ESC_QUOTE))
				buf_add(b, "\\\"", 2);
			else if (c >= 0x20 && c < 0x7f)
				buf_addc(b, (char)c);
			else if (c == '\n')
				buf_add(b, "\\n", 2);
			else if (c == '\t')
				buf_add(b, "\\t", 2);
			else if (c == '\r')
				buf_add(b, "\\r", 2);
			else
				buf_printf(b, "\\x%02x", c);
		} else {
			if ((c >= 0x80 && c < 0xa0) || c == 0x2028 ||
			    c == 0x2029)
				add_u(b, c);
			else if (c >= 0xd800 && c < 0xe000)
				buf_add(b, "\xef\xbf\xbd", 3);
			else
				buf_add(b, s + i, k);
		}
		i += k;
	}
}

/* Append a JSON string literal; UTF-8 raw, the rest as Python escapes. */
static void
add_json_string(struct buf *b, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, k;

	buf_addc(b, '"');
	while (i < len) {
		unsigned c = s[i];

		k = utf8_decode(s + i, len - i, &c, UTF8_SURROGATES);
		if (k == 0) {
			add_u(b, 0xfffd);
			i++;
			continue;
		}
		if (k == 1) {
			switch (c) {
			case '"': buf_add(b, "\\\"", 2); break;
			case '\\': buf_add(b, "\\\\", 2); break;
			case '\b': buf_add(b, "\\b", 2); break;
			case '\f': buf_add(b, "\\f", 2); break;
			case '\n': buf_add(b, "\\n", 2); break;
			case '\r': buf_add(b, "\\r", 2); break;
			case '\t': buf_add(b, "\\t", 2); break;
			default:
				if (c < 0x20 || c == 0x7f)
					add_u(b, c);
				else
					buf_addc(b, (char)c);
			}
		} else {
			if ((c >= 0x80 && c < 0xa0) ||
			    (c >= 0xd800 && c < 0xe000) ||
			    c == 0x2028 || c == 0x2029)
				add_u(b, c);
			else
				buf_add(b, s + i, k);
		}
		i += k;
	}
	buf_addc(b, '"');
}

/* ---- reading the tree --------------------------------------------------- */

/* v at a dotted path below root ("commit.repo"; digits index arrays). */
static const struct jv *
lookup(const struct jv *v, const char *path, size_t len)
{
	const char *p = path, *end = path + len;

	while (v != NULL) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);

		if (v->type == JV_OBJECT) {
			v = jv_getn(v, p, n);
		} else if (v->type == JV_ARRAY && n > 0 && n < 10 &&
		    strspn(p, "0123456789") >= n) {
			unsigned long idx = strtoul(p, NULL, 10);

			v = idx < v->len ? &v->u.items[idx] : NULL;
		} else {
			v = NULL;
		}
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	return v;
}

static const struct jv *
get(const struct jv *v, const char *path)
{
	return lookup(v, path, strlen(path));
}

/* A string at path, or NULL (also for the empty string). */
static const struct jv *
sget(const struct jv *v, const char *path)
{
	v = get(v, path);
	return v && v->type == JV_STRING && v->len > 0 ? v : NULL;
}

static bool
str_is(const struct jv *v, const char *s)
{
	return v && v->type == JV_STRING && v->len == strlen(s) &&
	    memcmp(v->u.str, s, v->len) == 0;
}

/* An integer at path that fits a long long, into *out. */
static bool
int_at(const struct jv *v, const char *path, long long *out)
{
	char tmp[24], *end;

	v = get(v, path);
	if (v == NULL || v->type != JV_INT || v->len >= sizeof(tmp))
		return false;
	memcpy(tmp, v->u.str, v->len);
	tmp[v->len] = '\0';
	*out = strtoll(tmp, &end, 10);
	return *end == '\0';
}

/* Append a value for people: text escaped and cut, containers elided. */
static void
add_value(struct buf *b, const struct jv *v, size_t max)
{
	char num[PYFLOAT_MAX];

	switch (v->type) {
	case JV_NULL: buf_adds(b, "null"); break;
	case JV_FALSE: buf_adds(b, "false"); break;
	case JV_TRUE: buf_adds(b, "true"); break;
	case JV_INT: add_text(b, v->u.str, v->len, max, 0); break;
	case JV_FLOAT: buf_add(b, num, canon_float(v->u.num, num)); break;
	case JV_STRING: add_text(b, v->u.str, v->len, max, 0); break;
	case JV_ARRAY: buf_adds(b, v->len ? "[...]" : "[]"); break;
	case JV_OBJECT: buf_adds(b, v->len ? "{...}" : "{}"); break;
	}
}

/* Append the value at path, or "?" when it is missing or null. */
static void
add(struct buf *b, const struct jv *v, const char *path)
{
	v = get(v, path);
	if (v == NULL || v->type == JV_NULL)
		buf_addc(b, '?');
	else
		add_value(b, v, FIELD_MAX);
}

/* The first line of the string at path (without its line end), cut. */
static bool
add_first_line(struct buf *b, const struct jv *v, const char *path)
{
	const char *nl;
	size_t n;

	if ((v = sget(v, path)) == NULL)
		return false;
	n = v->len;
	if ((nl = memchr(v->u.str, '\n', n)) != NULL)
		n = (size_t)(nl - v->u.str);
	if (n > 0 && v->u.str[n - 1] == '\r')
		n--;
	add_text(b, v->u.str, n, FIELD_MAX, 0);
	return true;
}

/* "<name>-<version>-<release>" from an object. */
static void
add_nvr(struct buf *b, const struct jv *o)
{
	add(b, o, "name");
	buf_addc(b, '-');
	add(b, o, "version");
	buf_addc(b, '-');
	add(b, o, "release");
}

/* "<owner>'s " when the owner is known (fedmsg.meta drops it otherwise). */
static void
add_owner(struct buf *b, const struct jv *msg)
{
	const struct jv *o = sget(msg, "owner");

	if (o) {
		add_text(b, o->u.str, o->len, FIELD_MAX, 0);
		buf_adds(b, "'s ");
	}
}

/* ---- summaries ---------------------------------------------------------- */

/*
 * Each summariser appends one line for msg (the payload; env the whole
 * envelope; title the topic after prefix and environment) and returns
 * true, or returns false to fall back to the generic key=value line.
 */
typedef bool summariser(struct buf *, const struct jv *msg,
    const struct jv *env, const char *title);

/* dist-git, one message per commit (section 1.1-1.4). */
static bool
sum_git_receive(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	const struct jv *c = get(msg, "commit"), *who, *ns, *n;
	long long count = 1;
	const char *legacy = NULL, *dot;

	if (c == NULL || c->type != JV_OBJECT)
		return false;
	/* fedmsg.meta: the top-level agent (current hook), else the pusher */
	if ((who = sget(msg, "agent")) == NULL &&
	    (who = sget(c, "agent")) == NULL &&
	    (who = sget(c, "username")) == NULL &&
	    (who = sget(env, "username")) == NULL)
		who = sget(c, "email");
	if (who)
		add_text(b, who->u.str, who->len, FIELD_MAX, 0);
	else
		buf_adds(b, "someone");
	if ((n = get(msg, "commits")) != NULL && n->type == JV_ARRAY)
		count = n->len;
	else
		(void)int_at(msg, "total_commits", &count);
	buf_printf(b, " pushed %lld commit%s to ", count,
	    count == 1 ? "" : "s");
	if ((ns = sget(c, "namespace")) != NULL) {
		add_text(b, ns->u.str, ns->len, FIELD_MAX, 0);
		buf_addc(b, '/');
	}
	/* before 2013: git.receive.<package>.<branch>, fields maybe absent */
	if (strncmp(title, "git.receive.", 12) == 0)
		legacy = title + 12;
	if (sget(c, "repo") == NULL && legacy) {
		dot = strchr(legacy, '.');
		add_text(b, legacy, dot ? (size_t)(dot - legacy) :
		    strlen(legacy), FIELD_MAX, 0);
	} else {
		add(b, c, "repo");
	}
	buf_adds(b, " (");
	if (sget(c, "branch") == NULL && legacy && strchr(legacy, '.')) {
		dot = strchr(legacy, '.') + 1;
		add_text(b, dot, strlen(dot), FIELD_MAX, 0);
	} else {
		add(b, c, "branch");
	}
	buf_adds(b, ")");
	if (sget(c, "summary") || sget(c, "message")) {
		buf_adds(b, ": ");
		if (!add_first_line(b, c, "summary"))
			add_first_line(b, c, "message");
	}
	return true;
}

/* git.branch: name (repo), branch, agent, namespace (section 1.5). */
static bool
sum_git_branch(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	const struct jv *ns = sget(msg, "namespace");

	(void)env;
	(void)title;
	if (msg == NULL || msg->type != JV_OBJECT || !get(msg, "branch"))
		return false;
	add(b, msg, "agent");
	buf_adds(b, " created branch '");
	add(b, msg, "branch");
	buf_adds(b, "' for ");
	if (ns) {
		add_text(b, ns->u.str, ns->len, FIELD_MAX, 0);
		buf_addc(b, '/');
	}
	add(b, msg, "name");
	return true;
}

/* git.lookaside.new: name, filename, agent. */
static bool
sum_git_lookaside(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	(void)env;
	(void)title;
	if (!get(msg, "filename"))
		return false;
	add(b, msg, "agent");
	buf_adds(b, " uploaded ");
	add(b, msg, "filename");
	buf_adds(b, " for ");
	add(b, msg, "name");
	return true;
}

/* koji.BUILD_STATES and koji.TASK_STATES (section 2.1). */
static const char *const build_states[] = {
	"BUILDING", "COMPLETE", "DELETED", "FAILED", "CANCELED"
};
static const char *const task_states[] = {
	"FREE", "OPEN", "CLOSED", "CANCELED", "ASSIGNED", "FAILED"
};

/* A state given as a code (build messages) or a name (task messages). */
static void
add_state(struct buf *b, const struct jv *msg, const char *key,
    const char *const *names, size_t nnames)
{
	const struct jv *v = get(msg, key);
	long long code;

	if (int_at(msg, key, &code) && code >= 0 && (size_t)code < nnames)
		buf_adds(b, names[code]);
	else if (v && v->type == JV_INT)
		buf_printf(b, "state %.*s", (int)(v->len < 24 ? v->len : 24),
		    v->u.str);
	else
		add(b, msg, key);
}

/* " (<instance>)" for secondary koji hubs, as fedmsg.meta does. */
static void
add_instance(struct buf *b, const struct jv *msg)
{
	const struct jv *i = sget(msg, "instance");

	if (i && !str_is(i, "primary")) {
		buf_adds(b, " (");
		add_text(b, i->u.str, i->len, FIELD_MAX, 0);
		buf_addc(b, ')');
	}
}

static bool
sum_build_state(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	(void)env;
	(void)title;
	if (!get(msg, "name") || !get(msg, "new"))
		return false;
	add_owner(b, msg);
	add_nvr(b, msg);
	buf_addc(b, ' ');
	add_state(b, msg, "new", build_states,
	    sizeof(build_states) / sizeof(build_states[0]));
	buf_adds(b, " (build ");
	add(b, msg, "build_id");
	buf_addc(b, ')');
	add_instance(b, msg);
	return true;
}

/* Scratch builds only, in Fedora (section 2.2 step 1). */
static bool
sum_task_state(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	const struct jv *method = sget(msg, "method");

	(void)env;
	(void)title;
	if (!get(msg, "new") || !get(msg, "id"))
		return false;
	add_owner(b, msg);
	if ((method == NULL || str_is(method, "build")) && sget(msg, "srpm")) {
		buf_adds(b, "scratch build of ");
		add(b, msg, "srpm");
	} else {
		add(b, msg, "method");
		buf_adds(b, " task");
	}
	buf_addc(b, ' ');
	add_state(b, msg, "new", task_states,
	    sizeof(task_states) / sizeof(task_states[0]));
	buf_adds(b, " (task ");
	add(b, msg, "id");
	buf_addc(b, ')');
	add_instance(b, msg);
	return true;
}

static bool
sum_tag(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	(void)env;
	if (!get(msg, "tag") || !get(msg, "name"))
		return false;
	add_owner(b, msg);
	add_nvr(b, msg);
	buf_adds(b, strcmp(title, "buildsys.untag") == 0 ?
	    " untagged from " : " tagged into ");
	add(b, msg, "tag");
	if (sget(msg, "user")) {
		buf_adds(b, " by ");
		add(b, msg, "user");
	}
	add_instance(b, msg);
	return true;
}

/* koji >= 1.11: sigkey, rpm; older: info (with sigkey). */
static bool
sum_rpm_sign(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	const struct jv *rpm = get(msg, "rpm");

	(void)env;
	(void)title;
	if (rpm == NULL || rpm->type != JV_OBJECT)
		rpm = get(msg, "info");
	if (rpm == NULL || rpm->type != JV_OBJECT)
		return false;
	buf_adds(b, "Koji build ");
	add_nvr(b, rpm);
	buf_addc(b, '.');
	add(b, rpm, "arch");
	buf_adds(b, ".rpm signed with sigkey '");
	add(b, get(msg, "sigkey") ? msg : rpm, "sigkey");
	buf_addc(b, '\'');
	add_instance(b, msg);
	return true;
}

static bool
sum_repo(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	(void)env;
	buf_adds(b, strcmp(title, "buildsys.repo.init") == 0 ?
	    "Repo initialized: " : "Repo done: ");
	add(b, msg, "tag");
	add_instance(b, msg);
	return true;
}

static bool
sum_package_list(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	(void)env;
	(void)title;
	if (!get(msg, "package"))
		return false;
	buf_adds(b, "Package list change for ");
	add(b, msg, "package");
	buf_adds(b, ": '");
	add(b, msg, "tag");
	buf_addc(b, '\'');
	if (sget(msg, "action")) {
		buf_adds(b, " (");
		add(b, msg, "action");
		buf_addc(b, ')');
	}
	add_instance(b, msg);
	return true;
}

/* Did a robosignatory reply say success?  ("success", "SUCCESS") */
static bool
succeeded(const struct jv *status)
{
	return status && status->type == JV_STRING && status->len == 7 &&
	    strncasecmp(status->u.str, "success", 7) == 0;
}

/* ": <first error>" from a list of errors, or from a string. */
static void
add_error(struct buf *b, const struct jv *msg, const char *key)
{
	const struct jv *e = get(msg, key);

	if (e && e->type == JV_ARRAY && e->len > 0)
		e = &e->u.items[0];
	if (e && e->type == JV_STRING && e->len > 0) {
		buf_adds(b, ": ");
		add_value(b, e, FIELD_MAX);
	}
}

/* robosignatory.* (sections 3.4, 3.6). */
static bool
sum_robosignatory(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	const char *what = title + strlen("robosignatory");
	const struct jv *status = get(msg, "signing_status");

	(void)env;
	if (msg == NULL || msg->type != JV_OBJECT || *what++ != '.')
		return false;
	if (strcmp(what, "container.sign") == 0) {
		buf_adds(b, succeeded(status) ? "robosignatory signed " :
		    "robosignatory failed to sign ");
		add(b, msg, "repo");
		if (get(msg, "pub_task_id")) {
			buf_adds(b, " (pub task ");
			add(b, msg, "pub_task_id");
			buf_addc(b, ')');
		}
		buf_adds(b, " with key ");
		add(b, msg, "sig_key_id");
		if (!succeeded(status)) {
			buf_adds(b, ": ");
			add(b, msg, "signing_status");
			add_error(b, msg, "errors");
		}
		return true;
	}
	if (strcmp(what, "art.sign") == 0) {
		buf_adds(b, succeeded(status) ? "robosignatory signed " :
		    "robosignatory failed to sign ");
		add(b, msg, "artifact_meta.name");
		buf_adds(b, " (request ");
		add(b, msg, "request_id");
		buf_addc(b, ')');
		if (!succeeded(status)) {
			buf_adds(b, ": ");
			add(b, msg, "signing_status");
			add_error(b, msg, "errors");
		}
		return true;
	}
	if (strcmp(what, "xml-sign.finished") == 0) {
		if (get(msg, "error")) {
			buf_adds(b, "robosignatory failed to sign XML "
			    "metadata");
			add_error(b, msg, "error");
		} else {
			buf_adds(b, "robosignatory signed XML metadata");
		}
		return true;
	}
	return false;
}

/* coreos.build.request.{artifacts,ostree}-sign.finished (section 3.4). */
static bool
sum_coreos(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	const struct jv *arts = get(msg, "artifacts");
	bool ok = succeeded(get(msg, "status"));

	(void)env;
	if (!get(msg, "build_id"))
		return false;
	buf_adds(b, ok ? "robosignatory signed " :
	    "robosignatory failed to sign ");
	if (strstr(title, ".ostree-sign.") != NULL) {
		buf_adds(b, "the OSTree commit of ");
	} else {
		size_t n = arts && arts->type == JV_ARRAY ? arts->len : 0;

		buf_printf(b, "%zu artifact%s of ", n, n == 1 ? "" : "s");
	}
	add(b, msg, "build_id");
	buf_adds(b, " (");
	add(b, msg, "basearch");
	buf_addc(b, ')');
	if (!ok) {
		buf_adds(b, ": ");
		add(b, msg, "status");
		add_error(b, msg, "failure-message");
	}
	return true;
}

/* logger.log: fedmsg-logger's {"log": text}, or a bare string (2.4). */
static bool
sum_logger(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	const struct jv *text = msg && msg->type == JV_STRING ? msg :
	    get(msg, "log");

	(void)title;
	if (text == NULL)
		return false;
	add(b, env, "username");
	buf_adds(b, ": ");
	add_value(b, text, FIELD_MAX);
	return true;
}

/* Anything else: the payload's top-level members as key=value. */
static void
sum_generic(struct buf *b, const struct jv *msg)
{
	size_t start = b->len, i;

	if (msg == NULL)
		return;
	if (msg->type != JV_OBJECT) {
		add_value(b, msg, GENERIC_MAX);
		return;
	}
	for (i = 0; i < msg->len && b->len - start <= GENERIC_MAX; i++) {
		const struct jv_member *mb = &msg->u.members[i];
		const struct jv *v = &mb->value;

		if (i > 0)
			buf_addc(b, ' ');
		add_text(b, mb->key, mb->key_len, FIELD_MAX, 0);
		buf_addc(b, '=');
		if (v->type == JV_STRING && (v->len == 0 ||
		    memchr(v->u.str, ' ', v->len) != NULL)) {
			buf_addc(b, '"');
			add_text(b, v->u.str, v->len, FIELD_MAX, ESC_QUOTE);
			buf_addc(b, '"');
		} else {
			add_value(b, v, FIELD_MAX);
		}
	}
	if (b->oom || b->len - start <= GENERIC_MAX)
		return;
	/* cut at a character boundary */
	i = start + GENERIC_MAX;
	while (i > start && ((unsigned char)b->data[i] & 0xc0) == 0x80)
		i--;
	b->len = i;
	buf_add(b, "...", 3);
}

static const struct {
	const char	*title;	/* topic without prefix and environment */
	bool		 prefix; /* also title + ".<anything>" */
	summariser	*fn;
} summarisers[] = {
	{ "git.receive", true, sum_git_receive },
	{ "git.branch", true, sum_git_branch },
	{ "git.lookaside.new", false, sum_git_lookaside },
	{ "buildsys.build.state.change", false, sum_build_state },
	{ "buildsys.task.state.change", false, sum_task_state },
	{ "buildsys.tag", false, sum_tag },
	{ "buildsys.untag", false, sum_tag },
	{ "buildsys.rpm.sign", false, sum_rpm_sign },
	{ "buildsys.repo.init", false, sum_repo },
	{ "buildsys.repo.done", false, sum_repo },
	{ "buildsys.package.list.change", false, sum_package_list },
	{ "robosignatory", true, sum_robosignatory },
	{ "coreos.build.request.artifacts-sign.finished", false, sum_coreos },
	{ "coreos.build.request.ostree-sign.finished", false, sum_coreos },
	{ "logger.log", false, sum_logger },
};

/*
 * The topic without "<prefix>.<environment>." the way fedmsg.meta's
 * msg2title cuts it (the first three segments), or without
 * "/topic/VirtualTopic.<eng>." for UMB topics.  Short topics stay whole.
 */
static const char *
topic_title(const char *topic)
{
	static const char umb[] = "/topic/VirtualTopic.";
	const char *p = topic, *dot;
	int skip = 3;

	if (strncmp(topic, umb, sizeof(umb) - 1) == 0) {
		p = topic + sizeof(umb) - 1;
		skip = 1;
	}
	for (; skip > 0; skip--) {
		if ((dot = strchr(p, '.')) == NULL)
			return topic;
		p = dot + 1;
	}
	return p;
}

/* Local time of the message's timestamp, false when it has none. */
static bool
msg_tm(const struct fm_msg *m, struct tm *tm)
{
	double ts;
	time_t t;

	if (!fm_msg_timestamp(m, &ts) || !isfinite(ts) ||
	    ts < -1e15 || ts > 1e15)
		return false;
	t = (time_t)ts;		/* time.ctime() rounds down (no libm here) */
	if ((double)t > ts)
		t--;
	return localtime_r(&t, tm) != NULL;
}

char *
terse_line(const struct fm_msg *m)
{
	const struct jv *env = msg_root(m), *msg = get(env, "msg");
	const char *topic = fm_msg_topic(m), *title;
	struct buf b = BUF_INIT;
	struct tm tm;
	char hms[16];
	size_t i, n, start;

	if (!msg_tm(m, &tm) || strftime(hms, sizeof(hms), "%H:%M:%S", &tm) == 0)
		snprintf(hms, sizeof(hms), "--:--:--");
	buf_adds(&b, hms);
	buf_addc(&b, ' ');
	if (topic == NULL)
		topic = "-";
	add_text(&b, topic, strlen(topic), 0, 0);
	buf_addc(&b, ' ');
	title = topic_title(topic);
	start = b.len;
	for (i = 0; i < sizeof(summarisers) / sizeof(summarisers[0]); i++) {
		n = strlen(summarisers[i].title);
		if (strncmp(title, summarisers[i].title, n) != 0 ||
		    !(title[n] == '\0' ||
		    (summarisers[i].prefix && title[n] == '.')))
			continue;
		if (summarisers[i].fn(&b, msg, env, title))
			return buf_steal(&b, NULL);
		b.len = start;	/* a partial line: start again */
		break;
	}
	if (b.data)
		b.data[b.len] = '\0';
	sum_generic(&b, msg);
	if (b.len == start && !b.oom) {		/* nothing to say: no blank */
		b.len--;
		b.data[b.len] = '\0';
	}
	return buf_steal(&b, NULL);
}

/* ---- pretty JSON -------------------------------------------------------- */

#define C_KEY	"\033[34m"
#define C_STR	"\033[32m"
#define C_NUM	"\033[36m"
#define C_LIT	"\033[35m"
#define C_OFF	"\033[0m"

static void
indent(struct buf *b, unsigned depth)
{
	char *p;

	buf_addc(b, '\n');
	if ((p = buf_reserve(b, 2 * (size_t)depth)) != NULL) {
		memset(p, ' ', 2 * (size_t)depth);
		b->len += 2 * (size_t)depth;
		b->data[b->len] = '\0';
	}
}

static void
coloured(struct buf *b, int flags, const char *colour, const char *s,
    size_t n)
{
	if (flags & TAIL_COLOR)
		buf_adds(b, colour);
	buf_add(b, s, n);
	if (flags & TAIL_COLOR)
		buf_adds(b, C_OFF);
}

static void
pretty_string(struct buf *b, int flags, const char *colour, const char *s,
    size_t n)
{
	if (flags & TAIL_COLOR)
		buf_adds(b, colour);
	add_json_string(b, s, n);
	if (flags & TAIL_COLOR)
		buf_adds(b, C_OFF);
}

static bool
credential(const struct jv_member *mb)
{
	return (mb->key_len == 9 && memcmp(mb->key, "signature", 9) == 0) ||
	    (mb->key_len == 11 && memcmp(mb->key, "certificate", 11) == 0);
}

static void pretty_value(struct buf *, const struct jv *, unsigned, int,
    const struct fm_msg *);

/* m is set for the envelope itself: credentials go, timestamp may change. */
static void
pretty_object(struct buf *b, const struct jv *v, unsigned depth, int flags,
    const struct fm_msg *m)
{
	uint32_t i;
	bool first = true;

	buf_addc(b, '{');
	for (i = 0; i < v->len; i++) {
		const struct jv_member *mb = &v->u.members[i];
		struct tm tm;
		char when[64];

		if (m && credential(mb))
			continue;
		if (!first)
			buf_addc(b, ',');
		first = false;
		indent(b, depth + 1);
		pretty_string(b, flags, C_KEY, mb->key, mb->key_len);
		buf_add(b, ": ", 2);
		if (m && (flags & TAIL_CTIME) && mb->key_len == 9 &&
		    memcmp(mb->key, "timestamp", 9) == 0 && msg_tm(m, &tm) &&
		    strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm))
			pretty_string(b, flags, C_STR, when, strlen(when));
		else
			pretty_value(b, &mb->value, depth + 1, flags, NULL);
	}
	if (!first)
		indent(b, depth);
	buf_addc(b, '}');
}

static void
pretty_value(struct buf *b, const struct jv *v, unsigned depth, int flags,
    const struct fm_msg *m)
{
	char num[PYFLOAT_MAX];
	uint32_t i;

	switch (v->type) {
	case JV_NULL: coloured(b, flags, C_LIT, "null", 4); break;
	case JV_FALSE: coloured(b, flags, C_LIT, "false", 5); break;
	case JV_TRUE: coloured(b, flags, C_LIT, "true", 4); break;
	case JV_INT: coloured(b, flags, C_NUM, v->u.str, v->len); break;
	case JV_FLOAT:
		coloured(b, flags, C_NUM, num, canon_float(v->u.num, num));
		break;
	case JV_STRING:
		pretty_string(b, flags, C_STR, v->u.str, v->len);
		break;
	case JV_ARRAY:
		buf_addc(b, '[');
		for (i = 0; i < v->len; i++) {
			if (i > 0)
				buf_addc(b, ',');
			indent(b, depth + 1);
			pretty_value(b, &v->u.items[i], depth + 1, flags, NULL);
		}
		if (v->len > 0)
			indent(b, depth);
		buf_addc(b, ']');
		break;
	case JV_OBJECT:
		pretty_object(b, v, depth, flags, m);
		break;
	}
}

char *
tail_pretty(const struct fm_msg *m, int flags)
{
	struct buf b = BUF_INIT;

	pretty_value(&b, msg_root(m), 0, flags, m);
	return buf_steal(&b, NULL);
}

/* ---- --query ------------------------------------------------------------ */

char *
tail_query(const struct fm_msg *m, const char *const *paths, size_t npaths)
{
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < npaths; i++) {
		const struct jv *v = get(msg_root(m), paths[i]);

		if (i > 0)
			buf_addc(&b, '\t');
		if (v == NULL || v->type == JV_NULL)
			continue;
		if (v->type == JV_STRING)
			add_text(&b, v->u.str, v->len, 0, ESC_BACKSLASH);
		else
			canon_value(&b, v);
	}
	return buf_steal(&b, NULL);
}

/* ---- time --------------------------------------------------------------- */

void
tail_iso_time(const struct fm_msg *m, char out[TAIL_ISO_LEN])
{
	struct tm tm;
	time_t now;
	size_t n;

	if (!msg_tm(m, &tm)) {
		now = time(NULL);
		localtime_r(&now, &tm);
	}
	/* strftime's %z is +hhmm; ISO 8601 extended format wants +hh:mm */
	n = strftime(out, TAIL_ISO_LEN, "%Y-%m-%dT%H:%M:%S%z", &tm);
	if (n >= 5 && n + 1 < TAIL_ISO_LEN) {
		memmove(out + n - 1, out + n - 2, 3);
		out[n - 2] = ':';
	} else if (n == 0) {
		snprintf(out, TAIL_ISO_LEN, "-");
	}
}
