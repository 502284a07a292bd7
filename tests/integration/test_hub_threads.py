"""The hub's threads as an operator sees them (ps -L, top -H): each
consumer's workers are named after it, and they and ZeroMQ's I/O thread
run as SCHED_BATCH, so that, woken for a message, they wait for the
dispatching thread to yield instead of preempting it (libfedmsg/
sched_batch.h); the dispatching thread keeps the policy it started
with."""

import os
from pathlib import Path

import pytest

from conftest import free_ports, hub_config, wait_until, write_config

pytestmark = pytest.mark.usefixtures("hub_time_limit")


def threads(pid):
    """{tid: (name, policy)} of a process."""
    out = {}
    for t in Path("/proc/%d/task" % pid).iterdir():
        try:
            out[int(t.name)] = ((t / "comm").read_text().strip(),
                                os.sched_getscheduler(int(t.name)))
        except (FileNotFoundError, ProcessLookupError):
            pass        # a thread that ended meanwhile
    return out


def test_consumer_workers_named_and_batch(tmp_path, hubs, abi_plugins):
    src, mport = free_ports(2)
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "two": {"plugin": str(abi_plugins["verdicts"]), "threads": 2,
                "config": {"file": str(tmp_path / "two.txt")}},
        "one": {"plugin": str(abi_plugins["verdicts"]),
                "config": {"file": str(tmp_path / "one.txt")}}}))
    hub = hubs(cfg, metrics_port=mport).ready()

    def workers():
        return sorted(n for n, _ in threads(hub.pid).values()
                      if n.startswith("fmc:"))
    # each worker names itself once it runs (under valgrind, a while)
    wait_until(lambda: len(workers()) == 3, 10, "three named workers", hub)
    assert workers() == ["fmc:one", "fmc:two", "fmc:two"]
    ts = threads(hub.pid)
    for name, policy in ts.values():
        if name.startswith("fmc:") or name.startswith("ZMQbg/IO"):
            assert policy == os.SCHED_BATCH, (name, ts)
    assert ts[hub.pid][1] == os.SCHED_OTHER, ts
    assert hub.stop() == 0
