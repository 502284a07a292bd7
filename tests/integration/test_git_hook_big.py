"""fedmsg-git-hook on big pushes, commits made with `git fast-import`.

* 2 000 commits in one push, git_hook.max_commits 2000: all 2 000
  messages, oldest first, signed.  Fedora's hook (Python, pygit2) needs
  far more than this file's budget for 2 000 commits on a loaded 2-core
  machine (about 45 s of wall time measured, 5 s of CPU), so every 40th
  commit (50 of them) is compared with what Fedora's hook builds for it,
  field by field, in one run of Fedora's hook.  FM_GIT_HOOK_FULL=1 (`make
  soak` sets it) compares all 2 000, Fedora's hook run on the push's line.
* 10 000 commits in one push at the default cap (1000): the newest 1000,
  oldest first, each with the note that says so; the push succeeds.
"""

import json
import os
import shlex
import subprocess

import pytest

from peers import assert_signed_by
from test_git_hook import (FM_GIT_HOOK, HOOK_PEER, PEERS, URL_TEMPLATE,
                           Site, git, need_fedora_hook,
                           stop_fedora_hook_servers)  # noqa: F401 autouse
from conftest import tool


def fast_import(work, n, base=None):
    """n commits on master of the clone work (after base), each changing
    one of 50 small files; returns their revisions, oldest first."""
    t = 1700000000
    out = []
    for i in range(n):
        data = (b"line %d\n" % i) * 3
        msg = b"commit %d\n\nbody of %d\n" % (i, i)
        out += [b"commit refs/heads/master\n", b"mark :%d\n" % (i + 1),
                b"author Ann Author <ann@example.org> %d +0200\n" % (t + i),
                b"committer Cy Committer <cy@example.org> %d -0500\n"
                % (t + i),
                b"data %d\n%s\n" % (len(msg), msg)]
        if i:
            out.append(b"from :%d\n" % i)
        elif base:
            out.append(b"from %s\n" % base.encode())
        out.append(b"M 100644 inline f%d.txt\ndata %d\n%s\n"
                   % (i % 50, len(data), data))
    subprocess.run(["git", "fast-import", "--quiet"], input=b"".join(out),
                   cwd=str(work), check=True, timeout=120)
    return git(work, "rev-list", "--reverse", "master").stdout.decode(
        ).split()[-n:]


def only_our_hook(site):
    """The bare repository's post-receive runs fedmsg-git-hook alone."""
    hook = site.bare / "hooks" / "post-receive"
    hook.write_text("#!/bin/sh\nexec %s --config %s\n" % (
        shlex.quote(tool("fedmsg-git-hook")), shlex.quote(str(site.cfg))))


def fedora_hook_bodies(bare, lines):
    """Fedora's hook run once in bare on git's ref lines; its bodies."""
    out = bare.parent / "fedora-sample.jsonl"
    env = dict(os.environ, GIT_DIR=".", PYTHONPATH="%s:%s" % (
        PEERS / "fedora-messaging", FM_GIT_HOOK))
    subprocess.run(["/usr/bin/python3", str(HOOK_PEER), str(out),
                    URL_TEMPLATE, "true"], input="".join(lines).encode(),
                   cwd=str(bare), env=env, check=True, timeout=600,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return [json.loads(x) for x in out.read_text().splitlines()]


def test_2000_commit_push(tmp_path, daemons, zctx, dev_pki):
    need_fedora_hook()
    # timeout bounds the wait on the relay, after building 2 000 messages
    s = Site(tmp_path, daemons, zctx, dev_pki, max_commits=2000, timeout=5)
    only_our_hook(s)
    revs = fast_import(s.work, 2000)
    git(s.work, "push", "-q", "origin", "master")
    got = [json.loads(b) for _, b in s.sub.wait_count(2000, timeout=60)]
    assert len(got) == 2000
    assert [e["msg"]["commit"]["rev"] for e in got] == revs
    assert len({e["msg_id"] for e in got}) == 2000
    assert all("note" not in e["msg"] for e in got)
    assert_signed_by(got[::100], "shell-localhost", ca=dev_pki / "ca.crt",
                     crl=dev_pki / "crl.pem")
    if os.environ.get("FM_GIT_HOOK_FULL"):
        # make soak: Fedora's hook on the same push line, all 2 000
        sample = list(range(2000))
        lines = ["%s %s refs/heads/master\n" % ("0" * 40, revs[-1])]
    else:
        # Every 40th commit as Fedora's hook publishes it alone ("seen"
        # false in both: no commit is on two refs here).
        sample = list(range(0, 2000, 40))
        lines = ["%s %s refs/heads/master\n" % (
            revs[i - 1] if i else "0" * 40, revs[i]) for i in sample]
    theirs = fedora_hook_bodies(s.bare, lines)
    assert len(theirs) == len(sample)
    for i, t in zip(sample, theirs):
        assert got[i]["msg"] == t, "commit %d differs" % i


def test_10000_commit_push_capped(tmp_path, daemons, zctx, dev_pki):
    s = Site(tmp_path, daemons, zctx, dev_pki, timeout=20)
    only_our_hook(s)
    revs = fast_import(s.work, 10000)
    p = git(s.work, "push", "-q", "origin", "master")
    err = p.stderr.decode()
    assert "more than 1000 new commits; publishing the newest 1000" in err
    got = [json.loads(b) for _, b in s.sub.wait_count(1000, timeout=60)]
    assert [e["msg"]["commit"]["rev"] for e in got] == revs[-1000:]
    note = ("fedmsg-git-hook: more than 1000 new commits on master in this "
            "push; only the newest 1000 were published "
            "(git_hook.max_commits)")
    assert all(e["msg"]["note"] == note for e in got)
    # The cap holds per push: the next push publishes its own commits.
    more = fast_import(s.work, 3, base=revs[-1])
    git(s.work, "push", "-q", "origin", "master")
    got = [json.loads(b) for _, b in s.sub.wait_count(1003, timeout=30)]
    assert [e["msg"]["commit"]["rev"] for e in got[1000:]] == more
    assert all("note" not in e["msg"] for e in got[1000:])
