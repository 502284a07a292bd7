/*
 * fedmsg-git-hook: a git post-receive hook that publishes git.receive per
 * new commit, as Fedora's dist-git hook (fedora-messaging-git-hook) does,
 * signed and sent to the fedmsg relay; it never fails or stalls a push.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <git2.h>
#include <jansson.h>

#include <fedmsg/crypto.h>
#include <fedmsg/message.h>

#include "config.h"
#include "git_commit.h"
#include "hook_broker.h"
#include "hook_out.h"
#include "log.h"

extern char **environ;

static const char usage[] =
"usage: fedmsg-git-hook [--config PATH] [--timeout SECONDS] [--spool DIR]\n"
"                       [--cert-prefix PREFIX] [--flush]\n"
"\n"
"A git post-receive hook: reads \"<old> <new> <ref>\" lines on standard\n"
"input and publishes, per new commit on a branch, oldest first, the\n"
"message <topic_prefix>.<environment>.git.receive with the body\n"
"{\"commit\": {...}, \"agent\": USER} of Fedora's fedora-messaging-git-hook,\n"
"signed with certnames[\"PREFIX.<short host name>\"], to relay_inbound\n"
"(or, with git_hook.broker, straight to a broker).\n"
"Tags and deleted branches publish nothing.  Messages are spooled first;\n"
"when no relay answers within the timeout they stay in the spool and the\n"
"next run (or --flush) sends them, in order, with their msg_ids (a run\n"
"that finds the spool held past the timeout uses a side spool inside it,\n"
"which the next one takes over).  The hook always exits 0 so that it\n"
"never fails a push.\n"
"\n"
"  --config PATH         fedmsg-c config; default $FEDMSG_CONFIG, else\n"
"                        /etc/fedmsg.d.  Keys of the hook (all optional):\n"
"                        git_hook.url_template (null: url null),\n"
"                        git_hook.with_namespace (false),\n"
"                        git_hook.excluded_paths ([]),\n"
"                        git_hook.spool_dir ($GIT_DIR/fedmsg-spool),\n"
"                        git_hook.timeout (3 s), git_hook.max_commits\n"
"                        (1000 per ref; beyond it the newest, each with a\n"
"                        \"note\"), git_hook.max_patch_bytes (1 MiB),\n"
"                        git_hook.shape (\"fedora\"; \"umb\": topic\n"
"                        git_hook.umb_topic, default\n"
"                        VirtualTopic.eng.distgit.commit, the flat commit\n"
"                        body; then per ref git_hook.umb_push_topic,\n"
"                        default VirtualTopic.eng.distgit.push, \"\": none),\n"
"                        git_hook.broker (null: relay_inbound; an\n"
"                        object: url, address, format fedmsg|fedora-\n"
"                        messaging|umb, credentials; see the README)\n"
"  --timeout SECONDS     wall time spent waiting on the bus (and on the\n"
"                        spool lock); overrides git_hook.timeout\n"
"  --spool DIR           overrides git_hook.spool_dir\n"
"  --cert-prefix PREFIX  default \"scm\" (fedmsg's dist-git convention)\n"
"  --flush               read no input: send what the spool holds; exit 1\n"
"                        if something is left (for a systemd timer)\n"
"  -h, --help            this text\n";

#define ZERO_OID "0000000000000000000000000000000000000000"
#define MAX_LINE 4096

struct settings {
	const char	*config, *spool, *cert_prefix;
	const char	*url_template;
	const char	*umb_topic;	/* git_hook.shape "umb": the topic */
	const char	*umb_push_topic; /* and of distgit.push ("": none) */
	json_t		*broker;	/* git_hook.broker, borrowed */
	bool		 with_namespace, flush;
	double		 timeout;
	long		 max_commits;
	long		 max_patch;
	long		 spool_max;
};

/* getpass.getuser(): the first of these set, else the passwd entry. */
static const char *
get_username(void)
{
	static const char *const vars[] = { "LOGNAME", "USER", "LNAME",
	    "USERNAME" };
	struct passwd *pw;
	size_t i;

	for (i = 0; i < 4; i++) {
		const char *v = getenv(vars[i]);

		if (v && *v)
			return v;
	}
	pw = getpwuid(getuid());
	return pw ? pw->pw_name : "unknown";
}

static json_t *
hook_key(const struct fm_config *cfg, const char *key)
{
	char name[64];

	snprintf(name, sizeof(name), "git_hook.%s", key);
	return fm_config_get(cfg, name);
}

/* The hook's keys from the config, under what the command line set. */
static int
read_settings(const struct fm_config *cfg, struct settings *s, double cli_timeout)
{
	json_t *v;

	if ((v = hook_key(cfg, "url_template")) && json_is_string(v))
		s->url_template = json_string_value(v);
	if ((v = hook_key(cfg, "with_namespace")))
		s->with_namespace = json_is_true(v);
	if (s->spool == NULL && (v = hook_key(cfg, "spool_dir")) &&
	    json_is_string(v))
		s->spool = json_string_value(v);
	s->timeout = cli_timeout >= 0 ? cli_timeout :
	    (v = hook_key(cfg, "timeout")) && json_is_number(v) ?
	    json_number_value(v) : 3.0;
	if ((v = hook_key(cfg, "max_commits")) && json_is_integer(v))
		s->max_commits = (long)json_integer_value(v);
	if ((v = hook_key(cfg, "max_patch_bytes")) && json_is_integer(v))
		s->max_patch = (long)json_integer_value(v);
	if ((v = hook_key(cfg, "spool_max_bytes")) && json_is_integer(v))
		s->spool_max = (long)json_integer_value(v);
	if ((v = hook_key(cfg, "shape")) && (!json_is_string(v) ||
	    (strcmp(json_string_value(v), "fedora") &&
	    strcmp(json_string_value(v), "umb")))) {
		log_err("config: git_hook.shape must be \"fedora\" or \"umb\"");
		return -1;
	}
	if (v && strcmp(json_string_value(v), "umb") == 0) {
		s->umb_topic = "VirtualTopic.eng.distgit.commit";
		if ((v = hook_key(cfg, "umb_topic")) && json_is_string(v) &&
		    *json_string_value(v))
			s->umb_topic = json_string_value(v);
		s->umb_push_topic = "VirtualTopic.eng.distgit.push";
		if ((v = hook_key(cfg, "umb_push_topic")) && json_is_string(v))
			s->umb_push_topic = json_string_value(v);
	}
	s->broker = hook_key(cfg, "broker");
	if (s->timeout < 0 || s->max_commits < 1 || s->max_patch < 0 ||
	    s->spool_max < 4096) {
		log_err("config: git_hook.timeout, max_commits, max_patch_bytes "
		    "or spool_max_bytes out of range");
		return -1;
	}
	return 0;
}

/* os.path.abspath() of $GIT_DIR (default "."), without symlink resolution. */
static char *
git_dir_abspath(void)
{
	const char *d = getenv("GIT_DIR");
	char cwd[PATH_MAX], *out;

	if (d == NULL || *d == '\0')
		d = ".";
	if (d[0] == '/')
		return strdup(d);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	if (strcmp(d, ".") == 0)
		return strdup(cwd);
	if (asprintf(&out, "%s/%s", cwd, d) < 0)
		return NULL;
	return out;
}

static bool
excluded(const struct fm_config *cfg, const char *path)
{
	json_t *list = hook_key(cfg, "excluded_paths"), *v;
	size_t i;

	json_array_foreach(list, i, v)
		if (json_is_string(v) && strstr(path, json_string_value(v)))
			return true;
	return false;
}

/*
 * The revisions the hook publishes for a ref update, newest first, as
 * `git rev-list NEW...OLD` lists them (NEW alone when OLD is no object
 * here), at most max + 1 (to tell that the cap was hit).  Returns the
 * count, -1 on error; *out is a malloc'ed array of 41-byte strings.
 */
static long
rev_list(git_repository *repo, const char *old, const char *new_, long max,
    char (**out)[41])
{
	const char *wd = git_repository_workdir(repo);
	char range[100], maxarg[40];
	char *argv[] = { "git", "rev-list", maxarg, range, "--", NULL };
	char (*revs)[41] = NULL, line[128];
	git_object *obj = NULL;
	git_oid oid;
	posix_spawn_file_actions_t fa;
	int pipefd[2], status;
	long n = 0;
	pid_t pid;
	FILE *f;

	if (git_oid_fromstr(&oid, old) == 0 &&
	    git_object_lookup(&obj, repo, &oid, GIT_OBJECT_ANY) == 0)
		snprintf(range, sizeof(range), "%s...%s", new_, old);
	else
		snprintf(range, sizeof(range), "%s", new_);
	git_object_free(obj);
	snprintf(maxarg, sizeof(maxarg), "--max-count=%ld", max + 1);
	if ((revs = calloc((size_t)max + 1, sizeof(*revs))) == NULL ||
	    pipe(pipefd) < 0) {
		free(revs);
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_addclose(&fa, pipefd[0]);
	posix_spawn_file_actions_addclose(&fa, pipefd[1]);
	posix_spawn_file_actions_addchdir_np(&fa, wd ? wd :
	    git_repository_path(repo));
	errno = posix_spawnp(&pid, "git", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (errno != 0) {
		log_err("cannot run git rev-list: %s", strerror(errno));
		close(pipefd[0]);
		free(revs);
		return -1;
	}
	f = fdopen(pipefd[0], "r");
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (n <= max && strlen(line) == 40)
			memcpy(revs[n++], line, 41);
	}
	if (f)
		fclose(f);
	else
		close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		log_err("git rev-list %s failed", range);
		free(revs);
		return -1;
	}
	*out = revs;
	return n;
}

/* The run: everything a push needs, kept in one place. */
struct run {
	struct settings		*s;
	struct fm_config	*cfg;
	git_repository		*repo;
	struct hook_out		*out;
	struct fm_signer	*signer;
	struct gc_opts		 gc;
	char			*topic;
	int64_t			 seq;
	const char		*note;	/* the cap note of this ref, or NULL */
	/* revisions published in this push, for "seen" */
	char			(*seen)[41];
	size_t			 n_seen, cap_seen;
	unsigned long		 published, skipped;
};

static bool
seen_before(struct run *r, const char *rev)
{
	size_t i;

	for (i = 0; i < r->n_seen; i++)
		if (memcmp(r->seen[i], rev, 40) == 0)
			return true;
	if (r->n_seen == r->cap_seen) {
		size_t cap = r->cap_seen ? r->cap_seen * 2 : 64;
		char (*p)[41] = realloc(r->seen, cap * sizeof(*p));

		if (p == NULL)
			return false;
		r->seen = p;
		r->cap_seen = cap;
	}
	memcpy(r->seen[r->n_seen++], rev, 41);
	return false;
}

/* Sign and spool one message; body is consumed.  what names it in logs. */
static bool
publish_body(struct run *r, const char *topic, json_t *body, const char *what)
{
	struct fm_msg_fields f = { 0 };
	struct fm_msg *m = NULL, *sm = NULL;
	char err[FM_ERRLEN], *text = NULL;
	const char *bytes;
	bool ok = false;
	size_t len;

	if (body && r->note)
		json_object_set_new(body, "note", json_string(r->note));
	if (body)
		text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	f.topic = topic;
	f.msg_json = text;
	f.i = ++r->seq;
	f.username = r->gc.username;
	if (text == NULL ||
	    fm_msg_build(&f, &r->cfg->limits, &m, err) < 0 ||
	    (r->signer && fm_signer_sign(r->signer, m, &sm, err) < 0)) {
		log_err("%s skipped: %s", what, text ? err : "out of memory");
	} else {
		bytes = fm_msg_body(sm ? sm : m, &len);
		ok = ho_add(r->out, bytes, len) == 0;
	}
	if (ok)
		r->published++;
	else
		r->skipped++;
	fm_msg_unref(m);
	fm_msg_unref(sm);
	free(text);
	return ok;
}

/*
 * Build, sign and spool the message of one commit.  In the UMB shape,
 * *where gets the commit's repo, namespace and path (for distgit.push)
 * when still NULL; the caller frees it.
 */
static bool
publish_commit(struct run *r, const char *rev, const char *branch,
    json_t **where)
{
	json_t *commit, *body;
	char err[FM_ERRLEN], what[64];

	if ((commit = gc_build(r->repo, &r->gc, rev, branch, err)) == NULL) {
		log_err("commit %s skipped: %s", rev, err);
		r->skipped++;
		return false;
	}
	json_object_set_new(commit, "seen", json_boolean(seen_before(r, rev)));
	if (r->s->umb_topic) {
		/* UMB's distgit.commit: the commit object itself, flat */
		json_object_set_new(commit, "agent",
		    json_string(r->gc.username));
		if (*where == NULL)
			*where = json_pack("{s:O?, s:O?, s:O?}", "repo",
			    json_object_get(commit, "repo"), "namespace",
			    json_object_get(commit, "namespace"), "path",
			    json_object_get(commit, "path"));
		body = commit;
	} else
		body = json_pack("{s:o, s:s}", "commit", commit, "agent",
		    r->gc.username);
	snprintf(what, sizeof(what), "commit %.40s", rev);
	return publish_body(r, r->topic, body, what);
}

/*
 * UMB's distgit.push for one ref: oldrev, newrev, the published commits
 * (newest first, as rev-list lists them), numcommits, username, repo,
 * namespace, branch, path.  where is consumed.
 */
static void
publish_push(struct run *r, const char *old, const char *new_,
    const char *branch, char (*revs)[41], long n, json_t *where)
{
	json_t *commits = json_array(), *body = where;
	long i;

	for (i = 0; i < n && commits; i++)
		json_array_append_new(commits, json_string(revs[i]));
	if (body && commits &&
	    json_object_update_new(body, json_pack("{s:s, s:s, s:O, s:I, s:s, "
	    "s:s}", "oldrev", old, "newrev", new_, "commits", commits,
	    "numcommits", (json_int_t)n, "username", r->gc.username, "branch",
	    branch)) == 0)
		publish_body(r, r->s->umb_push_topic, body, "distgit.push");
	else {
		json_decref(body);
		log_err("distgit.push of %s skipped: out of memory", branch);
	}
	json_decref(commits);
}

/* One "<old> <new> <ref>" line. */
static void
process_line(struct run *r, char *line)
{
	char old[64], new_[64], ref[MAX_LINE];
	char (*revs)[41] = NULL, *note = NULL;
	json_t *where = NULL;	/* UMB: repo, namespace, path */
	const char *branch;
	git_commit *c = NULL;
	git_oid oid;
	long n, i;

	if (sscanf(line, "%63s %63s %4095s", old, new_, ref) != 3 ||
	    strlen(old) != 40 || strlen(new_) != 40) {
		log_err("input line skipped: not \"<old> <new> <ref>\"");
		return;
	}
	if (strcmp(new_, ZERO_OID) == 0) {
		log_info("%s deleted: nothing to publish", ref);
		return;
	}
	if (strncmp(ref, "refs/heads/", 11) != 0) {
		log_info("%s is not a branch: nothing to publish", ref);
		return;
	}
	branch = ref + 11;
	if (git_oid_fromstr(&oid, new_) < 0 ||
	    git_commit_lookup(&c, r->repo, &oid) < 0) {
		log_err("%s: %s is not a commit in this repository; skipped",
		    ref, new_);
		return;
	}
	git_commit_free(c);
	if ((n = rev_list(r->repo, old, new_, r->s->max_commits, &revs)) < 0)
		return;
	if (n > r->s->max_commits) {
		log_warn("%s: more than %ld new commits; publishing the newest "
		    "%ld (git_hook.max_commits)", ref, r->s->max_commits,
		    r->s->max_commits);
		n = r->s->max_commits;
		/* said in each message of this ref too, for its consumers */
		if (asprintf(&note, "fedmsg-git-hook: more than %ld new "
		    "commits on %s in this push; only the newest %ld were "
		    "published (git_hook.max_commits)", r->s->max_commits,
		    branch, r->s->max_commits) > 0)
			r->note = note;
	}
	log_info("publishing %ld commit(s) of %s", n, branch);
	for (i = n - 1; i >= 0; i--)
		publish_commit(r, revs[i], branch, &where);
	if (r->s->umb_push_topic && *r->s->umb_push_topic && where)
		publish_push(r, old, new_, branch, revs, n, where);
	else
		json_decref(where);
	r->note = NULL;
	free(note);
	free(revs);
}

static int
open_signer(struct run *r)
{
	char key[256], err[FM_ERRLEN];

	if (!r->cfg->sign_messages)
		return 0;
	snprintf(key, sizeof(key), "%s.%s", r->s->cert_prefix,
	    fm_short_hostname());
	if ((r->signer = fm_config_signer(r->cfg, key, err)) == NULL) {
		log_err("%s", err);
		return -1;
	}
	return 0;
}

/* A url_template the hook cannot fill fails here, once, not per commit. */
static int
check_url_template(const char *tmpl)
{
	const char *keys[] = { "name", "email", "username", "summary",
	    "message", "rev", "path", "repo", "namespace", "branch", "patch",
	    "date", "repo_fullname" };
	json_t *fields = json_object();
	char err[FM_ERRLEN], *url;
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		json_object_set_new(fields, keys[i], json_string("x"));
	url = gc_format_url(tmpl, fields, err);
	json_decref(fields);
	if (url == NULL) {
		log_err("config: git_hook.%s", err);
		return -1;
	}
	free(url);
	return 0;
}

static void
drain_stdin(void)
{
	char buf[4096];

	while (fread(buf, 1, sizeof(buf), stdin) > 0)
		;
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "spool", required_argument, NULL, 's' },
		{ "cert-prefix", required_argument, NULL, 'p' },
		{ "flush", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct settings s = { .cert_prefix = "scm", .max_commits = 1000,
	    .max_patch = 1024 * 1024, .spool_max = 64L * 1024 * 1024 };
	struct run r = { .s = &s };
	struct hook_broker *broker = NULL;
	char err[FM_ERRLEN], line[MAX_LINE], *gitdir = NULL, *spool = NULL;
	double cli_timeout = -1;
	int64_t deadline;
	uint64_t left = 0;
	int c, rc = 0;
	char *end;

	log_init("fedmsg-git-hook", FM_LOG_INFO);
	git_libgit2_init();
	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'c': s.config = optarg; break;
		case 's': s.spool = optarg; break;
		case 'p': s.cert_prefix = optarg; break;
		case 'f': s.flush = true; break;
		case 't':
			cli_timeout = strtod(optarg, &end);
			if (*optarg == '\0' || *end || cli_timeout < 0 ||
			    cli_timeout > 3600) {
				fprintf(stderr, "fedmsg-git-hook: --timeout: "
				    "seconds from 0 to 3600\n");
				return 2;
			}
			break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind < argc) {
		fputs(usage, stderr);
		return 2;
	}
	/* From here on, every failure is logged and the push goes on. */
	if (fm_config_load(s.config, &r.cfg, err) < 0) {
		log_err("%s; nothing published", err);
		goto out;
	}
	if (read_settings(r.cfg, &s, cli_timeout) < 0 ||
	    (s.url_template && check_url_template(s.url_template) < 0))
		goto out;
	if (s.broker && (broker = hb_new(s.broker, err)) == NULL) {
		log_err("config: %s; nothing published", err);
		goto out;
	}
	deadline = ho_now_ms() + (int64_t)(s.timeout * 1000);
	if ((gitdir = git_dir_abspath()) == NULL) {
		log_err("cannot tell the repository's path");
		goto out;
	}
	if (s.spool == NULL && asprintf(&spool, "%s/fedmsg-spool", gitdir) > 0)
		s.spool = spool;
	if (s.flush) {
		r.out = ho_open(r.cfg, s.spool, (uint64_t)s.spool_max, deadline);
		if (r.out)
			ho_set_broker(r.out, broker);
		left = r.out ? ho_deliver(r.out, deadline) : 1;
		rc = left ? 1 : 0;
		goto out;
	}
	if (excluded(r.cfg, gitdir))
		goto out;
	if (git_repository_open_ext(&r.repo, gitdir, 0, NULL) < 0) {
		log_err("%s is not a git repository (%s); nothing published",
		    gitdir, git_error_last() ? git_error_last()->message : "?");
		goto out;
	}
	r.gc.username = get_username();
	r.gc.url_template = s.url_template;
	r.gc.with_namespace = s.with_namespace;
	r.gc.max_patch_bytes = (size_t)s.max_patch;
	r.topic = s.umb_topic ? strdup(s.umb_topic) :
	    fm_topic_build(r.cfg->topic_prefix, r.cfg->environment, "git",
	    "receive");
	if (r.topic == NULL || open_signer(&r) < 0)
		goto out;
	if ((r.out = ho_open(r.cfg, s.spool, (uint64_t)s.spool_max,
	    deadline)) == NULL)
		goto out;
	ho_set_broker(r.out, broker);
	while (fgets(line, sizeof(line), stdin)) {
		if (strchr(line, '\n') == NULL && !feof(stdin)) {
			log_err("input line longer than %d bytes skipped",
			    MAX_LINE);
			while ((c = getchar()) != EOF && c != '\n')
				;
			continue;
		}
		process_line(&r, line);
	}
	if (r.skipped)
		log_warn("%lu commit(s) skipped (see above)", r.skipped);
	/*
	 * The wait on the bus has its own bound, after building (at most
	 * max_commits messages per ref): a big push is spooled whole, then
	 * sent for up to timeout; what is left goes with the next run.
	 */
	left = ho_deliver(r.out, ho_now_ms() + (int64_t)(s.timeout * 1000));
	if (left == 0 && r.published)
		log_info("%lu message(s) sent", r.published);
out:
	drain_stdin();
	ho_close(r.out);
	hb_free(broker);
	fm_signer_free(r.signer);
	free(r.topic);
	free(r.seen);
	git_repository_free(r.repo);
	git_libgit2_shutdown();
	fm_config_free(r.cfg);
	free(gitdir);
	free(spool);
	return rc;
}
