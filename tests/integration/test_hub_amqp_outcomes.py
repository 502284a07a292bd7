"""How fedmsg-hub settles AMQP deliveries, seen from the other end: a
python3-qpid-proton peer that LISTENS (the hub connects to it as to a
broker), sends signed envelopes on the link the hub receives on, and
records each delivery's outcome as proton decodes it.

Consumer verdict -> AMQP outcome:
  ok                          accepted
  drop                        rejected
  halt (not processed)        released
  retry, then the hub stops   modified with delivery-failed = true (the
  while it waits to retry     attempt counts toward the delivery-count)

RabbitMQ before 4.0 ends the session on "modified" (tests/brokers/
README.md), so against it the hub answers "released" instead; the peer
here can say it is RabbitMQ 3.10 in its open frame's properties, as
RabbitMQ does, and then gets "released".  (test_hub_broker.py runs the
same verdicts against a real RabbitMQ.)

The peer runs in conftest.ProtonListener's thread; the test reads what
it recorded under a lock."""

import threading

import pytest

from conftest import (ProtonListener, answer_link, bus_config, canonical,
                      free_ports, signed, vector_validation, wait_until,
                      write_config)

pytestmark = pytest.mark.usefixtures("hub_time_limit")


class OutcomePeer:
    """Sends envelopes on the link the hub receives on; outcomes[msg_id] =
    (state name, delivery-failed, undeliverable-here)."""

    def __init__(self, envelopes, properties=None):
        from proton import symbol
        from proton.handlers import MessagingHandler

        peer = self
        self.todo = list(envelopes)
        self.outcomes = {}
        self.lock = threading.Lock()
        props = {symbol(k): v for k, v in (properties or {}).items()}

        class Handler(MessagingHandler):
            def __init__(self):
                super().__init__(auto_accept=False, auto_settle=True)
                self.tags = {}

            def on_connection_opening(self, event):
                event.connection.properties = props

            on_link_opening = staticmethod(answer_link)

            def on_sendable(self, event):
                from proton import Message
                snd = event.sender
                while snd.credit and peer.todo:
                    env = peer.todo.pop(0)
                    dlv = snd.send(Message(
                        body=canonical(env).encode("utf-8"), inferred=True,
                        id=env["msg_id"], content_type="application/json"))
                    self.tags[dlv.tag] = env["msg_id"]

            def record(self, event):
                from proton import Disposition
                dlv = event.delivery
                names = {Disposition.ACCEPTED: "accepted",
                         Disposition.REJECTED: "rejected",
                         Disposition.RELEASED: "released",
                         Disposition.MODIFIED: "modified"}
                with peer.lock:
                    peer.outcomes[self.tags.get(dlv.tag)] = (
                        names.get(dlv.remote_state, str(dlv.remote_state)),
                        bool(dlv.remote.failed),
                        bool(dlv.remote.undeliverable))

            on_accepted = on_rejected = on_released = record

        self.listener = ProtonListener(free_ports(1)[0], Handler())
        self.port = self.listener.port

    @property
    def error(self):
        return self.listener.error

    def outcome(self, msg_id):
        with self.lock:
            return self.outcomes.get(msg_id)

    def stop(self):
        self.listener.stop()


@pytest.fixture
def outcome_peer():
    peers = []

    def make(envelopes, properties=None):
        p = OutcomePeer(envelopes, properties)
        peers.append(p)
        return p
    yield make
    for p in peers:
        p.stop()


def hub_on_peer(port, mport):
    cfg = bus_config(**vector_validation())
    cfg.update(zmq_linger=0, hub={
        "bus": "amqp://127.0.0.1:%d" % port, "source": "/queue/outcomes",
        "metrics": "127.0.0.1:%d" % mport, "drain_timeout": 2})
    return cfg


@pytest.mark.parametrize("peer_says", ["no product", "RabbitMQ 3.10.8",
                                       "RabbitMQ 4.0.5"])
def test_verdicts_become_amqp_outcomes(tmp_path, hubs, abi_plugins,
                                       outcome_peer, peer_says):
    rec = tmp_path / "v.txt"
    envs = {v: signed("outcome." + v, {"verdict": v})
            for v in ("ok", "drop", "halt", "retry")}
    props = {}
    if peer_says != "no product":
        product, version = peer_says.split()
        props = {"product": product, "version": version}
    # halt stops the consumer for good: its own consumer, so that the
    # others go on
    order = [envs["ok"], envs["drop"], envs["retry"], envs["halt"]]
    peer = outcome_peer(order, props)
    mport = free_ports(1)[0]
    cfg = hub_on_peer(peer.port, mport)
    cfg["consumers"] = {
        "v": {"plugin": str(abi_plugins["verdicts"]),
              "topics": ["org.fedoraproject.dev.outcome.ok",
                         "org.fedoraproject.dev.outcome.drop",
                         "org.fedoraproject.dev.outcome.retry"],
              "backoff": 60, "max_attempts": 5,
              "config": {"file": str(rec)}},
        "h": {"plugin": str(abi_plugins["verdicts"]),
              "topics": ["org.fedoraproject.dev.outcome.halt"],
              "config": {"file": str(tmp_path / "h.txt")}}}
    hub = hubs(write_config(tmp_path, cfg), metrics_port=mport).ready(15)
    hub.wait_stderr("connected to the broker", 15)
    wait_until(lambda: all(peer.outcome(envs[v]["msg_id"])
                           for v in ("ok", "drop", "halt")), 10,
               "ok, drop and halt settled", hub)
    wait_until(lambda: (rec.exists() and envs["retry"]["msg_id"] in
                        rec.read_text()), 10, "the first retry attempt", hub)
    assert peer.outcome(envs["retry"]["msg_id"]) is None   # waiting
    assert hub.stop() == 0, hub.describe()
    wait_until(lambda: peer.outcome(envs["retry"]["msg_id"]), 5,
               "the waiting retry settled at stop", hub)
    got = {v: peer.outcome(envs[v]["msg_id"]) for v in envs}
    print(peer_says, got)
    assert peer.error is None, peer.error      # e.g. no close: "aborted"
    assert got["ok"] == ("accepted", False, False)
    assert got["drop"][0] == "rejected"
    assert got["halt"] == ("released", False, False)
    if peer_says.startswith("RabbitMQ 3"):
        assert got["retry"] == ("released", False, False)
    else:
        assert got["retry"] == ("modified", True, False)
    name = peer_says if peer_says != "no product" else "unknown broker"
    assert "(%s)" % name in hub.stderr()
