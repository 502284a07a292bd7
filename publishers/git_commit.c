/*
 * One commit as fedora-messaging-git-hook describes it (git_commit.h).
 * Its hook runs pygit2 on the same libgit2, so the same calls are made
 * here: git_diff_tree_to_tree() against each parent with default options
 * (no rename detection: a rename is a deletion and an addition), one
 * git_patch per delta, git_patch_line_stats() and git_patch_to_buf().
 */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "git_commit.h"

#define ERRLEN 256

/* Length of the valid prefix of the sequence at s (Python's maximal
 * subpart), and whether it is a complete character. */
static size_t
utf8_prefix(const unsigned char *s, size_t n, int *complete)
{
	unsigned char b = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	*complete = 0;
	if (b < 0x80) {
		*complete = 1;
		return 1;
	}
	if (b >= 0xc2 && b <= 0xdf)
		need = 1;
	else if (b >= 0xe0 && b <= 0xef) {
		need = 2;
		if (b == 0xe0)
			lo = 0xa0;
		else if (b == 0xed)
			hi = 0x9f;
	} else if (b >= 0xf0 && b <= 0xf4) {
		need = 3;
		if (b == 0xf0)
			lo = 0x90;
		else if (b == 0xf4)
			hi = 0x8f;
	} else
		return 1;	/* never a start byte: one U+FFFD */
	for (i = 1; i <= need; i++) {
		if (i >= n || s[i] < lo || s[i] > hi)
			return i;
		lo = 0x80;
		hi = 0xbf;
	}
	*complete = 1;
	return need + 1;
}

char *
gc_utf8_replace(const char *str, size_t n, size_t *out_len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, o = 0, k;
	int complete;
	/* At worst each byte becomes 3 (U+FFFD). */
	char *out = malloc(n * 3 + 1);

	if (out == NULL)
		return NULL;
	while (i < n) {
		k = utf8_prefix(s + i, n - i, &complete);
		if (complete)
			memcpy(out + o, s + i, k), o += k;
		else
			memcpy(out + o, "\xef\xbf\xbd", 3), o += 3;
		i += k;
	}
	out[o] = '\0';
	if (out_len)
		*out_len = o;
	return out;
}

void
gc_isoformat(long long t, int offset_min, char out[32])
{
	time_t local = (time_t)(t + (long long)offset_min * 60);
	int off = offset_min < 0 ? -offset_min : offset_min;
	struct tm tm;

	gmtime_r(&local, &tm);
	snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, offset_min < 0 ? '-' : '+', off / 60,
	    off % 60);
}

/* Append n bytes to a growing string. */
struct sbuf {
	char	*p;
	size_t	 len, cap;
};

static int
sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = realloc(b->p, cap)) == NULL)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* str() of a field in Python, for str.format(). */
static int
format_field(struct sbuf *b, const json_t *v)
{
	char num[32];

	switch (json_typeof(v)) {
	case JSON_STRING:
		return sb_add(b, json_string_value(v), json_string_length(v));
	case JSON_NULL:
		return sb_add(b, "None", 4);
	case JSON_TRUE:
		return sb_add(b, "True", 4);
	case JSON_FALSE:
		return sb_add(b, "False", 5);
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%lld",
		    (long long)json_integer_value(v));
		return sb_add(b, num, strlen(num));
	default:
		return 1;
	}
}

char *
gc_format_url(const char *tmpl, const json_t *fields, char *err)
{
	struct sbuf b = { 0 };
	const char *s = tmpl, *end;
	char name[128];
	const json_t *v;
	int rc;

	while (*s) {
		if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
			if (sb_add(&b, s, 1) < 0)
				goto oom;
			s += 2;
			continue;
		}
		if (*s == '}') {
			snprintf(err, ERRLEN, "url_template: single '}' at "
			    "offset %zu", (size_t)(s - tmpl));
			goto fail;
		}
		if (*s != '{') {
			if (sb_add(&b, s, 1) < 0)
				goto oom;
			s++;
			continue;
		}
		end = strchr(s + 1, '}');
		if (end == NULL || (size_t)(end - s - 1) >= sizeof(name)) {
			snprintf(err, ERRLEN, "url_template: unclosed or too "
			    "long field at offset %zu", (size_t)(s - tmpl));
			goto fail;
		}
		memcpy(name, s + 1, (size_t)(end - s - 1));
		name[end - s - 1] = '\0';
		if (name[0] == '\0' || strpbrk(name, "{!:.[")) {
			snprintf(err, ERRLEN, "url_template: field '{%s}' is "
			    "not supported (only {name})", name);
			goto fail;
		}
		if ((v = json_object_get(fields, name)) == NULL) {
			snprintf(err, ERRLEN, "url_template: unknown field "
			    "'{%s}'", name);
			goto fail;
		}
		if ((rc = format_field(&b, v)) < 0)
			goto oom;
		if (rc > 0) {
			snprintf(err, ERRLEN, "url_template: field '{%s}' is "
			    "not a text", name);
			goto fail;
		}
		s = end + 1;
	}
	if (b.p == NULL && sb_add(&b, "", 0) < 0)
		goto oom;
	return b.p;
oom:
	snprintf(err, ERRLEN, "out of memory");
fail:
	free(b.p);
	return NULL;
}

/* A new JSON string from bytes that may not be UTF-8. */
static json_t *
jstr(const char *s, size_t n)
{
	size_t len;
	char *u = gc_utf8_replace(s ? s : "", s ? n : 0, &len);
	json_t *j;

	if (u == NULL)
		return NULL;
	j = json_stringn(u, len);
	free(u);
	return j;
}

/* Double the output buffer *out (capacity *cap) of an iconv() loop
 * whose write position is *o, *left bytes free; -1 out of memory. */
static int
grow(char **out, char **o, size_t *left, size_t *cap)
{
	size_t used = (size_t)(*o - *out);
	char *bigger = realloc(*out, *cap * 2);

	if (bigger == NULL)
		return -1;
	*out = bigger;
	*o = bigger + used;
	*left += *cap;
	*cap *= 2;
	return 0;
}

/*
 * A new JSON string of a commit's text (author, message) in the commit's
 * encoding header enc (NULL: UTF-8), decoded as pygit2 decodes it for
 * Fedora's hook: converted to UTF-8, a byte that does not convert
 * becoming U+FFFD (errors="replace").  An encoding iconv does not know
 * reads as UTF-8.
 */
static json_t *
jstr_in(const char *s, size_t n, const char *enc)
{
	char *in = (char *)(uintptr_t)s, *out, *o;
	size_t inleft = n, left, cap = n * 3 + 16;
	iconv_t cd;
	json_t *j = NULL;

	if (enc == NULL || strcasecmp(enc, "UTF-8") == 0 ||
	    strcasecmp(enc, "utf8") == 0 ||
	    (cd = iconv_open("UTF-8", enc)) == (iconv_t)-1)
		return jstr(s, n);
	if ((out = malloc(cap)) == NULL)
		goto done;
	o = out;
	left = cap;
	while (inleft > 0) {
		if (iconv(cd, &in, &inleft, &o, &left) != (size_t)-1)
			continue;
		if (errno == E2BIG || left < 3) {
			if (grow(&out, &o, &left, &cap) < 0)
				goto done;
			continue;
		}
		memcpy(o, "\xef\xbf\xbd", 3);	/* EILSEQ, EINVAL: one byte */
		o += 3;
		left -= 3;
		in++;
		inleft--;
	}
	/* a stateful charset's closing sequence */
	while (iconv(cd, NULL, NULL, &o, &left) == (size_t)-1 &&
	    errno == E2BIG)
		if (grow(&out, &o, &left, &cap) < 0)
			goto done;
	j = json_stringn(out, (size_t)(o - out));
done:
	iconv_close(cd);
	free(out);
	return j;
}

static int
set_new(json_t *obj, const char *key, json_t *v)
{
	return v ? json_object_set_new(obj, key, v) : -1;
}

/*
 * stats.files[path].{additions,deletions,lines} += ...  A path that is
 * not UTF-8 is a key with U+FFFD for its odd bytes (JSON keys are text;
 * Fedora's hook stops with a UnicodeDecodeError there).
 */
static int
add_file_stats(json_t *files, const char *raw, size_t adds, size_t dels)
{
	const char *keys[3] = { "additions", "deletions", "lines" };
	size_t vals[3] = { adds, dels, adds + dels };
	char *path = gc_utf8_replace(raw, strlen(raw), NULL);
	json_t *f;
	int i;

	if (path == NULL)
		return -1;
	if ((f = json_object_get(files, path)) == NULL &&
	    ((f = json_object()) == NULL ||
	    json_object_set_new(files, path, f) < 0 ||
	    set_new(f, keys[0], json_integer(0)) < 0 ||
	    set_new(f, keys[1], json_integer(0)) < 0 ||
	    set_new(f, keys[2], json_integer(0)) < 0))
		f = NULL;
	free(path);
	if (f == NULL)
		return -1;
	for (i = 0; i < 3; i++) {
		json_t *v = json_object_get(f, keys[i]);

		json_integer_set(v, json_integer_value(v) + (json_int_t)vals[i]);
	}
	return 0;
}

/* The patch text so far, cut at max bytes (0: no cap). */
struct patch_acc {
	struct sbuf	 text;
	size_t		 max, total;
	bool		 cut;
};

static int
patch_add(struct patch_acc *a, const char *s, size_t n)
{
	size_t room;

	a->total += n;
	if (a->cut)
		return 0;
	if (a->max == 0 || a->text.len + n <= a->max)
		return sb_add(&a->text, s, n);
	/* Cut at the last line end that fits, else at a character start. */
	room = a->max - a->text.len;
	while (room > 0 && s[room - 1] != '\n')
		room--;
	if (room == 0) {
		room = a->max - a->text.len;
		while (room > 0 && ((unsigned char)s[room] & 0xc0) == 0x80)
			room--;
	}
	a->cut = true;
	return sb_add(&a->text, s, room);
}

/* Diff stats and patch of one diff, added to files and acc. */
static int
walk_diff(git_diff *diff, json_t *files, struct patch_acc *acc, bool *first,
    char *err)
{
	size_t i, n = git_diff_num_deltas(diff);

	for (i = 0; i < n; i++) {
		git_patch *patch = NULL;
		git_buf buf = { 0 };
		size_t ctx, adds, dels, ulen;
		const git_diff_delta *d;
		char *u;
		int rc = 0;

		if (git_patch_from_diff(&patch, diff, i) < 0) {
			snprintf(err, ERRLEN, "diff: %s", git_error_last() ?
			    git_error_last()->message : "failed");
			return -1;
		}
		if (patch == NULL)
			continue;
		d = git_patch_get_delta(patch);
		git_patch_line_stats(&ctx, &adds, &dels, patch);
		if (add_file_stats(files, d->new_file.path, adds, dels) < 0 ||
		    git_patch_to_buf(&buf, patch) < 0)
			rc = -1;
		/* pygit2's Patch.text decodes with errors="replace". */
		u = rc == 0 ? gc_utf8_replace(buf.ptr, buf.size, &ulen) : NULL;
		if (u == NULL ||
		    (!*first && patch_add(acc, "\n", 1) < 0) ||
		    patch_add(acc, u, ulen) < 0)
			rc = -1;
		*first = false;
		free(u);
		git_buf_dispose(&buf);
		git_patch_free(patch);
		if (rc < 0) {
			snprintf(err, ERRLEN, "diff: out of memory");
			return -1;
		}
	}
	return 0;
}

/* stats = {files, total} with the totals the hook sums. */
static json_t *
make_stats(json_t *files)
{
	json_t *stats = json_object(), *total = json_object();
	json_int_t a = 0, d = 0, l = 0, nfiles = 0;
	const char *k;
	json_t *f;

	if (stats == NULL || total == NULL) {
		json_decref(stats);
		json_decref(total);
		return NULL;
	}
	json_object_foreach(files, k, f) {
		a += json_integer_value(json_object_get(f, "additions"));
		d += json_integer_value(json_object_get(f, "deletions"));
		l += json_integer_value(json_object_get(f, "lines"));
		nfiles++;
	}
	/* No file: the hook's defaultdict stays empty. */
	if (nfiles > 0 && (set_new(total, "additions", json_integer(a)) < 0 ||
	    set_new(total, "deletions", json_integer(d)) < 0 ||
	    set_new(total, "lines", json_integer(l)) < 0 ||
	    set_new(total, "files", json_integer(nfiles)) < 0)) {
		json_decref(stats);
		json_decref(total);
		return NULL;
	}
	json_object_set(stats, "files", files);
	json_object_set_new(stats, "total", total);
	return stats;
}

/* Diff against every parent (the root commit: against nothing). */
static int
diff_commit(git_repository *repo, git_commit *c, json_t *files,
    struct patch_acc *acc, char *err)
{
	unsigned i, np = git_commit_parentcount(c);
	git_tree *tree = NULL;
	bool first = true;
	int rc = 0;

	if (git_commit_tree(&tree, c) < 0) {
		snprintf(err, ERRLEN, "tree: %s", git_error_last()->message);
		return -1;
	}
	for (i = 0; i < (np ? np : 1) && rc == 0; i++) {
		git_commit *parent = NULL;
		git_tree *ptree = NULL;
		git_diff *diff = NULL;

		if (np && (git_commit_parent(&parent, c, i) < 0 ||
		    git_commit_tree(&ptree, parent) < 0)) {
			snprintf(err, ERRLEN, "parent %u: %s", i,
			    git_error_last()->message);
			rc = -1;
		} else if (git_diff_tree_to_tree(&diff, repo, ptree, tree,
		    NULL) < 0) {
			snprintf(err, ERRLEN, "diff: %s",
			    git_error_last()->message);
			rc = -1;
		} else
			rc = walk_diff(diff, files, acc, &first, err);
		git_diff_free(diff);
		git_tree_free(ptree);
		git_commit_free(parent);
	}
	git_tree_free(tree);
	return rc;
}

/* path, repo, namespace: os.path arithmetic of the hook. */
static int
set_location(json_t *obj, git_repository *repo, bool with_namespace)
{
	const char *wd = git_repository_workdir(repo);
	const char *path = wd ? wd : git_repository_path(repo);
	char *p = strdup(path), *slash;
	size_t n;
	int rc;

	if (p == NULL)
		return -1;
	n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	if (n >= 4 && strcmp(p + n - 4, ".git") == 0)
		p[n - 4] = '\0';
	slash = strrchr(p, '/');
	rc = set_new(obj, "path", json_string(path));
	if (rc == 0)
		rc = set_new(obj, "repo", json_string(slash ? slash + 1 : p));
	if (rc == 0 && with_namespace && slash) {
		char *prev;

		*slash = '\0';
		prev = strrchr(p, '/');
		rc = set_new(obj, "namespace", json_string(prev ? prev + 1 : p));
	} else if (rc == 0)
		rc = set_new(obj, "namespace", json_null());
	free(p);
	return rc;
}

static int
set_url(json_t *obj, const struct gc_opts *o, char *err)
{
	json_t *fields, *ns = json_object_get(obj, "namespace");
	char *url;
	int rc;

	if (o->url_template == NULL)
		return set_new(obj, "url", json_null());
	if ((fields = json_copy(obj)) == NULL)
		return -1;
	if (json_is_string(ns) && json_string_length(ns) > 0)
		rc = set_new(fields, "repo_fullname", json_sprintf("%s/%s",
		    json_string_value(ns),
		    json_string_value(json_object_get(obj, "repo"))));
	else
		rc = json_object_set(fields, "repo_fullname",
		    json_object_get(obj, "repo"));
	url = rc == 0 ? gc_format_url(o->url_template, fields, err) : NULL;
	json_decref(fields);
	if (url == NULL)
		return -1;
	rc = set_new(obj, "url", json_string(url));
	free(url);
	return rc;
}

json_t *
gc_build(git_repository *repo, const struct gc_opts *o, const char *rev,
    const char *branch, char *err)
{
	git_oid oid;
	git_commit *c = NULL;
	const git_signature *author;
	const char *msg, *enc;
	size_t nl;
	json_t *obj = NULL, *files = NULL, *stats;
	struct patch_acc acc = { .max = o->max_patch_bytes };
	char date[32], note[128];

	if (git_oid_fromstr(&oid, rev) < 0 ||
	    git_commit_lookup(&c, repo, &oid) < 0) {
		snprintf(err, ERRLEN, "%s is not a commit here: %s", rev,
		    git_error_last() ? git_error_last()->message : "?");
		return NULL;
	}
	author = git_commit_author(c);
	enc = git_commit_message_encoding(c);
	msg = git_commit_message(c);
	if (msg == NULL)
		msg = "";
	nl = strcspn(msg, "\n");
	if ((obj = json_object()) == NULL || (files = json_object()) == NULL)
		goto oom;
	if (diff_commit(repo, c, files, &acc, err) < 0)
		goto fail;
	if (acc.cut) {
		snprintf(note, sizeof(note), "\n[fedmsg-git-hook: patch cut "
		    "at %zu of %zu bytes]\n", acc.text.len, acc.total);
		if (sb_add(&acc.text, note, strlen(note)) < 0)
			goto oom;
	}
	gc_isoformat((long long)git_commit_time(c),
	    git_commit_time_offset(c), date);
	if ((stats = make_stats(files)) == NULL ||
	    set_new(obj, "name", jstr_in(author->name, strlen(author->name),
	    enc)) ||
	    set_new(obj, "email", jstr_in(author->email,
	    strlen(author->email), enc)) ||
	    set_new(obj, "username", json_string(o->username)) ||
	    set_new(obj, "summary", jstr_in(msg, nl, enc)) ||
	    set_new(obj, "message", jstr_in(msg, strlen(msg), enc)) ||
	    set_new(obj, "stats", stats) ||
	    set_new(obj, "rev", json_string(rev)) ||
	    set_location(obj, repo, o->with_namespace) ||
	    set_new(obj, "branch", jstr(branch, strlen(branch))) ||
	    set_new(obj, "patch", json_stringn(acc.text.p ? acc.text.p : "",
	    acc.text.len)) ||
	    set_new(obj, "date", json_string(date)))
		goto oom;
	if (set_url(obj, o, err) < 0)
		goto fail;
	free(acc.text.p);
	json_decref(files);
	git_commit_free(c);
	return obj;
oom:
	snprintf(err, ERRLEN, "out of memory building %s", rev);
fail:
	free(acc.text.p);
	json_decref(files);
	json_decref(obj);
	git_commit_free(c);
	return NULL;
}
