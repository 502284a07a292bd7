"""fedmsg-bridge over AMQP 0-9-1 (amqp091://, rabbitmq-c) against the test
RabbitMQ, with the real fedora-messaging (../shared/peers) at the other
end: its CLI consumes what the bridge publishes in the
"fedora-messaging" format, and its api.publish feeds a bridge back to
ZeroMQ, where the real fedmsg checks the bridge's signature.
"""

import json
import time

import pytest

from amqp091_setup import (URL091, fm_consume, fm_run, fm_toml,
                           guest_entry)
from conftest import (BridgeSource, Sub, bridge_config, bridge_stats,
                      free_ports, signed, start_bridge, tcp, unique,
                      write_config)
from peers import need_fedora_messaging

pytestmark = pytest.mark.usefixtures("broker_time_limit")


def amqp091_entry(tmp_path, **kw):
    return guest_entry(tmp_path, format="fedora-messaging", **kw)


def test_zmq_to_fedora_messaging_consumer(tmp_path, rabbitmq, daemons, zctx):
    """ZeroMQ -> fedmsg-bridge -> RabbitMQ (0-9-1) -> fedora-messaging's
    own `consume --callback`: what fedmsg-migration-tools would give."""
    need_fedora_messaging()
    prefix = "org.fedoraproject.dev." + unique("f")
    queue = unique("fmq")
    src = BridgeSource(zctx)
    topology = {
        "exchanges": {"zmq.topic": {"type": "topic", "durable": True}},
        "queues": {queue: {"durable": True, "auto_delete": False}},
        "bindings": [{"queue": queue, "exchange": "zmq.topic",
                      "routing_keys": [prefix + ".#"]}]}
    cfg = write_config(tmp_path, bridge_config(
        {"out": amqp091_entry(tmp_path, **{
            "from": "zmq", "to": URL091, "endpoints": ["src"],
            "address": "/exchange/zmq.topic/{topic}",
            "spool": {"dir": str(tmp_path / "spool")}}, **topology)},
        endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)

    msgs = [
        {"seq": 0, "agent": "alice", "nested": {"a": [1, 2.5, None]}},
        {"seq": 1, "user": "bob", "text": "caf\u00e9 \u2192"},
        {"seq": 2, "big": 1234567890123, "ok": True},
    ]
    sent = [signed(prefix.split("dev.", 1)[1] + ".x%d" % i, m)
            for i, m in enumerate(msgs)]
    sent[0]["headers"] = {"origin": "test", "n": 7}
    sent[0].pop("signature", None)      # headers are outside the signature
    for env in sent:
        src.send(env)

    got, err = fm_consume(tmp_path, fm_toml(tmp_path / "fm.toml", queue,
                                            "zmq.topic", [prefix + ".#"]),
                          len(sent))
    assert [g["id"] for g in got] == [e["msg_id"] for e in sent]
    for e, g in zip(sent, got):
        assert g["topic"] == e["topic"]
        assert g["body"] == e["msg"]
        assert g["content_type"] == "application/json"
        assert g["content_encoding"] == "utf-8"
        assert g["delivery_mode"] == 2
        h = g["headers"]
        assert h["fedora_messaging_schema"] == "base.message"
        assert h["fedora_messaging_severity"] == 20
        assert g["severity"] == 20
        assert h["sent-at"] == time.strftime(
            "%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(int(e["timestamp"])))
        assert h["priority"] == 0
        for k, v in e.get("headers", {}).items():
            assert h[k] == v
    assert got[0]["headers"]["fedora_messaging_user_alice"] is True
    assert got[1]["headers"]["fedora_messaging_user_bob"] is True
    assert "misbehaving" not in err
    rc = bridge.stop()
    assert rc == 0, bridge.describe()
    st = bridge_stats(bridge.stderr(), "out")
    assert (st["out"], st["dropped"]) == (len(sent), 0)


def test_fedora_messaging_publisher_to_zmq(tmp_path, rabbitmq, daemons, zctx,
                                           dev_pki, fedmsg_peer):
    """fedora-messaging's api.publish -> RabbitMQ -> fedmsg-bridge ->
    ZeroMQ: an envelope as AmqpToZmq makes it, signed by the bridge, and
    a redelivery keeps its msg_id."""
    need_fedora_messaging()
    prefix = "org.fedoraproject.dev." + unique("g")
    queue = unique("inq")
    port = free_ports(1)[0]
    topology = {
        "queues": {queue: {"durable": True, "auto_delete": False,
                           "arguments": {"x-message-ttl": 60000}}},
        "bindings": [{"queue": queue, "exchange": "amq.topic",
                      "routing_keys": [prefix + ".#"]}]}
    cfg = write_config(tmp_path, bridge_config(
        {"in": amqp091_entry(tmp_path, **{
            "from": URL091, "to": "zmq", "source": "/queue/" + queue,
            "endpoints": tcp(port)}, **topology)},
        sign_messages=True, ssldir=str(dev_pki),
        certnames={"bridge": "bridge-localhost"}))
    bridge = start_bridge(daemons, cfg)
    sub = Sub(zctx, tcp(port))
    time.sleep(0.3)     # the SUB's subscription reaches the bridge's PUB

    conf = fm_toml(tmp_path / "fm.toml")
    script = (
        "import json, sys\n"
        "from fedora_messaging import api, message\n"
        "for i in range(3):\n"
        "    m = message.Message(topic=sys.argv[1] + '.x%d' % i,\n"
        "                        body={'seq': i, 'who': 'carol'},\n"
        "                        headers={'extra': i})\n"
        "    api.publish(m)\n"
        "    print(json.dumps({'id': m.id, 'topic': m.topic,\n"
        "                      'headers': m._headers}))\n")
    published = [json.loads(line) for line in
                 fm_run(tmp_path, conf, script, prefix).splitlines()]
    deadline = time.monotonic() + 15
    while len(sub.msgs) < 3 and time.monotonic() < deadline:
        sub.pump(200)
    assert len(sub.msgs) == 3, bridge.describe()
    envs = [json.loads(body) for _, body in sub.msgs]
    for pub, (topic, _), e in zip(published, sub.msgs, envs):
        assert topic.decode() == pub["topic"] == e["topic"]
        assert e["msg"]["who"] == "carol"
        assert e["username"] == "amqp-bridge"
        year = pub["headers"]["sent-at"][:4]
        assert e["msg_id"] == "%s-%s" % (year, pub["id"])
        assert e["headers"]["extra"] == pub["headers"]["extra"]
        assert e["headers"]["fedora_messaging_severity"] == 20
        sent_at = time.strptime(pub["headers"]["sent-at"][:19],
                                "%Y-%m-%dT%H:%M:%S")
        assert e["timestamp"] == int(time.mktime(sent_at) - time.timezone)
    fedmsg_peer.assert_signed_by(envs, "bridge-localhost",
                                 ca=dev_pki / "ca.crt")
    rc = bridge.stop()
    assert rc == 0, bridge.describe()
    st = bridge_stats(bridge.stderr(), "in")
    assert (st["wrapped"], st["out"], st["invalid"]) == (3, 3, 0)
