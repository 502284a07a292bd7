/*
 * exec: run a program for every message, with the envelope on its stdin.
 * The safe successor of fedmsg-trigger, whose `echo '<json>' | CMD` broke
 * on a single quote in the message (spec 7.2): no shell is involved here,
 * arguments go to execve() as they are, and the body goes through a pipe.
 *
 * Enabled by its entry under "consumers" (config_key is NULL).  Config,
 * the "config" object of that entry:
 *
 *	"argv"		array of strings, required.  argv[0] must be an
 *			absolute path to an executable: there is no PATH
 *			search.  In every argument the placeholders {topic},
 *			{msg_id}, {signer} and {timestamp} are replaced by the
 *			message's values, as a whole argument or inside one
 *			("--topic={topic}").  An absent topic, msg_id or
 *			signer gives ""; an absent timestamp gives "0".
 *			Other text, braces included, is passed unchanged (a
 *			"{word}" that is not a placeholder is warned about at
 *			start).  Values come from signed messages but are
 *			still data, so a message is dropped, with a logged
 *			reason and nothing run, when a placeholder in argv
 *			would get:
 *			  - {topic} or {msg_id} with a character outside
 *			    [A-Za-z0-9._:-], or with "..";
 *			  - {timestamp} that is not finite or not in
 *			    [0, 1e15) (NaN, inf, 1e30, negative);
 *			  - any value that would start an argument with '-'
 *			    ("{msg_id}" with msg_id "-rf"), unless a literal
 *			    "--" argument comes before it ("--id={msg_id}"
 *			    starts with the template's own '-': fine).
 *			Placeholders argv does not use are not checked.
 *			{/json/pointer}: any RFC 6901 JSON Pointer into the
 *			envelope ("{/msg/commit/repo}", "{/msg/tags/0}";
 *			"~1" for a '/' in a member name, "~0" for '~'; it
 *			ends at the first '}', so a name holding '}' cannot
 *			be addressed), read from the hub's validated tree.
 *			Its value: a string as it is (any characters; the
 *			'-' rule above applies, NUL drops the message), an
 *			integer as its exact digits (any size), a float as
 *			Python's repr() ("0.1", "1e+16"), true or false.
 *			Absent, null, an array or an object: the message is
 *			skipped (dropped, logged with the placeholder and
 *			the msg_id), unless "missing" is "empty".  A
 *			pointer with bad syntax or "{/" without '}' is a
 *			config error.
 *	"missing"	"skip" (default) or "empty": what a {/json/pointer}
 *			placeholder that finds no scalar does (see above);
 *			"empty" substitutes "".
 *	"timeout"	seconds, 1 to 86400, default 30.  On expiry every
 *			process the program started gets SIGTERM, then
 *			SIGKILL 2 s later, and the message is retried (see
 *			"The child" for how they are found).
 *	"topics"	array of strings, optional: an extra filter inside
 *			the plugin (the entry's own "topics" decides what the
 *			hub delivers; prefer it).  "" or "*" is everything;
 *			other patterns are fnmatch(3) globs ('*' matches any
 *			run of characters, dots included; '?' and [...] too).
 *			Messages that do not match return OK unrun.
 *	"env"		object of strings, optional: the program's
 *			environment is PATH (DEFAULT_PATH below), LANG (the
 *			hub's, or C.UTF-8) and these, which may replace
 *			either.  Nothing else of the hub's environment is
 *			passed on.
 *	"retry_exit_codes"  array of integers 1-255, default [75]
 *			(EX_TEMPFAIL): these exit codes retry the message.
 *	"drop_exit_codes"   array of integers 1-255, default []: these drop
 *			it (so does every other nonzero code; listing them
 *			documents intent, and a code may not be in both lists).
 *
 * Verdicts: exit 0 -> OK; a retry code -> RETRY; any other code -> DROP;
 * timeout -> RETRY; killed by a signal we did not send -> DROP (a crash
 * would likely repeat); the program could not be started -> RETRY (the
 * binary may be mid-upgrade); a placeholder rule broken or a pointer
 * placeholder without a value -> DROP.  Each non-OK outcome is logged.
 * To run only for some messages, prefer the entry's "match" (evaluated
 * by the hub before queueing) to skipping them here.
 *
 * Needs plugin ABI 1.1 (fedmsg-c 0.2 or later): the config is read with
 * plugin_config.h and pointer values with the host's json_* accessors.
 *
 * The child: each run forks a small helper from the hub, which makes
 * itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER: only the helper,
 * never the hub) and starts the program in its own process group.  Every
 * process the program starts stays the helper's descendant whatever it
 * does (setsid(), a new process group, a double fork: orphans come back to
 * the helper), so at a timeout the helper sends SIGTERM to the program's
 * group and to every descendant it finds in /proc, then SIGKILL, again and
 * again, until it has no children left.  Limits: a descendant that
 * changes its user (setuid to another user) cannot be signalled by a hub
 * that is not root, and a program that exits normally leaves its
 * background processes running, as before (the timeout is what bounds a
 * run).  This works as root and as any user, without cgroups.  stdin is
 * a pipe carrying the envelope exactly as received (host->msg_body) and
 * then EOF; stdout and stderr are the hub's (so is the working directory);
 * other descriptors are closed (glibc >= 2.34; before that, only
 * close-on-exec ones, and the helper closes the rest it holds); empty
 * signal mask and default signal dispositions.  A program may exit
 * without reading stdin (EPIPE is expected; SIGPIPE is blocked in the
 * writing thread only, and one we caused is consumed).  The timeout also
 * bounds writing the body to a program that does not read it.
 *
 * What this needs from the hub: it must not reap children it did not start
 * (no waitpid(-1), SIGCHLD not set to SIG_IGN).  consume() blocks its
 * worker thread for up to timeout + 2 s; use "threads" > 1 to run several
 * programs at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fedmsg/plugin.h>
#include <fedmsg/plugin_config.h>

#define KILL_GRACE_MS	2000		/* SIGTERM -> SIGKILL */
#define EX_TEMPFAIL_	75

#if defined(__GLIBC__) && (__GLIBC__ > 2 || \
    (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define HAVE_ADDCLOSEFROM 1
#endif

/* The PATH of programs unless "env" sets one. */
#define DEFAULT_PATH	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:" \
			"/sbin:/bin"

static const char *const ph_names[] = {
	"{topic}", "{msg_id}", "{signer}", "{timestamp}",
};
#define NPH	(sizeof(ph_names) / sizeof(ph_names[0]))
enum { PH_TOPIC, PH_MSG_ID, PH_SIGNER, PH_TIMESTAMP };

/* What {topic} and {msg_id} may hold (or be empty: absent). */
#define ID_CHARS	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
			"0123456789._:-"
/* {timestamp} must be finite and in [0, TS_MAX): year 31 million. */
#define TS_MAX		1e15

struct exec_conf {
	char		**argv;		/* templates, NULL-terminated */
	size_t		  argc;
	bool		 *subst;	/* argv[i] holds a placeholder */
	bool		  uses[NPH];	/* some argument holds placeholder k */
	char		**ptrs;		/* the {/json/pointer}s used, each once
					   (without braces), NULL-terminated */
	size_t		  nptr;
	bool		  missing_empty; /* "missing": "empty" (else skip) */
	size_t		  dashdash;	/* index of the first literal "--" */
	long long	  timeout;	/* seconds */
	char		**topics;	/* NULL: no filter */
	char		**envp;		/* NULL-terminated */
	long long	 *retry;
	size_t		  nretry;
	long long	 *drop;
	size_t		  ndrop;
};

struct exec_state {
	const struct fm_host	*host;
	void			*hctx;
	struct exec_conf	 conf;
};

static void
conf_free(struct exec_conf *c)
{
	fm_config_strv_free(c->argv);
	free(c->subst);
	fm_config_strv_free(c->ptrs);
	fm_config_strv_free(c->topics);
	fm_config_strv_free(c->envp);
	free(c->retry);
	free(c->drop);
	memset(c, 0, sizeof(*c));
}

static bool
in_list(const long long *v, size_t n, long long x)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

/* Whether the NULL-terminated "NAME=value" vector v sets name. */
static bool
env_has(char *const *v, const char *name)
{
	size_t n = strlen(name);

	for (; *v != NULL; v++)
		if (strncmp(*v, name, n) == 0 && (*v)[n] == '=')
			return true;
	return false;
}

/*
 * The child's whole environment: PATH (DEFAULT_PATH), LANG (the hub's, or
 * C.UTF-8), then env's members (env NULL: none), which may replace
 * either.  Nothing else of the hub's environment (credentials, LD_PRELOAD,
 * sanitizer options) leaks into programs.
 */
static char **
make_envp(struct fm_config *env, char *err)
{
	const char *lang = getenv("LANG");
	size_t k = 0, j, klen, n = env != NULL ? fm_config_size(env) : 0;
	char **v, *s = NULL, *key = NULL;

	if ((v = calloc(n + 3, sizeof(*v))) == NULL)
		goto oom;
	for (j = 0; j < n; j++) {
		if ((key = fm_config_key(env, j)) == NULL) {
			snprintf(err, FM_CONFIG_ERRLEN, "'env': %s", env->err);
			goto fail;
		}
		klen = strlen(key);
		if (klen == 0 || strchr(key, '=') != NULL) {
			snprintf(err, FM_CONFIG_ERRLEN, "'env': bad variable "
			    "name '%s'", key);
			goto fail;
		}
		if (fm_config_string(env, key, &s) != 0) {
			snprintf(err, FM_CONFIG_ERRLEN, "'env': %s", env->err);
			goto fail;
		}
		if ((v[k] = malloc(klen + strlen(s) + 2)) == NULL)
			goto oom;
		sprintf(v[k++], "%s=%s", key, s);
		free(s);
		free(key);
		s = key = NULL;
	}
	if (!env_has(v, "PATH") &&
	    (v[k++] = strdup("PATH=" DEFAULT_PATH)) == NULL)
		goto oom;
	if (!env_has(v, "LANG")) {
		if (lang == NULL || *lang == '\0')
			lang = "C.UTF-8";
		if ((v[k] = malloc(strlen(lang) + 6)) == NULL)
			goto oom;
		sprintf(v[k++], "LANG=%s", lang);
	}
	return v;
oom:
	snprintf(err, FM_CONFIG_ERRLEN, "out of memory");
fail:
	free(s);
	free(key);
	fm_config_strv_free(v);
	return NULL;
}

/*
 * The length of the JSON Pointer placeholder at p ("{/a/b}": 6), 0 when p
 * does not start one ("{/" up to the first '}'), -1 when "{/" has no '}'.
 */
static long
ptr_placeholder(const char *p)
{
	const char *q;

	if (p[0] != '{' || p[1] != '/')
		return 0;
	if ((q = strchr(p + 2, '}')) == NULL)
		return -1;
	return (long)(q - p + 1);
}

/* The index of pointer ptr[0..len) in c->ptrs, or c->nptr. */
static size_t
ptr_index(const struct exec_conf *c, const char *ptr, size_t len)
{
	size_t k;

	for (k = 0; k < c->nptr; k++)
		if (strncmp(c->ptrs[k], ptr, len) == 0 && c->ptrs[k][len] == 0)
			break;
	return k;
}

/*
 * Note the placeholders of argument i: the fixed ones in c->uses, the
 * JSON Pointers in c->ptrs (checked for syntax: -1 and logged when one is
 * not a pointer).  A "{word}" that is no placeholder is warned about.
 */
static int
check_placeholders(struct exec_state *st, struct exec_conf *c, size_t i)
{
	const struct fm_host *h = st->host;
	const char *a = c->argv[i], *p, *q;
	char **v;
	long plen;
	size_t k;

	for (p = strchr(a, '{'); p != NULL; p = strchr(p + 1, '{')) {
		for (k = 0; k < NPH; k++)
			if (strncmp(p, ph_names[k], strlen(ph_names[k])) == 0)
				break;
		if (k < NPH) {
			c->subst[i] = true;
			c->uses[k] = true;
			continue;
		}
		if ((plen = ptr_placeholder(p)) < 0) {
			h->log(st->hctx, FM_LOG_ERR, "config: argv[%zu]: '%s' "
			    "has \"{/\" without a closing '}'", i, a);
			return -1;
		}
		if (plen > 0) {
			char *ptr = strndup(p + 1, (size_t)plen - 2);

			if (ptr == NULL)
				goto oom;
			/* the syntax, checked on any document */
			if (h->json_type(h->config(st->hctx), ptr) ==
			    FM_JSON_ESYNTAX) {
				h->log(st->hctx, FM_LOG_ERR, "config: argv[%zu]: "
				    "'{%s}' is not a JSON Pointer ('~' only as "
				    "~0 or ~1)", i, ptr);
				free(ptr);
				return -1;
			}
			c->subst[i] = true;
			if (ptr_index(c, ptr, strlen(ptr)) < c->nptr) {
				free(ptr);
				continue;
			}
			if ((v = realloc(c->ptrs, (c->nptr + 2) *
			    sizeof(*v))) == NULL) {
				free(ptr);
				goto oom;
			}
			c->ptrs = v;
			v[c->nptr++] = ptr;
			v[c->nptr] = NULL;
			continue;
		}
		for (q = p + 1; (*q >= 'a' && *q <= 'z') || *q == '_'; q++)
			;
		if (q > p + 1 && *q == '}')
			h->log(st->hctx, FM_LOG_WARN, "argv[%zu]: '%.*s' is not "
			    "a placeholder ({topic}, {msg_id}, {signer}, "
			    "{timestamp}, {/json/pointer}); passed as is", i,
			    (int)(q - p + 1), p);
	}
	return 0;
oom:
	h->log(st->hctx, FM_LOG_ERR, "out of memory");
	return -1;
}

static int
conf_load(struct exec_state *st, struct exec_conf *c)
{
	struct fm_config cfg, env;
	char *missing = NULL;
	size_t i;
	int r;

	memset(c, 0, sizeof(*c));
	c->timeout = 30;
	if (fm_config_open(&cfg, st->host, st->hctx) != 0)
		goto bad;
	if ((r = fm_config_strings(&cfg, "argv", &c->argv, &c->argc)) < 0)
		goto bad;
	if (r == 1 || c->argc == 0) {
		st->host->log(st->hctx, FM_LOG_ERR, "config: 'argv' is "
		    "required: [\"/absolute/program\", \"arg\", ...]");
		goto fail;
	}
	if (c->argv[0][0] != '/') {
		st->host->log(st->hctx, FM_LOG_ERR, "config: argv[0] '%s' "
		    "must be an absolute path (there is no PATH search)",
		    c->argv[0]);
		goto fail;
	}
	if (access(c->argv[0], X_OK) != 0) {
		st->host->log(st->hctx, FM_LOG_ERR, "config: argv[0] '%s': %s",
		    c->argv[0], strerror(errno));
		goto fail;
	}
	if ((c->subst = calloc(c->argc, sizeof(*c->subst))) == NULL)
		goto oom;
	c->dashdash = c->argc;
	for (i = 0; i < c->argc; i++) {
		if (check_placeholders(st, c, i) != 0)
			goto fail;
		if (i > 0 && c->dashdash == c->argc &&
		    strcmp(c->argv[i], "--") == 0)
			c->dashdash = i;
	}
	if ((r = fm_config_string(&cfg, "missing", &missing)) < 0)
		goto bad;
	if (r == 0 && strcmp(missing, "empty") != 0 &&
	    strcmp(missing, "skip") != 0) {
		st->host->log(st->hctx, FM_LOG_ERR, "config: 'missing' must be "
		    "\"skip\" or \"empty\", not '%s'", missing);
		free(missing);
		goto fail;
	}
	c->missing_empty = r == 0 && strcmp(missing, "empty") == 0;
	free(missing);
	if (fm_config_int(&cfg, "timeout", 1, 86400, &c->timeout) < 0 ||
	    fm_config_strings(&cfg, "topics", &c->topics, NULL) < 0)
		goto bad;
	if ((r = fm_config_object(&cfg, "env", &env)) < 0)
		goto bad;
	if ((c->envp = make_envp(r == 0 ? &env : NULL, cfg.err)) == NULL)
		goto bad;
	if ((r = fm_config_ints(&cfg, "retry_exit_codes", 1, 255, &c->retry,
	    &c->nretry)) < 0)
		goto bad;
	if (r == 1) {
		if ((c->retry = malloc(sizeof(*c->retry))) == NULL)
			goto oom;
		c->retry[0] = EX_TEMPFAIL_;
		c->nretry = 1;
	}
	if (fm_config_ints(&cfg, "drop_exit_codes", 1, 255, &c->drop,
	    &c->ndrop) < 0)
		goto bad;
	for (i = 0; i < c->ndrop; i++)
		if (in_list(c->retry, c->nretry, c->drop[i])) {
			st->host->log(st->hctx, FM_LOG_ERR, "config: exit code "
			    "%lld is in both retry_exit_codes and "
			    "drop_exit_codes", c->drop[i]);
			goto fail;
		}
	fm_config_warn_unknown(&cfg);
	return 0;
oom:
	snprintf(cfg.err, FM_CONFIG_ERRLEN, "out of memory");
bad:
	st->host->log(st->hctx, FM_LOG_ERR, "config: %s", cfg.err);
fail:
	conf_free(c);
	return -1;
}

static bool
topic_wanted(const struct exec_conf *c, const char *topic)
{
	size_t i;

	if (c->topics == NULL)
		return true;
	for (i = 0; c->topics[i] != NULL; i++) {
		if (c->topics[i][0] == '\0' || strcmp(c->topics[i], "*") == 0)
			return true;
		if (topic != NULL && fnmatch(c->topics[i], topic, 0) == 0)
			return true;
	}
	return false;
}

/*
 * tmpl with the placeholders replaced (vals: the fixed ones; pvals: the
 * values of c->ptrs): malloc'ed, or NULL.
 */
static char *
subst(const struct exec_conf *c, const char *tmpl,
    const char *const vals[NPH], char *const *pvals)
{
	char *out = NULL, *o = NULL;
	const char *p, *v;
	size_t len = 0, k, n, skip;
	long plen;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		for (p = tmpl; *p != '\0';) {
			for (k = 0; k < NPH; k++)
				if (strncmp(p, ph_names[k],
				    strlen(ph_names[k])) == 0)
					break;
			if (k < NPH) {
				v = vals[k];
				skip = strlen(ph_names[k]);
			} else if ((plen = ptr_placeholder(p)) > 0 &&
			    (k = ptr_index(c, p + 1, (size_t)plen - 2)) <
			    c->nptr) {
				v = pvals[k];
				skip = (size_t)plen;
			} else {
				if (o != NULL)
					*o++ = *p;
				len++;
				p++;
				continue;
			}
			n = strlen(v);
			if (o != NULL)
				o = (char *)memcpy(o, v, n) + n;
			len += n;
			p += skip;
		}
		if (pass == 0 && (o = out = malloc(len + 1)) == NULL)
			return NULL;
	}
	*o = '\0';
	return out;
}

/*
 * {timestamp}: an integer as such, else up to 6 decimals without trailing
 * zeros.  -1 when ts is not finite or outside [0, TS_MAX) (the range is
 * checked before any conversion: casting 1e30 or NaN is undefined).
 */
static int
fmt_timestamp(char *buf, size_t size, double ts)
{
	char *e;

	if (!isfinite(ts) || ts < 0 || ts >= TS_MAX)
		return -1;
	if (ts == (double)(long long)ts) {
		snprintf(buf, size, "%lld", (long long)ts);
		return 0;
	}
	snprintf(buf, size, "%.6f", ts);
	for (e = buf + strlen(buf) - 1; *e == '0'; e--)
		*e = '\0';
	if (*e == '.')
		*e = '\0';
	return 0;
}

/* Whether v may stand for {topic} or {msg_id}: ID_CHARS, no "..". */
static bool
id_ok(const char *v)
{
	return v[strspn(v, ID_CHARS)] == '\0' && strstr(v, "..") == NULL;
}

static long
ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
	    (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (long)ms;
}

static void
deadline_in(struct timespec *d, long long ms)
{
	clock_gettime(CLOCK_MONOTONIC, d);
	d->tv_sec += (time_t)(ms / 1000);
	d->tv_nsec += (long)(ms % 1000) * 1000000;
	if (d->tv_nsec >= 1000000000) {
		d->tv_sec++;
		d->tv_nsec -= 1000000000;
	}
}

/*
 * Write the body to the child's stdin (fd, non-blocking) before the
 * deadline.  Returns 0 when written or when the child closed its end
 * (EPIPE), 1 on timeout, -1 on another error (errno).  SIGPIPE is blocked
 * in this thread meanwhile, and one we caused is consumed.
 */
static int
feed(int fd, const char *body, size_t len, const struct timespec *deadline)
{
	static const struct timespec zero = { 0, 0 };
	sigset_t pipeset, old, pending;
	struct pollfd pfd;
	bool was_pending, epipe = false;
	size_t off = 0;
	ssize_t n;
	long ms;
	int rc = 0, saved;

	if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
		return -1;
	sigemptyset(&pipeset);
	sigaddset(&pipeset, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipeset, &old);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE) == 1;
	while (off < len) {
		if ((n = write(fd, body + off, len - off)) > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EPIPE) {
			epipe = true;
			break;
		}
		if (n < 0 && errno != EAGAIN) {
			rc = -1;
			break;
		}
		if ((ms = ms_left(deadline)) == 0) {
			rc = 1;
			break;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		(void)poll(&pfd, 1, ms > 1000 ? 1000 : (int)ms);
	}
	saved = errno;
	if (epipe && !was_pending)
		(void)sigtimedwait(&pipeset, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return rc;
}

/*
 * Wait for pid until the deadline: 0 when it ended (*status set), 1 when
 * it still runs, -1 on error (errno).  Sleeps on a pidfd when the kernel
 * has them, else polls waitpid with short naps.
 */
static int
wait_child(pid_t pid, int pidfd, const struct timespec *deadline,
    int *status)
{
	struct pollfd pfd;
	struct timespec nap;
	long ms, step = 1;
	pid_t r;

	for (;;) {
		if ((r = waitpid(pid, status, WNOHANG)) == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		if ((ms = ms_left(deadline)) == 0)
			return 1;
		if (pidfd >= 0) {
			pfd.fd = pidfd;
			pfd.events = POLLIN;
			(void)poll(&pfd, 1, ms > 1000 ? 1000 : (int)ms);
			continue;
		}
		if (ms > step)
			ms = step;
		nap.tv_sec = 0;
		nap.tv_nsec = ms * 1000000;
		(void)nanosleep(&nap, NULL);
		if (step < 50)
			step *= 2;
	}
}

/* -DEXEC_NO_PIDFD builds the fallback alone (to test it). */
static int
open_pidfd(pid_t pid)
{
#if defined(SYS_pidfd_open) && !defined(EXEC_NO_PIDFD)
	return (int)syscall(SYS_pidfd_open, pid, 0);	/* close-on-exec */
#else
	(void)pid;
	return -1;
#endif
}

/* ---- the helper: one per run, the subreaper of the program's tree ---- */

/* What the helper says on its report pipe. */
struct report {
	int	kind;		/* REP_EXIT: value is a wait status; */
	int	value;		/* REP_SPAWN: posix_spawn's error */
};
enum { REP_EXIT = 1, REP_SPAWN };

/*
 * Everything below until spawn_helper() runs in the helper, a fork() of a
 * multithreaded hub: system calls only, no malloc, no locks, no stdio.
 * The static state is the helper's own copy (each helper is a process).
 */
#define MAX_PROCS	16384

struct proc_pair {
	pid_t	pid, ppid;
	bool	ours;
};

static struct proc_pair procs[MAX_PROCS];
static pid_t h_prog;			/* the program */
static int h_report = -1;		/* report pipe (write end) */
static bool h_reported;

static void
h_send(int kind, int value)
{
	struct report r = { kind, value };

	while (write(h_report, &r, sizeof(r)) < 0 && errno == EINTR)
		;
}

/* Close every descriptor from 3 up but those in keep[0..3). */
static void
h_close_all_but(const int keep[3])
{
	struct rlimit rl;
	long fd, max = 65536;
	int k;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
	    && (long)rl.rlim_cur < max)
		max = (long)rl.rlim_cur;
	for (fd = 3; fd < max; fd++) {
		for (k = 0; k < 3 && keep[k] != fd; k++)
			;
		if (k == 3)
			(void)close((int)fd);
	}
}

/* Decimal digits of s (at most 10) as a pid, or -1. */
static pid_t
h_atoi(const char *s, const char *end)
{
	long v = 0;

	if (s == end || end - s > 10)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v > 0 && v <= INT32_MAX ? (pid_t)v : -1;
}

/* The parent of pid from /proc/<pid>/stat (dirfd: /proc), or -1. */
static pid_t
h_ppid(int dirfd, const char *name)
{
	char path[32], buf[512], *p, *q;
	size_t n = strlen(name);
	ssize_t r;
	int fd;

	if (n > 16)
		return -1;
	memcpy(path, name, n);
	memcpy(path + n, "/stat", 6);
	if ((fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return -1;
	buf[r] = '\0';
	/* "pid (comm) S ppid ...": comm may hold ')' and spaces */
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ' || p[2] == '\0' ||
	    p[3] != ' ')
		return -1;
	for (p += 4, q = p; *q >= '0' && *q <= '9'; q++)
		;
	return h_atoi(p, q);
}

/* Every process's pid and parent, sorted by pid; returns how many. */
static size_t
h_scan(void)
{
	char buf[8192];
	struct dirent64 *d;
	struct proc_pair t;
	size_t n = 0, gap, i, j;
	ssize_t got, off;
	pid_t pid, ppid;
	int dirfd;

	if ((dirfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return 0;
	while (n < MAX_PROCS &&
	    (got = getdents64(dirfd, buf, sizeof(buf))) > 0)
		for (off = 0; off < got && n < MAX_PROCS; off += d->d_reclen) {
			d = (struct dirent64 *)(void *)(buf + off);
			pid = h_atoi(d->d_name, d->d_name + strlen(d->d_name));
			if (pid > 0 && (ppid = h_ppid(dirfd, d->d_name)) >= 0) {
				procs[n].pid = pid;
				procs[n].ppid = ppid;
				procs[n++].ours = false;
			}
		}
	close(dirfd);
	for (gap = n / 2; gap > 0; gap /= 2)	/* shell sort: no malloc */
		for (i = gap; i < n; i++)
			for (j = i; j >= gap && procs[j - gap].pid >
			    procs[j].pid; j -= gap) {
				t = procs[j];
				procs[j] = procs[j - gap];
				procs[j - gap] = t;
			}
	return n;
}

static struct proc_pair *
h_find(size_t n, pid_t pid)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (procs[mid].pid == pid)
			return &procs[mid];
		if (procs[mid].pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * Send sig to the program's group and to every descendant of this helper,
 * wherever it went (its own session, process group or double fork: an
 * orphan comes back to us, the subreaper).
 */
static void
h_signal_tree(int sig)
{
	pid_t self = getpid();
	struct proc_pair *pp;
	size_t n, i;
	bool more = true;

	if (!h_reported)
		(void)kill(-h_prog, sig);
	n = h_scan();
	while (more) {
		more = false;
		for (i = 0; i < n; i++) {
			if (procs[i].ours)
				continue;
			if (procs[i].ppid == self || ((pp = h_find(n,
			    procs[i].ppid)) != NULL && pp->ours)) {
				procs[i].ours = true;
				more = true;
			}
		}
	}
	for (i = 0; i < n; i++)
		if (procs[i].ours)
			(void)kill(procs[i].pid, sig);
}

/* Reap children (waiting for one if block); whether any remain. */
static bool
h_reap(bool block)
{
	int ws;
	pid_t r;

	while ((r = waitpid(-1, &ws, block ? 0 : WNOHANG)) > 0 ||
	    (r < 0 && errno == EINTR)) {
		if (r == h_prog && !h_reported) {
			h_send(REP_EXIT, ws);
			h_reported = true;
		}
		block = false;
	}
	return !(r < 0 && errno == ECHILD);
}

static _Noreturn void
h_kill_all(void)
{
	do
		h_signal_tree(SIGKILL);
	while (h_reap(true));
	_exit(0);
}

/*
 * The helper's life: start the program, report its exit status, and on
 * the hub's word ('T' after the timeout, 'K' after the grace, or EOF when
 * the hub is gone) signal the whole tree.  After 'T' it stays until the
 * tree is empty or 'K' comes; without it, it leaves when the program has
 * exited (background processes of a program that exited are left alone).
 */
static _Noreturn void
helper_main(const posix_spawn_file_actions_t *fa,
    const posix_spawnattr_t *at, char *const argv[], char *const envp[],
    int in, int ctl, int rep)
{
	const int keep[3] = { in, ctl, rep };
	struct signalfd_siginfo si;
	struct pollfd pfd[2];
	sigset_t all, chld;
	bool terminating = false;
	char cmd;
	ssize_t n;
	int rc, sfd;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	h_close_all_but(keep);
	h_report = rep;
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	rc = posix_spawn(&h_prog, argv[0], fa, at, argv, envp);
	close(in);
	if (rc != 0) {
		h_send(REP_SPAWN, rc);
		_exit(0);
	}
	for (;;) {
		if (!h_reap(false))
			_exit(0);
		if (h_reported && !terminating)
			_exit(0);
		pfd[0].fd = ctl;
		pfd[0].events = POLLIN;
		pfd[1].fd = sfd;
		pfd[1].events = POLLIN;
		(void)poll(pfd, sfd >= 0 ? 2 : 1, sfd >= 0 ? -1 : 50);
		while (sfd >= 0 && read(sfd, &si, sizeof(si)) > 0)
			;
		if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(ctl, &cmd, 1);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == 1 && cmd == 'T') {
			terminating = true;
			h_signal_tree(SIGTERM);
			continue;
		}
		h_kill_all();	/* 'K', EOF (the hub is gone) or an error */
	}
}

/*
 * Start the helper, which starts argv with stdin from a new pipe (its
 * write end in *wfd); *ctl is the helper's command socket, *rep its
 * report pipe.  Returns 0 or an errno.
 */
static int
spawn_helper(const struct exec_conf *c, char *const argv[], pid_t *pid,
    int *wfd, int *ctl, int *rep)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int p[2], cs[2] = { -1, -1 }, rp[2] = { -1, -1 }, rc;

	if (pipe2(p, O_CLOEXEC) != 0)
		return errno;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cs) != 0 ||
	    pipe2(rp, O_CLOEXEC) != 0) {
		rc = errno;
		goto out_pipes;
	}
	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		goto out_pipes;
	if ((rc = posix_spawnattr_init(&at)) != 0)
		goto out_fa;
	sigemptyset(&none);
	sigfillset(&all);
	if ((rc = posix_spawn_file_actions_adddup2(&fa, p[0],
	    STDIN_FILENO)) != 0 ||
#ifdef HAVE_ADDCLOSEFROM
	    (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0 ||
#endif
	    (rc = posix_spawnattr_setsigmask(&at, &none)) != 0 ||
	    (rc = posix_spawnattr_setsigdefault(&at, &all)) != 0 ||
	    (rc = posix_spawnattr_setpgroup(&at, 0)) != 0 ||
	    (rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP)) != 0)
		goto out_at;
	if ((*pid = fork()) == 0)
		helper_main(&fa, &at, argv, c->envp, p[0], cs[1], rp[1]);
	if (*pid < 0)
		rc = errno;
out_at:
	posix_spawnattr_destroy(&at);
out_fa:
	posix_spawn_file_actions_destroy(&fa);
out_pipes:
	close(p[0]);
	if (cs[1] >= 0)
		close(cs[1]);
	if (rp[1] >= 0)
		close(rp[1]);
	if (rc != 0) {
		close(p[1]);
		if (cs[0] >= 0)
			close(cs[0]);
		if (rp[0] >= 0)
			close(rp[0]);
		return rc;
	}
	*wfd = p[1];
	*ctl = cs[0];
	*rep = rp[0];
	return 0;
}

/* Tell the helper cmd; a helper already gone is fine. */
static void
tell(int ctl, char cmd)
{
	while (send(ctl, &cmd, 1, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/*
 * The argument values for msg, checked: NULL (and a logged reason) when
 * the message must be dropped.  ts is the {timestamp} text's buffer.
 */
static bool
values(struct exec_state *st, struct fm_msg *msg, const char *vals[NPH],
    char ts[64], const char *id)
{
	const struct fm_host *h = st->host;
	const struct exec_conf *c = &st->conf;
	double t;

	vals[PH_TOPIC] = h->msg_topic(msg) != NULL ? h->msg_topic(msg) : "";
	vals[PH_MSG_ID] = h->msg_id(msg) != NULL ? h->msg_id(msg) : "";
	vals[PH_SIGNER] = h->msg_signer(msg) != NULL ? h->msg_signer(msg) : "";
	vals[PH_TIMESTAMP] = ts;
	ts[0] = '\0';
	/* (a bad msg_id is not logged: it is the offending text) */
	if (c->uses[PH_MSG_ID] && !id_ok(vals[PH_MSG_ID])) {
		h->log(st->hctx, FM_LOG_WARN, "%s: a message's {msg_id} has "
		    "characters outside [A-Za-z0-9._:-] or \"..\" (drop)",
		    c->argv[0]);
		return false;
	}
	if (c->uses[PH_TOPIC] && !id_ok(vals[PH_TOPIC])) {
		h->log(st->hctx, FM_LOG_WARN, "%s: message %s: {topic} has "
		    "characters outside [A-Za-z0-9._:-] or \"..\" (drop)",
		    c->argv[0], id_ok(id) ? id : "(bad msg_id)");
		return false;
	}
	t = h->msg_timestamp(msg);
	if (c->uses[PH_TIMESTAMP] && fmt_timestamp(ts, 64, t) != 0) {
		h->log(st->hctx, FM_LOG_WARN, "%s: message %s: {timestamp} %g "
		    "is not a number from 0 to 1e15 (drop)", c->argv[0], id, t);
		return false;
	}
	return true;
}

/*
 * The text of the value at ptr for an argument (malloc'ed into *out): a
 * string as it is, a number as its JSON text (an integer exactly, a float
 * as Python's repr), true or false.  Absent, null, an array or an object:
 * "" with "missing": "empty", else 1 (skip the message).  -1: out of
 * memory or a string holding NUL.  *why says what was wrong.
 */
static int
ptr_value(const struct exec_conf *c, const struct fm_host *h,
    const struct fm_json *doc, const char *ptr, char **out, const char **why)
{
	static const char *const what[] = { "absent", "null", "", "", "",
	    "an array", "an object" };
	const char *s;
	size_t len = 0;
	int t = h->json_type(doc, ptr);

	*out = NULL;
	*why = "out of memory";
	switch (t) {
	case FM_JSON_STRING:
		h->json_string(doc, ptr, &s, &len);
		if (memchr(s, '\0', len) != NULL) {
			*why = "a string holding a NUL character";
			return 1;
		}
		return (*out = strndup(s, len)) != NULL ? 0 : -1;
	case FM_JSON_NUMBER:
	case FM_JSON_BOOL:
		h->json_text(doc, ptr, NULL, 0, &len);
		if ((*out = malloc(len + 1)) == NULL)
			return -1;
		return h->json_text(doc, ptr, *out, len + 1, NULL) ==
		    FM_JSON_OK ? 0 : -1;
	case FM_JSON_ABSENT:
	case FM_JSON_NULL:
	case FM_JSON_ARRAY:
	case FM_JSON_OBJECT:
		*why = what[t];
		if (!c->missing_empty)
			return 1;
		return (*out = strdup("")) != NULL ? 0 : -1;
	default:	/* syntax: checked at load */
		*why = "not a JSON Pointer";
		return 1;
	}
}

/*
 * The values of the {/json/pointer} placeholders for msg into pvals[nptr]
 * (malloc'ed, freed by the caller with fm_config_strv_free): 0, 1 (and
 * logged) when the message must be skipped, -1 when out of memory.
 */
static int
ptr_values(struct exec_state *st, struct fm_msg *msg, char **pvals,
    const char *id)
{
	const struct fm_host *h = st->host;
	const struct exec_conf *c = &st->conf;
	const struct fm_json *doc = h->msg_json(msg);
	const char *why;
	size_t k;
	int rc;

	for (k = 0; k < c->nptr; k++) {
		if ((rc = ptr_value(c, h, doc, c->ptrs[k], &pvals[k], &why))
		    == 0)
			continue;
		if (rc > 0)
			h->log(st->hctx, FM_LOG_WARN, "%s: message %s: "
			    "placeholder {%s} is %s (skipped: drop)",
			    c->argv[0], id_ok(id) ? id : "(bad msg_id)",
			    c->ptrs[k], why);
		return rc;
	}
	return 0;
}

/*
 * argv for the message: NULL with *drop set (logged) when a placeholder
 * would start an argument with '-' before any literal "--".
 */
static char **
make_argv(struct exec_state *st, const char *const vals[NPH],
    char *const *pvals, const char *id, bool *drop)
{
	const struct exec_conf *c = &st->conf;
	char **argv;
	size_t i;

	*drop = false;
	if ((argv = calloc(c->argc + 1, sizeof(*argv))) == NULL)
		return NULL;
	for (i = 0; i < c->argc; i++) {
		argv[i] = c->subst[i] ? subst(c, c->argv[i], vals, pvals) :
		    strdup(c->argv[i]);
		if (argv[i] == NULL)
			goto fail;
		if (argv[i][0] == '-' && c->argv[i][0] != '-' &&
		    i < c->dashdash) {
			st->host->log(st->hctx, FM_LOG_WARN, "%s: message %s: "
			    "argv[%zu] '%s' would start with '-' from a "
			    "placeholder, and no \"--\" comes before it (drop)",
			    c->argv[0], id_ok(id) ? id : "(bad msg_id)", i,
			    c->argv[i]);
			*drop = true;
			goto fail;
		}
	}
	return argv;
fail:
	fm_config_strv_free(argv);
	return NULL;
}

/* Run the program for msg; returns the verdict. */
static int
run(struct exec_state *st, struct fm_msg *msg)
{
	const struct fm_host *h = st->host;
	const struct exec_conf *c = &st->conf;
	const char *vals[NPH], *body, *id;
	char ts[64], **argv, **pvals;
	struct timespec deadline;
	struct report r = { 0, 0 };
	size_t len;
	pid_t pid = -1;
	int wfd = -1, ctl = -1, rep = -1, pidfd, status = 0, rc, w, verdict;
	bool timed_out = false, drop;

	id = h->msg_id(msg) != NULL ? h->msg_id(msg) : "(no msg_id)";
	if (!values(st, msg, vals, ts, id))
		return FM_CONSUME_DROP;
	if ((pvals = calloc(c->nptr + 1, sizeof(*pvals))) == NULL)
		goto oom;
	if ((rc = ptr_values(st, msg, pvals, id)) != 0) {
		fm_config_strv_free(pvals);
		if (rc < 0)
			goto oom;
		return FM_CONSUME_DROP;
	}
	argv = make_argv(st, vals, pvals, id, &drop);
	fm_config_strv_free(pvals);
	if (argv == NULL) {
		if (drop)
			return FM_CONSUME_DROP;
		goto oom;
	}
	rc = spawn_helper(c, argv, &pid, &wfd, &ctl, &rep);
	fm_config_strv_free(argv);
	if (rc != 0) {
		h->log(st->hctx, FM_LOG_ERR, "%s: cannot start: %s (retry)",
		    c->argv[0], strerror(rc));
		return FM_CONSUME_RETRY;
	}
	pidfd = open_pidfd(pid);
	deadline_in(&deadline, c->timeout * 1000);
	body = h->msg_body(msg, &len);
	if ((w = feed(wfd, body, len, &deadline)) < 0)
		h->log(st->hctx, FM_LOG_WARN, "%s: writing the message to "
		    "its stdin: %s", c->argv[0], strerror(errno));
	close(wfd);
	if (w == 1 || (w = wait_child(pid, pidfd, &deadline, &status)) == 1) {
		timed_out = true;
		tell(ctl, 'T');
		deadline_in(&deadline, KILL_GRACE_MS);
		if ((w = wait_child(pid, pidfd, &deadline, &status)) == 1) {
			tell(ctl, 'K');
			while ((w = (int)waitpid(pid, &status, 0)) < 0 &&
			    errno == EINTR)
				;
			w = w < 0 ? -1 : 0;
		}
	}
	close(ctl);
	if (pidfd >= 0)
		close(pidfd);
	if (w == 0)
		while (read(rep, &r, sizeof(r)) < 0 && errno == EINTR)
			;
	close(rep);
	if (w < 0) {
		h->log(st->hctx, FM_LOG_ERR, "%s: waiting for pid %d: %s "
		    "(did someone else reap it?)", c->argv[0], (int)pid,
		    strerror(errno));
		return -1;
	}
	if (r.kind == REP_SPAWN) {
		h->log(st->hctx, FM_LOG_ERR, "%s: cannot start: %s (retry)",
		    c->argv[0], strerror(r.value));
		return FM_CONSUME_RETRY;
	}
	if (timed_out) {
		h->log(st->hctx, FM_LOG_WARN, "%s: message %s: timed out "
		    "after %llds, killed (retry)", c->argv[0], id, c->timeout);
		return FM_CONSUME_RETRY;
	}
	if (r.kind != REP_EXIT) {
		h->log(st->hctx, FM_LOG_ERR, "%s: message %s: its helper "
		    "ended without a report (status %d; retry)", c->argv[0],
		    id, status);
		return FM_CONSUME_RETRY;
	}
	status = r.value;
	if (WIFEXITED(status)) {
		rc = WEXITSTATUS(status);
		if (rc == 0)
			return FM_CONSUME_OK;
		verdict = in_list(c->retry, c->nretry, rc) ?
		    FM_CONSUME_RETRY : FM_CONSUME_DROP;
		h->log(st->hctx, FM_LOG_WARN, "%s: message %s: exit status "
		    "%d (%s)", c->argv[0], id, rc,
		    verdict == FM_CONSUME_RETRY ? "retry" : "drop");
		return verdict;
	}
	h->log(st->hctx, FM_LOG_WARN, "%s: message %s: killed by signal %d "
	    "(drop)", c->argv[0], id, WIFSIGNALED(status) ? WTERMSIG(status) :
	    0);
	return FM_CONSUME_DROP;
oom:
	h->log(st->hctx, FM_LOG_ERR, "out of memory (retry)");
	return FM_CONSUME_RETRY;
}

static int
exec_consume(void *state, struct fm_msg *msg)
{
	struct exec_state *st = state;

	if (!topic_wanted(&st->conf, st->host->msg_topic(msg)))
		return FM_CONSUME_OK;
	return run(st, msg);
}

static int
exec_init(const struct fm_host *host, void *hctx, void **state)
{
	struct exec_state *st;

	if ((st = calloc(1, sizeof(*st))) == NULL) {
		host->log(hctx, FM_LOG_ERR, "out of memory");
		return -1;
	}
	st->host = host;
	st->hctx = hctx;
	if (conf_load(st, &st->conf) != 0) {
		free(st);
		return -1;
	}
	*state = st;
	return 0;
}

/* A bad new config keeps the old one running. */
static int
exec_reload(void *state)
{
	struct exec_state *st = state;
	struct exec_conf c;

	if (conf_load(st, &c) != 0) {
		st->host->log(st->hctx, FM_LOG_ERR, "reload failed; keeping "
		    "the previous config");
		return -1;
	}
	conf_free(&st->conf);
	st->conf = c;
	return 0;
}

static void
exec_fini(void *state)
{
	struct exec_state *st = state;

	if (st == NULL)
		return;
	conf_free(&st->conf);
	free(st);
}

static const char *const exec_topics[] = { "", NULL };

static const struct fm_plugin plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"exec", "0.2.0", NULL, exec_topics,
	exec_init, exec_consume, exec_reload, exec_fini,
};

FM_PLUGIN_DEFINE(plugin)
