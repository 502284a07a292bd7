#!/usr/bin/python3
"""bench_git_hook.py: what fedmsg-git-hook adds to a `git push`.

  bench_git_hook.py [-r ROUNDS] BUILD_DIR

Commits made once with `git fast-import` (each changes one small file);
each round pushes them from a clone into a fresh bare repository:

  plain      no hook: the baseline, measured in the same run
  relay_up   100 commits, post-receive = BUILD_DIR/bin/fedmsg-git-hook,
             signing with the test vectors' alpha certificate, a
             fedmsg-relay listening (the hook returns once the relay took
             every message)
  relay_down 1 commit, relay_inbound on a port nobody listens on: the
             message goes to the spool and the hook waits git_hook.timeout
             (its default, 3 s) for a relay

The median wall time of ROUNDS pushes each.  Prints
  githook push100_plain_ms MS
  githook push100_relay_up_ms MS
  githook push100_relay_up_vs_plain RATIO
  githook push1_plain_ms MS
  githook push1_relay_down_ms MS
  githook push1_relay_down_vs_plain RATIO  (bounded by git_hook.timeout)
Exit 1: a run failed.
"""
import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
from conftest import HOST, free_ports, tcp, write_config  # noqa: E402

VECTOR_CERTS = REPO / "tests" / "data" / "vectors" / "certs"
ENV = dict(os.environ, GIT_AUTHOR_NAME="A", GIT_AUTHOR_EMAIL="a@x",
           GIT_COMMITTER_NAME="C", GIT_COMMITTER_EMAIL="c@x")


def git(cwd, *args, stdin=None):
    subprocess.run(["git"] + list(args), cwd=str(cwd), env=ENV, input=stdin,
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=300)


def make_source(path, n):
    """A repository whose master has n commits."""
    git(path.parent, "init", "-q", str(path))
    out = []
    for i in range(n):
        data = (b"line %d\n" % i) * 3
        out += [b"commit refs/heads/master\n", b"mark :%d\n" % (i + 1),
                b"committer C <c@x> %d +0000\n" % (1700000000 + i),
                b"data 11\ncommit %03d\n" % (i % 1000)]
        if i:
            out.append(b"from :%d\n" % i)
        out.append(b"M 100644 inline f%d.txt\ndata %d\n%s\n"
                   % (i % 20, len(data), data))
    git(path, "fast-import", "--quiet", stdin=b"".join(out))


def timed_push(tmp, source, hook):
    """Push source's master into a fresh bare repository with hook (a
    post-receive script text, or None); returns the wall time in ms."""
    bare = tmp / "bare.git"
    shutil.rmtree(bare, ignore_errors=True)
    git(tmp, "init", "-q", "--bare", str(bare))
    if hook:
        h = bare / "hooks" / "post-receive"
        h.write_text(hook)
        h.chmod(0o755)
    t0 = time.monotonic()
    git(source, "push", "-q", str(bare), "master")
    return (time.monotonic() - t0) * 1000


def median_push(tmp, source, hook, rounds):
    return statistics.median(timed_push(tmp, source, hook)
                             for _ in range(rounds))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-r", "--rounds", type=int, default=5)
    ap.add_argument("build")
    a = ap.parse_args()
    build = Path(a.build).resolve()
    hook_bin = build / "bin" / "fedmsg-git-hook"
    relay_bin = build / "bin" / "fedmsg-relay"
    tmp = Path(tempfile.mkdtemp(prefix="bench-githook-"))
    relay = None
    try:
        s100, s1 = tmp / "src100", tmp / "src1"
        make_source(s100, 100)
        make_source(s1, 1)
        p_in, p_out, p_dead = free_ports(3)
        base = {"topic_prefix": "org.fedoraproject", "environment": "dev",
                "post_init_sleep": 0, "validate_signatures": False,
                "sign_messages": True, "ssldir": str(VECTOR_CERTS),
                "certnames": {"scm.%s" % HOST:
                              "alpha-app01.vectors.example.org"},
                "relay_inbound": tcp(p_in),
                "endpoints": {"relay_outbound": [tcp(p_out)]}}
        up = write_config(tmp, base, "up.json")
        down = write_config(tmp, dict(base, relay_inbound=tcp(p_dead)),
                            "down.json")
        rlog = tmp / "relay.log"
        with open(rlog, "wb") as f:
            relay = subprocess.Popen([str(relay_bin), "--config", str(up)],
                                     stdout=subprocess.DEVNULL, stderr=f)
        deadline = time.monotonic() + 10
        while "outbound (PUB) bound on" not in rlog.read_text():
            if relay.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("bench_git_hook: fedmsg-relay did not "
                                 "start: " + rlog.read_text()[-2000:])
            time.sleep(0.05)

        def hook(cfg):
            # a spool per run: the bare repository's own (default)
            return "#!/bin/sh\nexec %s --config %s 2>>%s\n" % (
                shlex.quote(str(hook_bin)), shlex.quote(str(cfg)),
                shlex.quote(str(tmp / "hook.log")))

        p100 = median_push(tmp, s100, None, a.rounds)
        h100 = median_push(tmp, s100, hook(up), a.rounds)
        p1 = median_push(tmp, s1, None, a.rounds)
        h1 = median_push(tmp, s1, hook(down), a.rounds)
        log = (tmp / "hook.log").read_text()
        if log.count("100 message(s) sent") != a.rounds or \
                log.count("1 message(s) stay in the spool") != a.rounds:
            sys.stderr.write(log[-3000:])
            raise SystemExit("bench_git_hook: the hook did not publish "
                             "(or spool) every round")
        for name, v in (("push100_plain_ms", p100),
                        ("push100_relay_up_ms", h100)):
            print("githook %s %.0f" % (name, v))
        print("githook push100_relay_up_vs_plain %.2f" % (h100 / p100))
        print("githook push1_plain_ms %.0f" % p1)
        print("githook push1_relay_down_ms %.0f" % h1)
        print("githook push1_relay_down_vs_plain %.2f  (bounded by "
              "git_hook.timeout, 3 s)" % (h1 / p1))
    finally:
        if relay:
            relay.terminate()
            relay.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
