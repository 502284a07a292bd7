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
 *			still data: write "--opt={topic}" or put "--" before
 *			them if a value starting with '-' would matter.
 *	"timeout"	seconds, 1 to 86400, default 30.  On expiry the
 *			program's process group gets SIGTERM, then SIGKILL
 *			2 s later, and the message is retried.
 *	"topics"	array of strings, optional: an extra filter inside
 *			the plugin (the entry's own "topics" decides what the
 *			hub delivers; prefer it).  "" or "*" is everything,
 *			'*' matches any run of characters, other patterns are
 *			exact.  Messages that do not match return OK unrun.
 *	"env"		object of strings, optional: variables added to (or
 *			replacing) the hub's environment as it was at start
 *			or at the last reload.
 *	"retry_exit_codes"  array of integers 1-255, default [75]
 *			(EX_TEMPFAIL): these exit codes retry the message.
 *	"drop_exit_codes"   array of integers 1-255, default []: these drop
 *			it (so does every other nonzero code; listing them
 *			documents intent, and a code may not be in both lists).
 *
 * Verdicts: exit 0 -> OK; a retry code -> RETRY; any other code -> DROP;
 * timeout -> RETRY; killed by a signal we did not send -> DROP (a crash
 * would likely repeat); the program could not be started -> RETRY (the
 * binary may be mid-upgrade).  Each non-OK outcome is logged.
 *
 * The child: its own process group (so a timeout kills what it started
 * too, and a terminal's ^C reaches only the hub); stdin is a pipe carrying
 * the envelope exactly as received (host->msg_body) and then EOF; stdout
 * and stderr are the hub's (so is the working directory); other
 * descriptors are closed (glibc >= 2.34; before that, only close-on-exec
 * ones); empty signal mask and default signal dispositions.  A program
 * may exit without reading stdin (EPIPE is expected; SIGPIPE is blocked in
 * the writing thread only, and one we caused is consumed).  The timeout
 * also bounds writing the body to a program that does not read it.
 *
 * What this needs from the hub: it must not reap children it did not start
 * (no waitpid(-1), SIGCHLD not set to SIG_IGN).  consume() blocks its
 * worker thread for up to timeout + 2 s; use "threads" > 1 to run several
 * programs at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fedmsg/plugin.h>

#include "../common.h"

#define KILL_GRACE_MS	2000		/* SIGTERM -> SIGKILL */
#define EX_TEMPFAIL_	75

#if defined(__GLIBC__) && (__GLIBC__ > 2 || \
    (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define HAVE_ADDCLOSEFROM 1
#endif

extern char **environ;

static const char *const ph_names[] = {
	"{topic}", "{msg_id}", "{signer}", "{timestamp}",
};
#define NPH	(sizeof(ph_names) / sizeof(ph_names[0]))

struct exec_conf {
	char		**argv;		/* templates, NULL-terminated */
	size_t		  argc;
	bool		 *subst;	/* argv[i] holds a placeholder */
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
	cfg_strv_free(c->argv);
	free(c->subst);
	cfg_strv_free(c->topics);
	cfg_strv_free(c->envp);
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

/* The hub's environment with env's members added or replaced. */
static char **
make_envp(struct cfg *env, char *err)
{
	size_t n = 0, k = 0, i, j, klen;
	char **v, *s;

	for (i = 0; environ != NULL && environ[i] != NULL; i++)
		n++;
	if ((v = calloc(n + env->n + 1, sizeof(*v))) == NULL)
		goto oom;
	for (j = 0; j < env->n; j++) {
		klen = strlen(env->m[j].key);
		if (klen == 0 || strchr(env->m[j].key, '=') != NULL) {
			snprintf(err, CFG_ERRLEN, "'env': bad variable name "
			    "'%s'", env->m[j].key);
			goto fail;
		}
		if (cfg_get_string(env, env->m[j].key, &s) != 0) {
			snprintf(err, CFG_ERRLEN, "'env': %s", env->err);
			goto fail;
		}
		if ((v[k] = malloc(klen + strlen(s) + 2)) == NULL) {
			free(s);
			goto oom;
		}
		sprintf(v[k++], "%s=%s", env->m[j].key, s);
		free(s);
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < env->n; j++) {
			klen = strlen(env->m[j].key);
			if (strncmp(environ[i], env->m[j].key, klen) == 0 &&
			    environ[i][klen] == '=')
				break;
		}
		if (j < env->n)
			continue;
		if ((v[k++] = strdup(environ[i])) == NULL)
			goto oom;
	}
	return v;
oom:
	snprintf(err, CFG_ERRLEN, "out of memory");
fail:
	cfg_strv_free(v);
	return NULL;
}

/* Warn about "{word}" in argument i that is not a placeholder. */
static void
check_placeholders(struct exec_state *st, size_t i, const char *a,
    bool *has)
{
	const char *p, *q;
	size_t k;

	for (p = strchr(a, '{'); p != NULL; p = strchr(p + 1, '{')) {
		for (k = 0; k < NPH; k++)
			if (strncmp(p, ph_names[k], strlen(ph_names[k])) == 0)
				break;
		if (k < NPH) {
			*has = true;
			continue;
		}
		for (q = p + 1; (*q >= 'a' && *q <= 'z') || *q == '_'; q++)
			;
		if (q > p + 1 && *q == '}')
			st->host->log(st->hctx, FM_LOG_WARN, "argv[%zu]: "
			    "'%.*s' is not a placeholder ({topic}, {msg_id}, "
			    "{signer}, {timestamp}); passed as is", i,
			    (int)(q - p + 1), p);
	}
}

static int
conf_load(struct exec_state *st, struct exec_conf *c)
{
	struct cfg cfg, env;
	size_t i;
	int r;

	memset(c, 0, sizeof(*c));
	c->timeout = 30;
	if (cfg_parse(&cfg, st->host->config_json(st->hctx)) != 0)
		goto bad;
	if ((r = cfg_get_strings(&cfg, "argv", &c->argv, &c->argc)) < 0)
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
	for (i = 0; i < c->argc; i++)
		check_placeholders(st, i, c->argv[i], &c->subst[i]);
	if (cfg_get_int(&cfg, "timeout", 1, 86400, &c->timeout) < 0 ||
	    cfg_get_strings(&cfg, "topics", &c->topics, NULL) < 0)
		goto bad;
	if ((r = cfg_get_object(&cfg, "env", &env)) < 0)
		goto bad;
	if (r == 1)
		env.n = 0;
	if ((c->envp = make_envp(&env, cfg.err)) == NULL)
		goto bad;
	if ((r = cfg_get_ints(&cfg, "retry_exit_codes", 1, 255, &c->retry,
	    &c->nretry)) < 0)
		goto bad;
	if (r == 1) {
		if ((c->retry = malloc(sizeof(*c->retry))) == NULL)
			goto oom;
		c->retry[0] = EX_TEMPFAIL_;
		c->nretry = 1;
	}
	if (cfg_get_ints(&cfg, "drop_exit_codes", 1, 255, &c->drop,
	    &c->ndrop) < 0)
		goto bad;
	for (i = 0; i < c->ndrop; i++)
		if (in_list(c->retry, c->nretry, c->drop[i])) {
			st->host->log(st->hctx, FM_LOG_ERR, "config: exit code "
			    "%lld is in both retry_exit_codes and "
			    "drop_exit_codes", c->drop[i]);
			goto fail;
		}
	cfg_warn_unknown(&cfg, st->host, st->hctx);
	return 0;
oom:
	snprintf(cfg.err, CFG_ERRLEN, "out of memory");
bad:
	st->host->log(st->hctx, FM_LOG_ERR, "config: %s", cfg.err);
fail:
	conf_free(c);
	return -1;
}

/* '*' matches any run of characters; everything else itself. */
static bool
glob_match(const char *pat, const char *s)
{
	const char *star = NULL, *back = NULL;

	while (*s != '\0') {
		if (*pat == '*') {
			star = ++pat;
			back = s;
		} else if (*pat == *s) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star;
			s = ++back;
		} else
			return false;
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
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
		if (topic != NULL && glob_match(c->topics[i], topic))
			return true;
	}
	return false;
}

/* tmpl with the placeholders replaced: malloc'ed, or NULL. */
static char *
subst(const char *tmpl, const char *const vals[NPH])
{
	char *out = NULL, *o = NULL;
	const char *p;
	size_t len = 0, k, n;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		for (p = tmpl; *p != '\0';) {
			for (k = 0; k < NPH; k++)
				if (strncmp(p, ph_names[k],
				    strlen(ph_names[k])) == 0)
					break;
			if (k == NPH) {
				if (o != NULL)
					*o++ = *p;
				len++;
				p++;
				continue;
			}
			n = strlen(vals[k]);
			if (o != NULL)
				o = (char *)memcpy(o, vals[k], n) + n;
			len += n;
			p += strlen(ph_names[k]);
		}
		if (pass == 0 && (o = out = malloc(len + 1)) == NULL)
			return NULL;
	}
	*o = '\0';
	return out;
}

static void
fmt_timestamp(char *buf, size_t size, double ts)
{
	char *e;

	if (ts == (double)(long long)ts && ts > -1e15 && ts < 1e15) {
		snprintf(buf, size, "%lld", (long long)ts);
		return;
	}
	snprintf(buf, size, "%.6f", ts);
	for (e = buf + strlen(buf) - 1; *e == '0'; e--)
		*e = '\0';
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

/* posix_spawn argv with stdin from a new pipe; its write end in *wfd. */
static int
spawn(const struct exec_conf *c, char *const argv[], pid_t *pid, int *wfd)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int p[2], rc;

	if (pipe2(p, O_CLOEXEC) != 0)
		return errno;
	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		goto out_pipe;
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
	rc = posix_spawn(pid, argv[0], &fa, &at, argv, c->envp);
out_at:
	posix_spawnattr_destroy(&at);
out_fa:
	posix_spawn_file_actions_destroy(&fa);
out_pipe:
	close(p[0]);
	if (rc != 0)
		close(p[1]);
	else
		*wfd = p[1];
	return rc;
}

/* Run the program for msg; returns the verdict. */
static int
run(struct exec_state *st, struct fm_msg *msg)
{
	const struct fm_host *h = st->host;
	const struct exec_conf *c = &st->conf;
	const char *vals[NPH], *body, *id;
	char ts[64], **argv;
	struct timespec deadline;
	size_t i, len;
	pid_t pid;
	int wfd = -1, pidfd, status, rc, w, verdict;
	bool timed_out = false;

	id = h->msg_id(msg) != NULL ? h->msg_id(msg) : "(no msg_id)";
	vals[0] = h->msg_topic(msg) != NULL ? h->msg_topic(msg) : "";
	vals[1] = h->msg_id(msg) != NULL ? h->msg_id(msg) : "";
	vals[2] = h->msg_signer(msg) != NULL ? h->msg_signer(msg) : "";
	fmt_timestamp(ts, sizeof(ts), h->msg_timestamp(msg));
	vals[3] = ts;
	if ((argv = calloc(c->argc + 1, sizeof(*argv))) == NULL)
		goto oom;
	for (i = 0; i < c->argc; i++) {
		argv[i] = c->subst[i] ? subst(c->argv[i], vals) :
		    strdup(c->argv[i]);
		if (argv[i] == NULL) {
			cfg_strv_free(argv);
			goto oom;
		}
	}
	rc = spawn(c, argv, &pid, &wfd);
	cfg_strv_free(argv);
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
		(void)kill(-pid, SIGTERM);
		deadline_in(&deadline, KILL_GRACE_MS);
		if ((w = wait_child(pid, pidfd, &deadline, &status)) == 1) {
			(void)kill(-pid, SIGKILL);
			while ((w = (int)waitpid(pid, &status, 0)) < 0 &&
			    errno == EINTR)
				;
			w = w < 0 ? -1 : 0;
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	if (w < 0) {
		h->log(st->hctx, FM_LOG_ERR, "%s: waiting for pid %d: %s "
		    "(did someone else reap it?)", c->argv[0], (int)pid,
		    strerror(errno));
		return -1;
	}
	if (timed_out) {
		h->log(st->hctx, FM_LOG_WARN, "%s: message %s: timed out "
		    "after %llds, killed (retry)", c->argv[0], id, c->timeout);
		return FM_CONSUME_RETRY;
	}
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
	"exec", "0.1.0", NULL, exec_topics,
	exec_init, exec_consume, exec_reload, exec_fini,
};

FM_PLUGIN_DEFINE(plugin)
