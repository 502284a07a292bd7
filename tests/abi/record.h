/*
 * What the ABI test plugins (the .c files of tests/abi) share besides plugin.h: one
 * line appended to a record file, and a monotonic clock.  No JSON here:
 * the plugins read their config and messages through the host's ABI 1.1
 * accessors, as a third party would.
 */
#ifndef ABI_RECORD_H
#define ABI_RECORD_H

#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Append one line with a single write() (O_APPEND); 0 or -1. */
static inline int
record_line(const char *path, const char *line)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	size_t len = strlen(line);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, line, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static inline long long
record_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
