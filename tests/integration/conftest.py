"""Shared helpers for the fedmsg-c command-line integration tests.

The tools under test are found in $FM_BIN (a directory; default
<repo>/build/bin).  `make test` points it at the ASan+UBSan build, so every
run is also checked for sanitizer reports.

The test vectors in tests/data/vectors/ were produced by the real Python
fedmsg 1.1.7; see their README.md.
"""

import base64
import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

# The real Python peers (../shared/peers): the fixture and the hooks that
# keep CI from skipping their tests.
from peers import (fedmsg_peer, pytest_runtest_logreport,  # noqa: F401
                   pytest_sessionfinish)
import peers as _peers
from process_output import complete_lines

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
VECTORS_DIR = DATA / "vectors"
VECTOR_CERTS = VECTORS_DIR / "certs"
MKCERTS = REPO / "certs" / "mkcerts.sh"
FM_BIN = Path(os.environ.get("FM_BIN") or REPO / "build" / "bin")

TIMEOUT = 30

# FM_WRAP: a command line every daemon runs under, e.g. `make valgrind`'s
# "valgrind -q --error-exitcode=99 ...": with -q, any "==PID== ..." line
# but a warning is an error report, and fails the test like a sanitizer's.
FM_WRAP = shlex.split(os.environ.get("FM_WRAP", ""))

# valgrind's --error-exitcode, if FM_WRAP sets one: that exit fails a test
# even if the report went elsewhere than stderr.
VALGRIND_ERROR_RC = next((int(a.split("=", 1)[1]) for a in FM_WRAP
                          if a.startswith("--error-exitcode=")), None)
# Teardown waits this long after SIGTERM before SIGKILL (which loses the
# leak report made at exit, so it fails the test): valgrind's own exit,
# with its leak check, takes seconds.
STOP_TIMEOUT = 60 if FM_WRAP else 10
# Deadlines (never assertions on speed) stretch under FM_WRAP: valgrind
# runs the programs some 20x slower.
SLOW = 4 if FM_WRAP else 1
# The per-test time limits (hang guards) double when pytest-xdist runs
# files side by side on the same cores (`make integration`, TEST_JOBS).
SHARED = 2 if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1) > 1 \
    else 1

SANITIZER_RE = re.compile(
    r"ERROR: (Address|Leak|Memory|Thread|UndefinedBehavior)Sanitizer"
    r"|runtime error:"
    r"|SUMMARY: \w+Sanitizer"
    r"|^==\d+== (?!Warning)\S", re.M)


def load_vectors():
    with open(VECTORS_DIR / "signed.jsonl", encoding="ascii") as f:
        return [json.loads(line) for line in f if line.strip()]


VECTORS = load_vectors()
VECTORS_BY_NAME = {r["name"]: r for r in VECTORS}


def canonical(obj):
    """fedmsg.encoding.dumps: this IS fedmsg's canonical encoder."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def unsigned(obj):
    """The envelope without the top-level signature/certificate."""
    return {k: v for k, v in obj.items()
            if k not in ("signature", "certificate")}


def wrap76(raw):
    """base64 wrapped at 76 columns with a final newline (fedmsg/M2Crypto)."""
    b = base64.b64encode(raw).decode("ascii")
    return "".join(b[i:i + 76] + "\n" for i in range(0, len(b), 76))


def vector_path(rel):
    """A vector record's file reference ("certs/ca.crt") as a path."""
    return VECTORS_DIR / rel


def tool(name):
    path = FM_BIN / name
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            "%s not found or not executable in FM_BIN=%s; build the tools "
            "first (`make` / `make asan-tools`) or set FM_BIN to the "
            "directory that holds them" % (name, FM_BIN), pytrace=False)
    return str(path)


def assert_no_sanitizer(text, what):
    m = SANITIZER_RE.search(text)
    if m:
        pytest.fail("sanitizer report from %s:\n%s" % (what, text[-6000:]),
                    pytrace=False)


class Result:
    def __init__(self, args, rc, out, err, elapsed):
        self.args = args
        self.rc = rc
        self.out = out          # bytes
        self.err = err          # bytes
        self.elapsed = elapsed

    @property
    def stdout(self):
        return self.out.decode("utf-8", "replace")

    @property
    def stderr(self):
        return self.err.decode("utf-8", "replace")

    def __repr__(self):
        return "<%s exit %s\n--- stdout:\n%s\n--- stderr:\n%s>" % (
            " ".join(self.args), self.rc, self.stdout[-3000:],
            self.stderr[-3000:])


@pytest.fixture(scope="session")
def empty_config(tmp_path_factory):
    """A config file with nothing in it, so that no system config
    (/etc/fedmsg.d) leaks into the tests through the default path."""
    p = tmp_path_factory.mktemp("config") / "empty.json"
    p.write_text("{}\n")
    return p


@pytest.fixture
def run(empty_config):
    """run(tool_name, args, input=bytes|str) -> Result.

    Fails the test on a hang (TIMEOUT s) or on any sanitizer report."""

    def _run(name, args=(), input=b"", timeout=TIMEOUT, env=None):
        exe = tool(name)
        if isinstance(input, str):
            input = input.encode("utf-8")
        e = dict(os.environ)
        e["FEDMSG_CONFIG"] = str(empty_config)
        e.setdefault("ASAN_OPTIONS", "")
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        if env:
            e.update(env)
        argv = FM_WRAP + [exe] + [str(a) for a in args]
        timeout *= SLOW
        t0 = time.monotonic()
        try:
            p = subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=timeout,
                               env=e)
        except subprocess.TimeoutExpired:
            pytest.fail("%s did not finish within %s s (hang?)"
                        % (" ".join(argv), timeout), pytrace=False)
        r = Result(argv, p.returncode, p.stdout, p.stderr,
                   time.monotonic() - t0)
        assert_no_sanitizer(r.stderr, "%s (exit %s)" % (name, r.rc))
        assert r.rc >= 0, "%s killed by signal %d: %r" % (name, -r.rc, r)
        return r

    return _run


def verdicts(stdout):
    """Parse fedmsg-verify output into [(verdict, msg_id, reason)]."""
    res = []
    for line in stdout.splitlines():
        m = re.fullmatch(r"valid (\S+)", line)
        if m:
            res.append(("valid", m.group(1), ""))
            continue
        m = re.fullmatch(r"invalid (\S+): (.+)", line)
        assert m, "unexpected fedmsg-verify output line: %r" % line
        res.append(("invalid", m.group(1), m.group(2)))
    return res


def one_verdict(r):
    """The single verdict of a one-message fedmsg-verify run."""
    v = verdicts(r.stdout)
    assert len(v) == 1, "expected one verdict line: %r" % r
    verdict, msg_id, reason = v[0]
    assert r.rc == (0 if verdict == "valid" else 1), \
        "exit status does not match the verdict: %r" % r
    return verdict, msg_id, reason


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory):
    """A development PKI made by certs/mkcerts.sh."""
    d = tmp_path_factory.mktemp("pki") / "dev"
    p = subprocess.run(["sh", str(MKCERTS), str(d)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 0, "mkcerts.sh failed:\n%s\n%s" % (
        p.stdout.decode(), p.stderr.decode())
    return d


@pytest.fixture
def sign(run):
    """sign(envelope_obj_or_text, cert, key) -> (Result, parsed output)."""

    def _sign(envelope, cert, key, extra=()):
        text = envelope if isinstance(envelope, (str, bytes)) \
            else json.dumps(envelope)
        r = run("fedmsg-sign", ["--cert", cert, "--key", key] + list(extra),
                input=text)
        assert r.rc == 0, "fedmsg-sign failed: %r" % r
        assert r.out.endswith(b"\n") and r.out.count(b"\n") == 1, \
            "fedmsg-sign must print exactly one line: %r" % r
        return r, json.loads(r.out)

    return _sign


# ===========================================================================
# ZeroMQ helpers for test_zmq_*.py: long-running tools against real pyzmq
# peers on 127.0.0.1.  Everything below is additive; zmq and cryptography
# are imported lazily so the CLI tests above never depend on them.
# ===========================================================================

import signal as _signal
import socket as _socket
import uuid as _uuid

HOST = _socket.gethostname().split(".")[0]
VECTOR_CA = VECTOR_CERTS / "ca.crt"
VECTOR_CRL = VECTOR_CERTS / "crl.pem"
ALPHA_CRT = VECTOR_CERTS / "alpha-app01.vectors.example.org.crt"
ALPHA_KEY = VECTOR_CERTS / "alpha-app01.vectors.example.org.key"
PROBE_PREFIX = "org.fedoraproject.dev.zz_probe"
ZMQ_TEST_LIMIT = 15          # seconds, per test (the brief's bound)

RELAY_STATS_RE = re.compile(
    r"forwarded (\d+); dropped: (\d+) bad frames, (\d+) not JSON objects, "
    r"(\d+) topic mismatches, (\d+) invalid, (\d+) unsignable, "
    r"(\d+) unsendable")


def zmq_module():
    try:
        import zmq
    except ImportError:
        pytest.fail("python3-zmq (pyzmq) is needed: apt-get install "
                    "python3-zmq; run the tests with /usr/bin/python3",
                    pytrace=False)
    return zmq


# Ports for the processes a test starts.  Each pytest-xdist worker draws
# from a range of its own below the kernel's ephemeral range (and apart
# from the test brokers' 20000-29999), so two workers running files at
# once never hand out the same port between its check and its bind.
PORT_BASE, PORT_SPAN = 10000, 10000
_XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
_XDIST_INDEX = int((os.environ.get("PYTEST_XDIST_WORKER") or "gw0")[2:] or 0)
_PORT_SLICE = PORT_SPAN // max(_XDIST_WORKERS, 1)
_PORT_LO = PORT_BASE + _XDIST_INDEX * _PORT_SLICE
_port_next = [_PORT_LO + os.getpid() % _PORT_SLICE]


def free_ports(n=1):
    """n distinct free TCP ports on 127.0.0.1, from this worker's range
    (each is bound to check it is free, then released; the range turns
    round, so a port comes back only after the whole slice)."""
    socks = []
    try:
        for _ in range(20 * _PORT_SLICE):
            if len(socks) == n:
                break
            port = _port_next[0]
            _port_next[0] = _PORT_LO + (port + 1 - _PORT_LO) % _PORT_SLICE
            s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
        assert len(socks) == n, "no %d free ports in %d-%d" % (
            n, _PORT_LO, _PORT_LO + _PORT_SLICE - 1)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def archive_lines(d):
    """Every complete line of the archive consumer's files in d, in the
    order test_hub_bus's rotation checks read them (NAME.jsonl, then
    NAME.N.jsonl by N).  A last line the hub is still writing (no newline
    yet) is left out: the next call reads it whole."""
    def order(p):
        parts = p.name.split(".")
        return int(parts[1]) if len(parts) == 3 else 0
    out = []
    for p in sorted(Path(d).glob("*.jsonl"), key=order):
        data = p.read_bytes()
        out.extend(data[:data.rfind(b"\n") + 1].splitlines())
    return out


def archive_ids(d):
    return [json.loads(line)["msg_id"] for line in archive_lines(d)]


def tcp(port):
    return "tcp://127.0.0.1:%d" % port


def write_config(directory, cfg, name="fedmsg.json"):
    """Write cfg as JSON to directory/name and return the path."""
    p = Path(directory) / name
    p.write_text(json.dumps(cfg, indent=1) + "\n")
    return p


def bus_config(**extra):
    """A fedmsg-c config: fedmsg's defaults made explicit, no signing, no
    validation, no post_init_sleep (tests synchronise with probes)."""
    cfg = {"topic_prefix": "org.fedoraproject", "environment": "dev",
           "sign_messages": False, "validate_signatures": False,
           "post_init_sleep": 0}
    cfg.update(extra)
    return cfg


def vector_validation(**extra):
    """Config keys that validate against the vectors' CA and CRL."""
    cfg = dict(validate_signatures=True, ca_cert_location=str(VECTOR_CA),
               crl_location=str(VECTOR_CRL))
    cfg.update(extra)
    return cfg


def make_envelope(topic, msg, i=None, msg_id=None, username="pytest",
                  timestamp=None):
    """An unsigned fedmsg envelope (fedmsg.core.publish's fields)."""
    env = {"topic": topic, "msg": msg,
           "msg_id": msg_id or "%d-%s" % (time.gmtime().tm_year,
                                          _uuid.uuid4()),
           "timestamp": int(time.time()) if timestamp is None else timestamp,
           "username": username}
    if i is not None:
        env["i"] = i
    return env


def wire(env):
    """The two frames fedmsg puts on the wire for an envelope."""
    return [env["topic"].encode("utf-8"), canonical(env).encode("utf-8")]


def vector_frames(rec):
    return [rec["wire_topic"].encode("utf-8"),
            rec["wire_body"].encode("utf-8")]


def frame_matches_body(rec):
    """Does the vector's topic frame equal the body's topic (as Unicode
    text: the frame is UTF-8, the body may spell it with \\u escapes)?"""
    body = json.loads(rec["wire_body"])
    return isinstance(body, dict) and \
        rec["wire_topic"].encode("utf-8").decode("utf-8") == body.get("topic")


def py_sign(env, crt=ALPHA_CRT, key=ALPHA_KEY):
    """fedmsg.crypto.x509_ng.sign, written with python3-cryptography."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    env = dict(unsigned(env), crypto="x509")
    pkey = serialization.load_pem_private_key(Path(key).read_bytes(), None)
    sig = pkey.sign(canonical(env).encode("utf-8"), padding.PKCS1v15(),
                    hashes.SHA1())
    cert = x509.load_pem_x509_certificate(Path(crt).read_bytes())
    pem = cert.public_bytes(serialization.Encoding.PEM)
    return dict(env, signature=wrap76(sig), certificate=wrap76(pem))


def py_validate(env, ca=VECTOR_CA, crl=VECTOR_CRL, now=None):
    """A self-written x509 validator (python3-cryptography and Python's
    json), kept only for valid_by_default() in a clone without the real
    fedmsg (../shared/peers); test_peer_fedmsg checks it against real
    fedmsg on every vector.  Returns (ok, reason, signer_cn)."""
    import base64 as b64
    import binascii
    import datetime
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.x509.oid import NameOID

    now = now or datetime.datetime.utcnow()
    if not isinstance(env, dict):
        return False, "not an object", None
    crypto = env.get("crypto", "x509" if "certificate" in env else None)
    if crypto != "x509":
        return False, "backend %r" % (crypto,), None
    if "signature" not in env or "certificate" not in env:
        return False, "unsigned", None
    try:
        sig = b64.b64decode(env["signature"])
        pem = b64.b64decode(env["certificate"])
        cert = x509.load_pem_x509_certificate(pem)
    except (binascii.Error, ValueError, TypeError) as e:
        return False, "decode: %s" % e, None
    cacert = x509.load_pem_x509_certificate(Path(ca).read_bytes())
    if cert.issuer != cacert.subject:
        return False, "unknown issuer", None
    try:
        cacert.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                                   padding.PKCS1v15(),
                                   cert.signature_hash_algorithm)
    except InvalidSignature:
        return False, "certificate not signed by the CA", None
    for c in (cert, cacert):
        if not c.not_valid_before <= now <= c.not_valid_after:
            return False, "certificate outside its validity", None
    if crl:
        rl = x509.load_pem_x509_crl(Path(crl).read_bytes())
        if not rl.is_signature_valid(cacert.public_key()):
            return False, "bad CRL signature", None
        if rl.next_update is not None and rl.next_update < now:
            return False, "CRL has expired", None
        if rl.get_revoked_certificate_by_serial_number(
                cert.serial_number) is not None:
            return False, "certificate revoked", None
    try:
        cert.public_key().verify(sig, canonical(unsigned(env)).encode(
            "utf-8"), padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature:
        return False, "bad signature", None
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns:
        return False, "no CN", None
    return True, "", cns[0].value


def is_default_config(rec):
    """Was the vector judged under the default validation config?"""
    return rec["crl"] == "certs/crl.pem" and rec["routing_policy"] is None \
        and not rec["routing_nitpicky"]


def valid_by_default(rec):
    """The vector's verdict with ca.crt, crl.pem and no routing policy:
    fedmsg's own where it was judged that way, else the real fedmsg's,
    asked now; without the peers (a user's clone) py_validate's, so the
    relay and hub tests still run there."""
    if is_default_config(rec):
        return rec["valid"]
    if _peers.fedmsg_present():
        return _peers.vector_verdicts_by_default(
            VECTORS, VECTOR_CA, VECTOR_CRL)[rec["name"]]
    return py_validate(json.loads(rec["wire_body"]))[0]


def relay_stats(text):
    """The last relay counter line in a log, as a dict."""
    found = RELAY_STATS_RE.findall(text)
    assert found, "no relay counter line in:\n%s" % text[-3000:]
    keys = ("forwarded", "bad_frames", "bad_json", "topic_mismatch",
            "invalid", "sign_failed", "send_failed")
    return dict(zip(keys, map(int, found[-1])))


class Daemon:
    """A tool started in the background, stdout and stderr in files."""

    def __init__(self, name, args, workdir, env, stdin=None, prefix=()):
        self.name = name
        # prefix: a command that execs the rest, e.g. "ip netns exec NS"
        self.argv = (list(prefix) + FM_WRAP + [tool(name)] +
                     [str(a) for a in args])
        stem = "%s-%s" % (name, _uuid.uuid4().hex[:8])
        self.out_path = Path(workdir) / (stem + ".out")
        self.err_path = Path(workdir) / (stem + ".err")
        with open(self.out_path, "wb") as out, \
                open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=err, env=env,
                stdin=subprocess.PIPE if stdin == "pipe"
                else subprocess.DEVNULL)
        self.rc = None

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    def stdout(self):
        return self.out_path.read_bytes()

    def stderr(self):
        return self.err_path.read_bytes().decode("utf-8", "replace")

    def lines(self):
        """The lines written so far; while the process runs, a line it is
        still writing (no newline yet) is left for a later call."""
        writing = self.running()
        return complete_lines(self.stdout(), writing)

    def describe(self):
        return "%s (pid %d, exit %s)\n--- stderr:\n%s" % (
            " ".join(self.argv), self.pid, self.proc.returncode,
            self.stderr()[-4000:])

    def wait_for(self, pred, timeout=10.0, what="condition"):
        """Poll pred() until true; fail if the tool exits or time runs out."""
        timeout *= SLOW
        deadline = time.monotonic() + timeout
        while True:
            if pred():
                return
            if not self.running():
                if pred():
                    return
                pytest.fail("%s exited while waiting for %s: %s" % (
                    self.name, what, self.describe()), pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail("timeout (%.1f s) waiting for %s: %s" % (
                    timeout, what, self.describe()), pytrace=False)
            time.sleep(0.02)

    def wait_stderr(self, needle, timeout=10.0):
        self.wait_for(lambda: needle in self.stderr(), timeout,
                      "%r on stderr" % needle)

    def wait_stdout(self, needle, timeout=10.0):
        if isinstance(needle, str):
            needle = needle.encode("utf-8")
        self.wait_for(lambda: needle in self.stdout(), timeout,
                      "%r on stdout" % needle)

    def check(self):
        assert_no_sanitizer(self.stderr(), self.describe())
        # also LeakSanitizer's own failures ("LeakSanitizer has encountered
        # a fatal error"), which SANITIZER_RE does not cover
        assert "LeakSanitizer" not in self.stderr(), self.describe()

    def wait(self, timeout=10.0):
        """Wait for a tool that exits by itself; returns its status."""
        timeout *= SLOW
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("%s did not exit within %.1f s: %s" % (
                self.name, timeout, self.describe()), pytrace=False)
        self.check()
        assert self.rc >= 0, "%s killed by signal %d: %s" % (
            self.name, -self.rc, self.describe())
        return self.rc

    def stop(self, sig=_signal.SIGTERM, timeout=10.0):
        """Signal the tool (by its PID) and wait; returns its status."""
        if self.running():
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def kill(self):
        if self.running():
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def cleanup(self):
        """Teardown: SIGTERM, so LeakSanitizer or valgrind reports, then
        SIGKILL after STOP_TIMEOUT.  Returns what is wrong, "" if nothing:
        a report, or a kill that lost the report the exit would have
        made (a test must not pass because its process hung)."""
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        killed = False
        if self.running():
            self.proc.send_signal(_signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                killed = True
        text = self.stderr()
        if SANITIZER_RE.search(text) is not None or "LeakSanitizer" in text:
            return "sanitizer/valgrind report"
        if FM_WRAP and VALGRIND_ERROR_RC is not None and \
                self.proc.returncode == VALGRIND_ERROR_RC:
            return "exit %d: valgrind found errors" % VALGRIND_ERROR_RC
        if killed:
            return "no exit within %d s of SIGTERM: SIGKILLed, so its %s " \
                "report was lost" % (STOP_TIMEOUT, "valgrind" if FM_WRAP
                                     else "LeakSanitizer")
        return ""


def stop_all(started):
    """Teardown of a daemons/hubs fixture: every process stopped (cleanup),
    then the test fails on any report or lost report."""
    bad = [(d, d.cleanup()) for d in started]
    bad = [(d, why) for d, why in bad if why]
    if bad:
        pytest.fail("teardown: %s" % "\n".join(
            "%s: %s" % (why, d.describe()) for d, why in bad), pytrace=False)


@pytest.fixture
def daemons(tmp_path):
    """start(tool, args, config=PATH, stdin=None|"pipe") -> Daemon.

    Every process is stopped in teardown (SIGTERM, then SIGKILL after
    STOP_TIMEOUT, by PID); a sanitizer report in any stderr, or a SIGKILL
    that lost one, fails the test."""
    started = []

    def start(name, args=(), config=None, stdin=None, env=None, prefix=()):
        e = dict(os.environ)
        if config:
            e["FEDMSG_CONFIG"] = str(config)
        e.setdefault("ASAN_OPTIONS", "")
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        if env:
            e.update(env)
        d = Daemon(name, args, tmp_path, e, stdin, prefix)
        started.append(d)
        return d

    yield start
    stop_all(started)


def start_relay(daemons, config, *args, prog="fedmsg-relay", env=None):
    """Start fedmsg-relay (or fedmsg-signing-relay) and wait until both
    its sockets are bound."""
    d = daemons(prog, ["--config", config] + list(args), config=config,
                env=env)
    d.wait_stderr("outbound (PUB) bound on")
    return d


@pytest.fixture
def zctx():
    """A pyzmq context; every socket on it is closed at teardown."""
    zmq = zmq_module()
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def zsocket(ctx, kind, connect=None, bind=None, subscribe=b""):
    zmq = zmq_module()
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    if kind in (zmq.SUB, zmq.XSUB, zmq.PUB, zmq.XPUB):
        s.setsockopt(zmq.SNDHWM, 100000)
        s.setsockopt(zmq.RCVHWM, 100000)
    if kind == zmq.SUB and subscribe is not None:
        for t in [subscribe] if isinstance(subscribe, bytes) else subscribe:
            s.setsockopt(zmq.SUBSCRIBE, t)
    if bind:
        s.bind(bind)
    if connect:
        s.connect(connect)
    return s


def active_publisher(ctx, url, timeout=10.0):
    """An XPUB connected to a relay's inbound URL, returned once the
    relay's subscribe-all has arrived: what fedmsg-c's own active
    publisher does (same frames as fedmsg's PUB), so no message is lost
    to the slow joiner on this hop."""
    zmq = zmq_module()
    s = zsocket(ctx, zmq.XPUB, connect=url)
    if not s.poll(int(timeout * 1000)):
        pytest.fail("no subscription from the relay on %s within %.1f s"
                    % (url, timeout), pytrace=False)
    assert s.recv() == b"\x01"
    return s


class Probes:
    """Probe envelopes with unique topics PREFIX.<kind><n> and msg_ids
    probe-...: sent until a receiver shows one (the slow joiner), and as
    end markers (everything sent before one has been handled once it
    comes out, on an ordered path)."""

    def __init__(self, prefix=PROBE_PREFIX, sign=False):
        self.prefix = prefix
        self.sign = sign
        self.tag = _uuid.uuid4().hex[:8]
        self.n = 0
        self.sent = []          # envelopes, in order

    def make(self, kind="sync"):
        self.n += 1
        env = make_envelope("%s.%s%d" % (self.prefix, kind, self.n),
                            {"probe": self.n},
                            msg_id="probe-%s-%d" % (self.tag, self.n))
        if self.sign:
            env = py_sign(env)
        self.sent.append(env)
        return env

    @staticmethod
    def is_probe(env_or_body):
        env = env_or_body
        if isinstance(env, (bytes, str)):
            try:
                env = json.loads(env)
            except ValueError:
                return False
        # "YYYY-probe-...": one a fedora-messaging bridge wrapped (the
        # message_id, with the year put in front)
        return isinstance(env, dict) and \
            re.match(r"(\d{4}-)?probe-", str(env.get("msg_id", ""))) \
            is not None


class Sub:
    """A pyzmq SUB that keeps what it receives, probes apart."""

    def __init__(self, ctx, url, subscribe=b""):
        zmq = zmq_module()
        self.sock = zsocket(ctx, zmq.SUB, connect=url, subscribe=subscribe)
        self.msgs = []          # [topic bytes, body bytes], not probes
        self.probe_ids = []     # msg_ids of probes received

    def pump(self, timeout_ms=0):
        """Receive what is there, waiting up to timeout_ms for the first."""
        got = 0
        while self.sock.poll(timeout_ms if got == 0 else 0):
            frames = self.sock.recv_multipart()
            got += 1
            if len(frames) == 2 and Probes.is_probe(frames[1]):
                self.probe_ids.append(json.loads(frames[1])["msg_id"])
            else:
                self.msgs.append(frames)
        return got

    def sync(self, send, probes, timeout=10.0):
        """Send probes with send(frames) until one arrives here."""
        timeout *= SLOW
        deadline = time.monotonic() + timeout
        while True:
            env = probes.make("sync")
            send(wire(env))
            self.pump(50)
            if self.probe_ids:
                return
            if time.monotonic() > deadline:
                pytest.fail("no probe came through within %.1f s" % timeout,
                            pytrace=False)

    def wait_probe(self, msg_id, timeout=10.0):
        # under valgrind a signing relay may still be working through the
        # probes that sync() sent before one came out
        timeout *= SLOW
        deadline = time.monotonic() + timeout
        while msg_id not in self.probe_ids:
            if time.monotonic() > deadline:
                pytest.fail("end marker %s did not arrive within %.1f s "
                            "(got %d messages)" % (msg_id, timeout,
                                                   len(self.msgs)),
                            pytrace=False)
            self.pump(50)

    def finish(self, send, probes, timeout=10.0):
        """Send one end marker and receive until it arrives."""
        env = probes.make("end")
        send(wire(env))
        self.wait_probe(env["msg_id"], timeout)

    def wait_count(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.msgs) < n and time.monotonic() < deadline:
            self.pump(50)
        return self.msgs


def sync_tail(tail, send, probes, timeout=10.0):
    """Send probes until fedmsg-tail prints one (found by its topic, which
    every output format shows)."""
    deadline = time.monotonic() + timeout
    while True:
        env = probes.make("sync")
        send(wire(env))
        time.sleep(0.05)
        if probes.prefix.encode() in tail.stdout():
            return
        if not tail.running():
            pytest.fail("fedmsg-tail exited: %s" % tail.describe(),
                        pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("fedmsg-tail printed no probe within %.1f s: %s"
                        % (timeout, tail.describe()), pytrace=False)


def finish_tail(tail, send, probes, timeout=10.0):
    env = probes.make("end")
    send(wire(env))
    tail.wait_stdout(env["topic"], timeout)


@pytest.fixture
def zmq_time_limit(daemons, zctx):
    """Fail a test that runs longer than ZMQ_TEST_LIMIT seconds (SIGALRM in
    the main thread).  It depends on daemons and zctx so that it is torn
    down first: the alarm never fires during their cleanup."""
    limit = ZMQ_TEST_LIMIT * SLOW * SHARED

    def expired(signum, frame):
        pytest.fail("test exceeded %d s" % limit, pytrace=False)

    old = _signal.signal(_signal.SIGALRM, expired)
    _signal.alarm(limit)
    yield
    _signal.alarm(0)
    _signal.signal(_signal.SIGALRM, old)


# ===========================================================================
# fedmsg-hub helpers for test_hub_*.py: the hub binary (ASan in `make
# integration`), the test plugins of tests/abi/ built per session, the
# project's plugins, the /metrics and /status pages, and a launcher that
# kills every hub by PID in teardown and fails on sanitizer reports.
# Additive, like the ZeroMQ helpers above.
# ===========================================================================

import http.client as _http_client

ABI_DIR = REPO / "tests" / "abi"
FM_BUILD = Path(os.environ.get("FM_BUILD") or REPO / "build")
# The plugins a hub under test loads are built like that hub: the ASan
# hub gets build/asan/plugins and tests/abi/ built with FM_PLUGIN_CFLAGS
# (`make integration` sets both); the release hub (valgrind) the release
# ones.  Unset, they follow FM_BIN.
_SAN_BIN = FM_BIN.resolve() == (FM_BUILD / "asan" / "bin").resolve()
FM_PLUGINS = Path(os.environ.get("FM_PLUGIN_DIR") or (
    FM_BUILD / "asan" / "plugins" if _SAN_BIN else FM_BUILD / "plugins"))
FM_PLUGIN_CFLAGS = shlex.split(os.environ.get("FM_PLUGIN_CFLAGS") or (
    "-fsanitize=address,undefined -fno-omit-frame-pointer "
    "-fno-sanitize-recover=all" if _SAN_BIN else ""))
HUB_TEST_LIMIT = 20          # seconds, per test (the brief's bound)
ABI_CFLAGS = ["-shared", "-fPIC", "-fvisibility=hidden", "-std=c11",
              "-Wall", "-Wextra", "-Werror"]

METRIC_LINE_RE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
METRIC_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@pytest.fixture(scope="session")
def abi_plugins(tmp_path_factory):
    """Every tests/abi/*.c built as a plugin, the way a third party would
    (include/fedmsg/plugin.h only): {name: path of name.so}."""
    out = tmp_path_factory.mktemp("abi")
    cc = os.environ.get("CC") or "cc"
    built = {}
    for src in sorted(ABI_DIR.glob("*.c")):
        so = out / (src.stem + ".so")
        argv = [cc] + ABI_CFLAGS + FM_PLUGIN_CFLAGS + [
            "-I%s" % (REPO / "include"), "-o", str(so), str(src)]
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        assert p.returncode == 0, "cannot build %s:\n%s\n%s" % (
            src.name, " ".join(argv), p.stderr.decode())
        built[src.stem] = so
    return built


def project_plugin(name):
    """A plugin of consumers/<name>/ as `make` (`make asan-tools` for the
    ASan hub) built it."""
    p = FM_PLUGINS / (name + ".so")
    if not p.is_file():
        pytest.fail("%s not found: run `make all asan-tools` (or set "
                    "FM_BUILD, FM_PLUGIN_DIR)" % p,
                    pytrace=False)
    return p


def parse_metrics(text):
    """Prometheus text -> {(name, ((label, value), ...)): float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_LINE_RE.match(line)
        assert m, "bad metrics line: %r" % line
        labels = tuple(sorted(METRIC_LABEL_RE.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


class Metrics:
    def __init__(self, text):
        self.text = text
        self.values = parse_metrics(text)

    def get(self, name, **labels):
        key = (name, tuple(sorted(labels.items())))
        if key not in self.values:
            pytest.fail("no metric %s%s in:\n%s" % (name, labels, self.text),
                        pytrace=False)
        return self.values[key]

    def __call__(self, name, **labels):
        return self.get(name, **labels)


def http_get(port, path, timeout=10.0):
    """GET http://127.0.0.1:port/path (no proxies) -> (status, body str)."""
    c = _http_client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8")
    finally:
        c.close()


class Hub(Daemon):
    """A running fedmsg-hub (FM_BIN's, or the exe given)."""

    def __init__(self, args, workdir, env, exe=None, metrics_port=None):
        self.name = "fedmsg-hub"
        self.argv = FM_WRAP + [str(exe) if exe else tool("fedmsg-hub")] + \
            [str(a) for a in args]
        stem = "fedmsg-hub-%s" % _uuid.uuid4().hex[:8]
        self.out_path = Path(workdir) / (stem + ".out")
        self.err_path = Path(workdir) / (stem + ".err")
        self.metrics_port = metrics_port
        with open(self.out_path, "wb") as out, \
                open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err,
                                         env=env, stdin=subprocess.DEVNULL)
        self.rc = None

    def ready(self, timeout=10.0):
        self.wait_stderr("running with", timeout)
        return self

    def metrics(self):
        st, body = http_get(self.metrics_port, "/metrics")
        assert st == 200, (st, body)
        return Metrics(body)

    def status(self):
        st, body = http_get(self.metrics_port, "/status")
        assert st == 200, (st, body)
        return json.loads(body)

    def idle(self, timeout=10.0):
        """Wait until no consumer has a message queued, waiting for a
        retry or in consume(); returns the metrics then."""
        return self.wait_metric(lambda m: all(
            v == 0 for (name, _), v in m.values.items()
            if name == "fedmsg_consumer_queue_depth"), timeout,
            "idle consumers")

    def wait_metric(self, pred, timeout=10.0, what="metrics"):
        """Poll /metrics until pred(Metrics) is true; returns them."""
        got = []

        def ok():
            m = self.metrics()
            got[:] = [m]
            return pred(m)
        try:
            self.wait_for(ok, timeout, what)
        except BaseException:
            if got:
                print(got[0].text)
            raise
        return got[0]


@pytest.fixture
def hubs(tmp_path):
    """start(config, args=(), exe=None, metrics_port=None) -> Hub.

    Teardown as for daemons: a sanitizer report in any hub's stderr, or
    a SIGKILL that lost one, fails the test."""
    started = []

    def start(config, args=(), exe=None, metrics_port=None, env=None):
        e = dict(os.environ)
        e["FEDMSG_CONFIG"] = str(config)
        e.setdefault("ASAN_OPTIONS", "")
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        if env:
            e.update(env)
        h = Hub(["--config", config] + list(args), tmp_path, e, exe,
                metrics_port)
        started.append(h)
        return h

    yield start
    stop_all(started)


@pytest.fixture
def hub_time_limit(hubs, zctx):
    """Fail a test that runs longer than HUB_TEST_LIMIT s (torn down
    before hubs and zctx, so the alarm never fires in their cleanup)."""
    limit = HUB_TEST_LIMIT * SLOW * SHARED

    def expired(signum, frame):
        pytest.fail("test exceeded %d s" % limit, pytrace=False)

    old = _signal.signal(_signal.SIGALRM, expired)
    _signal.alarm(limit)
    yield
    _signal.alarm(0)
    _signal.signal(_signal.SIGALRM, old)


def hub_config(src_port, metrics_port, consumers, hub=None, **extra):
    """A hub config: a passive source "src" on src_port, validation with
    the vectors' CA/CRL, metrics on 127.0.0.1:metrics_port, and a short
    drain_timeout so a stuck teardown stays short."""
    h = {"metrics": "127.0.0.1:%d" % metrics_port, "drain_timeout": 3}
    h.update(hub or {})
    cfg = bus_config(**vector_validation())
    cfg.update(endpoints={"src": [tcp(src_port)]}, consumers=consumers,
               hub=h, zmq_linger=0)
    cfg.update(extra)
    return cfg


_SIGNING_KEYS = {}


def fast_sign(env, crt=ALPHA_CRT, key=ALPHA_KEY):
    """py_sign with the key and certificate loaded once per path (loading
    an RSA key checks it, ~90 ms; signing takes ~1 ms)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    k = (str(crt), str(key))
    if k not in _SIGNING_KEYS:
        cert = x509.load_pem_x509_certificate(Path(crt).read_bytes())
        _SIGNING_KEYS[k] = (
            serialization.load_pem_private_key(Path(key).read_bytes(), None),
            wrap76(cert.public_bytes(serialization.Encoding.PEM)))
    pkey, pem = _SIGNING_KEYS[k]
    env = dict(unsigned(env), crypto="x509")
    sig = pkey.sign(canonical(env).encode("utf-8"), padding.PKCS1v15(),
                    hashes.SHA1())
    return dict(env, signature=wrap76(sig), certificate=pem)


class HubProbes(Probes):
    """Probes signed by the alpha certificate, with fast_sign."""

    def __init__(self, prefix=PROBE_PREFIX):
        super().__init__(prefix, sign=False)

    def make(self, kind="sync"):
        env = super().make(kind)
        self.sent[-1] = env = fast_sign(env)
        return env


def signed(topic_tail, msg, msg_id=None, signer=None):
    """An envelope on org.fedoraproject.dev.<topic_tail>, signed by the
    vectors' alpha certificate (valid under ca.crt and crl.pem) or by
    signer = (crt, key)."""
    env = make_envelope("org.fedoraproject.dev." + topic_tail, msg,
                        msg_id=msg_id)
    return fast_sign(env, *(signer or ()))


def recorded(path):
    """The "<msg_id> <attempt> [...]" lines a verdicts/slow plugin wrote:
    [(msg_id, attempt, rest...)]."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        f = line.split(" ")
        out.append((f[0], int(f[1])) + tuple(int(x) for x in f[2:]))
    return out


def recorded_ids(path, probes=False):
    """msg_ids recorded in path, in order; probes left out unless asked."""
    return [r[0] for r in recorded(path)
            if probes or not r[0].startswith("probe-")]


def hub_sync(send, probes, seen, hub=None, timeout=10.0):
    """Beat the slow joiner: send signed probes until seen() (a set or
    list of consumed msg_ids) shows one, then one end marker and wait for
    it, so that every probe in flight has been consumed.  Returns the
    marker's msg_id."""
    deadline = time.monotonic() + timeout
    sent = []
    while True:
        env = probes.make("sync")
        sent.append(env["msg_id"])
        send(wire(env))
        t = time.monotonic() + 0.1
        while time.monotonic() < t:
            if set(sent) & set(seen()):
                break
            time.sleep(0.01)
        else:
            if hub is not None and not hub.running():
                pytest.fail("the hub exited: %s" % hub.describe(),
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail("no probe reached a consumer within %.1f s%s" % (
                    timeout, ": " + hub.describe() if hub else ""),
                    pytrace=False)
            continue
        break
    return hub_mark(send, probes, seen, hub, timeout)


def hub_mark(send, probes, seen, hub=None, timeout=10.0):
    """Send one signed end marker and wait until seen() shows it."""
    env = probes.make("end")
    send(wire(env))
    deadline = time.monotonic() + timeout
    while env["msg_id"] not in seen():
        if hub is not None and not hub.running():
            pytest.fail("the hub exited: %s" % hub.describe(), pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail("end marker %s not consumed within %.1f s%s" % (
                env["msg_id"], timeout,
                ": " + hub.describe() if hub else ""), pytrace=False)
        time.sleep(0.01)
    return env["msg_id"]


def wait_until(pred, timeout=10.0, what="condition", hub=None):
    timeout *= SLOW
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail("timeout (%.1f s) waiting for %s%s" % (
                timeout, what, ": " + hub.describe() if hub else ""),
                pytrace=False)
        time.sleep(0.02)


# ===========================================================================
# Real brokers for test_bridge_*.py and test_hub_broker.py: RabbitMQ 3.10
# (AMQP 1.0 + STOMP) and ActiveMQ 5.17 (STOMP) run by our own harness,
# tests/brokers/broker.sh, as plain background processes on 127.0.0.1
# with all state under the session's temporary directory.  A broker is
# started once per session, and only when a selected test needs it (the
# "rabbitmq" / "activemq" fixtures); every broker the selection needs is
# started in parallel the first time one is asked for, and all are stopped
# by PID at the end of the session (timings printed).  Nothing here runs
# unless such a test is selected.  Additive, like the helpers above.
#
# Ports, per session: tests/brokers/brokerrun.py reserves free ones for
# this process at import (the RMQ_* / AMQ_* constants below, the session's
# brokers' ports), so that two sessions at once, or a system broker on
# the usual ports, never collide.  The run it makes also marks the broker
# processes (FM_BROKER_RUN in their environment): a watchdog kills them
# if this process dies, by SIGKILL too, and the next session cleans up
# after a dead one; SIGTERM / SIGHUP and the exit kill them too.
# ===========================================================================

import atexit as _atexit
import importlib.util as _ilu
import threading as _threading

BROKERS_DIR = REPO / "tests" / "brokers"
BROKER_SH = BROKERS_DIR / "broker.sh"
BROKER_START_TIMEOUT = 180   # s; RabbitMQ's first boot is slow on 2 cores
BROKER_TEST_LIMIT = 60       # s per test unless marked broker_limit(N)
# broker.sh's environment variables for each broker's ports, in order
BROKER_PORT_VARS = {
    "rabbitmq": ("FM_RMQ_AMQP_PORT", "FM_RMQ_AMQPS_PORT", "FM_RMQ_STOMP_PORT",
                 "FM_RMQ_STOMPS_PORT", "FM_RMQ_DIST_PORT", "FM_RMQ_EPMD_PORT"),
    "activemq": ("FM_AMQ_STOMP_PORT", "FM_AMQ_STOMPS_PORT",
                 "FM_AMQ_STOMPS_NOAUTH_PORT"),
}


def _load_brokerrun():
    spec = _ilu.spec_from_file_location("fm_brokerrun",
                                        BROKERS_DIR / "brokerrun.py")
    mod = _ilu.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


brokerrun = _load_brokerrun()


def read_ports_env(path):
    """broker.sh's DIR/ports.env as {NAME: value} ({} if missing)."""
    out = {}
    try:
        text = Path(path).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


def _session_ports(run):
    """{broker.sh port variable: port} for the session's brokers: those
    of brokers already in FM_BROKER_DIR, else FM_* from the environment,
    else reserved for this run."""
    ports = {}
    for kind, names in BROKER_PORT_VARS.items():
        known = {}
        if os.environ.get("FM_BROKER_DIR"):
            known = read_ports_env(Path(os.environ["FM_BROKER_DIR"]) /
                                   kind / "ports.env")
        for n in names:
            v = known.get(n) or os.environ.get(n)
            if v:
                ports[n] = int(v)
    todo = [n for names in BROKER_PORT_VARS.values() for n in names
            if n not in ports]
    ports.update(zip(todo, run.reserve(len(todo)) if todo else ()))
    return ports


BROKER_RUN = brokerrun.Run.create()
_atexit.register(BROKER_RUN.close)
# every process a test starts carries the mark too (not this one: its
# /proc environ is fixed at exec), so a daemon a killed session leaves
# behind is cleaned up with its brokers
os.environ.update(BROKER_RUN.env())
SESSION_PORTS = _session_ports(BROKER_RUN)
RMQ_AMQP_PORT = SESSION_PORTS["FM_RMQ_AMQP_PORT"]
RMQ_AMQPS_PORT = SESSION_PORTS["FM_RMQ_AMQPS_PORT"]
RMQ_STOMP_PORT = SESSION_PORTS["FM_RMQ_STOMP_PORT"]
RMQ_STOMPS_PORT = SESSION_PORTS["FM_RMQ_STOMPS_PORT"]
AMQ_STOMP_PORT = SESSION_PORTS["FM_AMQ_STOMP_PORT"]
AMQ_STOMPS_PORT = SESSION_PORTS["FM_AMQ_STOMPS_PORT"]
AMQ_STOMPS_NOAUTH_PORT = SESSION_PORTS["FM_AMQ_STOMPS_NOAUTH_PORT"]
BROKER_FIXTURES = ("rabbitmq", "activemq")
BRIDGE_STATS_RE = re.compile(
    r"bridge (\S+): in (\d+), out (\d+), invalid (\d+), not JSON (\d+), "
    r"looped (\d+), wrapped (\d+), retried (\d+), dropped (\d+), "
    r"filtered (\d+)(?:, skipped (\d+))?")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "broker_limit(seconds): time limit of a broker test "
        "(default %d s)" % BROKER_TEST_LIMIT)


# pytest-xdist (`make integration` runs TEST_JOBS workers, --dist
# loadgroup): a file is one group, so its module fixtures are made once and
# its tests run in order; the files that use ActiveMQ form one group and
# those that use only RabbitMQ another, so the brokers start on two
# workers rather than on every one.  tryfirst: before xdist's own hook
# reads the marks.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if not XDIST_WORKER:
        return
    kinds = {}
    for item in items:
        used = kinds.setdefault(item.fspath, set())
        used.update(k for k in BROKER_FIXTURES
                    if k in getattr(item, "fixturenames", ()))
    for item in items:
        used = kinds[item.fspath]
        group = ("activemq" if "activemq" in used else
                 "rabbitmq" if used else item.fspath.basename)
        item.add_marker(pytest.mark.xdist_group(group))


class Broker:
    """One broker run by tests/brokers/broker.sh in its own directory,
    on the ports given ({broker.sh variable: port}), its processes marked
    as the brokerrun.Run's."""

    def __init__(self, kind, directory, ports=None, run=None):
        self.kind = kind
        self.dir = Path(directory)
        self.tls = self.dir / "tls"
        self.run = run or BROKER_RUN
        self.ports = {n: (ports or SESSION_PORTS)[n]
                      for n in BROKER_PORT_VARS[kind]}
        self.proc = None            # a `broker.sh start` in progress
        self.out = b""
        self.timings = []           # (what, seconds)
        self.keep = False           # reused (FM_BROKER_DIR): never stopped

    # -- lifecycle ------------------------------------------------------
    def _env(self):
        e = dict(os.environ)
        e.update({n: str(p) for n, p in self.ports.items()})
        e.update(self.run.env())
        return e

    def _sh(self, *args, timeout=BROKER_START_TIMEOUT):
        return subprocess.run(["bash", str(BROKER_SH)] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, env=self._env())

    def launch(self):
        """Begin `broker.sh start` in the background."""
        if self.proc is None:
            self.run.watch()        # from the first broker on
            self.t0 = time.monotonic()
            self.proc = subprocess.Popen(
                ["bash", str(BROKER_SH), "start", self.kind, str(self.dir)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=self._env())

    def wait_started(self):
        if self.proc is None:
            self.launch()
        try:
            self.out, _ = self.proc.communicate(timeout=BROKER_START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.out = b"(timed out)"
        rc, self.proc = self.proc.returncode, None
        m = re.search(rb"ready in (\d+) ms", self.out)
        self.timings.append(("start", int(m.group(1)) / 1000 if m else
                             time.monotonic() - self.t0))
        if rc != 0:
            self.stop()
            pytest.fail("%s did not start:\n%s" % (
                self.kind, self.out.decode("utf-8", "replace")[-6000:]),
                pytrace=False)
        return self

    def start(self):
        self.launch()
        return self.wait_started()

    def stop(self):
        t0 = time.monotonic()
        p = self._sh("stop", self.kind, str(self.dir), timeout=90)
        self.timings.append(("stop", time.monotonic() - t0))
        return p.returncode == 0

    def pids(self):
        out = []
        for f in self.dir.glob("*.pid"):
            try:
                out.append(int(f.read_text().strip()))
            except ValueError:
                pass
        return out

    def running(self):
        main = {"rabbitmq": "rabbit.pid", "activemq": "activemq.pid"}
        f = self.dir / main[self.kind]
        try:
            pid = int(f.read_text().strip())
        except (OSError, ValueError):
            return False
        st = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)],
                            stdout=subprocess.PIPE).stdout.strip()
        return bool(st) and not st.startswith(b"Z")

    def ensure(self):
        """Running (a previous test may have stopped it and failed)."""
        if not self.running():
            self.stop()
            self.start()
        return self

    def ctl(self, *args):
        """rabbitmqctl ARGS against this node -> stdout text."""
        p = self._sh("ctl", self.kind, str(self.dir), *args, timeout=60)
        assert p.returncode == 0, p.stdout.decode("utf-8", "replace")
        return p.stdout.decode("utf-8", "replace")

    def queues(self):
        """{queue name: (messages ready, unacknowledged, consumers)}."""
        out = {}
        text = self.ctl("list_queues", "-q", "--no-table-headers", "name",
                        "messages_ready", "messages_unacknowledged",
                        "consumers")
        for line in text.splitlines():
            f = line.split()
            if len(f) == 4 and f[1].isdigit():
                out[f[0]] = tuple(int(x) for x in f[1:])
        return out

    def log_text(self):
        parts = []
        for p in sorted(self.dir.glob("*.log")) + \
                sorted(self.dir.glob("log/*.log")):
            try:
                parts.append(p.read_text(errors="replace"))
            except OSError:
                pass
        return "\n".join(parts)

    # -- addresses -------------------------------------------------------
    def port(self, name):
        """The port of broker.sh's variable name, e.g. FM_RMQ_AMQP_PORT."""
        return self.ports[name]

    def _pfx(self):
        return "FM_RMQ_" if self.kind == "rabbitmq" else "FM_AMQ_"

    @property
    def amqp_port(self):
        return self.ports["FM_RMQ_AMQP_PORT"]

    @property
    def amqps_port(self):
        return self.ports["FM_RMQ_AMQPS_PORT"]

    @property
    def stomp_port(self):
        return self.ports[self._pfx() + "STOMP_PORT"]

    @property
    def stomps_port(self):
        return self.ports[self._pfx() + "STOMPS_PORT"]

    @property
    def stomps_noauth_port(self):
        return self.ports["FM_AMQ_STOMPS_NOAUTH_PORT"]

    @property
    def amqp_url(self):
        return "amqp://127.0.0.1:%d" % self.amqp_port

    @property
    def amqps_url(self):
        """With the host name the test certificate carries."""
        return "amqps://localhost:%d" % self.amqps_port

    @property
    def ca(self):
        return str(self.tls / "ca.pem")

    @property
    def other_ca(self):
        return str(self.tls / "other-ca.pem")

    def client(self, other=False):
        """(cert, key) of the test CA's client, or of the other CA's."""
        stem = "other-client" if other else "client"
        return str(self.tls / (stem + ".pem")), str(self.tls / (stem + ".key"))


class BrokerPool:
    """The session's brokers, started on first use (or, with ports and
    run given, another set of brokers beside them)."""

    def __init__(self, base, items, ports=None, run=None):
        self.base = Path(base)
        self.ports = ports
        self.run = run
        self.brokers = {}
        # every broker some selected test needs, to start them together
        # (an xdist worker runs only some of the items: it starts each
        # broker on first use)
        self.needed = [] if XDIST_WORKER else [
            k for k in BROKER_FIXTURES
            if any(k in getattr(i, "fixturenames", ()) for i in items)]

    def get(self, kind):
        if kind not in self.brokers:
            for k in set(self.needed + [kind]) - set(self.brokers):
                b = self.brokers[k] = Broker(k, self.base / k, self.ports,
                                             self.run)
                if b.running():
                    b.keep = True   # FM_BROKER_DIR: someone else's, reused
                    b.ports.update({n: int(v) for n, v in read_ports_env(
                        b.dir / "ports.env").items() if n in b.ports})
                else:
                    b.launch()
        b = self.brokers[kind]
        if b.proc is not None:
            b.wait_started()
        return b.ensure()

    def close(self):
        lines = []
        for k, b in sorted(self.brokers.items()):
            if b.proc is not None:
                b.wait_started()
            if b.keep:
                lines.append("%s: reused from %s, left running" % (k, b.dir))
                continue
            b.stop()
            left = [p for p in b.pids()]
            lines.append("%s: %s%s" % (k, ", ".join(
                "%s %.1f s" % t for t in b.timings),
                " (PIDs left: %s)" % left if left else ""))
        return lines


def _broker_tools_present():
    missing = [p for p in ("/usr/lib/rabbitmq/bin/rabbitmq-server",
                           "/usr/share/activemq/bin/activemq.jar")
               if not os.path.exists(p)]
    for mod in ("proton", "stomp"):
        try:
            __import__(mod)
        except ImportError:
            missing.append("python3 module " + mod)
    return missing


@pytest.fixture(scope="session")
def broker_pool(request, tmp_path_factory):
    missing = _broker_tools_present()
    if missing:
        pytest.fail("broker tests need the Debian packages of "
                    "`.ci/install-deps brokers` (and /usr/bin/python3); "
                    "missing: %s" % ", ".join(missing), pytrace=False)
    # FM_BROKER_DIR=DIR: keep the brokers' state there instead, and reuse
    # (never stop) brokers already running from it, e.g. started by hand
    # with tests/brokers/broker.sh start KIND DIR/KIND, to iterate fast.
    base = os.environ.get("FM_BROKER_DIR") or \
        tmp_path_factory.mktemp("brokers")
    # SIGTERM / SIGHUP kill the brokers (SIGINT ends pytest with its
    # teardown, SIGKILL leaves it to the watchdog)
    BROKER_RUN.on_signals()
    pool = BrokerPool(base, request.session.items)
    yield pool
    _BROKER_SUMMARY.extend(pool.close())


_BROKER_SUMMARY = ["cleaned up after a dead run: %s (killed PIDs: %s)"
                   % (d, killed or "none")
                   for d, killed in BROKER_RUN.reaped]


def pytest_terminal_summary(terminalreporter):
    """The brokers' start/stop timings (session fixtures are torn down
    before the summary, with output captured)."""
    for line in _BROKER_SUMMARY:
        terminalreporter.write_line("brokers: " + line)


@pytest.fixture
def rabbitmq(broker_pool):
    """The session's RabbitMQ (a Broker), running."""
    return broker_pool.get("rabbitmq")


@pytest.fixture
def activemq(broker_pool):
    """The session's ActiveMQ (a Broker), running."""
    return broker_pool.get("activemq")


@pytest.fixture
def broker_time_limit(request, daemons, zctx):
    """Fail a broker test that runs longer than its broker_limit (SIGALRM;
    torn down before daemons and zctx, so never during their cleanup)."""
    m = request.node.get_closest_marker("broker_limit")
    limit = (int(m.args[0]) if m else BROKER_TEST_LIMIT) * SLOW * SHARED
    # The brokers the test uses are up before its clock starts: a start-up
    # (slow when other workers start theirs) has its own deadline.
    for kind in BROKER_FIXTURES:
        if kind in request.fixturenames:
            request.getfixturevalue(kind)

    def expired(signum, frame):
        pytest.fail("test exceeded %d s" % limit, pytrace=False)

    old = _signal.signal(_signal.SIGALRM, expired)
    _signal.alarm(limit)
    yield
    _signal.alarm(0)
    _signal.signal(_signal.SIGALRM, old)


def unique(stem="t"):
    """A name no other test (or earlier run) uses: fresh addresses."""
    return "%s%s" % (stem, _uuid.uuid4().hex[:10])


def bridge_stats(text, name=None):
    """The counter line fedmsg-bridge logs for a bridge when it stops."""
    found = [m for m in BRIDGE_STATS_RE.findall(text)
             if name is None or m[0] == name]
    assert found, "no bridge counter line%s in:\n%s" % (
        " for %s" % name if name else "", text[-3000:])
    keys = ("in", "out", "invalid", "not_json", "looped", "wrapped",
            "retried", "dropped", "filtered", "skipped")
    return dict(zip(keys, (int(v or 0) for v in found[-1][1:])))


def password_file(directory, secret="guest", name="password"):
    p = Path(directory) / name
    p.write_text(secret + "\n")
    p.chmod(0o600)
    return str(p)


# -- AMQP 1.0 peers (python3-qpid-proton) -------------------------------------

def amqp_connection(url=None, ca=None, hostname=None, user=None,
                    password=None, timeout=10):
    """A BlockingConnection to RabbitMQ (ANONYMOUS unless user given)."""
    from proton import SSLDomain
    from proton.utils import BlockingConnection

    url = url or "amqp://127.0.0.1:%d" % RMQ_AMQP_PORT
    kw = {}
    if url.startswith("amqps"):
        d = SSLDomain(SSLDomain.MODE_CLIENT)
        d.set_trusted_ca_db(ca)
        d.set_peer_authentication(SSLDomain.VERIFY_PEER_NAME)
        kw["ssl_domain"] = d
    if user:
        kw.update(user=user, password=password, allowed_mechs="PLAIN")
    else:
        kw["allowed_mechs"] = "ANONYMOUS"
    return BlockingConnection(url, timeout=timeout, **kw)


def amqp_message(body, subject=None, props=None, msg_id=None, address=None,
                 value=False, annotations=None):
    """A proton Message with body as a data section (bytes), or as an
    amqp-value string (value=True: what Koji's protonmsg sends), and
    message annotations {symbol name: value}."""
    from proton import Message, symbol

    if isinstance(body, str) and not value:
        body = body.encode("utf-8")
    m = Message(body=body, inferred=not value, subject=subject,
                properties=props, id=msg_id, address=address,
                content_type="application/json", durable=True)
    if annotations:
        m.annotations = {symbol(k): v for k, v in annotations.items()}
    return m


class ProtonListener:
    """A python3-qpid-proton Container LISTENING on 127.0.0.1:port in a
    thread of its own: an AMQP 1.0 peer the program under test connects
    to as to a broker (ANONYMOUS).  handler: a proton MessagingHandler;
    its events run on the thread, so share state with the test under a
    lock.  stop() closes the listener and ends the thread; error is the
    first transport error (e.g. "connection aborted": no AMQP close) or
    exception raised by the handler."""

    def __init__(self, port, handler):
        from proton.reactor import Container

        listener = self
        self.port = port
        self.stopping = False
        self.error = None

        class Control:          # listens and stops; no message handling
            def on_reactor_init(self, event):
                self.acceptor = event.container.listen(
                    "127.0.0.1:%d" % listener.port)
                event.container.schedule(0.1, self)

            def on_timer_task(self, event):
                # proton keeps what a handler raised and goes on: show it
                errors = event.container.errors
                if errors and listener.error is None:
                    listener.error = "handler raised %r" % (errors[0][1],)
                if listener.stopping:
                    self.acceptor.close()
                    event.container.stop()
                else:
                    event.container.schedule(0.1, self)

        self.control = Control()
        self.handler = handler
        orig = getattr(handler, "on_transport_error", None)

        def on_transport_error(event):
            cond = event.transport.condition
            if cond and not listener.stopping and listener.error is None:
                listener.error = "%s: %s" % (cond.name, cond.description)
            if orig:
                orig(event)
        handler.on_transport_error = on_transport_error
        self.container = Container(self.control, handler)
        self.thread = _threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.container.run()
        except Exception as e:  # noqa: BLE001 - reported through error
            self.error = repr(e)

    def stop(self):
        self.stopping = True
        self.thread.join(5)


def bridge_to_listener(tmp_path, daemons, zctx, port, address):
    """fedmsg-bridge from a ZeroMQ source to a ProtonListener on port
    (AMQP 1.0, spool on), subscribed: (its BridgeSource, the bridge)."""
    src = BridgeSource(zctx)
    cfg = write_config(tmp_path, bridge_config(
        {"out": {"from": "zmq", "endpoints": ["src"],
                 "to": "amqp://127.0.0.1:%d" % port, "address": address,
                 "spool": {"dir": str(tmp_path / "spool")}}},
        endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)
    return src, bridge


def answer_link(event):
    """Open a link the remote opened, with the address it asked for."""
    link = event.link
    if link.is_sender:
        link.source.address = link.remote_source.address
    else:
        link.target.address = link.remote_target.address


class SettlingPeer:
    """The broker side of a ProtonListener that the program under test
    sends to: a delivery whose subject names the word of a rule is settled
    by that rule's settle(handler, delivery), any other is accepted; the
    (subject, msg_id) of every delivery is kept.  rules: [(word, settle)]."""

    def __init__(self, rules):
        from proton.handlers import MessagingHandler

        peer = self
        self.lock = _threading.Lock()
        self.got = []

        class Handler(MessagingHandler):
            def __init__(self):
                super().__init__(auto_accept=False)

            on_link_opening = staticmethod(answer_link)

            def on_message(self, event):
                subject = event.message.subject or ""
                msg_id = json.loads(bytes(event.message.body))["msg_id"]
                with peer.lock:
                    peer.got.append((subject, msg_id))
                for word, settle in rules:
                    if word in subject:
                        settle(self, event.delivery)
                        return
                self.accept(event.delivery)

        self.handler = Handler()

    def ids(self, word):
        with self.lock:
            return [m for s, m in self.got if word in s]


class AmqpReceiver:
    """A receiver on one address, keeping every message (accepted, unless
    accept is False: a broker that delivers pre-settled leaves nothing to
    accept)."""

    def __init__(self, address, durable=False, credit=500, accept=True,
                 **conn):
        from proton.reactor import DurableSubscription

        self.address = address
        self.accept = accept
        self.conn = amqp_connection(**conn)
        opts = DurableSubscription() if durable else None
        self.rcv = self.conn.create_receiver(address, credit=credit,
                                             options=opts)
        self.msgs = []

    def pump(self, timeout=0.05):
        """Take what is there, waiting up to timeout for the first."""
        from proton import Timeout

        got = 0
        while True:
            try:
                m = self.rcv.receive(timeout=timeout if got == 0 else 0.001)
            except Timeout:
                return got
            if self.accept:
                self.rcv.accept()
            self.msgs.append(m)
            got += 1

    def bodies(self):
        return [bytes(m.body) if not isinstance(m.body, str)
                else m.body.encode("utf-8") for m in self.msgs]

    def wait_count(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.msgs) < n and time.monotonic() < deadline:
            self.pump(0.1)
        return self.msgs

    def wait_messages(self, n, timeout=15.0):
        """Receive until n messages that are not probes are here: a probe
        sent while syncing can come after the count was taken."""
        def real():
            return sum(not Probes.is_probe(b) for b in self.bodies())

        deadline = time.monotonic() + timeout
        while real() < n and time.monotonic() < deadline:
            self.pump(0.1)
        return self.msgs

    def quiet(self, seconds):
        """Keep receiving for `seconds` (to count what else arrives)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.pump(0.1)
        return self.msgs

    def close(self):
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - already gone is fine
            pass


class AmqpSender:
    """A sender on one address; send() waits for the broker's verdict."""

    def __init__(self, address, **conn):
        self.conn = amqp_connection(**conn)
        self.snd = self.conn.create_sender(address)

    def send(self, body, **kw):
        self.snd.send(amqp_message(body, **kw), timeout=10)

    def close(self):
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass


@pytest.fixture
def amqp_peers():
    """receiver(address, ...) / sender(address, ...): proton peers closed
    at teardown."""
    made = []

    class Peers:
        @staticmethod
        def receiver(address, **kw):
            r = AmqpReceiver(address, **kw)
            made.append(r)
            return r

        @staticmethod
        def sender(address, **kw):
            s = AmqpSender(address, **kw)
            made.append(s)
            return s

    yield Peers
    for p in made:
        p.close()
    # drop proton's objects now, not at interpreter exit (where their
    # __del__ fails noisily with "sys.meta_path is None")
    for p in made:
        p.__dict__.clear()
    made.clear()
    import gc
    gc.collect()


# -- STOMP peers (python3-stomp) ------------------------------------------------

class StompPeer:
    """A STOMP 1.2 connection (stomp.py) that keeps every MESSAGE frame
    (headers, body bytes) per subscription."""

    def __init__(self, port, vhost=None, ca=None, cert=None, key=None,
                 user=None, password=None, timeout=10):
        import ssl
        import stomp

        self.msgs = []              # (subscription id, headers, body bytes)
        self.errors = []
        self.receipts = set()
        self.lock = _threading.Lock()
        peer = self

        class L(stomp.ConnectionListener):
            def on_message(self, frame):
                body = frame.body
                if isinstance(body, str):
                    body = body.encode("utf-8")
                with peer.lock:
                    peer.msgs.append((frame.headers.get("subscription"),
                                      dict(frame.headers), body))

            def on_error(self, frame):
                peer.errors.append((frame.headers, frame.body))

            def on_receipt(self, frame):
                peer.receipts.add(frame.headers.get("receipt-id"))

        self.conn = stomp.Connection12([("127.0.0.1", port)],
                                       vhost=vhost, heartbeats=(0, 0),
                                       auto_decode=False)
        if ca:
            self.conn.set_ssl(for_hosts=[("127.0.0.1", port)], ca_certs=ca,
                              cert_file=cert, key_file=key,
                              ssl_version=ssl.PROTOCOL_TLS_CLIENT)
        self.conn.set_listener("", L())
        self.conn.connect(user, password, wait=True)
        self.n = 0

    def _receipt(self, what, timeout=10.0):
        deadline = time.monotonic() + timeout
        while what not in self.receipts:
            if self.errors:
                pytest.fail("STOMP ERROR: %r" % (self.errors,), pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail("no STOMP RECEIPT %s" % what, pytrace=False)
            time.sleep(0.01)

    def subscribe(self, destination, ack="auto", headers=None):
        """Subscribe and wait for the broker's RECEIPT; returns the id."""
        self.n += 1
        sid = "s%d" % self.n
        self.conn.subscribe(destination=destination, id=sid, ack=ack,
                            receipt="sub-" + sid, headers=headers or {})
        self._receipt("sub-" + sid)
        return sid

    def send(self, destination, body, headers=None, receipt=True):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.n += 1
        h = dict(headers or {})
        r = "send-%d" % self.n
        self.conn.send(destination=destination, body=body,
                       content_type=h.pop("content-type", "application/json"),
                       headers=h, receipt=r if receipt else None)
        if receipt:
            self._receipt(r)

    def of(self, sid):
        with self.lock:
            return [(h, b) for s, h, b in self.msgs if s == sid]

    def wait_count(self, sid, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.of(sid)) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.of(sid)

    def wait_messages(self, sid, n, timeout=15.0):
        """Wait until sid has n messages that are not probes (a late sync
        probe must not stand in for one)."""
        def real():
            return [(h, b) for h, b in self.of(sid)
                    if not Probes.is_probe(b)]

        deadline = time.monotonic() + timeout
        while len(real()) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return real()

    def close(self):
        try:
            self.conn.disconnect()
        except Exception:  # noqa: BLE001
            pass


@pytest.fixture
def stomp_peers():
    """peer(port, ...) -> StompPeer, disconnected at teardown."""
    made = []

    def peer(port, **kw):
        p = StompPeer(port, **kw)
        made.append(p)
        return p

    yield peer
    for p in made:
        p.close()


# -- the ZeroMQ side of a bridge ---------------------------------------------

class BridgeSource:
    """A fedmsg endpoint for a ZeroMQ -> broker bridge: an XPUB bound on
    127.0.0.1 (same frames as fedmsg's PUB) that sees each subscription,
    so the test knows when a (re)started bridge is connected and nothing
    is lost to the slow joiner."""

    def __init__(self, ctx):
        zmq = zmq_module()
        self.port = free_ports(1)[0]
        self.url = tcp(self.port)
        self.sock = zsocket(ctx, zmq.XPUB, bind=self.url)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)

    def wait_subscriber(self, timeout=15.0, daemon=None):
        """Wait for the next subscribe message (a bridge connected)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.sock.poll(100):
                if self.sock.recv()[:1] == b"\x01":
                    return
                continue
            if daemon is not None and not daemon.running():
                pytest.fail("the bridge exited: %s" % daemon.describe(),
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail("no subscription from the bridge within %.1f s%s"
                            % (timeout, ": " + daemon.describe()
                               if daemon else ""), pytrace=False)

    def send(self, env_or_frames):
        frames = wire(env_or_frames) if isinstance(env_or_frames, dict) \
            else env_or_frames
        self.sock.send_multipart(frames)


def start_bridge(daemons, config, *args, wait="broker connected",
                 timeout=20.0, prefix=()):
    """fedmsg-bridge --config CONFIG; waits for `wait` on stderr (None:
    do not wait); prefix: a command that execs it (ip netns exec NS)."""
    d = daemons("fedmsg-bridge", ["--config", config] + list(args),
                config=config, prefix=prefix)
    if wait:
        d.wait_stderr(wait, timeout)
    return d


def bridge_config(bridges, endpoints=None, **extra):
    """A fedmsg-c config with these bridges (fedmsg defaults, no signing,
    no validation unless asked)."""
    cfg = bus_config(**extra)
    cfg["endpoints"] = endpoints or {}
    cfg["bridges"] = bridges
    cfg.setdefault("zmq_linger", 0)
    return cfg
