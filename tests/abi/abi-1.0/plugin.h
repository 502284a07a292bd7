/*
 * fedmsg-c consumer plugin ABI, version 1.
 *
 * FROZEN COPY of include/fedmsg/plugin.h as released at ABI 1.0, kept
 * so tests/abi/legacy_v1_0.c is built exactly as a 1.0 plugin was: the
 * hub must keep loading such binaries unchanged.  Never edit.
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
 * Data.  Messages cross as opaque handles and JSON text, so a plugin
 * depends on nothing of ours (no jansson, no OpenSSL).  A message passed
 * to consume() is borrowed and immutable: valid until consume() returns,
 * unless the plugin takes a reference with msg_ref() (and later drops it
 * with msg_unref()).  Whatever a plugin passes to the host is copied; memory
 * is freed only by the side that allocated it.
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
#define FM_PLUGIN_ABI_MINOR	0	/* append-only additions */
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
