#!/bin/sh
# run_brokers.sh BUILD_DIR PKI_DIR -- the broker half of `make bench`
# (tests/bench/run.sh calls it after the bus half; BENCH_BROKERS=0 skips
# it): fedmsg-bridge's throughput between ZeroMQ and a real broker, as
# ratios to direct clients of the same broker measured in the same run.
# Prints a table and writes it to BUILD_DIR/bench/brokers.txt (raw result
# lines: BUILD_DIR/bench/brokers.out).  It only reports; nothing here
# fails on a slow figure, only when a run cannot be made at all.
#
#  1. AMQP 1.0 through RabbitMQ 3.10: ZeroMQ -> AMQP (bench_broker's PUB
#     -> fedmsg-bridge -> /queue/X -> a proton receiver) and AMQP -> ZeroMQ
#     (a proton sender -> /queue/X -> fedmsg-bridge, validation off and
#     on -> a ZeroMQ SUB), against a proton sender -> /queue/X -> a proton
#     receiver (bench_broker: qpid-proton's proactor, written like its C
#     examples send.c/receive.c, which cannot send a given body), and
#     against those examples themselves, unchanged (Debian's
#     libqpid-proton11-dev-examples, built by the Makefile); and against
#     the proton pair sending the message as the bridge shapes it
#     (bench_broker -S: message-id, subject, creation-time, to and the
#     bridge's application properties, which cost RabbitMQ CPU of its
#     own), the same work as the bridge's.
#  1b. AMQP 0-9-1 through RabbitMQ: ZeroMQ -> 0-9-1 and 0-9-1 -> ZeroMQ
#     (validation off and on; the bridge's /queue/X with publisher
#     confirms and its spool one way, basic.qos 100 and an ack each the
#     other) against a rabbitmq-c publisher/consumer pair with the same
#     guarantees (bench_broker's amqp091 endpoint); then, where
#     ../shared/peers (or $FM_PEERS) has them, BENCH_PEER_N of the same
#     envelopes through fedora-messaging 3.6's own api.publish and
#     api.consume (tests/bench/bench_fm.py) and through
#     fedmsg-migration-tools' zmq_to_amqp (validating, as Fedora ran it)
#     and AmqpToZmq (under fedora-messaging's consume): our throughput and
#     CPU per message as multiples of theirs.
#  2. STOMP through ActiveMQ 5.17: ZeroMQ -> STOMP and STOMP -> ZeroMQ
#     (validation off and on) against (i) the broker's ceiling with the
#     fastest client here, fedmsg-c's own STOMP client (brokers/stomp.h) in
#     bench_broker, sending without receipts to an ack:auto subscriber,
#     and the same client with the bridge's guarantees (a receipt per
#     SEND, client-individual acks, prefetch 100), and the same client
#     sending what the ZeroMQ -> STOMP bridge sends (-S: a receipt each
#     and its headers, msg_id, topic, origin and the payload's scalars,
#     which ActiveMQ turns into message properties) to the ack:auto
#     subscriber of that bridge run, and the client-individual acks of
#     the STOMP -> ZeroMQ bridge fed as that run is; (ii) stomp.py
#     (tests/bench/bench_stomp.py), what a Python user would have.
#
# Every run: the same N signed 3 KB envelopes (bench_zmq envelopes; each
# its own msg_id, as the bridge drops a msg_id it forwarded before),
# probes until the path is up, BENCH_BROKER_WARM untimed messages (the
# steady state of a long-running bridge and client, not their heap's first
# growth, which cost the bridge some 7 us per message of a 10 000-message
# run), then at most BENCH_BROKER_WINDOW messages
# sent and not yet received, end to end; msgs/s = distinct messages
# received / (last arrival - first send); a fresh queue and a fresh bridge
# per run.  Each broker first gets untimed runs of its direct clients
# (RabbitMQ two: a fresh node ran its first 40 000 messages some 15 %
# slower; ActiveMQ four: its JIT compiler needs some 80 000 messages
# before it reaches its pace, and slowed the first runs 3x);
# then the runs of a section are interleaved, and the best of
# BENCH_BROKER_REPS counts.
#
#   BENCH_BROKER_N       messages per run (default 10000)
#   BENCH_BROKER_WINDOW  in flight at most (default 1000)
#   BENCH_BROKER_WARM    untimed messages first, each run of ours and of
#                        the direct clients (default 2000; not the
#                        Python peers')
#   BENCH_BROKER_REPS    runs per path (default 2)
#   BENCH_BROKER_PARTS   which sections, any of "amqp amqp091 stomp"
#                        (default all; a broker no section needs is not
#                        started)
#   BENCH_PEER_N         messages per run of the Python peers (default 500)
#   BENCH_BRIDGE         the fedmsg-bridge to run (default BUILD_DIR's): an
#                        older build beside this one, run after run
#   BENCH_BRIDGE_KEYS    more keys for every bench bridge, as JSON members
#                        (e.g. '"credit": 500'): a setting beside the
#                        defaults
#
# The brokers are our own (tests/brokers/broker.sh), started here as a run
# of tests/brokers/brokerrun.py, like a test session's: on ports reserved
# for this run (never those of a test run or of a system broker), with
# state in the run's directory ($TMPDIR/fedmsg-c-test-brokers/...), and
# stopped by the PIDs broker.sh recorded; if this script is killed without
# its cleanup, the run's watchdog kills the brokers (and the bridges and
# clients: every process marked FM_BROKER_RUN), and the next run removes
# what is left.  The test PKI broker.sh makes is
# kept in BUILD_DIR/bench/broker-tls to save its 2-3 s next time.  The
# signed envelopes are kept in BUILD_DIR/bench/broker-envelopes.txt for
# the same certificate and N.  Without the broker packages (sh
# .ci/install-deps brokers) this half is skipped with a message.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR PKI_DIR" >&2
	exit 2
fi
build=$1
dev=$(cd "$2" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$build/bench
bb=$out/bench_broker
pex=$out		# proton-send, proton-receive (Makefile: PROTON_EXAMPLES)
bz=$out/bench_zmq
bridge=${BENCH_BRIDGE:-$build/bin/fedmsg-bridge}
brokersh=$top/tests/brokers/broker.sh
pystomp=$top/tests/bench/bench_stomp.py
PY=/usr/bin/python3
n=${BENCH_BROKER_N:-10000}
window=${BENCH_BROKER_WINDOW:-1000}
warm=${BENCH_BROKER_WARM:-2000}
reps=${BENCH_BROKER_REPS:-2}
bparts=" ${BENCH_BROKER_PARTS:-amqp amqp091 stomp} "
want() { case "$bparts" in *" $1 "*) return 0 ;; esac; return 1; }

for f in "$bb" "$bz" "$bridge"; do
	if [ ! -x "$f" ]; then
		echo "bench: $f is missing; run 'make bench'" >&2
		exit 1
	fi
done
missing=""
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing="$missing rabbitmq-server"
[ -r /usr/share/activemq/bin/activemq.jar ] || missing="$missing activemq"
"$PY" -c 'import stomp' 2>/dev/null || missing="$missing python3-stomp"
"$PY" -c 'import proton' 2>/dev/null ||
    missing="$missing python3-qpid-proton"	# broker.sh's round trip
command -v keytool >/dev/null 2>&1 || missing="$missing default-jre-headless"
if [ -n "$missing" ]; then
	echo "bench: broker benchmarks skipped: missing$missing (install" \
	    "them with 'sh .ci/install-deps brokers', as root)" >&2
	exit 0
fi

# the run: its directory, 9 reserved ports, a watchdog
runinfo=$("$PY" "$top/tests/brokers/brokerrun.py" new $$ 9)
tmp=${runinfo%% *}
ports=${runinfo#* }
export FM_BROKER_RUN="$tmp"
rdir=$tmp/rabbitmq
adir=$tmp/activemq
spid=""		# the bridge now running
started=""	# brokers broker.sh started for us
stop_bridge() {
	[ -n "$spid" ] || return 0
	kill "$spid" 2>/dev/null || true
	k=0
	while [ $k -lt 100 ] && [ -r "/proc/$spid/stat" ] &&
	    [ "$(sed 's/.*) //' "/proc/$spid/stat" | cut -c1)" != Z ]; do
		sleep 0.1
		k=$((k + 1))
	done
	if [ $k -ge 100 ]; then
		echo "bench: fedmsg-bridge $spid ignored SIGTERM for 10 s;" \
		    "SIGKILL" >&2
		kill -9 "$spid" 2>/dev/null || true
	fi
	wait "$spid" 2>/dev/null || true
	spid=""
}
# stop_broker KIND DIR: by the PIDs broker.sh wrote in DIR (ours only)
stop_broker() {
	case " $started " in *" $1 "*) ;; *) return 0 ;; esac
	bash "$brokersh" stop "$1" "$2" >>"$tmp/brokers.log" 2>&1 || true
	started=$(echo " $started " | sed "s/ $1 / /")
}
cleanup() {
	rc=$?
	stop_bridge
	[ -n "${rstart:-}" ] && wait "$rstart" 2>/dev/null
	[ -n "${astart:-}" ] && wait "$astart" 2>/dev/null
	stop_broker rabbitmq "$rdir"
	stop_broker activemq "$adir"
	"$PY" "$top/tests/brokers/brokerrun.py" close "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM

: >"$tmp/brokers.out"
: >"$tmp/client.log"
: >"$tmp/brokers.log"
t_begin=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
others=$(ps -eo comm= 2>/dev/null | grep -c -E '^(beam\.smp|java)$' || true)

# ---- the brokers, on the run's ports; the envelopes meanwhile ----------------
# shellcheck disable=SC2086
set -- $ports
export FM_RMQ_AMQP_PORT=$1 FM_RMQ_AMQPS_PORT=$2 FM_RMQ_STOMP_PORT=$3 \
    FM_RMQ_STOMPS_PORT=$4 FM_RMQ_DIST_PORT=$5 FM_RMQ_EPMD_PORT=$6 \
    FM_AMQ_STOMP_PORT=$7 FM_AMQ_STOMPS_PORT=$8 FM_AMQ_STOMPS_NOAUTH_PORT=$9
amqp_port=$1
stomp_port=$7
mkdir -p "$rdir" "$adir"
if [ -f "$out/broker-tls/done" ]; then
	cp -R "$out/broker-tls" "$rdir/tls"
	cp -R "$out/broker-tls" "$adir/tls"
fi
echo "bench: brokers: starting the brokers of$bparts(tests/brokers/" \
    "broker.sh, ports of this run); $n messages per run, $reps runs per path" >&2
if want amqp || want amqp091; then
	started="$started rabbitmq"
	bash "$brokersh" start rabbitmq "$rdir" >"$tmp/rabbitmq-start.log" 2>&1 &
	rstart=$!
fi
if want stomp; then
	started="$started activemq"
	bash "$brokersh" start activemq "$adir" >"$tmp/activemq-start.log" 2>&1 &
	astart=$!
fi

envs=$out/broker-envelopes.txt
key="$((n + warm)) 200 $(cat "$dev/shell-localhost.crt" "$dev/shell-localhost.key" |
    cksum)"
if [ -r "$envs" ] && [ "$(cat "$envs.key" 2>/dev/null)" = "$key" ]; then
	echo "bench: brokers: signed envelopes from $envs" >&2
else
	rm -f "$envs.key"
	"$bz" envelopes "$((n + warm))" 200 "$dev" "$envs" || {
		echo "bench: bench_zmq envelopes failed" >&2
		exit 1
	}
	echo "$key" >"$envs.key"
fi
rc=0
[ -n "${rstart:-}" ] && { wait "$rstart" || rc=$?; }
rstart=""
[ -n "${astart:-}" ] && { wait "$astart" || rc=$((rc + $?)); }
astart=""
if [ $rc -ne 0 ]; then
	cat "$tmp/rabbitmq-start.log" "$tmp/activemq-start.log" >&2 || true
	echo "bench: a broker did not start" >&2
	exit 1
fi
rready=$(sed -n 's/.*ready in \([0-9]*\) ms.*/\1/p' "$tmp/rabbitmq-start.log" \
    2>/dev/null || true)
aready=$(sed -n 's/.*ready in \([0-9]*\) ms.*/\1/p' "$tmp/activemq-start.log" \
    2>/dev/null || true)
if [ ! -f "$out/broker-tls/done" ] && [ -f "$rdir/tls/done" ]; then
	rm -rf "$out/broker-tls"
	cp -R "$rdir/tls" "$out/broker-tls"
fi
rpid=$(cat "$rdir/rabbit.pid" 2>/dev/null || echo 0)
apid=$(cat "$adir/activemq.pid" 2>/dev/null || echo 0)
echo "bench: brokers: RabbitMQ ready in ${rready:-?} ms, ActiveMQ in" \
    "${aready:-?} ms" >&2

printf 'guest\n' >"$tmp/password"
chmod 600 "$tmp/password"
crl=""
[ -r "$dev/crl.pem" ] && crl="\"crl_location\": \"$dev/crl.pem\","

# bridge_conf NAME ENTRY: a config with one bridge "bench" (ENTRY: its JSON
# members) and the ZeroMQ endpoint "src" on $zport
bridge_conf() {
	cat >"$tmp/$1.json" <<EOF
{
  "endpoints": {"src": ["tcp://127.0.0.1:$zport"]},
  "validate_signatures": false,
  "sign_messages": false,
  "ca_cert_location": "$dev/ca.crt", $crl
  "high_water_mark": 10000,
  "zmq_linger": 0,
  "bridges": {"bench": {$2${BENCH_BRIDGE_KEYS:+, $BENCH_BRIDGE_KEYS}}}
}
EOF
}

failed=""
# run NAME CMD...: one client run; its result line goes to brokers.out
run() {
	name=$1
	shift
	if "$@" >>"$tmp/brokers.out" 2>>"$tmp/client.log"; then
		return 0
	fi
	echo "bench: brokers: run $name failed" >&2
	tail -5 "$tmp/client.log" >&2
	[ -n "$spid" ] && [ -s "$tmp/bridge-$name.log" ] &&
	    tail -5 "$tmp/bridge-$name.log" >&2
	failed="$failed $name"
}

# warmup NAME CLIENT_ARGS...: an untimed run (its figures are dropped)
warmup() {
	name=$1
	shift
	"$@" >/dev/null 2>>"$tmp/client.log" ||
	    echo "bench: brokers: warm-up run $name failed" >&2
}

# cpu_ticks PID: user+system CPU time of PID so far, in clock ticks
cpu_ticks() {
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null |
	    awk '{ print $12 + $13 }' || echo 0
}

# examples NAME ADDRESS: qpid-proton's C example receive.c then send.c
# (their own small map body), timed from send's start to the exit of
# both; a result line like bench_broker's (no bridge, no client CPU)
examples() {
	[ -x "$pex/proton-send" ] || return 0
	"$pex/proton-receive" 127.0.0.1 "$amqp_port" "$2" "$n" \
	    >/dev/null 2>>"$tmp/client.log" &
	xr=$!
	sleep 0.5	# attached (the queue is there either way)
	k0=$(cpu_ticks "$rpid")
	t0=$(date +%s%N)
	"$pex/proton-send" 127.0.0.1 "$amqp_port" "$2" "$n" \
	    >/dev/null 2>>"$tmp/client.log" || xs=$?
	if wait "$xr" && [ -z "${xs:-}" ]; then
		awk -v name="$1" -v n="$n" -v t0="$t0" -v t1="$(date +%s%N)" \
		    -v k="$(( $(cpu_ticks "$rpid") - k0 ))" \
		    -v hz="$(getconf CLK_TCK)" 'BEGIN {
			s = (t1 - t0) / 1e9
			printf "broker %s %d %d 0 %.3f %.0f -1 %.6f -1\n",
			    name, n, n, s, n / s, k / hz
		}' >>"$tmp/brokers.out"
	else
		echo "bench: brokers: run $1 failed" >&2
		failed="$failed $1"
	fi
	xs=""
}

# bridged NAME ENTRY CLIENT_ARGS...: start fedmsg-bridge, run, stop it
bridged() {
	name=$1
	entry=$2
	shift 2
	bridge_conf "$name" "$entry"
	"$bridge" --config "$tmp/$name.json" >"$tmp/bridge-$name.log" 2>&1 &
	spid=$!
	run "$name" "$bb" -W "$warm" -n "$n" -w "$window" -p "$spid" "$@"
	stop_bridge
}

# ---- 1. AMQP 1.0 through RabbitMQ ---------------------------------------------
# (each section runs if BENCH_BROKER_PARTS names it; bodies not re-indented)
amqp=amqp://127.0.0.1:$amqp_port
auth="\"user\": \"guest\", \"password_file\": \"$tmp/password\", \"allow_plaintext_credentials\": true"
if want amqp; then
echo "bench: brokers: AMQP 1.0 through RabbitMQ" >&2
for w in 1 2; do
	warmup amqp_warmup "$bb" -n "$n" -w "$window" amqp_warmup \
	    "$amqp/queue/fedmsg-bench-$$-warmup$w" \
	    "$amqp/queue/fedmsg-bench-$$-warmup$w" "$envs"
done
r=1
while [ "$r" -le "$reps" ]; do
	q=/queue/fedmsg-bench-$$-$r
	run amqp_base "$bb" -W "$warm" -n "$n" -w "$window" -b "$rpid" \
	    amqp_base "$amqp$q-base" "$amqp$q-base" "$envs"
	run amqp_shaped "$bb" -S -W "$warm" -n "$n" -w "$window" -b "$rpid" \
	    amqp_shaped "$amqp$q-shaped" "$amqp$q-shaped" "$envs"
	examples amqp_examples "$q-examples"
	zport=$("$bz" ports 1)
	bridged zmq_amqp "\"from\": \"zmq\", \"to\": \"$amqp\",
	    \"endpoints\": [\"src\"], \"address\": \"$q-z2a\", $auth,
	    \"spool\": {\"dir\": \"$tmp/spool-$r\"}" -b "$rpid" zmq_amqp \
	    "zmq-bind:tcp://127.0.0.1:$zport" "$amqp$q-z2a" "$envs"
	for v in off on; do
		zport=$("$bz" ports 1)
		[ $v = on ] && val=true || val=false
		bridged "amqp_zmq_$v" "\"from\": \"$amqp\", \"to\": \"zmq\",
		    \"source\": \"$q-a2z-$v\", $auth, \"validate\": $val,
		    \"endpoints\": \"tcp://127.0.0.1:$zport\"" -b "$rpid" \
		    "amqp_zmq_$v" "$amqp$q-a2z-$v" "zmq:tcp://127.0.0.1:$zport" \
		    "$envs"
	done
	r=$((r + 1))
done

fi	# amqp

# ---- 1b. AMQP 0-9-1 through RabbitMQ -------------------------------------------
# bench_broker's rabbitmq-c pair (publisher confirms, mandatory, delivery
# mode 2 -> /queue -> basic.qos 100, an ack each) against the bridge both
# ways with the same guarantees (confirms and spool; prefetch 100, acks);
# then, where the peers are, the same messages through fedora-messaging's
# own publish and consume and through fedmsg-migration-tools' bridges.
if want amqp091; then
a091=amqp091://127.0.0.1:$amqp_port
q091() { echo "fedmsg-bench-$$-$1"; }
decl091() {	# the queue as bench_broker declares it
	echo "\"queues\": {\"$1\": {\"durable\": false, \"auto_delete\": false}}"
}
echo "bench: brokers: AMQP 0-9-1 through RabbitMQ" >&2
warmup a091_warmup "$bb" -n "$n" -w "$window" a091_warmup \
    "$a091/$(q091 warmup)" "$a091/$(q091 warmup)" "$envs"
r=1
while [ "$r" -le "$reps" ]; do
	run a091_base "$bb" -W "$warm" -n "$n" -w "$window" -b "$rpid" \
	    a091_base "$a091/$(q091 base-$r)" "$a091/$(q091 base-$r)" "$envs"
	for v in off on; do
		zport=$("$bz" ports 1)
		[ $v = on ] && val=true || val=false
		q=$(q091 z2a-$v-$r)
		bridged "zmq_a091_$v" "\"from\": \"zmq\", \"to\": \"$a091\",
		    \"endpoints\": [\"src\"], \"address\": \"/queue/$q\", $auth,
		    \"validate\": $val, $(decl091 "$q"),
		    \"spool\": {\"dir\": \"$tmp/spool-a$v$r\"}" -b "$rpid" \
		    "zmq_a091_$v" "zmq-bind:tcp://127.0.0.1:$zport" "$a091/$q" \
		    "$envs"
		zport=$("$bz" ports 1)
		q=$(q091 a2z-$v-$r)
		bridged "a091_zmq_$v" "\"from\": \"$a091\", \"to\": \"zmq\",
		    \"source\": \"/queue/$q\", $auth, \"validate\": $val,
		    $(decl091 "$q"), \"endpoints\": \"tcp://127.0.0.1:$zport\"" \
		    -b "$rpid" "a091_zmq_$v" "$a091/$q" \
		    "zmq:tcp://127.0.0.1:$zport" "$envs"
	done
	r=$((r + 1))
done

# the peers: fewer messages (they are Python; one run each)
peers=${FM_PEERS:-$top/../shared/peers}
pn=${BENCH_PEER_N:-500}
[ "$pn" -gt "$n" ] && pn=$n
if [ -r "$peers/fedora-messaging/fedora_messaging/api.py" ] &&
    [ -r "$peers/fedmsg-migration-tools/fedmsg_migration_tools/bridges.py" ] &&
    [ -r "$peers/fedmsg/fedmsg/crypto/x509_ng.py" ]; then
	echo "bench: brokers: fedora-messaging and fedmsg-migration-tools" \
	    "($pn messages)" >&2
	ppath=$peers/fedora-messaging:$peers/fedmsg-migration-tools:$peers/fedmsg
	mkdir -p "$tmp/peer-home"
	# fedmsg's config for migration-tools (validation as Fedora ran it)
	cat >"$tmp/peer-fedmsg.py" <<PYEOF
config = dict(validate_signatures=True, sign_messages=False,
              crypto_backend="x509", crypto_validate_backends=["x509"],
              ca_cert_location="$dev/ca.crt",
              crl_location="${crl:+$dev/crl.pem}" or None,
              endpoints={}, environment="prod", topic_prefix="org.fedoraproject")
PYEOF
	penv="PYTHONPATH=$ppath HOME=$tmp/peer-home FEDMSG_CONFIG=$tmp/peer-fedmsg.py"
	# shellcheck disable=SC2086
	run fm env $penv "$PY" "$top/tests/bench/bench_fm.py" -n "$pn" \
	    -b "$rpid" fm \
	    "$amqp_port" "$(q091 fm)" "$envs"
	# zmq_to_amqp: ZeroMQ SUB -> fedmsg.crypto.validate -> api.publish
	# (a confirm per message) to an exchange; the queue bound to it.
	# The function its `zmq_to_amqp` command runs (the command module
	# also imports txzmq, for another command, which Debian 12 lacks).
	zport=$("$bz" ports 1)
	cat >"$tmp/mt.toml" <<TEOF
amqp_url = "amqp://guest:guest@127.0.0.1:$amqp_port/%2F"
TEOF
	# shellcheck disable=SC2086
	env $penv FEDORA_MESSAGING_CONF="$tmp/mt.toml" "$PY" -c "
from fedmsg_migration_tools import bridges
bridges.zmq_to_amqp('fedmsg-bench-$$-zmq.topic',
                    ['tcp://127.0.0.1:$zport'], [b''])" \
	    >"$tmp/bridge-mt_zmq_a091.log" 2>&1 &
	spid=$!
	run mt_zmq_a091 "$bb" -n "$pn" -w "$window" -p "$spid" -b "$rpid" \
	    mt_zmq_a091 "zmq-bind:tcp://127.0.0.1:$zport" \
	    "$a091/$(q091 mt-z2a)@fedmsg-bench-$$-zmq.topic" "$envs"
	stop_bridge
	# amqp_to_zmq: fedora-messaging's consumer with the AmqpToZmq
	# callback (wraps, not signing: as our bench bridges) -> a PUB
	zport=$("$bz" ports 1)
	q=$(q091 mt-a2z)
	cat >"$tmp/mt-a2z.toml" <<TEOF
amqp_url = "amqp://guest:guest@127.0.0.1:$amqp_port/%2F"
callback = "fedmsg_migration_tools.bridges:AmqpToZmq"
bindings = []
[queues.$q]
durable = false
auto_delete = false
exclusive = false
arguments = {}
[qos]
prefetch_size = 0
prefetch_count = 100
[consumer_config]
publish_endpoint = "tcp://127.0.0.1:$zport"
TEOF
	sed 's/^config = dict(validate_signatures=True, sign_messages=False,/config = dict(validate_signatures=False, sign_messages=False,/' \
	    "$tmp/peer-fedmsg.py" >"$tmp/peer-fedmsg-a2z.py"
	# shellcheck disable=SC2086
	env $penv FEDMSG_CONFIG="$tmp/peer-fedmsg-a2z.py" \
	    FEDORA_MESSAGING_CONF="$tmp/mt-a2z.toml" "$PY" -c \
	    'from fedora_messaging.cli import cli; cli()' consume \
	    >"$tmp/bridge-mt_a091_zmq.log" 2>&1 &
	spid=$!
	run mt_a091_zmq "$bb" -n "$pn" -w "$window" -p "$spid" -b "$rpid" \
	    mt_a091_zmq "$a091/$q" "zmq:tcp://127.0.0.1:$zport" "$envs"
	stop_bridge
else
	echo "bench: brokers: fedora-messaging and fedmsg-migration-tools" \
	    "skipped: not found in $peers (set FM_PEERS)" >&2
fi
fi	# amqp091
stop_broker rabbitmq "$rdir"

# ---- 2. STOMP through ActiveMQ -------------------------------------------------
if want stomp; then
stomp=stomp://127.0.0.1:$stomp_port
echo "bench: brokers: STOMP through ActiveMQ" >&2
# ActiveMQ reaches its pace after some 80 000 messages (JIT): 4 runs,
# with and without receipts and acks
for w in 1 2 3 4; do
	[ $((w % 2)) -eq 0 ] && acked="-r -a client-individual -c 100" ||
	    acked=""
	# shellcheck disable=SC2086
	warmup stomp_warmup "$bb" -n "$n" -w "$window" $acked stomp_warmup \
	    "$stomp/queue/fedmsg-bench-$$-warmup$w" \
	    "$stomp/queue/fedmsg-bench-$$-warmup$w" "$envs"
done
r=1
while [ "$r" -le "$reps" ]; do
	q=/queue/fedmsg-bench-$$-$r
	run stomp_c "$bb" -W "$warm" -n "$n" -w "$window" -b "$apid" \
	    stomp_c "$stomp$q-c" "$stomp$q-c" "$envs"
	run stomp_c_acked "$bb" -W "$warm" -n "$n" -w "$window" -b "$apid" -r \
	    -a client-individual -c 100 stomp_c_acked "$stomp$q-cr" \
	    "$stomp$q-cr" "$envs"
	# the ZeroMQ -> STOMP bridge run's work without the bridge: its
	# receipts and headers, the same ack:auto subscriber
	run stomp_c_shaped "$bb" -S -W "$warm" -n "$n" -w "$window" \
	    -b "$apid" -r stomp_c_shaped "$stomp$q-cs" "$stomp$q-cs" "$envs"
	# the STOMP -> ZeroMQ bridge run's: its feeder (no receipts), its
	# client-individual acks and prefetch
	run stomp_c_acks "$bb" -W "$warm" -n "$n" -w "$window" -b "$apid" \
	    -a client-individual -c 100 stomp_c_acks "$stomp$q-ca" \
	    "$stomp$q-ca" "$envs"
	run stomp_py "$PY" "$pystomp" -n "$n" -w "$window" -b "$apid" \
	    stomp_py 127.0.0.1 "$stomp_port" "$q-py" "$envs"
	zport=$("$bz" ports 1)
	bridged zmq_stomp "\"from\": \"zmq\", \"to\": \"$stomp\",
	    \"endpoints\": [\"src\"], \"address\": \"$q-z2s\",
	    \"spool\": {\"dir\": \"$tmp/spool-s$r\"}" -b "$apid" zmq_stomp \
	    "zmq-bind:tcp://127.0.0.1:$zport" "$stomp$q-z2s" "$envs"
	for v in off on; do
		zport=$("$bz" ports 1)
		[ $v = on ] && val=true || val=false
		bridged "stomp_zmq_$v" "\"from\": \"$stomp\", \"to\": \"zmq\",
		    \"source\": \"$q-s2z-$v\", \"validate\": $val,
		    \"endpoints\": \"tcp://127.0.0.1:$zport\"" -b "$apid" \
		    "stomp_zmq_$v" "$stomp$q-s2z-$v" \
		    "zmq:tcp://127.0.0.1:$zport" "$envs"
	done
	r=$((r + 1))
done
stop_broker activemq "$adir"
fi	# stomp
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
t_total=$(( $(date +%s) - t_begin ))
cp "$tmp/brokers.out" "$out/brokers.out"

# ---- the report ------------------------------------------------------------------
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo \
    2>/dev/null || true)
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?")
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null | sed 's/-[^-]*$//' ||
    echo "?"; }
when=$(date -u '+%Y-%m-%d %H:%M UTC')
sbytes=$(awk '$1 == "m" { print length($0) - length($1 " " $2 " "); exit }' \
    "$envs")
tbytes=$(awk '$1 == "m" { print length($2); exit }' "$envs")

cat >"$tmp/brokers.awk" <<'EOF'
function ratio(a, b) { return b > 0 ? a / b : 0 }
function us(c, k) { return recv[k] > 0 && c >= 0 ? 1e6 * c / recv[k] : -1 }
function cell(v) { return v < 0 ? sprintf("%7s", "-") : sprintf("%7.1f", v) }
# broker NAME SENT RECEIVED DUPS SECONDS RATE BRIDGE_CPU BROKER_CPU CLIENT_CPU
$1 == "broker" {
	runs[$2]++
	if ($7 > rate[$2]) {
		rate[$2] = $7; sent[$2] = $3; recv[$2] = $4; dups[$2] = $5
		bcpu[$2] = $8; kcpu[$2] = $9
	}
}
function goal(label, k, b) {
	if (!(k in rate) || !(b in rate))
		return
	printf "  %-56s %6.3f\n", label, ratio(rate[k], rate[b])
}
function peer(label, ours, theirs,   a, b, x) {
	if (!(ours in rate) || !(theirs in rate)) {
		printf "  %-56s %9s %11s\n", label, "-", "-"
		return
	}
	a = us(bcpu[ours], ours); b = us(bcpu[theirs], theirs)
	x = (a > 0 && b > 0) ? sprintf("%.1f", b / a) : "-"
	printf "  %-56s %9.1f %11s\n", label, ratio(rate[ours], rate[theirs]),
	    x
}
function row(label, k, b1, b2) {
	if (!(k in rate)) {
		printf "  %-44s %8s   (no result)\n", label, "-"
		return
	}
	# (the examples send their own small body: no MB/s of ours)
	printf "  %-44s %8.0f %6s %6.3f", label, rate[k],
	    k == "amqp_examples" ? "-" : sprintf("%.1f", rate[k] * sbytes / 1e6),
	    ratio(rate[k], rate[b1])
	if (b2 != "")
		printf " %6.3f", ratio(rate[k], rate[b2])
	printf " %s %s %5d %4d\n", cell(us(bcpu[k], k)), cell(us(kcpu[k], k)),
	    sent[k] - recv[k], dups[k]
}
END {
	printf "fedmsg-c bus benchmark: brokers, %s\n", when
	printf "  %s, %s CPUs; RabbitMQ %s, ActiveMQ %s, qpid-proton %s, " \
	    "python3-stomp %s\n", cpu, ncpu, rmq, amq, pn, pst
	printf "  load average %s before, %s after", lb, la
	if (others > 0)
		printf "; %d other broker process(es) (beam.smp/java) were " \
		    "running", others
	printf "\n  message: org.fedoraproject.prod.git.receive, %d bytes " \
	    "signed (as in relay.txt), each\n", sbytes
	printf "  with its own msg_id; %d per run, at most %d sent and not " \
	    "yet received (end to end);\n", n, win
	printf "  msgs/s = distinct messages received / (last arrival - " \
	    "first send), best of %d runs\n", reps
	printf "  (interleaved), after untimed warm-up runs (RabbitMQ 2, " \
	    "ActiveMQ 4: its JIT);\n  each run of ours and of the direct " \
	    "clients first passes %d untimed messages.\n", warm
	printf "  Brokers: our own on 127.0.0.1 (tests/brokers/broker.sh, " \
	    "non-persistent ActiveMQ),\n  ready in %s ms (RabbitMQ) and %s " \
	    "ms (ActiveMQ), started in parallel; this half took %d s.\n",
	    rready, aready, total
	printf "  fedmsg-bridge: one per run, defaults (AMQP/STOMP credit " \
	    "100, 1000 unsettled sends,\n  a disk spool without fsync for " \
	    "ZeroMQ -> broker); a fresh queue per run.\n\n"

	if (index(bparts, " amqp ")) {
	printf "  1. AMQP 1.0 through RabbitMQ.  /base: ratio to a proton " \
	    "sender -> /queue/X -> a\n"
	printf "     proton receiver with our envelopes (bench_broker, " \
	    "qpid-proton's proactor like\n"
	printf "     its C examples: data section, unsettled sends, 1000 " \
	    "credit, accept each);\n"
	printf "     /ex: ratio to qpid-proton's own C examples send.c -> " \
	    "receive.c, unchanged\n"
	printf "     (their body: a small map {\"sequence\": N}, not our " \
	    "%d bytes).  ZeroMQ:\n     bench_broker's PUB or SUB.  The " \
	    "bridge's message shape: the proton sender\n     also sends " \
	    "what fedmsg-bridge sends beside the body (message-id, " \
	    "subject,\n     creation-time, to; topic, origin and the " \
	    "payload's scalars as application\n     properties, which " \
	    "RabbitMQ turns into headers).\n", sbytes
	printf "  %-44s %8s %6s %6s %6s %7s %7s %5s %4s\n", "path", "msgs/s",
	    "MB/s", "/base", "/ex", "bridge", "broker", "lost", "dups"
	row("proton examples send.c -> receive.c", "amqp_examples",
	    "amqp_base", "amqp_examples")
	row("proton send -> RabbitMQ -> proton receive", "amqp_base",
	    "amqp_base", "amqp_examples")
	row("the same, the bridge's message shape (-S)", "amqp_shaped",
	    "amqp_base", "amqp_examples")
	row("ZeroMQ -> fedmsg-bridge -> AMQP", "zmq_amqp", "amqp_base",
	    "amqp_examples")
	row("AMQP -> fedmsg-bridge -> ZeroMQ", "amqp_zmq_off", "amqp_base",
	    "amqp_examples")
	row("AMQP -> fedmsg-bridge -> ZeroMQ, validating", "amqp_zmq_on",
	    "amqp_base", "amqp_examples")
	printf "  (bridge, broker: CPU time of fedmsg-bridge and of " \
	    "RabbitMQ's beam.smp per message\n  received, us.  lost: " \
	    "sent - received.)\n\n"
	}

	if (index(bparts, " amqp091 ")) {
	printf "  1b. AMQP 0-9-1 through RabbitMQ.  /base: ratio to a " \
	    "rabbitmq-c %s publisher ->\n", rmqc
	printf "     /queue/X -> a rabbitmq-c consumer with the bridge's " \
	    "guarantees (bench_broker:\n"
	printf "     publisher confirms, mandatory, delivery mode 2; " \
	    "basic.qos 100, an ack each).\n"
	printf "  %-44s %8s %6s %6s %6s %7s %7s %5s %4s\n", "path", "msgs/s",
	    "MB/s", "/base", "", "bridge", "broker", "lost", "dups"
	row("rabbitmq-c publish -> RabbitMQ -> consume", "a091_base",
	    "a091_base", "")
	row("ZeroMQ -> fedmsg-bridge -> 0-9-1", "zmq_a091_off", "a091_base", "")
	row("ZeroMQ -> fedmsg-bridge -> 0-9-1, validating", "zmq_a091_on",
	    "a091_base", "")
	row("0-9-1 -> fedmsg-bridge -> ZeroMQ", "a091_zmq_off", "a091_base", "")
	row("0-9-1 -> fedmsg-bridge -> ZeroMQ, validating", "a091_zmq_on",
	    "a091_base", "")
	if ("fm_publish" in rate || "mt_zmq_a091" in rate) {
		printf "  the peers (one run each, %d messages; ../shared/peers):\n",
		    pn_peer
		row("fedora-messaging api.publish, confirm each", "fm_publish",
		    "a091_base", "")
		row("fedora-messaging api.consume, prefetch 100", "fm_consume",
		    "a091_base", "")
		row("migration-tools zmq_to_amqp, validating", "mt_zmq_a091",
		    "a091_base", "")
		row("migration-tools AmqpToZmq (consume -> PUB)", "mt_a091_zmq",
		    "a091_base", "")
		printf "  (bridge: for the peers, their process's CPU per " \
		    "message: fedora-messaging's,\n  pika's and Twisted's " \
		    "work, as the bridge's is ours.  fedora-messaging is " \
		    "timed\n  from the first publish to the last confirm, and " \
		    "from the first delivery to\n  the last, not end to end; " \
		    "migration-tools end to end like the bridge.)\n"
		printf "\n  Beside the peers: fedmsg-c as multiples of them " \
		    "(x msgs/s: ours / theirs;\n  x less CPU: their CPU " \
		    "per message / ours)\n"
		printf "  %-56s %9s %11s\n", "", "x msgs/s", "x less CPU"
		peer("ZeroMQ -> 0-9-1, validating: bridge / migration-tools",
		    "zmq_a091_on", "mt_zmq_a091")
		peer("0-9-1 -> ZeroMQ: bridge / migration-tools AmqpToZmq",
		    "a091_zmq_off", "mt_a091_zmq")
		peer("publishing: bridge (ZeroMQ -> 0-9-1) / fedora-messaging",
		    "zmq_a091_off", "fm_publish")
		peer("consuming: bridge (0-9-1 -> ZeroMQ) / fedora-messaging",
		    "a091_zmq_off", "fm_consume")
	} else {
		printf "  (fedora-messaging and fedmsg-migration-tools: not " \
		    "run, see the messages above)\n"
	}
	printf "\n"
	}
	if (index(bparts, " stomp ")) {
	printf "  2. STOMP through ActiveMQ.  /C: ratio to the broker's " \
	    "ceiling, fedmsg-c's STOMP\n"
	printf "     client (brokers/stomp.h) sending without receipts to an " \
	    "ack:auto subscriber;\n"
	printf "     /py: ratio to stomp.py (bench_stomp.py: send(), an " \
	    "ack:auto listener).\n"
	printf "  %-44s %8s %6s %6s %6s %7s %7s %5s %4s\n", "path", "msgs/s",
	    "MB/s", "/C", "/py", "bridge", "broker", "lost", "dups"
	row("C client -> ActiveMQ -> C client (ceiling)", "stomp_c",
	    "stomp_c", "stomp_py")
	row("C client, receipts + acks, prefetch 100", "stomp_c_acked",
	    "stomp_c", "stomp_py")
	row("C client, receipts + the bridge's headers", "stomp_c_shaped",
	    "stomp_c", "stomp_py")
	row("C client, no receipts, acks, prefetch 100", "stomp_c_acks",
	    "stomp_c", "stomp_py")
	row("stomp.py -> ActiveMQ -> stomp.py", "stomp_py", "stomp_c",
	    "stomp_py")
	row("ZeroMQ -> fedmsg-bridge -> STOMP", "zmq_stomp", "stomp_c",
	    "stomp_py")
	row("STOMP -> fedmsg-bridge -> ZeroMQ", "stomp_zmq_off", "stomp_c",
	    "stomp_py")
	row("STOMP -> fedmsg-bridge -> ZeroMQ, validating", "stomp_zmq_on",
	    "stomp_c", "stomp_py")
	printf "  (the bridge sends with a receipt per message and receives " \
	    "with client-individual\n  acks, prefetch 100: the second row " \
	    "is the ceiling with those guarantees; the\n  third sends as " \
	    "the ZeroMQ -> STOMP bridge does (a receipt each and its\n" \
	    "  headers: msg_id, topic, origin, the payload's scalars) to " \
	    "the ack:auto\n  subscriber of the bridge runs; the fourth " \
	    "acks as the STOMP -> ZeroMQ bridge does,\n  fed as it is.  " \
	    "The bridge " \
	    "runs feed or drain the queue with the\n  C client, fastest " \
	    "settings.  broker: ActiveMQ's java process.)\n"
	}
	printf "\n  Each bridge path against the best C client doing the " \
	    "same work with the same\n  guarantees, in this run " \
	    "(issue 18's goal: >= 0.8; spool on for ZeroMQ -> broker):\n"
	goal("ZeroMQ -> AMQP 1.0 / proton pair, settled", "zmq_amqp",
	    "amqp_base")
	goal("  the same / proton pair, the bridge's message shape",
	    "zmq_amqp", "amqp_shaped")
	goal("AMQP 1.0 -> ZeroMQ / proton pair, settled", "amqp_zmq_off",
	    "amqp_base")
	goal("ZeroMQ -> 0-9-1 / rabbitmq-c pair, confirms + acks",
	    "zmq_a091_off", "a091_base")
	goal("0-9-1 -> ZeroMQ / rabbitmq-c pair, confirms + acks",
	    "a091_zmq_off", "a091_base")
	goal("ZeroMQ -> STOMP / C client, receipts + acks", "zmq_stomp",
	    "stomp_c_acked")
	goal("  the same / C client sending as the bridge does",
	    "zmq_stomp", "stomp_c_shaped")
	goal("STOMP -> ZeroMQ / C client, receipts + acks", "stomp_zmq_off",
	    "stomp_c_acked")
	goal("  the same / C client receiving as the bridge does",
	    "stomp_zmq_off", "stomp_c_acks")
	if (failed != "")
		printf "\n  runs that could not be made:%s (see the messages " \
		    "above)\n", failed
}
EOF
awk -v when="$when" -v cpu="${cpu:-unknown CPU}" -v ncpu="$ncpu" \
    -v rmq="$(ver rabbitmq-server)" -v amq="$(ver activemq)" \
    -v pn="$(ver libqpid-proton11)" -v pst="$(ver python3-stomp)" \
    -v rmqc="$(ver librabbitmq4)" -v pn_peer="${pn:-0}" -v bparts="$bparts" \
    -v lb="$load_before" -v la="$load_after" -v n="$n" -v win="$window" \
    -v reps="$reps" -v warm="$warm" -v sbytes="$sbytes" -v tbytes="$tbytes" \
    -v rready="${rready:-?}" -v aready="${aready:-?}" -v total="$t_total" \
    -v others="$others" -v failed="$failed" \
    -f "$tmp/brokers.awk" "$tmp/brokers.out" >"$out/brokers.txt"
cat "$out/brokers.txt"
echo "bench: written to $out/brokers.txt" >&2
[ -z "$failed" ]
