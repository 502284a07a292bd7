/*
 * fedmsg-c plugin config reader: typed, checked reads of a consumer's
 * "config" object, with error texts that name the key, on top of the
 * ABI 1.1 accessors (plugin.h).  Header-only (static inline): it adds no
 * ABI of its own, and a plugin that does not include it pays nothing.
 *
 *	struct fm_config c;
 *	long long timeout = 30;		(preset: the default)
 *
 *	if (fm_config_open(&c, host, hctx) != 0 ||
 *	    fm_config_int(&c, "timeout", 1, 86400, &timeout) < 0) {
 *		host->log(hctx, FM_LOG_ERR, "config: %s", c.err);
 *		return -1;
 *	}
 *	fm_config_warn_unknown(&c);	(logs typos: "unknown config key 'x'")
 *
 * Every getter returns 0 and stores the value, 1 when the key is absent
 * (the output is untouched: preset it to the default), or -1 with a
 * reason naming the key in c.err when the value has the wrong type or
 * range.  JSON null is a wrong type.  A getter marks its key as known for
 * fm_config_warn_unknown().  Getters that return memory say who frees it.
 * Keys are top-level member names of the object read (any name: '/' and
 * '~' are escaped for the pointer here).
 */
#ifndef FEDMSG_PLUGIN_CONFIG_H
#define FEDMSG_PLUGIN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/plugin.h>

#define FM_CONFIG_ERRLEN	256
#define FM_CONFIG_MAX_KEYS	64	/* keys marked known per object */
#define FM_CONFIG_MAX_PTR	512	/* pointer of an object or member */

struct fm_config {
	const struct fm_host	*host;
	void			*hctx;
	const struct fm_json	*doc;
	char			 base[FM_CONFIG_MAX_PTR];  /* "" or "/env" */
	const char		*known[FM_CONFIG_MAX_KEYS];
	size_t			 nknown;
	char			 err[FM_CONFIG_ERRLEN];
};

/* Open the consumer's config; -1 (c->err) when the host is older than 1.1. */
static inline int
fm_config_open(struct fm_config *c, const struct fm_host *host, void *hctx)
{
	memset(c, 0, sizeof(*c));
	c->host = host;
	c->hctx = hctx;
	if (host->abi_minor < 1 ||
	    host->size < offsetof(struct fm_host, publish_built)) {
		snprintf(c->err, FM_CONFIG_ERRLEN, "this hub is older than "
		    "plugin ABI 1.1");
		return -1;
	}
	c->doc = host->config(hctx);
	if (host->json_type(c->doc, "") != FM_JSON_OBJECT) {
		snprintf(c->err, FM_CONFIG_ERRLEN, "config is not an object");
		return -1;
	}
	return 0;
}

/* base + "/" + key with '~' and '/' escaped; -1 when too long. */
static inline int
fm_config__ptr(const struct fm_config *c, const char *key, char *out)
{
	size_t n = strlen(c->base);
	const char *k;

	memcpy(out, c->base, n);
	out[n++] = '/';
	for (k = key; *k; k++) {
		if (n + 3 >= FM_CONFIG_MAX_PTR)
			return -1;
		if (*k == '~' || *k == '/') {
			out[n++] = '~';
			out[n++] = *k == '~' ? '0' : '1';
		} else {
			out[n++] = *k;
		}
	}
	out[n] = '\0';
	return 0;
}

static inline const char *
fm_config__type_name(int t)
{
	static const char *const names[] = { "absent", "null", "a boolean",
	    "a number", "a string", "an array", "an object" };

	return t >= 0 && t <= FM_JSON_OBJECT ? names[t] : "unreadable";
}

/*
 * Look key up: 1 absent, 0 present with the wanted type (*ptr filled),
 * -1 otherwise (c->err).  want_name: the type's name in the error.
 */
static inline int
fm_config__find(struct fm_config *c, const char *key, int want,
    const char *want_name, char *ptr)
{
	int t;

	if (c->nknown < FM_CONFIG_MAX_KEYS)
		c->known[c->nknown++] = key;
	if (fm_config__ptr(c, key, ptr) < 0) {
		snprintf(c->err, FM_CONFIG_ERRLEN, "key '%.60s...' too long",
		    key);
		return -1;
	}
	t = c->host->json_type(c->doc, ptr);
	if (t == FM_JSON_ABSENT)
		return 1;
	if (t != want) {
		snprintf(c->err, FM_CONFIG_ERRLEN, "'%.120s' must be %s, not %s",
		    key, want_name, fm_config__type_name(t));
		return -1;
	}
	return 0;
}

/* The string at ptr as a malloc'ed C string; NUL inside is refused. */
static inline char *
fm_config__strdup(struct fm_config *c, const char *ptr, const char *name)
{
	const char *s;
	size_t n;
	char *out;

	if (c->host->json_string(c->doc, ptr, &s, &n) != FM_JSON_OK)
		return NULL;
	if (memchr(s, 0, n) != NULL) {
		snprintf(c->err, FM_CONFIG_ERRLEN, "'%.120s' holds a NUL "
		    "character", name);
		return NULL;
	}
	if ((out = malloc(n + 1)) == NULL) {
		snprintf(c->err, FM_CONFIG_ERRLEN, "out of memory");
		return NULL;
	}
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

/* A string: *out is malloc'ed (the plugin frees it). */
static inline int
fm_config_string(struct fm_config *c, const char *key, char **out)
{
	char ptr[FM_CONFIG_MAX_PTR], *s;
	int rc = fm_config__find(c, key, FM_JSON_STRING, "a string", ptr);

	if (rc != 0)
		return rc;
	if ((s = fm_config__strdup(c, ptr, key)) == NULL)
		return -1;
	*out = s;
	return 0;
}

/* An integer (not a float, not a boolean) within [min, max]. */
static inline int
fm_config__int_at(struct fm_config *c, const char *ptr, const char *name,
    long long min, long long max, long long *out)
{
	int64_t v;
	int rc = c->host->json_int(c->doc, ptr, &v);

	if (rc == FM_JSON_ETYPE) {
		snprintf(c->err, FM_CONFIG_ERRLEN, "'%.120s' must be an integer, "
		    "not a float", name);
		return -1;
	}
	if (rc != FM_JSON_OK || v < min || v > max) {
		snprintf(c->err, FM_CONFIG_ERRLEN, "'%.120s' must be between %lld "
		    "and %lld", name, min, max);
		return -1;
	}
	*out = (long long)v;
	return 0;
}

static inline int
fm_config_int(struct fm_config *c, const char *key, long long min,
    long long max, long long *out)
{
	char ptr[FM_CONFIG_MAX_PTR];
	int rc = fm_config__find(c, key, FM_JSON_NUMBER, "an integer", ptr);

	return rc != 0 ? rc : fm_config__int_at(c, ptr, key, min, max, out);
}

/* Any number (integers too) within [min, max]. */
static inline int
fm_config_double(struct fm_config *c, const char *key, double min,
    double max, double *out)
{
	char ptr[FM_CONFIG_MAX_PTR];
	double v;
	int rc = fm_config__find(c, key, FM_JSON_NUMBER, "a number", ptr);

	if (rc != 0)
		return rc;
	if (c->host->json_double(c->doc, ptr, &v) != FM_JSON_OK ||
	    !(v >= min && v <= max)) {
		snprintf(c->err, FM_CONFIG_ERRLEN, "'%.120s' must be between %g "
		    "and %g", key, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static inline int
fm_config_bool(struct fm_config *c, const char *key, bool *out)
{
	char ptr[FM_CONFIG_MAX_PTR];
	int v, rc = fm_config__find(c, key, FM_JSON_BOOL, "a boolean", ptr);

	if (rc != 0)
		return rc;
	c->host->json_bool(c->doc, ptr, &v);
	*out = v != 0;
	return 0;
}

/* Free a NULL-terminated string vector (NULL is fine). */
static inline void
fm_config_strv_free(char **v)
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
 * it with fm_config_strv_free), *n its length (n may be NULL).
 */
static inline int
fm_config_strings(struct fm_config *c, const char *key, char ***out,
    size_t *n)
{
	char ptr[FM_CONFIG_MAX_PTR], item[FM_CONFIG_MAX_PTR + 24],
	    name[FM_CONFIG_MAX_PTR + 24];
	char **v;
	size_t len = 0, i;
	int rc = fm_config__find(c, key, FM_JSON_ARRAY, "an array of strings",
	    ptr);

	if (rc != 0)
		return rc;
	c->host->json_length(c->doc, ptr, &len);
	if ((v = calloc(len + 1, sizeof(*v))) == NULL) {
		snprintf(c->err, FM_CONFIG_ERRLEN, "out of memory");
		return -1;
	}
	for (i = 0; i < len; i++) {
		int t;

		snprintf(item, sizeof(item), "%s/%zu", ptr, i);
		snprintf(name, sizeof(name), "%s[%zu]", key, i);
		if ((t = c->host->json_type(c->doc, item)) != FM_JSON_STRING) {
			snprintf(c->err, FM_CONFIG_ERRLEN, "'%.120s' must be a "
			    "string, not %s", name, fm_config__type_name(t));
			fm_config_strv_free(v);
			return -1;
		}
		if ((v[i] = fm_config__strdup(c, item, name)) == NULL) {
			fm_config_strv_free(v);
			return -1;
		}
	}
	*out = v;
	if (n != NULL)
		*n = len;
	return 0;
}

/* An array of integers within [min, max]: *out malloc'ed (the plugin
 * frees it; NULL when empty), *n its length. */
static inline int
fm_config_ints(struct fm_config *c, const char *key, long long min,
    long long max, long long **out, size_t *n)
{
	char ptr[FM_CONFIG_MAX_PTR], item[FM_CONFIG_MAX_PTR + 24],
	    name[FM_CONFIG_MAX_PTR + 24];
	long long *v = NULL;
	size_t len = 0, i;
	int rc = fm_config__find(c, key, FM_JSON_ARRAY, "an array of integers",
	    ptr);

	if (rc != 0)
		return rc;
	c->host->json_length(c->doc, ptr, &len);
	if (len > 0 && (v = calloc(len, sizeof(*v))) == NULL) {
		snprintf(c->err, FM_CONFIG_ERRLEN, "out of memory");
		return -1;
	}
	for (i = 0; i < len; i++) {
		int t;

		snprintf(item, sizeof(item), "%s/%zu", ptr, i);
		snprintf(name, sizeof(name), "%s[%zu]", key, i);
		if ((t = c->host->json_type(c->doc, item)) != FM_JSON_NUMBER) {
			snprintf(c->err, FM_CONFIG_ERRLEN, "'%.120s' must be an "
			    "integer, not %s", name, fm_config__type_name(t));
			free(v);
			return -1;
		}
		if (fm_config__int_at(c, item, name, min, max, &v[i]) != 0) {
			free(v);
			return -1;
		}
	}
	*out = v;
	*n = len;
	return 0;
}

/*
 * An object member as a reader of its own (*sub), for nested settings
 * such as {"env": {"LANG": "C"}}: its keys are read with the same getters
 * and checked with fm_config_warn_unknown(sub).  fm_config_key() lists
 * its member names.
 */
static inline int
fm_config_object(struct fm_config *c, const char *key, struct fm_config *sub)
{
	char ptr[FM_CONFIG_MAX_PTR];
	int rc = fm_config__find(c, key, FM_JSON_OBJECT, "an object", ptr);

	if (rc != 0)
		return rc;
	memset(sub, 0, sizeof(*sub));
	sub->host = c->host;
	sub->hctx = c->hctx;
	sub->doc = c->doc;
	memcpy(sub->base, ptr, sizeof(sub->base));
	return 0;
}

/* How many members the object read by c has. */
static inline size_t
fm_config_size(const struct fm_config *c)
{
	size_t n = 0;

	c->host->json_length(c->doc, c->base, &n);
	return n;
}

/* Member i's name as a malloc'ed C string (the plugin frees it), or NULL
 * (out of memory, or a name holding NUL: c->err says which). */
static inline char *
fm_config_key(struct fm_config *c, size_t i)
{
	const char *k;
	size_t n;
	char *out;

	if (c->host->json_member(c->doc, c->base, i, &k, &n) != FM_JSON_OK)
		return NULL;
	if (memchr(k, 0, n) != NULL || (out = malloc(n + 1)) == NULL) {
		snprintf(c->err, FM_CONFIG_ERRLEN, "a key holds a NUL "
		    "character, or out of memory");
		return NULL;
	}
	memcpy(out, k, n);
	out[n] = '\0';
	return out;
}

/* Log "unknown config key 'x'" (WARN) for each member no getter asked
 * for; returns how many. */
static inline size_t
fm_config_warn_unknown(struct fm_config *c)
{
	size_t i, j, n = 0, len = fm_config_size(c);

	for (i = 0; i < len; i++) {
		const char *k;
		size_t klen;

		if (c->host->json_member(c->doc, c->base, i, &k, &klen) !=
		    FM_JSON_OK)
			continue;
		if (c->base[0] == '\0' && klen == strlen(FM_HUB_CONFIG_MEMBER) &&
		    memcmp(k, FM_HUB_CONFIG_MEMBER, klen) == 0)
			continue;	/* the hub's, not the plugin's */
		for (j = 0; j < c->nknown; j++)
			if (strlen(c->known[j]) == klen &&
			    memcmp(c->known[j], k, klen) == 0)
				break;
		if (j == c->nknown) {
			c->host->log(c->hctx, FM_LOG_WARN, "unknown config key "
			    "'%s%s%.*s'", c->base[0] ? c->base + 1 : "",
			    c->base[0] ? "." : "", (int)klen, k);
			n++;
		}
	}
	return n;
}

#endif /* FEDMSG_PLUGIN_CONFIG_H */
