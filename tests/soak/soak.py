#!/usr/bin/python3
"""soak.py BUILD_DIR -- `make soak`: fedmsg-c's daemons under a steady load
for SOAK_MINUTES, watched for memory growth, lost messages and latency.

What runs (all on 127.0.0.1, fresh ports; stopped by PID at the end):

  this driver --PUB--> fedmsg-relay --validate --PUB--> this driver (SUB)
                                     |--> fedmsg-hub, validating, with the
                                     |    example and archive consumers
                                     |    (the archive file is tailed here)
                                     |--> fedmsg-bridge -> RabbitMQ, AMQP 1.0
                                     |    (a proton receiver here)
                                     |--> fedmsg-bridge -> RabbitMQ, AMQP
                                     |    0-9-1 (the same receiver)
                                     '--> fedmsg-bridge -> ActiveMQ, STOMP
                                          (a stomp.py subscriber here)

Each bridge has its disk spool on.  The brokers are our own test brokers
(tests/brokers/broker.sh, a run of tests/brokers/brokerrun.py, as `make
bench` starts them); without the broker packages (sh .ci/install-deps
brokers) the bridges are left out and a line says so.

Messages: signed envelopes from `bench_zmq envelopes` (git.receive, about
3 KB signed, each its own msg_id and "bench_seq"), sent at SOAK_RATE per
second.  The driver records each send time by bench_seq and every sink
its arrivals, so it reports, per sink:

  lost     sent - distinct bench_seqs received, after the drain
  p99      latency from send to arrival, per minute of sending (ms); the
           hub's is the archive line's appearance, polled every 10 ms
  RSS      VmRSS of each daemon after SOAK_WARMUP seconds of traffic
           ("start") and at the end, and the growth in %; the start
           comes after 3000 messages by default, when the daemons'
           bounded stores are full: the verify-once cache of the relay
           and the hub (2 MiB of signatures and signed text, about 1500
           of these envelopes), each spool's in-memory copy of its latest
           records (4 MiB, about 1400), a bridge's loop-prevention table
           (its pages touched at random by the first thousand msg_ids).
           Until then RSS grows as they fill (1.4-2.7 MiB a daemon from
           the 500th message on, here), and stays flat after.

Goals (issue 18): growth <= 2 %, lost 0.  The exit status is 1 when a
message was lost or a receiver failed, 2 when the run could not be made or
a daemon exited during it; RSS growth is reported, not enforced (a short
run mostly shows warm-up).

  SOAK_MINUTES   minutes of sending (default 10; fractions allowed)
  SOAK_RATE      messages per second (default 50)
  SOAK_WARMUP    seconds of traffic before the "start" RSS (default: the
                 time of 3000 messages, at least 10 s; 60 s at 50/s)
  SOAK_DRAIN     seconds to wait for the last messages (default 30)
  SOAK_BROKERS   0: relay and hub only
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
WARM_MSGS = 3000    # messages before the "start" RSS, by default
PY = "/usr/bin/python3"
SEQ = re.compile(rb'"bench_seq":\s*(\d+)')


def log(*a):
    print("soak:", *a, file=sys.stderr, flush=True)


def env_num(name, default, kind=float):
    v = os.environ.get(name, "")
    try:
        return kind(v) if v else default
    except ValueError:
        sys.exit("soak: %s=%r is not a number" % (name, v))


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def rss_kib(pid):
    try:
        for line in Path("/proc/%d/status" % pid).read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def pctl(vals, p):
    if not vals:
        return None
    s = sorted(vals)
    return s[min(len(s) - 1, int(p * len(s)))]


class Sink:
    """Arrivals at one place: bench_seq -> first arrival (monotonic s)."""

    def __init__(self, name):
        self.name = name
        self.first = {}
        self.dups = 0
        self.lock = threading.Lock()
        self.error = None

    def arrived(self, body):
        m = SEQ.search(body)
        if not m:
            return          # a probe
        seq, now = int(m.group(1)), time.monotonic()
        with self.lock:
            if seq in self.first:
                self.dups += 1
            else:
                self.first[seq] = now

    def count(self):
        with self.lock:
            return len(self.first)


class Soak:
    def __init__(self, build):
        self.build = Path(build).resolve()
        self.bin = self.build / "bin"
        self.dev = self.build / "dev"
        self.out = self.build / "soak"
        self.minutes = env_num("SOAK_MINUTES", 10.0)
        self.rate = env_num("SOAK_RATE", 50.0)
        # see RSS above: what fills the bounded stores
        self.warmup = env_num("SOAK_WARMUP", max(10.0, WARM_MSGS / self.rate))
        self.drain = env_num("SOAK_DRAIN", 30.0)
        self.brokers = os.environ.get("SOAK_BROKERS", "1") != "0"
        self.n = max(1, int(self.minutes * 60 * self.rate))
        self.procs = {}          # name -> Popen
        self.logs = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="fedmsg-soak."))
        self.run_dir = None
        self.started = []        # (kind, dir) broker.sh started
        self.stop = threading.Event()
        self.sinks = {}
        self.threads = []

    # ---- processes ---------------------------------------------------------
    def start(self, name, argv, env=None):
        f = open(self.tmp / (name + ".log"), "wb")
        self.logs[name] = self.tmp / (name + ".log")
        self.procs[name] = subprocess.Popen(argv, stdout=f,
                                            stderr=subprocess.STDOUT,
                                            env=env)
        f.close()

    def stop_proc(self, name):
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            log("%s (%d) ignored SIGTERM for 10 s; SIGKILL" % (name, p.pid))
            p.kill()
            p.wait()

    def cleanup(self):
        self.stop.set()
        for t in self.threads:
            t.join(5)
        for name in list(self.procs):
            self.stop_proc(name)
        for kind, d in self.started:
            subprocess.run(["bash", str(TOP / "tests/brokers/broker.sh"),
                            "stop", kind, str(d)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if self.run_dir:
            subprocess.run([PY, str(TOP / "tests/brokers/brokerrun.py"),
                            "close", self.run_dir])
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, obj):
        p = self.tmp / name
        p.write_text(json.dumps(obj, indent=1))
        return str(p)

    # ---- set-up ------------------------------------------------------------
    def envelopes(self):
        """The signed messages, kept in BUILD_DIR/soak for the same N."""
        self.out.mkdir(parents=True, exist_ok=True)
        f = self.out / "envelopes.txt"
        crt = (self.dev / "shell-localhost.crt").read_bytes()
        key = "%d %d" % (self.n, zlib.crc32(crt))
        kf = self.out / "envelopes.key"
        if not (f.exists() and kf.exists() and kf.read_text() == key):
            log("signing %d envelopes (bench_zmq envelopes)" % self.n)
            subprocess.run([str(self.build / "bench/bench_zmq"), "envelopes",
                            str(self.n), "50", str(self.dev), str(f)],
                           check=True)
            kf.write_text(key)
        self.msgs, self.probes = [], []
        for line in f.read_bytes().splitlines():
            kind, topic, body = line.split(b" ", 2)
            (self.msgs if kind == b"m" else self.probes).append((topic, body))

    def start_brokers(self):
        if not self.brokers:
            return False
        missing = [p for p, ok in (
            ("rabbitmq-server",
             os.access("/usr/lib/rabbitmq/bin/rabbitmq-server", os.X_OK)),
            ("activemq", os.access("/usr/share/activemq/bin/activemq.jar",
                                   os.R_OK)),
            ("default-jre-headless", shutil.which("keytool"))) if not ok]
        for mod, pkg in (("stomp", "python3-stomp"),
                         ("proton", "python3-qpid-proton")):
            try:
                __import__(mod)
            except ImportError:
                missing.append(pkg)
        if missing:
            log("bridges left out: missing %s (sh .ci/install-deps brokers,"
                " as root)" % " ".join(missing))
            return False
        r = subprocess.run([PY, str(TOP / "tests/brokers/brokerrun.py"),
                            "new", str(os.getpid()), "9"],
                           capture_output=True, text=True, check=True)
        parts = r.stdout.split()
        self.run_dir, ports = parts[0], [int(p) for p in parts[1:]]
        env = dict(os.environ, FM_BROKER_RUN=self.run_dir)
        for k, p in zip(("FM_RMQ_AMQP_PORT", "FM_RMQ_AMQPS_PORT",
                         "FM_RMQ_STOMP_PORT", "FM_RMQ_STOMPS_PORT",
                         "FM_RMQ_DIST_PORT", "FM_RMQ_EPMD_PORT",
                         "FM_AMQ_STOMP_PORT", "FM_AMQ_STOMPS_PORT",
                         "FM_AMQ_STOMPS_NOAUTH_PORT"), ports):
            env[k] = str(p)
        self.amqp_port, self.stomp_port = ports[0], ports[6]
        tls = self.build / "bench/broker-tls"
        starts = []
        for kind in ("rabbitmq", "activemq"):
            d = Path(self.run_dir) / kind
            d.mkdir(parents=True, exist_ok=True)
            if (tls / "done").exists():
                shutil.copytree(tls, d / "tls")
            self.started.append((kind, d))
            starts.append(subprocess.Popen(
                ["bash", str(TOP / "tests/brokers/broker.sh"), "start", kind,
                 str(d)], env=env, stdout=open(d / "start.log", "wb"),
                stderr=subprocess.STDOUT))
        log("starting RabbitMQ and ActiveMQ (tests/brokers/broker.sh)")
        if any(p.wait() != 0 for p in starts):
            for kind, d in self.started:
                sys.stderr.write((d / "start.log").read_text())
            raise RuntimeError("a broker did not start")
        self.broker_env = env
        return True

    def start_daemons(self, with_brokers):
        dev = str(self.dev)
        ins, outs, metrics = free_ports(3)
        self.relay_in = "tcp://127.0.0.1:%d" % ins
        self.relay_out = "tcp://127.0.0.1:%d" % outs
        common = {"ca_cert_location": dev + "/ca.crt",
                  "crl_location": dev + "/crl.pem",
                  "high_water_mark": 10000, "zmq_linger": 0}
        relay = self.write("relay.json", dict(
            common, relay_inbound=self.relay_in,
            endpoints={"relay_outbound": [self.relay_out]}))
        self.start("fedmsg-relay", [str(self.bin / "fedmsg-relay"),
                                    "--config", relay, "--validate"])
        self.archive = self.tmp / "archive"
        self.archive.mkdir(mode=0o750)
        plugins = self.build / "plugins"
        hub = self.write("hub.json", dict(
            common, validate_signatures=True,
            endpoints={"relay_outbound": [self.relay_out]},
            hub={"metrics": "127.0.0.1:%d" % metrics, "drain_timeout": 5},
            consumers={
                "example": {"plugin": str(plugins / "example.so"),
                            "config": {"count_every": 1000000,
                                       "interval_ms": 10000}},
                "archive": {"plugin": str(plugins / "archive.so"),
                            "config": {"dir": str(self.archive),
                                       "prefix": "soak",
                                       "rotate_daily": False,
                                       "max_bytes": 0}}}))
        self.start("fedmsg-hub", [str(self.bin / "fedmsg-hub"),
                                  "--config", hub])
        if not with_brokers:
            return
        pw = self.tmp / "password"
        pw.write_text("guest\n")
        pw.chmod(0o600)
        for name, url, extra in (
                ("amqp", "amqp://127.0.0.1:%d" % self.amqp_port,
                 {"user": "guest", "password_file": str(pw),
                  "allow_plaintext_credentials": True}),
                ("amqp091", "amqp091://127.0.0.1:%d" % self.amqp_port,
                 {"user": "guest", "password_file": str(pw),
                  "allow_plaintext_credentials": True}),
                ("stomp", "stomp://127.0.0.1:%d" % self.stomp_port, {})):
            spool = self.tmp / ("spool-" + name)
            b = dict(extra, **{"from": "zmq", "to": url,
                               "endpoints": ["relay_outbound"],
                               "address": "/queue/fedmsg-soak-" + name,
                               "spool": {"dir": str(spool)}})
            cfg = self.write("bridge-%s.json" % name, dict(
                common, validate_signatures=False, sign_messages=False,
                endpoints={"relay_outbound": [self.relay_out]},
                bridges={"soak": b}))
            self.start("fedmsg-bridge(%s)" % name,
                       [str(self.bin / "fedmsg-bridge"), "--config", cfg],
                       env=self.broker_env)

    # ---- sinks -------------------------------------------------------------
    def thread(self, fn, *a):
        t = threading.Thread(target=fn, args=a, daemon=True)
        t.start()
        self.threads.append(t)

    def sub_relay(self, sink):
        import zmq
        s = self.zctx.socket(zmq.SUB)
        s.setsockopt(zmq.RCVHWM, 100000)
        s.setsockopt(zmq.SUBSCRIBE, b"")
        s.connect(self.relay_out)
        while not self.stop.is_set():
            if s.poll(100):
                parts = s.recv_multipart()
                sink.arrived(parts[-1])
        s.close(0)

    def tail_archive(self, sink):
        f, pos, buf = self.archive / "soak.jsonl", 0, b""
        while not self.stop.is_set():
            try:
                with open(f, "rb") as fh:
                    fh.seek(pos)
                    data = fh.read()
            except FileNotFoundError:
                data = b""
            pos += len(data)
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                sink.arrived(line)
            time.sleep(0.01)

    def recv_amqp(self, sink, queue):
        from proton.utils import BlockingConnection
        from proton import Timeout
        try:
            c = BlockingConnection("amqp://127.0.0.1:%d" % self.amqp_port,
                                   timeout=30, user="guest",
                                   password="guest", allowed_mechs="PLAIN")
            r = c.create_receiver(queue, credit=500)
            while not self.stop.is_set():
                try:
                    m = r.receive(timeout=0.2)
                except Timeout:
                    continue
                body = m.body
                if isinstance(body, memoryview):
                    body = body.tobytes()
                if isinstance(body, str):
                    body = body.encode()
                sink.arrived(bytes(body))
                r.accept()
            c.close()
        except Exception as e:      # reported with the results
            sink.error = "%s: %s" % (type(e).__name__, e)

    def recv_stomp(self, sink):
        import stomp

        class L(stomp.ConnectionListener):
            def on_message(self, frame):
                b = frame.body
                sink.arrived(b if isinstance(b, bytes) else b.encode())

            def on_error(self, frame):
                sink.error = "STOMP ERROR %r" % (frame.headers,)
        try:
            c = stomp.Connection12([("127.0.0.1", self.stomp_port)],
                                   heartbeats=(0, 0), auto_decode=False)
            c.set_listener("", L())
            c.connect(wait=True)
            c.subscribe("/queue/fedmsg-soak-stomp", id="soak", ack="auto")
            self.stop.wait()
            c.disconnect()
        except Exception as e:
            sink.error = "%s: %s" % (type(e).__name__, e)

    # ---- the run -----------------------------------------------------------
    def probe(self, pub):
        """Send probes until every sink has had one (slow joiners, the
        brokers' queues): probes carry no bench_seq, so they count by
        arrival in a side sink per place."""
        for k, s in self.sinks.items():
            s.probe_seen = False
            orig = s.arrived

            def arrived(body, s=s, orig=orig):
                if not SEQ.search(body):
                    s.probe_seen = True
                orig(body)
            s.arrived = arrived
        deadline = time.monotonic() + 120
        i = 0
        while not all(s.probe_seen for s in self.sinks.values()):
            self.check_alive()
            if time.monotonic() > deadline or i >= len(self.probes):
                raise RuntimeError("no probe reached %s" % ", ".join(
                    k for k, s in self.sinks.items() if not s.probe_seen))
            for s in self.sinks.values():
                if s.error:
                    raise RuntimeError("%s: %s" % (s.name, s.error))
            topic, body = self.probes[i]
            pub.send_multipart([topic, body])
            i += 1
            time.sleep(1)

    def check_alive(self):
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError("%s exited (%s); its log:\n%s" % (
                    name, p.returncode,
                    self.logs[name].read_text(errors="replace")[-2000:]))

    def run(self):
        import zmq
        for f in ("bin/fedmsg-relay", "bin/fedmsg-hub", "bin/fedmsg-bridge",
                  "bench/bench_zmq", "plugins/example.so",
                  "plugins/archive.so", "dev/shell-localhost.key"):
            if not (self.build / f).exists():
                log("%s is missing; run 'make soak'" % (self.build / f))
                return 2
        self.envelopes()
        with_brokers = self.start_brokers()
        self.start_daemons(with_brokers)
        self.zctx = zmq.Context()
        self.sinks = {"relay": Sink("relay"), "hub": Sink("hub")}
        if with_brokers:
            self.sinks["amqp"] = Sink("AMQP bridge")
            self.sinks["amqp091"] = Sink("0-9-1 bridge")
            self.sinks["stomp"] = Sink("STOMP bridge")
        self.thread(self.sub_relay, self.sinks["relay"])
        self.thread(self.tail_archive, self.sinks["hub"])
        if with_brokers:
            for k in ("amqp", "amqp091"):
                self.thread(self.recv_amqp, self.sinks[k],
                            "/queue/fedmsg-soak-" + k)
            self.thread(self.recv_stomp, self.sinks["stomp"])
        pub = self.zctx.socket(zmq.PUB)
        pub.setsockopt(zmq.SNDHWM, 100000)
        pub.connect(self.relay_in)
        self.probe(pub)

        log("%d messages at %g/s (%.1f min), %d daemons" % (
            self.n, self.rate, self.n / self.rate / 60, len(self.procs)))
        sent_at = [0.0] * self.n
        rss0 = {}
        self.rss_by_min = []     # VmRSS at the end of each full minute
        t0 = time.monotonic()
        next_check = t0 + 5
        for i, (topic, body) in enumerate(self.msgs[:self.n]):
            due = t0 + i / self.rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            sent_at[i] = time.monotonic()
            pub.send_multipart([topic, body])
            if not rss0 and sent_at[i] - t0 >= self.warmup:
                rss0 = {k: rss_kib(p.pid) for k, p in self.procs.items()}
            if sent_at[i] - t0 >= 60 * (len(self.rss_by_min) + 1):
                self.rss_by_min.append(
                    {k: rss_kib(p.pid) for k, p in self.procs.items()})
            if sent_at[i] >= next_check:
                self.check_alive()
                next_check += 5
                done = (i + 1) / self.rate
                if int(done) % 60 < 5:
                    log("%.0f s: sent %d; %s" % (done, i + 1, ", ".join(
                        "%s %d" % (k, s.count())
                        for k, s in self.sinks.items())))
        t_sent = time.monotonic()
        if not rss0:
            rss0 = {k: rss_kib(p.pid) for k, p in self.procs.items()}
        while time.monotonic() < t_sent + self.drain and any(
                s.count() < self.n for s in self.sinks.values()):
            time.sleep(0.2)
        t_drained = time.monotonic() - t_sent
        # The end RSS: after the drain, before anything is stopped.
        rss1 = {k: rss_kib(p.pid) for k, p in self.procs.items()}
        self.check_alive()
        self.stop.set()
        pub.close(0)
        self.report(sent_at, t0, rss0, rss1, t_drained, with_brokers)
        lost = sum(self.n - s.count() for s in self.sinks.values())
        errs = [s for s in self.sinks.values() if s.error]
        return 1 if lost or errs else 0

    def report(self, sent_at, t0, rss0, rss1, t_drained, with_brokers):
        lines = ["fedmsg-c soak, %s" % time.strftime("%Y-%m-%d %H:%M UTC",
                                                      time.gmtime()),
                 "  %d signed git.receive envelopes (about %d bytes) at "
                 "%g/s for %.1f min, through" % (
                     self.n, len(self.msgs[0][1]), self.rate,
                     self.n / self.rate / 60),
                 "  fedmsg-relay --validate into fedmsg-hub (validating; "
                 "example + archive consumers)" +
                 (",\n  fedmsg-bridge -> RabbitMQ (AMQP 1.0), -> RabbitMQ "
                  "(AMQP 0-9-1), -> ActiveMQ (STOMP),\n  spools on"
                  if with_brokers else " (bridges left out)"),
                 "  drained %.1f s after the last send; load average %s" % (
                     t_drained, " ".join(
                         Path("/proc/loadavg").read_text().split()[:3])),
                 "", "  memory (VmRSS, KiB; start: after %g s of traffic)" %
                 self.warmup,
                 "  %-22s %10s %10s %8s" % ("process", "start", "end",
                                            "growth")]
        for k in self.procs:
            a, b = rss0.get(k, -1), rss1.get(k, -1)
            g = "%+.1f %%" % (100.0 * (b - a) / a) if a > 0 and b > 0 else "-"
            lines.append("  %-22s %10d %10d %8s" % (k, a, b, g))
        if len(self.rss_by_min) > 1:
            # growth that goes on after warm-up shows here, minute by minute
            lines += ["", "  VmRSS at the end of each minute, KiB",
                      "  %-8s" % "minute" + "".join(
                          "%14s" % k.replace("fedmsg-", "")
                          for k in self.procs)]
            for mi, r in enumerate(self.rss_by_min):
                lines.append("  %-8d" % (mi + 1) + "".join(
                    "%14d" % r.get(k, -1) for k in self.procs))
        lines += ["", "  messages (goal: 0 lost)",
                  "  %-22s %8s %8s %8s %6s" % ("sink", "sent", "received",
                                               "lost", "dups")]
        for k, s in self.sinks.items():
            lines.append("  %-22s %8d %8d %8d %6d%s" % (
                s.name, self.n, s.count(), self.n - s.count(), s.dups,
                "  (%s)" % s.error if s.error else ""))
        minutes = max(1, int((sent_at[-1] - t0) // 60) + 1)
        lines += ["", "  p99 latency per minute of sending, ms (send -> "
                  "arrival; hub: archive line, 10 ms polls)",
                  "  %-8s" % "minute" + "".join(
                      "%14s" % s.name for s in self.sinks.values())]
        for mi in range(minutes):
            row = "  %-8d" % (mi + 1)
            for s in self.sinks.values():
                with s.lock:
                    lat = [1e3 * (s.first[i] - sent_at[i])
                           for i in range(self.n)
                           if int((sent_at[i] - t0) // 60) == mi
                           and i in s.first]
                p = pctl(lat, 0.99)
                row += "%14s" % ("-" if p is None else "%.2f" % p)
            lines.append(row)
        text = "\n".join(lines) + "\n"
        sys.stdout.write(text)
        (self.out / "soak.txt").write_text(text)
        log("written to %s" % (self.out / "soak.txt"))


def main():
    if len(sys.argv) != 2:
        print("usage: soak.py BUILD_DIR", file=sys.stderr)
        return 2
    s = Soak(sys.argv[1])
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    try:
        return s.run()
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        log("the run could not be made: %s" % e)
        return 2
    finally:
        s.cleanup()


if __name__ == "__main__":
    sys.exit(main())
