"""What consumers publish through fedmsg-hub on a broker reaches the
broker, from the first message on: tests/abi/publisher.c replies to each
message it consumes, and a subscriber on the reply's address (made before
anything is sent) must get the FIRST reply, then the others, in order.

The hub opens its sender to a new address on first use (AMQP 1.0: a link
that has no credit yet); the publish must wait for it (the hub's
per-address publish queue, hub/pubq.c), not fail.  On the session's
RabbitMQ (AMQP 1.0 and 0-9-1) and ActiveMQ (STOMP).  Through an outage
(a path to the broker that goes silent), publishes wait the same way and
none is lost."""

import json
import signal

import pika
import pytest

from conftest import (AMQ_STOMP_PORT, RMQ_AMQP_PORT, canonical, free_ports,
                      signed, unique, wait_until, write_config)
from test_bridge_faults import proxy  # noqa: F401
from test_hub_broker import StompSender, broker_hub_config, start_hub

pytestmark = pytest.mark.usefixtures("broker_time_limit")

DEV = "org.fedoraproject.dev."


class Pika091:
    """AMQP 0-9-1 (pika): a private queue bound to amq.topic for the
    replies, and a sender into the hub's queue."""

    def __init__(self, queue, key):
        self.queue = queue
        self.conn = pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", RMQ_AMQP_PORT,
            credentials=pika.PlainCredentials("guest", "guest")))
        self.ch = self.conn.channel()
        self.replies = self.ch.queue_declare("", exclusive=True).method.queue
        self.ch.queue_bind(self.replies, "amq.topic", routing_key=key)
        self.ch.queue_declare(queue, durable=True)
        self.got = []

    def send(self, body):
        self.ch.basic_publish("", self.queue, body, pika.BasicProperties(
            content_type="application/json"))

    def bodies(self):
        while True:
            method, _, body = self.ch.basic_get(self.replies, auto_ack=True)
            if method is None:
                return list(self.got)
            self.got.append(body)

    def close(self):
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - already gone is fine
            pass


@pytest.mark.parametrize("bus", ["amqp-rabbitmq", "stomp-activemq",
                                 "amqp091-rabbitmq"])
def test_first_publish_reaches_the_broker(tmp_path, request, hubs,
                                          amqp_peers, stomp_peers,
                                          abi_plugins, bus):
    proto, kind = bus.split("-")
    request.getfixturevalue(kind)
    q = unique("pubq")
    word = unique("reply")
    topic = DEV + "pubtest." + word
    mport = free_ports(1)[0]
    peer = None
    if proto == "amqp":
        cfg = broker_hub_config(tmp_path, "/queue/" + q, mport, None)
        snd = amqp_peers.sender("/queue/" + q)
        rcv = amqp_peers.receiver("/topic/" + topic)

        def bodies():
            rcv.pump(0.1)
            return rcv.bodies()
    elif proto == "stomp":
        cfg = broker_hub_config(tmp_path, "/queue/" + q, mport, None,
                                user=None, password_file=None,
                                bus="stomp://127.0.0.1:%d" % AMQ_STOMP_PORT)
        sp = stomp_peers(AMQ_STOMP_PORT)
        sid = sp.subscribe("/topic/" + topic)
        snd = StompSender(sp, "/queue/" + q)

        def bodies():
            return [b for _, b in sp.of(sid)]
    else:
        peer = snd = Pika091(q, topic)
        cfg = broker_hub_config(tmp_path, "/queue/" + q, mport, None,
                                bus="amqp091://127.0.0.1:%d" % RMQ_AMQP_PORT)
        bodies = peer.bodies
    cfg["hub"] = {k: v for k, v in cfg["hub"].items() if v is not None}
    cfg["consumers"] = {"replier": {
        "plugin": str(abi_plugins["publisher"]),
        "topics": [DEV + "pubin"],
        "config": {"modname": "pubtest", "topic": word}}}
    try:
        hub = start_hub(hubs, write_config(tmp_path, cfg), mport)
        msgs = [signed("pubin.x", {"n": i}) for i in range(4)]

        def replied():
            return [json.loads(b)["msg"]["in_reply_to"] for b in bodies()]
        # the first message alone: its reply is the hub's first publish
        # to that address
        snd.send(canonical(msgs[0]))
        wait_until(lambda: replied(), 20, "the first reply", hub)
        assert replied() == [msgs[0]["msg_id"]]
        for env in msgs[1:]:
            snd.send(canonical(env))
        wait_until(lambda: len(replied()) == len(msgs), 20, "every reply",
                   hub)
        assert replied() == [m["msg_id"] for m in msgs]
        assert hub.metrics()("fedmsg_hub_published_total",
                             result="failed") == 0
        assert hub.stop() == 0, hub.describe()
    finally:
        if peer:
            peer.close()


@pytest.mark.broker_limit(90)
def test_publishes_survive_a_broker_outage(tmp_path, rabbitmq, hubs,
                                           amqp_peers, abi_plugins,
                                           proxy):  # noqa: F811
    """The hub's heartbeat (a publish about every second) through a path
    to RabbitMQ that goes silent (test_bridge_faults.BlackholeProxy) until
    the hub calls the connection dead (AMQP idle timeout, "heartbeat": 3),
    then is cut (what went into the hole is gone, as with a broker that
    restarted) and heals: every heartbeat, numbered by the envelope's
    "i", reaches a subscriber (those lost in the hole sent again), in
    order of first arrival.  Then the same outage with the hub told to
    stop in it: what waits goes out during the drain, after the heal."""
    px = proxy(RMQ_AMQP_PORT)
    prefix = "org." + unique("hb")
    mport = free_ports(1)[0]
    cfg = broker_hub_config(tmp_path, "/queue/" + unique("out"), mport, None,
                            bus="amqp://127.0.0.1:%d" % px.port, heartbeat=3,
                            heartbeat_interval=0.2, drain_timeout=20)
    cfg["topic_prefix"] = prefix
    cfg["consumers"] = {"replier": {
        "plugin": str(abi_plugins["publisher"]), "topics": [prefix + ".in"],
        "config": {}}}
    rcv = amqp_peers.receiver("/topic/%s._heartbeat" % prefix)

    def numbers():
        rcv.pump(0.05)
        return [json.loads(b)["i"] for b in rcv.bodies()]

    def published():
        m = hub.metrics()
        return m("fedmsg_hub_published_total", result="ok") + \
            m("fedmsg_hub_published_total", result="failed")
    hub = start_hub(hubs, write_config(tmp_path, cfg), mport)
    wait_until(lambda: len(numbers()) >= 2, 15, "heartbeats", hub)
    px.blackhole()
    wait_until(lambda: "broker connection lost" in hub.stderr(), 30,
               "the hub calls the connection dead", hub)
    px.cut()
    before = published()
    wait_until(lambda: published() >= before + 2, 15,
               "heartbeats during the outage", hub)
    px.heal()
    sent = int(published())
    wait_until(lambda: set(range(1, sent + 1)) <= set(numbers()), 30,
               "every heartbeat published before the heal", hub)
    got = numbers()
    first = [n for i, n in enumerate(got) if n not in got[:i]]
    assert first == sorted(first), got
    assert hub.metrics()("fedmsg_hub_published_total", result="failed") == 0

    # again, but the hub is told to stop during the outage: what waits is
    # still sent, within drain_timeout, once the path is back
    px.blackhole()
    wait_until(lambda: hub.stderr().count("broker connection lost") >= 2,
               30, "the hub calls the connection dead again", hub)
    px.cut()
    before = published()
    wait_until(lambda: published() >= before + 2, 15,
               "heartbeats during the second outage", hub)
    sent = int(published())
    hub.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "stopping:" in hub.stderr(), 10, "stopping", hub)
    px.heal()
    assert hub.wait(25) == 0, hub.describe()
    assert "not confirmed by the broker" not in hub.stderr()
    wait_until(lambda: set(range(1, sent + 1)) <= set(numbers()), 15,
               "every heartbeat, those made before the stop too", hub)


class FanoutHub:
    """fedmsg-hub on RabbitMQ (AMQP 1.0, through bus when given) with
    tests/abi/fanout.c publishing on count topics of their own once
    go() is called, and a receiver of everything under the prefix."""

    def __init__(self, tmp_path, hubs, amqp_peers, abi_plugins, count,
                 **hub):
        prefix = "org." + unique("fan")
        mport = free_ports(1)[0]
        self.trigger = tmp_path / "go"
        cfg = broker_hub_config(tmp_path, "/queue/" + unique("in"), mport,
                                None, **hub)
        cfg["topic_prefix"] = prefix
        cfg["consumers"] = {"fan": {
            "plugin": str(abi_plugins["fanout"]), "topics": [prefix + ".in"],
            "config": {"trigger": str(self.trigger), "count": count}}}
        self.address = "/topic/%s.dev.fanout.fan." % prefix
        self.rcv = amqp_peers.receiver("/topic/%s.#" % prefix)
        self.hub = start_hub(hubs, write_config(tmp_path, cfg), mport)

    def go(self):
        self.trigger.write_text("go")

    def numbers(self):
        """The "i" of every publish received so far."""
        self.rcv.pump(0.05)
        return [json.loads(b)["msg"]["i"] for b in self.rcv.bodies()]

    def metric(self, name, **labels):
        return self.hub.metrics()(name, **labels)


@pytest.mark.broker_limit(150)
def test_publishes_to_ever_new_addresses_stay_bounded(tmp_path, rabbitmq,
                                                      hubs, amqp_peers,
                                                      abi_plugins,
                                                      proxy):  # noqa: F811
    """With the path to RabbitMQ silent, no new AMQP link gets credit, so
    what a consumer publishes on ever new topics waits, one queue per
    address (hub/pubq.c).  At most 1000 addresses may have publishes
    waiting: tests/abi/fanout.c publishes on 1001 topics, the 1001st is
    refused, said and counted, and when the path is back the other 1000
    reach the broker, each once."""
    px = proxy(RMQ_AMQP_PORT)
    f = FanoutHub(tmp_path, hubs, amqp_peers, abi_plugins, 1001,
                  bus="amqp://127.0.0.1:%d" % px.port, drain_timeout=5)
    px.blackhole()
    f.go()
    wait_until(lambda: f.metric("fedmsg_hub_published_total",
                                result="failed") >= 1, 30,
               "the publish past the bound refused", f.hub)
    assert f.metric("fedmsg_hub_published_total", result="failed") == 1
    assert f.metric("fedmsg_hub_publish_queue_full_total") == 1
    assert ("messages already wait for 1000 other addresses (the broker "
            "is not taking them): none more for %s1000" % f.address) in \
        f.hub.stderr(), f.hub.describe()
    assert not f.trigger.exists()
    px.cut()
    px.heal()
    wait_until(lambda: len(set(f.numbers())) >= 1000, 90,
               "the 1000 waiting publishes at the broker", f.hub)
    got = f.numbers()
    assert sorted(set(got)) == list(range(1000)), got[-5:]
    assert f.metric("fedmsg_hub_published_total", result="ok") == 1000
    assert f.hub.stop() == 0, f.hub.describe()


def test_publishes_on_more_topics_than_open_links(tmp_path, rabbitmq, hubs,
                                                   amqp_peers, abi_plugins):
    """A consumer publishes on 200 new topics at once, more than the 64
    sender links the hub keeps open on AMQP 1.0: each arrives once, and
    the connection stays up (a sender closed before it got credit was
    opened again under the same name: RabbitMQ ended the connection, on
    every reconnect, and 8 of 100 arrived)."""
    f = FanoutHub(tmp_path, hubs, amqp_peers, abi_plugins, 200)
    f.go()
    wait_until(lambda: len(f.numbers()) >= 200, 60, "200 publishes", f.hub)
    assert sorted(f.numbers()) == list(range(200))
    assert "broker connection lost" not in f.hub.stderr(), f.hub.describe()
    assert f.metric("fedmsg_hub_published_total", result="ok") == 200
    assert f.hub.stop() == 0, f.hub.describe()
