/*
 * Helpers for the ABI test plugins (the .c files of tests/abi): a few lines of JSON
 * picking good enough for the tests' own config objects and envelopes,
 * and a line appender.  Built against include/fedmsg/plugin.h only, like a
 * third-party plugin; nothing here is part of fedmsg-c.
 */
#ifndef ABI_UTIL_H
#define ABI_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fedmsg/plugin.h>

/*
 * The value text after the first "key" that is followed by ':' (at any
 * depth: the tests use distinct key names).  NULL when absent.
 */
static inline const char *
abi_find(const char *json, const char *key)
{
	char pat[128];
	const char *p = json;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	while ((p = strstr(p, pat)) != NULL) {
		p += strlen(pat);
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (*p != ':')
			continue;
		p++;
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		return p;
	}
	return NULL;
}

/* A string member into out (simple escapes only); 0, 1 absent, -1 bad. */
static inline int
abi_get_str(const char *json, const char *key, char *out, size_t size)
{
	const char *p = abi_find(json, key);
	size_t n = 0;

	if (p == NULL)
		return 1;
	if (*p != '"')
		return -1;
	for (p++; *p != '"'; p++) {
		char c = *p;

		if (c == '\0')
			return -1;
		if (c == '\\') {
			p++;
			switch (*p) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case '\0': return -1;
			default: c = *p; break;	/* \" \\ \/ */
			}
		}
		if (n + 1 >= size)
			return -1;
		out[n++] = c;
	}
	out[n] = '\0';
	return 0;
}

/* An integer member; 0, 1 absent, -1 bad. */
static inline int
abi_get_int(const char *json, const char *key, long long *out)
{
	const char *p = abi_find(json, key);
	char *end;

	if (p == NULL)
		return 1;
	errno = 0;
	*out = strtoll(p, &end, 10);
	return end == p || errno != 0 ? -1 : 0;
}

/* The body as a NUL-terminated copy (malloc'ed), or NULL. */
static inline char *
abi_body(const struct fm_host *h, struct fm_msg *msg)
{
	size_t len = 0;
	const char *b = h->msg_body(msg, &len);
	char *s = malloc(len + 1);

	if (s == NULL || b == NULL) {
		free(s);
		return NULL;
	}
	memcpy(s, b, len);
	s[len] = '\0';
	return s;
}

/* Append one line with a single write() (O_APPEND); 0 or -1. */
static inline int
abi_append(const char *path, const char *line)
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
abi_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* s JSON-escaped into out; 0, or -1 when it does not fit. */
static inline int
abi_json_escape(const char *s, char *out, size_t size)
{
	size_t n = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char tmp[8];
		size_t k;

		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			k = 2;
		} else if (c < 0x20) {
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", c);
		} else {
			tmp[0] = (char)c;
			k = 1;
		}
		if (n + k + 1 > size)
			return -1;
		memcpy(out + n, tmp, k);
		n += k;
	}
	out[n] = '\0';
	return 0;
}

#endif
