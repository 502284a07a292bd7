/*
 * fedmsg-tail's one-line summaries (terse_line, terse.h) after fedmsg.meta's
 * processors, read from the message's parsed tree (msg_tree.h) so that big
 * integers, lone surrogates and NaN survive.
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
#include "msg_tree.h"
#include "term_text.h"
#include "terse.h"

/* ---- summaries ---------------------------------------------------------- */

/* "<name>-<version>-<release>" from an object. */
static void
add_nvr(struct buf *b, const struct jv *o)
{
	tree_add(b, o, "name");
	buf_addc(b, '-');
	tree_add(b, o, "version");
	buf_addc(b, '-');
	tree_add(b, o, "release");
}

/* "<owner>'s " when the owner is known (fedmsg.meta drops it otherwise). */
static void
add_owner(struct buf *b, const struct jv *msg)
{
	const struct jv *o = tree_sget(msg, "owner");

	if (o) {
		text_add(b, o->u.str, o->len, FIELD_MAX, 0);
		buf_adds(b, "'s ");
	}
}

/*
 * Each summariser appends one line for msg (the payload; env the whole
 * envelope; title the topic after prefix and environment) and returns
 * true, or returns false to fall back to the generic key=value line.
 */
typedef bool summariser(struct buf *, const struct jv *msg,
    const struct jv *env, const char *title);

/* dist-git, one message per commit (bodies: tests/unit/test_terse.c). */
static bool
sum_git_receive(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	const struct jv *c = tree_get(msg, "commit"), *who, *ns, *n;
	long long count = 1;
	const char *legacy = NULL, *dot;

	if (c == NULL || c->type != JV_OBJECT)
		return false;
	/* fedmsg.meta: the top-level agent (current hook), else the pusher */
	if ((who = tree_sget(msg, "agent")) == NULL &&
	    (who = tree_sget(c, "agent")) == NULL &&
	    (who = tree_sget(c, "username")) == NULL &&
	    (who = tree_sget(env, "username")) == NULL)
		who = tree_sget(c, "email");
	if (who)
		text_add(b, who->u.str, who->len, FIELD_MAX, 0);
	else
		buf_adds(b, "someone");
	if ((n = tree_get(msg, "commits")) != NULL && n->type == JV_ARRAY)
		count = n->len;
	else
		(void)tree_int_at(msg, "total_commits", &count);
	buf_printf(b, " pushed %lld commit%s to ", count,
	    count == 1 ? "" : "s");
	if ((ns = tree_sget(c, "namespace")) != NULL) {
		text_add(b, ns->u.str, ns->len, FIELD_MAX, 0);
		buf_addc(b, '/');
	}
	/* before 2013: git.receive.<package>.<branch>, fields maybe absent */
	if (strncmp(title, "git.receive.", 12) == 0)
		legacy = title + 12;
	if (tree_sget(c, "repo") == NULL && legacy) {
		dot = strchr(legacy, '.');
		text_add(b, legacy, dot ? (size_t)(dot - legacy) :
		    strlen(legacy), FIELD_MAX, 0);
	} else {
		tree_add(b, c, "repo");
	}
	buf_adds(b, " (");
	if (tree_sget(c, "branch") == NULL && legacy && strchr(legacy, '.')) {
		dot = strchr(legacy, '.') + 1;
		text_add(b, dot, strlen(dot), FIELD_MAX, 0);
	} else {
		tree_add(b, c, "branch");
	}
	buf_adds(b, ")");
	if (tree_sget(c, "summary") || tree_sget(c, "message")) {
		buf_adds(b, ": ");
		if (!tree_first_line(b, c, "summary"))
			tree_first_line(b, c, "message");
	}
	return true;
}

/* git.branch: name (repo), branch, agent, namespace. */
static bool
sum_git_branch(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	const struct jv *ns = tree_sget(msg, "namespace");

	(void)env;
	(void)title;
	if (msg == NULL || msg->type != JV_OBJECT || !tree_get(msg, "branch"))
		return false;
	tree_add(b, msg, "agent");
	buf_adds(b, " created branch '");
	tree_add(b, msg, "branch");
	buf_adds(b, "' for ");
	if (ns) {
		text_add(b, ns->u.str, ns->len, FIELD_MAX, 0);
		buf_addc(b, '/');
	}
	tree_add(b, msg, "name");
	return true;
}

/* git.lookaside.new: name, filename, agent. */
static bool
sum_git_lookaside(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	(void)env;
	(void)title;
	if (!tree_get(msg, "filename"))
		return false;
	tree_add(b, msg, "agent");
	buf_adds(b, " uploaded ");
	tree_add(b, msg, "filename");
	buf_adds(b, " for ");
	tree_add(b, msg, "name");
	return true;
}

/* koji.BUILD_STATES and koji.TASK_STATES, indexed by the state number. */
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
	const struct jv *v = tree_get(msg, key);
	long long code;

	if (tree_int_at(msg, key, &code) && code >= 0 && (size_t)code < nnames)
		buf_adds(b, names[code]);
	else if (v && v->type == JV_INT)
		buf_printf(b, "state %.*s", (int)(v->len < 24 ? v->len : 24),
		    v->u.str);
	else
		tree_add(b, msg, key);
}

/* " (<instance>)" for secondary koji hubs, as fedmsg.meta does. */
static void
add_instance(struct buf *b, const struct jv *msg)
{
	const struct jv *i = tree_sget(msg, "instance");

	if (i && !tree_str_is(i, "primary")) {
		buf_adds(b, " (");
		text_add(b, i->u.str, i->len, FIELD_MAX, 0);
		buf_addc(b, ')');
	}
}

static bool
sum_build_state(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	(void)env;
	(void)title;
	if (!tree_get(msg, "name") || !tree_get(msg, "new"))
		return false;
	add_owner(b, msg);
	add_nvr(b, msg);
	buf_addc(b, ' ');
	add_state(b, msg, "new", build_states,
	    sizeof(build_states) / sizeof(build_states[0]));
	buf_adds(b, " (build ");
	tree_add(b, msg, "build_id");
	buf_addc(b, ')');
	add_instance(b, msg);
	return true;
}

/* Task states: in Fedora only scratch builds publish them. */
static bool
sum_task_state(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	const struct jv *method = tree_sget(msg, "method");

	(void)env;
	(void)title;
	if (!tree_get(msg, "new") || !tree_get(msg, "id"))
		return false;
	add_owner(b, msg);
	if ((method == NULL || tree_str_is(method, "build")) &&
	    tree_sget(msg, "srpm")) {
		buf_adds(b, "scratch build of ");
		tree_add(b, msg, "srpm");
	} else {
		tree_add(b, msg, "method");
		buf_adds(b, " task");
	}
	buf_addc(b, ' ');
	add_state(b, msg, "new", task_states,
	    sizeof(task_states) / sizeof(task_states[0]));
	buf_adds(b, " (task ");
	tree_add(b, msg, "id");
	buf_addc(b, ')');
	add_instance(b, msg);
	return true;
}

static bool
sum_tag(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	(void)env;
	if (!tree_get(msg, "tag") || !tree_get(msg, "name"))
		return false;
	add_owner(b, msg);
	add_nvr(b, msg);
	buf_adds(b, strcmp(title, "buildsys.untag") == 0 ?
	    " untagged from " : " tagged into ");
	tree_add(b, msg, "tag");
	if (tree_sget(msg, "user")) {
		buf_adds(b, " by ");
		tree_add(b, msg, "user");
	}
	add_instance(b, msg);
	return true;
}

/* koji >= 1.11: sigkey, rpm; older: info (with sigkey). */
static bool
sum_rpm_sign(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	const struct jv *rpm = tree_get(msg, "rpm");

	(void)env;
	(void)title;
	if (rpm == NULL || rpm->type != JV_OBJECT)
		rpm = tree_get(msg, "info");
	if (rpm == NULL || rpm->type != JV_OBJECT)
		return false;
	buf_adds(b, "Koji build ");
	add_nvr(b, rpm);
	buf_addc(b, '.');
	tree_add(b, rpm, "arch");
	buf_adds(b, ".rpm signed with sigkey '");
	tree_add(b, tree_get(msg, "sigkey") ? msg : rpm, "sigkey");
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
	tree_add(b, msg, "tag");
	add_instance(b, msg);
	return true;
}

static bool
sum_package_list(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	(void)env;
	(void)title;
	if (!tree_get(msg, "package"))
		return false;
	buf_adds(b, "Package list change for ");
	tree_add(b, msg, "package");
	buf_adds(b, ": '");
	tree_add(b, msg, "tag");
	buf_addc(b, '\'');
	if (tree_sget(msg, "action")) {
		buf_adds(b, " (");
		tree_add(b, msg, "action");
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
	const struct jv *e = tree_get(msg, key);

	if (e && e->type == JV_ARRAY && e->len > 0)
		e = &e->u.items[0];
	if (e && e->type == JV_STRING && e->len > 0) {
		buf_adds(b, ": ");
		tree_add_value(b, e, FIELD_MAX);
	}
}

/* robosignatory.* (sections 3.4, 3.6). */
static bool
sum_robosignatory(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	const char *what = title + strlen("robosignatory");
	const struct jv *status = tree_get(msg, "signing_status");

	(void)env;
	if (msg == NULL || msg->type != JV_OBJECT || *what++ != '.')
		return false;
	if (strcmp(what, "container.sign") == 0) {
		buf_adds(b, succeeded(status) ? "robosignatory signed " :
		    "robosignatory failed to sign ");
		tree_add(b, msg, "repo");
		if (tree_get(msg, "pub_task_id")) {
			buf_adds(b, " (pub task ");
			tree_add(b, msg, "pub_task_id");
			buf_addc(b, ')');
		}
		buf_adds(b, " with key ");
		tree_add(b, msg, "sig_key_id");
		if (!succeeded(status)) {
			buf_adds(b, ": ");
			tree_add(b, msg, "signing_status");
			add_error(b, msg, "errors");
		}
		return true;
	}
	if (strcmp(what, "art.sign") == 0) {
		buf_adds(b, succeeded(status) ? "robosignatory signed " :
		    "robosignatory failed to sign ");
		tree_add(b, msg, "artifact_meta.name");
		buf_adds(b, " (request ");
		tree_add(b, msg, "request_id");
		buf_addc(b, ')');
		if (!succeeded(status)) {
			buf_adds(b, ": ");
			tree_add(b, msg, "signing_status");
			add_error(b, msg, "errors");
		}
		return true;
	}
	if (strcmp(what, "xml-sign.finished") == 0) {
		if (tree_get(msg, "error")) {
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

/* coreos.build.request.{artifacts,ostree}-sign.finished (robosignatory). */
static bool
sum_coreos(struct buf *b, const struct jv *msg, const struct jv *env,
    const char *title)
{
	const struct jv *arts = tree_get(msg, "artifacts");
	bool ok = succeeded(tree_get(msg, "status"));

	(void)env;
	if (!tree_get(msg, "build_id"))
		return false;
	buf_adds(b, ok ? "robosignatory signed " :
	    "robosignatory failed to sign ");
	if (strstr(title, ".ostree-sign.") != NULL) {
		buf_adds(b, "the OSTree commit of ");
	} else {
		size_t n = arts && arts->type == JV_ARRAY ? arts->len : 0;

		buf_printf(b, "%zu artifact%s of ", n, n == 1 ? "" : "s");
	}
	tree_add(b, msg, "build_id");
	buf_adds(b, " (");
	tree_add(b, msg, "basearch");
	buf_addc(b, ')');
	if (!ok) {
		buf_adds(b, ": ");
		tree_add(b, msg, "status");
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
	    tree_get(msg, "log");

	(void)title;
	if (text == NULL)
		return false;
	tree_add(b, env, "username");
	buf_adds(b, ": ");
	tree_add_value(b, text, FIELD_MAX);
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
		tree_add_value(b, msg, GENERIC_MAX);
		return;
	}
	for (i = 0; i < msg->len && b->len - start <= GENERIC_MAX; i++) {
		const struct jv_member *mb = &msg->u.members[i];
		const struct jv *v = &mb->value;

		if (i > 0)
			buf_addc(b, ' ');
		text_add(b, mb->key, mb->key_len, FIELD_MAX, 0);
		buf_addc(b, '=');
		if (v->type == JV_STRING && (v->len == 0 ||
		    memchr(v->u.str, ' ', v->len) != NULL)) {
			buf_addc(b, '"');
			text_add(b, v->u.str, v->len, FIELD_MAX, ESC_QUOTE);
			buf_addc(b, '"');
		} else {
			tree_add_value(b, v, FIELD_MAX);
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

char *
terse_line(const struct fm_msg *m)
{
	const struct jv *env = msg_root(m), *msg = tree_get(env, "msg");
	const char *topic = fm_msg_topic(m), *title;
	struct buf b = BUF_INIT;
	struct tm tm;
	char hms[16];
	size_t i, n, start;

	if (!msg_local_tm(m, &tm) ||
	    strftime(hms, sizeof(hms), "%H:%M:%S", &tm) == 0)
		snprintf(hms, sizeof(hms), "--:--:--");
	buf_adds(&b, hms);
	buf_addc(&b, ' ');
	if (topic == NULL)
		topic = "-";
	text_add(&b, topic, strlen(topic), 0, 0);
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
