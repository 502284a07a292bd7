#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"

static const char *prog = "fedmsg-c";
static enum fm_log_level max_level = FM_LOG_INFO;
static const char *const names[] = { "error", "warning", "info", "debug" };
/* syslog priorities, which journald reads from a "<N>" line prefix */
static const int priorities[] = { 3, 4, 6, 7 };
static bool journal;

void
log_init(const char *progname, enum fm_log_level max)
{
	prog = progname;
	max_level = max;
	/* systemd sets JOURNAL_STREAM when stderr goes to the journal */
	journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_msg(enum fm_log_level lvl, const char *fmt, ...)
{
	char text[1024], line[4200];
	va_list ap;
	size_t i, n;

	if (lvl > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	n = journal ? (size_t)snprintf(line, sizeof(line), "<%d>%s: ",
	    priorities[lvl], names[lvl]) :
	    (size_t)snprintf(line, sizeof(line), "%s: %s: ", prog, names[lvl]);
	/*
	 * Log lines often quote what peers sent (topics, msg_ids): escape
	 * control characters so nobody can forge lines or drive a terminal.
	 */
	for (i = 0; text[i] && n + 6 < sizeof(line); i++) {
		unsigned char c = (unsigned char)text[i];

		if (c < 0x20 || c == 0x7f)
			n += (size_t)snprintf(line + n, sizeof(line) - n,
			    "\\x%02x", c);
		else
			line[n++] = (char)c;
	}
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}
