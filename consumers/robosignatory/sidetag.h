/*
 * Side tags as robosignatory names them: a tag entry's sidetags.pattern
 * (e.g. "f41-build-side-<seq_id>") fills "<sidetag>" in sidetags.from and
 * sidetags.to (e.g. "<sidetag>-signing-pending"); "<from>" and "<to>" are
 * the entry's own from and to tags; "<seq_id>" is a positive integer
 * (no sign, no leading zero, at most 18 digits), the same one wherever
 * it appears.  Depends on libc only.
 */
#ifndef ROBOSIG_SIDETAG_H
#define ROBOSIG_SIDETAG_H

#include <stddef.h>

#define SIDETAG_MAX	256	/* bytes of a tag name, NUL included */

/*
 * Is tag the side-tag "from" of this entry?  Then 1, and to_out (tosz
 * bytes) gets the side tag's "to" with the same seq_id; 0 when it is
 * not; -1 when a template expands past SIDETAG_MAX or tosz.
 */
int	sidetag_match(const char *pattern, const char *from_tmpl,
	    const char *to_tmpl, const char *from, const char *to,
	    const char *tag, char *to_out, size_t tosz);

#endif /* ROBOSIG_SIDETAG_H */
