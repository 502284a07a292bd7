"""The real Python peers (../shared/peers, or $FM_PEERS) in the tests.

fedmsg 1.1.7 itself judges and makes what fedmsg-c must interoperate
with: fedmsg.crypto.validate/sign as the oracle, fedmsg.publish as a
publisher, the fedmsg-tail command as a validating subscriber.  Nothing
is copied from the peers: they run in subprocesses with PYTHONPATH
pointing into the peers directory (never imported here: fedmsg patches
things on import), through tests/peers/fedmsg_peer.py.

A clone without ../shared has no peers: every test that needs one skips
with one line starting with SKIP_PREFIX.  CI (CI=true) always has them,
so there such a skip, or a missing peers directory, fails the run
(pytest_runtest_logreport / pytest_sessionfinish below, imported by
conftest.py).
"""

import atexit
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from process_output import complete_lines

REPO = Path(__file__).resolve().parents[2]
PEERS = Path(os.environ.get("FM_PEERS") or REPO.parent / "shared" / "peers")
FEDMSG_SRC = PEERS / "fedmsg"
PEER_SCRIPT = REPO / "tests" / "peers" / "fedmsg_peer.py"
PYTHON = sys.executable or "/usr/bin/python3"
SKIP_PREFIX = "peer test skipped:"
ORACLE_TIMEOUT = 60


def fedmsg_present():
    return (FEDMSG_SRC / "fedmsg" / "crypto" / "x509_ng.py").is_file()


def need_fedmsg():
    """Skip the calling test, with one clear line, without real fedmsg."""
    if not fedmsg_present():
        pytest.skip("%s real fedmsg not found in %s (a clone without "
                    "../shared/peers; set FM_PEERS to run it)"
                    % (SKIP_PREFIX, FEDMSG_SRC))


FEDORA_MESSAGING_SRC = PEERS / "fedora-messaging"


def need_fedora_messaging():
    """Skip the calling test, with one clear line, without the real
    fedora-messaging (library and CLI)."""
    if not (FEDORA_MESSAGING_SRC / "fedora_messaging" / "api.py").is_file():
        pytest.skip("%s real fedora-messaging not found in %s (a clone "
                    "without ../shared/peers; set FM_PEERS to run it)"
                    % (SKIP_PREFIX, FEDORA_MESSAGING_SRC))


def fedora_messaging_env(conf, *extra_paths):
    """Environment of a real fedora-messaging process: its source (and
    extra_paths, e.g. a callback's folder) on PYTHONPATH, its TOML config
    in FEDORA_MESSAGING_CONF."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(
        [str(FEDORA_MESSAGING_SRC)] + [str(p) for p in extra_paths])
    e["FEDORA_MESSAGING_CONF"] = str(conf)
    e["PYTHONUNBUFFERED"] = "1"
    return e


def peer_env(home):
    """Environment of a real fedmsg process: its source on PYTHONPATH and
    HOME set to `home`, so no ~/.fedmsg.d of the machine leaks in."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(FEDMSG_SRC)
    e["HOME"] = str(home)
    e["PYTHONUNBUFFERED"] = "1"
    e.pop("FEDMSG_CONFIG", None)
    return e


def py_literal(obj):
    """A JSON-compatible object as Python source (for fedmsg.d/*.py)."""
    return repr(json.loads(json.dumps(obj)))


def write_site(directory, cfg, stem="fedmsg"):
    """A config directory DIR/fedmsg.d/ holding cfg twice: STEM.py, which
    real fedmsg reads (from its working directory's fedmsg.d/), and
    STEM.json, which fedmsg-c reads (FEDMSG_CONFIG=DIR/fedmsg.d).  Returns
    the fedmsg.d path.  Call again with another stem to split a config
    over several files (both sides merge them in name order)."""
    d = Path(directory) / "fedmsg.d"
    d.mkdir(parents=True, exist_ok=True)
    (d / (stem + ".py")).write_text("config = %s\n" % py_literal(cfg))
    (d / (stem + ".json")).write_text(json.dumps(cfg, indent=1) + "\n")
    return d


# ---------------------------------------------------------------------------
# The oracle: one long-lived real-fedmsg process answering batches, so a
# test pays fedmsg's import once per session, not per message.
# ---------------------------------------------------------------------------

class _Oracle:
    def __init__(self):
        self.proc = None
        self.home = None

    def _start(self):
        import tempfile
        self.home = tempfile.mkdtemp(prefix="fm-fedmsg-oracle-")
        self.err_path = Path(self.home) / "stderr"
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            [PYTHON, str(PEER_SCRIPT), "oracle"], cwd=self.home,
            env=peer_env(self.home), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.err)
        atexit.register(self.close)

    def ask(self, req):
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            pytest.fail("the real fedmsg oracle died: %s" % self.stderr(),
                        pytrace=False)
        return json.loads(line)["results"]

    def stderr(self):
        try:
            return self.err_path.read_text()[-4000:]
        except OSError:
            return ""

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if self.home:
            self.err.close()
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None


_ORACLE = _Oracle()


def _str_paths(cfg):
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.items()}


def fedmsg_validate(messages, **config):
    """fedmsg.crypto.validate(m, **config) for each message: True, False,
    or {"raised": "..."} where fedmsg raised instead of answering."""
    need_fedmsg()
    return _ORACLE.ask({"op": "validate", "config": _str_paths(config),
                        "messages": list(messages)})


def fedmsg_validate_signed_by(messages, signer, **config):
    need_fedmsg()
    return _ORACLE.ask({"op": "validate_signed_by", "signer": signer,
                        "config": _str_paths(config),
                        "messages": list(messages)})


def fedmsg_sign(messages, crt, key):
    """fedmsg.crypto.sign with the pair crt/key (fedmsg finds them as
    <ssldir>/<certname>.crt and .key, so they must share a stem)."""
    need_fedmsg()
    crt, key = Path(crt), Path(key)
    assert crt.parent == key.parent and crt.stem == key.stem, (crt, key)
    return _ORACLE.ask({"op": "sign", "config": {
        "ssldir": str(crt.parent), "certname": crt.stem},
        "messages": list(messages)})


def assert_signed_by(messages, signer, ca, crl=None):
    """The real fedmsg says each message is valid and signed by signer
    (fedmsg.crypto.validate_signed_by under the CA and, if given, CRL)."""
    got = fedmsg_validate_signed_by(messages, signer, ca_cert_location=ca,
                                    crl_location=crl)
    assert got == [True] * len(got), (
        "fedmsg.crypto.validate_signed_by(%r) said %r for %r\n%s" % (
            signer, got, [m.get("msg_id") for m in messages],
            _ORACLE.stderr()))


_DEFAULT_VERDICTS = {}


def vector_verdicts_by_default(vectors, ca, crl):
    """{name: fedmsg's verdict} for every vector under the default config
    (ca, crl, no routing policy), asked once per session."""
    key = (str(ca), str(crl))
    if key not in _DEFAULT_VERDICTS:
        res = fedmsg_validate([json.loads(r["wire_body"]) for r in vectors],
                              ca_cert_location=ca, crl_location=crl)
        _DEFAULT_VERDICTS[key] = {r["name"]: v is True
                                  for r, v in zip(vectors, res)}
    return _DEFAULT_VERDICTS[key]


class FedmsgPeer:
    """What the `fedmsg_peer` fixture gives a test: the oracle and the
    real fedmsg programs, every process stopped (by PID) at teardown."""

    validate = staticmethod(fedmsg_validate)
    validate_signed_by = staticmethod(fedmsg_validate_signed_by)
    sign = staticmethod(fedmsg_sign)
    write_site = staticmethod(write_site)

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.procs = []

    assert_signed_by = staticmethod(assert_signed_by)

    def _popen(self, argv, site, name):
        stem = "%s-%d" % (name, len(self.procs))
        out = open(self.workdir / (stem + ".out"), "wb")
        err = open(self.workdir / (stem + ".err"), "wb")
        p = PeerProcess(argv, site, out, err, name)
        self.procs.append(p)
        return p

    def publisher(self, site):
        """fedmsg.init(active=True, name="relay_inbound") with the config
        in site/fedmsg.d/*.py, ready to publish (FedmsgPublisher)."""
        p = FedmsgPublisher(self._popen(
            [PYTHON, str(PEER_SCRIPT), "publish"], site, "fedmsg-publish"))
        p.wait_ready()
        return p

    def tail(self, site, *args):
        """The real fedmsg-tail command, run in site (its fedmsg.d/)."""
        return self._popen(
            [PYTHON, "-c", "from fedmsg.commands.tail import tail; tail()"]
            + list(args), site, "fedmsg-tail-py")

    def close(self):
        for p in self.procs:
            p.stop()


class PeerProcess:
    def __init__(self, argv, site, out, err, name):
        self.name = name
        self.argv = argv
        self.out_path, self.err_path = Path(out.name), Path(err.name)
        self.proc = subprocess.Popen(argv, cwd=str(site),
                                     env=peer_env(site),
                                     stdin=subprocess.PIPE, stdout=out,
                                     stderr=err)
        out.close()
        err.close()
        self.read_pos = 0

    def stdout(self):
        return self.out_path.read_text(errors="replace")

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def running(self):
        return self.proc.poll() is None

    def describe(self):
        return "real fedmsg %s (pid %d, exit %s)\n--- stdout:\n%s\n" \
            "--- stderr:\n%s" % (self.name, self.proc.pid,
                                 self.proc.returncode, self.stdout()[-3000:],
                                 self.stderr()[-3000:])

    def wait_for(self, pred, timeout=10.0, what="condition"):
        deadline = time.monotonic() + timeout
        while not pred():
            if not self.running() and not pred():
                pytest.fail("%s exited while waiting for %s: %s" % (
                    self.name, what, self.describe()), pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail("timeout (%.1f s) waiting for %s: %s" % (
                    timeout, what, self.describe()), pytrace=False)
            time.sleep(0.02)

    def stop(self):
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


class FedmsgPublisher:
    """A real fedmsg publisher: publish() returns the envelope it sent."""

    def __init__(self, proc):
        self.p = proc
        self.lines_read = 0

    def _lines(self):
        writing = self.p.running()
        data = self.p.out_path.read_bytes()
        return [ln for ln in complete_lines(data, writing) if ln]

    def wait_ready(self):
        self.p.wait_for(lambda: len(self._lines()) >= 1, 20,
                        "fedmsg.init() in the publisher")
        self.lines_read = 1

    def publish(self, topic, msg, modname="peertest", certname=None):
        req = {"topic": topic, "modname": modname, "msg": msg}
        if certname:
            req["certname"] = certname
        self.p.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.p.proc.stdin.flush()
        want = self.lines_read + 1
        self.p.wait_for(lambda: len(self._lines()) >= want, 10,
                        "fedmsg.publish()")
        self.lines_read = want
        return json.loads(self._lines()[want - 1])


@pytest.fixture
def fedmsg_peer(tmp_path):
    """The real fedmsg (skips with one line when it is absent)."""
    need_fedmsg()
    peer = FedmsgPeer(tmp_path)
    yield peer
    peer.close()


# ---------------------------------------------------------------------------
# CI must not skip peer tests: conftest.py imports these two hooks.
# ---------------------------------------------------------------------------

_PEER_SKIPS = []


def _in_ci():
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def pytest_runtest_logreport(report):
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if reason.startswith("Skipped: "):
            reason = reason[len("Skipped: "):]
        if reason.startswith(SKIP_PREFIX):
            _PEER_SKIPS.append((report.nodeid, reason))


def pytest_sessionfinish(session, exitstatus):
    if _PEER_SKIPS:
        # one line, also without -rs
        sys.stderr.write("\n%s (%d tests)\n" % (_PEER_SKIPS[0][1],
                                                 len(_PEER_SKIPS)))
    if not _in_ci():
        return
    problems = []
    if not fedmsg_present():
        problems.append("the peers are missing (%s)" % PEERS)
    if _PEER_SKIPS:
        problems.append("%d peer test(s) skipped: %s" % (
            len(_PEER_SKIPS), ", ".join(n for n, _ in _PEER_SKIPS[:10])))
    if problems:
        sys.stderr.write("CI=true and %s: peer tests must run in CI\n"
                         % "; ".join(problems))
        session.exitstatus = 1


# ---- Koji's protonmsg hub plugin --------------------------------------------

KOJI_SRC = PEERS / "koji"
KOJI_DRIVER = REPO / "tests" / "peers" / "koji_protonmsg.py"


def need_koji():
    """Skip the calling test, with one clear line, without Koji's source
    (its protonmsg plugin)."""
    if not (KOJI_SRC / "plugins" / "hub" / "protonmsg.py").is_file():
        pytest.skip("%s Koji's protonmsg not found in %s (a clone without "
                    "../shared/peers; set FM_PEERS to run it)"
                    % (SKIP_PREFIX, KOJI_SRC))


def koji_protonmsg_send(workdir, url, topic_prefix, events, timeout=60):
    """Run Koji's real protonmsg plugin (tests/peers/koji_protonmsg.py)
    on events, a list of (prep function, callback name, kwargs): each is
    queued as Koji's hub would, then sent by send_queued_msgs("postCommit")
    over a real proton Container to url.  Returns the number queued;
    fails the test unless every queued message was sent."""
    workdir = Path(workdir)
    conf = workdir / "protonmsg.conf"
    conf.write_text("[broker]\nurls = %s\ntopic_prefix = %s\n"
                    "connect_timeout = 10\nsend_timeout = 30\n\n"
                    "[message]\nextra_limit = 0\n" % (url, topic_prefix))
    ev = workdir / "koji-events.json"
    ev.write_text(json.dumps([{"prep": p, "callback": c, "kws": k}
                              for p, c, k in events]))
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(
        [str(KOJI_SRC), str(KOJI_SRC / "plugins" / "hub")])
    r = subprocess.run([PYTHON, str(KOJI_DRIVER), str(conf), str(ev)],
                       env=e, capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        pytest.fail("Koji's protonmsg did not send everything (rc %d):\n%s"
                    "\n%s" % (r.returncode, r.stdout, r.stderr[-3000:]),
                    pytrace=False)
    return json.loads(r.stdout.strip().splitlines()[-1])["queued"]
