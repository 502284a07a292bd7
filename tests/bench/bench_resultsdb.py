#!/usr/bin/python3
"""bench_resultsdb.py BUILD_DIR: results per second into a real ResultsDB
(../shared/peers/resultsdb on SQLite, started here) through the hub's
resultsdb plugin (release build), as a ratio to ResultsDB's own capacity
measured in the same run by a plain HTTP client (one keep-alive
connection) POSTing the same results.  The plugin asks ResultsDB whether
each result is there before POSTing it (idempotence: README), so about
0.5 is the figure to expect when ResultsDB is the bottleneck.

  BENCH_RDB_N   results per run (default 200)

Prints the table and writes BUILD_DIR/bench/resultsdb.txt.  Skips (exit
0, one line) without the peers."""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "tests" / "integration"))

from conftest import (bus_config, free_ports, make_envelope, tcp,  # noqa
                      wire, write_config, zmq_module)
from resultsdb_peer import (RESULTSDB, UPDATER, ResultsDB,  # noqa: E402
                            fake_messages, updater_expected)

FAKE = "compose_message"     # one CI message, one result


def count(db):
    return len(db.get("/results?limit=%d" % 100000)["data"])


def plain_client(db, payload, n):
    """POST n copies (a group of its own each) on one connection."""
    c = http.client.HTTPConnection("127.0.0.1", db.port, timeout=30)
    t0 = time.monotonic()
    for _ in range(n):
        p = dict(payload, groups=[dict(payload["groups"][0],
                                       uuid=str(uuid.uuid4()))])
        c.request("POST", "/api/v2.0/results", json.dumps(p),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 201:
            sys.exit("bench: ResultsDB answered %d" % r.status)
    dt = time.monotonic() - t0
    c.close()
    return n / dt


def plugin(build, db, fake, n, work):
    zmq = zmq_module()
    ctx = zmq.Context()
    src = free_ports(1)[0]
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(tcp(src))
    cfg = bus_config()
    cfg.update(endpoints={"src": [tcp(src)]}, zmq_linger=0,
               hub={"drain_timeout": 3}, consumers={"rdb": {
                   "plugin": str(Path(build) / "plugins" / "resultsdb.so"),
                   "topics": [fake["topic"]], "dedup_window": 0,
                   "config": {"api_url": db.url, "timeout": 10}}})
    conf = write_config(work, cfg)
    log = open(work / "hub.log", "wb")
    hub = subprocess.Popen([str(Path(build) / "bin" / "fedmsg-hub"),
                            "--config", str(conf)], stdout=log, stderr=log,
                           env=dict(os.environ, FEDMSG_CONFIG=str(conf)))
    try:
        def env(i):
            e = make_envelope(fake["topic"], fake["body"]["msg"])
            e["headers"] = {}
            return wire(e)
        base = count(db)
        deadline = time.monotonic() + 30
        sync = env(0)
        while count(db) == base:      # the slow joiner: one lands
            if time.monotonic() > deadline or hub.poll() is not None:
                sys.exit("bench: the hub got nothing: %s" %
                         (work / "hub.log").read_text()[-2000:])
            pub.send_multipart(sync)
            time.sleep(0.2)
        base = count(db)
        t0 = time.monotonic()
        for i in range(n):
            pub.send_multipart(env(i + 1))
        while count(db) < base + n:
            if time.monotonic() - t0 > 600 or hub.poll() is not None:
                sys.exit("bench: %d of %d results: %s" % (
                    count(db) - base, n,
                    (work / "hub.log").read_text()[-2000:]))
            time.sleep(0.05)
        return n / (time.monotonic() - t0)
    finally:
        hub.terminate()
        hub.wait(10)
        log.close()
        pub.close()
        ctx.term()


def main():
    build = Path(sys.argv[1]).resolve()
    n = int(os.environ.get("BENCH_RDB_N", "200"))
    if not (RESULTSDB / "runapp.py").is_file() or not UPDATER.is_dir():
        print("bench resultsdb: skipped (no ResultsDB peers in %s)" %
              RESULTSDB.parent)
        return
    fake = fake_messages()[FAKE]
    payload = updater_expected([fake])[0]["posts"][0]
    with tempfile.TemporaryDirectory(prefix="fedmsg-bench-rdb.") as t:
        work = Path(t)
        (work / "a").mkdir()
        (work / "b").mkdir()
        db = ResultsDB(work / "a").start()
        try:
            base = plain_client(db, payload, n)
        finally:
            db.stop()
        db = ResultsDB(work / "b").start()
        try:
            ours = plugin(build, db, fake, n, work)
        finally:
            db.stop()
    out = ("resultsdb: %d results of %s into ResultsDB (SQLite)\n"
           "  plain HTTP client (POST, keep-alive)   %8.1f results/s\n"
           "  hub + resultsdb plugin (GET + POST)    %8.1f results/s\n"
           "  ratio plugin / plain                   %8.2f\n"
           % (n, FAKE, base, ours, ours / base))
    sys.stdout.write(out)
    (build / "bench").mkdir(parents=True, exist_ok=True)
    (build / "bench" / "resultsdb.txt").write_text(out)


if __name__ == "__main__":
    main()
