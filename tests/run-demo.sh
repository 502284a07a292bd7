#!/bin/sh
# run-demo.sh BUILD_DIR -- what `make run` shows: sign a fedmsg envelope
# with a development certificate, print the text that is signed, verify the
# signature, then show that a tampered copy is rejected.  Needs no broker and
# no network.  Exits 0 only if the signed message verifies as valid and the
# tampered one as invalid.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
build=$1
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$build/bin
dev=$build/dev

for t in fedmsg-sign fedmsg-verify; do
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
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT PIPE TERM

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

ok=1
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
