"""fedmsg-hub on a real AMQP 1.0 broker: "hub": {"bus": URL, "source":
queue, ...} (hub/transport_broker.c) against RabbitMQ 3.10 (the
session's "rabbitmq" fixture, tests/brokers/broker.sh).

A python3-qpid-proton sender puts messages into the hub's queue (a fresh
/queue/<name> per test); the archive consumer (build/plugins) writes what
the consumers got.  Validation uses the test vectors' CA and CRL, so the
same vectors as test_hub_bus.py sort into archived and rejected.
"""


from pathlib import Path

import pytest

from conftest import (AMQ_STOMP_PORT, RMQ_AMQP_PORT, RMQ_STOMP_PORT, VECTORS,
                      HubProbes, Probes, archive_ids, archive_lines,
                      bus_config,
                      canonical, free_ports, password_file, project_plugin,
                      recorded_ids, signed, unique, valid_by_default,
                      vector_validation, wait_until, write_config)

pytestmark = pytest.mark.usefixtures("broker_time_limit")

AMQP_URL = "amqp://127.0.0.1:%d" % RMQ_AMQP_PORT
INVALID_REASONS = ("unsigned", "bad_field", "bad_backend", "bad_base64",
                   "bad_certificate", "untrusted_certificate",
                   "bad_signature", "no_common_name", "routing_policy",
                   "stale", "future")


def broker_hub_config(tmp_path, queue, mport, adir, **hub):
    h = {"bus": AMQP_URL, "source": queue, "user": "guest",
         "password_file": password_file(tmp_path),
         "allow_plaintext_credentials": True,   # RabbitMQ on loopback
         "metrics": "127.0.0.1:%d" % mport, "drain_timeout": 3}
    h.update(hub)
    cfg = bus_config(**vector_validation())
    cfg.update(hub=h, zmq_linger=0, consumers={
        "arch": {"plugin": str(project_plugin("archive")),
                 "dedup_window": 0,
                 "config": {"dir": str(adir), "rotate_daily": False}}})
    return cfg


class StompSender:
    def __init__(self, peer, destination):
        self.peer, self.destination = peer, destination

    def send(self, body):
        self.peer.send(self.destination, body)


def start_hub(hubs, cfg_path, mport):
    hub = hubs(cfg_path, metrics_port=mport).ready(15)
    hub.wait_stderr("connected to the broker", 15)
    return hub


def mark(snd, seen, hub, probes, timeout=15.0):
    """Send a signed end marker and wait until a consumer archived it."""
    env = probes.make("end")
    snd.send(canonical(env))
    wait_until(lambda: env["msg_id"] in seen(), timeout,
               "end marker archived", hub)


def test_valid_archived_invalid_rejected(tmp_path, rabbitmq, hubs,
                                         amqp_peers):
    q = "/queue/" + unique("hub")
    mport = free_ports(1)[0]
    adir = tmp_path / "archive"
    cfg = write_config(tmp_path, broker_hub_config(tmp_path, q, mport, adir))
    hub = start_hub(hubs, cfg, mport)
    snd = amqp_peers.sender(q)
    probes = HubProbes()
    seen = lambda: archive_ids(adir)     # noqa: E731
    for rec in VECTORS:
        snd.send(rec["wire_body"])
    for body in (b"not json", b"[1]", b""):
        snd.send(body)
    mark(snd, seen, hub, probes)

    lines = [line for line in archive_lines(adir)
             if not Probes.is_probe(line)]
    want = [rec["wire_body"].encode("utf-8") for rec in VECTORS
            if valid_by_default(rec)]
    assert len(want) == 33
    assert lines == want                # exact bytes, in order
    m = hub.idle()
    invalid = sum(m("fedmsg_hub_invalid_total", reason=r)
                  for r in INVALID_REASONS)
    assert invalid == len(VECTORS) - len(want)
    assert m("fedmsg_hub_rejected_total", reason="bad_json") == 3
    assert m("fedmsg_hub_received_total") == len(VECTORS) + 1
    assert "invalid message" in hub.stderr()
    # every delivery settled (accepted or rejected): none left, none
    # waiting for a redelivery
    name = q[len("/queue/"):]
    wait_until(lambda: rabbitmq.queues()[name][:2] == (0, 0), 10,
               "the hub's queue drained")
    assert hub.stop() == 0


def test_two_hubs_compete_for_one_queue(tmp_path, rabbitmq, hubs,
                                        amqp_peers):
    q = "/queue/" + unique("hubs")
    name = q[len("/queue/"):]
    ports = free_ports(2)
    dirs = [tmp_path / "a", tmp_path / "b"]
    hs = []
    for i, (port, d) in enumerate(zip(ports, dirs)):
        sub = tmp_path / ("h%d" % i)
        sub.mkdir()
        cfg = write_config(sub, broker_hub_config(sub, q, port, d))
        hs.append(start_hub(hubs, cfg, port))
    wait_until(lambda: rabbitmq.queues().get(name, (0, 0, 0))[2] == 2, 20,
               "both hubs consuming")
    snd = amqp_peers.sender(q)
    sent = [signed("hubs.compete", {"n": i}) for i in range(200)]
    for env in sent:
        snd.send(canonical(env))
    want = {e["msg_id"] for e in sent}

    def got():
        return [i for d in dirs for i in archive_ids(d)]
    wait_until(lambda: want <= set(got()), 30, "all 200 archived")
    # the queue holds nothing more, ready or unacknowledged: no duplicate
    # can still come
    wait_until(lambda: rabbitmq.queues().get(name, (0, 0, 0))[:2] == (0, 0),
               20, "queue %s settled" % name)
    a, b = archive_ids(dirs[0]), archive_ids(dirs[1])
    assert len(a) + len(b) == len(sent)         # each message once
    assert set(a) | set(b) == want
    assert a and b, "one hub got everything: %d / %d" % (len(a), len(b))
    print("hub a %d, hub b %d" % (len(a), len(b)))
    for h in hs:
        assert h.stop() == 0


@pytest.mark.parametrize("bus", ["amqp-rabbitmq", "stomp-activemq",
                                 "stomp-rabbitmq"])
def test_release_then_keeps_consuming(tmp_path, request, hubs, amqp_peers,
                                      stomp_peers, abi_plugins, bus):
    """A consumer that halts on a message makes the hub give the delivery
    back (SETTLE_RELEASE).  The broker must redeliver it, and the hub must
    go on receiving what follows.  (RabbitMQ 3.10 does not know the AMQP
    "modified" outcome: it ends the session with amqp:invalid-field; a hub
    that answers "modified" and ignores the session's end stops receiving
    for good, silently.  STOMP has no "release": the link sends NACK, and
    the broker decides what that means.)"""
    q = "/queue/" + unique("rel")
    mport = free_ports(1)[0]
    adir = tmp_path / "archive"
    proto, kind = bus.split("-")
    request.getfixturevalue(kind)
    if proto == "amqp":
        cfg = broker_hub_config(tmp_path, q, mport, adir)
        snd = amqp_peers.sender(q)
    elif kind == "activemq":
        cfg = broker_hub_config(tmp_path, q, mport, adir, user=None,
                                password_file=None,
                                bus="stomp://127.0.0.1:%d" % AMQ_STOMP_PORT)
        snd = StompSender(stomp_peers(AMQ_STOMP_PORT), q)
    else:
        cfg = broker_hub_config(tmp_path, q, mport, adir, vhost="/",
                                bus="stomp://127.0.0.1:%d" % RMQ_STOMP_PORT)
        snd = StompSender(stomp_peers(RMQ_STOMP_PORT, vhost="/",
                                      user="guest", password="guest"), q)
    cfg["hub"] = {k: v for k, v in cfg["hub"].items() if v is not None}
    cfg["consumers"]["halter"] = {
        "plugin": str(abi_plugins["verdicts"]),
        "config": {"file": str(tmp_path / "halter.txt")}}
    hub = start_hub(hubs, write_config(tmp_path, cfg), mport)
    first = signed("rel.x", {"n": 0, "verdict": "halt"})
    snd.send(canonical(first))
    wait_until(lambda: (tmp_path / "halter.txt").exists(), 10,
               "the halting consume()", hub)
    rest = [signed("rel.x", {"n": i}) for i in range(1, 6)]
    for env in rest:
        snd.send(canonical(env))
    want = {e["msg_id"] for e in [first] + rest}
    wait_until(lambda: want <= set(archive_ids(tmp_path / "archive")), 20,
               "the released message and the ones after it archived", hub)
    assert hub.stop() == 0


def test_hub_survives_wrong_password(tmp_path, rabbitmq, hubs):
    """A refused login is logged (with the broker's reason) and retried;
    the hub keeps running and stops cleanly."""
    q = "/queue/" + unique("hubpw")
    mport = free_ports(1)[0]
    cfg = write_config(tmp_path, broker_hub_config(
        tmp_path, q, mport, tmp_path / "archive",
        password_file=password_file(tmp_path, "wrong-" + unique(), "bad")))
    hub = hubs(cfg, metrics_port=mport).ready(15)
    hub.wait_for(lambda: hub.stderr().count("retrying in") >= 2, 15,
                 "two refused logins")
    fails = [line for line in hub.stderr().splitlines()
             if "retrying in" in line]
    assert all("auth" in line.lower() or "sasl" in line.lower()
               for line in fails), fails
    assert "connected to the broker" not in hub.stderr()
    assert hub.stop() == 0


def test_refused_by_a_full_queue_is_no_duplicate_later(
        tmp_path, rabbitmq, hubs, amqp_peers, abi_plugins):
    """A consumer's full queue refuses a delivery (the broker keeps it and
    redelivers it); its msg_id must not count as seen, or the redelivery
    is taken for a duplicate (dedup_window, on by default) and lost."""
    q = "/queue/" + unique("dedup")
    mport = free_ports(1)[0]
    rec = tmp_path / "slow.txt"
    cfg = broker_hub_config(tmp_path, q, mport, tmp_path / "archive")
    cfg["consumers"] = {"slow": {"plugin": str(abi_plugins["slow"]),
                                 "queue_size": 2,
                                 "config": {"file": str(rec)}}}
    hub = start_hub(hubs, write_config(tmp_path, cfg), mport)
    snd = amqp_peers.sender(q)
    gate = tmp_path / "gate"
    msgs = [signed("dd.x", {"n": 0, "gate": str(gate)})] + \
        [signed("dd.x", {"n": i}) for i in range(1, 12)]
    snd.send(canonical(msgs[0]))
    wait_until(lambda: Path(str(gate) + ".busy").exists(), 15,
               "the first message held in consume()", hub)
    for env in msgs[1:]:
        snd.send(canonical(env))
    # the queue (2) fills: the rest is refused, and comes back
    hub.wait_metric(lambda m: m("fedmsg_consumer_dropped_total",
                                consumer="slow", reason="queue_full") >= 3,
                    15, "refusals by the full queue")
    gate.touch()
    want = {e["msg_id"] for e in msgs}
    wait_until(lambda: want <= set(recorded_ids(rec)), 30,
               "every message consumed, the refused ones too", hub)
    assert hub.stop() == 0
