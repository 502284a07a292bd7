"""Plugin ABI 1.1, as a third party uses it: tests/abi/fields.c (built
against include/fedmsg/plugin.h alone) reads every value of every message
through the hub's accessors, and each value must be what Python's
json.loads() reads from the same bytes: nested strings, integers beyond
64 bits, floats, non-ASCII and NUL-holding strings from fedmsg's own
vectors, plus messages made here for keys with '/' and '~'.  Beside it,
tests/abi/legacy_v1_0.c, built against the frozen 1.0 header, still
loads and consumes; and the hub's "match" filter keeps messages from a
consumer before they are queued.
"""

import json
import math

import pytest

from conftest import (VECTORS, HubProbes, canonical, frame_matches_body,
                      free_ports, hub_config, hub_mark, hub_sync, signed,
                      tcp, valid_by_default, vector_frames, wait_until, wire,
                      write_config, zmq_module, zsocket)

pytestmark = pytest.mark.usefixtures("hub_time_limit")


def ptr_token(key):
    return key.replace("~", "~0").replace("/", "~1")


def hexs(s):
    """What fields.c writes for bytes (WTF-8 for text), "-" for none."""
    if isinstance(s, str):
        s = s.encode("utf-8", "surrogatepass")
    return s.hex() or "-"


def expected_lines(value, ptr=""):
    """fields.c's lines for a value parsed by json.loads, in its order."""
    p = hexs(ptr)
    if isinstance(value, bool):
        return ["b %s %d" % (p, value)]
    if value is None:
        return ["n %s" % p]
    if isinstance(value, int):
        in64 = -2**63 <= value < 2**63
        return ["i %s %d %s" % (p, value, value if in64 else "range")]
    if isinstance(value, float):
        return [("f", p, value)]       # compared as numbers below
    if isinstance(value, str):
        return ["s %s %s" % (p, hexs(value))]
    if isinstance(value, list):
        out = ["a %s %d" % (p, len(value))]
        for i, v in enumerate(value):
            out += expected_lines(v, "%s/%d" % (ptr, i))
        return out
    out = ["o %s %d" % (p, len(value))]
    for k in sorted(value):     # code point order, as the hub's tree
        if "\0" in k:
            out.append("x %s" % p)
            continue
        out += expected_lines(value[k], ptr + "/" + ptr_token(k))
    return out


def read_blocks(path):
    """[(msg_id, [lines])] from fields.c's record file, in order."""
    blocks, cur = [], None
    try:
        text = path.read_text()
    except FileNotFoundError:
        return blocks
    for line in text.splitlines():
        if line.startswith("M "):
            cur = []
            blocks.append((line[2:], cur))
        elif line == "E":
            cur = None
        elif cur is not None:
            cur.append(line)
    return blocks


def same(got, want):
    if isinstance(want, tuple):         # a float
        kind, p, x = want
        g = got.split(" ")
        if g[:2] != [kind, p] or len(g) != 3:
            return False
        y = float(g[2])
        return (math.isnan(x) and math.isnan(y)) or x == y
    return got == want


def check_message(lines, body):
    value = json.loads(body)
    want = expected_lines(value)
    text = [ln for ln in lines if ln.startswith("T ")]
    got = [ln for ln in lines if not ln.startswith("T ")]
    assert len(got) == len(want), (got[:5], want[:5])
    for g, w in zip(got, want):
        assert same(g, w), (g, w)
    # json_text() of the root: fedmsg's canonical encoding
    assert text == ["T " + hexs(canonical(value).encode("ascii"))]


# Made here: what the vectors lack (keys with '/' and '~', a NUL in a key,
# deep nesting, a lone surrogate, int64's edges).
CRAFTED = {
    "a/b": 1, "m~n": {"~1": [True, False, None]}, "nul\u0000key": "x",
    "deep": [[[[{"x": [1.5, -0.0, 1e300, 5e-324]}]]]],
    "edge": [2**63 - 1, -2**63, 2**63, -2**63 - 1, 10**40],
    "text": "caf\u00e9 \u2603 \ud83d\ude00 \ud800 nul:\u0000 end",
}


def test_every_value_through_the_accessors(tmp_path, hubs, zctx,
                                           abi_plugins):
    zmq = zmq_module()
    src, mport = free_ports(2)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    rec = tmp_path / "fields.txt"
    legacy = tmp_path / "legacy.txt"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "fields": {"plugin": str(abi_plugins["fields"]), "dedup_window": 0,
                   "config": {"file": str(rec)}},
        "legacy": {"plugin": str(abi_plugins["legacy_v1_0"]),
                   "dedup_window": 0, "config": {"file": str(legacy)}}}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    seen = lambda: [i for i, _ in read_blocks(rec)]      # noqa: E731
    hub_sync(pub.send_multipart, probes, seen, hub)
    first = len(read_blocks(rec))

    bodies = []     # (msg_id, body) in the order sent: one consumer thread
    for v in VECTORS:
        if frame_matches_body(v) and valid_by_default(v):
            pub.send_multipart(vector_frames(v))
            bodies.append((json.loads(v["wire_body"])["msg_id"],
                           v["wire_body"]))
    mine = signed("abi.crafted", CRAFTED)
    pub.send_multipart(wire(mine))
    bodies.append((mine["msg_id"], canonical(mine)))
    hub_mark(pub.send_multipart, probes, seen, hub)

    blocks = read_blocks(rec)[first:-1]         # the end marker is last
    assert len(bodies) == 34
    assert [i for i, _ in blocks] == [i for i, _ in bodies]
    for (_, lines), (_, body) in zip(blocks, bodies):
        check_message(lines, body)

    # the 1.0 plugin got the same messages through the 1.0 calls
    wait_until(lambda: mine["msg_id"] in legacy.read_text(), hub=hub,
               what="the 1.0 plugin to consume")
    rows = [ln.split(" ") for ln in legacy.read_text().splitlines()]
    rows = [r for r in rows if not r[0].startswith("probe-")]
    assert len(rows) == len(bodies)
    for (msg_id, body), row in zip(bodies, rows):
        assert row[:4] == [msg_id, "1", str(len(body.encode("utf-8"))),
                           json.loads(body)["topic"]]
    assert hub.stop() == 0


def test_match_filter_before_the_queue(tmp_path, hubs, zctx, abi_plugins):
    """Only messages whose fields equal the "match" values are queued for
    the consumer; the others never reach it (or its queue counters)."""
    zmq = zmq_module()
    src, mport = free_ports(2)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    rec = tmp_path / "verdicts.txt"
    probe_rec = tmp_path / "probes.txt"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "signing": {"plugin": str(abi_plugins["verdicts"]),
                    "config": {"file": str(rec)},
                    "match": {"/msg/tag": "f40-signing-pending",
                              "/msg/build/owner": {"name": "koji"},
                              "/msg/instance": "primary"}},
        "probes": {"plugin": str(abi_plugins["verdicts"]),
                   "config": {"file": str(probe_rec)}}}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    seen = lambda: [ln.split(" ")[0] for ln in   # noqa: E731
                    (probe_rec.read_text().splitlines()
                     if probe_rec.exists() else [])]
    hub_sync(pub.send_multipart, probes, seen, hub)
    base = hub.idle()

    good = {"tag": "f40-signing-pending", "instance": "primary",
            "build": {"owner": {"name": "koji"}, "nvr": "bash-5.2-1"}}
    msgs = {
        "good": good,
        "wrong-tag": dict(good, tag="f40-updates"),
        "no-tag": {k: v for k, v in good.items() if k != "tag"},
        "tag-not-string": dict(good, tag=["f40-signing-pending"]),
        "owner-extra": dict(good, build={"owner": {"name": "koji",
                                                   "id": 1}}),
        "good-again": dict(good, extra=1),
    }
    sent = {}
    for name, m in msgs.items():
        env = signed("buildsys.tag", m, msg_id="2026-" + name)
        sent[name] = env
        pub.send_multipart(wire(env))
    hub_mark(pub.send_multipart, probes, seen, hub)
    wait_until(lambda: rec.exists() and
               "2026-good-again" in rec.read_text(), hub=hub,
               what="the matching messages")
    got = [ln.split(" ")[0] for ln in rec.read_text().splitlines()]
    assert got == ["2026-good", "2026-good-again"]
    m = hub.metrics()
    assert m("fedmsg_consumer_in_total", consumer="signing") - \
        base("fedmsg_consumer_in_total", consumer="signing") == 2
    assert hub.stop() == 0


@pytest.mark.parametrize("match, why", [
    ({"msg/tag": "x"}, 'match: "msg/tag" is not a JSON Pointer'),
    ({"/msg/t~2": "x"}, 'match: "/msg/t~2" is not a JSON Pointer'),
    (["/msg/tag"], "a key has the wrong type"),
])
def test_bad_match_is_refused(tmp_path, hubs, abi_plugins, match, why):
    src, mport = free_ports(2)
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "c": {"plugin": str(abi_plugins["verdicts"]),
              "config": {"file": str(tmp_path / "r.txt")},
              "match": match}}))
    hub = hubs(cfg, metrics_port=mport)
    assert hub.wait() != 0
    assert why in hub.stderr()
