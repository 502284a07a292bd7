/*
 * archive: append every message to JSON-lines files, one envelope per
 * line, as the bytes that arrived (host->msg_body), never re-serialised,
 * so signatures in the archive stay verifiable.
 *
 * Enabled by its entry under "consumers" (config_key is NULL).  Config,
 * the "config" object of that entry:
 *
 *	"dir"		absolute path, default "/var/lib/fedmsg-c/archive";
 *			created (mode 0750, parents too) when missing.  It
 *			must be owned by the hub's user and not group or
 *			other writable (else init, reload and rotation fail
 *			with the reason): anyone else able to write there
 *			could redirect our writes.  Files are opened with
 *			O_NOFOLLOW, and must be regular files with one link:
 *			a symlink or hard link named like an archive file is
 *			refused, never followed (the message is retried).
 *			(The path above dir is trusted as it is.)
 *	"prefix"	file name prefix, default "fedmsg"; letters, digits,
 *			'.', '_' and '-', not starting with '.'.
 *	"max_bytes"	integer, default 104857600 (100 MiB); 0 = no limit.
 *			A file is never made larger by a message (unless that
 *			message alone is larger: it then gets a file of its
 *			own).
 *	"rotate_daily"	boolean, default true.
 *	"fsync"		boolean, default false: fdatasync() after each line.
 *
 * Files (mode 0640): with rotate_daily, <prefix>-YYYY-MM-DD.jsonl for the
 * UTC day of writing, then <prefix>-YYYY-MM-DD.1.jsonl, .2, ... when the
 * next line would pass max_bytes.  Without it, <prefix>.jsonl, then
 * <prefix>.1.jsonl, ...  On start and on reload (SIGHUP, which also suits
 * logrotate) the highest-numbered file of the day is reopened and
 * appended to.
 *
 * Each line is written with one write() on an O_APPEND descriptor, under a
 * mutex (the hub may call consume() on several threads).  JSON cannot hold
 * a raw CR or LF except as whitespace between tokens, so a received body
 * that has some gets them replaced by spaces to stay one line: the same
 * length and the same JSON value (signatures are checked over the parsed
 * value, spec 3.3).  A failed or short write (ENOSPC, EDQUOT, EFBIG, EIO)
 * is undone with ftruncate(), logged, and the message retried; an fsync
 * failure is retried too, so the archive is at-least-once: a line may
 * appear twice, never cut.  One hub per directory and prefix.
 *
 * Needs plugin ABI 1.1 (fedmsg-c 0.2 or later): plugin_config.h reads the
 * config through the host's accessors.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <fedmsg/plugin.h>
#include <fedmsg/plugin_config.h>

#define PREFIX_MAX	64

struct arch_conf {
	char		*dir;
	char		*prefix;
	long long	 max_bytes;	/* 0: unlimited */
	bool		 daily;
	bool		 fsync;
};

struct arch_file {
	int		 fd;		/* -1: none open */
	char		 day[16];	/* "YYYY-MM-DD", "" without daily */
	unsigned long	 seq;		/* 0: the file without a number */
	long long	 size;
	char		*path;
};

struct archive {
	const struct fm_host	*host;
	void			*hctx;
	pthread_mutex_t		 lock;
	struct arch_conf	 conf;
	struct arch_file	 file;
	char			*buf;		/* line being written */
	size_t			 bufcap;
};

static void
conf_free(struct arch_conf *c)
{
	free(c->dir);
	free(c->prefix);
	memset(c, 0, sizeof(*c));
}

static void
file_close(struct arch_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

static bool
prefix_ok(const char *p)
{
	size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");

	return n > 0 && p[n] == '\0' && n <= PREFIX_MAX && p[0] != '.';
}

static int
conf_load(struct archive *a, struct arch_conf *c)
{
	struct fm_config cfg;

	memset(c, 0, sizeof(*c));
	c->max_bytes = 104857600;
	c->daily = true;
	if (fm_config_open(&cfg, a->host, a->hctx) != 0 ||
	    fm_config_string(&cfg, "dir", &c->dir) < 0 ||
	    fm_config_string(&cfg, "prefix", &c->prefix) < 0 ||
	    fm_config_int(&cfg, "max_bytes", 0, INT64_MAX, &c->max_bytes) < 0 ||
	    fm_config_bool(&cfg, "rotate_daily", &c->daily) < 0 ||
	    fm_config_bool(&cfg, "fsync", &c->fsync) < 0) {
		a->host->log(a->hctx, FM_LOG_ERR, "config: %s", cfg.err);
		goto fail;
	}
	if ((c->dir == NULL && (c->dir = strdup("/var/lib/fedmsg-c/archive"))
	    == NULL) || (c->prefix == NULL &&
	    (c->prefix = strdup("fedmsg")) == NULL)) {
		a->host->log(a->hctx, FM_LOG_ERR, "out of memory");
		goto fail;
	}
	if (c->dir[0] != '/') {
		a->host->log(a->hctx, FM_LOG_ERR, "config: 'dir' must be an "
		    "absolute path, not '%s'", c->dir);
		goto fail;
	}
	if (!prefix_ok(c->prefix)) {
		a->host->log(a->hctx, FM_LOG_ERR, "config: 'prefix' '%s' must "
		    "be 1-%d of [A-Za-z0-9._-], not starting with '.'",
		    c->prefix, PREFIX_MAX);
		goto fail;
	}
	fm_config_warn_unknown(&cfg);
	return 0;
fail:
	conf_free(c);
	return -1;
}

/* mkdir -p path (mode 0750); 0 or -1 with errno. */
static int
mkdirs(const char *path)
{
	char tmp[PATH_MAX], *p;
	struct stat sb;

	if (stat(path, &sb) == 0)
		return S_ISDIR(sb.st_mode) ? 0 : (errno = ENOTDIR, -1);
	if (strlen(path) >= sizeof(tmp))
		return errno = ENAMETOOLONG, -1;
	strcpy(tmp, path);
	for (p = tmp + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
			return -1;
		if (path[p - tmp] == '\0')
			break;
		*p = '/';
	}
	return 0;
}

/* The file stem: "<prefix>-<day>" or "<prefix>". */
static void
stem(const struct arch_conf *c, const char *day, char *out, size_t size)
{
	if (day[0] != '\0')
		snprintf(out, size, "%s-%s", c->prefix, day);
	else
		snprintf(out, size, "%s", c->prefix);
}

/*
 * Open dir (created if missing) for the files: it must be a directory
 * owned by us and writable by nobody else, or a symlink planted in it, or
 * a file swapped by another user, could redirect our writes.  Returns a
 * descriptor, or -1 (logged).
 */
static int
dir_open(struct archive *a, const char *dir)
{
	struct stat sb;
	int fd;

	if (mkdirs(dir) != 0) {
		a->host->log(a->hctx, FM_LOG_ERR, "cannot create %s: %s", dir,
		    strerror(errno));
		return -1;
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fstat(fd, &sb) != 0) {
		a->host->log(a->hctx, FM_LOG_ERR, "cannot open %s: %s", dir,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (sb.st_uid != geteuid()) {
		a->host->log(a->hctx, FM_LOG_ERR, "%s is owned by uid %u, not "
		    "by us (uid %u): refused", dir, (unsigned)sb.st_uid,
		    (unsigned)geteuid());
		close(fd);
		return -1;
	}
	if ((sb.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		a->host->log(a->hctx, FM_LOG_ERR, "%s is group or other "
		    "writable (mode %04o): refused", dir,
		    (unsigned)(sb.st_mode & 07777));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The number of the latest existing file for this stem (0 when only the
 * unnumbered one exists or none does); -1 if the directory (dfd) cannot
 * be read.
 */
static long
latest_seq(int dfd, const char *st)
{
	DIR *d;
	struct dirent *de;
	size_t n = strlen(st);
	const char *r;
	char *end;
	unsigned long v;
	long best = 0;
	int fd;

	if ((fd = dup(dfd)) < 0)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, st, n) != 0 || de->d_name[n] != '.')
			continue;
		r = de->d_name + n + 1;
		if (*r < '1' || *r > '9')
			continue;
		errno = 0;
		v = strtoul(r, &end, 10);
		if (errno == 0 && strcmp(end, ".jsonl") == 0 &&
		    v < (unsigned long)LONG_MAX && (long)v > best)
			best = (long)v;
	}
	closedir(d);
	return best;
}

/*
 * Open the file number seq of day into f; logs and returns -1 on error.
 * Never through a symlink (O_NOFOLLOW: one named like a file of ours
 * would have us append to its target), and only a regular file with one
 * link (not a FIFO that would block, not a hard link to another file).
 */
static int
file_open(struct archive *a, const struct arch_conf *c, struct arch_file *f,
    const char *day, unsigned long seq)
{
	char st[PREFIX_MAX + 32], num[24];
	struct stat sb;
	size_t len;
	int dfd;

	file_close(f);
	stem(c, day, st, sizeof(st));
	num[0] = '\0';
	if (seq > 0)
		snprintf(num, sizeof(num), ".%lu", seq);
	len = strlen(c->dir) + strlen(st) + strlen(num) + 8;
	if ((f->path = malloc(len)) == NULL) {
		a->host->log(a->hctx, FM_LOG_ERR, "out of memory");
		return -1;
	}
	snprintf(f->path, len, "%s/%s%s.jsonl", c->dir, st, num);
	if ((dfd = dir_open(a, c->dir)) < 0)
		goto fail;
	f->fd = openat(dfd, f->path + strlen(c->dir) + 1, O_WRONLY | O_APPEND |
	    O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0640);
	close(dfd);
	if (f->fd < 0 || fstat(f->fd, &sb) != 0) {
		a->host->log(a->hctx, FM_LOG_ERR, "cannot open %s: %s%s",
		    f->path, strerror(errno), errno == ELOOP ? " (a symbolic "
		    "link: refused)" : "");
		goto fail;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
		a->host->log(a->hctx, FM_LOG_ERR, "%s: %s: refused", f->path,
		    !S_ISREG(sb.st_mode) ? "not a regular file" :
		    "a file with other hard links");
		goto fail;
	}
	(void)fcntl(f->fd, F_SETFL, O_APPEND);	/* O_NONBLOCK was for FIFOs */
	snprintf(f->day, sizeof(f->day), "%s", day);
	f->seq = seq;
	f->size = (long long)sb.st_size;
	return 0;
fail:
	file_close(f);
	return -1;
}

/* Open the latest file of day (see latest_seq). */
static int
file_open_latest(struct archive *a, const struct arch_conf *c,
    struct arch_file *f, const char *day)
{
	char st[PREFIX_MAX + 32];
	long seq;
	int dfd;

	if ((dfd = dir_open(a, c->dir)) < 0)
		return -1;
	stem(c, day, st, sizeof(st));
	if ((seq = latest_seq(dfd, st)) < 0)
		seq = 0;
	close(dfd);
	return file_open(a, c, f, day, (unsigned long)seq);
}

static void
today(const struct arch_conf *c, char day[16])
{
	struct tm tm;
	time_t now = time(NULL);

	day[0] = '\0';
	if (c->daily && gmtime_r(&now, &tm) != NULL)
		strftime(day, 16, "%Y-%m-%d", &tm);
}

/* Write one line; called with the lock held. */
static int
append(struct archive *a, const char *body, size_t len, const char *id)
{
	struct arch_file *f = &a->file;
	struct stat sb;
	char day[16], *p;
	ssize_t n;
	size_t i;

	if (len + 1 > a->bufcap) {
		if ((p = realloc(a->buf, len + 1)) == NULL) {
			a->host->log(a->hctx, FM_LOG_ERR, "out of memory");
			return FM_CONSUME_RETRY;
		}
		a->buf = p;
		a->bufcap = len + 1;
	}
	memcpy(a->buf, body, len);
	for (i = 0; i < len; i++)
		if (a->buf[i] == '\n' || a->buf[i] == '\r')
			a->buf[i] = ' ';
	a->buf[len] = '\n';

	today(&a->conf, day);
	if ((f->fd < 0 || strcmp(day, f->day) != 0) &&
	    file_open_latest(a, &a->conf, f, day) != 0)
		return FM_CONSUME_RETRY;
	while (a->conf.max_bytes > 0 && f->size > 0 &&
	    (unsigned long long)f->size + len + 1 >
	    (unsigned long long)a->conf.max_bytes)
		if (file_open(a, &a->conf, f, day, f->seq + 1) != 0)
			return FM_CONSUME_RETRY;

	while ((n = write(f->fd, a->buf, len + 1)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)(len + 1)) {
		if (n < 0)
			a->host->log(a->hctx, FM_LOG_ERR, "%s: write: %s "
			    "(retry %s)", f->path, strerror(errno), id);
		else
			a->host->log(a->hctx, FM_LOG_ERR, "%s: short write "
			    "(%zd of %zu bytes; retry %s)", f->path, n,
			    len + 1, id);
		if (n > 0 && ftruncate(f->fd, (off_t)f->size) != 0) {
			a->host->log(a->hctx, FM_LOG_ERR, "%s: cannot remove "
			    "the partial line: %s", f->path, strerror(errno));
			if (fstat(f->fd, &sb) == 0)
				f->size = (long long)sb.st_size;
		}
		return FM_CONSUME_RETRY;
	}
	f->size += (long long)len + 1;
	if (a->conf.fsync && fdatasync(f->fd) != 0) {
		a->host->log(a->hctx, FM_LOG_ERR, "%s: fdatasync: %s (retry "
		    "%s)", f->path, strerror(errno), id);
		return FM_CONSUME_RETRY;
	}
	return FM_CONSUME_OK;
}

static int
arch_consume(void *state, struct fm_msg *msg)
{
	struct archive *a = state;
	const char *body, *id;
	size_t len;
	int rc;

	body = a->host->msg_body(msg, &len);
	if ((id = a->host->msg_id(msg)) == NULL)
		id = "(no msg_id)";
	pthread_mutex_lock(&a->lock);
	rc = append(a, body, len, id);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

static int
arch_init(const struct fm_host *host, void *hctx, void **state)
{
	struct archive *a;
	char day[16];

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		host->log(hctx, FM_LOG_ERR, "out of memory");
		return -1;
	}
	a->host = host;
	a->hctx = hctx;
	a->file.fd = -1;
	if (conf_load(a, &a->conf) != 0)
		goto fail;
	today(&a->conf, day);
	if (file_open_latest(a, &a->conf, &a->file, day) != 0) {
		conf_free(&a->conf);
		goto fail;
	}
	pthread_mutex_init(&a->lock, NULL);
	host->log(hctx, FM_LOG_INFO, "appending to %s", a->file.path);
	*state = a;
	return 0;
fail:
	free(a);
	return -1;
}

/* New config, reopened file; on error the old ones stay. */
static int
arch_reload(void *state)
{
	struct archive *a = state;
	struct arch_conf c;
	struct arch_file f = { .fd = -1 };
	char day[16];

	if (conf_load(a, &c) != 0)
		goto fail;
	today(&c, day);
	if (file_open_latest(a, &c, &f, day) != 0) {
		conf_free(&c);
		goto fail;
	}
	pthread_mutex_lock(&a->lock);
	file_close(&a->file);
	conf_free(&a->conf);
	a->file = f;
	a->conf = c;
	pthread_mutex_unlock(&a->lock);
	a->host->log(a->hctx, FM_LOG_INFO, "appending to %s", a->file.path);
	return 0;
fail:
	a->host->log(a->hctx, FM_LOG_ERR, "reload failed; keeping %s",
	    a->file.path != NULL ? a->file.path : "the previous config");
	return -1;
}

static void
arch_fini(void *state)
{
	struct archive *a = state;

	if (a == NULL)
		return;
	file_close(&a->file);
	conf_free(&a->conf);
	pthread_mutex_destroy(&a->lock);
	free(a->buf);
	free(a);
}

static const char *const arch_topics[] = { "", NULL };

static const struct fm_plugin plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"archive", "0.2.0", NULL, arch_topics,
	arch_init, arch_consume, arch_reload, arch_fini,
};

FM_PLUGIN_DEFINE(plugin)
