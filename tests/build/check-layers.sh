#!/bin/sh
# Proves that the Makefile keeps the layers apart (DESIGN.md): in a copy
# of the tracked tree, a probe file dropped into each folder is compiled
# by make's own rule for that folder.  An #include of a header of a layer
# above (or beside) it must fail with "No such file"; one of a layer
# below must compile, so that the check itself can fail.
#   check-layers.sh [REPO]      (default: the current directory)
set -eu
repo=${1:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

(cd "$repo" && git ls-files -z | tar --null -T - -cf -) | (cd "$tmp" && tar -xf -)
# The package stamps: this check needs no package it does not already have.
mkdir -p "$tmp/build"
touch "$tmp/build/.deps-build" "$tmp/build/.deps-test"

fails=0 n=0

# probe DIR TARGET HEADER want   (want: ok | missing)
probe() {
	dir=$1 target=$2 header=$3 want=$4
	n=$((n + 1))
	src=$tmp/$dir/$(basename "$target" | sed 's/\.s\{0,1\}o$//').c
	mkdir -p "$tmp/$dir"
	printf '#include "%s"\nint layer_probe(void);\nint layer_probe(void) { return 0; }\n' \
	    "$header" > "$src"
	if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	    make -C "$tmp" "$target" > "$tmp/out" 2>&1; then
		got=ok
	elif grep -q "$header: No such file or directory" "$tmp/out"; then
		got=missing
	else
		echo "check-layers: $dir/ including $header failed for another reason:" >&2
		tail -5 "$tmp/out" >&2
		got=error
	fi
	if [ "$got" != "$want" ]; then
		echo "check-layers: $dir/ including \"$header\": want $want, got $got" >&2
		fails=$((fails + 1))
	fi
	rm -f "$src" "$tmp/$target"
}

o=build/rel
# libfedmsg: include/ and itself only
probe libfedmsg $o/libfedmsg/layer_probe.o log.h ok
probe libfedmsg $o/libfedmsg/layer_probe.o fedmsg/bus.h ok
for h in broker.h stomp.h spool.h hub.h transport.h bridge.h terse.h; do
	probe libfedmsg $o/libfedmsg/layer_probe.o $h missing
done
# brokers: + libfedmsg
probe brokers $o/brokers/layer_probe.o log.h ok
probe brokers $o/brokers/layer_probe.o broker.h ok
for h in hub.h transport.h bridge.h terse.h; do
	probe brokers $o/brokers/layer_probe.o $h missing
done
# hub and bridge: + brokers, never each other
probe hub $o/hub/layer_probe.o broker.h ok
probe hub $o/hub/layer_probe.o transport.h ok
probe hub $o/hub/layer_probe.o bridge.h missing
probe hub $o/hub/layer_probe.o terse.h missing
probe bridge $o/bridge/layer_probe.o broker.h ok
probe bridge $o/bridge/layer_probe.o transport.h missing
probe bridge $o/bridge/layer_probe.o consumer.h missing
# tools: + brokers (--broker), never hub or bridge
probe tools $o/tools/layer_probe.o zep.h ok
probe tools $o/tools/layer_probe.o lines.h ok
probe tools $o/tools/layer_probe.o broker.h ok
for h in hub.h transport.h bridge.h; do
	probe tools $o/tools/layer_probe.o $h missing
done
# publishers: + brokers (the spool), never hub, bridge or tools
probe publishers $o/publishers/layer_probe.o spool.h ok
probe publishers $o/publishers/layer_probe.o git_commit.h ok
for h in hub.h bridge.h terse.h; do
	probe publishers $o/publishers/layer_probe.o $h missing
done
probe tools $o/tools/layer_probe.o git_commit.h missing
# a libfedmsg unit test cannot see the broker layer
probe tests/unit build/asan/tests/unit/layer_probe.o json.h ok
probe tests/unit build/asan/tests/unit/layer_probe.o stomp.h missing
# plugins: the public headers only
probe consumers/probe build/plugins/probe.so fedmsg/plugin.h ok
probe consumers/probe build/plugins/probe.so log.h missing
probe consumers/probe build/plugins/probe.so json.h missing

if [ "$fails" -gt 0 ]; then
	echo "check-layers: $fails of $n probes wrong" >&2
	exit 1
fi
echo "check-layers: ok ($n probes)"
