"""A consumer's bounded queue on ZeroMQ (no flow control on PUB/SUB):
a slow consumer loses messages by its queue_full policy, counted, while
the hub stays responsive; SIGTERM drains what is queued.

tests/abi/slow.c sleeps msg.sleep_ms in consume(), or waits there until
the test creates msg.gate, then records "<msg_id> <attempt>".
"""

import signal
from pathlib import Path

import pytest

from conftest import (HubProbes, free_ports, http_get, hub_config, hub_sync,
                      recorded_ids, signed, tcp, wait_until, wire,
                      write_config, zmq_module, zsocket)

pytestmark = pytest.mark.usefixtures("hub_time_limit")


@pytest.fixture
def bus(zctx):
    zmq = zmq_module()
    src, mport = free_ports(2)
    return zsocket(zctx, zmq.PUB, bind=tcp(src)), src, mport


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_new"])
def test_queue_full(tmp_path, hubs, bus, abi_plugins, policy):
    pub, src, mport = bus
    rec = tmp_path / "slow.txt"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "slow": {"plugin": str(abi_plugins["slow"]), "queue_size": 5,
                 "threads": 1, "queue_full": policy,
                 "config": {"file": str(rec)}}}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    seen = lambda: recorded_ids(rec, probes=True)      # noqa: E731
    hub_sync(pub.send_multipart, probes, seen, hub)
    base = hub.idle()

    # The first message holds consume() until the test opens its gate;
    # the other 49 arrive meanwhile and queue behind it.
    gate = tmp_path / "gate"
    burst = [signed("slow.burst", {"n": 0, "gate": str(gate)})] + \
        [signed("slow.burst", {"n": i}) for i in range(1, 50)]
    ids = [e["msg_id"] for e in burst]
    pub.send_multipart(wire(burst[0]))
    wait_until(lambda: Path(str(gate) + ".busy").exists(), 10,
               "the first message in consume()", hub)
    for env in burst[1:]:
        pub.send_multipart(wire(env))
    # ZeroMQ cannot hold messages back (transport_zmq.c, consumer.c):
    # the hub keeps reading the bus and the full queue drops by policy.
    # While the consumer is held, the hub takes all 50 and answers.
    for path in ("/live", "/metrics", "/status"):
        code, _ = http_get(mport, path)
        assert code == 200, path
    hub.wait_metric(
        lambda m: m("fedmsg_hub_received_total") -
        base("fedmsg_hub_received_total") == 50, 15,
        "all 50 messages taken from the bus while consumer 'slow' is "
        "held full (on ZeroMQ a full queue should drop by queue_full=%s, "
        "not pause the bus)" % policy)
    assert recorded_ids(rec) == [], "the gate was open"
    gate.touch()
    m = hub.wait_metric(lambda m: m("fedmsg_consumer_queue_depth",
                                    consumer="slow") == 0, 5,
                        "the slow consumer's queue to empty")
    got = recorded_ids(rec)
    dropped = m("fedmsg_consumer_dropped_total", consumer="slow",
                reason="queue_full") - base(
        "fedmsg_consumer_dropped_total", consumer="slow",
        reason="queue_full")
    queued = m("fedmsg_consumer_in_total", consumer="slow") - \
        base("fedmsg_consumer_in_total", consumer="slow")
    assert dropped > 0
    # every message is either consumed or counted as dropped: the one in
    # consume() and a full queue (5) get through
    assert len(got) + dropped == 50
    if policy == "drop_oldest":
        assert got == ids[:1] + ids[-5:], "drop_oldest keeps the newest"
        # queued and later pushed out: counted in "in" and as dropped
        assert queued - dropped == len(got)
    else:
        assert got == ids[:6], "drop_new keeps the oldest"
        assert queued == len(got)
    assert hub.running()
    assert hub.stop() == 0


def test_slow_consumer_stalls_only_its_own_queue(tmp_path, hubs, bus,
                                                 abi_plugins):
    """consumer.h: "A slow or stuck consumer stalls only its own queue."
    A fast consumer next to a full slow one gets every message at once."""
    pub, src, mport = bus
    rec_s, rec_f = tmp_path / "slow.txt", tmp_path / "fast.txt"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "slow": {"plugin": str(abi_plugins["slow"]), "queue_size": 5,
                 "config": {"file": str(rec_s)}},
        "fast": {"plugin": str(abi_plugins["verdicts"]),
                 "config": {"file": str(rec_f)}}}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    hub_sync(pub.send_multipart, probes,
             lambda: recorded_ids(rec_f, probes=True), hub)
    wait_until(lambda: len(recorded_ids(rec_s, probes=True)) >= 1, 5,
               "the slow consumer's probes", hub)
    # The slow consumer is held in consume() (and its queue fills up)
    # for as long as the fast one takes to get every message.
    gate = tmp_path / "gate"
    burst = [signed("slow.burst", {"n": 0, "gate": str(gate)})] + \
        [signed("slow.burst", {"n": i}) for i in range(1, 40)]
    want = [e["msg_id"] for e in burst]
    pub.send_multipart(wire(burst[0]))
    wait_until(lambda: Path(str(gate) + ".busy").exists(), 10,
               "the slow consumer held in consume()", hub)
    for env in burst[1:]:
        pub.send_multipart(wire(env))
    wait_until(lambda: recorded_ids(rec_f) == want, 15,
               "all 40 messages at the fast consumer while the slow one "
               "(queue_size 5) is held full", hub)
    assert not set(want) & set(recorded_ids(rec_s)), "the gate was open"
    gate.touch()
    assert hub.stop() == 0


def test_sigterm_drains_the_queue(tmp_path, hubs, bus, abi_plugins):
    pub, src, mport = bus
    rec = tmp_path / "slow.txt"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "slow": {"plugin": str(abi_plugins["slow"]), "threads": 1,
                 "config": {"file": str(rec)}}},
        hub={"drain_timeout": 8}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    seen = lambda: recorded_ids(rec, probes=True)      # noqa: E731
    hub_sync(pub.send_multipart, probes, seen, hub)

    msgs = [signed("slow.drain", {"n": i, "sleep_ms": 100})
            for i in range(10)]
    for env in msgs:
        pub.send_multipart(wire(env))
    hub.wait_metric(lambda m: m("fedmsg_consumer_in_total",
                                consumer="slow") >= len(seen()) + 9, 5,
                    "10 messages queued")
    assert len(recorded_ids(rec)) < 10
    hub.proc.send_signal(signal.SIGTERM)
    assert hub.wait(30) == 0
    # all 10 consumed: drained (within drain_timeout 8 s), not released
    assert recorded_ids(rec) == [e["msg_id"] for e in msgs]
    assert "draining consumer queues" in hub.stderr()


def test_drain_timeout_bounds_the_exit(tmp_path, hubs, bus, abi_plugins):
    """What does not fit in drain_timeout is released, not waited for."""
    pub, src, mport = bus
    rec = tmp_path / "slow.txt"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "slow": {"plugin": str(abi_plugins["slow"]), "threads": 1,
                 "config": {"file": str(rec)}}},
        hub={"drain_timeout": 1}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    seen = lambda: recorded_ids(rec, probes=True)      # noqa: E731
    hub_sync(pub.send_multipart, probes, seen, hub)
    msgs = [signed("slow.drain", {"n": i, "sleep_ms": 300})
            for i in range(20)]
    for env in msgs:
        pub.send_multipart(wire(env))
    wait_until(lambda: len(recorded_ids(rec)) >= 1, 5, "first message",
               hub)
    hub.proc.send_signal(signal.SIGTERM)
    assert hub.wait(30) == 0
    got = recorded_ids(rec)
    assert got == [e["msg_id"] for e in msgs[:len(got)]]
    # 20 x 300 ms do not fit in 1 s of drain: the rest was released
    assert len(got) < 20, (
        "drain_timeout 1 s not honoured: all 20 messages (300 ms each) "
        "were consumed after SIGTERM")


def test_drain_timeout_is_one_deadline_for_all(tmp_path, hubs, bus,
                                               abi_plugins):
    """Three busy consumers stop within one drain_timeout, not one each:
    the hub exits about drain_timeout after SIGTERM."""
    pub, src, mport = bus
    recs = [tmp_path / ("s%d.txt" % i) for i in range(3)]
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "s%d" % i: {"plugin": str(abi_plugins["slow"]),
                    "config": {"file": str(r)}}
        for i, r in enumerate(recs)}, hub={"drain_timeout": 2}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    hub_sync(pub.send_multipart, probes,
             lambda: recorded_ids(recs[2], probes=True), hub)
    for i in range(40):
        pub.send_multipart(wire(signed("slow.drain",
                                       {"n": i, "sleep_ms": 300})))
    wait_until(lambda: all(recorded_ids(r) for r in recs), 5,
               "every consumer busy", hub)
    hub.proc.send_signal(signal.SIGTERM)
    assert hub.wait(60) == 0
    after = [len(recorded_ids(r)) for r in recs]
    # 2 s of drain at 300 ms a message is at most 7 each (8 with the one
    # in hand); a deadline per consumer let the later ones go on for
    # 4 and 6 s (about 15 and 22 messages)
    assert max(after) <= 10, (
        "consumed %s: the consumers drained one after another, each with "
        "its own drain_timeout" % after)
