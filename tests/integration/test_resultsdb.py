"""consumers/resultsdb in a real fedmsg-hub against a real ResultsDB:
every message of ResultsDB-Updater's tests/fake_messages/, published
signed on ZeroMQ, lands in ResultsDB exactly as ResultsDB-Updater's own
consumer (the oracle) would put it there, field by field; a replay adds
nothing."""

import json
import time
import uuid

import pytest

from conftest import (fast_sign, free_ports, hub_config, make_envelope,
                      project_plugin, tcp, wait_until, wire, write_config,
                      zmq_module, zsocket)
from resultsdb_peer import (ResultsDB, fake_messages, need_resultsdb,
                            updater_expected)

pytestmark = pytest.mark.usefixtures("hub_time_limit")


@pytest.fixture
def resultsdbs(tmp_path):
    need_resultsdb()
    started = []

    def start(name):
        d = tmp_path / name
        d.mkdir()
        r = ResultsDB(d).start()
        started.append(r)
        return r
    yield start
    for r in started:
        r.stop()


def unordered(v):
    """A data value: a JSON object serialized into a string is compared
    as an object (ResultsDB-Updater keeps the message's key order, the
    plugin writes sorted keys)."""
    if isinstance(v, list):
        return [unordered(x) for x in v]
    if isinstance(v, str) and v.startswith("{"):
        try:
            return json.loads(v)
        except ValueError:
            pass
    return v


def comparable(db):
    """The results of db without what ResultsDB makes up (ids, times,
    group uuids), sorted."""
    out = []
    for r in db.results():
        groups = sorted(json.dumps({k: v for k, v in db.group(g).items()
                                    if k in ("ref_url", "description")},
                                   sort_keys=True) for g in r["groups"])
        out.append(json.dumps({
            "testcase": {k: r["testcase"].get(k) for k in ("name",
                                                           "ref_url")},
            "outcome": r["outcome"], "ref_url": r["ref_url"],
            "note": r["note"], "groups": groups,
            "data": {k: unordered(v) for k, v in r["data"].items()}},
            sort_keys=True))
    return sorted(out)


def ci_envelope(fake, msg_id=None):
    env = make_envelope(fake["topic"], fake["body"]["msg"],
                        msg_id=msg_id or "2026-%s" % uuid.uuid4())
    env["headers"] = fake.get("headers", {})
    return fast_sign(env)


def test_fake_messages_land_as_resultsdb_updater_puts_them(
        tmp_path, hubs, zctx, resultsdbs):
    fakes = fake_messages()
    expected = updater_expected(list(fakes.values()))
    ref = resultsdbs("reference")
    refused = []
    for e in expected:
        for p in e["posts"]:
            for g in p["groups"]:
                g["uuid"] = str(uuid.uuid4())
            refused.append(ref.post(p).get("refused"))
    # what ResultsDB itself refuses (HTTP 400), it refuses from both
    total = len([r for r in refused if r is None])
    print("refused by ResultsDB:", [r for r in refused if r])
    db = resultsdbs("target")

    zmq = zmq_module()
    src, mport = free_ports(2)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    topics = sorted({f["topic"] for f in fakes.values()})
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "rdb": {"plugin": str(project_plugin("resultsdb")),
                "topics": topics, "dedup_window": 0, "backoff": 0.2,
                "config": {"api_url": db.url, "timeout": 10}}}))
    hub = hubs(cfg, metrics_port=mport).ready()
    # the slow joiner: one message again until its result is there
    first = fakes["message"]
    sync_env = ci_envelope(first, "2026-sync")
    sync = wire(sync_env)
    for _ in range(50):
        pub.send_multipart(sync)
        time.sleep(0.2)
        if db.results():
            break
    wait_until(lambda: db.results(), 5, "a first result", hub)
    hub.idle()
    envs = {name: ci_envelope(f) for name, f in fakes.items()}
    envs["message"] = sync_env
    for name, env in envs.items():
        if name != "message":
            pub.send_multipart(wire(env))
    wait_until(lambda: len(db.results()) >= total, 30,
               "%d results" % total, hub)
    hub.idle()
    assert comparable(db) == comparable(ref)

    # a replay of every message adds nothing: each result is found
    skipped = lambda: hub.stderr().count("already in ResultsDB")  # noqa
    before = skipped()
    for env in envs.values():
        pub.send_multipart(wire(env))
    wait_until(lambda: skipped() >= before + total, 30,
               "every replayed result found in ResultsDB", hub)
    hub.idle()
    assert len(db.results()) == total
    rejected = [r for e in expected for r in e["rejected"]]
    assert rejected == ['Missing field "test.result"']
    assert 'Invalid message rejected: Missing field "test.result"' in \
        hub.stderr()
