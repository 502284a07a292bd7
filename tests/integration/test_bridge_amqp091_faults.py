"""fedmsg-bridge over AMQP 0-9-1 (amqp091://, rabbitmq-c) when things go
wrong, against the test RabbitMQ; pika (python3-pika, a real AMQP 0-9-1
client) prepares queues and reads what arrived.

- a broker restart while publishing with confirms loses nothing (the
  spool advances on basic.ack only);
- a missing exchange with passive declares, a queue redeclared with other
  arguments, an unknown vhost (from the URL's path) and a TLS certificate
  that does not name the host are each refused with a clear log line;
- a delivery over max_message_bytes is rejected from its frame header,
  and the next one still flows;
- a broker address that accepts TCP and never answers does not stall the
  other links of the same bridge (the login runs off the poll loop);
- acks, sent in batches with "multiple", cover exactly what the bridge
  took: a batch smaller than the prefetch is acked, a rejected delivery
  among accepted ones is dead-lettered, not acked.
"""

import json
import socket
import time

import pika
import pytest

from amqp091_setup import URL091, drain_ids, guest_entry, pika_channel
from conftest import (BridgeSource, Probes, Sub, bridge_config, free_ports,
                      signed, start_bridge, tcp, unique, write_config)

pytestmark = pytest.mark.usefixtures("broker_time_limit")


def queue_with_dlq(name):
    """A durable queue whose rejected messages go to a dead-letter queue
    of its own: the two names (from name), and the pika connection and
    channel that declared them (the caller closes the connection)."""
    q, dlq = unique(name + "q"), unique(name + "dlq")
    conn, ch = pika_channel()
    ch.queue_declare(dlq, durable=True)
    ch.queue_declare(q, durable=True, arguments={
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
    return q, dlq, conn, ch


def bridge_from_queue(tmp_path, daemons, zctx, queue, ch, config=None,
                      **kw):
    """A 0-9-1 -> ZeroMQ bridge reading queue (its entry updated with kw,
    the bridge's config with config), started, and a Sub on its
    publisher that a probe published on channel ch has reached (a message
    published before the SUB joins is lost: the slow joiner)."""
    port = free_ports(1)[0]
    cfg = write_config(tmp_path, bridge_config(
        {"in": guest_entry(tmp_path, **{
            "from": URL091, "to": "zmq", "source": "/queue/" + queue,
            "endpoints": tcp(port)}, **kw)}, **(config or {})))
    bridge = start_bridge(daemons, cfg)
    sub = Sub(zctx, tcp(port))

    def send(frames):
        # the probe's msg_id also as message_id: a fedora-messaging
        # bridge takes that for the envelope it wraps the probe in
        ch.basic_publish("", queue, frames[1], pika.BasicProperties(
            content_type="application/json",
            message_id=json.loads(frames[1])["msg_id"]))
    sub.sync(send, Probes(), timeout=15)
    return bridge, sub


@pytest.mark.broker_limit(150)
def test_broker_restart_with_confirms_loses_nothing(tmp_path, rabbitmq,
                                                    daemons, zctx):
    """100 messages, RabbitMQ stopped, 100 more while it is down, RabbitMQ
    back: all 200 are in the durable queue (the URL's "/%2f" path is the
    default vhost)."""
    rabbitmq.ensure()
    prefix = "org.fedoraproject.dev." + unique("rs")
    queue = unique("rsq")
    src = BridgeSource(zctx)
    topology = {
        "queues": {queue: {"durable": True, "auto_delete": False}},
        "bindings": [{"queue": queue, "exchange": "amq.topic",
                      "routing_keys": [prefix + ".#"]}]}
    cfg = write_config(tmp_path, bridge_config(
        {"out": guest_entry(tmp_path, **{
            "from": "zmq", "to": URL091 + "/%2f", "endpoints": ["src"],
            "address": "/topic/{topic}", "format": "fedora-messaging",
            "spool": {"dir": str(tmp_path / "spool")}}, **topology)},
        endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)
    sent = [signed(prefix.split("dev.", 1)[1] + ".m", {"n": i})
            for i in range(200)]
    for env in sent[:100]:
        src.send(env)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and \
            rabbitmq.queues().get(queue, (0,))[0] < 100:
        time.sleep(0.2)
    rabbitmq.stop()
    try:
        for env in sent[100:]:
            src.send(env)
        bridge.wait_stderr("cannot connect", 20)
    finally:
        rabbitmq.start()
    want = {e["msg_id"] for e in sent}
    ids = drain_ids(queue, want, 60)
    assert set(ids) == want, bridge.describe()
    assert bridge.stop() == 0, bridge.describe()


def refused(tmp_path, daemons, zctx, needle, to=URL091, **kw):
    """A ZeroMQ -> 0-9-1 bridge that cannot get going: the log line with
    needle, and it never says it connected."""
    src = BridgeSource(zctx)
    cfg = write_config(tmp_path, bridge_config(
        {"out": guest_entry(tmp_path, **{
            "from": "zmq", "to": to, "endpoints": ["src"],
            "address": "/topic/{topic}",
            "spool": {"dir": str(tmp_path / "spool")}}, **kw)},
        endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg, wait=None)
    bridge.wait_stderr(needle, 20)
    assert "connected to" not in bridge.stderr(), bridge.describe()
    bridge.stop()
    return [line for line in bridge.stderr().splitlines() if needle in line]


def test_missing_exchange_with_passive_declares(tmp_path, rabbitmq, daemons,
                                                zctx):
    x = unique("nox")
    lines = refused(tmp_path, daemons, zctx, "checking exchange '%s'" % x,
                    passive_declares=True,
                    exchanges={x: {"type": "topic", "durable": True}})
    assert "404" in lines[0] and "NOT_FOUND" in lines[0], lines


def test_queue_redeclared_with_other_arguments(tmp_path, rabbitmq, daemons,
                                               zctx):
    q = unique("argq")
    conn, ch = pika_channel()
    ch.queue_declare(q, durable=True, arguments={"x-message-ttl": 1000})
    conn.close()
    lines = refused(tmp_path, daemons, zctx, "declaring queue '%s'" % q,
                    queues={q: {"durable": True,
                                "arguments": {"x-message-ttl": 60000}}})
    assert "PRECONDITION_FAILED" in lines[0], lines
    assert "x-message-ttl" in lines[0], lines


def test_unknown_vhost_from_the_url_path(tmp_path, rabbitmq, daemons, zctx):
    lines = refused(tmp_path, daemons, zctx, "vhost 'fm-no-such'",
                    to=URL091 + "/fm%2Dno-such")
    assert "login" in lines[0] or "access" in lines[0].lower(), lines


def test_tls_certificate_not_naming_the_host(tmp_path, rabbitmq, daemons,
                                             zctx):
    """The certificate names localhost, the URL 127.0.0.1: refused (and
    the URL list cannot fall back to plain amqp091://)."""
    lines = refused(tmp_path, daemons, zctx, "does not name this host",
                    to="amqps091://127.0.0.1:%d" % rabbitmq.amqps_port,
                    tls={"ca": rabbitmq.ca})
    assert lines


def test_oversized_delivery_rejected_from_its_header(tmp_path, rabbitmq,
                                                     daemons, zctx):
    """max_message_bytes 4096: a 20000-byte delivery is rejected (to the
    queue's dead-letter queue) without being read; the next one flows."""
    q, dlq, conn, ch = queue_with_dlq("big")
    bridge, sub = bridge_from_queue(tmp_path, daemons, zctx, q, ch,
                                    config={"max_message_bytes": 4096},
                                    format="fedora-messaging")
    props = pika.BasicProperties(content_type="application/json",
                                 message_id="big-1")
    ch.basic_publish("", q, json.dumps({"pad": "x" * 20000}), props)
    props.message_id = "small-1"
    ch.basic_publish("", q, json.dumps({"ok": 1}), props)
    deadline = time.monotonic() + 15
    while not sub.msgs and time.monotonic() < deadline:
        sub.pump(200)
    assert len(sub.msgs) == 1, bridge.describe()
    assert json.loads(sub.msgs[0][1])["msg"] == {"ok": 1}
    assert "rejected a 20011-byte message (limit 4096)" in bridge.stderr()
    method, p, body = ch.basic_get(dlq, auto_ack=True)
    conn.close()
    assert method is not None and p.message_id == "big-1"
    assert bridge.stop() == 0, bridge.describe()


@pytest.mark.broker_limit(120)
def test_acks_cover_what_was_taken(tmp_path, rabbitmq, daemons, zctx):
    """7 JSON bodies with 2 that are not JSON among them: the 7 reach
    ZeroMQ, the 2 are rejected to the dead-letter queue, and while the
    bridge still runs nothing is left unacknowledged (fewer accepts than
    a batch are acked when the frames at hand are done)."""
    q, dlq, conn, ch = queue_with_dlq("ack")
    bridge, sub = bridge_from_queue(tmp_path, daemons, zctx, q, ch)
    bodies = ['{"n": 1}', 'not json 1', '{"n": 2}', '{"n": 3}',
              'not json 2', '{"n": 4}', '{"n": 5}', '{"n": 6}', '{"n": 7}']
    for i, b in enumerate(bodies):
        ch.basic_publish("", q, b, pika.BasicProperties(
            content_type="application/json", message_id="ack-%d" % i))
    deadline = time.monotonic() + 15
    while len(sub.msgs) < 7 and time.monotonic() < deadline:
        sub.pump(200)
    assert sorted(json.loads(body)["msg"]["n"] for _, body in sub.msgs) \
        == list(range(1, 8)), bridge.describe()
    deadline = time.monotonic() + 20
    while rabbitmq.queues().get(q) != (0, 0, 1) and \
            time.monotonic() < deadline:
        time.sleep(0.5)
    assert rabbitmq.queues().get(q) == (0, 0, 1), bridge.describe()
    ids = []
    for _ in range(2):
        method, p, body = ch.basic_get(dlq, auto_ack=True)
        assert method is not None
        ids.append(p.message_id)
    conn.close()
    assert sorted(ids) == ["ack-1", "ack-4"]
    assert bridge.stop() == 0, bridge.describe()
    assert rabbitmq.queues().get(q) == (0, 0, 0)


@pytest.mark.broker_limit(120)
def test_silent_broker_does_not_stall_the_other_links(tmp_path, rabbitmq,
                                                      daemons, zctx):
    """Two paths in one bridge: "stuck" to a listening socket that never
    says a word (connect_timeout 120 s, so rabbitmq-c's login waits that
    long) and "flowing" to RabbitMQ.  The flowing path connects and
    delivers its 20 messages while the stuck one is still logging in."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)            # the kernel completes TCP; nobody answers
    prefix = "org.fedoraproject.dev." + unique("flow")
    queue = unique("flowq")
    src = BridgeSource(zctx)
    cfg = write_config(tmp_path, bridge_config({
        "stuck": guest_entry(tmp_path, **{
            "from": "zmq", "endpoints": ["src"],
            "to": "amqp091://127.0.0.1:%d" % silent.getsockname()[1],
            "address": "/topic/{topic}", "connect_timeout": 120,
            "spool": {"dir": str(tmp_path / "spool-stuck")}}),
        "flowing": guest_entry(tmp_path, **{
            "from": "zmq", "to": URL091, "endpoints": ["src"],
            "address": "/topic/{topic}", "format": "fedora-messaging",
            "spool": {"dir": str(tmp_path / "spool-flow")},
            "queues": {queue: {"durable": True, "auto_delete": False}},
            "bindings": [{"queue": queue, "exchange": "amq.topic",
                          "routing_keys": [prefix + ".#"]}]})},
        endpoints={"src": [src.url]}))
    try:
        bridge = start_bridge(daemons, cfg, wait="bridge flowing: broker "
                              "connected", timeout=30)
        src.wait_subscriber(daemon=bridge)
        sent = [signed(prefix.split("dev.", 1)[1] + ".m", {"n": i})
                for i in range(20)]
        for env in sent:
            src.send(env)
        want = {e["msg_id"] for e in sent}
        ids = drain_ids(queue, want, 30)
        assert set(ids) == want, bridge.describe()
        assert "stuck: broker connected" not in bridge.stderr()
        assert bridge.stop() == 0, bridge.describe()
    finally:
        silent.close()
