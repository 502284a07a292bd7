#!/bin/sh
# run.sh BUILD_DIR -- what `make bench` shows: fedmsg-c's signing and
# validation throughput as ratios to OpenSSL's own RSA-2048 figures,
# measured in the same run.  Prints a table and writes it to
# BUILD_DIR/bench/crypto.txt.  Then tests/bench/run_bus.sh: relay and hub
# throughput and latency against a raw ZeroMQ hop (BUILD_DIR/bench/
# relay.txt and hub.txt; its knobs are described there).  Then
# tests/bench/run_brokers.sh: fedmsg-bridge through RabbitMQ (AMQP 1.0
# and 0-9-1) and ActiveMQ (STOMP), brokers started and stopped there,
# against direct C clients with the same guarantees and beside
# fedora-messaging and fedmsg-migration-tools (BUILD_DIR/bench/
# brokers.txt; knobs described there).  It only
# reports; nothing here fails on a slow figure.
#
#   BENCH_SECONDS    time per verify/sign workload (default 3)
#   BENCH_BREAKDOWN  time per breakdown row (parse, canonical, SHA-1) and
#                    per seen-before, bare RSA sign and fresh-context
#                    verify row (default 2)
#   BENCH_ROUNDS     rounds of the workloads bench_crypto times in turn:
#                    the breakdown rows, the bare RSA verify, the verify
#                    path and the seen-before path; the bare RSA sign and
#                    the sign path (default 10; the "same process" ratios
#                    are the medians of the rounds' ratios)
#   OPENSSL_SECONDS  time per `openssl speed` operation (default 2)
#   BENCH_PARTS      which parts to run, any of "crypto bus robosig brokers
#                    resultsdb githook" (default: all; robosig:
#                    tests/bench/bench_robosig.py, the robosignatory
#                    consumer's cost to the hub, BUILD_DIR/bench/robosig.txt;
#                    resultsdb: the resultsdb plugin into a real ResultsDB
#                    against a plain HTTP client, tests/bench/bench_resultsdb.py;
#                    githook: tests/bench/bench_git_hook.py, a push with
#                    fedmsg-git-hook against one without a hook,
#                    BUILD_DIR/bench/githook.txt)
#   BENCH_CALLGRIND  0: skip the instruction counts of a verify and a bare
#                    RSA verify under valgrind's callgrind (about 10 s; the
#                    verify-path ratio that other work on the machine does
#                    not move)
#   BENCH_BROKERS    0: skip the broker part (about 2 minutes with the
#                    brokers' start and stop)
#
# Needs BUILD_DIR/bench/bench_crypto (tests/bench/bench_crypto.c), openssl
# and awk.  Signs with BUILD_DIR/dev/shell-localhost.{crt,key} (made by
# certs/mkcerts.sh if missing); without mkcerts.sh it makes a self-signed
# certificate in a temporary directory instead.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
build=$1
top=$(cd "$(dirname "$0")/../.." && pwd)
bench=$build/bench/bench_crypto
out=$build/bench
secs=${BENCH_SECONDS:-3}
bsecs=${BENCH_BREAKDOWN:-2}
rounds=${BENCH_ROUNDS:-10}
osecs=${OPENSSL_SECONDS:-2}
parts=${BENCH_PARTS:-crypto bus robosig brokers resultsdb githook}
if [ "${BENCH_BROKERS:-1}" = 0 ]; then
	parts=$(echo " $parts " | sed 's/ brokers / /g')
fi

if [ ! -x "$bench" ]; then
	echo "bench: $bench is missing; run 'make bench'" >&2
	exit 1
fi
command -v openssl >/dev/null 2>&1 || {
	echo "bench: openssl not found (apt-get install openssl)" >&2
	exit 1
}
mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fedmsg-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT PIPE TERM

# ---- a signer ------------------------------------------------------------
dev=$build/dev
if [ -f "$top/certs/mkcerts.sh" ] &&
    sh "$top/certs/mkcerts.sh" "$dev" >"$tmp/mkcerts.log" 2>&1 &&
    [ -r "$dev/shell-localhost.key" ]; then
	pki="development PKI in $dev (certs/mkcerts.sh)"
else
	[ -f "$top/certs/mkcerts.sh" ] && cat "$tmp/mkcerts.log" >&2
	echo "bench: no development PKI; using a self-signed certificate" >&2
	dev=$tmp/pki
	mkdir -p "$dev"
	openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 \
	    -subj /CN=shell-localhost -keyout "$dev/shell-localhost.key" \
	    -out "$dev/shell-localhost.crt" >"$tmp/req.log" 2>&1 || {
		cat "$tmp/req.log" >&2
		exit 1
	}
	cp "$dev/shell-localhost.crt" "$dev/ca.crt"
	pki="self-signed certificate (certs/mkcerts.sh unavailable)"
fi

# the parts after crypto, in the order they run, as BENCH_PARTS asks:
# name, interpreter, script in tests/bench/, what it takes after BUILD_DIR
# (dev: the signer's directory; -: nothing), the file in BUILD_DIR/bench
# that keeps its standard output (-: the part writes its own files)
after_crypto='bus       sh               run_bus.sh         dev -
robosig   /usr/bin/python3 bench_robosig.py   -   robosig.txt
brokers   sh               run_brokers.sh     dev -
resultsdb /usr/bin/python3 bench_resultsdb.py -   -
githook   /usr/bin/python3 bench_git_hook.py  -   githook.txt'

# took PART: how long each part took, on stderr (README's performance
# section has a run)
took() { echo "bench: part $1 took $(( $(date +%s) - t_part )) s" >&2; }
# rest SEP: the parts after crypto; SEP non-empty: a blank line before the
# first one (after the crypto table).  The table comes on fd 3, so the
# parts keep the script's standard input.
rest() {
	sep=$1
	while read -r name interp script extra keep <&3; do
		case " $parts " in
		*" $name "*) ;;
		*) continue ;;
		esac
		[ -n "$sep" ] && echo
		t_part=$(date +%s)
		set -- "$top/tests/bench/$script" "$build"
		[ "$extra" = dev ] && set -- "$@" "$dev"
		if [ "$keep" = - ]; then
			"$interp" "$@" 3<&-
		else
			"$interp" "$@" >"$out/$keep" 3<&-
			cat "$out/$keep"
		fi
		took "$name"
		sep=1
	done 3<<EOF
$after_crypto
EOF
}

case " $parts " in
*" crypto "*) ;;
*)	rest ""
	exit 0 ;;
esac

# ---- OpenSSL's own figures -------------------------------------------------
# Prints "SIGN_PER_S VERIFY_PER_S" from the rsa table: the data row has
# three more fields ("rsa 2048 bits") before the columns the header names.
# $1: -multi N; $2: a tag for the log file.
speed() {
	log=$out/openssl-speed-$2.txt
	openssl speed -seconds "$osecs" -multi "$1" rsa2048 >"$log" 2>&1 || {
		cat "$log" >&2
		echo "bench: openssl speed failed" >&2
		exit 1
	}
	awk '
	/sign\/s/ && /verify\/s/ {
		for (i = 1; i <= NF; i++) {
			if ($i == "sign/s") s = i + 3
			if ($i == "verify/s") v = i + 3
		}
		next
	}
	s && $1 == "rsa" && $2 == 2048 { print $s, $v; found = 1 }
	END { if (!found) exit 1 }' "$log" || {
		echo "bench: no rsa 2048 row in openssl speed's output" \
		    "($log)" >&2
		exit 1
	}
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
t_part=$(date +%s)
# The 1-process baseline runs before and after bench_crypto; the report
# takes the better of the two, as other work on the machine only slows.
echo "bench: openssl speed -multi 1 rsa2048 (${osecs} s sign," \
    "${osecs} s verify)" >&2
o1a=$(speed 1 multi1-before)
echo "bench: bench_crypto ($secs s per workload, $bsecs s per" \
    "breakdown row, $rounds rounds in turn)" >&2
"$bench" -s "$secs" -b "$bsecs" -r "$rounds" "$dev" \
    >"$out/bench_crypto.out" || {
	cat "$out/bench_crypto.out" >&2
	echo "bench: bench_crypto failed" >&2
	exit 1
}
# Instructions per operation under callgrind: the same on a busy machine
# (wall and CPU time are not, on this shared VM).  Two runs of each
# workload, 0.5 s and 1.5 s: the difference leaves start-up out.
# Prints "cg WORKLOAD INSTRUCTIONS_PER_OP" lines; nothing without valgrind.
: >"$out/callgrind.out"
if [ "${BENCH_CALLGRIND:-1}" != 0 ] && command -v valgrind >/dev/null 2>&1; then
	echo "bench: instructions per verify under callgrind (4 short runs)" >&2
	for w in verify rsa_verify; do
		for d in 0.5 1.5; do
			valgrind -q --tool=callgrind \
			    --callgrind-out-file="$tmp/cg-$w-$d" \
			    "$bench" -s "$d" -w "$w" "$dev" >"$tmp/cg-$w-$d.out" \
			    2>"$tmp/cg-$w-$d.err" || {
				cat "$tmp/cg-$w-$d.err" >&2
				echo "bench: callgrind run failed" >&2
				exit 1
			}
		done
		awk -v w="$w" '
		FNR == 1 { f = int((++k + 1) / 2) }	# run 1 or 2
		/^result / { ops[f] = $6 }
		/^summary: / { ins[f] = $2 }
		END {
			if (ops[2] > ops[1] && ins[2] > ins[1])
				printf "cg %s %.0f\n", w,
				    (ins[2] - ins[1]) / (ops[2] - ops[1])
		}' "$tmp/cg-$w-0.5.out" "$tmp/cg-$w-0.5" "$tmp/cg-$w-1.5.out" \
		    "$tmp/cg-$w-1.5" >>"$out/callgrind.out"
	done
fi
echo "bench: openssl speed -multi 2 rsa2048, for the 2-thread scaling" >&2
o2=$(speed 2 multi2)
echo "bench: openssl speed -multi 1 rsa2048 again" >&2
o1b=$(speed 1 multi1-after)
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo \
    2>/dev/null || true)
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?")
osslver=$(openssl version | cut -d' ' -f1-2)
when=$(date -u '+%Y-%m-%d %H:%M UTC')

# ---- the report ------------------------------------------------------------
awk -v o1a="$o1a" -v o1b="$o1b" -v o2="$o2" -v pki="$pki" \
    -v cpu="${cpu:-unknown CPU}" -v ncpu="$ncpu" -v ossl="$osslver" \
    -v lb="$load_before" -v la="$load_after" -v when="$when" '
function row(label, key, thr,   r, busy) {
	r = rate[key, thr]
	busy = 100 * cpus[key, thr] / (wall[key, thr] * thr)
	printf "  %-44s %2d %11.0f %8.2f %5.0f%%\n", label, thr, r,
	    (r > 0 ? 1e6 / r : 0), busy
}
function us(key, thr) { return rate[key, thr] > 0 ? 1e6 / rate[key, thr] : 0 }
# operations per second of process CPU time, one thread
function per_cpu(key) { return cpus[key, 1] > 0 ? ops[key, 1] / cpus[key, 1] : 0 }
function ratio(a, b) { return b > 0 ? a / b : 0 }
# the median of v[1..n] (sorted in place)
function median(v, n,   i, j, x) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && v[j - 1] > v[j]; j--) {
			x = v[j]; v[j] = v[j - 1]; v[j - 1] = x
		}
	return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
# us per operation of workload w in round r
function rus(r, w) { return rops[r, w] > 0 ? 1e6 * rwall[r, w] / rops[r, w] : 0 }
# the median over the rounds of expression k (see rounds_of)
function rmed(k,   r, v) {
	for (r = 1; r <= nr; r++)
		v[r] = rounds_of(k, r - 1)
	return median(v, nr)
}
function rounds_of(k, r) {
	if (k == "ratio") return ratio(rus(r, "rsa_verify"), rus(r, "verify"))
	if (k == "seen") return ratio(rus(r, "rsa_verify"), rus(r, "verify_seen"))
	if (k == "sign") return ratio(rus(r, "rsa_sign"), rus(r, "sign"))
	if (k == "parse") return rus(r, "parse")
	if (k == "canon") return rus(r, "parse_canon") - rus(r, "parse")
	if (k == "sha1") return rus(r, "parse_canon_sha1") - rus(r, "parse_canon")
	if (k == "rsa") return rus(r, "rsa_verify")
	if (k == "rest")
		return rus(r, "verify") - rus(r, "parse_canon_sha1") \
		    - rus(r, "rsa_verify")
	if (k == "verify") return rus(r, "verify")
}
$1 == "envelope" { ubytes = $2; sbytes = $3 }
$1 == "round" {
	rops[$2, $3] = $4; rwall[$2, $3] = $5
	if ($2 + 1 > nr) nr = $2 + 1
}
$1 == "cg" { cg[$2] = $3 }
$1 == "result" {
	wall[$2, $3] = $4; cpus[$2, $3] = $5; ops[$2, $3] = $6
	rate[$2, $3] = $7
}
END {
	split(o1a, a1, " "); split(o1b, b1, " "); split(o2, a2, " ")
	sign1 = a1[1] > b1[1] ? a1[1] : b1[1]
	ver1 = a1[2] > b1[2] ? a1[2] : b1[2]
	sign2 = a2[1]; ver2 = a2[2]
	v1 = rate["verify", 1]; v2 = rate["verify", 2]; sg = rate["sign", 1]

	printf "fedmsg-c crypto benchmark, %s\n", when
	printf "  %s, %s CPUs, %s; load average %s before, %s after\n",
	    cpu, ncpu, ossl, lb, la
	printf "  envelope: org.fedoraproject.prod.git.receive, %d bytes " \
	    "unsigned, %d signed\n", ubytes, sbytes
	printf "  (the signed body carries the base64 certificate and " \
	    "signature); signer: %s\n\n", pki

	printf "  %-44s %2s %11s %8s %6s\n", "workload", "th", "msgs/s",
	    "us/msg", "CPU"
	row("parse (signed envelope)", "parse", 1)
	row("parse + canonical (text that is signed)", "parse_canon", 1)
	row("parse + canonical + SHA-1", "parse_canon_sha1", 1)
	row("bare RSA-2048 verify, reused ctx", "rsa_verify", 1)
	row("EVP_DigestVerifyInit+Verify, fresh ctx", "evp_verify", 1)
	row("VERIFY PATH: fm_msg_parse + validator_check", "verify", 1)
	row("VERIFY PATH, 2 threads, 1 validator (sum)", "verify", 2)
	row("VERIFY PATH, message seen before (cache)", "verify_seen", 1)
	row("bare RSA-2048 sign, reused ctx", "rsa_sign", 1)
	row("SIGN PATH: fm_signer_sign", "sign", 1)
	printf "  (VERIFY PATH: the verify-once cache off, every message as " \
	    "if new; seen before:\n  the same message again with it on.)\n"
	printf "  (CPU: process CPU time / (wall time x threads); below " \
	    "~95%% other work took\n  the CPUs.  Other work can also slow " \
	    "a CPU it shares a core with, unseen here;\n  the bare RSA rows, " \
	    "timed next to the paths, give the most stable ratios.)\n\n"

	printf "  openssl speed rsa2048 -multi 1: %9.1f sign/s %9.1f " \
	    "verify/s  (better of %.1f/%.1f, %.1f/%.1f)\n", sign1, ver1,
	    a1[1], b1[1], a1[2], b1[2]
	printf "  openssl speed rsa2048 -multi 2: %9.1f sign/s %9.1f " \
	    "verify/s\n\n", sign2, ver2

	printf "  ratios\n"
	printf "  %-58s %6.3f\n", "verify path (1 thread) / openssl " \
	    "verify/s (-multi 1)", ratio(v1, ver1)
	printf "  %-58s %6.3f\n", "verify path (2 threads) / openssl " \
	    "verify/s (-multi 2)", ratio(v2, ver2)
	printf "  %-58s %6.3f\n", "sign path / openssl sign/s (-multi 1)",
	    ratio(sg, sign1)
	for (r = 0; r < nr; r++) {
		x = rounds_of("ratio", r)
		if (r == 0 || x < rlo) rlo = x
		if (r == 0 || x > rhi) rhi = x
	}
	printf "  %-58s %6.3f\n", "verify path / bare RSA verify (same " \
	    "process)", rmed("ratio")
	printf "    (the median of %d rounds in turn, which ranged from " \
	    "%.3f to %.3f)\n", nr, rlo, rhi
	printf "  %-58s %6.3f\n", "  the same per CPU second (steadier on a " \
	    "busy machine)", ratio(per_cpu("verify"), per_cpu("rsa_verify"))
	if (cg["verify"] > 0 && cg["rsa_verify"] > 0)
		printf "  %-58s %6.3f\n", "  the same in instructions (callgrind: " \
		    "load-independent)", cg["rsa_verify"] / cg["verify"]
	printf "  %-58s %6.3f\n", "seen-before verify / bare RSA verify (same " \
	    "process)", rmed("seen")
	printf "  %-58s %6.3f\n", "sign path / bare RSA sign (same process)",
	    rmed("sign")
	printf "  %-58s %6.3f\n", "verify scaling, 2 threads / 1 thread " \
	    "(timed in a row)", ratio(v2, rate["verify_solo", 1])
	printf "  %-58s %6.3f\n", "openssl scaling, -multi 2 / -multi 1 " \
	    "(this machine)", ratio(ver2, ver1)
	printf "  (same process: the median of %d rounds in which the path " \
	    "and its bare RSA\n  operation were timed in turn)\n\n", nr

	printf "  where one verify goes (us, medians of the %d rounds; each " \
	    "row but RSA a\n  difference of two workloads timed in turn, so " \
	    "approximate)\n", nr
	printf "    %-50s %7.2f\n", "parse", rmed("parse")
	printf "    %-50s %7.2f\n", "canonical JSON", rmed("canon")
	printf "    %-50s %7.2f\n", "SHA-1 of the canonical text", rmed("sha1")
	printf "    %-50s %7.2f\n", "RSA-2048 public-key operation", rmed("rsa")
	printf "    %-50s %7.2f\n", "the rest (base64 decode, cert cache, " \
	    "routing)", rmed("rest")
	printf "    %-50s %7.2f\n", "total (verify path, 1 thread)",
	    rmed("verify")
	printf "  (EVP_DigestVerifyInit+Verify with a fresh context, which " \
	    "the verify path\n  does not use: %.2f us more than the bare " \
	    "RSA verify and the SHA-1)\n", us("evp_verify", 1) \
	    - rmed("rsa") - rmed("sha1")
	if (cg["verify"] > 0 && cg["rsa_verify"] > 0)
		printf "  (callgrind: %.0f instructions a verify, %.0f a bare RSA " \
		    "verify)\n", cg["verify"], cg["rsa_verify"]
}' "$out/bench_crypto.out" "$out/callgrind.out" >"$out/crypto.txt"
cat "$out/crypto.txt"
echo "bench: written to $out/crypto.txt" >&2
took crypto

BENCH_CRYPTO_OUT=$out/bench_crypto.out	# for run_bus.sh's CPU ratio
export BENCH_CRYPTO_OUT
rest 1
