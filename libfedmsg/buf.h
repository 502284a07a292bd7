/*
 * A growable byte buffer.  Always NUL-terminated after its contents, so
 * text built in it can be handed out as a C string.
 */
#ifndef FM_BUF_H
#define FM_BUF_H

#include <stddef.h>
#include <stdbool.h>

struct buf {
	char	*data;		/* owned; NULL until the first append */
	size_t	 len;
	size_t	 cap;
	bool	 oom;		/* an append failed; contents are truncated */
};

#define BUF_INIT { NULL, 0, 0, false }

/* Append; on OOM sets b->oom and returns -1 (later appends are no-ops). */
int buf_add(struct buf *b, const void *p, size_t n);
int buf_addc(struct buf *b, char c);
int buf_adds(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Make room for n more bytes; returns a pointer to them or NULL. */
char *buf_reserve(struct buf *b, size_t n);
/* Give the contents to the caller (malloc'ed, NUL-terminated); resets b. */
char *buf_steal(struct buf *b, size_t *len);
void buf_free(struct buf *b);

#endif
