"""A publish the broker refuses is resent a bounded number of times, then
dropped, counted and logged with the broker's words; the other messages
still go out.  Against the test RabbitMQ, queues prepared with pika (a
real AMQP 0-9-1 client):

- STOMP: a SEND to /exchange/<missing>/k gets an ERROR ("not_found")
  that ends the connection; the bridge resends that message 4 times in
  all, then drops it; the messages for an exchange that exists arrive
  (RabbitMQ's ERROR names no receipt: the oldest send in flight is
  blamed after 2 such ERRORs in a row);
- STOMP: ActiveMQ answers a SEND to a temporary queue that does not exist
  with an ERROR naming its receipt: that message is resent 4 times in
  all, then dropped with ActiveMQ's message; the others arrive;
- AMQP 0-9-1: a full queue with x-overflow reject-publish nacks the
  publish (publisher confirms); 4 nacks, then dropped; the others arrive;
- AMQP 0-9-1: confirms RabbitMQ sends out of order (a durable queue's
  after the disk write) are each taken, none left to confirm_timeout.
"""

import time

import pika
import pytest

from conftest import (AMQ_STOMP_PORT, RMQ_AMQP_PORT, RMQ_STOMP_PORT,
                      BridgeSource,
                      bridge_config, bridge_stats, password_file, signed,
                      start_bridge, unique, write_config)

pytestmark = pytest.mark.usefixtures("broker_time_limit")


def channel():
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", RMQ_AMQP_PORT,
        credentials=pika.PlainCredentials("guest", "guest")))
    return conn, conn.channel()


def bridge_to(tmp_path, daemons, zctx, url, address, guest=True, **kw):
    """A ZeroMQ -> broker bridge "out" (RabbitMQ's guest, or anonymous)."""
    src = BridgeSource(zctx)
    b = {"from": "zmq", "to": url, "endpoints": ["src"],
         "address": address, "spool": {"dir": str(tmp_path / "spool")}}
    if guest:
        b.update({"user": "guest", "password_file": password_file(tmp_path),
                  "allow_plaintext_credentials": True})  # loopback broker
    b.update(kw)
    cfg = write_config(tmp_path, bridge_config(
        {"out": b}, endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)
    return src, bridge


def wait_ids(queues, want, timeout):
    """message ids (fedmsg_msg_id header, else message_id) read from the
    queue(s) until want is covered."""
    conn, ch = channel()
    ids = set()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not want <= ids:
            got = 0
            for q in [queues] if isinstance(queues, str) else queues:
                method, props, body = ch.basic_get(q, auto_ack=True)
                if method is not None:
                    got += 1
                    hdrs = props.headers or {}
                    ids.add(hdrs.get("fedmsg_msg_id") or props.message_id)
            if not got:
                time.sleep(0.1)
    finally:
        conn.close()
    return ids


def stop_ok(bridge):
    assert bridge.stop() == 0, bridge.describe()
    return bridge.stderr()


def test_stomp_error_is_resent_bounded_then_dropped(tmp_path, rabbitmq,
                                                    daemons, zctx):
    tail = unique("sterr")
    ok_topic = "org.fedoraproject.dev.%s.ok" % tail
    conn, ch = channel()
    ch.exchange_declare(ok_topic, "fanout", auto_delete=False)
    ch.queue_declare(ok_topic, auto_delete=False)
    ch.queue_bind(ok_topic, ok_topic)
    conn.close()
    # a SEND to an exchange that does not exist: ERROR "not_found"
    src, bridge = bridge_to(tmp_path, daemons, zctx,
                            "stomp://127.0.0.1:%d" % RMQ_STOMP_PORT,
                            "/exchange/{topic}/k", vhost="/")
    poison = signed(tail + ".nosuch", {"n": 0})
    ok = [signed(tail + ".ok", {"n": i}) for i in range(1, 4)]
    for env in [poison] + ok:
        src.send(env)
    # RabbitMQ 3.10 names no receipt-id: blamed on the oldest in flight;
    # its message is "not_found", or "Processing error" for a SEND that
    # came after it on the closing connection
    bridge.wait_stderr("dropped: the broker refused it: ERROR 4 times "
                       "from the broker: ", 40)
    want = {e["msg_id"] for e in ok}
    assert wait_ids(ok_topic, want, 20) >= want, bridge.describe()
    # (their RECEIPTs may still be on the way: "out" is not settled here)
    assert bridge_stats(stop_ok(bridge), "out")["dropped"] == 1


def test_amqp091_nack_is_resent_bounded_then_dropped(tmp_path, rabbitmq,
                                                     daemons, zctx):
    tail = unique("nack")
    full, ok = (unique("fullq"), unique("okq"))
    conn, ch = channel()
    ch.queue_declare(full, auto_delete=False, arguments={
        "x-max-length": 1, "x-overflow": "reject-publish"})
    ch.queue_declare(ok, auto_delete=False)
    ch.queue_bind(full, "amq.topic",
                  "org.fedoraproject.dev.%s.full" % tail)
    ch.queue_bind(ok, "amq.topic", "org.fedoraproject.dev.%s.ok" % tail)
    ch.basic_publish("", full, b"{}")           # full from now on
    conn.close()
    src, bridge = bridge_to(tmp_path, daemons, zctx,
                            "amqp091://127.0.0.1:%d" % RMQ_AMQP_PORT,
                            "/topic/{topic}")
    poison = signed(tail + ".full", {"n": 0})
    good = [signed(tail + ".ok", {"n": i}) for i in range(1, 4)]
    for env in [poison] + good:
        src.send(env)
    bridge.wait_stderr("dropped: the broker refused it: basic.nack 4 "
                       "times by the broker", 30)
    want = {e["msg_id"] for e in good}
    assert wait_ids(ok, want, 20) >= want, bridge.describe()
    err = stop_ok(bridge)
    assert bridge_stats(err, "out")["dropped"] == 1
    assert "record 1 basic.nack 4 times" in err, err[-3000:]


def test_stomp_error_naming_the_receipt(tmp_path, activemq, daemons, zctx,
                                        stomp_peers):
    tail = unique("amqerr")
    bad = "org.fedoraproject.dev.%s.bad" % tail
    okq = "/queue/%s.ok" % tail
    peer = stomp_peers(AMQ_STOMP_PORT)
    sid = peer.subscribe(okq, ack="auto")
    # DestinationDoesNotExistException, in an ERROR with our receipt-id
    src, bridge = bridge_to(
        tmp_path, daemons, zctx, "stomp://127.0.0.1:%d" % AMQ_STOMP_PORT,
        "{topic}", guest=False, topic_map={
            bad: "/remote-temp-queue/ID:%s-1:1:1" % tail,
            "org.fedoraproject.dev.%s.ok" % tail: okq})
    src.send(signed(tail + ".bad", {"n": 0}))
    ok = [signed(tail + ".ok", {"n": i}) for i in range(1, 4)]
    for env in ok:
        src.send(env)
    bridge.wait_stderr("record 1 dropped: the broker refused it: ERROR 4 "
                       "times from the broker: temp-queue://ID:%s" % tail, 40)
    got = peer.wait_count(sid, 3, 20)
    assert {h.get("fedmsg_msg_id") for h, b in got} == \
        {e["msg_id"] for e in ok}, got
    err = stop_ok(bridge)
    assert "naming no send" not in err, err[-3000:]
    assert bridge_stats(err, "out")["dropped"] == 1


def test_amqp091_confirms_out_of_order(tmp_path, rabbitmq, daemons, zctx):
    """RabbitMQ confirms a persistent message to a durable queue after its
    disk write, one to a transient queue at once: the second's basic.ack
    comes first.  Each is taken as it comes (none waits for a confirm
    that already arrived until confirm_timeout ends the connection)."""
    tail = unique("ooo")
    slow, fast = unique("slowq"), unique("fastq")
    conn, ch = channel()
    ch.queue_declare(slow, durable=True, auto_delete=False)
    ch.queue_declare(fast, durable=False, auto_delete=False)
    ch.queue_bind(slow, "amq.topic", "org.fedoraproject.dev.%s.slow" % tail)
    ch.queue_bind(fast, "amq.topic", "org.fedoraproject.dev.%s.fast" % tail)
    conn.close()
    src, bridge = bridge_to(tmp_path, daemons, zctx,
                            "amqp091://127.0.0.1:%d" % RMQ_AMQP_PORT,
                            "/topic/{topic}", confirm_timeout=2)
    sent = []
    for i in range(20):
        sent.append(signed(tail + (".slow" if i % 2 == 0 else ".fast"),
                           {"n": i}))
        src.send(sent[-1])
    want = {e["msg_id"] for e in sent}
    got = wait_ids([slow, fast], want, 20)
    assert got >= want, bridge.describe()
    # 20 confirmed: a marker published after them is confirmed too
    marker = signed(tail + ".fast", {"n": "marker"})
    src.send(marker)
    assert marker["msg_id"] in wait_ids(fast, {marker["msg_id"]}, 20)
    # an ack left waiting would end the connection after confirm_timeout
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline and "no confirm" not in \
            bridge.stderr():
        time.sleep(0.2)
    err = stop_ok(bridge)
    assert "no confirm" not in err, err[-3000:]
    st = bridge_stats(err, "out")
    assert st["retried"] == 0 and st["dropped"] == 0, st
