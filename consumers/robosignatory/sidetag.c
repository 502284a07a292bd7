/*
 * Side-tag templates (sidetag.h): expanded once with a marker byte where
 * <seq_id> goes, then the tag is matched against that with the marker
 * standing for a positive integer.
 */
#include <stdbool.h>
#include <string.h>

#include "sidetag.h"

#define SEQ_MARK	'\001'	/* never in a Koji tag name */
#define SEQ_DIGITS	18

static bool
put(char *out, size_t size, size_t *n, const char *s, size_t len)
{
	if (*n + len >= size)
		return false;
	memcpy(out + *n, s, len);
	*n += len;
	out[*n] = '\0';
	return true;
}

/* tmpl with its placeholders filled; seq NULL leaves SEQ_MARK. */
static bool
expand(const char *tmpl, const char *pattern, const char *from,
    const char *to, const char *seq, char *out, size_t size, size_t *n)
{
	static const char mark[] = { SEQ_MARK, '\0' };

	while (*tmpl != '\0') {
		if (strncmp(tmpl, "<sidetag>", 9) == 0 && pattern != NULL) {
			/* the pattern's own "<sidetag>" is taken literally */
			if (!expand(pattern, NULL, from, to, seq, out, size, n))
				return false;
			tmpl += 9;
		} else if (strncmp(tmpl, "<from>", 6) == 0) {
			if (!put(out, size, n, from, strlen(from)))
				return false;
			tmpl += 6;
		} else if (strncmp(tmpl, "<to>", 4) == 0) {
			if (!put(out, size, n, to, strlen(to)))
				return false;
			tmpl += 4;
		} else if (strncmp(tmpl, "<seq_id>", 8) == 0) {
			const char *v = seq ? seq : mark;

			if (!put(out, size, n, v, strlen(v)))
				return false;
			tmpl += 8;
		} else {
			if (*tmpl == SEQ_MARK || !put(out, size, n, tmpl, 1))
				return false;
			tmpl++;
		}
	}
	return true;
}

/* Does tag match t (SEQ_MARK: the seq_id)?  seq: the one seen first. */
static bool
match(const char *tag, const char *t, char *seq)
{
	size_t k;

	for (; *t != '\0'; t++, tag++) {
		if (*t != SEQ_MARK) {
			if (*tag != *t)
				return false;
			continue;
		}
		if (seq[0] != '\0') {		/* the same number again */
			k = strlen(seq);
			if (strncmp(tag, seq, k) != 0 ||
			    (tag[k] >= '0' && tag[k] <= '9'))
				return false;
			tag += k - 1;
			continue;
		}
		if (*tag < '1' || *tag > '9')
			return false;
		/* every length (a digit may follow the number in t) */
		for (k = 1; k <= SEQ_DIGITS && tag[k - 1] >= '0' &&
		    tag[k - 1] <= '9'; k++) {
			memcpy(seq, tag, k);
			seq[k] = '\0';
			if (match(tag + k, t + 1, seq))
				return true;
		}
		seq[0] = '\0';
		return false;
	}
	return *tag == '\0';
}

int
sidetag_match(const char *pattern, const char *from_tmpl,
    const char *to_tmpl, const char *from, const char *to, const char *tag,
    char *to_out, size_t tosz)
{
	char want[SIDETAG_MAX], seq[SEQ_DIGITS + 1] = "";
	size_t n = 0;

	if (!expand(from_tmpl, pattern, from, to, NULL, want, sizeof(want), &n))
		return -1;
	if (!match(tag, want, seq) || seq[0] == '\0')
		return 0;		/* a side tag has a seq_id */
	n = 0;
	if (tosz > SIDETAG_MAX)
		tosz = SIDETAG_MAX;
	if (!expand(to_tmpl, pattern, from, to, seq, to_out, tosz, &n))
		return -1;
	return 1;
}
