#!/bin/sh
# run_bus.sh BUILD_DIR PKI_DIR -- the message-bus half of `make bench`
# (tests/bench/run.sh calls it after the crypto half): fedmsg-relay and
# fedmsg-hub throughput and latency as ratios to baselines measured in the
# same run, on 127.0.0.1.  Prints two tables and writes them to
# BUILD_DIR/bench/relay.txt and BUILD_DIR/bench/hub.txt (raw result lines:
# BUILD_DIR/bench/bus.out).  It only reports; nothing here fails on a slow
# figure, only when a run cannot be made at all.
#
#  1. relay throughput: bench_zmq sends signed git.receive envelopes (about
#     1 KB payload, 3 KB signed) as fast as the path takes them, and counts
#     what comes out: through a raw ZeroMQ hop (`bench_zmq forward`, one
#     thread, XSUB -> PUB, no parsing: the baseline), fedmsg-relay,
#     fedmsg-relay --validate, and fedmsg-relay --validate --threads 2,
#     with the verify-once cache off (bench_zmq cycles through 1024
#     messages: each would be verified once, then served from the cache).
#     BENCH_BUS_REPS runs of each, interleaved; the best run counts.
#     Beside them, the real fedmsg 1.1.7's relay with validation
#     (tests/bench/peer_relay.py: its per-message work through the peer's
#     own API, as moksha is not in Debian 12), where ../shared/peers/fedmsg
#     (or $FM_PEERS/fedmsg) and pyzmq are present: our throughput and CPU
#     per message as multiples of its.  Where moksha.hub can be imported
#     (see 4), also the real fedmsg-relay command, once, beside the
#     forward-only relay (fedmsg's relay never validates).
#  2. latency at a fixed rate through the raw hop, the relay and the
#     validating relay (first repetition only).
#  3. fedmsg-relay --validate --threads N on N CPUs of its own, the load
#     generator pinned to another (taskset): msgs/s against --threads 1
#     on one CPU (issue 18 asks >= 0.8 N), and each thread's CPU per
#     message.  N goes to one less than the CPUs this process may use, at
#     most BENCH_SCALE_MAX; with 2 CPUs that is N = 1 only, and --threads 2
#     is then run on the relay's one CPU to show how its work splits.
#  4. fedmsg-hub with the noop consumer (noop_consumer.so), validation off
#     and on, and validation off with the consumer reading five payload
#     fields through the ABI 1.1 accessors, as ratios to the relay's
#     forward-only throughput; then the cost of one plugin consume() call,
#     dlopen()ed vs direct, and of reading five fields (bench_plugin).
#     Beside them, once, the real fedmsg 1.1.7 hub (its fedmsg-hub
#     command on moksha.hub, tests/bench/peer_hub.py) with validation on,
#     where moksha.hub can be imported: Fedora packages it
#     (python3-moksha-hub), Debian 12 does not; FM_MOKSHA_HUB=DIR puts a
#     directory holding moksha/hub (from mokshaproject/moksha) on its
#     PYTHONPATH.
#
#   BENCH_BUS_SECONDS   time per throughput run (default 1.5)
#   BENCH_BUS_REPS      runs per throughput path (default 3)
#   BENCH_LAT_RATE      latency: messages per second (default 2000)
#   BENCH_LAT_SECONDS   latency: seconds (default 2)
#   BENCH_WINDOW        messages in flight at most (default 2000; below the
#                       high-water marks of 10000, so nothing is dropped)
#   BENCH_SCALE_MAX     3: --threads N up to this many (default 4)
#   BENCH_SCALE_CPUS    3: the CPUs to use, the load generator's first
#                       (default: all this process may use, as in
#                       /proc/self/status Cpus_allowed_list)
#
# Servers are started here, one at a time, each on fresh free ports, and
# stopped by PID (SIGTERM, then SIGKILL after 10 s) before the next one;
# nothing is left running, also on failure or interruption.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR PKI_DIR" >&2
	exit 2
fi
build=$1
dev=$(cd "$2" && pwd)
out=$build/bench
bz=$out/bench_zmq
bp=$out/bench_plugin
relay=$build/bin/fedmsg-relay
hub=$build/bin/fedmsg-hub
secs=${BENCH_BUS_SECONDS:-1.5}
reps=${BENCH_BUS_REPS:-3}
lrate=${BENCH_LAT_RATE:-2000}
lsecs=${BENCH_LAT_SECONDS:-2}
window=${BENCH_WINDOW:-2000}

for f in "$bz" "$bp" "$out/noop_consumer.so" "$relay" "$hub"; do
	if [ ! -x "$f" ] && [ ! -r "$f" ]; then
		echo "bench: $f is missing; run 'make bench'" >&2
		exit 1
	fi
done
noop=$(cd "$out" && pwd)/noop_consumer.so
crl=""
crlfile=""
[ -r "$dev/crl.pem" ] && crl="\"crl_location\": \"$dev/crl.pem\"," &&
    crlfile=$dev/crl.pem
top=$(cd "$(dirname "$0")/../.." && pwd)
peers=${FM_PEERS:-$top/../shared/peers}
peer=""		# "peer": the real fedmsg's relay is measured too
if [ -d "$peers/fedmsg/fedmsg" ] && [ -n "$crlfile" ] &&
    /usr/bin/python3 -c 'import zmq, cryptography' 2>/dev/null; then
	peer=peer
	peers=$(cd "$peers" && pwd)
else
	echo "bench: the real fedmsg (../shared/peers/fedmsg or" \
	    "\$FM_PEERS/fedmsg), pyzmq or a CRL is missing: no comparison" \
	    "with it" >&2
fi

real=""	# non-empty: fedmsg's own fedmsg-relay and fedmsg-hub run too
moksha=${FM_MOKSHA_HUB:-}
if [ -n "$peer" ] && PYTHONPATH="$peers/fedmsg${moksha:+:$moksha}" \
    /usr/bin/python3 -c 'import moksha.hub, fedmsg.consumers' \
    >/dev/null 2>&1; then
	real=yes
else
	echo "bench: moksha.hub cannot be imported (Debian 12 does not" \
	    "package it; Fedora: python3-moksha-hub; or FM_MOKSHA_HUB=DIR" \
	    "holding moksha/hub): no comparison with the real fedmsg-hub" >&2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fedmsg-busbench.XXXXXX")
spid=""		# the server now running
stop_server() {
	[ -n "$spid" ] || return 0
	kill "$spid" 2>/dev/null || true
	n=0
	# Our child: a zombie ("Z") until waited for.
	while [ $n -lt 100 ] && [ -r "/proc/$spid/stat" ] &&
	    [ "$(sed 's/.*) //' "/proc/$spid/stat" | cut -c1)" != Z ]; do
		sleep 0.1
		n=$((n + 1))
	done
	if [ $n -ge 100 ]; then
		echo "bench: server $spid ignored SIGTERM for 10 s; SIGKILL" >&2
		kill -9 "$spid" 2>/dev/null || true
	fi
	wait "$spid" 2>/dev/null || true
	spid=""
}
cleanup() {
	rc=$?
	stop_server
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM

# start LOG CMD...: run a server in the background.
start() {
	log=$1
	shift
	"$@" >"$log" 2>&1 &
	spid=$!
}

# fail WHAT LOG...: a run could not be made.
fail() {
	echo "bench: $1 failed" >&2
	shift
	for f in "$tmp/client.log" "$@"; do
		[ -s "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }
	done
	exit 1
}

: >"$tmp/bus.out"
: >"$tmp/client.log"
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

# relay_config: fresh free ports in $in and $outb, and $tmp/relay.json
# for a relay between them (the verify-once cache off: every message is
# verified, as if new).
relay_config() {
	set -- $("$bz" ports 2)
	in=tcp://127.0.0.1:$1
	outb=tcp://127.0.0.1:$2
	cat >"$tmp/relay.json" <<EOF
{
  "relay_inbound": "$in",
  "endpoints": {"relay_outbound": ["$outb"]},
  "ca_cert_location": "$dev/ca.crt", $crl
  "validate_verified_cache": 0,
  "high_water_mark": 10000
}
EOF
}

# ---- 1 and 2: the relay and the raw hop --------------------------------
echo "bench: relay throughput, ${secs} s x $reps runs per path; latency" \
    "at $lrate msg/s for ${lsecs} s" >&2
r=1
while [ "$r" -le "$reps" ]; do
	# the real fedmsg-relay once: about 7,000 msgs/s, a run of its own
	once=""
	[ "$r" -eq 1 ] && [ -n "$real" ] && once=peerrelay
	for path in raw fwd val val2 $peer $once; do
		relay_config
		log=$tmp/$path-$r.log
		case $path in
		raw)	start "$log" "$bz" forward "$in" "$outb" ;;
		fwd)	start "$log" "$relay" --config "$tmp/relay.json" ;;
		val)	start "$log" "$relay" --config "$tmp/relay.json" \
			    --validate ;;
		val2)	start "$log" "$relay" --config "$tmp/relay.json" \
			    --validate --threads 2 ;;
		peer)	mkdir -p "$tmp/peer-home"
			start "$log" env PYTHONPATH="$peers/fedmsg" \
			    HOME="$tmp/peer-home" /usr/bin/python3 \
			    "$top/tests/bench/peer_relay.py" "$in" "$outb" \
			    "$dev/ca.crt" "${crlfile:-}" ;;
		peerrelay)
			mkdir -p "$tmp/peer-home"
			start "$log" env TMPDIR="$tmp" \
			    PYTHONPATH="$peers/fedmsg${moksha:+:$moksha}" \
			    HOME="$tmp/peer-home" /usr/bin/python3 \
			    "$top/tests/bench/peer_fedmsg_relay.py" "$in" \
			    "$outb" ;;
		esac
		lat=""
		if [ "$r" -eq 1 ] && [ "$path" != val2 ] &&
		    [ "$path" != peer ] && [ "$path" != peerrelay ]; then
			lat="-l $lrate -L $lsecs"
		fi
		# shellcheck disable=SC2086
		"$bz" relay -d "$secs" -w "$window" $lat -p "$spid" "$path" \
		    "$in" "$outb" "$dev" >>"$tmp/bus.out" \
		    2>>"$tmp/client.log" || fail "bench_zmq relay ($path)" "$log"
		stop_server
	done
	r=$((r + 1))
done

# ---- 3: --threads N on CPUs of their own -----------------------------------
# The CPUs this process may use, one per word ("0-2,5" -> "0 1 2 5").
cpu_list() {
	awk -F'[:,]' '/^Cpus_allowed_list/ {
		for (i = 2; i <= NF; i++) {
			n = split($i, r, "-")
			for (c = r[1] + 0; c <= r[n] + 0; c++) printf "%d ", c
		} }' /proc/self/status
}
# threads_cpu TAG: the server's CPU ticks so far, by thread, on one line:
# TAG SOCKET_THREAD IO_THREADS WORKER...
threads_cpu() {
	for t in /proc/"$spid"/task/*; do
		printf '%s %s ' "${t##*/}" "$(tr ' ' _ <"$t/comm")"
		sed 's/.*) //' "$t/stat" | awk '{ print $12 + $13 }'
	done | awk -v tag="$1" -v pid="$spid" '
		$1 == pid { main = $3; next }
		$2 ~ /^ZMQbg\/IO/ { io += $3; next }
		$2 ~ /^ZMQbg/ { next }
		{ w = w " " $3 }
		END { print tag, main + 0, io + 0 w }'
}
cpus=$(echo "${BENCH_SCALE_CPUS:-$(cpu_list)}" | tr ',' ' ')
# shellcheck disable=SC2086
set -- $cpus
gen_cpu=${1:-0}
[ $# -gt 0 ] && shift
scale_max=${BENCH_SCALE_MAX:-4}
runs=""		# THREADS:CPU,CPU... a run
relay_cpus=""
n=0
for c in "$@"; do
	n=$((n + 1))
	[ "$n" -le "$scale_max" ] || break
	relay_cpus=${relay_cpus:+$relay_cpus,}$c
	runs="$runs $n:$relay_cpus"
done
# one CPU for the relay: --threads 2 there shows how its work splits
[ "$n" -eq 1 ] && runs="$runs 2:$relay_cpus"
if [ -z "$runs" ] || ! command -v taskset >/dev/null 2>&1; then
	echo "bench: no CPU of its own for the relay, or no taskset: no" \
	    "pinned --threads runs" >&2
	runs=""
else
	echo "bench: --threads N pinned, ${secs} s x $reps runs each; load" \
	    "generator on CPU $gen_cpu; threads:relay CPUs$runs" >&2
fi
r=1
while [ -n "$runs" ] && [ "$r" -le "$reps" ]; do
	for run in $runs; do
		nt=${run%%:*}
		rcpus=${run#*:}
		relay_config
		name=scale_${nt}_$(echo "$rcpus" | tr ',' '+')
		start "$tmp/$name-$r.log" taskset -c "$rcpus" "$relay" \
		    --config "$tmp/relay.json" --validate --threads "$nt"
		sleep 0.2	# its threads exist once it listens
		threads_cpu "cpu0 $name" >>"$tmp/bus.out"
		taskset -c "$gen_cpu" "$bz" relay -d "$secs" -w "$window" \
		    -p "$spid" "$name" "$in" "$outb" "$dev" >>"$tmp/bus.out" \
		    2>>"$tmp/client.log" ||
		    fail "bench_zmq relay ($name)" "$tmp/$name-$r.log"
		threads_cpu "cpu1 $name" >>"$tmp/bus.out"
		stop_server
	done
	r=$((r + 1))
done

# ---- 4: the hub ------------------------------------------------------------
echo "bench: fedmsg-hub with the noop consumer, ${secs} s x $reps runs," \
    "validation off and on; plugin calls" >&2
r=1
while [ "$r" -le "$reps" ]; do
	for v in off read on; do
		set -- $("$bz" ports 2)
		pub=tcp://127.0.0.1:$1
		metrics=127.0.0.1:$2
		[ "$v" = on ] && val=true || val=false
		cfgread={}
		[ "$v" = read ] && cfgread='{"read": ["/msg/commit/repo",
		    "/msg/commit/branch", "/msg/commit/username",
		    "/msg/commit/stats/total/additions", "/msg/ratio"]}'
		# dedup_window 500 < the 1024 distinct messages bench_zmq
		# cycles through: the hub's de-duplication runs, drops none.
		cat >"$tmp/hub.json" <<EOF
{
  "endpoints": {"bench": ["$pub"]},
  "validate_signatures": $val,
  "ca_cert_location": "$dev/ca.crt", $crl
  "validate_verified_cache": 0,
  "high_water_mark": 10000,
  "hub": {"metrics": "$metrics", "drain_timeout": 2},
  "consumers": {"noop": {"plugin": "$noop", "queue_size": 10000,
                         "dedup_window": 500, "config": $cfgread}}
}
EOF
		log=$tmp/hub-$v-$r.log
		start "$log" "$hub" --config "$tmp/hub.json"
		"$bz" hub -d "$secs" -w "$window" -p "$spid" "hub_$v" "$pub" \
		    "$metrics" "$dev" >>"$tmp/bus.out" 2>>"$tmp/client.log" ||
		    fail "bench_zmq hub (validation $v)" "$log"
		stop_server
	done
	r=$((r + 1))
done
# The real fedmsg-hub, validating: once (about 450 msgs/s, so a smaller
# window keeps the drain after the last send short).  Its config goes
# under TMPDIR, ours.
if [ -n "$real" ]; then
	set -- $("$bz" ports 2)
	pub=tcp://127.0.0.1:$1
	log=$tmp/hub-peer.log
	mkdir -p "$tmp/peer-home"
	start "$log" env TMPDIR="$tmp" \
	    PYTHONPATH="$peers/fedmsg${moksha:+:$moksha}" \
	    HOME="$tmp/peer-home" /usr/bin/python3 \
	    "$top/tests/bench/peer_hub.py" "$pub" "$2" "$dev/ca.crt" \
	    "$crlfile" on
	"$bz" hub -d "$secs" -w 500 -p "$spid" hub_peer_on "$pub" \
	    "127.0.0.1:$2" "$dev" >>"$tmp/bus.out" 2>>"$tmp/client.log" ||
	    fail "bench_zmq hub (the real fedmsg-hub)" "$log"
	stop_server
fi
"$bp" -n 5000000 -r 5 "$noop" >>"$tmp/bus.out" 2>>"$tmp/client.log" ||
    fail "bench_plugin"
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
cp "$tmp/bus.out" "$out/bus.out"

# ---- the report --------------------------------------------------------------
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo \
    2>/dev/null || true)
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?")
zmqver=$(pkg-config --modversion libzmq 2>/dev/null || echo "?")
when=$(date -u '+%Y-%m-%d %H:%M UTC')

cat >"$tmp/relay.awk" <<'EOF'
function ratio(a, b) { return b > 0 ? a / b : 0 }
function us(cpu_s, n) { return n > 0 && cpu_s >= 0 ? 1e6 * cpu_s / n : -1 }
$1 == "envelope" { ubytes = $2; sbytes = $3; tbytes = $4 }
# cpu0/cpu1 NAME SOCKET IO WORKER...: a pinned run's ticks by thread,
# before and after its tput line; the best run's difference counts.
$1 == "cpu0" { split($0, before); next }
$1 == "tput" && $2 ~ /^scale_/ {
	if (!($2 in rate)) order[nscale++] = $2
	best = $6 > rate[$2]
}
$1 == "cpu1" {
	if (!best) next
	tsock[$2] = $3 - before[3]; tio[$2] = $4 - before[4]
	tw[$2] = ""
	for (i = 5; i <= NF; i++) tw[$2] = tw[$2] " " ($i - before[i])
	next
}
# tput NAME SENT RECEIVED SECONDS RATE SERVER_CPU CLIENT_CPU: best run
$1 == "tput" {
	runs[$2]++
	if ($6 > rate[$2]) {
		rate[$2] = $6; sent[$2] = $3; recv[$2] = $4
		scpu[$2] = $7
	}
}
# lat NAME RATE SENT RECEIVED P50 P90 P99 MAX SERVER_CPU
$1 == "lat" {
	lrate = $3; lsent[$2] = $4; lrecv[$2] = $5
	p50[$2] = $6; p90[$2] = $7; p99[$2] = $8; pmax[$2] = $9
}
function trow(label, k) {
	printf "  %-36s %8.0f %6.1f %7.3f %7.1f %6.2f %6d\n", label,
	    rate[k], rate[k] * (sbytes + tbytes) / 1e6,
	    ratio(rate[k], rate["raw"]), us(scpu[k], recv[k]),
	    ratio(us(scpu[k], recv[k]), us(scpu["raw"], recv["raw"])),
	    sent[k] - recv[k]
}
function lrow(label, k) {
	printf "  %-32s %7.0f %7.0f %8.0f %8.0f %6.2f %6.2f %5d/%d\n", label,
	    p50[k], p90[k], p99[k], pmax[k], ratio(p50[k], p50["raw"]),
	    ratio(p99[k], p99["raw"]), lrecv[k], lsent[k]
}
END {
	printf "fedmsg-c bus benchmark: relay, %s\n", when
	printf "  %s, %s CPUs, libzmq %s; load average %s before, %s " \
	    "after\n", cpu, ncpu, zmq, lb, la
	printf "  message: org.fedoraproject.prod.git.receive, payload " \
	    "about 1 KB: envelope %d bytes\n", ubytes
	printf "  unsigned, %d bytes signed (the signed body carries the " \
	    "base64 certificate and\n", sbytes
	printf "  signature, so no signed body is near 1 KB), plus a %d-byte " \
	    "topic frame.\n", tbytes
	printf "  Sender and receiver: one bench_zmq process on 127.0.0.1 " \
	    "(PUB -> relay_inbound,\n"
	printf "  SUB <- relay_outbound); high-water marks 10000 everywhere.\n\n"

	printf "  1. throughput: as fast as the path takes them for %s s, " \
	    "at most %s in flight,\n", secs, win
	printf "     counted until quiescent; best of %s runs; msgs/s = " \
	    "received / (last arrival -\n", reps
	printf "     first send).  Baseline: a raw ZeroMQ hop, one thread " \
	    "doing zmq_msg_recv ->\n"
	printf "     zmq_msg_send from an XSUB to a PUB (no parsing), in its " \
	    "own process like the relay.\n"
	printf "  %-36s %8s %6s %7s %7s %6s %6s\n", "path", "msgs/s", "MB/s",
	    "ratio", "cpu us", "cpu x", "lost"
	trow("raw ZeroMQ hop (baseline)", "raw")
	trow("fedmsg-relay (forward only)", "fwd")
	trow("fedmsg-relay --validate", "val")
	trow("fedmsg-relay --validate --threads 2", "val2")
	if ("peer" in rate)
		trow("fedmsg 1.1.7 relay, validating", "peer")
	if ("peerrelay" in rate)
		trow("fedmsg 1.1.7 fedmsg-relay (moksha)", "peerrelay")
	if (rsa_us > 0)
		printf "  validating relay CPU per message / (forward-only CPU + " \
		    "one bare RSA-2048 verify,\n  %.1f us of CPU in the crypto " \
		    "part of this run): %.2f (issue 18: <= 1.3)\n", rsa_us,
		    ratio(us(scpu["val"], recv["val"]),
		    us(scpu["fwd"], recv["fwd"]) + rsa_us)
	printf "  --threads 2 / 1, validating: %.2f x the msgs/s, %.2f x the " \
	    "CPU per message\n", ratio(rate["val2"], rate["val"]),
	    ratio(us(scpu["val2"], recv["val2"]), us(scpu["val"], recv["val"]))
	printf "  (ratio: msgs/s / the raw hop's msgs/s.  cpu us: the " \
	    "server process's CPU time\n  (user+system, all its threads) " \
	    "per message received, in the best run; cpu x: that\n  / the " \
	    "raw hop's, a ratio less disturbed by other work on the machine " \
	    "than msgs/s.\n  lost: sent - received.)\n"
	if ("peer" in rate) {
		printf "  Beside the real fedmsg 1.1.7 (tests/bench/peer_relay.py:" \
		    " fedmsg.encoding and\n  fedmsg.crypto.validate per message, " \
		    "its relay's work without moksha), validating:\n"
		printf "    fedmsg-relay --validate: %.1fx its msgs/s, %.1fx " \
		    "less CPU per message\n", ratio(rate["val"], rate["peer"]),
		    ratio(us(scpu["peer"], recv["peer"]),
		    us(scpu["val"], recv["val"]))
		printf "    fedmsg-relay --validate --threads 2: %.1fx its " \
		    "msgs/s, %.1fx less CPU per message\n",
		    ratio(rate["val2"], rate["peer"]),
		    ratio(us(scpu["peer"], recv["peer"]),
		    us(scpu["val2"], recv["val2"]))
	}
	if ("peerrelay" in rate)
		printf "  Beside the real fedmsg 1.1.7 fedmsg-relay command (a " \
		    "moksha hub with its\n  RelayConsumer, which never " \
		    "validates; tests/bench/peer_fedmsg_relay.py; one run):\n" \
		    "    fedmsg-relay (forward only): %.1fx its msgs/s, %.1fx " \
		    "less CPU per message\n", ratio(rate["fwd"],
		    rate["peerrelay"]), ratio(us(scpu["peerrelay"],
		    recv["peerrelay"]), us(scpu["fwd"], recv["fwd"]))
	printf "\n"

	if (nscale) {
		printf "  3. --threads N, validating, with CPUs of the relay's " \
		    "own (taskset -c LIST\n     fedmsg-relay --validate " \
		    "--threads N) and the load generator on CPU %s; best\n" \
		    "     of %s runs of %s s each.  scaling: msgs/s / the " \
		    "one-thread run's (issue 18 asks\n     >= 0.8 N on N " \
		    "CPUs).  By thread, its CPU time / the messages: the " \
		    "socket\n     thread, ZeroMQ's I/O thread, each worker.\n",
		    gen_cpu, reps, secs
		printf "  %7s %-11s %8s %8s %7s %7s %7s  %s\n", "threads",
		    "relay CPUs", "msgs/s", "scaling", "cpu us", "socket",
		    "I/O", "workers"
		one = ""
		for (k = 0; k < nscale; k++) {
			split(order[k], nm, "_")
			if (nm[2] == 1) one = order[k]
		}
		shared = 0
		for (k = 0; k < nscale; k++) {
			n = order[k]
			split(n, nm, "_")
			ncpus = split(nm[3], cl, "+")
			gsub(/\+/, ",", nm[3])
			nw = split(tw[n], wt, " ")
			ws = ""
			for (i = 1; i <= nw; i++)
				ws = ws sprintf(" %5.1f", us(wt[i] / tck, recv[n]))
			if (ncpus >= nm[2] && one != "")
				sc = sprintf("%8.2f", ratio(rate[n], rate[one]))
			else {
				sc = sprintf("%8s", "shared")
				shared++
			}
			printf "  %7d %-11s %8.0f %s %7.1f %7.1f %7.1f %s\n",
			    nm[2], nm[3], rate[n], sc, us(scpu[n], recv[n]),
			    us(tsock[n] / tck, recv[n]), us(tio[n] / tck, recv[n]),
			    nw ? ws : "      -"
		}
		if (shared)
			printf "  (\"shared\": more threads than the relay's " \
			    "CPUs, as this machine has no more to\n  give it: " \
			    "not a scaling figure, but how the work splits " \
			    "over the workers and\n  what the hand-off costs " \
			    "on one CPU.)\n"
		printf "\n"
	}

	printf "  2. latency at %d msg/s for %s s, one run each: send -> " \
	    "arrival, CLOCK_MONOTONIC\n", lrate, lsecs
	printf "     in one process; the send time is kept by the sender, " \
	    "indexed by the bench_seq the\n"
	printf "     signed payload carries (a time written into a signed " \
	    "payload at send time would\n"
	printf "     need a signature per message).\n"
	printf "  %-32s %7s %7s %8s %8s %6s %6s %s\n", "path (us)", "p50",
	    "p90", "p99", "max", "p50 x", "p99 x", "recv/sent"
	lrow("raw ZeroMQ hop (baseline)", "raw")
	lrow("fedmsg-relay (forward only)", "fwd")
	lrow("fedmsg-relay --validate", "val")
	printf "  (p50 x, p99 x: ratio to the raw hop's.  On a shared " \
	    "2-CPU machine p99 and max\n  mostly show scheduling delays.)\n"
}
EOF

cat >"$tmp/hub.awk" <<'EOF'
function ratio(a, b) { return b > 0 ? a / b : 0 }
function us(cpu_s, n) { return n > 0 && cpu_s >= 0 ? 1e6 * cpu_s / n : -1 }
$1 == "tput" && $6 > trate[$2] {
	trate[$2] = $6
	tcpu[$2] = $4 > 0 && $7 >= 0 ? 1e6 * $7 / $4 : -1
}
# hub NAME SENT CONSUMED DROPPED INVALID SECONDS RATE SERVER_CPU
$1 == "hub" && $8 > rate[$2] {
	rate[$2] = $8; sent[$2] = $3; got[$2] = $4; drop[$2] = $5
	inv[$2] = $6; scpu[$2] = $9
}
$1 == "plugin" { ns[$2] = $4; calls = $3 }
function hrow(label, k) {
	printf "  %-30s %8.0f %7.3f %7.3f %7.1f %6.2f %5d %5d\n", label,
	    rate[k], ratio(rate[k], trate["fwd"]), ratio(rate[k], trate["raw"]),
	    us(scpu[k], got[k]), ratio(us(scpu[k], got[k]), tcpu["fwd"]),
	    sent[k] - got[k], drop[k] + inv[k]
}
END {
	printf "fedmsg-c bus benchmark: hub, %s\n", when
	printf "  4. fedmsg-hub dispatch: the same signed messages from a " \
	    "PUB the hub subscribes to,\n"
	printf "     consumed by noop_consumer.so (counts, returns " \
	    "FM_CONSUME_OK; queue_size 10000,\n"
	printf "     dedup_window 500 over 1024 distinct msg_ids).  msgs/s = " \
	    "fedmsg_consumer_ok_total\n"
	printf "     gained / (time it last grew - first send), read from " \
	    "/metrics every ~2-3 ms by a\n"
	printf "     keep-alive HTTP GET; at most %s in flight; %s s, best " \
	    "of %s runs.\n", win, secs, reps
	printf "  %-30s %8s %7s %7s %7s %6s %5s %5s\n", "hub", "msgs/s",
	    "/relay", "/raw", "cpu us", "cpu x", "lost", "drop"
	hrow("fedmsg-hub, validation off", "hub_off")
	hrow("  consumer reads 5 fields", "hub_read")
	hrow("fedmsg-hub, validation on", "hub_on")
	printf "  (/relay: ratio to fedmsg-relay forward-only msgs/s of " \
	    "section 1 (%.0f); /raw: to the\n", trate["fwd"]
	printf "  raw hop's (%.0f).  Validation on, against the validating " \
	    "relay: %.3f.  lost: sent -\n", trate["raw"],
	    ratio(rate["hub_on"], trate["val"])
	printf "  consumed; drop: dropped by the consumer or invalid.  cpu " \
	    "us: the hub's CPU time per\n  message consumed; cpu x: that / " \
	    "the forward-only relay's (%.1f us).)\n", tcpu["fwd"]
	if ("hub_peer_on" in rate) {
		hrow("fedmsg 1.1.7 hub, valid. on", "hub_peer_on")
		printf "  Beside the real fedmsg 1.1.7 hub (its fedmsg-hub on " \
		    "moksha.hub, a FedmsgConsumer\n  that counts; " \
		    "tests/bench/peer_hub.py; one run, at most 500 in " \
		    "flight):\n"
		printf "    validation on: fedmsg-c's hub %.1fx its msgs/s, " \
		    "%.1fx less CPU per message\n",
		    ratio(rate["hub_on"], rate["hub_peer_on"]),
		    ratio(us(scpu["hub_peer_on"], got["hub_peer_on"]),
		    us(scpu["hub_on"], got["hub_on"]))
	}
	printf "\n"

	printf "  plugin call, ns per consume() of the noop plugin (best of " \
	    "5 x %d calls)\n", calls
	printf "  %-58s %6s %6s\n", "call", "ns", "ratio"
	printf "  %-58s %6.2f %6s\n", "direct call (compiled in, out of " \
	    "line): baseline", ns["direct"], "1.000"
	printf "  %-58s %6.2f %6.3f\n", "via struct fm_plugin, compiled " \
	    "in (as the hub calls it)", ns["local_indirect"],
	    ratio(ns["local_indirect"], ns["direct"])
	printf "  %-58s %6.2f %6.3f\n", "via struct fm_plugin, " \
	    "noop_consumer.so loaded with dlopen()", ns["dlopen"],
	    ratio(ns["dlopen"], ns["direct"])
	if (rate["hub_off"] > 0)
		printf "  one dlopen()ed call is %.4f%% of the hub's time per " \
		    "message (validation off, %.0f ns).\n",
		    100 * ns["dlopen"] / (1e9 / rate["hub_off"]),
		    1e9 / rate["hub_off"]
	printf "  (the noop consume() is one relaxed atomic increment; the " \
	    "calls differ by the\n  indirection only.)\n"
	per_msg = rate["hub_off"] > 0 ? 1e9 / rate["hub_off"] : 0
	printf "  reading five fields of a 3 KB envelope through the ABI 1.1 " \
	    "accessors: %.0f ns per\n  message (the call included), %.3f of " \
	    "the hub's time per message; the hub reading\n  them ran at %.3f " \
	    "of its rate without and took %.3fx its CPU per\n  message " \
	    "(goal: at most 5 %% slower; the CPU ratio is the steadier of " \
	    "the two here).\n", ns["dlopen_read5"],
	    ratio(ns["dlopen_read5"], per_msg),
	    ratio(rate["hub_read"], rate["hub_off"]),
	    ratio(us(scpu["hub_read"], got["hub_read"]),
	    us(scpu["hub_off"], got["hub_off"]))
}
EOF
# CPU time of one bare RSA verify, from the crypto part if it ran in this
# run (tests/bench/run.sh names its output in BENCH_CRYPTO_OUT)
rsa_us=""
[ -n "${BENCH_CRYPTO_OUT:-}" ] && [ -r "$BENCH_CRYPTO_OUT" ] &&
    rsa_us=$(awk '$1 == "result" && $2 == "rsa_verify" && $3 == 1 &&
    $6 > 0 { printf "%.3f", 1e6 * $5 / $6 }' "$BENCH_CRYPTO_OUT")
awk -v when="$when" -v cpu="${cpu:-unknown CPU}" -v ncpu="$ncpu" \
    -v rsa_us="${rsa_us:-0}" -v tck="$(getconf CLK_TCK 2>/dev/null || echo 100)" \
    -v gen_cpu="$gen_cpu" \
    -v zmq="$zmqver" -v lb="$load_before" -v la="$load_after" \
    -v secs="$secs" -v reps="$reps" -v win="$window" -v lsecs="$lsecs" \
    -f "$tmp/relay.awk" "$tmp/bus.out" >"$out/relay.txt"
awk -v when="$when" -v secs="$secs" -v reps="$reps" -v win="$window" \
    -f "$tmp/hub.awk" "$tmp/bus.out" >"$out/hub.txt"
cat "$out/relay.txt"
echo
cat "$out/hub.txt"
echo "bench: written to $out/relay.txt and $out/hub.txt" >&2
