"""fedmsg-bridge fault cases not covered by test_bridge_amqp.py and
test_bridge_stomp.py:

  1. AMQP failover between two URLs (the first refused);
  2. an AMQP connection that goes silent without being closed (a TCP
     proxy that blackholes both directions): the idle timeout ("heartbeat")
     must notice it, and the spool must deliver what was sent meanwhile;
  3. a 50 MB message on either side (ZeroMQ subscriber limit
     max_message_bytes, AMQP receiver): refused with a clear log line (on
     AMQP before the whole message is buffered: 1 MiB frames), the bridge
     keeps running with bounded memory; and (3c) max_message_bytes raised
     above the 8 MiB default holds in both directions;
  4. ZeroMQ -> STOMP (ActiveMQ) with 5000 messages while the bridge is
     killed with SIGKILL twice (once busy, once during a blackhole of its
     path to the broker): every msg_id arrives;
  5. a STOMP ERROR frame mid-stream (a fake broker): logged, reconnected,
     the unreceipted messages sent again;
  6. a STOMP RECEIPT that never comes: the receipt timeout (the bridge's
     confirm_timeout key, 3 s here) fires;
  7. an AMQP peer that takes messages and never settles them (a listening
     python3-qpid-proton peer): confirm_timeout fires the same way.

Peers: RabbitMQ and ActiveMQ from conftest's broker fixtures, pyzmq
(conftest.BridgeSource / Sub), python3-qpid-proton, python3-stomp, and,
for 2, 5 and 6, small Python servers written here (a blackholing TCP proxy,
a scripted fake STOMP broker).
"""

import collections
import json
import os
import re
import selectors
import signal
import socket
import socketserver
import threading
import time

import pytest

from conftest import (AMQ_STOMP_PORT, RMQ_AMQP_PORT, BridgeSource,
                      ProtonListener, Sub, amqp_message, answer_link,
                      bridge_config, bridge_stats, canonical, free_ports,
                      make_envelope, start_bridge, tcp, unique, wait_until,
                      write_config)
from test_bridge_amqp import (from_amqp, non_probes as amqp_non_probes,
                              running_to_amqp, stop_bridge, sync_amqp,
                              sync_zmq, to_amqp)
from test_bridge_stomp import Target, to_stomp

pytestmark = pytest.mark.usefixtures("broker_time_limit")

MB = 1024 * 1024


def rss_kb(pid):
    """(VmRSS, VmHWM) of a process, in kB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out["VmRSS"], out["VmHWM"]


# ---- 1. AMQP failover --------------------------------------------------------

def test_amqp_failover_to_the_second_url(tmp_path, rabbitmq, daemons, zctx,
                                         amqp_peers):
    """"to": [a closed port, RabbitMQ]: the first URL is refused, the
    second is used, messages flow; the log names both attempts."""
    closed = free_ports(1)[0]           # nothing listens there
    prefix = "org.fedoraproject.dev." + unique("fo")
    src = BridgeSource(zctx)
    rcv = amqp_peers.receiver("/topic/%s.#" % prefix)
    urls = ["amqp://127.0.0.1:%d" % closed,
            "amqp://127.0.0.1:%d" % RMQ_AMQP_PORT]
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_amqp(tmp_path, src, to=urls)},
        endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)
    sync_amqp(src, rcv, prefix, bridge)
    sent = [make_envelope(prefix + ".x", {"n": i}) for i in range(10)]
    for env in sent:
        src.send(env)
    rcv.wait_messages(len(sent))
    got = [bytes(m.body) for m in amqp_non_probes(rcv)]
    assert got == [canonical(e).encode() for e in sent]
    err = bridge.stderr()
    refused = [line for line in err.splitlines()
               if "127.0.0.1:%d" % closed in line and "INSECURE" not in line]
    assert refused and re.search(r"(?i)refused", refused[0]), err
    assert "retrying in" in refused[0], err
    assert "connected to 127.0.0.1:%d" % RMQ_AMQP_PORT in err, err
    # the refused URL was tried first
    assert err.index(refused[0]) < \
        err.index("connected to 127.0.0.1:%d" % RMQ_AMQP_PORT)
    stop_bridge(bridge)


# ---- 2. AMQP idle timeout through a blackholing proxy --------------------------

class BlackholeProxy:
    """127.0.0.1:<port> -> upstream, one selector thread.  blackhole()
    stops forwarding in both directions (nothing is read any more, no
    socket is closed: to both ends the connection just goes silent, like
    a dead network path); heal() resumes, including what the kernel
    buffered meanwhile.  Connections accepted during a blackhole are held
    the same way."""

    def __init__(self, upstream_port, host="127.0.0.1"):
        self.upstream = ("127.0.0.1", upstream_port)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, 0))      # host: where the bridge reaches it
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.peer = {}                  # socket -> the other end
        self.clients = set()            # the accepted ends
        self.accepted = 0
        self.forwarded = 0              # bytes
        self.want_hole = False
        self.want_cut = False
        self.holed = False
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def blackhole(self):
        self.want_hole = True

    def heal(self):
        self.want_hole = False

    def cut(self):
        """Close every connection, dropping what a blackhole held (a
        broker that restarted); new connections are accepted as before."""
        self.want_cut = True

    def _pair_socks(self):
        return list(self.peer)

    def _set_hole(self, on):
        for s in self._pair_socks():
            try:
                if on:
                    self.sel.unregister(s)
                else:
                    self.sel.register(s, selectors.EVENT_READ, "pair")
            except (KeyError, ValueError):
                pass
        self.holed = on

    def _drop(self, s):
        for x in (s, self.peer.get(s)):
            if x is None:
                continue
            try:
                self.sel.unregister(x)
            except (KeyError, ValueError):
                pass
            self.peer.pop(x, None)
            self.clients.discard(x)
            x.close()

    def _run(self):
        while not self.stop:
            if self.want_cut:
                for s in list(self.peer):
                    self._drop(s)
                self.want_cut = False
            if self.want_hole != self.holed:
                self._set_hole(self.want_hole)
            for key, _ in self.sel.select(0.02):
                s = key.fileobj
                if s is self.lsock:
                    c, _ = self.lsock.accept()
                    self.accepted += 1
                    self.clients.add(c)
                    u = socket.create_connection(self.upstream, 5)
                    self.peer[c], self.peer[u] = u, c
                    if not self.holed:
                        self.sel.register(c, selectors.EVENT_READ, "pair")
                        self.sel.register(u, selectors.EVENT_READ, "pair")
                    continue
                if s not in self.peer:
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self._drop(s)
                    continue
                try:
                    self.peer[s].sendall(data)
                    self.forwarded += len(data)
                except OSError:
                    self._drop(s)

    def held(self):
        """What clients sent that a blackhole keeps unread (peeked: it is
        still forwarded on heal)."""
        out = b""
        for c in list(self.clients):
            try:
                out += c.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except OSError:
                pass
        return out

    def close(self):
        self.stop = True
        self.t.join(5)
        for s in list(self.peer):
            self._drop(s)
        self.lsock.close()


@pytest.fixture
def proxy():
    made = []

    def make(port, host="127.0.0.1"):
        p = BlackholeProxy(port, host)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


@pytest.mark.broker_limit(90)
def test_amqp_blackholed_connection_idle_timeout(tmp_path, rabbitmq,
                                                 daemons, zctx, amqp_peers,
                                                 proxy):
    """With "heartbeat": 2 the bridge's idle timeout is 2 s.  The path to
    RabbitMQ goes silent (no FIN, no RST): the bridge must call the
    connection dead within a few heartbeats, keep spooling, reconnect once
    the path is back, and deliver every message sent during the outage
    (duplicates allowed: what was in flight on the dead connection may
    reach RabbitMQ late, when the held bytes are forwarded on heal)."""
    hb = 2
    prefix = "org.fedoraproject.dev." + unique("bh")
    src = BridgeSource(zctx)
    px = proxy(RMQ_AMQP_PORT)
    rcv = amqp_peers.receiver("/topic/%s.#" % prefix, credit=1000)
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_amqp(tmp_path, src, to="amqp://127.0.0.1:%d" % px.port,
                        heartbeat=hb)},
        endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)
    sync_amqp(src, rcv, prefix, bridge)

    def received_ids():
        rcv.pump(0.05)
        return [json.loads(bytes(m.body))["msg_id"]
                for m in amqp_non_probes(rcv)]

    before = [make_envelope(prefix + ".before", {"n": i}) for i in range(20)]
    for env in before:
        src.send(env)
    bridge.wait_for(lambda: set(e["msg_id"] for e in before) <=
                    set(received_ids()), 15, "the first 20 messages")
    # idle for 3 heartbeats on a healthy path: the timeout must not fire
    time.sleep(3 * hb)
    received_ids()
    assert "connection lost" not in bridge.stderr(), \
        "the idle timeout fired on a healthy connection:\n" + \
        bridge.describe()

    accepted_before = px.accepted
    px.blackhole()
    bridge.wait_for(lambda: px.holed, 5, "the blackhole")
    t_hole = time.monotonic()
    during = [make_envelope(prefix + ".during", {"n": i}) for i in range(30)]
    # sent to the bridge while its connection dies: the link is silent
    # (no credit or flow comes back through the hole), so they wait in the
    # bridge's spool rather than on the wire (a look into the hole showed
    # only a few hundred bytes of frames, no transfer)
    for env in during[:15]:
        src.send(env)
    bridge.wait_stderr("connection lost", 4 * hb + 2)
    t_lost = time.monotonic() - t_hole
    lost = [line for line in bridge.stderr().splitlines()
            if "connection lost" in line]
    print("connection declared lost %.1f s into the blackhole: %s"
          % (t_lost, lost[0]))
    assert re.search(r"(?i)idle", lost[0]), lost
    for env in during[15:]:         # only the spool has these
        src.send(env)
    bridge.wait_for(lambda: px.accepted > accepted_before, 10,
                    "a reconnect attempt into the hole")
    assert bridge.running(), bridge.describe()
    accepted_in_hole = px.accepted
    px.heal()
    t_heal = time.monotonic()
    want = {e["msg_id"] for e in during}
    bridge.wait_for(lambda: want <= set(received_ids()), 40,
                    "every message sent during the blackhole")
    print("all delivered %.1f s after the heal; proxy connections %d "
          "(%d before the heal)" % (time.monotonic() - t_heal, px.accepted,
                                    accepted_in_hole))
    ids = received_ids()
    count = collections.Counter(ids)
    dups = {i: k for i, k in count.items() if k > 1}
    print("received %d, distinct %d, duplicates %d" % (
        len(ids), len(count), sum(dups.values()) - len(dups)))
    assert set(ids) == {e["msg_id"] for e in before + during}
    err = bridge.stderr()
    assert err.count("connected to 127.0.0.1:%d" % px.port) >= 2, err
    stop_bridge(bridge)


# ---- 3. a 50 MB message ----------------------------------------------------------

BIG = 50 * 1000 * 1000
RSS_LIMIT_KB = 300 * 1024


def big_envelope(topic, size=BIG):
    env = make_envelope(topic, {"blob": ""})
    pad = size - len(canonical(env))
    env["msg"]["blob"] = "x" * pad
    return env


@pytest.mark.broker_limit(90)
def test_zmq_side_50mb_message_dropped(tmp_path, rabbitmq, daemons, zctx,
                                       amqp_peers):
    """A 50 MB envelope into a ZeroMQ -> AMQP bridge is dropped by its
    ZeroMQ subscriber (max_message_bytes, 8 MiB by default: libzmq drops
    the connection unread, and the bridge connects again) with a log
    line; the bridge keeps running and the next message passes."""
    prefix = "org.fedoraproject.dev." + unique("big")
    src, rcv, bridge = running_to_amqp(tmp_path, daemons, zctx, amqp_peers,
                                       prefix)

    big = big_envelope(prefix + ".big")
    body = canonical(big).encode()
    assert len(body) == BIG
    src.send([big["topic"].encode(), body])
    # libzmq refuses the frame unread (ZMQ_MAXMSGSIZE) and drops the
    # connection; the bridge logs it and connects again
    bridge.wait_stderr("connection lost", 30)
    line = [x for x in bridge.stderr().splitlines()
            if "connection lost" in x][0]
    print(line)
    assert src.url in line and "max_message_bytes = 8388608" in line
    src.wait_subscriber(daemon=bridge)          # connected again
    small = make_envelope(prefix + ".small", {"n": 1})
    src.send(small)
    n0 = len(rcv.msgs)
    rcv.wait_count(n0 + 1, 15)
    got = [bytes(m.body) for m in amqp_non_probes(rcv)]
    assert got == [canonical(small).encode()]
    rss, hwm = rss_kb(bridge.pid)
    print("bridge VmRSS %d MB, VmHWM %d MB" % (rss // 1024, hwm // 1024))
    assert rss < RSS_LIMIT_KB, (rss, hwm)
    assert bridge.running()
    st = bridge_stats(stop_bridge(bridge), "out")
    assert st["dropped"] == 0 and st["out"] == st["in"]


def amqp_in_bridge(tmp_path, daemons, zctx, amqp_peers, env=None, **extra):
    """An AMQP -> ZeroMQ bridge "in" on a fresh /queue/, started with
    env, and synchronised: (bridge, sender, sub, probes, queue)."""
    q = "/queue/" + unique("big")
    port = free_ports(1)[0]
    cfg = write_config(tmp_path, bridge_config(
        {"in": from_amqp(tmp_path, q, port)}, **extra))
    bridge = daemons("fedmsg-bridge", ["--config", cfg], config=cfg,
                     env=env)
    bridge.wait_stderr("broker connected", 20)
    snd = amqp_peers.sender(q)
    sub = Sub(zctx, tcp(port))
    probes = sync_zmq(snd, sub, bridge)
    return bridge, snd, sub, probes, q


def send_big(snd, env):
    snd.snd.send(amqp_message(canonical(env), msg_id=env["msg_id"]),
                 timeout=60)


TOO_BIG_RE = re.compile(r"(?i)too large|refus|larger")


@pytest.mark.broker_limit(90)
def test_amqp_side_50mb_message_rejected(tmp_path, rabbitmq, daemons, zctx,
                                         amqp_peers):
    """A 50 MB AMQP message in an AMQP -> ZeroMQ bridge's queue is
    rejected (not redelivered) with a clear log line; the bridge keeps
    running and the next message passes.  (Memory: the next test.)"""
    bridge, snd, sub, probes, q = amqp_in_bridge(tmp_path, daemons, zctx,
                                                 amqp_peers)
    send_big(snd, big_envelope("org.fedoraproject.dev.%s.big" %
                               unique("b")))
    bridge.wait_for(lambda: TOO_BIG_RE.search(bridge.stderr()), 60,
                    "a log line about the big message")
    line = [x for x in bridge.stderr().splitlines() if TOO_BIG_RE.search(x)]
    print(line[0])
    # refused as soon as it exceeds the limit, before all of it arrived:
    # the line names the limit
    assert "8388608" in line[0] and "max_message_bytes" in line[0]
    small = make_envelope("org.fedoraproject.dev.small", {"n": 1})
    snd.send(canonical(small))
    end = probes.make("end")
    snd.send(canonical(end))
    sub.wait_probe(end["msg_id"], 30)
    assert sub.msgs == [[small["topic"].encode(), canonical(small).encode()]]
    rss, hwm = rss_kb(bridge.pid)
    print("bridge VmRSS %d MB, VmHWM %d MB (ASan)" % (rss // 1024,
                                                     hwm // 1024))
    assert bridge.running()
    # rejected, not requeued: the queue empties, and it came only once
    qname = q[len("/queue/"):]
    bridge.wait_for(lambda: rabbitmq.queues().get(qname, (0, 0, 0))[:2] ==
                    (0, 0), 10, "queue %s empty" % qname)
    assert len([x for x in bridge.stderr().splitlines()
                if TOO_BIG_RE.search(x)]) == 1, bridge.describe()
    st = bridge_stats(stop_bridge(bridge), "in")
    assert st["out"] == 1 + len(probes.sent), st


@pytest.mark.broker_limit(90)
def test_amqp_side_50mb_message_memory(tmp_path, rabbitmq, daemons, zctx,
                                       amqp_peers):
    """After rejecting a 50 MB AMQP message the bridge must not keep
    several copies of it.  ASan's quarantine (freed blocks kept, 256 MB by
    default) is turned off for this bridge so that VmRSS counts live
    memory; bound: less than two copies of growth, under 300 MB."""
    opts = ":".join(x for x in (os.environ.get("ASAN_OPTIONS"),
                                "quarantine_size_mb=0") if x)
    bridge, snd, sub, probes, q = amqp_in_bridge(
        tmp_path, daemons, zctx, amqp_peers, env={"ASAN_OPTIONS": opts})
    rss0, _ = rss_kb(bridge.pid)
    send_big(snd, big_envelope("org.fedoraproject.dev.%s.big" %
                               unique("b")))
    bridge.wait_for(lambda: TOO_BIG_RE.search(bridge.stderr()), 60,
                    "a log line about the big message")
    end = probes.make("end")
    snd.send(canonical(end))
    sub.wait_probe(end["msg_id"], 30)
    rss, hwm = rss_kb(bridge.pid)
    print("bridge VmRSS %d MB (%d MB before the big message), VmHWM %d MB"
          % (rss // 1024, rss0 // 1024, hwm // 1024))
    assert rss < RSS_LIMIT_KB, (rss, hwm)
    assert rss - rss0 < 2 * BIG // 1024, (rss0, rss)


# ---- 3c. max_message_bytes above the 8 MiB default ------------------------------

@pytest.mark.broker_limit(60)
def test_zmq_to_amqp_raised_max_message_bytes(tmp_path, rabbitmq, daemons,
                                              zctx, amqp_peers):
    prefix = "org.fedoraproject.dev." + unique("lim")
    src = BridgeSource(zctx)
    rcv = amqp_peers.receiver("/topic/%s.#" % prefix)
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_amqp(tmp_path, src)}, endpoints={"src": [src.url]},
        max_message_bytes=16 * MB))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)
    sync_amqp(src, rcv, prefix, bridge)
    env = big_envelope(prefix + ".ten", 10 * MB)
    src.send(env)
    def arrived_or_lost():
        rcv.pump(0.1)
        return amqp_non_probes(rcv) or "spool record" in bridge.stderr()
    bridge.wait_for(arrived_or_lost, 20, "the 10 MB message or its loss")
    rcv.quiet(0.5)
    got = [bytes(m.body) for m in amqp_non_probes(rcv)]
    st = bridge_stats(stop_bridge(bridge), "out")
    print(st)
    assert got == [canonical(env).encode()]


@pytest.mark.broker_limit(60)
def test_amqp_to_zmq_raised_max_message_bytes(tmp_path, rabbitmq, daemons,
                                              zctx, amqp_peers):
    bridge, snd, sub, probes, q = amqp_in_bridge(
        tmp_path, daemons, zctx, amqp_peers, max_message_bytes=16 * MB)
    env = big_envelope("org.fedoraproject.dev.%s.ten" % unique("l"),
                       10 * MB)
    snd.send(canonical(env))
    end = probes.make("end")
    snd.send(canonical(end))
    sub.wait_probe(end["msg_id"], 30)
    st = bridge_stats(stop_bridge(bridge), "in")
    print(st)
    assert sub.msgs == [[env["topic"].encode(), canonical(env).encode()]]


# ---- 4. STOMP (ActiveMQ): 5000 messages, SIGKILL twice ------------------------------

class AckingReceiver:
    """A stomp.py STOMP 1.2 consumer with client-individual acks: every
    MESSAGE is acknowledged after it was recorded (msg_ids in order)."""

    def __init__(self, port, destination, prefetch=1000):
        import stomp

        self.ids = []
        self.lock = threading.Lock()
        self.receipts = set()
        self.errors = []
        conn = self.conn = stomp.Connection12(
            [("127.0.0.1", port)], heartbeats=(0, 0), auto_decode=False)
        me = self

        class L(stomp.ConnectionListener):
            def on_message(self, frame):
                mid = json.loads(frame.body)["msg_id"]
                with me.lock:
                    me.ids.append(mid)
                conn.ack(frame.headers["ack"])

            def on_receipt(self, frame):
                me.receipts.add(frame.headers.get("receipt-id"))

            def on_error(self, frame):
                me.errors.append((frame.headers, frame.body))

        conn.set_listener("", L())
        conn.connect(wait=True)
        conn.subscribe(destination=destination, id="r1",
                       ack="client-individual", receipt="sub-r1",
                       headers={"activemq.prefetchSize": str(prefetch)})
        deadline = time.monotonic() + 10
        while "sub-r1" not in self.receipts:
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, "no RECEIPT for SUBSCRIBE"
            time.sleep(0.01)

    def got(self):
        with self.lock:
            return list(self.ids)

    def close(self):
        try:
            self.conn.disconnect()
        except Exception:  # noqa: BLE001
            pass


@pytest.mark.broker_limit(150)
def test_stomp_flow_with_two_sigkills(tmp_path, activemq, daemons, zctx,
                                      proxy):
    """5000 messages ZeroMQ -> ActiveMQ /queue/<unique> over STOMP while
    the bridge is killed with SIGKILL twice and restarted on the same
    spool: every msg_id reaches a stomp.py consumer (client-individual
    acks).  The bridge reaches ActiveMQ through a BlackholeProxy.

    Kill 1 comes while the bridge is busy: right after the consumer got
    the last message of a 1500-message burst, with RECEIPTs on their way
    back.  Kill 2 comes during a network blackhole (the path to ActiveMQ
    silent, not closed), 0.5 s after a burst of 1000 was published: that
    burst is in the spool, part of it sent on the silent connection and
    unreceipted; the restarted bridge connects into the hole, and the path
    is healed once it is running.

    Duplicates are expected, counted and printed: delivery is at least
    once.  A record leaves the spool only when its RECEIPT came back, and
    the acknowledged watermark reaches the disk lazily (every ~100 ms,
    spool.h), so the restarted bridge sends again (a) every SEND that was
    on the wire or waiting for its RECEIPT at the kill (after kill 1,
    ActiveMQ had queued them already; after kill 2, the proxy forwards the
    dead bridge's SENDs held in the kernel buffers on heal, so ActiveMQ
    gets those twice), and (b) records receipted in the last ~100 ms
    before the kill.

    ZeroMQ PUB/SUB has no acknowledgement: the spool's promise starts
    when the bridge has taken a message from its socket, so before each
    kill the test makes sure everything published was taken (kill 1: the
    burst's last message arrived, and the spool is in order; kill 2: a
    0.5 s pause, as in test_bridge_amqp's kill -9 test), and it waits for
    the restarted bridge's subscription before publishing again
    (BridgeSource)."""
    t = Target("activemq", activemq)
    q = "/queue/" + unique("kill")
    src = BridgeSource(zctx)
    px = proxy(AMQ_STOMP_PORT)
    spool = tmp_path / "spool"
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_stomp(tmp_path, t, address=q,
                         to="stomp://127.0.0.1:%d" % px.port,
                         spool={"dir": str(spool)})},
        endpoints={"src": [src.url]}))
    rcv = AckingReceiver(AMQ_STOMP_PORT, q)
    try:
        sent = [make_envelope("org.fedoraproject.dev.skill.x", {"n": i})
                for i in range(5000)]
        bridge = start_bridge(daemons, cfg)
        src.wait_subscriber(daemon=bridge)
        kills = 0

        def restart(wait="broker connected"):
            nonlocal bridge, kills
            bridge.proc.send_signal(signal.SIGKILL)
            bridge.proc.wait(10)
            kills += 1
            bridge = start_bridge(daemons, cfg, wait=wait)
            src.wait_subscriber(daemon=bridge)

        def publish(envs):
            for k, env in enumerate(envs):
                src.send(env)
                if k % 100 == 99:
                    time.sleep(0.02)    # stay under the ZeroMQ HWMs

        publish(sent[:1500])
        last = sent[1499]["msg_id"]
        deadline = time.monotonic() + 60
        while last not in set(rcv.got()):
            assert time.monotonic() < deadline, "burst 1 not delivered: " \
                "%d received\n%s" % (len(set(rcv.got())), bridge.describe())
            time.sleep(0.005)
        restart()                                   # kill 1: busy
        publish(sent[1500:3000])
        time.sleep(0.2)
        px.blackhole()
        wait_until(lambda: px.holed, 5, "the blackhole", bridge)
        publish(sent[3000:4000])
        # killed with messages in flight: sent and unreceipted (the window
        # may be full of SENDs from before the hole, then the hole holds
        # none of the new ones), asserted below as n_at_kill < 4000
        # ZeroMQ has no acknowledgement: kill only once the bridge took
        # everything published, i.e. the last message is in its spool
        last = sent[3999]["msg_id"].encode()
        wait_until(lambda: any(last in p.read_bytes()
                               for p in spool.iterdir() if p.is_file()),
                   20, "the last message of the burst in the spool", bridge)
        n_at_kill = len(set(rcv.got()))
        restart(wait=None)                          # kill 2: blackhole
        print("kill 2 with %d of 4000 distinct received" % n_at_kill)
        assert n_at_kill < 4000
        publish(sent[4000:])
        time.sleep(0.5)
        px.heal()
        want = {e["msg_id"] for e in sent}
        deadline = time.monotonic() + 60
        while not want <= set(rcv.got()) and time.monotonic() < deadline:
            assert bridge.running(), bridge.describe()
            time.sleep(0.1)
        ids = rcv.got()
    finally:
        rcv.close()
    assert kills == 2
    missing = want - set(ids)
    count = collections.Counter(ids)
    dups = len(ids) - len(count)
    num = {e["msg_id"]: e["msg"]["n"] for e in sent}
    print("received %d, distinct %d, duplicates %d, missing %d" % (
        len(ids), len(count), dups, len(missing)))
    if dups:
        again = sorted(num[i] for i, k in count.items() if k > 1)
        for lo, hi, what in ((0, 1500, "kill 1"), (1500, 5000, "kill 2")):
            part = [n for n in again if lo <= n < hi]
            if part:
                print("%s: %d sent again, n = %d..%d" % (
                    what, len(part), part[0], part[-1]))
    assert not missing, "%d msg_ids never arrived (n = %s...)\n%s" % (
        len(missing), sorted(num[i] for i in missing)[:10],
        bridge.describe())
    assert set(ids) <= want
    assert not rcv.errors, rcv.errors
    assert bridge.running(), bridge.describe()
    stop_bridge(bridge)


# ---- 5, 6. a scripted fake STOMP broker ------------------------------------------

def stomp_unescape(v):
    out, i = [], 0
    table = {"n": "\n", "r": "\r", "c": ":", "\\": "\\"}
    while i < len(v):
        if v[i] == "\\" and i + 1 < len(v):
            out.append(table.get(v[i + 1], v[i + 1]))
            i += 2
        else:
            out.append(v[i])
            i += 1
    return "".join(out)


def stomp_frame(command, headers=(), body=b""):
    h = "".join("%s:%s\n" % (k, v) for k, v in headers)
    if body:
        h += "content-length:%d\n" % len(body)
    return ("%s\n%s\n" % (command, h)).encode() + body + b"\0"


class FakeStompBroker:
    """A STOMP 1.2 server on 127.0.0.1 whose behaviour per connection is
    scripted: script(conn_no, frame_no_of_SEND, headers) returns
    "receipt" (the default), "silent" (no RECEIPT for that SEND), or
    "error" (an ERROR frame answering it, then close).  Every frame it got
    is recorded as (connection number, command, headers, body)."""

    def __init__(self, script):
        self.script = script
        self.frames = []
        self.lock = threading.Lock()
        self.conns = 0
        me = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                with me.lock:
                    me.conns += 1
                    cno = me.conns
                me.serve(self.request, cno)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever,
                                  kwargs={"poll_interval": 0.05},
                                  daemon=True)
        self.t.start()

    @staticmethod
    def _frames(sock):
        """Yield (command, headers dict, body bytes) until EOF."""
        buf = b""
        while True:
            while True:
                buf = buf.lstrip(b"\r\n")           # heart-beats
                end = buf.find(b"\n\n")
                crlf = buf.find(b"\r\n\r\n")
                if crlf >= 0 and (end < 0 or crlf < end):
                    hlen, sep = crlf, 4
                elif end >= 0:
                    hlen, sep = end, 2
                else:
                    break
                lines = buf[:hlen].decode("utf-8").replace(
                    "\r\n", "\n").split("\n")
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers.setdefault(stomp_unescape(k), stomp_unescape(v))
                start = hlen + sep
                if "content-length" in headers:
                    n = int(headers["content-length"])
                    if len(buf) < start + n + 1:
                        break
                    body, rest = buf[start:start + n], buf[start + n + 1:]
                else:
                    z = buf.find(b"\0", start)
                    if z < 0:
                        break
                    body, rest = buf[start:z], buf[z + 1:]
                buf = rest
                yield lines[0], headers, body
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data

    def serve(self, sock, cno):
        nsend = 0
        for command, headers, body in self._frames(sock):
            with self.lock:
                self.frames.append((cno, command, headers, body))
            if command in ("CONNECT", "STOMP"):
                sock.sendall(stomp_frame("CONNECTED", [
                    ("version", "1.2"), ("heart-beat", "0,0"),
                    ("server", "fake-stomp/1.0"), ("session", str(cno))]))
            elif command == "SEND":
                nsend += 1
                what = self.script(cno, nsend, headers)
                rid = headers.get("receipt")
                if what == "error":
                    sock.sendall(stomp_frame("ERROR", [
                        ("message", "simulated broker failure"),
                        ("receipt-id", rid or ""),
                        ("content-type", "text/plain")],
                        b"fake broker: out of resources for SEND %d\n"
                        b"second line\n" % nsend))
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
                    return
                if what != "silent" and rid:
                    sock.sendall(stomp_frame("RECEIPT",
                                             [("receipt-id", rid)]))
            elif "receipt" in headers:
                sock.sendall(stomp_frame("RECEIPT", [
                    ("receipt-id", headers["receipt"])]))

    def sends(self, cno=None):
        """[(connection no, msg_id)] of the SENDs, in arrival order."""
        with self.lock:
            return [(c, h.get("fedmsg_msg_id")) for c, cmd, h, _ in
                    self.frames if cmd == "SEND" and
                    (cno is None or c == cno)]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def fake_stomp():
    made = []

    def make(script):
        b = FakeStompBroker(script)
        made.append(b)
        return b
    yield make
    for b in made:
        b.close()


def fake_bridge(tmp_path, port, src, **kw):
    b = {"from": "zmq", "to": "stomp://127.0.0.1:%d" % port,
         "endpoints": ["src"], "address": "/queue/fake",
         "spool": {"dir": str(tmp_path / "spool")}}
    b.update(kw)
    return write_config(tmp_path, bridge_config({"out": b},
                                                endpoints={"src": [src.url]}))


def test_stomp_error_frame_mid_stream(tmp_path, daemons, zctx, fake_stomp):
    """The fake broker receipts the first 3 SENDs of its first connection
    and answers the 4th with an ERROR frame, then closes.  The bridge
    logs the ERROR's text, reconnects (the fake is normal the second
    time) and sends again everything not receipted: the 4th and whatever
    followed it on the first connection."""
    fake = fake_stomp(lambda cno, n, h: "error" if cno == 1 and n == 4
                      else "receipt")
    src = BridgeSource(zctx)
    bridge = start_bridge(daemons, fake_bridge(tmp_path, fake.port, src))
    src.wait_subscriber(daemon=bridge)
    sent = [make_envelope("org.fedoraproject.dev.err.x", {"n": i})
            for i in range(10)]
    for env in sent:
        src.send(env)
    want = [e["msg_id"] for e in sent]
    bridge.wait_for(lambda: set(want[3:]) <= {m for c, m in fake.sends(2)},
                    15,
                    "the unreceipted messages on the second connection")
    # a marker: anything sent again would come before it (in order)
    mark = make_envelope("org.fedoraproject.dev.err.mark", {})
    src.send(mark)
    bridge.wait_for(lambda: mark["msg_id"] in {m for c, m in fake.sends(2)},
                    15, "the marker on the second connection")
    err = bridge.stderr()
    lines = [x for x in err.splitlines() if "simulated broker failure" in x]
    assert lines, err
    print(lines[0])
    assert "out of resources for SEND 4" in lines[0]      # the body's text
    assert "second line" not in err                       # its first line
    assert err.count("broker connected") >= 2, err
    first = [m for c, m in fake.sends(1)]
    second = [m for c, m in fake.sends(2)]
    print("connection 1: %d SENDs, connection 2: %d SENDs" % (
        len(first), len(second)))
    assert first[:4] == want[:4]
    # receipted on connection 1: never sent again
    assert not set(want[:3]) & set(second), second
    # the rest: sent again, in order, once each
    assert second == want[3:] + [mark["msg_id"]], second
    assert fake.conns == 2
    assert bridge.running()
    st = bridge_stats(stop_bridge(bridge), "out")
    # (the marker's RECEIPT may still be on its way at the stop)
    assert len(sent) <= st["out"] <= len(sent) + 1, st
    assert st["retried"] >= 1, st


RECEIPT_TIMEOUT_S = 3       # the bridge's confirm_timeout (default 30)


@pytest.mark.broker_limit(RECEIPT_TIMEOUT_S + 30)
def test_stomp_receipt_never_comes(tmp_path, daemons, zctx, fake_stomp):
    """The fake broker never answers the 2nd SEND of its first
    connection (it receipts all others).  After the bridge's
    confirm_timeout the bridge gives the connection up, reconnects and
    sends that message again - and only that one: the others were
    receipted."""
    fake = fake_stomp(lambda cno, n, h: "silent" if cno == 1 and n == 2
                      else "receipt")
    src = BridgeSource(zctx)
    bridge = start_bridge(daemons, fake_bridge(
        tmp_path, fake.port, src, confirm_timeout=RECEIPT_TIMEOUT_S))
    src.wait_subscriber(daemon=bridge)
    sent = [make_envelope("org.fedoraproject.dev.norcpt.x", {"n": i})
            for i in range(5)]
    for env in sent:
        src.send(env)
    want = [e["msg_id"] for e in sent]
    bridge.wait_for(lambda: [m for c, m in fake.sends(1)] == want, 10,
                    "5 SENDs on the first connection")
    t0 = time.monotonic()
    bridge.wait_for(lambda: fake.sends(2), 15, "a second connection")
    waited = time.monotonic() - t0
    mark = make_envelope("org.fedoraproject.dev.norcpt.mark", {})
    src.send(mark)
    bridge.wait_for(lambda: mark["msg_id"] in {m for c, m in fake.sends(2)},
                    15, "a marker on the second connection")
    err = bridge.stderr()
    print("resent after %.1f s" % waited)
    lines = [x for x in err.splitlines() if "no RECEIPT" in x]
    assert lines, err
    print(lines[0])
    # the configured timeout, not the default
    assert "within %d ms" % (RECEIPT_TIMEOUT_S * 1000) in lines[0]
    assert [m for c, m in fake.sends(2)] == [want[1], mark["msg_id"]]
    assert bridge.running()
    st = bridge_stats(stop_bridge(bridge), "out")
    assert len(sent) <= st["out"] <= len(sent) + 1, st     # (the marker)



# ---- 7. an AMQP peer that never settles ----------------------------------------

class NeverSettleFirst:
    """A receiving AMQP peer: on its first connection it takes every
    message and never settles one (while proton answers heart-beats, so
    the connection looks alive); later connections accept."""

    def __init__(self):
        from proton.handlers import MessagingHandler

        peer = self
        self.lock = threading.Lock()
        self.got = []                   # (connection number, msg_id)
        self.nconns = 0

        class Handler(MessagingHandler):
            def __init__(self):
                super().__init__(auto_accept=False)

            on_link_opening = staticmethod(answer_link)

            def on_connection_opening(self, event):
                # (proton keeps attributes set on its wrapper objects)
                with peer.lock:
                    peer.nconns += 1
                    event.connection.cno = peer.nconns

            def on_message(self, event):
                cno = event.connection.cno
                msg_id = json.loads(bytes(event.message.body))["msg_id"]
                with peer.lock:
                    peer.got.append((cno, msg_id))
                if cno > 1:
                    self.accept(event.delivery)

        self.handler = Handler()

    def ids(self, cno):
        with self.lock:
            return [m for c, m in self.got if c == cno]


CONFIRM_TIMEOUT_S = 2


def test_amqp_peer_that_never_settles(tmp_path, daemons, zctx):
    """After confirm_timeout without a settlement the bridge gives the
    connection up, reconnects and sends the unsettled messages again, in
    order; the second connection accepts them, and nothing is lost."""
    peer = NeverSettleFirst()
    listener = ProtonListener(free_ports(1)[0], peer.handler)
    try:
        src = BridgeSource(zctx)
        cfg = write_config(tmp_path, bridge_config(
            {"out": {"from": "zmq", "to": "amqp://127.0.0.1:%d" %
                     listener.port, "endpoints": ["src"],
                     "address": "/queue/never",
                     "confirm_timeout": CONFIRM_TIMEOUT_S,
                     "spool": {"dir": str(tmp_path / "spool")}}},
            endpoints={"src": [src.url]}))
        bridge = start_bridge(daemons, cfg)
        src.wait_subscriber(daemon=bridge)
        sent = [make_envelope("org.fedoraproject.dev.never.x", {"n": i})
                for i in range(5)]
        for env in sent:
            src.send(env)
        want = [e["msg_id"] for e in sent]
        bridge.wait_for(lambda: peer.ids(2) == want, 15,
                        "the 5 messages again on a second connection "
                        "(peer: %s)" % listener.error)
        assert peer.ids(1) == want
        err = bridge.stderr()
        print([x for x in err.splitlines() if "confirm_timeout" in x])
        assert "5 sends and no settlement for %d ms (confirm_timeout)" % (
            CONFIRM_TIMEOUT_S * 1000) in err, err
        st = bridge_stats(stop_bridge(bridge), "out")
        # "out" counts settlements the bridge had processed when it
        # stopped (a stop does not wait for the last ones): the peer's
        # count above is the delivery check
        assert st["in"] == len(sent) and st["out"] <= len(sent), st
    finally:
        listener.stop()
