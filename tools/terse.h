/*
 * Turning fedmsg envelopes into text for people: fedmsg-tail's output
 * formats.  Every function here is pure (no I/O, no global state beyond
 * the local time zone) and returns malloc'ed NUL-terminated text without
 * a final newline, or NULL when out of memory.
 *
 * Text taken from messages never reaches the terminal raw: control
 * characters (C0, DEL and C1) are escaped, so a message cannot move the
 * cursor or change colours.
 */
#ifndef FM_TERSE_H
#define FM_TERSE_H

#include <stddef.h>

#include <fedmsg/message.h>

/*
 * One line in the spirit of fedmsg.meta's msg2repr:
 * "<HH:MM:SS> <topic> <summary>", the time being the message's timestamp
 * in local time ("--:--:--" without one).  Summaries exist for dist-git
 * (git.receive, git.branch, git.lookaside.new), koji (buildsys.*),
 * robosignatory (robosignatory.*, coreos.build.request.*.finished) and
 * logger.log; any other message shows its payload's top-level fields as
 * key=value pairs, cut to about GENERIC_MAX bytes.
 */
char *terse_line(const struct fm_msg *m);
#define GENERIC_MAX	200

/* Flags for tail_pretty(). */
#define TAIL_CTIME	0x1	/* top-level timestamp as time.ctime() text */
#define TAIL_COLOR	0x2	/* ANSI colours for keys, strings, numbers */
/* The colours: keys, strings, numbers, literals (true, false, null). */
#define C_KEY	"\033[34m"
#define C_STR	"\033[32m"
#define C_NUM	"\033[36m"
#define C_LIT	"\033[35m"
#define C_OFF	"\033[0m"

/*
 * The envelope without signature and certificate as JSON indented by two
 * spaces, keys sorted.  Non-ASCII text is written as UTF-8; lone
 * surrogates, control characters, big integers and NaN/Infinity come out
 * as Python's json module would write them.
 */
char *tail_pretty(const struct fm_msg *m, int flags);

/*
 * The values at dotted paths ("msg.commit.repo"; a number indexes an
 * array) separated by tabs.  Strings are written raw except that
 * backslash, tab, newline, CR and other control characters are
 * backslash-escaped; null and missing values are empty; arrays and
 * objects are canonical JSON.
 */
char *tail_query(const struct fm_msg *m, const char *const *paths,
    size_t npaths);

/* The message timestamp (or now) as ISO 8601 local time with offset. */
#define TAIL_ISO_LEN 32
void tail_iso_time(const struct fm_msg *m, char out[TAIL_ISO_LEN]);

#endif
