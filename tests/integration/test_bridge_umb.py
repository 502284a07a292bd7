"""fedmsg-bridge's "umb" format (README "Message formats"): ZeroMQ ->
AMQP 1.0 (RabbitMQ 3.10) and STOMP (ActiveMQ) with the payload as the
body and its top-level scalars as application properties (typed) or
STOMP headers (escaped), as UMB consumers read them.  The readers are
real peers: python3-qpid-proton (conftest.AmqpReceiver) and stomp.py
(conftest.StompPeer), on the session's brokers.  broker_time_limit
comes after the broker fixtures: a broker's start is not the test's.
"""

import json
import time

import pytest

from conftest import (AMQ_STOMP_PORT, HOST, RMQ_AMQP_PORT, BridgeSource,
                      Sub, bridge_config, bridge_stats, canonical, free_ports,
                      make_envelope, password_file, start_bridge, tcp,
                      unique, wait_until, write_config)


AMQP_URL = "amqp://127.0.0.1:%d" % RMQ_AMQP_PORT
STOMP_URL = "stomp://127.0.0.1:%d" % AMQ_STOMP_PORT

PAYLOAD = {"name": "bash", "seq": 7, "big": 1234567890123, "ok": True,
           "ratio": 2.5, "text": "a:b \\ caf\u00e9\nline two",
           "nested": {"a": 1}, "list": [1], "nothing": None,
           "msg_id": "payload's own", "timestamp": 1}


def umb_bridge(tmp_path, url, **kw):
    b = {"from": "zmq", "to": url, "endpoints": ["src"], "format": "umb",
         "address": "/topic/{topic}",
         "spool": {"dir": str(tmp_path / "spool")}}
    b.update(kw)
    return b


def is_sync(topic):
    return ".zz_sync" in (topic or "")


def sync(src, prefix, seen, bridge, timeout=15.0):
    """Send sync messages until the reader (seen() -> topics) has one."""
    deadline = time.monotonic() + timeout
    n = 0
    while not any(is_sync(t) for t in seen()):
        n += 1
        src.send(make_envelope("%s.zz_sync%d" % (prefix, n), {"n": n}))
        time.sleep(0.2)
        assert bridge.running(), bridge.describe()
        assert time.monotonic() < deadline, "no sync message went through"


def test_umb_on_amqp10_typed_properties(tmp_path, rabbitmq, daemons, zctx,
                                        amqp_peers, broker_time_limit):
    prefix = "org.fedoraproject.dev." + unique("umb")
    src = BridgeSource(zctx)
    rcv = amqp_peers.receiver("/topic/%s.#" % prefix)
    cfg = write_config(tmp_path, bridge_config(
        {"out": umb_bridge(tmp_path, AMQP_URL, user="guest",
                           password_file=password_file(tmp_path),
                           allow_plaintext_credentials=True)},
        endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)

    def topics():
        rcv.pump(0.05)
        return [m.properties.get("topic") for m in rcv.msgs]
    sync(src, prefix, topics, bridge)

    env = make_envelope(prefix + ".build.done", PAYLOAD)
    src.send(env)
    def arrived():
        rcv.pump(0.05)
        return any(m.id == env["msg_id"] for m in rcv.msgs)
    wait_until(arrived, 15, "the umb message on AMQP")
    m = [m for m in rcv.msgs if m.id == env["msg_id"]][0]
    assert json.loads(bytes(m.body)) == PAYLOAD         # the payload only
    assert m.subject == env["topic"]
    p = m.properties
    assert p["topic"] == env["topic"]
    assert p["msg_id"] == env["msg_id"]                 # not the payload's
    assert p["fedmsg_c_bridge"] == "%s/out" % HOST
    # typed: integers, booleans and reals stay what they are
    assert p["seq"] == 7 and type(p["seq"]) is int
    assert p["big"] == 1234567890123
    assert p["ok"] is True
    assert p["ratio"] == 2.5 and isinstance(p["ratio"], float)
    assert p["name"] == "bash" and p["text"] == PAYLOAD["text"]
    for k in ("nested", "list", "timestamp"):          # no scalar / reserved
        assert k not in p, k
    st = bridge_stats(_stop(bridge), "out")
    assert st["dropped"] == 0


def test_umb_on_stomp_escaped_headers(tmp_path, activemq, daemons, zctx,
                                      stomp_peers, broker_time_limit):
    prefix = "org.fedoraproject.dev." + unique("umbs")
    src = BridgeSource(zctx)
    peer = stomp_peers(AMQ_STOMP_PORT)
    sid = peer.subscribe("/topic/%s.>" % prefix)
    cfg = write_config(tmp_path, bridge_config(
        {"out": umb_bridge(tmp_path, STOMP_URL)},
        endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)
    sync(src, prefix, lambda: [h.get("topic") for h, _ in peer.of(sid)],
         bridge)

    env = make_envelope(prefix + ".build.done", PAYLOAD)
    src.send(env)
    wait_until(lambda: any(h.get("msg_id") == env["msg_id"]
                           for h, _ in peer.of(sid)), 15,
               "the umb message on STOMP")
    h, body = [(h, b) for h, b in peer.of(sid)
               if h.get("msg_id") == env["msg_id"]][0]
    assert json.loads(body) == PAYLOAD
    assert h["topic"] == env["topic"]
    assert h["fedmsg_c_bridge"] == "%s/out" % HOST
    assert h["name"] == "bash" and h["seq"] == "7" and h["ok"] == "true"
    assert float(h["ratio"]) == 2.5
    # ':' '\\' and the line feed travel escaped (STOMP 1.2) and come back
    assert h["text"] == PAYLOAD["text"]
    for k in ("nested", "list"):
        assert k not in h, k
    assert h.get("timestamp") != "1"    # ActiveMQ's own, not the payload's
    _stop(bridge)


def test_umb_from_stomp_is_wrapped(tmp_path, activemq, daemons, zctx,
                                   stomp_peers, broker_time_limit):
    """Back to ZeroMQ: the payload becomes an envelope's msg, as for the
    fedmsg format's plain bodies."""
    prefix = "org.fedoraproject.dev." + unique("umbw")
    (port,) = free_ports(1)
    cfg = write_config(tmp_path, bridge_config({"in": {
        "from": STOMP_URL, "to": "zmq", "format": "umb",
        "source": "/topic/%s.>" % prefix, "endpoints": tcp(port)}}))
    bridge = start_bridge(daemons, cfg)
    sub = Sub(zctx, "tcp://127.0.0.1:%d" % port)
    peer = stomp_peers(AMQ_STOMP_PORT)
    body = {"topic": "a payload field, not the envelope's", "n": 1}

    def got():
        peer.send("/topic/%s.x" % prefix, canonical(body))
        sub.pump(300)
        return sub.msgs
    wait_until(got, 20, "a wrapped message on ZeroMQ")
    topic, raw = sub.msgs[0]
    env = json.loads(raw)
    assert topic.decode() == env["topic"] == prefix + ".x"
    assert env["msg"] == body
    _stop(bridge)


def test_umb_from_amqp10_empty_body_refused(tmp_path, rabbitmq, daemons,
                                           zctx, amqp_peers,
                                           broker_time_limit):
    """A data section of no bytes: qpid-proton hands the bridge a pointer
    into its own buffer, with no NUL after it.  The bridge refuses it with
    a reason, reading nothing past it (it used to read on to the next NUL:
    test_broker_wrap shows that under ASan), and goes on with the next
    message."""
    prefix = "org.fedoraproject.dev." + unique("umbe")
    q = "/queue/" + unique("umbe")
    (port,) = free_ports(1)
    cfg = write_config(tmp_path, bridge_config({"in": {
        "from": AMQP_URL, "to": "zmq", "format": "umb", "source": q,
        "endpoints": tcp(port), "user": "guest",
        "password_file": password_file(tmp_path),
        "allow_plaintext_credentials": True}}))
    bridge = start_bridge(daemons, cfg)
    snd = amqp_peers.sender(q)
    sub = Sub(zctx, tcp(port))
    n = [0]

    def synced():
        n[0] += 1
        snd.send(canonical({"sync": n[0]}), subject=prefix + ".sync")
        sub.pump(300)
        return sub.msgs
    wait_until(synced, 20, "a wrapped message on ZeroMQ")

    snd.send(b"", subject=prefix + ".empty", msg_id="ID:empty")
    snd.send(canonical({"after": True}), subject=prefix + ".after")
    def after_arrived():
        sub.pump(100)
        return any(t.decode() == prefix + ".after" for t, _ in sub.msgs)
    wait_until(after_arrived, 15, "the message after the empty one")
    # every sync message went first (one queue); nothing came of the empty
    got = [(t.decode(), json.loads(b)["msg"]) for t, b in sub.msgs
           if t.decode() != prefix + ".sync"]
    assert got == [(prefix + ".after", {"after": True})], got
    err = _stop(bridge)
    assert "rejected a message: the body is empty, not JSON" in err, err
    st = bridge_stats(err, "in")
    assert (st["invalid"], st["wrapped"]) == (1, n[0] + 1), st


def _stop(bridge):
    rc = bridge.stop()
    assert rc == 0, bridge.describe()
    return bridge.stderr()
