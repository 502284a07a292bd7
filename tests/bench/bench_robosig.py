#!/usr/bin/python3
"""bench_robosig.py: what consumers/robosignatory costs fedmsg-hub.

  bench_robosig.py [-n N] [-b BUILDS] BUILD_DIR

Three hubs (BUILD_DIR/bin/fedmsg-hub, validation on, the test vectors'
alpha signer) each get N signed buildsys.tag messages over ZeroMQ:

  noop       build/bench/noop_consumer.so: the baseline
  not_ours   robosignatory, a tag no entry signs for (no Koji call)
  builds     robosignatory, BUILDS builds whose RPMs are already signed,
             so each one is getBuild, listTags, listRPMs, queryRPMSigs x2,
             writeSignedRPM x2, tagBuild against a fake Koji (python3
             xmlrpc.server, plain HTTP on loopback, tagBuild a no-op so
             every build is moved again) and no signer runs

The hub's CPU time (utime + stime from /proc) over the run is the cost.
Prints
  robosig not_ours_vs_noop RATIO        (the issue's limit: < 2)
  robosig build_cpu_us US               hub CPU per build, minus a
                                        not_ours message's
  robosig koji_rtt_us US                one XML-RPC call, client to fake
                                        and back, on loopback (best of 200)
  robosig build_vs_rtt RATIO            build_cpu_us / koji_rtt_us
Exit 1: a run failed.  Needs python3-zmq and python3-cryptography; uses
tests/integration/conftest.py's signing helpers.
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from xmlrpc.client import dumps
from xmlrpc.server import SimpleXMLRPCServer

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
from conftest import (free_ports, hub_config, http_get,  # noqa: E402
                      parse_metrics, signed, tcp, wire, write_config,
                      zmq_module)

FROM, TO = "f41-signing-pending", "f41-updates-testing-pending"


class Koji:
    """Every RPM already signed; tagBuild moves nothing."""

    def _dispatch(self, method, params):
        build = {"id": 1001, "name": "pkg", "version": "1.0",
                 "release": "1.fc41"}
        return {
            "getBuild": build,
            "listTags": [{"name": FROM}],
            "listRPMs": [dict(build, id=11, arch="x86_64"),
                         dict(build, id=12, arch="src")],
            "queryRPMSigs": [{"sigkey": "e99d6ad1"}],
            "sslLogin": {"session-id": 1, "session-key": "k"},
        }.get(method)


def cpu_of(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def metric(port, name):
    m = parse_metrics(http_get(port, "/metrics")[1])
    return sum(v for (n, _), v in m.items() if n == name)


def probe():
    return wire(signed("buildsys.tag", {
        "build_id": 1, "name": "probe", "version": "1", "release": "1",
        "tag": "bench-probe", "instance": "primary"}))


def run_hub(hub_bin, workdir, consumer, msgs):
    """Send msgs to a hub with consumer; its CPU seconds for them."""
    zmq = zmq_module()
    src, mport = free_ports(2)
    cfg = write_config(workdir, hub_config(src, mport, {"c": consumer}))
    err = open(Path(workdir) / "hub.err", "wb")
    proc = subprocess.Popen([str(hub_bin), "--config", str(cfg)],
                            stderr=err, cwd=str(workdir))
    err.close()
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.bind(tcp(src))
    try:
        deadline = time.monotonic() + 30
        while True:          # the slow joiner: until a probe is counted
            if time.monotonic() > deadline:
                raise RuntimeError("the hub took no message: %s" % (
                    Path(workdir) / "hub.err").read_text()[-2000:])
            pub.send_multipart(probe())
            time.sleep(0.1)
            try:
                if metric(mport, "fedmsg_consumer_in_total") > 0:
                    break
            except OSError:
                pass
        time.sleep(0.5)      # the probes in flight are handled
        done0 = metric(mport, "fedmsg_consumer_in_total")
        c0 = cpu_of(proc.pid)
        # in chunks below ZeroMQ's high-water mark and the consumer's
        # queue, so that none is dropped on the way
        for k in range(0, len(msgs), 250):
            for m in msgs[k:k + 250]:
                pub.send_multipart(m)
            want = done0 + min(k + 250, len(msgs))
            while True:
                n = metric(mport, "fedmsg_consumer_ok_total") + \
                    metric(mport, "fedmsg_consumer_dropped_total")
                if n >= want:
                    break
                if time.monotonic() > deadline + 120:
                    raise RuntimeError("only %d of %d handled" %
                                       (n - done0, len(msgs)))
                time.sleep(0.02)
        return cpu_of(proc.pid) - c0
    finally:
        proc.terminate()
        proc.wait(10)
        pub.close(0)
        ctx.term()


def rtt(port):
    c = http.client.HTTPConnection("127.0.0.1", port)
    body = dumps((1001,), "getBuild")
    best = 1.0
    for _ in range(200):
        t0 = time.perf_counter()
        c.request("POST", "/RPC2", body, {"Content-Type": "text/xml"})
        c.getresponse().read()
        best = min(best, time.perf_counter() - t0)
    c.close()
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("-b", type=int, default=200)
    ap.add_argument("build")
    a = ap.parse_args()
    build = Path(a.build).resolve()
    hub_bin = build / "bin" / "fedmsg-hub"
    srv = SimpleXMLRPCServer(("127.0.0.1", 0), allow_none=True,
                             logRequests=False)
    srv.register_instance(Koji())
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    conf = {
        "trusted_publishers": ["alpha-app01.vectors.example.org"],
        "signing": {"command": ["false"], "user": "bench"},
        "koji_instances": {"primary": {
            "url": "http://127.0.0.1:%d/kojihub" % port,
            "options": {"authmethod": "ssl", "cert": "/nonexistent",
                        "serverca": "/nonexistent"},
            "tags": [{"from": FROM, "to": TO, "key": "k",
                      "keyid": "e99d6ad1"}]}}}
    robo = {"plugin": str(build / "plugins" / "robosignatory.so"),
            "topics": ["org.fedoraproject.dev.buildsys.tag"],
            "dedup_window": 0, "config": conf}
    noop = {"plugin": str(build / "bench" / "noop_consumer.so"),
            "topics": ["org.fedoraproject.dev.buildsys.tag"],
            "dedup_window": 0}

    def tag_msgs(n, tag):
        return [wire(signed("buildsys.tag", {
            "build_id": 1001, "name": "pkg", "version": "1.0",
            "release": "1.fc41", "tag": tag, "instance": "primary"}))
            for _ in range(n)]
    other = tag_msgs(a.n, "f41-other")
    ours = tag_msgs(a.b, FROM)
    with tempfile.TemporaryDirectory() as d:
        cpu = {}
        for name, consumer, msgs in (("noop", noop, other),
                                     ("not_ours", robo, other),
                                     ("builds", robo, ours)):
            w = Path(d) / name
            w.mkdir()
            cpu[name] = run_hub(hub_bin, w, consumer, msgs)
    per_other = cpu["not_ours"] / a.n
    build_us = (cpu["builds"] / a.b - per_other) * 1e6
    rtt_us = rtt(port) * 1e6
    print("robosig not_ours_vs_noop %.2f" % (cpu["not_ours"] / cpu["noop"]))
    print("robosig build_cpu_us %.0f" % build_us)
    print("robosig koji_rtt_us %.0f" % rtt_us)
    print("robosig build_vs_rtt %.2f" % (build_us / rtt_us))
    srv.shutdown()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print("bench_robosig: %s" % e, file=sys.stderr)
        sys.exit(1)
