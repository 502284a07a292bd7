/*
 * XML-RPC for Koji (xmlrpc.h): the encoder appends to a buffer, the
 * decoder is a recursive descent over the response text that only knows
 * the elements XML-RPC uses, so anything else (a DOCTYPE, a CDATA section,
 * an unknown tag) is an error rather than something to interpret.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmlrpc.h"

/* ---- encoder ---------------------------------------------------------- */

static void
put(struct xr_buf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 512;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = realloc(b->s, cap)) == NULL) {
			b->err = 1;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
puts_(struct xr_buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* Text with &, < and > escaped (what a string element needs). */
static void
put_text(struct xr_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '&')
			puts_(b, "&amp;");
		else if (*s == '<')
			puts_(b, "&lt;");
		else if (*s == '>')
			puts_(b, "&gt;");
		else
			put(b, s, 1);
	}
}

static void
put_int(struct xr_buf *b, int64_t v)
{
	char n[32];

	/* <int> is 32 bits in the spec; Koji's <i8> carries the rest */
	if (v >= INT32_MIN && v <= INT32_MAX)
		snprintf(n, sizeof(n), "<int>%" PRId64 "</int>", v);
	else
		snprintf(n, sizeof(n), "<i8>%" PRId64 "</i8>", v);
	puts_(b, n);
}

void
xr_call_begin(struct xr_buf *b, const char *method)
{
	memset(b, 0, sizeof(*b));
	puts_(b, "<?xml version='1.0'?>\n<methodCall><methodName>");
	put_text(b, method);
	puts_(b, "</methodName><params>");
}

void
xr_param_string(struct xr_buf *b, const char *s)
{
	puts_(b, "<param><value><string>");
	put_text(b, s);
	puts_(b, "</string></value></param>");
}

void
xr_param_int(struct xr_buf *b, int64_t v)
{
	puts_(b, "<param><value>");
	put_int(b, v);
	puts_(b, "</value></param>");
}

void
xr_param_bool(struct xr_buf *b, int v)
{
	puts_(b, v ? "<param><value><boolean>1</boolean></value></param>" :
	    "<param><value><boolean>0</boolean></value></param>");
}

void
xr_param_nil(struct xr_buf *b)
{
	puts_(b, "<param><value><nil/></value></param>");
}

void
xr_kwargs_begin(struct xr_buf *b)
{
	puts_(b, "<param><value><struct>");
	b->in_kwargs = 1;
}

static void
kw_name(struct xr_buf *b, const char *key)
{
	puts_(b, "<member><name>");
	put_text(b, key);
	puts_(b, "</name><value>");
}

void
xr_kw_int(struct xr_buf *b, const char *key, int64_t v)
{
	kw_name(b, key);
	put_int(b, v);
	puts_(b, "</value></member>");
}

void
xr_kw_string(struct xr_buf *b, const char *key, const char *s)
{
	kw_name(b, key);
	puts_(b, "<string>");
	put_text(b, s);
	puts_(b, "</string></value></member>");
}

void
xr_kwargs_end(struct xr_buf *b)
{
	/* koji.ParameterError-free: the marker Koji's hub looks for */
	puts_(b, "<member><name>__starstar</name><value><boolean>1</boolean>"
	    "</value></member></struct></value></param>");
	b->in_kwargs = 0;
}

int
xr_call_end(struct xr_buf *b)
{
	puts_(b, "</params></methodCall>\n");
	return b->err || b->in_kwargs ? -1 : 0;
}

void
xr_buf_free(struct xr_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

/* ---- decoder ---------------------------------------------------------- */

struct xp {
	const char	*p, *end;
	int		 depth;
	size_t		 nodes;
	char		*err;
	size_t		 errlen;
};

enum tag_kind { T_OPEN, T_CLOSE, T_EMPTY };

static int
xp_fail(struct xp *x, const char *fmt, ...)
{
	va_list ap;

	if (x->err[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(x->err, x->errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void
skip_ws(struct xp *x)
{
	while (x->p < x->end && is_ws(*x->p))
		x->p++;
}

/* The next tag (after whitespace): name and kind; attributes refused. */
static int
read_tag(struct xp *x, const char **name, size_t *nlen, enum tag_kind *kind)
{
	const char *s;

	skip_ws(x);
	if (x->p >= x->end || *x->p != '<')
		return xp_fail(x, "expected a tag");
	x->p++;
	*kind = T_OPEN;
	if (x->p < x->end && *x->p == '/') {
		*kind = T_CLOSE;
		x->p++;
	}
	s = x->p;
	while (x->p < x->end && ((*x->p >= 'a' && *x->p <= 'z') ||
	    (*x->p >= 'A' && *x->p <= 'Z') || (*x->p >= '0' && *x->p <= '9') ||
	    *x->p == '.'))
		x->p++;
	*name = s;
	*nlen = (size_t)(x->p - s);
	if (*nlen == 0)
		return xp_fail(x, "not an XML-RPC element");
	skip_ws(x);
	if (*kind == T_OPEN && x->p < x->end && *x->p == '/') {
		*kind = T_EMPTY;
		x->p++;
	}
	if (x->p >= x->end || *x->p != '>')
		return xp_fail(x, "malformed tag <%.*s", (int)(*nlen > 32 ? 32 :
		    *nlen), s);
	x->p++;
	return 0;
}

static int
name_is(const char *n, size_t len, const char *want)
{
	return strlen(want) == len && memcmp(n, want, len) == 0;
}

static int
expect(struct xp *x, const char *want, enum tag_kind kind)
{
	const char *n;
	size_t len;
	enum tag_kind k;

	if (read_tag(x, &n, &len, &k) < 0)
		return -1;
	if (k != kind || !name_is(n, len, want))
		return xp_fail(x, "expected <%s%s>", kind == T_CLOSE ? "/" : "",
		    want);
	return 0;
}

/* Whether the next tag (after whitespace) is a closing one. */
static int
at_close(struct xp *x)
{
	skip_ws(x);
	return x->end - x->p >= 2 && x->p[0] == '<' && x->p[1] == '/';
}

/* Append code point c as UTF-8. */
static size_t
utf8(char *o, unsigned long c)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xc0 | (c >> 6));
		o[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xe0 | (c >> 12));
		o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (c >> 18));
	o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	o[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* Character data up to the next '<', entities decoded, malloc'ed.  The
 * decoded text is never longer than the raw text. */
static char *
read_text(struct xp *x, size_t *outlen)
{
	const char *s = x->p, *e;
	char *o, *w;

	while (x->p < x->end && *x->p != '<')
		x->p++;
	e = x->p;
	if ((o = w = malloc((size_t)(e - s) + 1)) == NULL) {
		xp_fail(x, "out of memory");
		return NULL;
	}
	while (s < e) {
		const char *semi;
		size_t n;

		if (*s != '&') {
			*w++ = *s++;
			continue;
		}
		semi = memchr(s, ';', (size_t)(e - s));
		if (semi == NULL || semi - s > 12)
			goto bad;
		n = (size_t)(semi - s + 1);
		if (n == 4 && memcmp(s, "&lt;", 4) == 0)
			*w++ = '<';
		else if (n == 4 && memcmp(s, "&gt;", 4) == 0)
			*w++ = '>';
		else if (n == 5 && memcmp(s, "&amp;", 5) == 0)
			*w++ = '&';
		else if (n == 6 && memcmp(s, "&quot;", 6) == 0)
			*w++ = '"';
		else if (n == 6 && memcmp(s, "&apos;", 6) == 0)
			*w++ = '\'';
		else if (n >= 4 && s[1] == '#') {
			unsigned long c = 0;
			const char *d = s + 2;
			int hex = *d == 'x';

			if (hex)
				d++;
			if (d == semi)
				goto bad;
			for (; d < semi; d++) {
				int v;

				if (*d >= '0' && *d <= '9')
					v = *d - '0';
				else if (hex && *d >= 'a' && *d <= 'f')
					v = *d - 'a' + 10;
				else if (hex && *d >= 'A' && *d <= 'F')
					v = *d - 'A' + 10;
				else
					goto bad;
				c = c * (hex ? 16 : 10) + (unsigned long)v;
				if (c > 0x10ffff)
					goto bad;
			}
			if (c == 0 || (c >= 0xd800 && c <= 0xdfff))
				goto bad;
			/* "&#N;" is at least 4 bytes; UTF-8 of N at most 4 */
			w += utf8(w, c);
		} else
			goto bad;
		s = semi + 1;
	}
	*w = '\0';
	*outlen = (size_t)(w - o);
	return o;
bad:
	free(o);
	xp_fail(x, "bad character reference");
	return NULL;
}

static struct xr_value *
new_value(struct xp *x, enum xr_type t)
{
	struct xr_value *v;

	if (++x->nodes > XR_MAX_NODES) {
		xp_fail(x, "more than %d values", XR_MAX_NODES);
		return NULL;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL) {
		xp_fail(x, "out of memory");
		return NULL;
	}
	v->type = t;
	return v;
}

/* Append child (and key) to a container; frees them on failure. */
static int
add_item(struct xp *x, struct xr_value *c, char *key, struct xr_value *item)
{
	struct xr_value **items;

	if ((c->n & (c->n - 1)) == 0) {		/* 0, 1, 2, 4, ...: grow */
		size_t cap = c->n ? c->n * 2 : 1;

		if ((items = realloc(c->items, cap * sizeof(*items))) == NULL)
			goto oom;
		c->items = items;
		if (c->type == XR_STRUCT) {
			char **keys = realloc(c->keys, cap * sizeof(*keys));

			if (keys == NULL)
				goto oom;
			c->keys = keys;
		}
	}
	c->items[c->n] = item;
	if (c->type == XR_STRUCT)
		c->keys[c->n] = key;
	c->n++;
	return 0;
oom:
	free(key);
	xr_free(item);
	return xp_fail(x, "out of memory");
}

static int
parse_int(struct xp *x, const char *s, int64_t *out)
{
	char *end;
	long long v;

	while (is_ws(*s))
		s++;
	errno = 0;
	v = strtoll(s, &end, 10);
	while (is_ws(*end))
		end++;
	if (end == s || *end != '\0' || errno == ERANGE)
		return xp_fail(x, "bad integer");
	*out = v;
	return 0;
}

static struct xr_value *parse_value_body(struct xp *x);

/* After <value>: the value, then </value>. */
static struct xr_value *
parse_value(struct xp *x)
{
	struct xr_value *v;

	if (++x->depth > XR_MAX_DEPTH) {
		xp_fail(x, "nested deeper than %d", XR_MAX_DEPTH);
		return NULL;
	}
	v = parse_value_body(x);
	x->depth--;
	if (v != NULL && expect(x, "value", T_CLOSE) < 0) {
		xr_free(v);
		return NULL;
	}
	return v;
}

static struct xr_value *
parse_value_body(struct xp *x)
{
	const char *save = x->p, *n;
	size_t len, olen;
	enum tag_kind k;
	struct xr_value *v;
	char *text;

	/* <value>text</value> is a string (the type is optional) */
	if (!(skip_ws(x), x->p < x->end && *x->p == '<') || at_close(x)) {
		x->p = save;
		if ((v = new_value(x, XR_STRING)) == NULL)
			return NULL;
		if ((v->s = read_text(x, &v->slen)) == NULL) {
			xr_free(v);
			return NULL;
		}
		return v;
	}
	if (read_tag(x, &n, &len, &k) < 0)
		return NULL;
	if (k == T_EMPTY) {
		if (name_is(n, len, "nil"))
			return new_value(x, XR_NIL);
		if (name_is(n, len, "string")) {
			if ((v = new_value(x, XR_STRING)) != NULL &&
			    (v->s = calloc(1, 1)) == NULL) {
				xr_free(v);
				xp_fail(x, "out of memory");
				return NULL;
			}
			return v;
		}
		xp_fail(x, "unexpected <%.*s/>", (int)(len > 32 ? 32 : len), n);
		return NULL;
	}
	if (k != T_OPEN) {
		xp_fail(x, "unexpected closing tag");
		return NULL;
	}
	olen = len;
	if (name_is(n, len, "array")) {
		if ((v = new_value(x, XR_ARRAY)) == NULL)
			return NULL;
		if (expect(x, "data", T_OPEN) < 0)
			goto bad;
		while (!at_close(x)) {
			struct xr_value *item;

			if (expect(x, "value", T_OPEN) < 0 ||
			    (item = parse_value(x)) == NULL ||
			    add_item(x, v, NULL, item) < 0)
				goto bad;
		}
		if (expect(x, "data", T_CLOSE) < 0 ||
		    expect(x, "array", T_CLOSE) < 0)
			goto bad;
		return v;
	}
	if (name_is(n, len, "struct")) {
		if ((v = new_value(x, XR_STRUCT)) == NULL)
			return NULL;
		while (!at_close(x)) {
			struct xr_value *item;
			size_t klen;
			char *key;

			if (expect(x, "member", T_OPEN) < 0 ||
			    expect(x, "name", T_OPEN) < 0 ||
			    (key = read_text(x, &klen)) == NULL)
				goto bad;
			if (expect(x, "name", T_CLOSE) < 0 ||
			    expect(x, "value", T_OPEN) < 0 ||
			    (item = parse_value(x)) == NULL) {
				free(key);
				goto bad;
			}
			if (add_item(x, v, key, item) < 0 ||
			    expect(x, "member", T_CLOSE) < 0)
				goto bad;
		}
		if (expect(x, "struct", T_CLOSE) < 0)
			goto bad;
		return v;
	}
	/* scalars: <type>text</type> */
	if (name_is(n, len, "int") || name_is(n, len, "i4") ||
	    name_is(n, len, "i8"))
		v = new_value(x, XR_INT);
	else if (name_is(n, len, "boolean"))
		v = new_value(x, XR_BOOL);
	else if (name_is(n, len, "double"))
		v = new_value(x, XR_DOUBLE);
	else if (name_is(n, len, "string") ||
	    name_is(n, len, "dateTime.iso8601") || name_is(n, len, "base64"))
		v = new_value(x, XR_STRING);
	else {
		xp_fail(x, "unknown element <%.*s>", (int)(len > 32 ? 32 : len), n);
		return NULL;
	}
	if (v == NULL || (text = read_text(x, &len)) == NULL)
		goto bad;
	if (v->type == XR_STRING) {
		v->s = text;
		v->slen = len;
	} else {
		char *end;

		if (memchr(text, 0, len) != NULL)
			v->type = XR_NIL, xp_fail(x, "NUL in a number");
		else if (v->type == XR_INT)
			parse_int(x, text, &v->i);
		else if (v->type == XR_BOOL) {
			if (strcmp(text, "0") == 0 || strcmp(text, "1") == 0)
				v->i = text[0] - '0';
			else
				xp_fail(x, "bad boolean");
		} else {
			v->d = strtod(text, &end);
			if (end == text || *end != '\0')
				xp_fail(x, "bad double");
		}
		free(text);
		if (x->err[0] != '\0')
			goto bad;
	}
	/* the closing tag must match the opening one */
	{
		const char *cn;
		size_t clen;

		if (read_tag(x, &cn, &clen, &k) < 0)
			goto bad;
		if (k != T_CLOSE || clen != olen || memcmp(cn, n, clen) != 0)
			goto mismatch;
	}
	return v;
mismatch:
	xp_fail(x, "mismatched closing tag");
bad:
	xr_free(v);
	return NULL;
}

int
xr_parse_response(const char *text, size_t len, struct xr_value **out,
    char *err, size_t errlen)
{
	struct xp x = { text, text + len, 0, 0, err, errlen };
	struct xr_value *v = NULL;
	const char *n;
	size_t nlen;
	enum tag_kind k;
	int fault = 0;

	err[0] = '\0';
	*out = NULL;
	if (len > XR_MAX_INPUT)
		return xp_fail(&x, "response larger than %u bytes", XR_MAX_INPUT);
	skip_ws(&x);
	if (x.end - x.p >= 5 && memcmp(x.p, "<?xml", 5) == 0) {
		const char *e = x.p + 5;

		while (e + 1 < x.end && !(e[0] == '?' && e[1] == '>'))
			e++;
		if (e + 1 >= x.end)
			return xp_fail(&x, "unterminated XML declaration");
		x.p = e + 2;
	}
	if (expect(&x, "methodResponse", T_OPEN) < 0)
		return -1;
	if (read_tag(&x, &n, &nlen, &k) < 0)
		return -1;
	if (k == T_OPEN && name_is(n, nlen, "params")) {
		if (expect(&x, "param", T_OPEN) < 0 ||
		    expect(&x, "value", T_OPEN) < 0 ||
		    (v = parse_value(&x)) == NULL ||
		    expect(&x, "param", T_CLOSE) < 0 ||
		    expect(&x, "params", T_CLOSE) < 0)
			goto bad;
	} else if (k == T_OPEN && name_is(n, nlen, "fault")) {
		if (expect(&x, "value", T_OPEN) < 0 ||
		    (v = parse_value(&x)) == NULL ||
		    expect(&x, "fault", T_CLOSE) < 0)
			goto bad;
		if (v->type != XR_STRUCT || xr_get_str(v, "faultString") ==
		    NULL) {
			xp_fail(&x, "a fault without a faultString");
			goto bad;
		}
		fault = 1;
	} else {
		xp_fail(&x, "expected <params> or <fault>");
		goto bad;
	}
	if (expect(&x, "methodResponse", T_CLOSE) < 0)
		goto bad;
	skip_ws(&x);
	if (x.p != x.end) {
		xp_fail(&x, "trailing data after </methodResponse>");
		goto bad;
	}
	*out = v;
	return fault;
bad:
	xr_free(v);
	return -1;
}

void
xr_free(struct xr_value *v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < v->n; i++) {
		xr_free(v->items[i]);
		if (v->keys != NULL)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->s);
	free(v);
}

const struct xr_value *
xr_get(const struct xr_value *v, const char *key)
{
	size_t i;

	if (v == NULL || v->type != XR_STRUCT)
		return NULL;
	for (i = 0; i < v->n; i++)
		if (strcmp(v->keys[i], key) == 0)
			return v->items[i];
	return NULL;
}

int
xr_get_int(const struct xr_value *v, const char *key, int64_t *out)
{
	const struct xr_value *m = xr_get(v, key);

	if (m == NULL || m->type != XR_INT)
		return -1;
	*out = m->i;
	return 0;
}

const char *
xr_get_str(const struct xr_value *v, const char *key)
{
	const struct xr_value *m = xr_get(v, key);

	return m != NULL && m->type == XR_STRING ? m->s : NULL;
}
