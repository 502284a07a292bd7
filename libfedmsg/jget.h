/* Reading config objects (jansson): the getters the layers share. */
#ifndef FM_JGET_H
#define FM_JGET_H

#include <jansson.h>

/* obj[key] when it is a string (owned by obj), else NULL. */
static inline const char *
jget_str(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

#endif
