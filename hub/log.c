#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"

static const char *prog = "fedmsg-c";
static enum log_level max_level = LOG_INFO;
static const char *const names[] = { "error", "warning", "info", "debug" };

void
log_init(const char *progname, enum log_level max)
{
	prog = progname;
	max_level = max;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n, m;

	if (lvl > max_level)
		return;
	n = snprintf(line, sizeof(line), "%s: %s: ", prog, names[lvl]);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}
