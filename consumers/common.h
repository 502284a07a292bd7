/*
 * Shared by the consumer plugins (included as "../common.h"): a small,
 * strict, bounded reader for a consumer's "config" object, which arrives as
 * JSON text from host->config_json().  Plugins may not link jansson, hence
 * this.  Header-only: every function is static inline so that a plugin that
 * does not use one still compiles warning-free.
 *
 *	struct cfg c;
 *	long long timeout = 30;
 *
 *	if (cfg_parse(&c, host->config_json(hctx)) != 0 ||
 *	    cfg_get_int(&c, "timeout", 1, 86400, &timeout) < 0) {
 *		host->log(hctx, FM_LOG_ERR, "config: %s", c.err);
 *		return -1;
 *	}
 *	cfg_warn_unknown(&c, host, hctx);
 *
 * cfg_parse() checks the whole text: one JSON object (RFC 8259, UTF-8, no
 * NUL characters, no lone surrogates, no duplicate keys, at most
 * CFG_MAX_MEMBERS members and CFG_MAX_DEPTH levels) and records its members.
 * Getters return 0 and store the value, 1 when the key is absent (the
 * output is untouched: preset it to the default), or -1 with a reason in
 * c->err when the value has the wrong type or range.  A getter marks its
 * key as known; cfg_warn_unknown() then logs every member no getter asked
 * for as "unknown config key 'x'".  JSON null counts as a wrong type.
 */
#ifndef FM_CONSUMERS_COMMON_H
#define FM_CONSUMERS_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/plugin.h>

#define CFG_ERRLEN	256
#define CFG_MAX_MEMBERS	64
#define CFG_MAX_KEY	128		/* bytes of a key, with its NUL */
#define CFG_MAX_DEPTH	32
#define CFG_MAX_TEXT	(1024 * 1024)
#define CFG_MAX_ITEMS	1024		/* elements of an array we return */

enum cfg_type {
	CFG_NULL,
	CFG_BOOL,
	CFG_NUMBER,
	CFG_STRING,
	CFG_ARRAY,
	CFG_OBJECT,
};

struct cfg_member {
	char		 key[CFG_MAX_KEY];
	const char	*val;		/* the value's text, inside the input */
	size_t		 vlen;
	enum cfg_type	 type;
	bool		 known;		/* asked for by a getter */
};

struct cfg {
	struct cfg_member m[CFG_MAX_MEMBERS];
	size_t		 n;
	char		 err[CFG_ERRLEN];
};

/* Parser state; err points at the struct cfg's buffer. */
struct cfg_p {
	const char	*p;
	const char	*end;
	const char	*start;
	char		*err;
};

static inline const char *
cfg_type_name(enum cfg_type t)
{
	static const char *const names[] = { "null", "a boolean", "a number",
	    "a string", "an array", "an object" };

	return names[t];
}

static inline int
cfg__fail(struct cfg_p *ps, const char *what)
{
	snprintf(ps->err, CFG_ERRLEN, "invalid JSON at byte %zu: %s",
	    (size_t)(ps->p - ps->start), what);
	return -1;
}

static inline void
cfg__ws(struct cfg_p *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
	    *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static inline int
cfg__hex4(const char *p, unsigned *v)
{
	unsigned i, d;

	*v = 0;
	for (i = 0; i < 4; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			d = (unsigned)(p[i] - '0');
		else if (p[i] >= 'a' && p[i] <= 'f')
			d = (unsigned)(p[i] - 'a' + 10);
		else if (p[i] >= 'A' && p[i] <= 'F')
			d = (unsigned)(p[i] - 'A' + 10);
		else
			return -1;
		*v = *v << 4 | d;
	}
	return 0;
}

/* Length of the valid UTF-8 sequence at p (< end), or 0. */
static inline size_t
cfg__utf8(const unsigned char *p, const unsigned char *end)
{
	size_t n, i;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Store code point cp as UTF-8 at out + *len when out is not NULL. */
static inline void
cfg__put(char *out, size_t *len, unsigned cp)
{
	unsigned char b[4];
	size_t n, i;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | cp >> 6);
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | cp >> 12);
		b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | cp >> 18);
		b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	for (i = 0; i < n; i++) {
		if (out != NULL)
			out[*len] = (char)b[i];
		(*len)++;
	}
}

/*
 * The string at ps->p (on its opening quote).  Decodes into out (which
 * must hold the decoded length + 1, see cfg__string_len) when not NULL;
 * the decoded length goes to *len.  Leaves ps->p after the closing quote.
 */
static inline int
cfg__string(struct cfg_p *ps, char *out, size_t *len)
{
	const unsigned char *p, *end = (const unsigned char *)ps->end;
	unsigned cp, lo;
	size_t n;

	*len = 0;
	if (ps->p >= ps->end || *ps->p != '"')
		return cfg__fail(ps, "expected a string");
	ps->p++;
	for (;;) {
		p = (const unsigned char *)ps->p;
		if (p >= end)
			return cfg__fail(ps, "unterminated string");
		if (*p == '"') {
			ps->p++;
			break;
		}
		if (*p < 0x20)
			return cfg__fail(ps, "control character in string");
		if (*p != '\\') {
			if ((n = cfg__utf8(p, end)) == 0)
				return cfg__fail(ps, "invalid UTF-8");
			if (out != NULL)
				memcpy(out + *len, p, n);
			*len += n;
			ps->p += n;
			continue;
		}
		if (end - p < 2)
			return cfg__fail(ps, "unterminated string");
		switch (p[1]) {
		case '"': cp = '"'; break;
		case '\\': cp = '\\'; break;
		case '/': cp = '/'; break;
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'u':
			if (end - p < 6 || cfg__hex4(ps->p + 2, &cp) != 0)
				return cfg__fail(ps, "bad \\u escape");
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return cfg__fail(ps, "lone low surrogate");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - p < 12 || p[6] != '\\' ||
				    p[7] != 'u' ||
				    cfg__hex4(ps->p + 8, &lo) != 0 ||
				    lo < 0xdc00 || lo > 0xdfff)
					return cfg__fail(ps,
					    "lone high surrogate");
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
				ps->p += 6;
			}
			if (cp == 0)
				return cfg__fail(ps, "\\u0000 is not allowed");
			ps->p += 4;
			break;
		default:
			return cfg__fail(ps, "bad escape");
		}
		ps->p += 2;
		cfg__put(out, len, cp);
	}
	if (out != NULL)
		out[*len] = '\0';
	return 0;
}

static inline int
cfg__number(struct cfg_p *ps)
{
	const char *p = ps->p, *e = ps->end;

	if (p < e && *p == '-')
		p++;
	if (p < e && *p == '0')
		p++;
	else if (p < e && *p >= '1' && *p <= '9')
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	else
		return cfg__fail(ps, "bad number");
	if (p < e && *p == '.') {
		if (++p >= e || *p < '0' || *p > '9')
			return cfg__fail(ps, "bad number");
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || *p < '0' || *p > '9')
			return cfg__fail(ps, "bad number");
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	ps->p = p;
	return 0;
}

static inline int
cfg__lit(struct cfg_p *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return cfg__fail(ps, "unexpected character");
	ps->p += n;
	return 0;
}

static inline int cfg__value(struct cfg_p *, struct cfg *, int,
    enum cfg_type *);

/* An object (c != NULL: record its members) or an array. */
static inline int
cfg__container(struct cfg_p *ps, struct cfg *c, int depth, char close)
{
	struct cfg_member *m;
	enum cfg_type t;
	const char *v, *kstart;
	size_t klen, i;

	if (depth >= CFG_MAX_DEPTH)
		return cfg__fail(ps, "nested too deeply");
	ps->p++;
	cfg__ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return 0;
	}
	for (;;) {
		m = NULL;
		if (close == '}') {
			kstart = ps->p;
			if (cfg__string(ps, NULL, &klen) != 0)
				return -1;
			if (c != NULL) {
				if (c->n == CFG_MAX_MEMBERS)
					return cfg__fail(ps,
					    "too many members");
				if (klen >= CFG_MAX_KEY)
					return cfg__fail(ps, "key too long");
				m = &c->m[c->n];
				ps->p = kstart;
				if (cfg__string(ps, m->key, &klen) != 0)
					return -1;
				for (i = 0; i < c->n; i++)
					if (strcmp(c->m[i].key, m->key) == 0) {
						snprintf(ps->err, CFG_ERRLEN,
						    "duplicate key '%s'",
						    m->key);
						return -1;
					}
			}
			cfg__ws(ps);
			if (ps->p >= ps->end || *ps->p != ':')
				return cfg__fail(ps, "expected ':'");
			ps->p++;
		}
		cfg__ws(ps);
		v = ps->p;
		if (cfg__value(ps, NULL, depth + 1, &t) != 0)
			return -1;
		if (m != NULL) {
			m->val = v;
			m->vlen = (size_t)(ps->p - v);
			m->type = t;
			m->known = false;
			c->n++;
		}
		cfg__ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			cfg__ws(ps);
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return 0;
		}
		return cfg__fail(ps, close == '}' ? "expected ',' or '}'" :
		    "expected ',' or ']'");
	}
}

static inline int
cfg__value(struct cfg_p *ps, struct cfg *c, int depth, enum cfg_type *t)
{
	size_t len;

	if (ps->p >= ps->end)
		return cfg__fail(ps, "unexpected end");
	switch (*ps->p) {
	case '{':
		*t = CFG_OBJECT;
		return cfg__container(ps, c, depth, '}');
	case '[':
		*t = CFG_ARRAY;
		return cfg__container(ps, NULL, depth, ']');
	case '"':
		*t = CFG_STRING;
		return cfg__string(ps, NULL, &len);
	case 't':
		*t = CFG_BOOL;
		return cfg__lit(ps, "true");
	case 'f':
		*t = CFG_BOOL;
		return cfg__lit(ps, "false");
	case 'n':
		*t = CFG_NULL;
		return cfg__lit(ps, "null");
	default:
		*t = CFG_NUMBER;
		return cfg__number(ps);
	}
}

/* Parse len bytes of text, which must be one JSON object. */
static inline int
cfg_parse_len(struct cfg *c, const char *text, size_t len)
{
	struct cfg_p ps;
	enum cfg_type t;

	c->n = 0;
	c->err[0] = '\0';
	if (text == NULL) {
		snprintf(c->err, CFG_ERRLEN, "no config text");
		return -1;
	}
	ps.start = ps.p = text;
	ps.end = text + len;
	ps.err = c->err;
	if (len > CFG_MAX_TEXT) {
		snprintf(c->err, CFG_ERRLEN, "config larger than %d bytes",
		    CFG_MAX_TEXT);
		return -1;
	}
	cfg__ws(&ps);
	if (ps.p >= ps.end || *ps.p != '{')
		return cfg__fail(&ps, "the config must be an object");
	if (cfg__value(&ps, c, 0, &t) != 0) {
		c->n = 0;
		return -1;
	}
	cfg__ws(&ps);
	if (ps.p != ps.end) {
		c->n = 0;
		return cfg__fail(&ps, "text after the object");
	}
	return 0;
}

/* Parse a NUL-terminated text (NULL, as from a host with no config, = {}). */
static inline int
cfg_parse(struct cfg *c, const char *text)
{
	if (text == NULL)
		text = "{}";
	return cfg_parse_len(c, text, strnlen(text, CFG_MAX_TEXT + 1));
}

/* The member named key, marked known, or NULL. */
static inline struct cfg_member *
cfg_find(struct cfg *c, const char *key)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->m[i].key, key) == 0) {
			c->m[i].known = true;
			return &c->m[i];
		}
	return NULL;
}

static inline int
cfg__type(struct cfg *c, const struct cfg_member *m, enum cfg_type want,
    const char *what)
{
	if (m->type == want)
		return 0;
	snprintf(c->err, CFG_ERRLEN, "'%s' must be %s, not %s", m->key,
	    what != NULL ? what : cfg_type_name(want), cfg_type_name(m->type));
	return -1;
}

/* Decode the string value at v (on its quote): malloc'ed, or NULL. */
static inline char *
cfg__strdup(struct cfg *c, const char *v, size_t vlen)
{
	struct cfg_p ps = { v, v + vlen, v, c->err };
	size_t len;
	char *s;

	if (cfg__string(&ps, NULL, &len) != 0)
		return NULL;
	if ((s = malloc(len + 1)) == NULL) {
		snprintf(c->err, CFG_ERRLEN, "out of memory");
		return NULL;
	}
	ps.p = v;
	(void)cfg__string(&ps, s, &len);
	return s;
}

/* A string: *out is malloc'ed (the caller frees it). */
static inline int
cfg_get_string(struct cfg *c, const char *key, char **out)
{
	struct cfg_member *m = cfg_find(c, key);
	char *s;

	if (m == NULL)
		return 1;
	if (cfg__type(c, m, CFG_STRING, NULL) != 0 ||
	    (s = cfg__strdup(c, m->val, m->vlen)) == NULL)
		return -1;
	*out = s;
	return 0;
}

/* An integer (no fraction, no exponent) within [min, max]. */
static inline int
cfg__int(struct cfg *c, const char *key, const char *v, size_t vlen,
    long long min, long long max, long long *out)
{
	char buf[32];
	long long x;
	size_t i;

	for (i = 0; i < vlen; i++)
		if ((v[i] < '0' || v[i] > '9') && !(i == 0 && v[i] == '-'))
			break;
	if (i < vlen || vlen == 0) {
		snprintf(c->err, CFG_ERRLEN, "'%s' must be an integer, not "
		    "%.*s", key, (int)(vlen > 20 ? 20 : vlen), v);
		return -1;
	}
	if (vlen >= sizeof(buf))
		goto range;
	memcpy(buf, v, vlen);
	buf[vlen] = '\0';
	errno = 0;
	x = strtoll(buf, NULL, 10);
	if (errno != 0 || x < min || x > max)
		goto range;
	*out = x;
	return 0;
range:
	snprintf(c->err, CFG_ERRLEN, "'%s' must be between %lld and %lld",
	    key, min, max);
	return -1;
}

static inline int
cfg_get_int(struct cfg *c, const char *key, long long min, long long max,
    long long *out)
{
	struct cfg_member *m = cfg_find(c, key);

	if (m == NULL)
		return 1;
	if (cfg__type(c, m, CFG_NUMBER, "an integer") != 0)
		return -1;
	return cfg__int(c, key, m->val, m->vlen, min, max, out);
}

static inline int
cfg_get_bool(struct cfg *c, const char *key, bool *out)
{
	struct cfg_member *m = cfg_find(c, key);

	if (m == NULL)
		return 1;
	if (cfg__type(c, m, CFG_BOOL, NULL) != 0)
		return -1;
	*out = m->val[0] == 't';
	return 0;
}

/*
 * Walk the elements of the array member m: calls fn(c, key, index, text,
 * len, arg) for each; stops at the first nonzero return.
 */
static inline int
cfg__each(struct cfg *c, const struct cfg_member *m,
    int (*fn)(struct cfg *, const char *, size_t, const char *, size_t,
    enum cfg_type, void *), void *arg)
{
	struct cfg_p ps = { m->val + 1, m->val + m->vlen, m->val, c->err };
	enum cfg_type t;
	const char *v;
	size_t i;

	for (i = 0;; i++) {
		cfg__ws(&ps);
		if (*ps.p == ']')
			return 0;
		if (i == CFG_MAX_ITEMS) {
			snprintf(c->err, CFG_ERRLEN, "'%s' has more than %d "
			    "elements", m->key, CFG_MAX_ITEMS);
			return -1;
		}
		v = ps.p;
		if (cfg__value(&ps, NULL, 1, &t) != 0 ||
		    fn(c, m->key, i, v, (size_t)(ps.p - v), t, arg) != 0)
			return -1;
		cfg__ws(&ps);
		if (*ps.p == ',')
			ps.p++;
	}
}

struct cfg__strv {
	char	**v;
	size_t	  n;
};

static inline int
cfg__strv_add(struct cfg *c, const char *key, size_t i, const char *v,
    size_t vlen, enum cfg_type t, void *arg)
{
	struct cfg__strv *sv = arg;
	char **nv;

	if (t != CFG_STRING) {
		snprintf(c->err, CFG_ERRLEN, "'%s[%zu]' must be a string, "
		    "not %s", key, i, cfg_type_name(t));
		return -1;
	}
	if ((nv = realloc(sv->v, (sv->n + 2) * sizeof(*nv))) == NULL) {
		snprintf(c->err, CFG_ERRLEN, "out of memory");
		return -1;
	}
	sv->v = nv;
	if ((sv->v[sv->n] = cfg__strdup(c, v, vlen)) == NULL)
		return -1;
	sv->v[++sv->n] = NULL;
	return 0;
}

/* Free a NULL-terminated string vector (NULL is fine). */
static inline void
cfg_strv_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/*
 * An array of strings: *out is a malloc'ed NULL-terminated vector (free
 * it with cfg_strv_free), *n its length (n may be NULL).
 */
static inline int
cfg_get_strings(struct cfg *c, const char *key, char ***out, size_t *n)
{
	struct cfg_member *m = cfg_find(c, key);
	struct cfg__strv sv = { NULL, 0 };

	if (m == NULL)
		return 1;
	if (cfg__type(c, m, CFG_ARRAY, "an array of strings") != 0)
		return -1;
	if ((sv.v = calloc(1, sizeof(*sv.v))) == NULL) {
		snprintf(c->err, CFG_ERRLEN, "out of memory");
		return -1;
	}
	if (cfg__each(c, m, cfg__strv_add, &sv) != 0) {
		cfg_strv_free(sv.v);
		return -1;
	}
	*out = sv.v;
	if (n != NULL)
		*n = sv.n;
	return 0;
}

struct cfg__intv {
	long long	*v;
	size_t		 n;
	long long	 min;
	long long	 max;
};

static inline int
cfg__intv_add(struct cfg *c, const char *key, size_t i, const char *v,
    size_t vlen, enum cfg_type t, void *arg)
{
	struct cfg__intv *iv = arg;
	long long *nv, x;
	char name[CFG_MAX_KEY + 24];

	snprintf(name, sizeof(name), "%s[%zu]", key, i);
	if (t != CFG_NUMBER) {
		snprintf(c->err, CFG_ERRLEN, "'%s' must be an integer, not %s",
		    name, cfg_type_name(t));
		return -1;
	}
	if (cfg__int(c, name, v, vlen, iv->min, iv->max, &x) != 0)
		return -1;
	if ((nv = realloc(iv->v, (iv->n + 1) * sizeof(*nv))) == NULL) {
		snprintf(c->err, CFG_ERRLEN, "out of memory");
		return -1;
	}
	iv->v = nv;
	iv->v[iv->n++] = x;
	return 0;
}

/* An array of integers within [min, max]: *out malloc'ed (NULL if empty). */
static inline int
cfg_get_ints(struct cfg *c, const char *key, long long min, long long max,
    long long **out, size_t *n)
{
	struct cfg_member *m = cfg_find(c, key);
	struct cfg__intv iv = { NULL, 0, min, max };

	if (m == NULL)
		return 1;
	if (cfg__type(c, m, CFG_ARRAY, "an array of integers") != 0)
		return -1;
	if (cfg__each(c, m, cfg__intv_add, &iv) != 0) {
		free(iv.v);
		return -1;
	}
	*out = iv.v;
	*n = iv.n;
	return 0;
}

/* An object: parsed into *sub (its members are then read by key). */
static inline int
cfg_get_object(struct cfg *c, const char *key, struct cfg *sub)
{
	struct cfg_member *m = cfg_find(c, key);

	if (m == NULL)
		return 1;
	if (cfg__type(c, m, CFG_OBJECT, NULL) != 0)
		return -1;
	if (cfg_parse_len(sub, m->val, m->vlen) != 0) {
		snprintf(c->err, CFG_ERRLEN, "'%s': %s", key, sub->err);
		return -1;
	}
	return 0;
}

/* Log "unknown config key 'x'" for every member no getter asked for. */
static inline size_t
cfg_warn_unknown(const struct cfg *c, const struct fm_host *host,
    void *hctx)
{
	size_t i, n = 0;

	for (i = 0; i < c->n; i++)
		if (!c->m[i].known) {
			host->log(hctx, FM_LOG_WARN,
			    "unknown config key '%s'", c->m[i].key);
			n++;
		}
	return n;
}

#endif /* FM_CONSUMERS_COMMON_H */
