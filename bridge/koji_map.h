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

#define KOJI_WHYLEN	256

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

#endif
