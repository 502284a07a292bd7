"""A burst far beyond what the hub's consumers can take (issue 18): the
overflow is counted per consumer, the hub's memory stays within its queue
bounds, and it recovers without a restart.

Two consumers of tests/abi/slow.c (held in consume() by a gate file the
test creates) with queues of 5 and 20; a burst of 10x the larger queue,
of 200 KB messages: 40 MB, which the hub would have to hold if a queue
were unbounded, against some 5 MB the queues may hold.
"""

import os
from pathlib import Path

import pytest

from conftest import (HubProbes, free_ports, hub_config, hub_sync,
                      recorded_ids, signed, tcp, wait_until, wire,
                      write_config, zmq_module, zsocket)

pytestmark = pytest.mark.usefixtures("hub_time_limit")

QUEUES = {"small": 5, "big": 20}
BURST = 10 * max(QUEUES.values())
PAD = 200 * 1000


def rss_kib(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def test_burst_counted_per_consumer_bounded_and_recovers(tmp_path, hubs,
                                                         zctx, abi_plugins):
    zmq = zmq_module()
    src, mport = free_ports(2)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    pub.setsockopt(zmq.SNDHWM, 10 * BURST)
    rec = {name: tmp_path / ("%s.txt" % name) for name in QUEUES}
    cfg = write_config(tmp_path, hub_config(src, mport, {
        name: {"plugin": str(abi_plugins["slow"]), "queue_size": q,
               "threads": 1, "queue_full": "drop_new",
               "config": {"file": str(rec[name])}}
        for name, q in QUEUES.items()}, high_water_mark=10 * BURST))
    # Under ASan, freed memory waits in its quarantine (256 MB): off, so
    # that RSS shows what the hub holds.
    asan = (os.environ.get("ASAN_OPTIONS", "") +
            ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0")
    hub = hubs(cfg, metrics_port=mport,
               env={"ASAN_OPTIONS": asan.lstrip(":")}).ready()
    probes = HubProbes()
    hub_sync(pub.send_multipart, probes,
             lambda: recorded_ids(rec["small"], probes=True), hub)
    wait_until(lambda: len(recorded_ids(rec["big"], probes=True)) >=
               len(recorded_ids(rec["small"], probes=True)), 10,
               "the probes through consumer 'big' too", hub)
    base = hub.idle()
    rss0 = rss_kib(hub.pid)

    # The gate holds both consumers in consume() on the burst's first
    # message; the rest arrives at once and overflows both queues.
    gate = tmp_path / "gate"
    burst = [signed("slow.burst", {"n": 0, "gate": str(gate)})] + \
        [signed("slow.burst", {"n": i, "pad": "x" * PAD})
         for i in range(1, BURST)]
    for env in burst:
        pub.send_multipart(wire(env))
    hub.wait_metric(
        lambda m: m("fedmsg_hub_received_total") -
        base("fedmsg_hub_received_total") == BURST, 30,
        "the whole burst taken from the bus while both consumers are held")
    grown = rss_kib(hub.pid) - rss0
    # Bounded: far below the 40 MB the burst would take if kept (the
    # queues hold 25 messages, 5 MB, and their parsed trees).
    print("RSS %d KiB before the burst, +%d KiB with it queued" % (
        rss0, grown))
    assert grown < BURST * PAD / 1024 / 2, \
        "RSS grew %d KiB during a %d KB burst: the queues are not bounded" \
        % (grown, BURST * PAD // 1000)
    assert recorded_ids(rec["small"]) == [], "the gate was open"

    gate.touch()
    m = hub.wait_metric(
        lambda m: all(m("fedmsg_consumer_queue_depth", consumer=c) == 0
                      for c in QUEUES), 30, "both queues to empty")
    for name, q in QUEUES.items():
        dropped = m("fedmsg_consumer_dropped_total", consumer=name,
                    reason="queue_full") - base(
            "fedmsg_consumer_dropped_total", consumer=name,
            reason="queue_full")
        got = recorded_ids(rec[name])
        # each counted on its own: the one in consume() and its full queue
        # get through, the rest of the burst is dropped and counted
        assert len(got) == 1 + q, (name, len(got))
        assert dropped == BURST - 1 - q, (name, dropped)

    # Recovered, the same process: new messages reach both consumers.
    assert hub.running()
    after = [signed("slow.after", {"n": i}) for i in range(5)]
    for env in after:
        pub.send_multipart(wire(env))
    want = [e["msg_id"] for e in after]
    for name in QUEUES:
        wait_until(lambda: recorded_ids(rec[name])[-5:] == want, 15,
                   "consumer %r to take new messages after the burst"
                   % name, hub)
    assert hub.running()
    assert hub.stop() == 0
