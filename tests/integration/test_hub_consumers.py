"""The project's consumers (consumers/*/) inside a real fedmsg-hub:
exec (a program per message, no shell) and archive (JSON lines, rotated
by size and by day)."""

import hashlib
import json
import os
import time

import pytest

from conftest import (HubProbes, Probes, archive_ids, free_ports, hub_config,
                      hub_mark, hub_sync, project_plugin, signed, tcp,
                      wait_until, wire, write_config, zmq_module, zsocket)

pytestmark = pytest.mark.usefixtures("hub_time_limit")

# The program exec runs: records its argv, its stdin (exactly) and each
# call, then exits with msg.exit after sleeping msg.sleep seconds.
EXEC_SCRIPT = r'''
import hashlib, json, os, sys, time
out, msg_id = sys.argv[1], sys.argv[2]
data = sys.stdin.buffer.read()
h = hashlib.sha256(msg_id.encode("utf-8", "surrogateescape")).hexdigest()
# argv and body first: a test that sees the call in calls.log reads them
with open(os.path.join(out, h + ".argv"), "w") as f:
    json.dump(sys.argv[1:], f)
with open(os.path.join(out, h + ".body"), "wb") as f:
    f.write(data)
with open(os.path.join(out, "calls.log"), "a") as f:
    f.write(json.dumps(msg_id) + "\n")
msg = json.loads(data)["msg"]
time.sleep(msg.get("sleep", 0))
with open(os.path.join(out, h + ".done"), "w") as f:
    f.write("done")
sys.exit(msg.get("exit", 0))
'''


@pytest.fixture
def bus(zctx):
    zmq = zmq_module()
    src, mport = free_ports(2)
    return zsocket(zctx, zmq.PUB, bind=tcp(src)), src, mport


def exec_calls(out):
    try:
        text = (out / "calls.log").read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines()]


def exec_files(out, msg_id):
    h = hashlib.sha256(msg_id.encode()).hexdigest()
    argv = json.loads((out / (h + ".argv")).read_text())
    return argv, (out / (h + ".body")).read_bytes(), \
        (out / (h + ".done")).exists()


def test_exec_consumer(tmp_path, hubs, bus):
    pub, src, mport = bus
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "record.py"
    script.write_text(EXEC_SCRIPT)
    pwned = [tmp_path / ("pwned%d" % i) for i in range(3)]
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "x": {"plugin": str(project_plugin("exec")), "max_attempts": 2,
              "backoff": 0.1,
              "config": {"argv": ["/usr/bin/python3", str(script),
                                  str(out), "{msg_id}", "--topic={topic}",
                                  "{signer}"],
                         "timeout": 5, "drop_exit_codes": [3]}}}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    seen = lambda: exec_calls(out)      # noqa: E731
    hub_sync(pub.send_multipart, probes, seen, hub)
    base = hub.idle()
    n0 = len(exec_calls(out))

    nasty = "it's \"quoted\" $(touch %s) `touch %s` ; rm -rf / | & > < \\" \
        % (pwned[0], pwned[1])
    msgs = {
        "ok": signed("exec.ok", {"exit": 0}),
        "retry": signed("exec.retry", {"exit": 75}),
        "drop": signed("exec.drop", {"exit": 3}),
        "other": signed("exec.other", {"exit": 9}),
        "quote": signed("exec.quote", {"text": nasty, "exit": 0}),
        "timeout": signed("exec.timeout", {"sleep": 30}),
    }
    # dropped unrun: a msg_id outside [A-Za-z0-9._:-], and one that would
    # be an option ("{msg_id}" comes before any "--" in argv)
    refused = {
        "shell": signed("exec.shell", {"exit": 0},
                        msg_id="2026-it's-$(touch %s)" % pwned[2]),
        "option": signed("exec.option", {"exit": 0}, msg_id="-rf"),
    }
    for env in list(msgs.values()) + list(refused.values()):
        pub.send_multipart(wire(env))
    tid = msgs["timeout"]["msg_id"]
    # each attempt of the timeout message takes exec's whole 5 s (long
    # enough for python3 to start on a loaded machine)
    wait_until(lambda: exec_calls(out).count(tid) == 2, 40,
               "two attempts of the timeout message", hub)
    hub_mark(pub.send_multipart, probes, seen, hub, timeout=8)

    calls = exec_calls(out)
    for k, n in (("ok", 1), ("retry", 2), ("drop", 1), ("other", 1),
                 ("quote", 1), ("timeout", 2)):
        assert calls.count(msgs[k]["msg_id"]) == n, k
    for k, env in msgs.items():
        argv, body, done = exec_files(out, env["msg_id"])
        assert argv == [str(out), env["msg_id"],
                        "--topic=" + env["topic"],
                        "alpha-app01.vectors.example.org"], k
        assert body == wire(env)[1], k          # the exact envelope bytes
        assert done == (k != "timeout"), k
    for k, env in refused.items():
        assert env["msg_id"] not in calls, k
    # nothing was run by a shell
    assert not any(p.exists() for p in pwned)

    m = hub.wait_metric(lambda m: m("fedmsg_consumer_queue_depth",
                                    consumer="x") == 0, 5, "idle")

    def d(name, **labels):
        return m(name, **labels) - base(name, **labels)
    # ok: "ok", "quote" and the end marker, plus any sync probe that ran
    # only after the base was taken (a probe is a run that exits 0)
    after = exec_calls(out)[n0:]
    oks = [i for i in after if i in (msgs["ok"]["msg_id"],
                                     msgs["quote"]["msg_id"])
           or i.startswith("probe-")]
    assert len(oks) >= 3, after
    assert d("fedmsg_consumer_ok_total", consumer="x") == len(oks), after
    assert d("fedmsg_consumer_retried_total", consumer="x") == 2
    assert d("fedmsg_consumer_dropped_total", consumer="x",
             reason="retries_exhausted") == 2
    assert d("fedmsg_consumer_dropped_total", consumer="x",
             reason="verdict") == 4
    err = hub.stderr()
    assert "timed out after 5s, killed (retry)" in err
    assert "exit status 75 (retry)" in err
    assert "exit status 3 (drop)" in err
    assert "a message's {msg_id} has characters outside" in err
    assert "message -rf: argv[3] '{msg_id}' would start with '-'" in err
    assert hub.stop() == 0


def archive_files(d):
    return sorted(d.glob("*.jsonl"))


def test_archive_rotates_by_size(tmp_path, hubs, bus):
    pub, src, mport = bus
    adir = tmp_path / "arch"
    msgs = [signed("archive.rot", {"n": i, "pad": "x" * 200})
            for i in range(10)]
    size = len(wire(msgs[0])[1]) + 1
    assert all(len(wire(e)[1]) + 1 == size for e in msgs)
    max_bytes = 3 * size + 10
    big = signed("archive.big", {"pad": "y" * (4 * size)})
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "arch": {"plugin": str(project_plugin("archive")),
                 "config": {"dir": str(adir), "prefix": "bus",
                            "rotate_daily": False,
                            "max_bytes": max_bytes}}}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()

    def ordered():
        def num(p):
            parts = p.name.split(".")
            return int(parts[1]) if len(parts) == 3 else 0
        return sorted(adir.glob("bus*.jsonl"), key=num)

    def ids():          # complete lines only: the hub may be writing
        return archive_ids(adir)
    hub_sync(pub.send_multipart, probes, ids, hub)
    first = len(ordered())
    for env in msgs[:5] + [big] + msgs[5:]:
        pub.send_multipart(wire(env))
    hub_mark(pub.send_multipart, probes, ids, hub)

    files = ordered()
    names = [p.name for p in files]
    assert names[0] == "bus.jsonl"
    assert names[1:] == ["bus.%d.jsonl" % i for i in range(1, len(names))]
    lines = [line for p in files for line in p.read_bytes().splitlines()]
    body = [line for line in lines if not Probes.is_probe(line)]
    assert body == [wire(e)[1] for e in msgs[:5] + [big] + msgs[5:]]
    for p in files:
        data = p.read_bytes()
        assert data.endswith(b"\n")
        if big["msg_id"].encode() in data:
            assert data == wire(big)[1] + b"\n"   # a file of its own
        else:
            assert len(data) <= max_bytes, p.name
    assert len(files) - first >= 10 // 3 + 1
    # a rotated file is full: the next line would not have fitted
    for a, b in zip(files, files[1:]):
        if big["msg_id"].encode() in a.read_bytes() + b.read_bytes():
            continue
        nxt = b.read_bytes().split(b"\n")[0]
        assert len(a.read_bytes()) + len(nxt) + 1 > max_bytes
    assert hub.stop() == 0


def test_archive_daily_file_name(tmp_path, hubs, bus):
    pub, src, mport = bus
    adir = tmp_path / "arch"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "arch": {"plugin": str(project_plugin("archive")),
                 "config": {"dir": str(adir)}}}))
    days = {time.strftime("%Y-%m-%d", time.gmtime())}
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()

    def ids():          # complete lines only: the hub may be writing
        return archive_ids(adir)
    hub_sync(pub.send_multipart, probes, ids, hub)
    days.add(time.strftime("%Y-%m-%d", time.gmtime()))
    names = {p.name for p in adir.glob("*.jsonl")}
    assert names and names <= {"fedmsg-%s.jsonl" % d for d in days}
    assert oct(os.stat(next(adir.glob("*.jsonl"))).st_mode & 0o777) == \
        "0o640"
    assert hub.stop() == 0


def test_archive_reload_moves_to_new_dir(tmp_path, hubs, bus):
    """SIGHUP with a new "dir": archive reopens there (its reload())."""
    import signal
    pub, src, mport = bus
    a, b = tmp_path / "a", tmp_path / "b"

    def config(d):
        return hub_config(src, mport, {
            "arch": {"plugin": str(project_plugin("archive")),
                     "config": {"dir": str(d), "rotate_daily": False}}})
    cfgpath = write_config(tmp_path, config(a))
    hub = hubs(cfgpath, metrics_port=mport).ready()
    probes = HubProbes()

    hub_sync(pub.send_multipart, probes, lambda: archive_ids(a), hub)
    hub.idle()
    write_config(tmp_path, config(b))
    hub.proc.send_signal(signal.SIGHUP)
    hub.wait_stderr("appending to %s/fedmsg.jsonl" % b, 5)
    env = signed("archive.after", {"n": 1})
    pub.send_multipart(wire(env))
    hub_mark(pub.send_multipart, probes, lambda: archive_ids(b), hub)
    assert env["msg_id"] in archive_ids(b)
    assert env["msg_id"] not in archive_ids(a)
    assert hub.stop() == 0


def git_receive(repo, namespace="rpms", branch="rawhide", **extra):
    """A dist-git git.receive envelope as the legacy hook published it
    (spec publishers-consumers.md 1.2), signed."""
    commit = {"name": "Packager", "email": "p@example.org",
              "username": "packager", "agent": "packager",
              "summary": "Rebuild", "message": "Rebuild\n",
              "stats": {"files": {"x.spec": {"additions": 1,
                                             "deletions": 0, "lines": 1}},
                        "total": {"additions": 1, "deletions": 0,
                                  "lines": 1, "files": 1}},
              "rev": hashlib.sha1(str(repo).encode()).hexdigest(),
              "path": "/srv/git/repositories/%s/%s.git" % (namespace, repo),
              "repo": repo, "namespace": namespace, "branch": branch,
              "seen": False}
    commit.update(extra)
    if repo is None:
        del commit["repo"]
    return signed("git.receive", {"commit": commit})


def test_exec_trigger_on_fields(tmp_path, hubs, bus):
    """A taskotron-style trigger is one entry: the hub's "match" picks
    pushes to rpms/* on rawhide, exec's {/json/pointer} placeholders pass
    the repository and the commit to the program."""
    pub, src, mport = bus
    out, sync_out = tmp_path / "out", tmp_path / "sync"
    out.mkdir()
    sync_out.mkdir()
    script = tmp_path / "record.py"
    script.write_text(EXEC_SCRIPT)
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "trigger": {
            "plugin": str(project_plugin("exec")),
            "topics": ["org.fedoraproject.dev.git.receive"],
            "match": {"/msg/commit/namespace": "rpms",
                      "/msg/commit/branch": "rawhide"},
            "config": {"argv": ["/usr/bin/python3", str(script), str(out),
                                "{msg_id}",
                                "{/msg/commit/namespace}/{/msg/commit/repo}",
                                "{/msg/commit/rev}",
                                "{/msg/commit/stats/total/lines}"]}},
        # sees everything: beats the slow joiner
        "sync": {"plugin": str(project_plugin("exec")),
                 "config": {"argv": ["/usr/bin/python3", str(script),
                                     str(sync_out), "{msg_id}"]}}}))
    hub = hubs(cfg, metrics_port=mport).ready()
    hub_sync(pub.send_multipart, HubProbes(),
             lambda: exec_calls(sync_out), hub)

    runs = git_receive("bash")
    skipped = {
        "branch": git_receive("bash", branch="f40"),
        "namespace": git_receive("bash", namespace="modules"),
        "not git": signed("buildsys.tag", {"commit": {
            "namespace": "rpms", "branch": "rawhide", "repo": "x"}}),
    }
    no_repo = git_receive(None)         # matches; no value for {.../repo}
    last = git_receive("tar")           # matches: the end marker
    for env in [runs] + list(skipped.values()) + [no_repo, last]:
        pub.send_multipart(wire(env))
    # the trigger's queue is ordered: once "last" ran, all was decided
    wait_until(lambda: last["msg_id"] in exec_calls(out), 10,
               "the trigger for the last push", hub)

    assert exec_calls(out) == [runs["msg_id"], last["msg_id"]]
    argv, body, _ = exec_files(out, runs["msg_id"])
    assert argv == [str(out), runs["msg_id"], "rpms/bash",
                    runs["msg"]["commit"]["rev"], "1"]
    assert body == wire(runs)[1]
    assert exec_files(out, last["msg_id"])[0][2] == "rpms/tar"
    err = hub.stderr()
    assert ("message %s: placeholder {/msg/commit/repo} is absent "
            "(skipped: drop)" % no_repo["msg_id"]) in err
    assert hub.stop() == 0
