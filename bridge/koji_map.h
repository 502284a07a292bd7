/*
 * Koji's protonmsg messages (Brew on the UMB) as Fedora's buildsys.*
 * messages, and back: the translations a bridge applies when its config
 * has "koji" (README.md, "Koji/Brew on the bridge", has the table and
 * what cannot be mapped).
 *
 * protonmsg sends the callback's arguments as a JSON string body and the
 * callback name minus "post" as the application property "type"
 * (BuildStateChange, Tag, ...).  Fedora's koji plugin sent, for the same
 * callbacks, flattened bodies with usernames resolved.  What the Koji
 * message does not carry (the build's task request, a task owner's name)
 * is set to null, never guessed.
 */
#ifndef FM_KOJI_MAP_H
#define FM_KOJI_MAP_H

#include <stddef.h>

#include <jansson.h>

#include "broker.h"

#define KOJI_WHYLEN	256
#define KOJI_MAX_PROPS	16	/* protonmsg sends at most 9 */

enum koji_verdict {
	KOJI_MAPPED,		/* *topic and *body are set */
	KOJI_SKIPPED,		/* nothing to publish; the reason in why */
};

/*
 * Translate one protonmsg message: type is its "type" property (NULL
 * when absent), body its JSON text (len bytes), instance the Fedora
 * "instance" value ("primary").  On KOJI_MAPPED, *topic is the topic
 * after "buildsys." (e.g. "build.state.change") and *body_out the new
 * body as compact JSON, both malloc'd and owned by the caller.  On
 * KOJI_SKIPPED (unknown or unpublished event, missing or mistyped
 * field, a filtered event as Fedora's plugin filters it) why says what.
 */
enum koji_verdict koji_to_fedora(const char *type, const char *body,
    size_t len, const char *instance, char **topic, char **body_out,
    char why[KOJI_WHYLEN]);

/*
 * The reverse, where the Fedora body allows it: a buildsys.* message
 * (event = the topic after "buildsys.", msg its "msg" as JSON text) in
 * protonmsg's shape.  On KOJI_MAPPED: *address the address after Koji's
 * topic_prefix ("build.tag", "build.complete", ...), *body_out Koji's
 * body, *props_json the application properties as a flat JSON object
 * (nulls left out), all malloc'd and owned by the caller.  Fields Koji
 * would have that Fedora dropped are absent (README lists them).
 */
enum koji_verdict koji_from_fedora(const char *event, const char *msg,
    size_t len, char **address, char **body_out, char **props_json,
    char why[KOJI_WHYLEN]);

/* A fedmsg envelope in protonmsg's shape, ready for a broker_out. */
struct koji_umb {
	char			*address;	/* Koji's ("build.tag") */
	char			*body;
	struct broker_prop	 props[KOJI_MAX_PROPS];	/* as text */
	size_t			 nprops;
	char			 vals[KOJI_MAX_PROPS][257];
	char			 keys[KOJI_MAX_PROPS][65];
};

/*
 * koji_from_fedora on the "msg" of the envelope env (len bytes), with
 * the properties as text (integers in decimal, booleans true/false).
 * On KOJI_MAPPED, free u's strings with koji_umb_free().
 */
enum koji_verdict koji_umb_from_envelope(const char *event, const char *env,
    size_t len, struct koji_umb *u, char why[KOJI_WHYLEN]);
void koji_umb_free(struct koji_umb *u);

/* A bridge's "koji" config object (README). */
struct koji_settings {
	char	*topic;		/* Fedora topic prefix; NULL: no "koji" */
	char	*instance;	/* the body's "instance" */
};

/*
 * Read k (NULL: no translation, *ks zeroed): {"topic": string,
 * "instance": string}, both optional.  -1 with err (errlen bytes) when
 * it is not that shape or memory runs out; unknown keys are ignored and
 * returned in *unknown (the first, borrowed) for the caller to log.
 */
int koji_settings_parse(json_t *k, struct koji_settings *ks,
    const char **unknown, char *err, size_t errlen);
void koji_settings_free(struct koji_settings *ks);

#endif
