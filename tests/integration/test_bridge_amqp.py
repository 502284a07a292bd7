"""fedmsg-bridge between ZeroMQ and a real AMQP 1.0 broker (RabbitMQ 3.10
with its AMQP 1.0 plugin, started once per session by conftest's
"rabbitmq" fixture through tests/brokers/broker.sh).

The ZeroMQ side is pyzmq on 127.0.0.1: an XPUB bound as the fedmsg
endpoint a ZeroMQ -> AMQP bridge subscribes to (conftest.BridgeSource: the
XPUB sees the bridge's subscription, so nothing is lost to the slow
joiner), or a SUB connected to the PUB an AMQP -> ZeroMQ bridge binds.
The AMQP side is python3-qpid-proton (conftest.AmqpReceiver/AmqpSender).

RabbitMQ 3.10 notes that shape these tests (tests/brokers/broker.sh):
  * a receiver on /topic/<pattern> gets a server-named amq.gen-* queue
    that outlives it (expired 5 s after its last consumer by the
    harness's policy), so every test uses fresh topics and queue names;
  * AMQP 1.0 /queue/<name> declares a NON-durable queue (and a sender or
    receiver on /queue/<name> never attaches when <name> already exists
    as a durable queue).  Where messages must survive a broker restart,
    the queue is declared durable by a receiver with a durable terminus
    and the bridge sends to /amq/queue/<name> (an existing queue).
"""

import collections
import json
import re
import signal
import time

import pytest

from conftest import (wait_until, HOST, SLOW, RMQ_AMQP_PORT, RMQ_AMQPS_PORT, VECTORS,
                      VECTOR_CA, VECTOR_CRL,
                      BridgeSource, Probes, Sub, bridge_config, bridge_stats,
                      canonical, free_ports, make_envelope, password_file,
                      py_sign, signed, start_bridge, tcp,
                      unique,
                      valid_by_default, vector_validation, write_config)

pytestmark = pytest.mark.usefixtures("broker_time_limit")

AMQP_URL = "amqp://127.0.0.1:%d" % RMQ_AMQP_PORT
AMQPS_URL = "amqps://localhost:%d" % RMQ_AMQPS_PORT


# ---- helpers -------------------------------------------------------------------

def to_amqp(tmp_path, src, name="out", **kw):
    """A ZeroMQ -> AMQP bridge entry reading the pyzmq endpoint "src"."""
    b = {"from": "zmq", "to": AMQP_URL, "endpoints": ["src"],
         "address": "/topic/{topic}", "user": "guest",
         "password_file": password_file(tmp_path),
         "allow_plaintext_credentials": True,   # RabbitMQ on loopback
         "spool": {"dir": str(tmp_path / ("spool-" + name))}}
    b.update(kw)
    return b


def from_amqp(tmp_path, source, port, **kw):
    """An AMQP -> ZeroMQ bridge entry binding a PUB on port."""
    b = {"from": AMQP_URL, "to": "zmq", "source": source,
         "endpoints": tcp(port), "user": "guest",
         "password_file": password_file(tmp_path),
         "allow_plaintext_credentials": True}   # RabbitMQ on loopback
    b.update(kw)
    return b


def envelopes(prefix, n, sign=True, start=0):
    """n envelopes on prefix.<kind>, with every kind of msg field."""
    out = []
    for i in range(start, start + n):
        msg = {"seq": i, "name": "bash", "owner": "kojibuilder",
               "ok": i % 2 == 0, "ratio": 0.5 + i, "big": 1234567890123,
               "text": "caf\u00e9 \u2192 \U0001f600 \"quoted\" \\ /",
               "nested": {"a": [1, 2.5, None]}, "list": [1, "x"],
               "nothing": None, "long": "x" * 300,
               "multi": "line\nvalue", "k" * 70: "long key: skipped"}
        env = make_envelope("%s.build.state.change" % prefix, msg)
        out.append(py_sign(env) if sign else env)
    return out


def expected_props(env, bridge_name):
    """Application properties a bridge adds: topic, the origin tag, and
    the msg's top-level scalars (strings up to 256 chars without CR/LF,
    numbers, booleans; names up to 64 chars), as text."""
    p = {"topic": env["topic"], "fedmsg_c_bridge": "%s/%s" % (HOST,
                                                              bridge_name)}
    for k, v in env["msg"].items():
        if len(k) > 64:
            continue
        if isinstance(v, bool):
            p[k] = "true" if v else "false"
        elif isinstance(v, (int, float)):
            p[k] = v            # compared as numbers (the text is %.17g)
        elif isinstance(v, str) and len(v) <= 256 and "\n" not in v \
                and "\r" not in v:
            p[k] = v
    return p


def check_props(got, want):
    assert set(got) == set(want), (sorted(got), sorted(want))
    for k, v in want.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            assert float(got[k]) == float(v), (k, got[k], v)
            if isinstance(v, int):
                assert got[k] == str(v), (k, got[k], v)
        else:
            assert got[k] == v, (k, got[k], v)


def sync_amqp(src, receiver, prefix, bridge, timeout=15.0):
    """Send probes through a ZeroMQ -> AMQP bridge until one arrives."""
    probes = Probes(prefix=prefix + ".zz_probe")
    deadline = time.monotonic() + timeout
    while True:
        src.send(probes.make("sync"))
        receiver.pump(0.2)
        if any(Probes.is_probe(b) for b in receiver.bodies()):
            return
        if not bridge.running():
            pytest.fail("the bridge exited: %s" % bridge.describe(),
                        pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("no probe reached AMQP within %.1f s: %s" % (
                timeout, bridge.describe()), pytrace=False)


def running_to_amqp(tmp_path, daemons, zctx, amqp_peers, prefix):
    """A ZeroMQ -> AMQP bridge "out" (to_amqp), a receiver of
    /topic/<prefix>.#, and a probe through both: (src, receiver, bridge)."""
    src = BridgeSource(zctx)
    rcv = amqp_peers.receiver("/topic/%s.#" % prefix)
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_amqp(tmp_path, src)}, endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)
    sync_amqp(src, rcv, prefix, bridge)
    return src, rcv, bridge


def non_probes(receiver):
    return [m for m in receiver.msgs if not Probes.is_probe(
        bytes(m.body) if not isinstance(m.body, str) else m.body)]


def sync_zmq(sender, sub, bridge, timeout=15.0, prefix=None):
    """Send signed probes to AMQP until the SUB behind an AMQP -> ZeroMQ
    bridge gets one; returns the Probes (for end markers)."""
    probes = Probes(prefix=prefix or "org.fedoraproject.dev.zz_probe",
                    sign=True)
    deadline = time.monotonic() + timeout
    while True:
        sender.send(canonical(probes.make("sync")))
        sub.pump(200)
        if sub.probe_ids:
            return probes
        if not bridge.running():
            pytest.fail("the bridge exited: %s" % bridge.describe(),
                        pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("no probe came out of the bridge within %.1f s: %s"
                        % (timeout, bridge.describe()), pytrace=False)


def end_marker(sender, sub, probes, timeout=15.0):
    env = probes.make("end")
    sender.send(canonical(env))
    sub.wait_probe(env["msg_id"], timeout)


def stop_bridge(bridge):
    rc = bridge.stop()
    assert rc == 0, bridge.describe()
    return bridge.stderr()


# ---- (a) ZeroMQ -> AMQP ----------------------------------------------------------

def test_zmq_to_amqp_envelope_unchanged(tmp_path, rabbitmq, daemons, zctx,
                                        amqp_peers, fedmsg_peer):
    prefix = "org.fedoraproject.dev." + unique("a")
    src, rcv, bridge = running_to_amqp(tmp_path, daemons, zctx, amqp_peers,
                                       prefix)

    sent = envelopes(prefix, 20)
    for env in sent:
        src.send(env)
    rcv.wait_messages(len(sent))
    rcv.quiet(0.5)
    got = non_probes(rcv)
    assert [m.id for m in got] == [e["msg_id"] for e in sent]   # in order
    for env, m in zip(sent, got):
        body = bytes(m.body)
        assert body == canonical(env).encode("utf-8")   # the exact bytes
        assert m.content_type == "application/json"
        assert m.subject == env["topic"]
        assert m.address == "/topic/" + env["topic"]
        assert m.creation_time == pytest.approx(env["timestamp"])
        assert m.durable
        check_props(m.properties, expected_props(env, "out"))
    # the signatures still verify, for the real fedmsg
    fedmsg_peer.assert_signed_by([json.loads(bytes(m.body)) for m in got],
                                 "alpha-app01.vectors.example.org",
                                 ca=VECTOR_CA, crl=VECTOR_CRL)

    # (the broker's confirmations may trail the deliveries a little; a
    # stop does not wait for them: what is unconfirmed is resent later)
    time.sleep(1.0)
    st = bridge_stats(stop_bridge(bridge), "out")
    assert st["out"] == st["in"] and st["dropped"] == 0 and \
        st["in"] >= len(sent)


def test_zmq_to_amqp_on_more_topics_than_open_links(tmp_path, rabbitmq,
                                                    daemons, zctx,
                                                    amqp_peers):
    """200 envelopes on 200 topics, /topic/{topic} each: more addresses
    than the 64 sender links the AMQP 1.0 link keeps open, so senders
    are closed (and freed) for new addresses all along: each envelope
    arrives once, in order, and the connection stays up."""
    prefix = "org.fedoraproject.dev." + unique("many")
    src, rcv, bridge = running_to_amqp(tmp_path, daemons, zctx, amqp_peers,
                                       prefix)
    sent = [make_envelope("%s.t%d" % (prefix, i), {"n": i})
            for i in range(200)]
    for env in sent:
        src.send(env)
    rcv.wait_messages(len(sent), timeout=60)
    rcv.quiet(0.5)
    assert [m.id for m in non_probes(rcv)] == [e["msg_id"] for e in sent]
    assert "broker connection lost" not in bridge.stderr(), \
        bridge.describe()
    time.sleep(1.0)
    st = bridge_stats(stop_bridge(bridge), "out")
    assert st["out"] == st["in"] and st["dropped"] == 0


# ---- (b) AMQP -> ZeroMQ ----------------------------------------------------------

@pytest.fixture
def amqp_to_zmq(tmp_path, rabbitmq, daemons, zctx, amqp_peers, dev_pki):
    """start(**bridge keys, config=dict) -> (bridge, sender, sub, queue):
    an AMQP -> ZeroMQ bridge "in" on a fresh /queue/, a proton sender to
    that queue and a pyzmq SUB on the bridge's PUB, synchronised."""
    def start(validate=True, sign=False, sync=True, config=None, **kw):
        q = "/queue/" + unique("in")
        port = free_ports(1)[0]
        extra = vector_validation() if validate else {}
        extra.update(config or {})
        if sign:
            extra.update(sign_messages=True, ssldir=str(dev_pki),
                         certnames={"bridge": "bridge-localhost"})
        cfg = write_config(tmp_path, bridge_config(
            {"in": from_amqp(tmp_path, q, port, **kw)}, **extra))
        bridge = start_bridge(daemons, cfg)
        snd = amqp_peers.sender(q)
        sub = Sub(zctx, tcp(port))
        probes = sync_zmq(snd, sub, bridge) if sync else None
        return bridge, snd, sub, q, probes
    return start


def test_amqp_to_zmq_signed_vectors(rabbitmq, amqp_to_zmq):
    bridge, snd, sub, q, probes = amqp_to_zmq(validate=True)
    for rec in VECTORS:
        snd.send(rec["wire_body"])
    end_marker(snd, sub, probes)

    # Many vectors are variants of one message (same msg_id).  The bridge
    # remembers every msg_id it forwarded (loop prevention, which also
    # absorbs redeliveries), so a later vector with a forwarded msg_id is
    # dropped (counted as "looped") whatever its verdict.
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
    assert (len(want), invalid, looped) == (27, 8, 19)
    got = sub.msgs
    # exactly the valid ones, byte for byte, in order, and nothing else
    # (an invalid envelope must not come out wrapped either)
    assert [f[1] for f in got] == [r["wire_body"].encode("utf-8")
                                   for r in want], \
        "forwarded: %s" % [json.loads(f[1]).get("msg_id") for f in got]
    for topic, body in got:
        assert topic == json.loads(body)["topic"].encode("utf-8")
    st = bridge_stats(stop_bridge(bridge), "in")
    assert (st["invalid"], st["looped"], st["wrapped"]) == (invalid, looped,
                                                            0)
    # rejected, not redelivered: nothing is left in the queue
    assert rabbitmq.queues().get(q[len("/queue/"):], (0, 0, 0))[:2] == (0, 0)


BREW_BODY = {"build_id": 2817385, "name": "bash", "version": "5.2.26",
             "release": "1.el9", "owner": "kojibuilder", "state": 1,
             "task_id": 61234567, "volume_name": "DEFAULT",
             "extra": {"source": {"original_url": "git+https://x/bash"}},
             "tags": ["rhel-9.4.0-candidate"], "scratch": False}
BREW_PROPS = {"type": "BuildStateChange", "name": "bash", "version": "5.2.26",
              "release": "1.el9", "attribute": "state", "old": "BUILDING",
              "new": "COMPLETE", "build_id": 2817385, "scratch": False}
BREW_MAP = {"VirtualTopic.eng.brew.": "org.fedoraproject.prod.buildsys."}


def test_amqp_to_zmq_wraps_plain_json(rabbitmq, amqp_to_zmq, dev_pki,
                                      fedmsg_peer):
    bridge, snd, sub, q, probes = amqp_to_zmq(validate=False, sign=True,
                                              topic_map=BREW_MAP)
    fm_id = "2026-" + "0123abcd-4567-4def-89ab-%012x" % int(time.time())
    cases = [
        # a data section, topic from the subject (UMB style)
        (dict(subject="VirtualTopic.eng.brew.build.complete",
              props=BREW_PROPS, msg_id="ID:brew-1"),
         "org.fedoraproject.prod.buildsys.build.complete"),
        # an amqp-value string (Koji's protonmsg), topic from the "to"
        # address, a fedmsg-shaped message-id (kept as msg_id)
        (dict(address="/topic/VirtualTopic.eng.brew.build.tag",
              props={"tag": "rhel-9.4.0-candidate", "build_id": 2817385},
              msg_id=fm_id, value=True),
         "org.fedoraproject.prod.buildsys.build.tag"),
        # no application properties after a message with them: no headers
        # (qpid-proton's decode kept the ones before unless cleared)
        (dict(subject="VirtualTopic.eng.brew.build.untag",
              msg_id="ID:brew-3"),
         "org.fedoraproject.prod.buildsys.build.untag"),
    ]
    for kw, _ in cases:
        snd.send(json.dumps(BREW_BODY), **kw)
    end_marker(snd, sub, probes)

    assert len(sub.msgs) == len(cases), sub.msgs
    ids = set()
    for (kw, topic), (frame, body) in zip(cases, sub.msgs):
        env = json.loads(body)
        assert frame == topic.encode() and env["topic"] == topic
        assert env["msg"] == BREW_BODY
        assert env["headers"] == {k: (json.dumps(v) if not isinstance(v, str)
                                      else v)
                                  for k, v in kw.get("props", {}).items()}
        assert env["username"] == "fedmsg-bridge"
        assert isinstance(env["timestamp"], (int, float))
        assert abs(env["timestamp"] - time.time()) < 60
        assert isinstance(env["i"], int) and env["i"] >= 1
        assert re.fullmatch(r"\d{4}-[0-9a-f-]{36}", env["msg_id"])
        ids.add(env["msg_id"])
        assert env["crypto"] == "x509"
        fedmsg_peer.assert_signed_by([env], "bridge-localhost",
                                     ca=dev_pki / "ca.crt",
                                     crl=dev_pki / "crl.pem")
        # the bytes are fedmsg's canonical encoding of the envelope
        assert body == canonical(env).encode("utf-8")
    assert fm_id in ids and len(ids) == len(cases)
    st = bridge_stats(stop_bridge(bridge), "in")
    assert st["wrapped"] == len(cases)


def test_amqp_to_zmq_long_properties_whole(rabbitmq, amqp_to_zmq):
    """Application properties reach the wrapped envelope's headers whole,
    however long (values were cut at 511 bytes and names at 127)."""
    bridge, snd, sub, q, probes = amqp_to_zmq(validate=False, sign=True,
                                              topic_map=BREW_MAP)
    props = {"long": "x" * 3000 + "end", "k" * 200: "v", "n": 5,
             "empty": ""}
    snd.send(json.dumps(BREW_BODY), props=props, msg_id="ID:brew-long",
             subject="VirtualTopic.eng.brew.build.complete")
    end_marker(snd, sub, probes)
    assert len(sub.msgs) == 1, sub.msgs
    env = json.loads(sub.msgs[0][1])
    assert env["msg"] == BREW_BODY
    assert env["headers"] == {"long": props["long"], "k" * 200: "v",
                              "n": "5", "empty": ""}


def test_amqp_to_zmq_long_subject_whole(rabbitmq, amqp_to_zmq):
    """A subject becomes the topic whole, however long: one cut at 1023
    bytes (as it was) is another topic."""
    bridge, snd, sub, q, probes = amqp_to_zmq(validate=False, sign=True,
                                              topic_map=BREW_MAP)
    tail = "build.complete." + "x" * 3000 + ".end"
    snd.send(json.dumps(BREW_BODY), msg_id="ID:" + "i" * 600,
             subject="VirtualTopic.eng.brew." + tail)
    end_marker(snd, sub, probes)
    assert len(sub.msgs) == 1, sub.msgs
    topic = "org.fedoraproject.prod.buildsys." + tail
    assert sub.msgs[0][0] == topic.encode()
    env = json.loads(sub.msgs[0][1])
    assert env["topic"] == topic and env["msg"] == BREW_BODY


def test_amqp_to_zmq_routing_key_with_nul_refused(rabbitmq, amqp_to_zmq):
    """An x-routing-key annotation (the topic when there is no subject)
    holding a NUL byte is refused, not cut at the NUL into another topic;
    the next message passes."""
    bridge, snd, sub, q, probes = amqp_to_zmq(validate=False, sign=True,
                                              topic_map=BREW_MAP)
    snd.send(json.dumps(BREW_BODY), msg_id="ID:nul", annotations={
        "x-routing-key": "VirtualTopic.eng.brew.build.tag\0.untag"})
    end_marker(snd, sub, probes)
    assert sub.msgs == []
    assert "routing key (x-routing-key) holds a NUL byte" in \
        stop_bridge(bridge)


def test_amqp_to_zmq_unsigned_envelope_forwarded_as_is(rabbitmq,
                                                       amqp_to_zmq):
    """fedmsg services on UMB publish whole envelopes, often unsigned
    (UMB): with validation off such an envelope is a fedmsg
    message, forwarded as it is, not wrapped again as a plain body."""
    bridge, snd, sub, q, probes = amqp_to_zmq(validate=False)
    env = make_envelope("org.fedoraproject.dev.%s.x" % unique("u"),
                        {"k": "v"})
    snd.send(canonical(env))
    end_marker(snd, sub, probes)
    assert sub.msgs == [[env["topic"].encode(), canonical(env).encode()]]


@pytest.mark.parametrize("name", ["tamper_crypto_field_removed",
                                  "unsigned_envelope"])
def test_amqp_to_zmq_validation_rejects_envelopes_without_crypto(
        rabbitmq, amqp_to_zmq, name):
    """With validation on, a fedmsg envelope that is not properly signed
    is invalid: one whose "crypto" field was removed (fedmsg infers x509
    from the certificate and fails it), or one with no signature at all.
    Neither may be wrapped as a plain body (and then signed by the
    bridge's own certificate)."""
    bridge, snd, sub, q, probes = amqp_to_zmq(validate=True, sign=True)
    if name == "unsigned_envelope":
        body = canonical(make_envelope("org.fedoraproject.dev.%s.x" %
                                       unique("u"), {"k": "v"}))
    else:
        body = [r for r in VECTORS if r["name"] == name][0]["wire_body"]
    snd.send(body)
    end_marker(snd, sub, probes)
    assert sub.msgs == []
    st = bridge_stats(stop_bridge(bridge), "in")
    assert (st["invalid"], st["wrapped"]) == (1, 0)


@pytest.mark.broker_limit(90)
def test_amqp_to_zmq_burst(rabbitmq, amqp_to_zmq):
    """A burst: the bridge is stopped (SIGSTOP) while 2000 messages wait
    in its queue with credit 1000, then continued, so it reads hundreds of
    deliveries at once.  All come out, in order, once each."""
    bridge, snd, sub, q, probes = amqp_to_zmq(validate=False, credit=1000,
                                              config={"high_water_mark":
                                                      100000})
    sent = [canonical(signed("burst.x", {"n": i})) for i in range(2000)]
    bridge.proc.send_signal(signal.SIGSTOP)
    try:
        for body in sent:
            snd.send(body)
    finally:
        bridge.proc.send_signal(signal.SIGCONT)
    end_marker(snd, sub, probes, timeout=60)
    assert [f[1] for f in sub.msgs] == [b.encode() for b in sent]
    assert bridge.running(), bridge.describe()
    st = bridge_stats(stop_bridge(bridge), "in")
    assert st["out"] == len(sent) + len(probes.sent)


def test_amqp_to_zmq_rejects_non_json(rabbitmq, amqp_to_zmq):
    bridge, snd, sub, q, probes = amqp_to_zmq(validate=False)
    bad = [b"not json", b"{broken", b"[1, 2]", b"\"a string\"", b"",
           b"\xff\xfe{}"]
    for body in bad:
        snd.send(body)
    snd.send("{\"x\": 1}", value=True, subject="not.json.either")  # fine
    end_marker(snd, sub, probes)
    assert len(sub.msgs) == 1      # only the JSON object, wrapped
    st = bridge_stats(stop_bridge(bridge), "in")
    assert st["not_json"] == len(bad)
    assert rabbitmq.queues().get(q[len("/queue/"):], (0, 0, 0))[:2] == (0, 0)


# ---- (c) both directions in one process: no loop ---------------------------------

def test_no_loop_between_directions(tmp_path, rabbitmq, daemons, zctx,
                                    amqp_peers):
    prefix = "org.fedoraproject.dev." + unique("loop")
    src = BridgeSource(zctx)
    port = free_ports(1)[0]
    # "out" reads the test's endpoint AND what "in" publishes; "in" reads
    # everything "out" sends to the topic space: a loop if nothing cuts it
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_amqp(tmp_path, src, endpoints=["src", "back"]),
         "in": from_amqp(tmp_path, "/topic/%s.#" % prefix, port,
                         validate=True)},
        endpoints={"src": [src.url], "back": [tcp(port)]},
        **vector_validation()))
    rcv = amqp_peers.receiver("/topic/%s.#" % prefix)
    snd = amqp_peers.sender("/topic/%s.from_amqp" % prefix)
    bridge = start_bridge(daemons, cfg, wait=None)
    bridge.wait_for(lambda: bridge.stderr().count("broker connected") == 2,
                    20, "both bridges connected")
    src.wait_subscriber(daemon=bridge)
    sub = Sub(zctx, tcp(port))
    sync_zmq(snd, sub, bridge, prefix=prefix + ".zz_probe")
    rcv.quiet(1.0)
    n_probe_msgs = len(rcv.msgs)

    from_zmq = [py_sign(make_envelope(prefix + ".from_zmq", {"n": i}))
                for i in range(5)]
    from_amqp_ = [py_sign(make_envelope(prefix + ".from_amqp", {"n": i}))
                  for i in range(5)]
    # ZeroMQ's first: "in" reads them (with our origin property) before
    # the AMQP ones, which carry no properties and must not inherit it
    for env in from_zmq:
        src.send(env)
    rcv.wait_count(n_probe_msgs + len(from_zmq), 15 * SLOW)
    for env in from_amqp_:
        snd.send(canonical(env))
    sub.wait_count(len(from_amqp_), 15 * SLOW)
    # then count arrivals for 2 s more: each exactly once
    rcv.quiet(2.0)
    sub.pump(100)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        sub.pump(100)
    got = [json.loads(bytes(m.body))["msg_id"] for m in rcv.msgs[n_probe_msgs:]]
    got = [i for i in got if not i.startswith("probe-")]
    assert sorted(got) == sorted(e["msg_id"] for e in from_zmq + from_amqp_)
    zids = [json.loads(f[1])["msg_id"] for f in sub.msgs]
    # ZeroMQ sees what came from AMQP, once; never its own messages back
    assert sorted(zids) == sorted(e["msg_id"] for e in from_amqp_)
    text = stop_bridge(bridge)
    out, in_ = bridge_stats(text, "out"), bridge_stats(text, "in")
    # the loop paths were really exercised: "in" dropped what "out" sent
    # (origin property), "out" dropped what "in" published (msg_id cache)
    assert in_["looped"] >= len(from_zmq)
    assert out["looped"] >= len(from_amqp_)


# ---- (d) faults: broker down, broker restart, kill -9 -------------------------------

def durable_queue(amqp_peers):
    """A fresh durable queue (survives a broker restart); the bridge
    sends to /amq/queue/<name> (RabbitMQ: an existing queue)."""
    name = unique("dq")
    r = amqp_peers.receiver("/queue/" + name, durable=True)
    r.close()
    return name


def drain_ids(amqp_peers, queue, want, timeout):
    """Receive from the durable queue until every msg_id in want came
    (or timeout); returns the list of msg_ids received, in order."""
    rcv = amqp_peers.receiver("/amq/queue/" + queue, credit=1000)
    ids = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not want <= set(ids):
        n = len(rcv.msgs)
        rcv.pump(0.5)
        ids.extend(json.loads(bytes(m.body))["msg_id"] for m in rcv.msgs[n:])
    return ids


@pytest.mark.broker_limit(150)
def test_broker_down_at_start_then_delivered(tmp_path, rabbitmq, daemons,
                                             zctx, amqp_peers):
    q = durable_queue(amqp_peers)
    src = BridgeSource(zctx)
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_amqp(tmp_path, src, address="/amq/queue/" + q)},
        endpoints={"src": [src.url]}))
    rabbitmq.stop()
    try:
        bridge = start_bridge(daemons, cfg, wait="retrying in")
        src.wait_subscriber(daemon=bridge)
        sent = [make_envelope("org.fedoraproject.dev.down.x", {"n": i})
                for i in range(50)]
        for env in sent:
            src.send(env)
        time.sleep(1.0)
        assert bridge.running(), bridge.describe()
    finally:
        rabbitmq.start()
    t_up = time.monotonic()
    ids = drain_ids(amqp_peers, q, {e["msg_id"] for e in sent}, 60)
    print("first delivery %.1f s after RabbitMQ was ready" % (
        time.monotonic() - t_up))
    assert set(ids) == {e["msg_id"] for e in sent}
    assert ids[:len(sent)] == [e["msg_id"] for e in sent]     # in order
    assert "connected to 127.0.0.1" in bridge.stderr()
    stop_bridge(bridge)


OUTAGE_S = 30        # RabbitMQ stays down this long while messages flow
FLOW_MSGS = 5000


@pytest.mark.broker_limit(300)
def test_outage_and_kill9_during_flow(tmp_path, rabbitmq, daemons, zctx,
                                      amqp_peers):
    """5000 messages ZeroMQ -> AMQP while the bridge is killed with
    SIGKILL twice (restarted on the same spool) and RabbitMQ is down for
    30 s: every msg_id arrives.

    The flow: 600 messages at full speed with RabbitMQ up; kill 1; 200
    more; RabbitMQ stopped; then batches of 100 every ~0.9 s for the 30 s
    of the outage, with kill 2 about 10 s into it (everything since the
    outage is only in the spool then); RabbitMQ started again while the
    last batches are sent.

    Kill 1 comes while the bridge is busy sending (RabbitMQ up): just
    after the receiver got the last message of a burst, i.e. while its
    confirmations are being processed.

    Duplicates are allowed and counted (printed): delivery is
    at-least-once.  A record leaves the spool only when the broker's
    "accepted" has come back, and RabbitMQ confirms a persistent message
    only after its disk flush, which can trail the delivery to a consumer
    by some hundred milliseconds; the acked watermark also reaches the
    disk lazily (PERSIST_MS).  So the bridge restarted after kill 1 sends
    again everything after the oldest record not confirmed at the kill
    (typically a few hundred of them here, already delivered), and sends
    in flight when a connection drops are reported lost and resent,
    although RabbitMQ may have enqueued them.

    ZeroMQ PUB/SUB has no acknowledgement, so the spool's promise starts
    when the bridge has taken a message from its socket: before each
    SIGKILL the test makes sure everything sent was taken (kill 1: the
    burst's last message reached AMQP, and the spool is in order; kill 2:
    a 0.5 s pause), and it waits for the restarted bridge's subscription
    before sending again (BridgeSource)."""
    q = durable_queue(amqp_peers)
    src = BridgeSource(zctx)
    spool = tmp_path / "spool"
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_amqp(tmp_path, src, address="/amq/queue/" + q,
                        spool={"dir": str(spool)})},
        endpoints={"src": [src.url]}))
    sent = [make_envelope("org.fedoraproject.dev.flow.x", {"n": i})
            for i in range(FLOW_MSGS)]
    batches = [sent[i:i + 100] for i in range(0, len(sent), 100)]
    live = amqp_peers.receiver("/amq/queue/" + q, credit=1000)
    ids = []

    def pump(timeout=0.05):
        n = len(live.msgs)
        live.pump(timeout)
        ids.extend(json.loads(bytes(m.body))["msg_id"]
                   for m in live.msgs[n:])

    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)
    kills = 0

    def send(batch, receive=True):
        for env in batch:
            src.send(env)
        if receive:
            pump(0.1)
        else:
            time.sleep(0.1)

    def restart():
        nonlocal bridge, kills
        bridge.proc.send_signal(signal.SIGKILL)
        bridge.proc.wait(10)
        kills += 1
        bridge = start_bridge(daemons, cfg, wait=None)
        src.wait_subscriber(daemon=bridge)

    for b in batches[:5]:
        send(b)
    send(batches[5])
    deadline = time.monotonic() + 20
    while batches[5][-1]["msg_id"] not in ids:
        assert time.monotonic() < deadline, "burst not delivered: %s" % (
            bridge.describe())
        pump(0.01)
    restart()                               # kill 1: while confirming
    for b in batches[6:8]:
        send(b)
    pump(0.2)
    live.close()
    rabbitmq.stop()
    t_down = time.monotonic()
    during, after = batches[8:-6], batches[-6:]
    try:
        for i, b in enumerate(during):
            # spread over the outage: batch i goes out at i * step
            step = (OUTAGE_S - 3.0) / len(during)
            time.sleep(max(0.0, t_down + i * step - time.monotonic()))
            send(b, receive=False)
            if i == len(during) // 3:
                time.sleep(0.5)
                restart()                   # kill 2: broker down
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t_down)))
        print("RabbitMQ down for %.1f s, %d messages sent meanwhile" % (
            time.monotonic() - t_down, sum(len(b) for b in during)))
        assert bridge.running(), bridge.describe()
        rabbitmq.launch()                   # comes up while we send
        for b in after:
            send(b, receive=False)
    finally:
        rabbitmq.wait_started()
    assert kills == 2
    want = {e["msg_id"] for e in sent}
    ids += drain_ids(amqp_peers, q, want - set(ids), 90)
    missing = want - set(ids)
    dups = len(ids) - len(set(ids))
    print("received %d, distinct %d, duplicates %d, missing %d" % (
        len(ids), len(set(ids)), dups, len(missing)))
    if dups:
        num = {e["msg_id"]: e["msg"]["n"] for e in sent}
        count = collections.Counter(ids)
        again = sorted(num[i] for i, k in count.items() if k > 1)
        print("sent again: n = %d..%d" % (again[0], again[-1]))
    assert not missing, "%d msg_ids never arrived (e.g. %s)\n%s" % (
        len(missing), sorted(missing)[:5], bridge.describe())
    assert set(ids) <= want
    assert bridge.running(), bridge.describe()
    stop_bridge(bridge)


def test_session_ended_by_the_broker_is_reported(tmp_path, rabbitmq,
                                                 daemons, zctx, amqp_peers):
    """RabbitMQ refuses a link by ENDING THE SESSION (here: the bridge's
    non-durable /queue/<name> target against an existing durable queue,
    "amqp:precondition-failed").  The bridge must say so (with the
    broker's reason) and recover by reconnecting, not stall silently with
    its spool growing."""
    q = durable_queue(amqp_peers)
    src = BridgeSource(zctx)
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_amqp(tmp_path, src, address="/queue/" + q)},
        endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)
    src.send(make_envelope("org.fedoraproject.dev.sess.x", {"n": 1}))
    bridge.wait_stderr("precondition-failed", 10)
    bridge.wait_for(lambda: bridge.stderr().count("connected to") >= 2, 10,
                    "a reconnection")
    assert bridge.running()
    stop_bridge(bridge)


# ---- (e) wrong password --------------------------------------------------------

def test_wrong_password_logged_and_retried(tmp_path, rabbitmq, daemons,
                                           zctx):
    src = BridgeSource(zctx)
    secret = "not-the-guest-password-" + unique()
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_amqp(tmp_path, src, password_file=password_file(
            tmp_path, secret, "wrong"))}, endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg, wait=None)
    bridge.wait_for(lambda: bridge.stderr().count("retrying in") >= 2, 15,
                    "two failed attempts")
    err = bridge.stderr()
    fails = [line for line in err.splitlines() if "retrying in" in line]
    assert all(re.search(r"(?i)auth|sasl|login|credential", line)
               for line in fails), fails
    assert secret not in err                # never log the password
    assert "broker connected" not in err
    assert bridge.running()
    stop_bridge(bridge)


# ---- (f) TLS ----------------------------------------------------------------------

def plain_connections(rabbitmq):
    return len(re.findall(r"accepting AMQP connection .*-> 127\.0\.0\.1:%d\)"
                          % RMQ_AMQP_PORT, rabbitmq.log_text()))


def tls_delivers(tmp_path, rabbitmq, daemons, zctx, amqp_peers, prefix,
                 bridge_entry):
    """Start a bridge over TLS (bridge_entry(src) -> its config entry)
    and check that a signed envelope reaches a TLS receiver unchanged;
    returns the running bridge."""
    src = BridgeSource(zctx)
    rcv = amqp_peers.receiver("/topic/%s.#" % prefix, url=AMQPS_URL,
                              ca=rabbitmq.ca)
    cfg = write_config(tmp_path, bridge_config(
        {"out": bridge_entry(src)}, endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg)
    assert "(TLS)" in bridge.stderr()
    src.wait_subscriber(daemon=bridge)
    sync_amqp(src, rcv, prefix, bridge)
    env = py_sign(make_envelope(prefix + ".x", {"over": "tls"}))
    src.send(env)
    # a late sync probe may arrive first: wait for the envelope itself
    want = canonical(env).encode()
    deadline = time.monotonic() + 20
    while want not in rcv.bodies() and time.monotonic() < deadline:
        rcv.pump(0.1)
    assert want in rcv.bodies(), [b[:80] for b in rcv.bodies()]
    return bridge


@pytest.mark.parametrize("url,hostname", [
    (AMQPS_URL, None),
    # proton cannot verify an IP against the certificate: name the host
    ("amqps://127.0.0.1:%d" % RMQ_AMQPS_PORT, "localhost"),
], ids=["by_name", "by_ip_with_hostname"])  # (ports differ per run)
def test_tls_with_the_right_ca(tmp_path, rabbitmq, daemons, zctx, amqp_peers,
                               url, hostname):
    tls = {"ca": rabbitmq.ca}
    if hostname:
        tls["hostname"] = hostname
    plain = plain_connections(rabbitmq)
    bridge = tls_delivers(
        tmp_path, rabbitmq, daemons, zctx, amqp_peers,
        "org.fedoraproject.dev." + unique("tls"),
        lambda src: to_amqp(tmp_path, src, to=url, tls=tls))
    stop_bridge(bridge)
    assert plain_connections(rabbitmq) == plain


def tls_refused(tmp_path, rabbitmq, daemons, zctx, amqp_peers, prefix,
                bridge_entry):
    """Start a bridge whose TLS must fail: it retries with a TLS reason,
    never delivers and never falls back to plain AMQP."""
    src = BridgeSource(zctx)
    rcv = amqp_peers.receiver("/topic/%s.#" % prefix, url=AMQPS_URL,
                              ca=rabbitmq.ca)
    cfg = write_config(tmp_path, bridge_config(
        {"out": bridge_entry(src)}, endpoints={"src": [src.url]}))
    plain = plain_connections(rabbitmq)
    bridge = start_bridge(daemons, cfg, wait=None)
    src.wait_subscriber(daemon=bridge)
    for i in range(3):
        src.send(make_envelope(prefix + ".x", {"n": i}))
    bridge.wait_for(lambda: bridge.stderr().count("retrying in") >= 2, 15,
                    "two refused attempts")
    rcv.quiet(1.0)
    assert rcv.msgs == []
    err = bridge.stderr()
    fails = [line for line in err.splitlines() if "retrying in" in line]
    assert "broker connected" not in err
    assert bridge.running()
    stop_bridge(bridge)
    assert plain_connections(rabbitmq) == plain     # never fell back
    return fails


@pytest.mark.parametrize("case", ["wrong_ca", "wrong_host_name"])
def test_tls_with_a_wrong_ca_or_host_name_is_refused(tmp_path, rabbitmq,
                                                     daemons, zctx,
                                                     amqp_peers, case):
    """The broker's certificate is checked against the configured CA and
    against the host name (the URL's, or tls.hostname): the right CA with
    a name the certificate does not carry is refused just the same."""
    if case == "wrong_ca":
        tls = {"ca": rabbitmq.other_ca}
    else:
        tls = {"ca": rabbitmq.ca, "hostname": "broker.example.org"}
    fails = tls_refused(
        tmp_path, rabbitmq, daemons, zctx, amqp_peers,
        "org.fedoraproject.dev." + unique("badtls"),
        lambda src: to_amqp(tmp_path, src, to=AMQPS_URL, tls=tls))
    assert all(re.search(r"(?i)certificate|verify|tls|ssl", line)
               for line in fails), fails


# ---- (g) SASL EXTERNAL: the client certificate is the login ------------------

def external_entry(tmp_path, src, rabbitmq, other=False):
    """A ZeroMQ -> AMQPS bridge with a client certificate (the test CA's,
    or with other=True another CA's) and no user: the bridge offers SASL
    EXTERNAL only."""
    cert, key = rabbitmq.client(other=other)
    b = to_amqp(tmp_path, src, to=AMQPS_URL,
                tls={"ca": rabbitmq.ca, "cert": cert, "key": key})
    del b["user"], b["password_file"]
    return b


def test_sasl_external_logs_in_as_the_certificate(tmp_path, rabbitmq,
                                                  daemons, zctx, amqp_peers):
    """RabbitMQ (rabbitmq_auth_mechanism_ssl) maps the certificate's CN,
    fedmsg-bridge, to its user of that name: the connection is that user's,
    not guest's, and messages flow."""
    before = rabbitmq.log_text().count("user 'fedmsg-bridge' authenticated")
    bridge = tls_delivers(
        tmp_path, rabbitmq, daemons, zctx, amqp_peers,
        "org.fedoraproject.dev." + unique("ext"),
        lambda src: external_entry(tmp_path, src, rabbitmq))
    # RabbitMQ writes its log asynchronously: wait for the line
    wait_until(lambda: rabbitmq.log_text().count(
        "user 'fedmsg-bridge' authenticated") > before, 15,
        "RabbitMQ's log of the EXTERNAL login", bridge)
    stop_bridge(bridge)


def test_sasl_external_with_an_untrusted_certificate_is_refused(
        tmp_path, rabbitmq, daemons, zctx, amqp_peers):
    """A client certificate from another CA: the broker ends the TLS
    handshake; the bridge says so and keeps retrying."""
    fails = tls_refused(
        tmp_path, rabbitmq, daemons, zctx, amqp_peers,
        "org.fedoraproject.dev." + unique("extbad"),
        lambda src: external_entry(tmp_path, src, rabbitmq, other=True))
    assert all(re.search(r"(?i)certificate|tls|ssl|handshake|auth|sasl",
                         line) for line in fails), fails
