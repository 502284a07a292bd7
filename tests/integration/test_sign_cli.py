"""fedmsg-sign: byte-for-byte against fedmsg 1.1.7's signatures, checked
independently with python3-cryptography, bad input, and the development
PKI made by certs/mkcerts.sh.

    fedmsg-sign --cert FILE --key FILE [--config PATH]

reads one envelope on stdin, drops any signature/certificate, sets crypto to
"x509", signs, and prints the signed envelope as one line of canonical JSON.
Exit 0; 1 on bad input; 2 on usage or I/O errors.
"""

import base64
import json
import os
import re
import subprocess

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conftest import (FM_BIN, FM_PLUGINS, MKCERTS, REPO, TIMEOUT, VECTORS,
                      VECTORS_BY_NAME, VECTOR_CERTS, assert_no_sanitizer,
                      canonical, one_verdict, unsigned, vector_path, wrap76)

CA = VECTOR_CERTS / "ca.crt"
CRL = VECTOR_CERTS / "crl.pem"
ALPHA_CRT = VECTOR_CERTS / "alpha-app01.vectors.example.org.crt"
ALPHA_KEY = VECTOR_CERTS / "alpha-app01.vectors.example.org.key"

VALID = [r for r in VECTORS if r["valid"]]


def cert_key_of(rec):
    key = vector_path(rec["signed_with"])
    return key.with_suffix(".crt"), key


def expected_signed(rec):
    """What fedmsg-sign must print for a valid record: the record's own
    signature and certificate (re-wrapped at 76 columns, which is a no-op
    except for valid_signature_rewrapped), as canonical JSON."""
    m = json.loads(rec["wire_body"])
    sig = wrap76(base64.b64decode(m["signature"]))
    cert = wrap76(base64.b64decode(m["certificate"]))
    if rec["name"] != "valid_signature_rewrapped":
        assert (sig, cert) == (m["signature"], m["certificate"])
    out = dict(unsigned(m), crypto="x509", signature=sig, certificate=cert)
    return out, canonical(out) + "\n"


def scrambled(obj):
    """The same envelope as non-canonical JSON text: keys in reverse order,
    Python's default separators, non-ASCII written raw."""
    return json.dumps(dict(reversed(list(obj.items()))), ensure_ascii=False)


def check_with_cryptography(signed):
    """Verify a signed envelope with python3-cryptography alone: RSA PKCS#1
    v1.5 + SHA-1 over fedmsg's canonical JSON of the envelope minus
    signature/certificate, with the public key of the embedded cert."""
    pem = base64.b64decode(signed["certificate"])
    cert = x509.load_pem_x509_certificate(pem)
    pub = cert.public_key()
    assert isinstance(pub, rsa.RSAPublicKey)
    sig = base64.b64decode(signed["signature"])
    assert len(sig) == pub.key_size // 8
    text = canonical(unsigned(signed)).encode("ascii")
    try:
        pub.verify(sig, text, padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature:
        pytest.fail("python3-cryptography says the signature is bad")
    return cert


def first_pem(path):
    data = path.read_bytes()
    cert = x509.load_pem_x509_certificate(data)
    from cryptography.hazmat.primitives.serialization import Encoding
    return cert.public_bytes(Encoding.PEM)


# ---- (c) the same bytes as fedmsg ---------------------------------------------

_signed = {}


def sign_vector(sign, rec):
    """fedmsg-sign's output for a valid record's unsigned envelope (given
    as non-canonical text), cached: tests (c) and (d) share one run."""
    if rec["name"] not in _signed:
        crt, key = cert_key_of(rec)
        _signed[rec["name"]] = sign(
            scrambled(unsigned(json.loads(rec["wire_body"]))), crt, key)
    return _signed[rec["name"]]


@pytest.mark.parametrize("rec", VALID, ids=[r["name"] for r in VALID])
def test_sign_reproduces_vector(sign, rec):
    want_obj, want_line = expected_signed(rec)
    r, got = sign_vector(sign, rec)
    assert got["signature"] == want_obj["signature"]
    assert got["certificate"] == want_obj["certificate"]
    assert r.out == want_line.encode("ascii")


# ---- (d) an independent check --------------------------------------------------

@pytest.mark.parametrize("rec", VALID, ids=[r["name"] for r in VALID])
def test_signature_verifies_with_cryptography(sign, rec):
    crt, _ = cert_key_of(rec)
    _, got = sign_vector(sign, rec)
    cert = check_with_cryptography(got)
    # The embedded certificate is the first one of the .crt file, as PEM.
    from cryptography.hazmat.primitives.serialization import Encoding
    assert cert.public_bytes(Encoding.PEM) == first_pem(crt)
    assert base64.b64decode(got["certificate"]) == first_pem(crt)


def test_old_signature_and_certificate_are_dropped(sign):
    rec = VECTORS_BY_NAME["basic_ascii"]
    m = json.loads(rec["wire_body"])
    m["signature"] = "c3RhbGU=\n"
    m["certificate"] = "c3RhbGU=\n"
    r, _ = sign(m, ALPHA_CRT, ALPHA_KEY)
    assert r.out == expected_signed(rec)[1].encode("ascii")


def test_crypto_field_is_set(sign):
    rec = VECTORS_BY_NAME["basic_ascii"]
    m = unsigned(json.loads(rec["wire_body"]))
    del m["crypto"]
    r, got = sign(m, ALPHA_CRT, ALPHA_KEY)
    assert got["crypto"] == "x509"
    assert r.out == expected_signed(rec)[1].encode("ascii")
    m["crypto"] = "gpg"
    r, got = sign(m, ALPHA_CRT, ALPHA_KEY)
    assert r.out == expected_signed(rec)[1].encode("ascii")


def verify(run, text, *args):
    return run("fedmsg-verify", ["--ca", CA, "--crl", CRL] + list(args),
               input=text)


def test_sign_then_verify_round_trip(run, sign):
    m = {"topic": "org.fedoraproject.dev.test.round_trip",
         "msg": {"text": "caf\u00e9 \U0001f600 \u2028 \x7f \x00 /\\\"",
                 "list": [1, -2, 3.5, None, True, False, "", {}, []],
                 "\ue000": 1, "\U0001f600": 2, "B": 3, "_": 4, "a": 5},
         "msg_id": "2026-00000000-0000-4000-8000-000000000001",
         "i": 7, "timestamp": 1795783496, "username": "tester"}
    r, got = sign(m, ALPHA_CRT, ALPHA_KEY)
    assert r.out == (canonical(dict(got)) + "\n").encode("ascii")
    assert unsigned(got) == dict(m, crypto="x509")
    check_with_cryptography(got)
    v = verify(run, r.out)
    assert one_verdict(v) == ("valid", m["msg_id"], ""), v


def test_sign_values_only_python_has(run, sign):
    """NaN/Infinity, lone surrogates, NUL in keys, integers beyond 64 bits:
    a Python publisher can sign them, so fedmsg-c must too."""
    text = ('{"topic": "org.fedoraproject.dev.test.odd", "msg_id": "odd", '
            '"i": 1, "timestamp": 1795783496, "username": "tester", '
            '"msg": {"nan": NaN, "inf": Infinity, "ninf": -Infinity, '
            '"lone": "\\ud800", "pair": "\\ud83d\\ude00", '
            '"k\\u0000ey": 18446744073709551616, "neg": -0}}')
    r, got = sign(text, ALPHA_CRT, ALPHA_KEY)
    assert r.out == (canonical(got) + "\n").encode("ascii")
    # (NaN != NaN, so compare the canonical texts, not the dicts.)
    assert canonical(unsigned(got)) == canonical(dict(json.loads(text),
                                                      crypto="x509"))
    assert '"nan":NaN' in r.stdout and '"ninf":-Infinity' in r.stdout
    assert '"lone":"\\ud800"' in r.stdout
    check_with_cryptography(got)
    assert one_verdict(verify(run, r.out))[0] == "valid"


FLOATS = [0.1, 1e-07, 1e22, 1e16, 1e15, 9999999999999998.0, 0.0001,
          0.00001, 3.0, -0.0, 0.0, 1234567.891, 0.1 + 0.2, 1 / 3, 5e-324,
          1.7976931348623157e308, 123456789012345678.0, 2.0 ** 70, 1e100,
          2.2250738585072014e-308, -1.5e-310]


def test_floats_are_written_as_python_repr(run, sign):
    m = {"topic": "org.fedoraproject.dev.test.floats", "msg": FLOATS,
         "msg_id": "floats", "i": 1, "timestamp": 1700000000.0,
         "username": "tester"}
    r, got = sign(m, ALPHA_CRT, ALPHA_KEY)
    assert r.out == (canonical(got) + "\n").encode("ascii")
    assert ('"msg":[' + ",".join(repr(x) for x in FLOATS) + "]") in r.stdout
    assert '"timestamp":1700000000.0' in r.stdout
    check_with_cryptography(got)
    assert one_verdict(verify(run, r.out))[0] == "valid"


@pytest.mark.parametrize("sign_", [1, -1], ids=["positive", "negative"])
def test_400_digit_integer(run, sign, sign_):
    big = sign_ * (10 ** 399 + 1234567890123456789)   # exactly 400 digits
    assert len(str(abs(big))) == 400
    m = {"topic": "org.fedoraproject.dev.test.bigint",
         "msg": {"big": big, "list": [big, -big, 2 ** 64, -2 ** 63 - 1]},
         "msg_id": "bigint", "i": 1, "timestamp": 1795783496,
         "username": "tester"}
    r, got = sign(m, ALPHA_CRT, ALPHA_KEY)
    assert got["msg"]["big"] == big
    assert str(big) in r.stdout
    assert r.out == (canonical(got) + "\n").encode("ascii")
    check_with_cryptography(got)
    v = verify(run, r.out)
    assert one_verdict(v)[0] == "valid", v
    c = run("fedmsg-verify", ["--canonical"], input=r.out)
    assert c.rc == 0, c
    assert c.stdout == canonical(unsigned(got)) + "\n"
    assert str(big) in c.stdout


def test_msg_id_cannot_forge_output_lines(run, sign):
    """fedmsg-verify prints one line per message whatever the msg_id."""
    m = {"topic": "org.fedoraproject.dev.test.evil", "msg": {},
         "msg_id": "x\nvalid forged\r\ninvalid y: z", "i": 1,
         "timestamp": 1795783496, "username": "tester"}
    r, got = sign(m, ALPHA_CRT, ALPHA_KEY)
    check_with_cryptography(got)
    v = verify(run, r.out)
    assert v.rc == 0, v
    lines = v.stdout.split("\n")
    assert len(lines) == 2 and lines[1] == "", \
        "one message must give one output line: %r" % v
    assert lines[0].startswith("valid "), v


# ---- (e) bad input and usage -----------------------------------------------

def sign_fails(run, raw, reason_re, rc=1):
    r = run("fedmsg-sign", ["--cert", ALPHA_CRT, "--key", ALPHA_KEY],
            input=raw)
    assert r.rc == rc, r
    assert r.out == b"", "nothing may be printed on failure: %r" % r
    assert re.search(reason_re, r.stderr, re.I), \
        "stderr %r does not match /%s/i" % (r.stderr, reason_re)
    return r


PARSE_ERR = (r"json|pars|expect|unexpected|end|invalid|syntax|token|eof|extra"
             r"|unterminated|control|escape|delimiter")


@pytest.mark.parametrize("raw", [
    b'{"topic": "x",', b'{"topic": "x"', b"{'topic': 'x'}",
    b'{"topic": "x"} {"topic": "y"}', b"", b"   \n",
], ids=["trailing-comma", "unclosed", "single-quotes", "two-documents",
        "empty", "blank"])
def test_sign_malformed_json(run, raw):
    sign_fails(run, raw, PARSE_ERR + r"|empty|no input|nothing")


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"x"', b"3", b"null"],
                         ids=["array", "string", "number", "null"])
def test_sign_not_an_object(run, raw):
    sign_fails(run, raw, r"object")


@pytest.mark.parametrize("raw", [
    b'{"topic": "caf\xc3"}', b'{"topic": "\xe2\x82"}', b'{"topic": "\xff"}',
], ids=["cut-2-byte", "cut-3-byte", "byte-ff"])
def test_sign_truncated_utf8(run, raw):
    sign_fails(run, raw, r"utf-?8|encoding|unicode|byte")


def test_sign_nul_bytes(run):
    sign_fails(run, b'{"topic": "a\x00b"}', PARSE_ERR + r"|nul|control")


def test_sign_too_large(run):
    raw = b'{"topic": "t", "msg": "' + b"x" * (10 << 20) + b'"}'
    sign_fails(run, raw, r"too (large|big|long)|exceed|limit|maximum|size")


def test_sign_too_deep(run):
    n = 100000
    raw = b'{"topic": "t", "msg": ' + b"[" * n + b"]" * n + b"}"
    sign_fails(run, raw, r"depth|nest|deep")


def test_sign_unknown_flag(run):
    r = run("fedmsg-sign", ["--cert", ALPHA_CRT, "--key", ALPHA_KEY,
                            "--frobnicate"], input=b"{}")
    assert r.rc == 2, r
    assert r.out == b""
    assert re.search(r"frobnicate|usage|unrecognized|unknown", r.stderr,
                     re.I), r


@pytest.mark.parametrize("args", [
    ["--cert", ALPHA_CRT], ["--key", ALPHA_KEY], [],
], ids=["no-key", "no-cert", "nothing"])
def test_sign_missing_required_flag(run, args):
    r = run("fedmsg-sign", args, input=b"{}")
    assert r.rc == 2, r
    assert r.out == b""
    assert re.search(r"--cert|--key|usage|required|missing", r.stderr,
                     re.I), r


@pytest.mark.parametrize("which", ["cert", "key"])
def test_sign_missing_file(run, tmp_path, which):
    missing = tmp_path / ("missing." + which)
    args = {"cert": ALPHA_CRT, "key": ALPHA_KEY}
    args[which] = missing
    r = run("fedmsg-sign", ["--cert", args["cert"], "--key", args["key"]],
            input=b'{"topic": "t"}')
    assert r.rc == 2, r
    assert r.out == b""
    assert str(missing) in r.stderr, r


def test_sign_key_file_is_not_a_key(run, tmp_path):
    junk = tmp_path / "junk.key"
    junk.write_text("not a key\n")
    r = run("fedmsg-sign", ["--cert", ALPHA_CRT, "--key", junk],
            input=b'{"topic": "t"}')
    assert r.rc == 2, r
    assert r.out == b""
    assert str(junk) in r.stderr or re.search(r"key", r.stderr, re.I), r


# ---- (f) the development PKI from certs/mkcerts.sh --------------------------

DEFAULT_SERVICES = ["shell-localhost", "relay-localhost", "hub-localhost",
                    "bridge-localhost", "signing_relay-localhost"]


def demo_envelope(n=1):
    return {"topic": "org.fedoraproject.dev.demo.hello",
            "msg": {"hello": "world", "n": n},
            "msg_id": "2026-11111111-2222-4333-8444-55555555555%d" % n,
            "i": n, "timestamp": 1795783496, "username": "tester"}


def test_dev_pki_files(dev_pki):
    from cryptography.x509.oid import NameOID
    ca = x509.load_pem_x509_certificate((dev_pki / "ca.crt").read_bytes())
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value \
        == "fedmsg-c Development CA"
    for stem in DEFAULT_SERVICES + ["revoked"]:
        c = x509.load_pem_x509_certificate(
            (dev_pki / (stem + ".crt")).read_bytes())
        cn = c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        assert [a.value for a in cn] == [stem]
        assert c.issuer == ca.subject
        assert c.public_key().key_size == 2048
        assert c.signature_hash_algorithm.name == "sha256"
        bc = c.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.value.ca is False
        days = (c.not_valid_after - c.not_valid_before).days
        assert days == 825, days
        key = (dev_pki / (stem + ".key")).read_text()
        assert key.startswith("-----BEGIN ") and "ENCRYPTED" not in key
    crl = x509.load_pem_x509_crl((dev_pki / "crl.pem").read_bytes())
    assert crl.is_signature_valid(ca.public_key())
    revoked = x509.load_pem_x509_certificate(
        (dev_pki / "revoked.crt").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(
        revoked.serial_number) is not None
    assert len(list(crl)) == 1
    assert (crl.next_update - crl.last_update).days == 365


def test_mkcerts_is_idempotent(dev_pki):
    before = {p.name: p.read_bytes() for p in dev_pki.iterdir()
              if p.is_file()}
    p = subprocess.run(["sh", str(MKCERTS), str(dev_pki)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=TIMEOUT)
    assert p.returncode == 0, p
    assert b"exists" in p.stdout + p.stderr
    after = {p.name: p.read_bytes() for p in dev_pki.iterdir()
             if p.is_file()}
    assert before == after


@pytest.mark.parametrize("service", DEFAULT_SERVICES)
def test_dev_pki_sign_and_verify(run, sign, dev_pki, service):
    r, got = sign(demo_envelope(), dev_pki / (service + ".crt"),
                  dev_pki / (service + ".key"))
    check_with_cryptography(got)
    v = run("fedmsg-verify", ["--ca", dev_pki / "ca.crt",
                              "--crl", dev_pki / "crl.pem"], input=r.out)
    assert one_verdict(v) == ("valid", got["msg_id"], ""), v
    # Not valid under another CA (the vectors' one).
    v = verify(run, r.out)
    assert one_verdict(v)[0] == "invalid", v


def test_dev_pki_revoked(run, sign, dev_pki):
    r, got = sign(demo_envelope(2), dev_pki / "revoked.crt",
                  dev_pki / "revoked.key")
    check_with_cryptography(got)
    v = run("fedmsg-verify", ["--ca", dev_pki / "ca.crt",
                              "--crl", dev_pki / "crl.pem"], input=r.out)
    verdict, msg_id, reason = one_verdict(v)
    assert (verdict, msg_id) == ("invalid", got["msg_id"]), v
    assert "revoked" in reason.lower(), v
    # Without a CRL there is no revocation check (as in fedmsg).
    v = run("fedmsg-verify", ["--ca", dev_pki / "ca.crt"], input=r.out)
    assert one_verdict(v)[0] == "valid", v


def test_run_demo(tmp_path):
    """tests/run-demo.sh (what `make run` shows) with the tools under
    test: it must succeed, showing one valid and one invalid verdict."""
    for t in ("fedmsg-sign", "fedmsg-verify"):
        if not os.access(FM_BIN / t, os.X_OK):
            pytest.fail("%s not found in FM_BIN=%s" % (t, FM_BIN),
                        pytrace=False)
    build = tmp_path / "build"
    build.mkdir()
    (build / "bin").symlink_to(FM_BIN)
    # the hub part of the demo loads the consumer plugins
    (build / "plugins").symlink_to(FM_PLUGINS)
    p = subprocess.run(["sh", str(REPO / "tests" / "run-demo.sh"),
                        str(build)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    assert_no_sanitizer(err + out, "run-demo.sh")
    assert p.returncode == 0, out + err
    assert re.search(r"^valid \S+$", out, re.M), out
    assert re.search(r"^invalid \S+: ", out, re.M), out
    assert "Demo OK" in out
    assert (build / "dev" / "ca.crt").exists()
