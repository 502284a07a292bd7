/*
 * A growable byte buffer.  Always NUL-terminated after its contents, so
 * text built in it can be handed out as a C string.
 */
#ifndef FM_BUF_H
#define FM_BUF_H

#include <stddef.h>
#include <stdbool.h>
#include <string.h>

struct buf {
	char	*data;		/* owned; NULL until the first append */
	size_t	 len;
	size_t	 cap;
	bool	 oom;		/* an append failed; contents are truncated */
};

#define BUF_INIT { NULL, 0, 0, false }

/* buf_reserve()'s growing path (out of line: the rare case). */
char *buf_grow(struct buf *b, size_t n);

/*
 * Make room for n more bytes; returns a pointer to them or NULL.  Inline
 * because the canonical writer appends a few bytes at a time: a call per
 * comma was a tenth of its instructions.
 */
static inline char *
buf_reserve(struct buf *b, size_t n)
{
	/* room for n bytes and the NUL: cap - len > n (cap is 0 until the
	 * first append, so that goes to buf_grow) */
	if (!b->oom && b->cap - b->len > n)
		return b->data + b->len;
	return buf_grow(b, n);
}

/* Append; on OOM sets b->oom and returns -1 (later appends are no-ops). */
static inline int
buf_add(struct buf *b, const void *p, size_t n)
{
	char *dst = buf_reserve(b, n);

	if (dst == NULL)
		return -1;
	if (n)
		memcpy(dst, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

static inline int
buf_addc(struct buf *b, char c)
{
	char *dst = buf_reserve(b, 1);

	if (dst == NULL)
		return -1;
	dst[0] = c;
	dst[1] = '\0';
	b->len++;
	return 0;
}

int buf_adds(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Give the contents to the caller (malloc'ed, NUL-terminated); resets b. */
char *buf_steal(struct buf *b, size_t *len);
void buf_free(struct buf *b);

#endif
