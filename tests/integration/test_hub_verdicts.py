"""What fedmsg-hub does with each consume() verdict (plugin.h): OK, RETRY
with backoff up to max_attempts, DROP, an error (< 0), HALT of one
consumer, and the hub's exit (status 3) once every consumer has halted.

tests/abi/verdicts.c returns the verdict named by the message's
msg.<field> (or by its config "script") and records "<msg_id> <attempt>
<monotonic ms>" for every call.
"""

import time

import pytest

from conftest import (HubProbes, free_ports, http_get, hub_config, hub_mark,
                      hub_sync, recorded, recorded_ids, signed, tcp,
                      wait_until, wire, write_config, zmq_module, zsocket)

pytestmark = pytest.mark.usefixtures("hub_time_limit")


@pytest.fixture
def bus(zctx):
    zmq = zmq_module()
    src, mport = free_ports(2)
    return zsocket(zctx, zmq.PUB, bind=tcp(src)), src, mport


def verdicts_entry(abi_plugins, path, **entry):
    cfg = {"file": str(path), "stamps": 1}
    cfg.update(entry.pop("config", {}))
    e = {"plugin": str(abi_plugins["verdicts"]), "config": cfg}
    e.update(entry)
    return e


def calls(path, msg_id):
    return [r for r in recorded(path) if r[0] == msg_id]


def test_ok_retry_drop_error(tmp_path, hubs, bus, abi_plugins):
    pub, src, mport = bus
    rec = tmp_path / "v.txt"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "v": verdicts_entry(abi_plugins, rec, backoff=0.1, max_attempts=3,
                            max_backoff=10)}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    seen = lambda: recorded_ids(rec, probes=True)      # noqa: E731
    hub_sync(pub.send_multipart, probes, seen, hub)
    base = hub.idle()

    msgs = {v: signed("verdict." + v, {"verdict": v})
            for v in ("ok", "retry", "drop", "error")}
    for env in msgs.values():
        pub.send_multipart(wire(env))
    rid = msgs["retry"]["msg_id"]
    wait_until(lambda: len(calls(rec, rid)) == 3, 5, "3 attempts", hub)
    hub_mark(pub.send_multipart, probes, seen, hub)
    m = hub.idle()           # nothing waits for a retry: no 4th attempt

    assert [r[1] for r in calls(rec, msgs["ok"]["msg_id"])] == [1]
    assert [r[1] for r in calls(rec, msgs["drop"]["msg_id"])] == [1]
    assert [r[1] for r in calls(rec, msgs["error"]["msg_id"])] == [1]
    retry = calls(rec, rid)
    assert [r[1] for r in retry] == [1, 2, 3]
    # exponential backoff: never sooner than 0.1 s, then 0.2 s (a slower
    # machine only makes the gaps longer)
    gaps = [retry[1][2] - retry[0][2], retry[2][2] - retry[1][2]]
    assert gaps[0] >= 100 and gaps[1] >= 200, gaps

    def d(name, **labels):
        return m(name, **labels) - base(name, **labels)
    assert d("fedmsg_consumer_in_total", consumer="v") == 5   # + marker
    assert d("fedmsg_consumer_ok_total", consumer="v") == 2
    assert d("fedmsg_consumer_retried_total", consumer="v") == 2
    for reason, n in (("retries_exhausted", 1), ("verdict", 1),
                      ("error", 1), ("halted", 0), ("queue_full", 0)):
        assert d("fedmsg_consumer_dropped_total", consumer="v",
                 reason=reason) == n, reason
    assert m("fedmsg_consumer_halted", consumer="v") == 0
    assert m("fedmsg_consumer_queue_depth", consumer="v") == 0
    err = hub.stderr()
    assert "giving up on %s after 3 attempts" % rid in err
    assert "returned error -1 on %s" % msgs["error"]["msg_id"] in err
    # the error left the hub running and consuming
    assert hub.running()
    assert http_get(mport, "/live")[0] == 200
    st = {c["name"]: c for c in hub.status()["consumers"]}
    assert st["v"]["exceptions"] >= 1
    assert msgs["error"]["msg_id"] in st["v"]["last_error"]
    hub_mark(pub.send_multipart, probes, seen, hub)
    assert hub.stop() == 0


def test_halt_stops_one_consumer_others_go_on(tmp_path, hubs, bus,
                                              abi_plugins):
    pub, src, mport = bus
    rec_a, rec_b = tmp_path / "a.txt", tmp_path / "b.txt"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "a": verdicts_entry(abi_plugins, rec_a, config={"field": "va"}),
        "b": verdicts_entry(abi_plugins, rec_b, config={"field": "vb"})}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    seen_a = lambda: recorded_ids(rec_a, probes=True)      # noqa: E731
    seen_b = lambda: recorded_ids(rec_b, probes=True)      # noqa: E731
    hub_sync(pub.send_multipart, probes, seen_a, hub)
    hub_mark(pub.send_multipart, probes, seen_b, hub)

    halt = signed("halt.a", {"va": "halt"})
    pub.send_multipart(wire(halt))
    hub.wait_metric(lambda m: m("fedmsg_consumer_halted", consumer="a")
                    == 1, 5, "consumer a halted")
    after = [signed("after.halt", {"n": i}) for i in range(3)]
    for env in after:
        pub.send_multipart(wire(env))
    hub_mark(pub.send_multipart, probes, seen_b, hub)

    ids_a, ids_b = recorded_ids(rec_a), recorded_ids(rec_b)
    assert ids_a == [halt["msg_id"]]            # nothing after the halt
    assert ids_b == [halt["msg_id"]] + [e["msg_id"] for e in after]
    m = hub.metrics()
    assert m("fedmsg_consumer_halted", consumer="a") == 1
    assert m("fedmsg_consumer_halted", consumer="b") == 0
    # the halting message and the 3 + marker offered afterwards
    assert m("fedmsg_consumer_dropped_total", consumer="a",
             reason="halted") == 5
    assert "consumer a: consume() asked to halt" in hub.stderr()
    st = {c["name"]: c for c in hub.status()["consumers"]}
    assert st["a"]["initialized"] is False and st["b"]["initialized"] is True
    assert hub.running()

    # the last consumer halts too: the hub stops with status 3
    pub.send_multipart(wire(signed("halt.b", {"vb": "halt"})))
    assert hub.wait(10) == 3
    assert "every consumer has halted" in hub.stderr()


def test_script_and_exit_status_3(tmp_path, hubs, bus, abi_plugins):
    """verdicts.c's config "script": successive calls get ok, retry, ok
    (the retry), drop, error, halt; with one consumer the halt ends the
    hub with status 3."""
    pub, src, mport = bus
    rec = tmp_path / "v.txt"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "v": verdicts_entry(abi_plugins, rec, backoff=0.1, config={
            "script": "ok,retry,ok,drop,error,halt"})}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    seen = lambda: recorded_ids(rec, probes=True)      # noqa: E731
    hub_sync(pub.send_multipart, probes, seen, hub)

    msgs = [signed("script.m%d" % i, {"n": i}) for i in range(5)]
    expect = [[1], [1, 2], [1], [1], [1]]
    for env, attempts in zip(msgs[:4], expect):
        pub.send_multipart(wire(env))
        wait_until(lambda: [r[1] for r in calls(rec, env["msg_id"])] ==
                   attempts, 5, "%s: attempts %s" % (env["msg_id"],
                                                      attempts), hub)
    m = hub.idle()
    assert m("fedmsg_consumer_retried_total", consumer="v") == 1
    assert m("fedmsg_consumer_dropped_total", consumer="v",
             reason="verdict") == 1
    assert m("fedmsg_consumer_dropped_total", consumer="v",
             reason="error") == 1
    assert m("fedmsg_consumer_halted", consumer="v") == 0
    pub.send_multipart(wire(msgs[4]))       # "halt"
    assert hub.wait(10) == 3
    assert [r[1] for r in calls(rec, msgs[4]["msg_id"])] == [1]
    assert "consumer v: consume() asked to halt" in hub.stderr()
    assert "every consumer has halted: stopping the hub" in hub.stderr()


def cpu_seconds(pid):
    """utime + stime of a process, from /proc."""
    import os
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_waiting_retry_does_not_spin(tmp_path, hubs, bus, abi_plugins):
    """A retry waiting out its backoff costs no CPU: the worker sleeps
    until it is due."""
    pub, src, mport = bus
    rec = tmp_path / "v.txt"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "v": verdicts_entry(abi_plugins, rec, backoff=3, max_attempts=2)}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    seen = lambda: recorded_ids(rec, probes=True)      # noqa: E731
    hub_sync(pub.send_multipart, probes, seen, hub)
    env = signed("verdict.retry", {"verdict": "retry"})
    pub.send_multipart(wire(env))
    wait_until(lambda: len(calls(rec, env["msg_id"])) == 1, 5, "attempt 1",
               hub)
    time.sleep(0.3)
    c0, t0 = cpu_seconds(hub.pid), time.monotonic()
    time.sleep(1.5)
    used, wall = cpu_seconds(hub.pid) - c0, time.monotonic() - t0
    assert len(calls(rec, env["msg_id"])) == 1     # still waiting
    assert used < 0.3 * wall, (
        "the hub used %.2f s of CPU in %.2f s while a retry waited for its "
        "3 s backoff (a worker spinning in pthread_cond_timedwait?)" % (
            used, wall))
    wait_until(lambda: len(calls(rec, env["msg_id"])) == 2, 5, "attempt 2",
               hub)
    assert hub.stop() == 0
