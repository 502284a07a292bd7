/*
 * The "commit" object of a git.receive message, built with libgit2 so that
 * every field has the value Fedora's fedora-messaging-git-hook (pygit2 on
 * the same libgit2) gives it: author, message, per-file diff stats and the
 * patch against every parent, ISO 8601 date with the commit's offset, the
 * repository path/name/namespace and the URL from a template.
 */
#ifndef FM_GIT_COMMIT_H
#define FM_GIT_COMMIT_H

#include <stdbool.h>
#include <stddef.h>

#include <git2.h>
#include <jansson.h>

/* What does not come from the commit itself.  All borrowed. */
struct gc_opts {
	const char	*username;	/* getpass.getuser() of the pusher */
	const char	*url_template;	/* NULL: "url" is null */
	bool		 with_namespace;
	size_t		 max_patch_bytes; /* 0: no cap; else cut with a note */
};

/*
 * Build the commit object of rev (40 hex digits) pushed to branch.  Returns
 * a new json_t (the caller owns it) or NULL with a reason in err[256].
 * Texts that are not UTF-8 are decoded as Python's errors="replace" does.
 */
json_t *gc_build(git_repository *repo, const struct gc_opts *o,
    const char *rev, const char *branch, char *err);

/*
 * Python's bytes.decode("utf-8", "replace"): each maximal invalid
 * subsequence becomes U+FFFD.  Returns a malloc'ed NUL-terminated string
 * (length in *out_len when not NULL), or NULL on OOM.
 */
char *gc_utf8_replace(const char *s, size_t n, size_t *out_len);

/*
 * datetime.isoformat() of a commit time: "YYYY-MM-DDTHH:MM:SS+HH:MM" in
 * the commit's own offset (minutes).  out must hold 32 bytes.
 */
void gc_isoformat(long long t, int offset_min, char out[32]);

/*
 * The subset of Python's str.format() that fedora-messaging-git-hook's
 * url_template uses: {name} replaced by the field's value (null as
 * "None"), "{{" and "}}" literal braces.  Returns a malloc'ed string, or
 * NULL with err[256] for a field that is unknown, not a scalar, or has a
 * format spec or conversion (where Python's hook would raise).
 */
char *gc_format_url(const char *tmpl, const json_t *fields, char *err);

#endif
