#!/bin/bash
# tests/brokers/broker.sh start|stop|check|ctl rabbitmq|activemq DIR [ARGS...]
#
# Real brokers for fedmsg-c's bridge and hub tests, each a plain background
# process of the test run: loopback only, every piece of state (config,
# test PKI, data, logs, PID files) in DIR, no systemd, no init scripts, no
# /etc or /var files touched.  Debian 12 packages: rabbitmq-server (3.10),
# activemq (5.17), python3-qpid-proton, python3-stomp, openssl, a JDK's
# keytool (`.ci/install-deps brokers`).
#
#   start  write config + test PKI (first time), start, and wait until the
#          ports are open AND a real publish -> subscribe round trip works
#          (roundtrip.py, up to 3 tries); exit 1 with the log tail if not
#          ready in time.
#          Refuses to start if one of the ports is already taken (a round
#          trip against someone else's broker would prove nothing).
#   stop   SIGTERM each PID this script recorded in DIR/*.pid (never by
#          name), wait until it is gone, SIGKILL after 30 s; then SIGKILL
#          what is left in its process group.
#   check  the round trip(s) again.
#   ctl    rabbitmq only: rabbitmqctl ARGS... against this node.
#
# Ports (127.0.0.1): each is taken from the environment variable shown
# or, when that is not set, picked free by `brokerrun.py ports` (random,
# below the ephemeral range, never a port a live test run has reserved,
# never the brokers' usual ports, which a system broker may hold).  start
# records them, with the node name, in DIR/ports.env (NAME=VALUE lines);
# check, ctl and stop read them from there.
#   rabbitmq  AMQP 0-9-1 + AMQP 1.0  FM_RMQ_AMQP_PORT
#             AMQPS                  FM_RMQ_AMQPS_PORT
#             STOMP                  FM_RMQ_STOMP_PORT
#             STOMP over TLS         FM_RMQ_STOMPS_PORT
#             Erlang distribution    FM_RMQ_DIST_PORT
#             epmd (our own, started and stopped with the node)
#                                    FM_RMQ_EPMD_PORT
#             node name              FM_RMQ_NODE (default: that of an
#                                    earlier start in DIR, else
#                                    fmtest-PID@localhost)
#   activemq  STOMP                  FM_AMQ_STOMP_PORT
#             STOMP+TLS, client cert required   FM_AMQ_STOMPS_PORT
#             STOMP+TLS, no client cert         FM_AMQ_STOMPS_NOAUTH_PORT
#             (no JMX, no web console: nothing else listens)
#
# Each broker process (and our epmd) runs in a process group of its own
# (setsid; its PID file holds the group's ID): a Ctrl-C meant for the test
# run does not reach it, and stop kills what is left of the group.  The
# environment is passed on, so FM_BROKER_RUN (see brokerrun.py) marks the
# processes as a test run's: if that run's owner dies, its watchdog or the
# next run kills them.
#
# Test PKI in DIR/tls (openssl, 10 years): ca.pem/ca.key (CN fedmsg-c test
# broker CA), server.pem/.key (CN localhost, SAN DNS:localhost,
# IP:127.0.0.1), server.p12 (password "password"), trust.p12 (the CA, for
# ActiveMQ's client-certificate check), client.pem/.key (CN fedmsg-bridge,
# signed by the CA), and a second, unrelated CA other-ca.pem with
# other-client.pem/.key (for "wrong CA" and "untrusted client cert" tests).
#
# Credentials: RabbitMQ guest/guest (PLAIN; ANONYMOUS maps to guest), and
# SASL EXTERNAL over TLS with client.pem (user fedmsg-bridge, its CN);
# ActiveMQ anonymous, or fedmsg/fedmsg-secret (any other login is refused).
#
# RabbitMQ 3.10's AMQP 1.0 plugin gives every receiver on /topic/.. or
# /exchange/.. a server-named queue (amq.gen-*) declared non-exclusive and
# non-auto-delete: it outlives the link and keeps collecting copies.  start
# sets the policy "amqp10-gc" (expires 5 s after the last consumer) on
# ^amq\.gen- queues; tests still use a fresh address each.
#
# Prints "broker.sh: KIND ready in N ms" / "stopped in N ms".
set -u

cmd=${1:-}; kind=${2:-}; D=${3:-}
usage() {
	echo "usage: broker.sh start|stop|check|ctl rabbitmq|activemq DIR [ARGS...]" >&2
	exit 2
}
[ -n "$cmd" ] && [ -n "$kind" ] && [ -n "$D" ] || usage
case $kind in rabbitmq|activemq) ;; *) usage ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
mkdir -p "$D" && D=$(cd "$D" && pwd) || exit 1

# the ports: DIR/ports.env once started, else the environment, else free
# ones (picked for start only)
if [ "$cmd" != start ] && [ -f "$D/ports.env" ]; then
	# shellcheck disable=SC1091
	. "$D/ports.env"
fi
case $kind in
rabbitmq) names="FM_RMQ_AMQP_PORT FM_RMQ_AMQPS_PORT FM_RMQ_STOMP_PORT
	FM_RMQ_STOMPS_PORT FM_RMQ_DIST_PORT FM_RMQ_EPMD_PORT" ;;
activemq) names="FM_AMQ_STOMP_PORT FM_AMQ_STOMPS_PORT FM_AMQ_STOMPS_NOAUTH_PORT" ;;
esac
unset_names=""
for v in $names; do
	eval "p=\${$v:-}"
	case $p in
	"") unset_names="$unset_names $v" ;;
	*[!0-9]*) echo "broker.sh: $v=$p is not a port number" >&2; exit 2 ;;
	esac
done
if [ -n "$unset_names" ] && [ "$cmd" != stop ]; then
	if [ "$cmd" != start ]; then
		echo "broker.sh: $kind: no $D/ports.env (not started there?)" >&2
		exit 1
	fi
	n=0
	for v in $unset_names; do n=$((n + 1)); done
	read -r -a free <<< "$($PY "$HERE/brokerrun.py" ports "$n")"
	i=0
	for v in $unset_names; do
		[ -n "${free[$i]:-}" ] || { echo "broker.sh: no free ports" >&2; exit 1; }
		eval "$v=${free[$i]}"
		i=$((i + 1))
	done
fi
# the node name is the node's data (mnesia/NAME): a restart in DIR keeps
# the one of the first start, and with it durable queues and messages
if [ "$cmd" = start ] && [ -z "${FM_RMQ_NODE:-}" ] && [ -f "$D/ports.env" ]; then
	FM_RMQ_NODE=$(sed -n 's/^FM_RMQ_NODE=//p' "$D/ports.env")
fi
FM_RMQ_NODE=${FM_RMQ_NODE:-fmtest-$$@localhost}
RMQ_AMQP=${FM_RMQ_AMQP_PORT:-}
RMQ_AMQPS=${FM_RMQ_AMQPS_PORT:-}
RMQ_STOMP=${FM_RMQ_STOMP_PORT:-}
RMQ_STOMPS=${FM_RMQ_STOMPS_PORT:-}
RMQ_DIST=${FM_RMQ_DIST_PORT:-}
RMQ_EPMD=${FM_RMQ_EPMD_PORT:-}
RMQ_NODE=$FM_RMQ_NODE
AMQ_STOMP=${FM_AMQ_STOMP_PORT:-}
AMQ_STOMPS=${FM_AMQ_STOMPS_PORT:-}
AMQ_STOMPS_NOAUTH=${FM_AMQ_STOMPS_NOAUTH_PORT:-}
RMQ_BIN=/usr/lib/rabbitmq/bin
AMQ_HOME=/usr/share/activemq

ms() { echo $(( $(date +%s%N) / 1000000 )); }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fail() {
	echo "broker.sh: $kind: $*" >&2
	for f in "$D"/*.log "$D"/log/*.log; do
		[ -s "$f" ] || continue
		echo "--- $f (last 25 lines)" >&2
		tail -n 25 "$f" >&2
	done
	exit 1
}

# alive PID: running and not a zombie (orphans are reaped late here)
alive() {
	local s
	s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	case $s in Z*) return 1 ;; esac
}

# waitport PORT SECONDS [PIDFILE]: until the port accepts a connection;
# gives up early when the process of PIDFILE has died.
waitport() {
	local end=$(( $(date +%s) + $2 ))
	until port_open "$1"; do
		if [ -n "${3:-}" ] && [ -f "$3" ] && ! alive "$(cat "$3")"; then
			echo "broker.sh: $kind exited before port $1 opened" >&2
			return 1
		fi
		[ "$(date +%s)" -ge "$end" ] && {
			echo "broker.sh: port $1 not open after $2 s" >&2; return 1; }
		sleep 0.1
	done
}

mkcerts() {
	[ -f "$D/tls/done" ] && return 0
	rm -rf "$D/tls" && mkdir -p "$D/tls" && (
		cd "$D/tls" || exit 1
		set -e
		days=3650
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
		    -days $days -subj "/CN=fedmsg-c test broker CA"
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
		openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
		    -out server.pem -days $days -extfile server.ext
		printf 'extendedKeyUsage=clientAuth\n' > client.ext
		openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=fedmsg-bridge
		openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
		    -out client.pem -days $days -extfile client.ext
		# an unrelated CA and a client cert of its own
		openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem \
		    -days $days -subj "/CN=some other CA"
		openssl req -newkey rsa:2048 -nodes -keyout other-client.key -out other-client.csr \
		    -subj /CN=fedmsg-bridge
		openssl x509 -req -in other-client.csr -CA other-ca.pem -CAkey other-ca.key \
		    -CAcreateserial -out other-client.pem -days $days -extfile client.ext
		openssl pkcs12 -export -in server.pem -inkey server.key -certfile ca.pem \
		    -name server -out server.p12 -passout pass:password
		keytool -importcert -noprompt -storetype pkcs12 -keystore trust.p12 \
		    -storepass password -alias test-ca -file ca.pem
		chmod 0644 ./*.key     # the broker may run as another user
		touch done
	) > "$D/mkcerts.log" 2>&1 || fail "making the test PKI failed (see $D/mkcerts.log)"
}

# (an array, not a function: `setsid nohup env ... &` must be one simple
# command, so that $! is the process group's leader)
rmq_vars=(HOME="$D/home" RABBITMQ_NODENAME="$RMQ_NODE"
    RABBITMQ_CONFIG_FILE="$D/rabbitmq.conf"
    RABBITMQ_ENABLED_PLUGINS_FILE="$D/enabled_plugins"
    RABBITMQ_MNESIA_BASE="$D/mnesia" RABBITMQ_LOG_BASE="$D/log"
    RABBITMQ_PID_FILE="$D/rabbit.pid" RABBITMQ_DIST_PORT="$RMQ_DIST"
    ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$RMQ_EPMD"
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}")
rmq_env() { env "${rmq_vars[@]}" "$@"; }

rmqctl() { rmq_env "$RMQ_BIN/rabbitmqctl" -n "$RMQ_NODE" "$@"; }

check() {
	case $kind in
	rabbitmq)
		# (separate queues: AMQP 1.0 declares /queue/X non-durable,
		# STOMP durable, and the second declaration would be refused)
		$PY "$HERE/roundtrip.py" amqp "amqp://127.0.0.1:$RMQ_AMQP" \
		    /queue/broker-sh-ready-amqp &&
		$PY "$HERE/roundtrip.py" amqp "amqps://localhost:$RMQ_AMQPS" \
		    /queue/broker-sh-ready-amqp --ca "$D/tls/ca.pem" &&
		$PY "$HERE/roundtrip.py" stomp "$RMQ_STOMP" --vhost / \
		    /queue/broker-sh-ready-stomp ;;
	activemq)
		$PY "$HERE/roundtrip.py" stomp "$AMQ_STOMP" /topic/broker-sh.ready &&
		$PY "$HERE/roundtrip.py" stomp "$AMQ_STOMPS" /queue/broker-sh.ready \
		    --ca "$D/tls/ca.pem" --cert "$D/tls/client.pem" --key "$D/tls/client.key" ;;
	esac
}

ports() {
	case $kind in
	rabbitmq) echo "$RMQ_AMQP $RMQ_AMQPS $RMQ_STOMP $RMQ_STOMPS $RMQ_DIST $RMQ_EPMD" ;;
	activemq) echo "$AMQ_STOMP $AMQ_STOMPS $AMQ_STOMPS_NOAUTH" ;;
	esac
}

start_rabbitmq() {
	mkdir -p "$D/mnesia" "$D/log" "$D/home"
	echo '[rabbitmq_stomp,rabbitmq_amqp1_0,rabbitmq_auth_mechanism_ssl].' > "$D/enabled_plugins"
	sed -e "s|@DIR@|$D|g" -e "s|@AMQP_PORT@|$RMQ_AMQP|g" \
	    -e "s|@AMQPS_PORT@|$RMQ_AMQPS|g" -e "s|@STOMP_PORT@|$RMQ_STOMP|g" \
	    -e "s|@STOMPS_PORT@|$RMQ_STOMPS|g" \
	    "$HERE/rabbitmq.conf.in" > "$D/rabbitmq.conf"
	# our own epmd, in the foreground so that its PID is known
	ERL_EPMD_PORT=$RMQ_EPMD setsid nohup epmd -address 127.0.0.1 \
	    > "$D/epmd.log" 2>&1 < /dev/null &
	echo $! > "$D/epmd.pid"
	waitport "$RMQ_EPMD" 5 "$D/epmd.pid" || return 1
	# /usr/lib/rabbitmq/bin, not /usr/sbin: that wrapper su's to the
	# rabbitmq user and writes under /var/log/rabbitmq.
	setsid nohup env "${rmq_vars[@]}" "$RMQ_BIN/rabbitmq-server" \
	    > "$D/rabbitmq.log" 2>&1 < /dev/null &
	echo $! > "$D/rabbit-sh.pid"   # the shell wrapper; beam.smp's PID comes in rabbit.pid
	waitport "$RMQ_AMQP" 90 "$D/rabbit-sh.pid" &&
	waitport "$RMQ_AMQPS" 20 "$D/rabbit-sh.pid" &&
	waitport "$RMQ_STOMP" 20 "$D/rabbit-sh.pid" &&
	waitport "$RMQ_STOMPS" 20 "$D/rabbit-sh.pid" || return 1
	rmqctl set_policy --apply-to queues amqp10-gc '^amq\.gen-' \
	    '{"expires":5000}' > "$D/policy.log" 2>&1 ||
		{ echo "broker.sh: set_policy failed:" >&2; cat "$D/policy.log" >&2; return 1; }
	# the user SASL EXTERNAL maps client.pem to (its CN); its password
	# is random and never used
	{ rmqctl list_users -q | grep -q '^fedmsg-bridge[[:space:]]' ||
	  rmqctl add_user fedmsg-bridge "$(openssl rand -hex 16)"; } \
	    > "$D/users.log" 2>&1 &&
	rmqctl set_permissions -p / fedmsg-bridge '.*' '.*' '.*' \
	    >> "$D/users.log" 2>&1 ||
		{ echo "broker.sh: adding user fedmsg-bridge failed:" >&2; cat "$D/users.log" >&2; return 1; }
}

start_activemq() {
	mkdir -p "$D/conf" "$D/data" "$D/tmp"
	sed -e "s|@DIR@|$D|g" -e "s|@STOMP_PORT@|$AMQ_STOMP|g" \
	    -e "s|@STOMPS_PORT@|$AMQ_STOMPS|g" \
	    -e "s|@STOMPS_NOAUTH_PORT@|$AMQ_STOMPS_NOAUTH|g" \
	    "$HERE/activemq.xml.in" > "$D/conf/activemq.xml"
	cp "$HERE/log4j.properties" "$D/conf/"
	# what /etc/init.d/activemq would run, minus the user switch and
	# /var: Java 17 needs the --add-opens; heap capped at 256 MB.
	setsid nohup java -Xms64m -Xmx256m -Djava.awt.headless=true \
	    --add-opens java.base/java.lang=ALL-UNNAMED \
	    --add-opens java.base/java.util=ALL-UNNAMED \
	    --add-opens java.base/java.net=ALL-UNNAMED \
	    --add-opens java.base/java.security=ALL-UNNAMED \
	    --add-opens java.base/java.util.concurrent=ALL-UNNAMED \
	    -Dactivemq.classpath="$D/conf" -Dactivemq.home=$AMQ_HOME \
	    -Dactivemq.base="$D" -Dactivemq.conf="$D/conf" \
	    -Dactivemq.data="$D/data" -Djava.io.tmpdir="$D/tmp" \
	    -jar $AMQ_HOME/bin/activemq.jar start "xbean:file:$D/conf/activemq.xml" \
	    > "$D/activemq.log" 2>&1 < /dev/null &
	echo $! > "$D/activemq.pid"
	waitport "$AMQ_STOMP" 60 "$D/activemq.pid" &&
	waitport "$AMQ_STOMPS" 10 "$D/activemq.pid" &&
	waitport "$AMQ_STOMPS_NOAUTH" 10 "$D/activemq.pid"
}

# stop_pid NAME [group]: SIGTERM the PID in DIR/NAME.pid and wait for it
# to go; with "group" (the PID leads a process group of its own, made by
# setsid), then SIGKILL what is left of that group.
stop_pid() {
	local f="$D/$1.pid" p n=0
	[ -f "$f" ] || return 0
	p=$(cat "$f")
	if [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; then
		while alive "$p"; do
			sleep 0.05
			n=$((n + 1))
			if [ $n -eq 600 ]; then
				echo "broker.sh: $1 ($p) ignored SIGTERM for 30 s: SIGKILL" >&2
				kill -KILL "$p" 2>/dev/null
			fi
		done
	fi
	if [ -n "$p" ] && [ "${2:-}" = group ]; then
		kill -KILL -- "-$p" 2>/dev/null
	fi
	rm -f "$f"
}

stop_all() {
	case $kind in
	rabbitmq)
		# beam.smp first (rabbit.pid, written by the node), then the
		# wrapper shell (exits with it), then our epmd
		stop_pid rabbit
		stop_pid rabbit-sh group
		stop_pid epmd group ;;
	activemq)
		stop_pid activemq group ;;
	esac
}

case $cmd in
start)
	t0=$(ms)
	for p in $(ports); do
		port_open "$p" && fail "port $p is already in use (another broker?); nothing started"
	done
	{
		for v in $names; do eval "echo $v=\$$v"; done
		[ "$kind" = rabbitmq ] && echo "FM_RMQ_NODE=$RMQ_NODE"
	} > "$D/ports.env"
	mkcerts
	if ! "start_$kind"; then
		stop_all
		fail "did not start"
	fi
	t1=$(ms)
	# A fresh JVM's first TLS handshakes can take longer than a client
	# waits (seen: stomp.py's ConnectFailedException on ActiveMQ's
	# client-certificate port, twice in a day of starts): up to 3 round
	# trips.
	: > "$D/check.log"
	n=1
	until check >> "$D/check.log" 2>&1; do
		if [ $n -ge 3 ]; then
			cat "$D/check.log" >&2
			stop_all
			fail "round trip failed 3 times"
		fi
		echo "broker.sh: round trip $n failed; again in 2 s" >> "$D/check.log"
		n=$((n + 1))
		sleep 2
	done
	echo "broker.sh: $kind ready in $(( $(ms) - t0 )) ms (ports open after $(( t1 - t0 )) ms, round trip $(( $(ms) - t1 )) ms)"
	;;
stop)
	t0=$(ms)
	stop_all
	echo "broker.sh: $kind stopped in $(( $(ms) - t0 )) ms"
	;;
check)
	check
	;;
ctl)
	[ "$kind" = rabbitmq ] || usage
	shift 3
	rmqctl "$@"
	;;
*)
	usage
	;;
esac
