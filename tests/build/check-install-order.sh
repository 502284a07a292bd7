#!/bin/sh
# Proves, without a fresh machine, that `make test` installs the test
# packages before it compiles anything that needs them: in a copy of the
# tracked tree with no build/ directory, `make -n test` must print the
# `install-deps ... test` step before the first compile or link of a test
# (cmocka, libFuzzer) and before the first pytest run.
#   check-install-order.sh [REPO]      (default: the current directory)
set -eu
repo=${1:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# The working tree's tracked files (committed or not), nothing built.
(cd "$repo" && git ls-files -z | tar --null -T - -cf -) | (cd "$tmp" && tar -xf -)

# -n: print, run nothing; MAKEFLAGS cleared so an outer make -j or -k
# does not change what is printed.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$tmp" -n test > "$tmp/plan" 2>&1 || {
	echo "check-install-order: make -n test failed:" >&2
	tail -20 "$tmp/plan" >&2
	exit 1
}

first() { grep -n -E "$1" "$tmp/plan" | head -1 | cut -d: -f1; }
install=$(first 'install-deps .*test')
test_cc=$(first '(^|[ /])(cc|gcc|clang)( .*)? -c .*tests/|-lcmocka|fsanitize=fuzzer|-m pytest')

if [ -z "$install" ]; then
	echo "check-install-order: make -n test never runs 'install-deps ... test'" >&2
	exit 1
fi
if [ -z "$test_cc" ]; then
	echo "check-install-order: make -n test compiles no test: is the plan empty?" >&2
	exit 1
fi
if [ "$install" -gt "$test_cc" ]; then
	echo "check-install-order: line $test_cc of 'make -n test' builds or runs a test" >&2
	echo "before line $install installs the test packages:" >&2
	sed -n "${test_cc}p;${install}p" "$tmp/plan" >&2
	exit 1
fi
echo "check-install-order: ok (test packages at line $install, first test step at line $test_cc of $(wc -l < "$tmp/plan"))"
