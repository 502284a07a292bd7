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
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
VECTORS_DIR = DATA / "vectors"
VECTOR_CERTS = VECTORS_DIR / "certs"
MKCERTS = REPO / "certs" / "mkcerts.sh"
FM_BIN = Path(os.environ.get("FM_BIN") or REPO / "build" / "bin")

TIMEOUT = 30

SANITIZER_RE = re.compile(
    r"ERROR: (Address|Leak|Memory|Thread|UndefinedBehavior)Sanitizer"
    r"|runtime error:"
    r"|SUMMARY: \w+Sanitizer")


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
        argv = [exe] + [str(a) for a in args]
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
