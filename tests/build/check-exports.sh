#!/bin/sh
# libfedmsg.so exports exactly the functions declared in include/fedmsg/*.h:
# no internal name (log_init, buf_add, jv_*, ...) that would collide with a
# program's or a plugin's own, and no public function missing.
#   check-exports.sh [BUILD]      (default: build)
set -eu
b=${1:-build}
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# The public declarations, as the compiler sees them (-aux-info lists every
# function prototype with the file that declares it); static inline helpers
# (plugin_config.h) live in the including program, not in the library.
for h in include/fedmsg/*.h; do
	echo "#include <fedmsg/$(basename "$h")>"
done > "$tmp/api.c"
$cc -std=c11 -D_GNU_SOURCE -Iinclude -fsyntax-only -aux-info "$tmp/aux" "$tmp/api.c"
# (static inline helpers, such as plugin_config.h's, are not the library's)
grep '^/\* include/fedmsg/' "$tmp/aux" | grep -v '^/\*[^*]*\*/ static ' |
    sed -E 's/^.*[ *]([A-Za-z_][A-Za-z_0-9]*) \(.*$/\1/' | sort -u > "$tmp/declared"
[ -s "$tmp/declared" ] || { echo "check-exports: no declaration found" >&2; exit 1; }

nm -D --defined-only "$b/lib/libfedmsg.so" | awk 'NF == 3 { print $3 }' |
    sort -u > "$tmp/exported"

rc=0
if grep -v '^fm_' "$tmp/exported" > "$tmp/unprefixed"; then
	echo "check-exports: exported names without the fm_ prefix:" >&2
	sed 's/^/  /' "$tmp/unprefixed" >&2
	rc=1
fi
if comm -13 "$tmp/declared" "$tmp/exported" | grep . > "$tmp/extra"; then
	echo "check-exports: $b/lib/libfedmsg.so exports what include/fedmsg/ does not declare:" >&2
	sed 's/^/  /' "$tmp/extra" >&2
	rc=1
fi
if comm -23 "$tmp/declared" "$tmp/exported" | grep . > "$tmp/missing"; then
	echo "check-exports: declared in include/fedmsg/ but not exported:" >&2
	sed 's/^/  /' "$tmp/missing" >&2
	rc=1
fi

# A third-party program linked with -lfedmsg: every public function
# resolves at load time (-z now), and the program's own log_init, buf_add
# and jv_parse (names libfedmsg uses inside) do not replace the library's.
{
	cat "$tmp/api.c"
	cat <<'PROG'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
void log_init(const char *p, int lvl);
int buf_add(void *b, const void *p, size_t n);
int jv_parse(void);
void log_init(const char *p, int lvl) { (void)p; (void)lvl; abort(); }
int buf_add(void *b, const void *p, size_t n) { (void)b; (void)p; (void)n; abort(); }
int jv_parse(void) { abort(); }
typedef void (*fn)(void);
static const fn api[] = {
PROG
	sed 's/^/	(fn)/; s/$/,/' "$tmp/declared"
	cat <<'PROG'
};
int main(void)
{
	static const char body[] = "{\"topic\":\"a.b\",\"msg\":{\"y\":[1,2.5],\"x\":\"\\u00e9\"}}";
	const char *want = "{\"msg\":{\"x\":\"\\u00e9\",\"y\":[1,2.5]},\"topic\":\"a.b\"}";
	char err[FM_ERRLEN], *c;
	struct fm_msg *m;
	size_t i;

	for (i = 0; i < sizeof(api) / sizeof(api[0]); i++)
		if (api[i] == NULL)
			return 2;
	if (fm_msg_parse(body, sizeof(body) - 1, NULL, &m, err) < 0) {
		fprintf(stderr, "fm_msg_parse: %s\n", err);
		return 1;
	}
	c = fm_msg_canonical(m, false, NULL);
	if (c == NULL || strcmp(c, want) != 0) {
		fprintf(stderr, "fm_msg_canonical: %s\n", c ? c : "(null)");
		return 1;
	}
	free(c);
	fm_msg_unref(m);
	return 0;
}
PROG
} > "$tmp/client.c"
lib=$(cd "$b/lib" && pwd)
if ! $cc -std=c11 -D_GNU_SOURCE -Iinclude -Wall -Werror -o "$tmp/client" \
    "$tmp/client.c" -L"$lib" -lfedmsg -Wl,-rpath,"$lib" -Wl,-z,now \
    > "$tmp/cc.out" 2>&1; then
	echo "check-exports: a program using the public API does not link:" >&2
	sed 's/^/  /' "$tmp/cc.out" >&2
	rc=1
elif ! "$tmp/client" > "$tmp/run.out" 2>&1; then
	echo "check-exports: a program using the public API (and its own log_init," >&2
	echo "buf_add, jv_parse) failed against $b/lib/libfedmsg.so:" >&2
	sed 's/^/  /' "$tmp/run.out" >&2
	rc=1
fi
[ $rc -eq 0 ] && echo "check-exports: ok ($(wc -l < "$tmp/exported") functions, all fm_*)"
exit $rc
