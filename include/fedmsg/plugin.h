/*
 * fedmsg-c consumer plugin ABI, version 1.1.
 *
 * A consumer is a shared object that exports exactly one symbol,
 * fm_plugin_entry_v1(), returning a description of itself (struct
 * fm_plugin).  fedmsg-hub loads it with dlopen(RTLD_NOW | RTLD_LOCAL),
 * calls init() with a table of host services (struct fm_host), and then
 * consume() for every validated message on the topics it declared.
 *
 * Versioning.  The major version is in the entry symbol's name: a plugin
 * built for another major fails at dlsym with a clear message.  Minor
 * versions only append fields to the two structs; each side reads the
 * other's fields only within the other's `size`.  A plugin may use a host
 * function added in minor N only when host->abi_minor >= N.
 *
 * Data.  Messages cross as opaque handles, so a plugin depends on nothing
 * of ours (no jansson, no OpenSSL).  Since 1.1 a plugin reads fields of
 * the message and of its own config through typed accessors over the
 * hub's parsed tree (the very tree the signature was checked on),
 * addressed by JSON Pointers (RFC 6901: "/msg/build/nvr", "/msg/tags/0"),
 * and builds what it publishes with a JSON builder: no plugin needs a
 * JSON parser or escapes JSON by hand.  A plugin may still link any
 * library it likes (jansson, ...); the hub does not mind.
 *
 * Ownership.  A message passed to consume() is borrowed and immutable:
 * valid until consume() returns, unless the plugin takes a reference with
 * msg_ref() (and later drops it with msg_unref()).  Everything an accessor
 * returns through a pointer is owned by the hub and lives as long as the
 * document it came from (the message, or the config until the next
 * reload() or fini()); no accessor allocates on the plugin's behalf.
 * Whatever a plugin passes to the host is copied, except a builder given
 * to publish_built(), which the host takes and frees.  Memory is freed
 * only by the side that allocated it.
 *
 * Threads.  consume() runs on the consumer's own worker thread(s): with
 * "threads": 1 (the default) never concurrently with itself; with more,
 * concurrently on different messages.  init(), reload() and fini() run on
 * the hub's main thread while no consume() runs.  Timer callbacks run on a
 * worker thread of the consumer, like consume().  Every host function may
 * be called from any thread unless its comment says otherwise.
 *
 * Security.  Signatures are checked before a message reaches any consumer;
 * there is no way to opt out (see fedmsg's CVE-2017-1000001).
 */
#ifndef FEDMSG_PLUGIN_H
#define FEDMSG_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FM_PLUGIN_ABI_MAJOR	1	/* changes the entry symbol's name */
#define FM_PLUGIN_ABI_MINOR	1	/* append-only additions */
#define FM_PLUGIN_ENTRY_NAME	"fm_plugin_entry_v1"

#if defined(__GNUC__)
#define FM_EXPORT	__attribute__((visibility("default")))
#define FM_PRINTF(f, a)	__attribute__((format(printf, f, a)))
#else
#define FM_EXPORT
#define FM_PRINTF(f, a)
#endif

/* A message: opaque, owned by the hub, reference counted, immutable. */
struct fm_msg;

/* What consume() returns (fedora-messaging's callback outcomes). */
enum fm_consume_rc {
	FM_CONSUME_OK = 0,	/* done; with a broker, the delivery is accepted */
	FM_CONSUME_RETRY = 1,	/* try again later, with backoff, up to the
				   consumer's attempt limit */
	FM_CONSUME_DROP = 2,	/* give up on this message (broker: rejected) */
	FM_CONSUME_HALT = 3,	/* stop this consumer; the message is retried
				   by the broker, dropped on ZeroMQ */
	/* Any negative value is an error: counted, logged, treated as DROP. */
};

enum fm_log_level {
	FM_LOG_ERR = 0,
	FM_LOG_WARN = 1,
	FM_LOG_INFO = 2,
	FM_LOG_DEBUG = 3,
};

/*
 * The member of config() (ABI 1.1) where the hub puts its own settings
 * of the consumer's entry, e.g. {"max_attempts": 3}; an entry's "config"
 * may not use it.  Present in every hub with ABI 1.1 since fedmsg-c
 * added it; a plugin reads it as optional to run on an older hub.
 */
#define FM_HUB_CONFIG_MEMBER	"fedmsg_hub"

/* A parsed JSON document lent by the hub: a message's envelope or the
 * consumer's config.  Opaque; read it with the json_* accessors. */
struct fm_json;

/* A JSON value being built for publish_built() (ABI 1.1). */
struct fm_builder;

/* What json_type() says is at a pointer. */
enum fm_json_type {
	FM_JSON_ABSENT = 0,	/* nothing there */
	FM_JSON_NULL = 1,
	FM_JSON_BOOL = 2,
	FM_JSON_NUMBER = 3,	/* an integer or a float */
	FM_JSON_STRING = 4,
	FM_JSON_ARRAY = 5,
	FM_JSON_OBJECT = 6,
};

/* What the json_* accessors return: FM_JSON_OK (0) or one of these. */
#define FM_JSON_OK		 0
#define FM_JSON_EABSENT		(-1)	/* no value at the pointer: a missing
					   member, an index out of range */
#define FM_JSON_ETYPE		(-2)	/* a value of another type */
#define FM_JSON_ESYNTAX		(-3)	/* not a JSON Pointer: it must be ""
					   or start with '/'; '~' only as
					   "~0" ('~') or "~1" ('/') */
#define FM_JSON_ERANGE		(-4)	/* a number that does not fit */
#define FM_JSON_ENOSPC		(-5)	/* the caller's buffer is too small */
#define FM_JSON_EINVAL		(-6)	/* a NULL document or output */

/*
 * Services the hub lends to a plugin.  Filled by the hub; read-only for
 * the plugin; valid from init() until fini() returns.  `hctx` identifies
 * the calling consumer (it is the value passed to init()).
 */
struct fm_host {
	uint32_t	 abi_major;	/* FM_PLUGIN_ABI_MAJOR of the hub */
	uint32_t	 abi_minor;	/* FM_PLUGIN_ABI_MINOR of the hub */
	size_t		 size;		/* sizeof(struct fm_host) in the hub */

	/* Log a line prefixed with the consumer's name. */
	void		(*log)(void *hctx, enum fm_log_level level,
			    const char *fmt, ...) FM_PRINTF(3, 4);

	/*
	 * Publish a new message: the hub builds the envelope (topic from its
	 * topic_prefix, environment, modname and topic, as fedmsg does),
	 * signs it with the hub's certificate and sends it on the hub's bus.
	 * msg_json is the payload (JSON text, len bytes; len 0 = strlen).
	 * Returns 0, or -1 when the payload is not JSON or the bus refused it
	 * (the reason is logged).  The arguments are copied.
	 */
	int		(*publish)(void *hctx, const char *modname,
			    const char *topic, const char *msg_json, size_t len);

	/*
	 * The consumer's "config" object from the hub's configuration, as JSON
	 * text ("{}" when absent).  Owned by the host; valid until fini() or
	 * the next reload().
	 */
	const char	*(*config_json)(void *hctx);

	/* Message accessors.  Strings are owned by the message: valid while
	 * the message is (borrowed in consume(), or referenced). */
	struct fm_msg	*(*msg_ref)(struct fm_msg *msg);
	void		 (*msg_unref)(struct fm_msg *msg);
	/* Full topic, or NULL when the envelope has none. */
	const char	*(*msg_topic)(const struct fm_msg *msg);
	/* msg_id, or NULL. */
	const char	*(*msg_id)(const struct fm_msg *msg);
	/* The envelope exactly as received (JSON text, signed bytes). */
	const char	*(*msg_body)(const struct fm_msg *msg, size_t *len);
	/* Seconds since the epoch from "timestamp"; 0 when absent. */
	double		 (*msg_timestamp)(const struct fm_msg *msg);
	/* CN of the certificate that signed it, or NULL if it was unsigned
	 * (only possible with validate_signatures false). */
	const char	*(*msg_signer)(const struct fm_msg *msg);
	/* How many times this message was handed to this consumer (1 first). */
	unsigned	 (*msg_attempt)(const struct fm_msg *msg);

	/*
	 * Call fn(state_arg) every interval_ms on a worker thread of this
	 * consumer (like consume()).  Returns a timer id >= 0, or -1.  Main
	 * thread only (call it from init()).
	 */
	int		(*timer_add)(void *hctx, unsigned interval_ms,
			    void (*fn)(void *arg), void *arg);

	/* ---- ABI 1.1: only when host->abi_minor >= 1 ---------------------- */

	/*
	 * Documents.  msg_json(): the message's envelope, the tree that was
	 * validated ("/msg/..." is the payload, "/topic", "/headers/...",
	 * "/username", ...); lives as long as the message.  config(): the
	 * consumer's "config" object ({} when absent); lives until fini() or
	 * the next reload().  Neither is ever NULL.  config() also holds,
	 * under FM_HUB_CONFIG_MEMBER, what the hub's entry for the consumer
	 * decides and a plugin may need: "/fedmsg_hub/max_attempts" (the
	 * attempts a message gets, the first included; msg_attempt() equal to
	 * it is the last).  config_json() (1.0) is the text as written.
	 */
	const struct fm_json *(*msg_json)(const struct fm_msg *msg);
	const struct fm_json *(*config)(void *hctx);

	/*
	 * Typed reads at a JSON Pointer (ptr, NUL-terminated; "" is the whole
	 * document).  Each returns FM_JSON_OK and fills its outputs, or a
	 * FM_JSON_E* code and leaves them untouched.
	 */
	/* The type at ptr (an enum fm_json_type), or FM_JSON_ESYNTAX. */
	int		(*json_type)(const struct fm_json *doc, const char *ptr);
	/*
	 * A string: *s points at *len bytes of UTF-8 owned by the document,
	 * NOT NUL-terminated (print it with "%.*s"); it may hold NUL bytes.
	 * len may be NULL only if the plugin does not need it (then s is
	 * still not terminated: prefer json_string_copy()).
	 */
	int		(*json_string)(const struct fm_json *doc, const char *ptr,
			    const char **s, size_t *len);
	/*
	 * The same string copied into buf[size] with a terminating NUL.  *len
	 * (may be NULL) gets its length; FM_JSON_ENOSPC when size <= length
	 * (then *len still says how much is needed, and buf holds "").
	 */
	int		(*json_string_copy)(const struct fm_json *doc,
			    const char *ptr, char *buf, size_t size,
			    size_t *len);
	/* An integer within int64 (ERANGE beyond; a float such as 3.0 is
	 * ETYPE; booleans are not integers). */
	int		(*json_int)(const struct fm_json *doc, const char *ptr,
			    int64_t *out);
	/* The exact decimal text of an integer of any size (not
	 * NUL-terminated; owned by the document). */
	int		(*json_int_text)(const struct fm_json *doc,
			    const char *ptr, const char **text, size_t *len);
	/* Any number as a double, rounded as Python's float() does
	 * (ERANGE for an integer beyond the double range). */
	int		(*json_double)(const struct fm_json *doc, const char *ptr,
			    double *out);
	/* true or false: *out = 1 or 0. */
	int		(*json_bool)(const struct fm_json *doc, const char *ptr,
			    int *out);
	/* Number of items of an array or members of an object. */
	int		(*json_length)(const struct fm_json *doc, const char *ptr,
			    size_t *n);
	/*
	 * The name of member index (0 .. length-1) of the object at ptr, in
	 * code point order (the canonical order): *key points at *len bytes,
	 * not NUL-terminated, owned by the document.
	 */
	int		(*json_member)(const struct fm_json *doc, const char *ptr,
			    size_t index, const char **key, size_t *len);
	/*
	 * The value at ptr as JSON text, canonical as fedmsg signs it (sorted
	 * keys, no spaces, ASCII), into buf[size] with a NUL.  *len (may be
	 * NULL) gets the text's length; FM_JSON_ENOSPC when size <= length.
	 * buf may be NULL with size 0 to learn the length.
	 */
	int		(*json_text)(const struct fm_json *doc, const char *ptr,
			    char *buf, size_t size, size_t *len);

	/* The envelope's "username", or NULL when absent or not a string;
	 * owned by the message. */
	const char	*(*msg_username)(const struct fm_msg *msg);
	/* 1 and *ts when the envelope has a numeric "timestamp", else 0
	 * (msg_timestamp() cannot tell absent from 0). */
	int		(*msg_timestamp_get)(const struct fm_msg *msg, double *ts);

	/*
	 * Building a payload to publish.  builder_new() returns an empty
	 * builder (NULL when out of memory) owned by the plugin until it is
	 * given to publish_built() or freed with builder_free().  Values are
	 * appended in order: a key before each member of an object, each
	 * begin matched by its end.  Every call returns 0, or -1 once the
	 * builder is in error (a misuse or out of memory): the first error
	 * sticks, later calls do nothing, and publish_built() logs it.
	 * Strings are UTF-8 of len bytes (they may hold NUL).
	 */
	struct fm_builder *(*builder_new)(void);
	void		(*builder_free)(struct fm_builder *b);
	int		(*build_object_begin)(struct fm_builder *b);
	int		(*build_object_end)(struct fm_builder *b);
	int		(*build_array_begin)(struct fm_builder *b);
	int		(*build_array_end)(struct fm_builder *b);
	int		(*build_key)(struct fm_builder *b, const char *key,
			    size_t len);
	int		(*build_string)(struct fm_builder *b, const char *s,
			    size_t len);
	int		(*build_int)(struct fm_builder *b, int64_t n);
	int		(*build_double)(struct fm_builder *b, double d);
	int		(*build_bool)(struct fm_builder *b, int v);
	int		(*build_null)(struct fm_builder *b);
	/* A copy of the value at ptr in doc (a message's field, say);
	 * an absent value or a bad pointer puts the builder in error. */
	int		(*build_json)(struct fm_builder *b,
			    const struct fm_json *doc, const char *ptr);
	/*
	 * Publish the built value as the payload, like publish().  Takes the
	 * builder in every case (it is freed).  Returns 0, or -1 with the
	 * reason logged (a builder in error, an incomplete value, invalid
	 * UTF-8, the bus refused).
	 */
	int		(*publish_built)(void *hctx, const char *modname,
			    const char *topic, struct fm_builder *b);
};

/*
 * What a plugin declares: static const storage inside the plugin.
 */
struct fm_plugin {
	uint32_t	 abi_major;	/* FM_PLUGIN_ABI_MAJOR at build time */
	uint32_t	 abi_minor;	/* FM_PLUGIN_ABI_MINOR at build time */
	size_t		 size;		/* sizeof(struct fm_plugin) at build time */
	const char	*name;		/* [a-z0-9_]+ */
	const char	*version;
	/*
	 * The consumer runs only when this top-level config key is true (as
	 * fedmsg's config_key); a consumer entry may name another one.  NULL:
	 * the entry in "consumers" alone enables it.
	 */
	const char	*config_key;
	/*
	 * Topics, NULL-terminated: "org.fedoraproject.prod.buildsys.tag" is
	 * exact (a prefix unless zmq_strict, as in fedmsg), a trailing '*'
	 * makes a prefix, another '*' is a glob, "" or "*" is everything.  A
	 * consumer entry's "topics" replaces these.
	 */
	const char *const *topics;

	/*
	 * Set up; returns 0 and the plugin's state in *state, or nonzero to
	 * refuse to start (log why through host->log first).
	 */
	int		(*init)(const struct fm_host *host, void *hctx,
			    void **state);
	/* Handle one message; returns an enum fm_consume_rc (or < 0). */
	int		(*consume)(void *state, struct fm_msg *msg);
	/* Optional: the configuration was reloaded (SIGHUP). */
	int		(*reload)(void *state);
	/* Free everything; no call follows. */
	void		(*fini)(void *state);
};

/* The one symbol a plugin exports. */
typedef const struct fm_plugin *(*fm_plugin_entry_fn)(void);

#define FM_PLUGIN_DEFINE(desc)						\
	FM_EXPORT const struct fm_plugin *fm_plugin_entry_v1(void);	\
	FM_EXPORT const struct fm_plugin *fm_plugin_entry_v1(void)	\
	{ return &(desc); }

#ifdef __cplusplus
}
#endif
#endif /* FEDMSG_PLUGIN_H */
