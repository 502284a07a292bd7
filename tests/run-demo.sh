#!/bin/sh
# run-demo.sh BUILD_DIR -- what `make run` shows, on loopback, with no broker:
#  1. the main job: fedmsg-relay running, fedmsg-tail subscribed to it with
#     signature validation on, and fedmsg-logger publishing signed messages
#     (as a dist-git hook or cron job would) that tail shows arriving;
#     fedmsg-hub runs the archive and example consumer plugins on the same
#     messages: the archive file and fedmsg-check show them consumed;
#  2. under the hood: an envelope signed with fedmsg-sign, the exact text
#     that is signed, fedmsg-verify accepting it and rejecting a tampered copy.
# Exits 0 only if every step gave the expected result.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$build/bin
dev=$build/dev

for t in fedmsg-sign fedmsg-verify fedmsg-relay fedmsg-tail fedmsg-logger \
    fedmsg-hub fedmsg-check; do
	if [ ! -x "$bin/$t" ]; then
		echo "run-demo: $bin/$t is missing; run 'make' first" >&2
		exit 1
	fi
done

heading() {
	printf '\n==> %s\n' "$*"
}

heading "Development certificates in $dev"
sh "$top/certs/mkcerts.sh" "$dev"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fedmsg-demo.XXXXXX")
pids=""
cleanup() {
	rc=$?
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM
ok=1

# ---- 1. the main job -------------------------------------------------------
host=$(uname -n | cut -d. -f1)
base=$((20000 + $$ % 20000))
inbound="tcp://127.0.0.1:$base"
outbound="tcp://127.0.0.1:$((base + 1))"
mkdir -p "$tmp/fedmsg.d"
cat > "$tmp/fedmsg.d/10-demo.json" <<EOF
{
  "topic_prefix": "org.fedoraproject",
  "environment": "dev",
  "relay_inbound": "$inbound",
  "endpoints": {"relay_outbound": ["$outbound"]},
  "sign_messages": true,
  "validate_signatures": true,
  "ssldir": "$dev",
  "certnames": {"shell.$host": "shell-localhost"},
  "ca_cert_location": "$dev/ca.crt",
  "crl_location": "$dev/crl.pem",
  "post_init_sleep": 0.2,
  "plugin_dir": "$build/plugins",
  "moksha.monitoring.socket": "ipc://$tmp/monitor.sock",
  "consumers": {
    "archive": {"config": {"dir": "$tmp/archive"}},
    "example": {"topics": ["org.fedoraproject.dev.git.*"],
                "config": {"count_every": 1, "interval_ms": 60000}}
  }
}
EOF
export FEDMSG_CONFIG="$tmp/fedmsg.d"

heading "Config $FEDMSG_CONFIG/10-demo.json"
cat "$FEDMSG_CONFIG/10-demo.json"

heading "fedmsg-relay: active publishers -> $inbound, subscribers <- $outbound"
"$bin/fedmsg-relay" 2> "$tmp/relay.log" &
pids="$pids $!"
"$bin/fedmsg-tail" --terse --validate --count 3 --timeout 10 \
    > "$tmp/tail.out" 2> "$tmp/tail.log" &
tailpid=$!
pids="$pids $tailpid"
"$bin/fedmsg-tail" --json --validate --count 3 --timeout 10 \
    > "$tmp/tail.json" 2> "$tmp/tail2.log" &
tail2pid=$!
pids="$pids $tail2pid"
"$bin/fedmsg-hub" 2> "$tmp/hub.log" &
hubpid=$!
pids="$pids $hubpid"
sleep 1		# let the tails' and the hub's subscriptions reach the relay

heading "fedmsg-logger: three lines from a \"post-receive hook\", signed as shell.$host"
printf '%s\n' "rpms/bash: alice pushed 1 commit to f40" \
    "rpms/kernel: bob pushed 3 commits to rawhide" \
    "it's fine: quotes ' and \" and \$(rm -rf /) travel safely" |
    "$bin/fedmsg-logger" --modname git --topic receive || {
	echo "UNEXPECTED: fedmsg-logger failed"; ok=0; }

heading "fedmsg-tail --terse --validate (what an admin watches)"
wait "$tailpid" || { echo "UNEXPECTED: fedmsg-tail failed"; ok=0; }
wait "$tail2pid" || true
cat "$tmp/tail.out"
if [ "$(wc -l < "$tmp/tail.out")" -ne 3 ]; then
	echo "UNEXPECTED: wanted 3 messages"; cat "$tmp/tail.log" "$tmp/relay.log"
	ok=0
fi

heading "The same messages as received (fedmsg-tail --json | fedmsg-verify)"
"$bin/fedmsg-verify" --ca "$dev/ca.crt" --crl "$dev/crl.pem" "$tmp/tail.json" ||
    { echo "UNEXPECTED: not all valid"; ok=0; }

heading "fedmsg-hub: the archive consumer's file (exact signed bytes, one per line)"
sleep 0.5
cat "$tmp"/archive/*.jsonl | cut -c1-150 | sed 's/$/.../'
if [ "$(cat "$tmp"/archive/*.jsonl | wc -l)" -ne 3 ]; then
	echo "UNEXPECTED: wanted 3 archived messages"; cat "$tmp/hub.log"
	ok=0
fi

heading "fedmsg-check -c archive -c example (the hub's own status report)"
"$bin/fedmsg-check" -c archive -c example --timeout 10 ||
    { echo "UNEXPECTED: fedmsg-check failed"; cat "$tmp/hub.log"; ok=0; }
grep 'consumer example' "$tmp/hub.log" | tail -3

# ---- 2. under the hood ---------------------------------------------------------
unset FEDMSG_CONFIG

# A msg_id as fedmsg makes it: "<year>-<uuid4>".
if [ -r /proc/sys/kernel/random/uuid ]; then
	uuid=$(cat /proc/sys/kernel/random/uuid)
else
	uuid=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n' |
	    sed 's/^\(.\{8\}\)\(.\{4\}\).\(.\{3\}\).\(.\{3\}\)/\1-\2-4\3-a\4-/')
fi
msg_id="$(date +%Y)-$uuid"
user=$(printf '%s' "${USER:-$(id -un 2>/dev/null || echo demo)}" |
    tr -cd 'A-Za-z0-9._-')
now=$(date +%s)

printf '{"topic":"org.fedoraproject.dev.demo.hello","msg":{"hello":"world","n":1},"msg_id":"%s","i":1,"timestamp":%s,"username":"%s"}\n' \
    "$msg_id" "$now" "${user:-demo}" > "$tmp/envelope.json"

heading "An unsigned envelope (built with printf)"
cat "$tmp/envelope.json"

heading "Signed with $dev/shell-localhost.crt (fedmsg-sign)"
"$bin/fedmsg-sign" --cert "$dev/shell-localhost.crt" \
    --key "$dev/shell-localhost.key" < "$tmp/envelope.json" > "$tmp/signed.json"
cat "$tmp/signed.json"

heading "The exact text that was signed (fedmsg-verify --canonical)"
"$bin/fedmsg-verify" --canonical "$tmp/signed.json"

heading "Verified against the CA and CRL (fedmsg-verify)"
rc=0
"$bin/fedmsg-verify" --ca "$dev/ca.crt" --crl "$dev/crl.pem" \
    "$tmp/signed.json" > "$tmp/verdict" || rc=$?
cat "$tmp/verdict"
if [ "$rc" -eq 0 ] && [ "$(cat "$tmp/verdict")" = "valid $msg_id" ]; then
	echo "(as expected: the signature is good)"
else
	echo "UNEXPECTED: the signed message did not verify (exit $rc)"
	ok=0
fi

heading 'A tampered copy ("n":1 changed to "n":2 after signing)'
sed 's/"n":1/"n":2/' "$tmp/signed.json" > "$tmp/tampered.json"
if cmp -s "$tmp/signed.json" "$tmp/tampered.json"; then
	echo "UNEXPECTED: could not find \"n\":1 in the signed message"
	ok=0
fi
rc=0
"$bin/fedmsg-verify" --ca "$dev/ca.crt" --crl "$dev/crl.pem" \
    "$tmp/tampered.json" > "$tmp/verdict" || rc=$?
cat "$tmp/verdict"
case $(cat "$tmp/verdict") in
"invalid $msg_id: "*)
	if [ "$rc" -eq 1 ]; then
		echo "(as expected: exit status 1, the tampered message is rejected)"
	else
		echo "UNEXPECTED: exit status $rc, wanted 1"
		ok=0
	fi ;;
*)
	echo "UNEXPECTED: the tampered message was not rejected (exit $rc)"
	ok=0 ;;
esac

if [ "$ok" -eq 1 ]; then
	heading "Demo OK"
	exit 0
fi
heading "Demo FAILED"
exit 1
