"""fedmsg-gateway, fedmsg-tail and fedmsg-logger against real pyzmq peers,
Python's json and python3-cryptography.

Passive publishers are pyzmq PUB sockets that BIND (fedmsg's default
mode); the tools connect to them through endpoints in a JSON config in
tmp_path.  Probes beat the slow joiner and mark the end of each batch
(see conftest.Probes).
"""

import json
import re
import time

import pytest

from peers import assert_signed_by
from conftest import (HOST, VECTORS, Probes, Sub, bus_config, canonical,
                      finish_tail, frame_matches_body, free_ports,
                      make_envelope, start_relay, sync_tail,
                      tcp, valid_by_default, vector_frames,
                      vector_validation, wire, write_config, zmq_module,
                      zsocket)

pytestmark = pytest.mark.usefixtures("zmq_time_limit")


def passive_pub(zctx, port):
    """A fedmsg passive publisher: a PUB bound on the endpoint."""
    return zsocket(zctx, zmq_module().PUB, bind=tcp(port))


def json_line(body):
    """fedmsg-tail --json's line for a body: line breaks become spaces."""
    return body.replace(b"\n", b" ").replace(b"\r", b" ").decode("utf-8")


def printed(tail):
    """fedmsg-tail --json output without the probes."""
    return [ln for ln in tail.lines() if not Probes.is_probe(ln)]


# ---- 3. fedmsg-gateway -------------------------------------------------------

@pytest.mark.parametrize("validate", [False, True])
def test_gateway_republishes_passive_publisher(tmp_path, daemons, zctx,
                                               validate):
    p_pub, p_gw = free_ports(2)
    extra = vector_validation() if validate else {}
    cfg = write_config(tmp_path, bus_config(
        endpoints={"svc": [tcp(p_pub)]}, **extra))
    pub = passive_pub(zctx, p_pub)
    args = ["--config", cfg, "--bind", tcp(p_gw)]
    gw = daemons("fedmsg-gateway", args + (["--validate"] if validate
                                           else []), config=cfg)
    gw.wait_stderr("publishing on %s" % tcp(p_gw))
    sub = Sub(zctx, tcp(p_gw))
    probes = Probes(sign=validate)
    sub.sync(pub.send_multipart, probes)
    for rec in VECTORS:
        pub.send_multipart(vector_frames(rec))
    sub.finish(pub.send_multipart, probes)

    want = [vector_frames(r) for r in VECTORS if frame_matches_body(r)
            and (not validate or valid_by_default(r))]
    assert sub.msgs == want          # frames byte for byte, in order
    assert gw.stop() == 0
    m = re.search(r"forwarded (\d+), unsendable (\d+); dropped: (\d+) bad "
                  r"frames, (\d+) not JSON objects, (\d+) topic mismatches, "
                  r"(\d+) invalid", gw.stderr())
    assert m, gw.stderr()
    fwd, unsendable, bad, notjson, mismatch, invalid = map(int, m.groups())
    assert (unsendable, bad, notjson, mismatch) == (0, 0, 0, 1)
    assert fwd >= len(want) + len(sub.probe_ids)
    n_invalid = sum(1 for r in VECTORS if frame_matches_body(r)
                    and not valid_by_default(r))
    assert invalid == (n_invalid if validate else 0)


# ---- 5. fedmsg-tail ----------------------------------------------------------

def start_tail(daemons, tmp_path, port, *args, **cfg_extra):
    cfg = write_config(tmp_path, bus_config(
        endpoints={"svc": [tcp(port)]}, **cfg_extra))
    return daemons("fedmsg-tail", ["--config", cfg] + list(args), config=cfg)


def test_tail_json_prints_bodies(tmp_path, daemons, zctx):
    port, = free_ports(1)
    pub = passive_pub(zctx, port)
    tail = start_tail(daemons, tmp_path, port, "--json")
    probes = Probes()
    sync_tail(tail, pub.send_multipart, probes)
    for rec in VECTORS:
        pub.send_multipart(vector_frames(rec))
    finish_tail(tail, pub.send_multipart, probes)
    assert tail.stop() == 0          # SIGTERM: exit status 0
    want = [json_line(rec["wire_body"].encode()) for rec in VECTORS
            if frame_matches_body(rec)]
    got = printed(tail)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g == w
    # one line per message: every probe and vector line parses alone
    for line in tail.lines():
        json.loads(line)


def test_tail_validate_prints_only_valid(tmp_path, daemons, zctx):
    port, = free_ports(1)
    pub = passive_pub(zctx, port)
    tail = start_tail(daemons, tmp_path, port, "--json", "--validate",
                      **vector_validation(validate_signatures=False))
    probes = Probes(sign=True)
    sync_tail(tail, pub.send_multipart, probes)
    for rec in VECTORS:
        pub.send_multipart(vector_frames(rec))
    finish_tail(tail, pub.send_multipart, probes)
    assert tail.stop() == 0
    valid = [r for r in VECTORS if frame_matches_body(r)
             and valid_by_default(r)]
    got = [json.loads(ln) for ln in printed(tail)]
    assert [m["msg_id"] for m in got] == \
        [json.loads(r["wire_body"])["msg_id"] for r in valid]
    assert printed(tail) == [json_line(r["wire_body"].encode())
                             for r in valid]
    assert "invalid message" in tail.stderr()


def test_tail_topic_prefix_filter(tmp_path, daemons, zctx):
    prefixes = ["org.fedoraproject.dev.i18n", "org.fedoraproject.dev.numbers"]
    port, = free_ports(1)
    pub = passive_pub(zctx, port)
    args = ["--json"]
    for p in prefixes:
        args += ["--topic", p]
    tail = start_tail(daemons, tmp_path, port, *args)
    probes = Probes(prefix=prefixes[0] + ".zz_probe")
    sync_tail(tail, pub.send_multipart, probes)
    for rec in VECTORS:
        pub.send_multipart(vector_frames(rec))
    finish_tail(tail, pub.send_multipart, probes)
    assert tail.stop() == 0
    want = [json_line(r["wire_body"].encode()) for r in VECTORS
            if frame_matches_body(r) and
            any(r["wire_topic"].startswith(p) for p in prefixes)]
    assert len(want) >= 4
    assert printed(tail) == want


def test_tail_terse_lines(tmp_path, daemons, zctx):
    port, = free_ports(1)
    pub = passive_pub(zctx, port)
    tail = start_tail(daemons, tmp_path, port, "--terse")
    probes = Probes()
    sync_tail(tail, pub.send_multipart, probes)
    git = make_envelope("org.fedoraproject.dev.git.receive", {
        "commit": {"repo": "bash", "branch": "f40", "namespace": "rpms",
                   "username": "alice", "summary": "Fix the build\nmore",
                   "message": "Fix the build\n\nlong text"},
        "agent": "alice"}, i=1, username="git")
    log = make_envelope("org.fedoraproject.dev.logger.log",
                        {"log": "backup finished"}, i=2, username="bob")
    pub.send_multipart(wire(git))
    pub.send_multipart(wire(log))
    finish_tail(tail, pub.send_multipart, probes)
    assert tail.stop() == 0
    lines = [ln for ln in tail.lines() if "zz_probe" not in ln]
    assert len(lines) == 2, tail.lines()
    hms = r"\d\d:\d\d:\d\d"
    assert re.fullmatch(hms + r" org\.fedoraproject\.dev\.git\.receive "
                        r"alice pushed 1 commit to rpms/bash \(f40\): "
                        r"Fix the build", lines[0]), lines[0]
    assert re.fullmatch(hms + r" org\.fedoraproject\.dev\.logger\.log "
                        r"bob: backup finished", lines[1]), lines[1]


def test_tail_exits_zero_on_sigterm_when_idle(tmp_path, daemons, zctx):
    port, = free_ports(1)
    pub = passive_pub(zctx, port)
    tail = start_tail(daemons, tmp_path, port, "--json")
    sync_tail(tail, pub.send_multipart, Probes())   # in its receive loop
    time.sleep(0.7)                 # idle: more than one 500 ms wait slice
    assert tail.running()
    assert tail.stop() == 0             # within stop()'s deadline
    assert all(Probes.is_probe(ln) for ln in tail.lines())


# ---- 6. fedmsg-logger -> fedmsg-relay -> pyzmq ---------------------------------

@pytest.fixture
def logger_bus(tmp_path, daemons, zctx, dev_pki):
    """A relay, a config that signs as shell.<host>, and a pyzmq SUB on
    the relay's outbound endpoint that has seen a probe."""
    p_in, p_out = free_ports(2)
    conf = bus_config(
        relay_inbound=tcp(p_in), endpoints={"relay_outbound": [tcp(p_out)]},
        sign_messages=True, ssldir=str(dev_pki),
        certnames={"shell.%s" % HOST: "shell-localhost"})
    # topic_prefix and environment left to their defaults
    # (org.fedoraproject, dev)
    del conf["topic_prefix"], conf["environment"]
    # the logger waits up to the config's timeout for the relay (2 s by
    # default): a loaded machine may need more; no test here expires it
    conf["timeout"] = 10
    cfg = write_config(tmp_path, conf)
    relay = start_relay(daemons, cfg)
    pub = zsocket(zctx, zmq_module().PUB, connect=tcp(p_in))
    sub = Sub(zctx, tcp(p_out))
    probes = Probes()
    sub.sync(pub.send_multipart, probes)
    return cfg, sub, relay


def check_signed_by_shell(topic, body, dev_pki):
    """Validate as a Python fedmsg receiver does: the real
    fedmsg.crypto.validate_signed_by (the caller asks for fedmsg_peer)."""
    env = json.loads(body)
    assert topic.decode() == env["topic"]
    assert body.decode() == canonical(env)     # fedmsg's wire encoding
    assert_signed_by([env], "shell-localhost", ca=dev_pki / "ca.crt",
                     crl=dev_pki / "crl.pem")
    assert env["crypto"] == "x509"
    assert env["topic"] == "org.fedoraproject.dev.logger.log"
    assert isinstance(env["timestamp"], (int, float))
    assert re.fullmatch(r"\d{4}-[0-9a-f-]{36}", env["msg_id"]), env["msg_id"]
    return env


def test_logger_message_signed(run, logger_bus, dev_pki, fedmsg_peer):
    cfg, sub, relay = logger_bus
    r = run("fedmsg-logger", ["--config", cfg, "--message", "hello"],
            env={"FEDMSG_CONFIG": str(cfg)})
    assert r.rc == 0, r
    msgs = sub.wait_count(1, timeout=15)
    assert len(msgs) == 1
    env = check_signed_by_shell(*msgs[0], dev_pki)
    assert env["msg"] == {"log": "hello"}
    assert env["i"] == 1


def test_logger_stdin_lines(run, logger_bus, dev_pki, fedmsg_peer):
    cfg, sub, relay = logger_bus
    r = run("fedmsg-logger", ["--config", cfg],
            input="first line\n  second \u00e9 line \t\n\n   \nthird\n",
            env={"FEDMSG_CONFIG": str(cfg)})
    assert r.rc == 0, r
    msgs = sub.wait_count(3, timeout=15)
    sub.pump(200)
    assert len(sub.msgs) == 3, sub.msgs
    envs = [check_signed_by_shell(t, b, dev_pki) for t, b in msgs]
    assert [e["msg"] for e in envs] == [{"log": "first line"},
                                        {"log": "second \u00e9 line"},
                                        {"log": "third"}]
    assert [e["i"] for e in envs] == [1, 2, 3]
    assert len({e["msg_id"] for e in envs}) == 3


def test_logger_json_input(run, logger_bus, dev_pki, fedmsg_peer):
    cfg, sub, relay = logger_bus
    value = {"answer": 42, "list": [1, 2.5, "caf\u00e9", None, True],
             "nested": {"x": "\U0001f600"}}
    r = run("fedmsg-logger", ["--config", cfg, "--json-input"],
            input=json.dumps(value, indent=2, ensure_ascii=False),
            env={"FEDMSG_CONFIG": str(cfg)})
    assert r.rc == 0, r
    msgs = sub.wait_count(1, timeout=15)
    assert len(msgs) == 1
    env = check_signed_by_shell(*msgs[0], dev_pki)
    assert env["msg"] == value


def test_logger_without_relay_fails_fast(run, tmp_path, dev_pki):
    port, = free_ports(1)        # nothing listens there
    cfg = write_config(tmp_path, bus_config(
        relay_inbound=tcp(port), sign_messages=True, ssldir=str(dev_pki),
        certnames={"shell.%s" % HOST: "shell-localhost"}))
    r = run("fedmsg-logger", ["--config", cfg, "--message", "hello"],
            env={"FEDMSG_CONFIG": str(cfg)}, timeout=10)
    assert r.rc == 1, r
    assert "no relay is listening on %s" % tcp(port) in r.stderr, r
    assert r.stdout == ""


def test_logger_bad_line_stops_after_earlier_lines(run, logger_bus, dev_pki,
                                                  fedmsg_peer):
    cfg, sub, relay = logger_bus
    r = run("fedmsg-logger", ["--config", cfg],
            input=b"fine\nbad \xff byte\nnever sent\n",
            env={"FEDMSG_CONFIG": str(cfg)})
    assert r.rc == 1, r
    assert "standard input line 2: not valid UTF-8" in r.stderr, r
    sub.wait_count(1, timeout=15)
    sub.pump(300)
    assert [check_signed_by_shell(t, b, dev_pki)["msg"]
            for t, b in sub.msgs] == [{"log": "fine"}]


def test_logger_sigterm_while_reading_stdin(logger_bus, daemons, dev_pki,
                                            fedmsg_peer):
    cfg, sub, relay = logger_bus
    logger = daemons("fedmsg-logger", ["--config", cfg], config=cfg,
                     stdin="pipe")
    logger.proc.stdin.write(b"before the signal\n")
    logger.proc.stdin.flush()
    assert len(sub.wait_count(1, timeout=15)) == 1
    assert logger.running()
    assert logger.stop() == 1           # documented: a signal stops it, 1
    assert "stopped by a signal after standard input line 1 (messages " \
        "sent: 1)" in logger.stderr()
    env = check_signed_by_shell(*sub.msgs[0], dev_pki)
    assert env["msg"] == {"log": "before the signal"}
