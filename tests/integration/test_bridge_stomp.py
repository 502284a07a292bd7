"""fedmsg-bridge between ZeroMQ and real STOMP brokers: ActiveMQ 5.17 (the
UMB-style broker: STOMP, STOMP+TLS with client certificates required,
and without) and RabbitMQ 3.10's STOMP plugin (vhost "/"), on the
session's ports (conftest's AMQ_* / RMQ_* constants), both started once
per session by conftest's fixtures through
tests/brokers/broker.sh.  The STOMP peers are python3-stomp
(conftest.StompPeer); the ZeroMQ side is pyzmq, as in test_bridge_amqp.py.

What the STOMP link (brokers/stomp_link.c) puts on the wire: SEND with
content-type application/json;charset=utf-8, persistent:true, a receipt
(the broker's "accepted"), the header fedmsg_msg_id = msg_id, and the
application properties of the AMQP link as headers (topic,
fedmsg_c_bridge, the msg's top-level scalars).  It receives with
client-individual acks and a prefetch window; the topic of a received
message comes from original-destination (ActiveMQ virtual topics), else
destination.
"""

import json
import re
import time

import pytest

from conftest import (AMQ_STOMP_PORT, AMQ_STOMPS_NOAUTH_PORT, AMQ_STOMPS_PORT,
                      HOST, RMQ_STOMP_PORT, VECTORS, VECTOR_CA, VECTOR_CRL,
                      BridgeSource, Probes,
                      Sub, bridge_config, bridge_stats, canonical, fast_sign,
                      free_ports, make_envelope, password_file,
                      start_bridge, tcp, unique, valid_by_default,
                      vector_validation, wait_until, write_config)

pytestmark = pytest.mark.usefixtures("broker_time_limit")

BREW_MAP = {"VirtualTopic.eng.brew.": "org.fedoraproject.prod.buildsys."}


class Target:
    """How to reach one STOMP broker."""

    def __init__(self, kind, broker):
        self.kind = kind
        self.broker = broker
        if kind == "activemq":
            self.port = AMQ_STOMP_PORT
            self.url = "stomp://127.0.0.1:%d" % self.port
            self.creds = {}                 # anonymous
            self.peer_kw = {}
            self.wild = ">"                 # ActiveMQ: the rest
        else:
            self.port = RMQ_STOMP_PORT
            self.url = "stomp://127.0.0.1:%d" % self.port
            self.creds = {"user": "guest", "vhost": "/"}
            self.peer_kw = {"vhost": "/", "user": "guest",
                            "password": "guest"}
            self.wild = "#"                 # RabbitMQ topic exchange

    def bridge_creds(self, tmp_path):
        c = dict(self.creds)
        if "user" in c:
            c["password_file"] = password_file(tmp_path)
            c["allow_plaintext_credentials"] = True     # loopback broker
        return c


@pytest.fixture(params=["activemq", "rabbitmq"])
def target(request):
    return Target(request.param, request.getfixturevalue(request.param))


@pytest.fixture
def amq(activemq):
    return Target("activemq", activemq)


@pytest.fixture
def rmq(rabbitmq):
    return Target("rabbitmq", rabbitmq)


def to_stomp(tmp_path, t, name="out", **kw):
    b = {"from": "zmq", "to": t.url, "endpoints": ["src"],
         "address": "/topic/{topic}",
         "spool": {"dir": str(tmp_path / ("spool-" + name))}}
    b.update(t.bridge_creds(tmp_path))
    b.update(kw)
    return b


def from_stomp(tmp_path, t, source, port, **kw):
    b = {"from": t.url, "to": "zmq", "source": source,
         "endpoints": tcp(port)}
    b.update(t.bridge_creds(tmp_path))
    b.update(kw)
    return b


def stop_bridge(bridge):
    rc = bridge.stop()
    assert rc == 0, bridge.describe()
    return bridge.stderr()


def sync_stomp(src, peer, sid, prefix, bridge, timeout=15.0):
    """Probes through a ZeroMQ -> STOMP bridge until the peer gets one."""
    probes = Probes(prefix=prefix + ".zz_probe")
    deadline = time.monotonic() + timeout
    while True:
        src.send(probes.make("sync"))
        time.sleep(0.2)
        if any(Probes.is_probe(b) for _, b in peer.of(sid)):
            return probes
        if not bridge.running():
            pytest.fail("the bridge exited: %s" % bridge.describe(),
                        pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("no probe reached STOMP within %.1f s: %s" % (
                timeout, bridge.describe()), pytrace=False)


def non_probes(msgs):
    return [(h, b) for h, b in msgs if not Probes.is_probe(b)]


def sync_zmq(send, sub, bridge, timeout=15.0):
    """Signed probes sent with send(body) until the SUB behind a STOMP ->
    ZeroMQ bridge gets one."""
    probes = Probes(sign=True)
    deadline = time.monotonic() + timeout
    while True:
        send(canonical(probes.make("sync")))
        sub.pump(200)
        if sub.probe_ids:
            return probes
        if not bridge.running():
            pytest.fail("the bridge exited: %s" % bridge.describe(),
                        pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("no probe came out of the bridge within %.1f s: %s"
                        % (timeout, bridge.describe()), pytrace=False)


def end_marker(send, sub, probes, timeout=15.0):
    env = probes.make("end")
    send(canonical(env))
    sub.wait_probe(env["msg_id"], timeout)


# ---- (a) ZeroMQ -> STOMP ---------------------------------------------------------

def test_zmq_to_stomp_envelope_unchanged(tmp_path, target, daemons, zctx,
                                         stomp_peers, fedmsg_peer):
    t = target
    prefix = "org.fedoraproject.dev." + unique("s")
    src = BridgeSource(zctx)
    peer = stomp_peers(t.port, **t.peer_kw)
    sid = peer.subscribe("/topic/%s.%s" % (prefix, t.wild))
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_stomp(tmp_path, t)}, endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)
    sync_stomp(src, peer, sid, prefix, bridge)

    sent = []
    for i in range(10):
        msg = {"seq": i, "name": "bash", "ok": i % 2 == 0, "ratio": i + .5,
               "text": "caf\u00e9 \u2192 a:b \\ \"q\"", "nested": {"a": 1},
               "long": "y" * 300}
        if i == 9:      # over 64 KiB: sent from the spool, parsed again
            msg["nested"]["pad"] = "z" * 70000
        sent.append(fast_sign(make_envelope(prefix + ".build", msg)))
    for env in sent:
        src.send(env)
    got = peer.wait_messages(sid, len(sent))
    assert len(got) == len(sent)
    for env, (h, body) in zip(sent, got):
        assert body == canonical(env).encode("utf-8")       # exact bytes
        assert h.get("content-type", "").startswith("application/json")
        assert h.get("fedmsg_msg_id") == env["msg_id"]
        assert h.get("topic") == env["topic"]
        assert h.get("fedmsg_c_bridge") == "%s/out" % HOST
        # the msg's scalars as headers (escaping: ':' '\\' non-ASCII)
        assert h.get("name") == "bash"
        assert h.get("text") == env["msg"]["text"]
        assert h.get("ok") == ("true" if env["msg"]["ok"] else "false")
        assert float(h.get("ratio")) == env["msg"]["ratio"]
        assert h.get("seq") == str(env["msg"]["seq"])
        assert "nested" not in h and "long" not in h
    # the signatures still verify, for the real fedmsg
    fedmsg_peer.assert_signed_by([json.loads(b) for _, b in got],
                                 "alpha-app01.vectors.example.org",
                                 ca=VECTOR_CA, crl=VECTOR_CRL)
    # (the broker's confirmations may trail the deliveries a little; a
    # stop does not wait for them: what is unconfirmed is resent later)
    time.sleep(1.0)
    st = bridge_stats(stop_bridge(bridge), "out")
    assert st["out"] == st["in"] and st["dropped"] == 0


@pytest.mark.parametrize("fields", [
    {"timestamp": "2024-01-01T00:00:00Z"},      # common in fedmsg bodies
    {"priority": "high"},
    {"expires": "never"},
    {"transformation": "jms-map-json"},
    {"destination": "/queue/elsewhere", "receipt": "r", "content-length": 1,
     "persistent": "no", "subscription": "s", "content-type": "text/x"},
], ids=["timestamp", "priority", "expires", "transformation", "framing"])
def test_zmq_to_stomp_msg_fields_named_like_stomp_headers(tmp_path, amq,
                                                          daemons, zctx,
                                                          stomp_peers,
                                                          fields):
    """Top-level msg fields become headers, but some header names mean
    something to the broker: ActiveMQ refuses a SEND (ERROR, connection
    closed) whose timestamp/priority/expires is not a number or whose
    transformation is unknown.  Such a message must still be delivered,
    not refused forever (a poison message that blocks the spool)."""
    t = amq
    prefix = "org.fedoraproject.dev." + unique("hdr")
    src = BridgeSource(zctx)
    peer = stomp_peers(t.port)
    sid = peer.subscribe("/topic/%s.>" % prefix)
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_stomp(tmp_path, t)}, endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)
    sync_stomp(src, peer, sid, prefix, bridge)
    env = make_envelope(prefix + ".x", dict(fields, n=1))
    src.send(env)
    got = peer.wait_messages(sid, 1)
    assert [b for _, b in got] == [canonical(env).encode()], \
        bridge.describe()
    stop_bridge(bridge)


# ---- (b) STOMP -> ZeroMQ ---------------------------------------------------------

@pytest.fixture
def stomp_to_zmq(tmp_path, daemons, zctx, stomp_peers, dev_pki):
    """start(t, source=None, **bridge keys) -> (bridge, send, sub, probes,
    source): a STOMP -> ZeroMQ bridge "in" on a fresh /queue/ (or
    source), a python3-stomp sender to it, a pyzmq SUB on its PUB."""
    def start(t, source=None, send_to=None, validate=True, sign=False,
              **kw):
        source = source or "/queue/" + unique("in")
        port = free_ports(1)[0]
        extra = vector_validation() if validate else {}
        if sign:
            extra.update(sign_messages=True, ssldir=str(dev_pki),
                         certnames={"bridge": "bridge-localhost"})
        cfg = write_config(tmp_path, bridge_config(
            {"in": from_stomp(tmp_path, t, source, port, **kw)}, **extra))
        bridge = start_bridge(daemons, cfg)
        peer = stomp_peers(t.port, **t.peer_kw)

        def send(body, headers=None, dest=send_to or source):
            peer.send(dest, body, headers=headers)
        sub = Sub(zctx, tcp(port))
        probes = sync_zmq(send, sub, bridge)
        return bridge, send, sub, probes, source
    return start


def test_stomp_to_zmq_signed_vectors(amq, stomp_to_zmq):
    bridge, send, sub, probes, q = stomp_to_zmq(amq, validate=True)
    for rec in VECTORS:
        send(rec["wire_body"])
    end_marker(send, sub, probes)
    # as in test_bridge_amqp: a vector whose msg_id was forwarded already
    # is dropped by the bridge's msg_id cache, whatever its verdict
    want, forwarded, invalid, looped = [], set(), 0, 0
    for rec in VECTORS:
        mid = json.loads(rec["wire_body"])["msg_id"]
        if mid in forwarded:
            looped += 1
        elif valid_by_default(rec):
            want.append(rec)
            forwarded.add(mid)
        else:
            invalid += 1
    assert [f[1] for f in sub.msgs] == [r["wire_body"].encode("utf-8")
                                        for r in want]
    time.sleep(2.0)     # time for any redelivery of what was rejected
    st = bridge_stats(stop_bridge(bridge), "in")
    # each rejected message judged once: a rejection must not come back
    # (ActiveMQ redelivers a NACKed message 6 times, then dead-letters it)
    assert (st["invalid"], st["looped"]) == (invalid, looped)


def test_stomp_to_zmq_rejected_not_redelivered(rmq, stomp_to_zmq):
    """RabbitMQ requeues a NACKed message (unless requeue:false): a
    rejected message must not come back to the bridge for ever."""
    bridge, send, sub, probes, q = stomp_to_zmq(rmq, validate=True)
    bad = [r for r in VECTORS if r["name"] == "tamper_body_value_changed"][0]
    send(bad["wire_body"])
    send(b"not json")
    end_marker(send, sub, probes)
    time.sleep(2.0)
    name = q[len("/queue/"):]
    ready, unacked, _ = rmq.broker.queues().get(name, (0, 0, 0))
    st = bridge_stats(stop_bridge(bridge), "in")
    assert (st["invalid"], st["not_json"]) == (1, 1), st
    assert (ready, unacked) == (0, 0)


def test_stomp_to_zmq_oversized_refused_unread(tmp_path, rmq, daemons, zctx,
                                               stomp_peers):
    """max_message_bytes 4096: a MESSAGE of 20000 bytes is refused (NACK,
    requeue:false) and its body read past, never buffered, as the AMQP
    links refuse theirs; the connection stays, the next message flows and
    the queue is left empty."""
    q = "/queue/" + unique("big")
    port = free_ports(1)[0]
    cfg = write_config(tmp_path, bridge_config(
        {"in": from_stomp(tmp_path, rmq, q, port)}, max_message_bytes=4096))
    bridge = start_bridge(daemons, cfg)
    peer = stomp_peers(rmq.port, **rmq.peer_kw)

    def send(body):
        peer.send(q, body)
    sub = Sub(zctx, tcp(port))
    probes = sync_zmq(send, sub, bridge)
    big = make_envelope("org.fedoraproject.dev.big.x", {"pad": "x" * 20000})
    send(canonical(big))
    end_marker(send, sub, probes)
    assert big["msg_id"] not in [json.loads(b)["msg_id"]
                                 for _, b in sub.msgs], bridge.describe()
    bridge.wait_stderr("refusing a message of", 10)
    assert "connection lost" not in bridge.stderr()
    time.sleep(1.0)
    assert rmq.broker.queues().get(q[len("/queue/"):], (0, 0, 0))[:2] == \
        (0, 0), "the refused message came back"
    stop_bridge(bridge)


@pytest.mark.parametrize("coalesce_us", [None, 0, 10000])
def test_stomp_to_zmq_burst_whatever_the_coalescing(amq, stomp_to_zmq,
                                                    coalesce_us):
    """300 envelopes as fast as python3-stomp sends them: every one comes
    out on ZeroMQ, in order, byte for byte, whether the loop waits the
    default 500 us after a turn that took a few messages, never waits (0)
    or waits the longest it may (10 ms)."""
    kw = {} if coalesce_us is None else {"coalesce_us": coalesce_us}
    bridge, send, sub, probes, q = stomp_to_zmq(amq, validate=False, **kw)
    sent = [canonical(make_envelope("org.fedoraproject.dev.burst.x",
                                    {"n": i})) for i in range(300)]
    for body in sent:
        send(body)
    end_marker(send, sub, probes)
    assert [b for _, b in sub.msgs] == [b.encode() for b in sent]
    st = bridge_stats(stop_bridge(bridge), "in")
    assert st["out"] == st["in"] and st["dropped"] == 0, st


def test_stomp_to_zmq_wraps_virtual_topic(amq, stomp_to_zmq, dev_pki,
                                          fedmsg_peer):
    """UMB: Brew publishes plain JSON to /topic/VirtualTopic.eng.brew.<x>;
    the bridge reads its own consumer queue (a wildcard) and wraps each
    body in a fedmsg envelope signed with the bridge certificate, the
    topic mapped from the original destination."""
    u = unique("b")
    bridge, send, sub, probes, q = stomp_to_zmq(
        amq, source="/queue/Consumer.%s.VirtualTopic.eng.brew.>" % u,
        send_to="/topic/VirtualTopic.eng.brew.zz_probe", validate=False,
        sign=True, topic_map=BREW_MAP)
    body = {"build_id": 2817385, "name": "bash", "version": "5.2.26",
            "release": "1.el9", "state": 1, "owner": "kojibuilder"}
    hdrs = {"method": "build", "type": "BuildStateChange", "new": "COMPLETE",
            "build_id": "2817385"}
    send(json.dumps(body), headers=hdrs,
         dest="/topic/VirtualTopic.eng.brew.build.complete")
    end_marker(send, sub, probes)
    assert len(sub.msgs) == 1, sub.msgs
    frame, raw = sub.msgs[0]
    env = json.loads(raw)
    topic = "org.fedoraproject.prod.buildsys.build.complete"
    assert frame == topic.encode() and env["topic"] == topic
    assert env["msg"] == body
    for k, v in hdrs.items():
        assert env["headers"].get(k) == v, env["headers"]
    assert env["username"] == "fedmsg-bridge"
    fedmsg_peer.assert_signed_by([env], "bridge-localhost",
                                 ca=dev_pki / "ca.crt",
                                 crl=dev_pki / "crl.pem")
    assert raw == canonical(env).encode()
    st = bridge_stats(stop_bridge(bridge), "in")
    assert st["wrapped"] == 1


def test_virtual_topic_fan_out_and_no_loop(tmp_path, amq, daemons, zctx,
                                           stomp_peers):
    """ZeroMQ -> /topic/VirtualTopic.<topic>: two consumer queues each get
    every message, two consumers of one queue share it; a STOMP -> ZeroMQ
    bridge in the same process reading a third consumer queue drops them
    all (they carry its own origin): nothing comes back to ZeroMQ."""
    t = amq
    u = unique("v")
    prefix = "org.fedoraproject.dev." + u
    vt = "VirtualTopic." + prefix
    src = BridgeSource(zctx)
    port = free_ports(1)[0]
    a = stomp_peers(t.port)
    b1 = stomp_peers(t.port)
    b2 = stomp_peers(t.port)
    sa = a.subscribe("/queue/Consumer.A%s.%s.>" % (u, vt))
    sb1 = b1.subscribe("/queue/Consumer.B%s.%s.>" % (u, vt))
    sb2 = b2.subscribe("/queue/Consumer.B%s.%s.>" % (u, vt))
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_stomp(tmp_path, t, address="/topic/VirtualTopic.{topic}"),
         "in": from_stomp(tmp_path, t, "/queue/Consumer.C%s.%s.>" % (u, vt),
                          port)},
        endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg, wait=None)
    bridge.wait_for(lambda: bridge.stderr().count("broker connected") == 2,
                    20, "both bridges connected")
    src.wait_subscriber(daemon=bridge)
    sub = Sub(zctx, tcp(port))
    sync_stomp(src, a, sa, prefix, bridge)
    time.sleep(1.0)
    base = (len(a.of(sa)), len(b1.of(sb1)) + len(b2.of(sb2)))
    sent = [make_envelope(prefix + ".x", {"n": i}) for i in range(40)]
    for env in sent:
        src.send(env)
    want = [canonical(e).encode() for e in sent]
    wait_until(lambda: len(a.of(sa)) >= base[0] + 40 and
               len(b1.of(sb1)) + len(b2.of(sb2)) >= base[1] + 40, 15,
               "both consumer queues filled")
    time.sleep(1.0)
    assert [b for _, b in non_probes(a.of(sa))] == want
    shared = [b for _, b in non_probes(b1.of(sb1) + b2.of(sb2))]
    assert sorted(shared) == sorted(want)       # each once, between two
    assert non_probes(b1.of(sb1)) and non_probes(b2.of(sb2))
    for h, _ in non_probes(a.of(sa)):
        assert h.get("original-destination", h["destination"]).startswith(
            "/topic/" + vt)
    sub.pump(500)
    assert sub.msgs == []                       # no loop back to ZeroMQ
    st = bridge_stats(stop_bridge(bridge), "in")
    assert st["looped"] >= len(sent) and st["out"] == 0


# ---- TLS (ActiveMQ) ------------------------------------------------------------

def tls_bridge(tmp_path, t, src, port, tls, host="localhost"):
    return write_config(tmp_path, bridge_config(
        {"out": to_stomp(tmp_path, t, to="stomp+ssl://%s:%d" % (host, port),
                         tls=tls)},
        endpoints={"src": [src.url]}))


@pytest.mark.parametrize("port,client", [
    (AMQ_STOMPS_PORT, True),          # a client certificate is required
    (AMQ_STOMPS_NOAUTH_PORT, False),  # server authentication only
], ids=["client_cert", "no_client_cert"])   # (ports differ per run)
def test_tls_works(tmp_path, amq, daemons, zctx, stomp_peers, port, client):
    t = amq
    prefix = "org.fedoraproject.dev." + unique("tls")
    src = BridgeSource(zctx)
    peer = stomp_peers(t.port)
    sid = peer.subscribe("/topic/%s.>" % prefix)
    tls = {"ca": t.broker.ca}
    if client:
        tls["cert"], tls["key"] = t.broker.client()
    bridge = start_bridge(daemons, tls_bridge(tmp_path, t, src, port, tls))
    src.wait_subscriber(daemon=bridge)
    sync_stomp(src, peer, sid, prefix, bridge)
    env = make_envelope(prefix + ".x", {"over": "tls"})
    src.send(env)
    got = peer.wait_messages(sid, 1)
    assert got and got[-1][1] == canonical(env).encode()
    stop_bridge(bridge)


def test_tls_by_ip_with_hostname(tmp_path, amq, daemons, zctx, stomp_peers):
    t = amq
    prefix = "org.fedoraproject.dev." + unique("tlsip")
    src = BridgeSource(zctx)
    peer = stomp_peers(t.port)
    sid = peer.subscribe("/topic/%s.>" % prefix)
    cert, key = t.broker.client()
    bridge = start_bridge(daemons, tls_bridge(
        tmp_path, t, src, AMQ_STOMPS_PORT,
        {"ca": t.broker.ca, "cert": cert, "key": key,
         "hostname": "localhost"}, host="127.0.0.1"))
    src.wait_subscriber(daemon=bridge)
    sync_stomp(src, peer, sid, prefix, bridge)
    stop_bridge(bridge)


@pytest.mark.parametrize("case", ["no_client_cert", "untrusted_client_cert",
                                  "wrong_ca"])
def test_tls_refused(tmp_path, amq, daemons, zctx, stomp_peers, case):
    """Refused TLS is logged with a reason, retried, never replaced by
    plain text, and nothing is delivered."""
    t = amq
    prefix = "org.fedoraproject.dev." + unique("tlsno")
    src = BridgeSource(zctx)
    peer = stomp_peers(t.port)
    sid = peer.subscribe("/topic/%s.>" % prefix)
    port = AMQ_STOMPS_PORT
    if case == "no_client_cert":
        tls = {"ca": t.broker.ca}
    elif case == "untrusted_client_cert":
        cert, key = t.broker.client(other=True)
        tls = {"ca": t.broker.ca, "cert": cert, "key": key}
    else:
        tls = {"ca": t.broker.other_ca}
        port = AMQ_STOMPS_NOAUTH_PORT
    bridge = start_bridge(daemons, tls_bridge(tmp_path, t, src, port, tls),
                          wait=None)
    src.wait_subscriber(daemon=bridge)
    for i in range(3):
        src.send(make_envelope(prefix + ".x", {"n": i}))
    # two failed attempts (the backoff starts at 0.5 s)
    bridge.wait_for(lambda: len(re.findall(r"(?m)^.*warning: stomp",
                                           bridge.stderr())) >= 2,
                    15, "two refused attempts")
    time.sleep(1.0)
    assert non_probes(peer.of(sid)) == []
    err = bridge.stderr()
    assert "broker connected" not in err
    if case == "wrong_ca":
        assert re.search(r"(?i)certificate|verify", err), err
    else:
        assert re.search(r"(?i)tls|ssl|handshake|certificate|alert|"
                         r"closed|reset", err), err
    assert bridge.running()
    stop_bridge(bridge)


# ---- credentials -------------------------------------------------------------------

@pytest.mark.parametrize("case", ["activemq_wrong_password",
                                  "rabbitmq_wrong_vhost"])
def test_refused_login_logged_and_retried(tmp_path, request, daemons, zctx,
                                          case):
    if case.startswith("activemq"):
        t = Target("activemq", request.getfixturevalue("activemq"))
        creds = {"user": "fedmsg", "password_file": password_file(
            tmp_path, "wrong-" + unique(), "bad"),
            "allow_plaintext_credentials": True}
        reason = r"password is invalid"
    else:
        t = Target("rabbitmq", request.getfixturevalue("rabbitmq"))
        creds = {"user": "guest", "password_file": password_file(tmp_path),
                 "vhost": "no-such-vhost", "allow_plaintext_credentials": True}
        reason = r"(?i)virtual host|vhost"
    src = BridgeSource(zctx)
    b = to_stomp(tmp_path, t)
    b.update(creds)
    cfg = write_config(tmp_path, bridge_config(
        {"out": b}, endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg, wait=None)
    bridge.wait_for(lambda: len(re.findall(reason, bridge.stderr())) >= 2, 15,
                    "two refused logins with the broker's reason")
    assert "broker connected" not in bridge.stderr()
    assert bridge.running()
    stop_bridge(bridge)


# ---- broker restart with messages in flight (RabbitMQ: durable queue) --------

@pytest.mark.broker_limit(150)
def test_broker_restart_with_messages_in_flight(tmp_path, rmq, daemons,
                                                zctx, stomp_peers):
    """600 messages ZeroMQ -> STOMP into a durable RabbitMQ queue (STOMP
    /queue/<name>, persistent:true) while RabbitMQ restarts: every msg_id
    arrives (duplicates allowed: at-least-once)."""
    t = rmq
    q = "/queue/" + unique("sdq")
    src = BridgeSource(zctx)
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_stomp(tmp_path, t, address=q)},
        endpoints={"src": [src.url]}))
    # declare the durable queue (and check it is there) before the flow
    p = stomp_peers(t.port, **t.peer_kw)
    p.subscribe(q, ack="client-individual")
    p.close()
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)
    sent = [make_envelope("org.fedoraproject.dev.srestart.x", {"n": i})
            for i in range(600)]
    for env in sent[:300]:
        src.send(env)
    time.sleep(0.05)        # some sent, some waiting for their receipt
    t.broker.stop()
    try:
        for env in sent[300:]:
            src.send(env)
        time.sleep(1.0)
    finally:
        t.broker.start()
    want = {e["msg_id"] for e in sent}
    peer = stomp_peers(t.port, **t.peer_kw)
    sid = peer.subscribe(q)
    deadline = time.monotonic() + 60
    ids = []
    while time.monotonic() < deadline and not want <= set(ids):
        time.sleep(0.2)
        ids = [json.loads(b)["msg_id"] for _, b in peer.of(sid)]
    missing = want - set(ids)
    print("received %d, distinct %d, missing %d" % (len(ids), len(set(ids)),
                                                    len(missing)))
    assert not missing, "%d missing\n%s" % (len(missing), bridge.describe())
    assert bridge.running()
    stop_bridge(bridge)
