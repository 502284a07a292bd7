"""Replay (libfedmsg/replay.h) against pyzmq peers.

* Server side: the only long-lived publisher built on fm_publisher_open()
  today is fedmsg-logger reading standard input (fedmsg-hub is not written
  yet).  It is an active publisher, so its service name is relay_inbound:
  with replay_endpoints {"relay_inbound": URL} it serves fedmsg's REQ/REP
  replay queries for as long as its standard input stays open.  A pyzmq
  REQ asks it, and the replies are compared with what went over the relay.
* Client side: fedmsg-tail's gap detection, with a Python publisher (a
  bound PUB on endpoints["svc"]) that also serves the replay protocol on a
  pyzmq REP at replay_endpoints["svc"].
"""

import json
import os
import time

import pytest

from conftest import (HOST, Probes, Sub, bus_config, canonical,
                      free_ports, make_envelope, start_relay, sync_tail, tcp,
                      wire, write_config, zmq_module, zsocket)

pytestmark = pytest.mark.usefixtures("zmq_time_limit")


# ---- the C publisher's replay server ----------------------------------------

def req(zctx, url, query, timeout=3.0):
    """One fedmsg replay query (canonical JSON) -> list of reply frames."""
    zmq = zmq_module()
    s = zsocket(zctx, zmq.REQ, connect=url)
    try:
        s.send(query if isinstance(query, bytes)
               else canonical(query).encode())
        if not s.poll(int(timeout * 1000)):
            pytest.fail("no replay answer to %r within %.1f s"
                        % (query, timeout), pytrace=False)
        return s.recv_multipart()
    finally:
        s.close(linger=0)


@pytest.mark.parametrize("sign", [False, True])
def test_logger_serves_replay_queries(tmp_path, daemons, zctx, dev_pki,
                                      sign):
    p_in, p_out, p_rep = free_ports(3)
    extra = {}
    if sign:
        extra = dict(sign_messages=True, ssldir=str(dev_pki),
                     certnames={"shell.%s" % HOST: "shell-localhost"})
    cfg = write_config(tmp_path, bus_config(
        relay_inbound=tcp(p_in), endpoints={"relay_outbound": [tcp(p_out)]},
        replay_endpoints={"relay_inbound": tcp(p_rep)}, **extra))
    start_relay(daemons, cfg)
    pub = zsocket(zctx, zmq_module().PUB, connect=tcp(p_in))
    sub = Sub(zctx, tcp(p_out))
    sub.sync(pub.send_multipart, Probes())

    logger = daemons("fedmsg-logger", ["--config", cfg], config=cfg,
                     stdin="pipe")
    lines = ["one", "two", "three", "four"]
    logger.proc.stdin.write(("\n".join(lines) + "\n").encode())
    logger.proc.stdin.flush()
    msgs = sub.wait_count(len(lines), timeout=20)
    assert len(msgs) == len(lines), logger.describe()
    bodies = [b for _, b in msgs]
    envs = [json.loads(b) for b in bodies]
    assert [e["i"] for e in envs] == [1, 2, 3, 4]
    assert [e["msg"]["log"] for e in envs] == lines
    assert logger.running()             # stdin still open: still serving

    url = tcp(p_rep)
    # fm_publisher_send() stores a message right AFTER sending it, so the
    # newest one can reach us through the relay a moment before the store
    # has it: wait for the store to hold all four first.
    deadline = time.monotonic() + 10
    while len(req(zctx, url, {"seq_id_range": [0, 100]})) < len(lines):
        assert time.monotonic() < deadline, "replay store incomplete"
        time.sleep(0.02)
    # exact signed bytes, in "i" order, one frame per message
    assert req(zctx, url, {"seq_id_range": [2, 4]}) == bodies[1:4]
    assert req(zctx, url, {"seq_id_range": [0, 100]}) == bodies
    assert req(zctx, url, {"seq_id": 3}) == [bodies[2]]
    assert req(zctx, url, {"seq_ids": [4, 1]}) == [bodies[0], bodies[3]]
    assert req(zctx, url, {"msg_id": envs[1]["msg_id"]}) == [bodies[1]]
    assert req(zctx, url, {"msg_ids": [envs[3]["msg_id"],
                                       envs[0]["msg_id"]]}) == \
        [bodies[0], bodies[3]]
    t0 = min(e["timestamp"] for e in envs)
    t1 = max(e["timestamp"] for e in envs)
    assert req(zctx, url, {"time": [t0, t1]}) == bodies
    # several keys are OR-ed, each message once
    assert req(zctx, url, {"seq_id": 1, "msg_id": envs[0]["msg_id"],
                           "seq_ids": [2]}) == bodies[:2]
    # fedmsg's error replies
    assert req(zctx, url, {"seq_id": 99}) == \
        [b"error: 'There was no match for the given query'"]
    assert req(zctx, url, {"bogus": 1}) == \
        [b"error: 'Unsupported field: \"bogus\"'"]
    err = req(zctx, url, b"not json")
    assert len(err) == 1 and err[0].startswith(b"error: "), err
    # the server survives all that
    assert req(zctx, url, {"seq_id": 2}) == [bodies[1]]

    logger.proc.stdin.close()
    assert logger.wait(10) == 0
    assert logger.stderr() == ""


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def test_replay_unread_replies_are_bounded(tmp_path, daemons, zctx):
    """A client may pipeline queries (a DEALER: REP allows it) and read
    nothing.  Each reply names every stored message; the publisher keeps
    a few unread replies per connection, not 1000 (libzmq's default), so
    300 queries for 2000 messages (about 70 MB of queued frames before)
    leave its memory where it was, and it goes on answering."""
    zmq = zmq_module()
    p_in, p_out, p_rep = free_ports(3)
    cfg = write_config(tmp_path, bus_config(
        relay_inbound=tcp(p_in), endpoints={"relay_outbound": [tcp(p_out)]},
        replay_endpoints={"relay_inbound": tcp(p_rep)}))
    start_relay(daemons, cfg)
    # ASan keeps freed memory in quarantine: RSS would count it
    asan = os.environ.get("ASAN_OPTIONS", "")
    logger = daemons("fedmsg-logger", ["--config", cfg], config=cfg,
                     stdin="pipe", env={"ASAN_OPTIONS": asan + (
                         ":" if asan else "") + "quarantine_size_mb=0"})
    n = 2000
    logger.proc.stdin.write("".join("line %d %s\n" % (k, "x" * 100)
                                    for k in range(n)).encode())
    logger.proc.stdin.flush()
    url = tcp(p_rep)
    query = {"seq_id_range": [0, 10 ** 6]}
    deadline = time.monotonic() + 30
    while len(req(zctx, url, query, timeout=10)) < n:
        assert time.monotonic() < deadline, "replay store incomplete"
        time.sleep(0.2)
    before = rss_mb(logger.pid)
    greedy = zctx.socket(zmq.DEALER)
    greedy.setsockopt(zmq.RCVHWM, 1)
    greedy.setsockopt(zmq.RCVBUF, 4096)
    greedy.setsockopt(zmq.LINGER, 0)
    greedy.connect(url)
    body = canonical(query).encode()
    for _ in range(300):
        greedy.send_multipart([b"", body])
    peak = before
    for _ in range(20):
        time.sleep(0.25)
        peak = max(peak, rss_mb(logger.pid))
    assert len(req(zctx, url, {"seq_id": 1})) == 1    # still answering
    greedy.close()
    print("logger VmRSS %.0f MB, then %.0f MB" % (before, peak))
    assert peak - before < 24, (
        "unread replies held %.0f MB" % (peak - before))
    logger.proc.stdin.close()
    assert logger.wait(10) == 0


# ---- fedmsg-tail's gap detection against a Python publisher -----------------

class PyPublisher:
    """A fedmsg passive publisher in Python: PUB bound at endpoints["svc"],
    REP bound at replay_endpoints["svc"] answering seq_id_range queries
    from a store keyed by the envelopes' "i"."""

    def __init__(self, zctx, p_pub, p_rep):
        zmq = zmq_module()
        self.pub = zsocket(zctx, zmq.PUB, bind=tcp(p_pub))
        self.rep = zsocket(zctx, zmq.REP, bind=tcp(p_rep))
        self.store = {}
        self.queries = []
        self.reply = None        # function(query dict) -> frames

    def envelope(self, i):
        return make_envelope("org.fedoraproject.dev.test.seq", {"n": i}, i=i)

    def keep(self, env):
        self.store[env["i"]] = canonical(env).encode()

    def send(self, env):
        self.keep(env)
        self.pub.send_multipart(wire(env))

    def default_reply(self, q):
        lo, hi = q["seq_id_range"]
        frames = [self.store[i] for i in sorted(self.store) if lo <= i <= hi]
        return frames or [b"error: 'There was no match for the given query'"]

    def serve(self, timeout_ms=20):
        if self.rep.poll(timeout_ms):
            q = json.loads(self.rep.recv())
            self.queries.append(q)
            self.rep.send_multipart((self.reply or self.default_reply)(q))


def gap_setup(tmp_path, daemons, zctx):
    p_pub, p_rep = free_ports(2)
    cfg = write_config(tmp_path, bus_config(
        endpoints={"svc": [tcp(p_pub)]},
        replay_endpoints={"svc": tcp(p_rep)}))
    py = PyPublisher(zctx, p_pub, p_rep)
    tail = daemons("fedmsg-tail", ["--config", cfg, "--json"], config=cfg)
    # probes carry no "i": gap detection does not track them
    probes = Probes()
    sync_tail(tail, py.pub.send_multipart, probes)
    return py, tail, probes


def tail_until(tail, py, needle, timeout=8.0):
    """Serve replay queries while waiting for needle in tail's output."""
    deadline = time.monotonic() + timeout
    needle = needle.encode()
    while needle not in tail.stdout():
        if time.monotonic() > deadline or not tail.running():
            pytest.fail("fedmsg-tail did not print %r: %s"
                        % (needle, tail.describe()), pytrace=False)
        py.serve(20)


def printed_i(tail):
    return [json.loads(ln)["i"] for ln in tail.lines()
            if not Probes.is_probe(ln)]


def run_gap(py, tail, probes, sent, held, last):
    """Send `sent`, keep `held` without sending, send `last`, then an end
    marker; return the "i"s tail printed."""
    for i in sent:
        py.send(py.envelope(i))
    for i in held:
        py.keep(py.envelope(i))
    py.send(py.envelope(last))
    end = probes.make("end")
    py.pub.send_multipart(wire(end))
    tail_until(tail, py, end["topic"])
    assert tail.stop() == 0
    return printed_i(tail)


def test_tail_fills_gap_from_replay(tmp_path, daemons, zctx):
    py, tail, probes = gap_setup(tmp_path, daemons, zctx)
    got = run_gap(py, tail, probes, [1, 2, 3], [4, 5, 6], 7)
    assert got == [1, 2, 3, 4, 5, 6, 7]
    # exactly the missing range (fedmsg would ask [3, 7])
    assert py.queries == [{"seq_id_range": [4, 6]}]
    # the replayed lines are the stored bodies, byte for byte
    lines = [ln for ln in tail.lines() if not Probes.is_probe(ln)]
    assert [ln.encode() for ln in lines] == [py.store[i] for i in range(1, 8)]


def test_tail_sorts_and_dedups_replay_reply(tmp_path, daemons, zctx):
    py, tail, probes = gap_setup(tmp_path, daemons, zctx)
    # a sloppy server: out of order, a duplicate, one outside the range
    # and a frame that is not JSON
    py.reply = lambda q: [py.store[6], py.store[4], py.store[5],
                          py.store[4], py.store[2], b"garbage"]
    got = run_gap(py, tail, probes, [1, 2, 3], [4, 5, 6], 7)
    assert got == [1, 2, 3, 4, 5, 6, 7]
    assert py.queries == [{"seq_id_range": [4, 6]}]


def test_tail_gap_replay_error_keeps_going(tmp_path, daemons, zctx):
    py, tail, probes = gap_setup(tmp_path, daemons, zctx)
    py.reply = lambda q: [b"error: 'Something went wrong when processing "
                          b"the field \"seq_id_range\"'"]
    got = run_gap(py, tail, probes, [1, 2, 3], [4, 5, 6], 7)
    assert got == [1, 2, 3, 7]
    assert py.queries == [{"seq_id_range": [4, 6]}]
    assert "Something went wrong" in tail.stderr()


def test_tail_publisher_restart_is_not_a_gap(tmp_path, daemons, zctx):
    py, tail, probes = gap_setup(tmp_path, daemons, zctx)
    for i in [1, 2, 3, 1, 2]:        # the publisher restarted after 3
        py.pub.send_multipart(wire(py.envelope(i)))
    end = probes.make("end")
    py.pub.send_multipart(wire(end))
    tail_until(tail, py, end["topic"])
    assert tail.stop() == 0
    assert printed_i(tail) == [1, 2, 3, 1, 2]
    assert py.queries == []


def test_tail_gap_replay_silent_times_out(tmp_path, daemons, zctx):
    """A replay server that never answers costs one wait (2 s), not the
    tail: the live message follows and tail keeps running."""
    py, tail, probes = gap_setup(tmp_path, daemons, zctx)
    py.rep.close(linger=0)           # bound port gone: nobody answers
    py.serve = lambda timeout_ms=20: time.sleep(timeout_ms / 1000)
    got = run_gap(py, tail, probes, [1, 2, 3], [4, 5, 6], 7)
    assert got == [1, 2, 3, 7]
    assert "no answer within 2000 ms" in tail.stderr(), tail.stderr()
