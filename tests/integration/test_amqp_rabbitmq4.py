"""fedmsg-bridge on AMQP 1.0 against what RabbitMQ 4 does differently from
the 3.10 the tests run (issue 14, "RabbitMQ 4 readiness"), played by a
listening python3-qpid-proton peer (conftest.ProtonListener):

- a delivery with no subject carries its routing key in the
  "x-routing-key" message annotation: the bridge takes it as the topic;
- an unroutable publish is settled "released": the bridge sends it again
  a bounded number of times with pauses, then counts it dropped with a
  clear log line, and the messages behind it still go out.
"""

import json
import time

import pytest

from conftest import (ProtonListener, SettlingPeer, Sub, answer_link,
                      bridge_config, bridge_stats, bridge_to_listener,
                      free_ports, make_envelope, start_bridge, tcp,
                      write_config)

pytestmark = pytest.mark.usefixtures("zmq_time_limit")

ROUTING_KEY = "org.fedoraproject.dev.rk4.update.comment"


def stop_bridge_ok(bridge):
    rc = bridge.stop()
    assert rc == 0, bridge.describe()
    return bridge.stderr()


class AnnotatedSender:
    """A peer the bridge receives from: every 0.2 s it sends a plain JSON
    body with no subject and no "to", the routing key only in the
    x-routing-key annotation (as RabbitMQ 4 may deliver)."""

    def __init__(self):
        from proton import Message, symbol
        from proton.handlers import MessagingHandler

        peer = self
        self.senders = []
        self.sent = 0

        class Handler(MessagingHandler):
            on_link_opening = staticmethod(answer_link)

            def on_link_opened(self, event):
                if event.link.is_sender:
                    peer.senders.append(event.link)
                    event.container.schedule(0.2, self)

            def on_timer_task(self, event):
                for snd in peer.senders:
                    if snd.credit > 0 and peer.sent < 100:
                        peer.sent += 1
                        snd.send(Message(
                            id="rk4-%d" % peer.sent,
                            body=json.dumps({"n": peer.sent}).encode(),
                            annotations={
                                symbol("x-exchange"): "amq.topic",
                                symbol("x-routing-key"): ROUTING_KEY}))
                event.container.schedule(0.2, self)

        self.handler = Handler()


def test_routing_key_from_the_annotation(tmp_path, daemons, zctx):
    peer = AnnotatedSender()
    listener = ProtonListener(free_ports(1)[0], peer.handler)
    try:
        port = free_ports(1)[0]
        cfg = write_config(tmp_path, bridge_config(
            {"in": {"from": "amqp://127.0.0.1:%d" % listener.port,
                    "to": "zmq", "source": "/queue/rk4",
                    "endpoints": tcp(port)}}))
        bridge = start_bridge(daemons, cfg)
        sub = Sub(zctx, tcp(port))
        deadline = time.monotonic() + 15
        while not sub.msgs and time.monotonic() < deadline:
            sub.pump(200)
        assert sub.msgs, bridge.describe()
        topic, body = sub.msgs[0]
        env = json.loads(body)
        assert topic.decode() == ROUTING_KEY, env
        assert env["topic"] == ROUTING_KEY
        assert env["msg"]["n"] >= 1
        assert bridge.stop() == 0, bridge.describe()
        assert listener.error is None, listener.error
    finally:
        listener.stop()


def test_released_publish_is_dropped_after_bounded_retries(tmp_path,
                                                           daemons, zctx):
    """One unroutable message then three routable ones: the unroutable one
    is delivered 4 times (pauses between), then logged and counted as
    dropped; the routable ones are accepted; the spool is empty at the
    end, so a restart would not send it again."""
    # releases "nowhere" subjects, as RabbitMQ 4 an unroutable publish
    peer = SettlingPeer([("nowhere", lambda h, d: h.release(
        d, delivered=False))])
    listener = ProtonListener(free_ports(1)[0], peer.handler)
    try:
        src, bridge = bridge_to_listener(tmp_path, daemons, zctx,
                                         listener.port, "/queue/rk4")
        lost = make_envelope("org.fedoraproject.dev.nowhere.x", {"n": 0})
        ok = [make_envelope("org.fedoraproject.dev.rk4.ok", {"n": i})
              for i in range(1, 4)]
        for env in [lost] + ok:
            src.send(env)
        # the link's line, then the bridge's (the one that counts it)
        bridge.wait_stderr("dropped: released 4 times by the broker", 30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and \
                not {e["msg_id"] for e in ok} <= set(peer.ids("rk4.ok")):
            time.sleep(0.1)
        assert {e["msg_id"] for e in ok} <= set(peer.ids("rk4.ok"))
        assert "record 1 released 4 times" in bridge.stderr()
        st = bridge_stats(stop_bridge_ok(bridge), "out")
        assert st["dropped"] == 1, st
        assert peer.ids("nowhere") == [lost["msg_id"]] * 4, peer.got
        assert listener.error is None, listener.error
    finally:
        listener.stop()

