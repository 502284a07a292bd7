"""fedmsg-git-hook on a real bare repository with real `git push`es,
Fedora's own hook (fedora-messaging-git-hook, tests/peers/git_hook_peer.py)
installed beside it on the same repository: every git.receive body
fedmsg-git-hook sends through a real fedmsg-relay must equal, field by
field, the body Fedora's hook builds for the same push.

Where the two differ on purpose (README, "fedmsg-git-hook"): a pushed tag
publishes nothing here (Fedora's hook publishes the tag's whole history
with the tag's name as the branch).
"""

import fcntl
import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from conftest import (HOST, REPO, Probes, Sub, assert_no_sanitizer,
                      bus_config, free_ports, start_relay, tcp, tool,
                      write_config, zmq_module, zsocket)
from peers import PEERS, SKIP_PREFIX, assert_signed_by

HOOK_PEER = REPO / "tests" / "peers" / "git_hook_peer.py"
FM_GIT_HOOK = PEERS / "fedora-messaging-git-hook"
URL_TEMPLATE = ("https://src.example.org/{repo_fullname}/c/{rev}"
                "?branch={branch}&ns={namespace}")
TOPIC = "org.fedoraproject.dev.git.receive"


def need_fedora_hook():
    if not (FM_GIT_HOOK / "fedora_messaging_git_hook" / "hook.py").is_file():
        pytest.skip("%s Fedora's git hook not found in %s" % (
            SKIP_PREFIX, FM_GIT_HOOK))


# Fedora's hook servers of this test (Site), stopped after it by PID.
_SERVERS = []


@pytest.fixture(autouse=True)
def stop_fedora_hook_servers():
    """Autouse (import it with Site): the servers end with the test."""
    yield
    while _SERVERS:
        p = _SERVERS.pop()
        p.stdin.close()             # it exits on EOF
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def git(cwd, *args, env=None, check=True):
    e = dict(os.environ, GIT_AUTHOR_NAME="Ann Author",
             GIT_AUTHOR_EMAIL="ann@example.org",
             GIT_COMMITTER_NAME="Cy Committer",
             GIT_COMMITTER_EMAIL="cy@example.org")
    e.update(env or {})
    p = subprocess.run(["git"] + list(args), cwd=str(cwd), env=e,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if check:
        assert p.returncode == 0, "git %s: %s" % (args, p.stderr.decode())
    return p


class Site:
    """A bare repository ns/pkg.git whose post-receive runs both hooks,
    a work clone, a relay and a SUB on its outbound side."""

    def __init__(self, tmp, daemons, zctx, dev_pki, relay=True, **keys):
        self.tmp = tmp
        self.daemons, self.zctx = daemons, zctx
        self.p_in, self.p_out = free_ports(2)
        conf = bus_config(
            relay_inbound=tcp(self.p_in),
            endpoints={"relay_outbound": [tcp(self.p_out)]},
            sign_messages=True, ssldir=str(dev_pki),
            certnames={"scm.%s" % HOST: "shell-localhost"})
        conf["git_hook.url_template"] = URL_TEMPLATE
        conf["git_hook.with_namespace"] = True
        # with a relay the hook stops waiting once it has taken them all,
        # so a long timeout costs nothing and a loaded machine may need it;
        # without one, tests wait for it to expire
        conf["git_hook.timeout"] = 10 if relay else 2
        conf.update(("git_hook." + k, v) for k, v in keys.items())
        self.cfg = write_config(tmp, conf)
        self.bare = tmp / "ns" / "pkg.git"
        self.bare.parent.mkdir()
        git(tmp, "init", "-q", "--bare", str(self.bare))
        self.fedora_out = tmp / "fedora.jsonl"
        # Fedora's hook: one process for all pushes (git_hook_peer.py
        # --serve), one process() call per push, as one run per push
        req, resp = tmp / "fedora-req", tmp / "fedora-resp"
        os.mkfifo(str(req))
        os.mkfifo(str(resp))
        with open(tmp / "fedora-hook.err", "wb") as err:
            _SERVERS.append(subprocess.Popen(
                ["/usr/bin/python3", str(HOOK_PEER), "--serve", str(req),
                 str(resp), str(self.fedora_out), URL_TEMPLATE, "true"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
                env=dict(os.environ, PYTHONPATH="%s:%s" % (
                    PEERS / "fedora-messaging", FM_GIT_HOOK))))
        hook = self.bare / "hooks" / "post-receive"
        hook.write_text(
            "#!/bin/sh\n"
            "in=$(cat)\n"
            "printf '%%s\\n' \"$in\" | %s --config %s\n"
            "{ pwd; printf '%%s\\n' \"$in\"; } >%s\n"
            "read -r status <%s\n"
            "[ \"$status\" = ok ] || echo \"Fedora's hook: $status\" >&2\n" % (
                shlex.quote(tool("fedmsg-git-hook")), shlex.quote(str(self.cfg)),
                shlex.quote(str(req)), shlex.quote(str(resp))))
        hook.chmod(0o755)
        self.work = tmp / "work"
        git(tmp, "clone", "-q", str(self.bare), str(self.work))
        self.sub = None
        if relay:
            self.start_relay()

    def start_relay(self):
        self.relay = start_relay(self.daemons, self.cfg)
        pub = zsocket(self.zctx, zmq_module().PUB, connect=tcp(self.p_in))
        self.sub = Sub(self.zctx, tcp(self.p_out))
        self.sub.sync(pub.send_multipart, Probes())
        pub.close()

    def commit(self, files, message, **env):
        for name, data in files.items():
            p = self.work / name
            if data is None:
                git(self.work, "rm", "-q", name)
                continue
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data if isinstance(data, bytes) else data.encode())
            git(self.work, "add", name)
        git(self.work, "commit", "-q", "--allow-empty", "-m", message,
            env=env)
        return git(self.work, "rev-parse", "HEAD").stdout.decode().strip()

    def push(self, *args, fedora_fails=None, ours_want=None):
        """git push; returns (our bodies, Fedora's bodies) of this push.
        fedora_fails: a text Fedora's hook's failure must show (it then
        publishes nothing); ours_want: how many we publish (else as many
        as Fedora's hook)."""
        if self.fedora_out.exists():
            self.fedora_out.unlink()
        before = len(self.sub.msgs) if self.sub else 0
        p = git(self.work, "push", "-q", "origin", *args)
        err = p.stderr.decode("utf-8", "replace")
        assert_no_sanitizer(err, "fedmsg-git-hook")
        if fedora_fails:
            assert "Fedora's hook:" in err and fedora_fails in err, err
        else:
            assert "Fedora's hook:" not in err, err
        theirs = []
        if self.fedora_out.exists():
            theirs = [json.loads(line) for line in
                      self.fedora_out.read_text().splitlines()]
        ours = []
        if self.sub:
            self.sub.wait_count(before + (len(theirs) if ours_want is None
                                          else ours_want), timeout=10)
            ours = [json.loads(b) for _, b in self.sub.msgs[before:]]
        return ours, theirs, err


@pytest.fixture
def site(tmp_path, daemons, zctx, dev_pki):
    need_fedora_hook()
    return Site(tmp_path, daemons, zctx, dev_pki)


def same(ours, theirs):
    """Every field of every message equal, in the same order."""
    assert [e["topic"] for e in ours] == [TOPIC] * len(ours)
    got = [e["msg"] for e in ours]
    for g, t in zip(got, theirs):
        assert g == t, "rev %s differs" % t["commit"]["rev"]
    assert len(got) == len(theirs)


def test_pushes_match_fedora_hook(site, dev_pki):
    # A new branch: the root commit, a text file and a binary file.
    site.commit({"README": "hello\nworld\n"}, "first")
    site.commit({"pkg.spec": "Name: pkg\nVersion: 1\n",
                 "logo.png": bytes(range(256)) * 4}, "add spec and logo\n\n"
                "A longer body,\nover two lines.\n")
    ours, theirs, _ = site.push("master")
    assert len(theirs) == 2
    same(ours, theirs)
    c = ours[1]["msg"]["commit"]
    assert c["stats"]["files"]["logo.png"] == {
        "additions": 0, "deletions": 0, "lines": 0}
    assert c["namespace"] == "ns" and c["repo"] == "pkg"
    assert c["url"].startswith("https://src.example.org/ns/pkg/c/")
    assert_signed_by(ours, "shell-localhost", ca=dev_pki / "ca.crt",
                     crl=dev_pki / "crl.pem")

    # Fast-forward: a rename, a deletion, an edit, another time zone.
    site.commit({"pkg.spec": "Name: pkg\nVersion: 2\n"}, "bump",
                GIT_AUTHOR_DATE="2024-03-01T10:00:00+05:30")
    git(site.work, "mv", "README", "README.md")
    site.commit({"logo.png": None}, "rename README, drop logo")
    ours, theirs, _ = site.push("master")
    assert len(theirs) == 2
    same(ours, theirs)

    # A new branch and master in one push: "seen" on the shared commits.
    git(site.work, "checkout", "-q", "-b", "feature")
    site.commit({"feature.txt": "f\n"}, "feature work")
    git(site.work, "checkout", "-q", "master")
    site.commit({"pkg.spec": "Name: pkg\nVersion: 3\n"}, "master work")
    git(site.work, "branch", "release")
    ours, theirs, _ = site.push("master", "feature", "release")
    same(ours, theirs)
    assert any(m["msg"]["commit"]["seen"] for m in ours)

    # A merge commit: diffs against both parents.
    git(site.work, "merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    ours, theirs, _ = site.push("master")
    same(ours, theirs)
    assert len(ours) == 2

    # A force push (Fedora's hook lists NEW...OLD: the dropped commit too).
    git(site.work, "reset", "-q", "--hard", "HEAD~1")
    site.commit({"other.txt": "x\n"}, "rewritten")
    ours, theirs, _ = site.push("--force", "master")
    same(ours, theirs)

    # Deleting a branch publishes nothing, in both hooks.
    ours, theirs, _ = site.push(":feature")
    assert ours == [] and theirs == []


def test_tag_publishes_nothing(site):
    site.commit({"a": "a\n"}, "one")
    site.push("master")
    git(site.work, "tag", "-a", "-m", "v1", "v1")
    ours, theirs, err = site.push("v1")
    assert ours == []
    assert "refs/tags/v1 is not a branch: nothing to publish" in err
    assert len(theirs) == 1      # Fedora's hook: the history, branch "v1"


def test_invalid_utf8_message_and_author(site):
    site.commit({"a": "a\n"}, "one")
    tree = git(site.work, "rev-parse", "HEAD^{tree}").stdout.decode().strip()
    head = git(site.work, "rev-parse", "HEAD").stdout.decode().strip()
    raw = (b"tree %s\nparent %s\nauthor B\xff <b@x> 1700000000 -0430\n"
           b"committer C <c@x> 1700000000 -0430\n\nbad \xff\xe2\x82 msg "
           b"\xed\xa0\x80\n\nbody \xc3\n" % (tree.encode(), head.encode()))
    p = subprocess.run(["git", "hash-object", "-t", "commit", "-w",
                        "--stdin"], cwd=str(site.work), input=raw,
                       stdout=subprocess.PIPE, check=True)
    git(site.work, "reset", "-q", "--hard", p.stdout.decode().strip())
    site.commit({"latin1.txt": b"caf\xe9\n"}, "text that is not UTF-8")
    ours, theirs, _ = site.push("master")
    assert len(theirs) == 3
    same(ours, theirs)
    assert "\ufffd" in ours[1]["msg"]["commit"]["message"]


def test_commit_encoding_header(site):
    """A commit made with i18n.commitEncoding ISO-8859-1 carries an
    "encoding" header and Latin-1 bytes: both hooks decode the author and
    the message with it (pygit2 does), not as UTF-8 with U+FFFD."""
    git(site.work, "config", "i18n.commitEncoding", "ISO-8859-1")
    site.commit({"a": "a\n"}, "Gr\xfc\xdfe aus K\xf6ln\n\nSch\xf6n."
                .encode("latin-1"),
                GIT_AUTHOR_NAME="J\xfcrgen M\xfcller".encode("latin-1"))
    ours, theirs, _ = site.push("master")
    same(ours, theirs)
    c = ours[0]["msg"]["commit"]
    assert (c["name"], c["summary"]) == ("J\xfcrgen M\xfcller",
                                         "Gr\xfc\xdfe aus K\xf6ln"), c


def test_file_name_not_utf8(site):
    """A file name that is not UTF-8 (Fedora's hook stops with a
    UnicodeDecodeError on it): the commit is still published, the name in
    stats with U+FFFD for the odd byte."""
    site.commit({"a": "a\n"}, "one")
    site.push("master")
    (site.work / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"x\n")
    git(site.work, "add", "-A")
    git(site.work, "commit", "-q", "-m", "a Latin-1 file name")
    ours, theirs, err = site.push("master", ours_want=1,
                                  fedora_fails="UnicodeDecodeError")
    assert len(ours) == 1 and theirs == [], err
    files = ours[0]["msg"]["commit"]["stats"]["files"]
    assert files == {"caf\ufffd.txt": {"additions": 1, "deletions": 0,
                                        "lines": 1}}, files


def test_relay_down_spools_then_flush_and_next_push(tmp_path, daemons, zctx,
                                                    dev_pki, run):
    need_fedora_hook()
    s = Site(tmp_path, daemons, zctx, dev_pki, relay=False)
    s.commit({"a": "1\n"}, "one")
    s.commit({"a": "2\n"}, "two")
    _, theirs, err = s.push("master")      # the push succeeds
    assert len(theirs) == 2
    assert "2 message(s) stay in the spool" in err, err
    s.commit({"a": "3\n"}, "three")
    _, theirs3, err = s.push("master")
    assert "3 message(s) stay in the spool" in err, err

    s.start_relay()
    r = run("fedmsg-git-hook", ["--config", str(s.cfg), "--flush"],
            env={"GIT_DIR": str(s.bare)})
    assert r.rc == 0, r
    got = [json.loads(b) for _, b in s.sub.wait_count(3)]
    assert [m["msg"] for m in got] == theirs + theirs3
    # Once delivered, never again; the next push sends only its own.
    s.commit({"a": "4\n"}, "four")
    ours, theirs4, _ = s.push("master")
    assert [m["msg"] for m in ours] == theirs4
    ids = [json.loads(b)["msg_id"] for _, b in s.sub.msgs]
    assert len(ids) == len(set(ids)) == 4


def test_spool_held_by_another_run_uses_a_side_spool(tmp_path, daemons,
                                                     zctx, dev_pki, run):
    """A push while another run holds the spool past this one's timeout
    (that run waits on a relay that is down, say) spools into a side
    spool inside it; the next run that holds the spool (here --flush)
    takes it over: with the relay down, nothing is lost, in order."""
    need_fedora_hook()
    s = Site(tmp_path, daemons, zctx, dev_pki, relay=False)
    s.commit({"a": "1\n"}, "one")
    _, theirs, err = s.push("master")
    assert "1 message(s) stay in the spool" in err, err
    spool = s.bare / "fedmsg-spool"
    held = os.open(str(spool), os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)            # the other run
    try:
        s.commit({"a": "2\n"}, "two")
        _, theirs2, err = s.push("master")
    finally:
        os.close(held)
    assert "using a side spool" in err, err
    assert "1 message(s) stay in the spool" in err, err
    assert [p.name[:5] for p in spool.iterdir() if p.is_dir()] == ["side-"]

    s.start_relay()
    r = run("fedmsg-git-hook", ["--config", str(s.cfg), "--flush"],
            env={"GIT_DIR": str(s.bare)})
    assert r.rc == 0, r
    assert "took over the messages of" in r.stderr, r
    got = [json.loads(b) for _, b in s.sub.wait_count(2)]
    assert [m["msg"] for m in got] == theirs + theirs2
    assert not [p for p in spool.iterdir() if p.is_dir()]


def test_caps_on_commits_and_patch(tmp_path, daemons, zctx, dev_pki):
    need_fedora_hook()
    s = Site(tmp_path, daemons, zctx, dev_pki, max_commits=2,
             max_patch_bytes=100)
    revs = [s.commit({"f%d" % i: "line\n" * 50}, "c%d" % i) for i in range(3)]
    ours, theirs, err = s.push("master")
    assert len(theirs) == 3
    assert "more than 2 new commits; publishing the newest 2" in err, err
    s.sub.wait_count(2)
    got = [m["msg"]["commit"] for m in ours]
    assert [c["rev"] for c in got] == revs[1:]     # the newest, oldest first
    full = theirs[2]["commit"]["patch"]
    cut = got[1]["patch"]
    head, note = cut.split("\n[fedmsg-git-hook: ")
    assert full.startswith(head) and len(head) <= 100, cut
    assert note == "patch cut at %d of %d bytes]\n" % (len(head), len(full))
    assert got[1]["stats"] == theirs[2]["commit"]["stats"]


def test_bad_input_never_fails(tmp_path, run, dev_pki):
    cfg = write_config(tmp_path, bus_config(
        relay_inbound=tcp(free_ports(1)[0]), **{"git_hook.timeout": 0.2}))
    # Outside a repository.
    r = run("fedmsg-git-hook", ["--config", str(cfg)],
            env={"GIT_DIR": str(tmp_path / "nowhere")},
            input=b"%s %s refs/heads/master\n" % (b"0" * 40, b"1" * 40))
    assert r.rc == 0, r
    assert "is not a git repository" in r.stderr, r
    # A commit that is not there, and garbage.
    bare = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    r = run("fedmsg-git-hook", ["--config", str(cfg)],
            env={"GIT_DIR": str(bare)},
            input=b"%s %s refs/heads/master\nnonsense\n" % (
                b"0" * 40, b"1" * 40))
    assert r.rc == 0, r
    assert "is not a commit in this repository; skipped" in r.stderr, r
    assert "not \"<old> <new> <ref>\"" in r.stderr, r
