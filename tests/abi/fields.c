/*
 * fields: reads every value of every message through the ABI 1.1
 * accessors, as a third-party plugin would, and writes what it read so a
 * test can compare it with Python's json.loads() of the same bytes.
 *
 * Config: {"file": PATH, "root": POINTER (default "")}.  Per message it
 * appends, in document order (members in code point order):
 *	M <msg_id>
 *	<kind> <pointer as hex> <value>	one line per value under root:
 *	    s <hex bytes>	string (may hold NUL)
 *	    i <text> <int64 or "range">	integer: exact text, json_int()
 *	    f <%.17g>		float
 *	    b 0|1, n		bool, null
 *	    a <n>, o <n>	array, object (their values follow)
 *	T <hex of json_text(root)>
 *	E
 * Keys holding NUL cannot be named by a C-string pointer: such a member
 * is written as "x <pointer of its object>" and not descended into.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/plugin.h>

#include "record.h"

struct state {
	const struct fm_host	*host;
	void			*hctx;
	char			 file[2048];
	char			 root[512];
};

/* A growable text for one message's lines. */
struct out {
	char	*s;
	size_t	 len, cap;
	int	 oom;
};

static void
put(struct out *o, const char *p, size_t n)
{
	if (o->oom)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = (o->cap ? o->cap * 2 : 4096) + n;
		char *s = realloc(o->s, cap);

		if (s == NULL) {
			o->oom = 1;
			return;
		}
		o->s = s;
		o->cap = cap;
	}
	memcpy(o->s + o->len, p, n);
	o->len += n;
	o->s[o->len] = '\0';
}

static void
puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void
hex(struct out *o, const char *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char two[2];
	size_t i;

	if (n == 0)
		puts_(o, "-");	/* keeps the field non-empty */
	for (i = 0; i < n; i++) {
		two[0] = digits[(unsigned char)p[i] >> 4];
		two[1] = digits[(unsigned char)p[i] & 15];
		put(o, two, 2);
	}
}

static void
walk(const struct fm_host *h, const struct fm_json *doc, char *ptr,
    size_t plen, size_t cap, struct out *o)
{
	char num[64];
	const char *s;
	size_t n, i, klen;
	int64_t v;
	double d;
	int t = h->json_type(doc, ptr), b;

	switch (t) {
	case FM_JSON_STRING:
		puts_(o, "s ");
		hex(o, ptr, plen);
		h->json_string(doc, ptr, &s, &n);
		puts_(o, " ");
		hex(o, s, n);
		break;
	case FM_JSON_NUMBER:
		if (h->json_int_text(doc, ptr, &s, &n) == FM_JSON_OK) {
			puts_(o, "i ");
			hex(o, ptr, plen);
			puts_(o, " ");
			put(o, s, n);
			if (h->json_int(doc, ptr, &v) == FM_JSON_OK)
				snprintf(num, sizeof(num), " %" PRId64, v);
			else
				snprintf(num, sizeof(num), " range");
		} else {
			puts_(o, "f ");
			hex(o, ptr, plen);
			if (h->json_double(doc, ptr, &d) != FM_JSON_OK)
				snprintf(num, sizeof(num), " error");
			else
				snprintf(num, sizeof(num), " %.17g", d);
		}
		puts_(o, num);
		break;
	case FM_JSON_BOOL:
		h->json_bool(doc, ptr, &b);
		puts_(o, "b ");
		hex(o, ptr, plen);
		puts_(o, b ? " 1" : " 0");
		break;
	case FM_JSON_NULL:
		puts_(o, "n ");
		hex(o, ptr, plen);
		break;
	case FM_JSON_ARRAY:
	case FM_JSON_OBJECT:
		h->json_length(doc, ptr, &n);
		puts_(o, t == FM_JSON_ARRAY ? "a " : "o ");
		hex(o, ptr, plen);
		snprintf(num, sizeof(num), " %zu\n", n);
		puts_(o, num);
		for (i = 0; i < n; i++) {
			size_t l = plen;

			if (t == FM_JSON_ARRAY) {
				l += (size_t)snprintf(ptr + plen, cap - plen,
				    "/%zu", i);
			} else {
				h->json_member(doc, ptr, i, &s, &klen);
				if (memchr(s, 0, klen)) {
					puts_(o, "x ");
					hex(o, ptr, plen);
					puts_(o, "\n");
					continue;
				}
				if (plen + 1 + 2 * klen + 1 > cap)
					continue;	/* too deep for us */
				ptr[l++] = '/';
				for (size_t k = 0; k < klen; k++) {
					if (s[k] == '~' || s[k] == '/') {
						ptr[l++] = '~';
						ptr[l++] = s[k] == '~' ? '0' : '1';
					} else {
						ptr[l++] = s[k];
					}
				}
				ptr[l] = '\0';
			}
			walk(h, doc, ptr, l, cap, o);
			ptr[plen] = '\0';
		}
		return;
	default:
		snprintf(num, sizeof(num), "? %d", t);
		puts_(o, num);
	}
	puts_(o, "\n");
}

static int
f_init(const struct fm_host *host, void *hctx, void **state)
{
	struct state *st = calloc(1, sizeof(*st));
	int rc;

	if (st == NULL || host->abi_minor < 1) {
		free(st);
		return -1;
	}
	st->host = host;
	st->hctx = hctx;
	rc = host->json_string_copy(host->config(hctx), "/root", st->root,
	    sizeof(st->root), NULL);
	if (host->json_string_copy(host->config(hctx), "/file", st->file,
	    sizeof(st->file), NULL) != FM_JSON_OK ||
	    (rc != FM_JSON_OK && rc != FM_JSON_EABSENT)) {
		host->log(hctx, FM_LOG_ERR, "config: {\"file\": PATH, "
		    "\"root\": POINTER}");
		free(st);
		return -1;
	}
	*state = st;
	return 0;
}

static int
f_consume(void *state, struct fm_msg *msg)
{
	struct state *st = state;
	const struct fm_host *h = st->host;
	const struct fm_json *doc = h->msg_json(msg);
	struct out o = { NULL, 0, 0, 0 };
	char *ptr = malloc(1 << 16), *text;
	size_t n = 0;
	int rc = -1;

	if (ptr != NULL) {
		snprintf(ptr, 1 << 16, "%s", st->root);
		puts_(&o, "M ");
		puts_(&o, h->msg_id(msg) ? h->msg_id(msg) : "-");
		puts_(&o, "\n");
		walk(h, doc, ptr, strlen(ptr), 1 << 16, &o);
		/* the canonical text: ask its size, then fetch it */
		if (h->json_text(doc, st->root, NULL, 0, &n) == FM_JSON_ENOSPC &&
		    (text = malloc(n + 1)) != NULL) {
			if (h->json_text(doc, st->root, text, n + 1, &n) ==
			    FM_JSON_OK) {
				puts_(&o, "T ");
				hex(&o, text, n);
				puts_(&o, "\nE\n");
			}
			free(text);
		}
		if (!o.oom && o.s && record_line(st->file, o.s) == 0)
			rc = FM_CONSUME_OK;
	}
	free(ptr);
	free(o.s);
	return rc;
}

static void
f_fini(void *state)
{
	free(state);
}

static const char *const f_topics[] = { "", NULL };

static const struct fm_plugin plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"fields", "1.1", NULL, f_topics,
	f_init, f_consume, NULL, f_fini,
};

FM_PLUGIN_DEFINE(plugin)
