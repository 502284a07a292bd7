"""fedmsg-verify against the fedmsg 1.1.7 test vectors, and its handling of
bad input, flags and files.

    fedmsg-verify [--config PATH] [--ca FILE] [--crl FILE]
                  [--routing-policy FILE.json] [--nitpicky] [--canonical]
                  [--now EPOCH] [FILE...]

One line per message: "valid <msg_id>" or "invalid <msg_id>: <reason>"
("-" for the msg_id when there is none or the line is not JSON).  Exit 0 if
all valid, 1 if any invalid, 2 on usage or I/O errors.
"""

import base64
import calendar
import json
import re

import pytest

from conftest import (VECTORS, VECTORS_BY_NAME, VECTOR_CERTS, canonical,
                      one_verdict, unsigned, vector_path, verdicts)

CA = VECTOR_CERTS / "ca.crt"
CRL = VECTOR_CERTS / "crl.pem"


def utc(*ymd_hms):
    return calendar.timegm(tuple(ymd_hms) + (0,) * (6 - len(ymd_hms)))


def msg_id_of(rec):
    return json.loads(rec["wire_body"]).get("msg_id", "-")


def verify_args(rec, tmp_path, crl=True):
    """The validation config of a vector record as fedmsg-verify flags."""
    args = ["--ca", vector_path(rec["ca_cert"])]
    if crl and rec["crl"] is not None:
        args += ["--crl", vector_path(rec["crl"])]
    if rec["routing_policy"] is not None:
        p = tmp_path / "routing_policy.json"
        p.write_text(json.dumps(rec["routing_policy"]))
        args += ["--routing-policy", p]
    if rec["routing_nitpicky"]:
        args.append("--nitpicky")
    return args


def ids(recs):
    return [r["name"] for r in recs]


def body(name):
    return VECTORS_BY_NAME[name]["wire_body"]


def message(name):
    return json.loads(body(name))


# ---- (a) every vector gets fedmsg's verdict ------------------------------

@pytest.mark.parametrize("rec", VECTORS, ids=ids(VECTORS))
def test_vector_verdict(run, rec, tmp_path):
    r = run("fedmsg-verify", verify_args(rec, tmp_path),
            input=rec["wire_body"] + "\n")
    verdict, msg_id, reason = one_verdict(r)
    assert msg_id == msg_id_of(rec)
    want = "valid" if rec["valid"] else "invalid"
    assert verdict == want, (
        "%s: fedmsg says %s (%s; %s), fedmsg-verify says %s %s"
        % (rec["name"], want, rec["why"], rec["validate_outcome"], verdict,
           reason))


# The reason should say what is wrong.  Case-insensitive regexes.
REASONS = {
    "missing_signature": r"signature",
    "missing_certificate": r"certificate",
    "tamper_signature_one_char": r"signature",
    "tamper_body_value_changed": r"signature",
    "tamper_crypto_field_gpg": r"gpg|backend|crypto",
    "tamper_crypto_field_unknown": r"backend|crypto",
    "cert_revoked_in_crl": r"revoked",
    "cert_expired": r"expired",
    "cert_not_yet_valid": r"not yet valid",
    "cert_from_untrusted_ca": r"issuer|untrusted|chain|verify",
    "cert_without_common_name": r"common ?name|\bcn\b",
    "crl_stale_rejects_good_cert": r"crl",
    "routing_policy_violation": r"routing|policy|not allowed|authori",
    "routing_nitpicky_topic_not_in_policy": r"routing|policy|nitpicky",
    "routing_policy_cn_substring_not_enough": r"routing|policy|not allowed",
}


@pytest.mark.parametrize("name", sorted(REASONS))
def test_vector_reason(run, name, tmp_path):
    rec = VECTORS_BY_NAME[name]
    r = run("fedmsg-verify", verify_args(rec, tmp_path),
            input=rec["wire_body"] + "\n")
    verdict, _, reason = one_verdict(r)
    assert verdict == "invalid"
    assert re.search(REASONS[name], reason, re.I), \
        "%s: reason %r does not match /%s/i" % (name, reason, REASONS[name])


# ---- (b) canonical text ---------------------------------------------------

@pytest.mark.parametrize("rec", VECTORS, ids=ids(VECTORS))
def test_canonical_text(run, rec):
    """--canonical gives the text fedmsg signed, byte for byte, where the
    record says it is recomputable; for every record (tampered ones too) it
    gives fedmsg's canonical JSON of what was received."""
    r = run("fedmsg-verify", ["--canonical"], input=rec["wire_body"] + "\n")
    assert r.rc == 0, r
    if rec["canonical_matches_message"]:
        assert r.out == rec["canonical"].encode("ascii") + b"\n"
    want = canonical(unsigned(json.loads(rec["wire_body"])))
    assert r.out == want.encode("ascii") + b"\n"


RESPELLINGS = [
    r'{"msg": {"neg_zero": -0, "exp": 1E5, "trailing": 1.50, "e1": 0.1e1}}',
    r'{"msg": [1.0000000000000000001, 1e400, -1e400, 1e-400, -0.0, 5e-324]}',
    r'{"msg": [NaN, Infinity, -Infinity]}',
    r'{"msg": "\u00E9\u00e9\/\ud83d\ude00\uD83D\uDE00"}',
    r'{"msg": ["\ud800", "x\udfff", "\udc00\ud800"]}',
    r'{"msg": {"a\u0000b": "\u0000", "\u007f": "\u2028"}}',
    r'{"msg": {"dup": 1, "dup": 2}, "msg": {"dup": 3, "dup": [4]}}',
    r'{"msg": {"\ue000": 1, "\ud83d\ude00": 2, "B": 3, "_": 4, "a": 5}}',
    '{"msg": {"raw": "caf\u00e9 \u20ac \U0001f600"}}'.encode().decode(
        "unicode_escape"),
    '  \t{ "msg" : [ 1 , 2 , { } , [ ] ] , "i" : 123456789012345678901234 '
    ', "n": -98765432109876543210 }\t ',
]


@pytest.mark.parametrize("text", RESPELLINGS,
                         ids=["numbers", "float-rounding", "non-finite",
                              "escapes", "lone-surrogates", "nul-del-keys",
                              "duplicate-keys", "key-order", "raw-utf8",
                              "whitespace-bigints"])
def test_canonical_follows_python_parsing(run, text):
    """Spelling does not matter, values do: the canonical text is that of
    json.loads as Python reads it."""
    r = run("fedmsg-verify", ["--canonical"], input=text + "\n")
    assert r.rc == 0, r
    want = canonical(unsigned(json.loads(text)))
    assert r.stdout == want + "\n"


def test_canonical_three_lines(run):
    names = ["basic_ascii", "floats_required", "non_bmp_emoji"]
    text = "\n\n".join(body(n) for n in names) + "\n\n"
    r = run("fedmsg-verify", ["--canonical"], input=text)
    assert r.rc == 0, r
    got = r.stdout.split("\n")
    assert got[-1] == "" and len(got) == 4, r
    for n, line in zip(names, got):
        assert line == canonical(unsigned(message(n)))


@pytest.mark.parametrize("bad", [b'{"topic": "x",', b"\x00\x00", b" \x00 "],
                         ids=["malformed", "nul-bytes", "nul-in-blanks"])
def test_canonical_unparseable_is_exit_2(run, bad):
    text = body("basic_ascii").encode("ascii") + b"\n" + bad + b"\n"
    r = run("fedmsg-verify", ["--canonical"], input=text)
    assert r.rc == 2, r
    assert r.stderr.strip(), "no error message: %r" % r


# ---- the clock --------------------------------------------------------------

def test_now_after_crl_next_update(run):
    """crl.pem's nextUpdate is 2043-12-27: after it every message fails."""
    now = utc(2044, 6, 1)
    r = run("fedmsg-verify", ["--ca", CA, "--crl", CRL, "--now", now],
            input=body("basic_ascii"))
    verdict, _, reason = one_verdict(r)
    assert verdict == "invalid" and re.search(r"crl", reason, re.I), r
    # The same message without revocation checking is still fine then.
    r = run("fedmsg-verify", ["--ca", CA, "--now", now],
            input=body("basic_ascii"))
    assert one_verdict(r)[0] == "valid", r


def test_now_stale_crl_was_fresh_on_day_one(run):
    """crl-stale.pem was good until 2024-01-02."""
    rec = VECTORS_BY_NAME["crl_stale_rejects_good_cert"]
    args = ["--ca", CA, "--crl", vector_path(rec["crl"])]
    r = run("fedmsg-verify", args + ["--now", utc(2024, 1, 1, 12)],
            input=rec["wire_body"])
    assert one_verdict(r)[0] == "valid", r
    r = run("fedmsg-verify", args + ["--now", utc(2024, 1, 3)],
            input=rec["wire_body"])
    assert one_verdict(r)[0] == "invalid", r


def test_now_not_yet_valid_cert_becomes_valid(run):
    """notyet-app05 is valid from 2045-01-01."""
    rec = VECTORS_BY_NAME["cert_not_yet_valid"]
    r = run("fedmsg-verify", ["--ca", CA, "--now", utc(2045, 6, 1)],
            input=rec["wire_body"])
    assert one_verdict(r)[0] == "valid", r
    r = run("fedmsg-verify", ["--ca", CA, "--now", utc(2044, 6, 1)],
            input=rec["wire_body"])
    verdict, _, reason = one_verdict(r)
    assert verdict == "invalid" and re.search("not yet valid", reason, re.I)


def test_now_before_the_ca_existed(run):
    r = run("fedmsg-verify", ["--ca", CA, "--now", utc(2023, 6, 1)],
            input=body("basic_ascii"))
    assert one_verdict(r)[0] == "invalid", r


# ---- streams, files and config ----------------------------------------------

DEFAULT_CONFIG_RECS = [r for r in VECTORS if r["crl"] == "certs/crl.pem"
                       and r["routing_policy"] is None
                       and not r["routing_nitpicky"]]


def test_many_messages_in_one_stream(run):
    """One run, blank lines in between, CRLF and no final newline: one
    verdict per message, in order."""
    recs = DEFAULT_CONFIG_RECS
    parts = []
    for i, rec in enumerate(recs):
        parts.append(rec["wire_body"] + ("\r\n" if i % 3 == 0 else "\n"))
        if i % 4 == 0:
            parts.append("\n  \n")
    text = "".join(parts).rstrip("\n")
    r = run("fedmsg-verify", ["--ca", CA, "--crl", CRL], input=text)
    got = verdicts(r.stdout)
    assert len(got) == len(recs), r
    for rec, (verdict, msg_id, reason) in zip(recs, got):
        assert msg_id == msg_id_of(rec)
        assert (verdict == "valid") == rec["valid"], (rec["name"], reason)
    assert r.rc == 1, r


def test_file_arguments(run, tmp_path):
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_text(body("basic_ascii") + "\n" + body("non_ascii_text") + "\n")
    b.write_text(body("large_integers") + "\n")
    r = run("fedmsg-verify", ["--ca", CA, "--crl", CRL, a, b])
    assert r.rc == 0, r
    assert [v[1] for v in verdicts(r.stdout)] == [
        msg_id_of(VECTORS_BY_NAME[n])
        for n in ("basic_ascii", "non_ascii_text", "large_integers")]
    assert all(v[0] == "valid" for v in verdicts(r.stdout))

    c = tmp_path / "c.jsonl"
    c.write_text(body("tamper_i_changed") + "\n")
    r = run("fedmsg-verify", ["--ca", CA, "--crl", CRL, a, c])
    assert r.rc == 1, r
    assert [v[0] for v in verdicts(r.stdout)] == ["valid", "valid",
                                                   "invalid"]


def test_config_gives_ca_and_crl(run, tmp_path):
    cfg = tmp_path / "fedmsg.json"
    cfg.write_text(json.dumps({"ca_cert_location": str(CA),
                               "crl_location": str(CRL)}))
    r = run("fedmsg-verify", ["--config", cfg], input=body("basic_ascii"))
    assert one_verdict(r)[0] == "valid", r
    r = run("fedmsg-verify", ["--config", cfg],
            input=body("cert_revoked_in_crl"))
    verdict, _, reason = one_verdict(r)
    assert verdict == "invalid" and re.search("revoked", reason, re.I), r


def test_no_ca_is_a_usage_error(run):
    r = run("fedmsg-verify", [], input=body("basic_ascii"))
    assert r.rc == 2, r
    assert re.search(r"--ca|ca_cert_location|\bca\b|certificate authority",
                     r.stderr, re.I), r
    assert r.stdout == "", r


def test_missing_ca_file(run, tmp_path):
    missing = tmp_path / "no-such-ca.crt"
    r = run("fedmsg-verify", ["--ca", missing], input=body("basic_ascii"))
    assert r.rc == 2, r
    assert str(missing) in r.stderr, r


def test_missing_input_file(run, tmp_path):
    missing = tmp_path / "no-such-file.jsonl"
    r = run("fedmsg-verify", ["--ca", CA, missing])
    assert r.rc == 2, r
    assert str(missing) in r.stderr, r


def test_unknown_flag(run):
    r = run("fedmsg-verify", ["--ca", CA, "--frobnicate"],
            input=body("basic_ascii"))
    assert r.rc == 2, r
    assert re.search(r"frobnicate|usage|unrecognized|unknown", r.stderr,
                     re.I), r


# ---- (e) bad input -------------------------------------------------------

def bad_line(run, raw, reason_re):
    """raw (bytes, one line) gives "invalid -: <reason>" and exit 1."""
    r = run("fedmsg-verify", ["--ca", CA, "--crl", CRL], input=raw + b"\n")
    verdict, msg_id, reason = one_verdict(r)
    assert (verdict, msg_id) == ("invalid", "-"), r
    assert re.search(reason_re, reason, re.I), \
        "reason %r does not match /%s/i" % (reason, reason_re)
    return r


PARSE_ERR = (r"json|pars|expect|unexpected|end|invalid|syntax|token|eof|extra"
             r"|unterminated|control|escape|delimiter")


@pytest.mark.parametrize("raw", [
    b'{"topic": "x",',
    b'{"topic": "x"',
    b"{'topic': 'x'}",
    b'{"topic": "x"} trailing',
    b'{"a": 01}',
    b"{,}",
    b"}",
    b'"just a string',
], ids=["trailing-comma", "unclosed", "single-quotes", "extra-data",
        "leading-zero", "empty-member", "close-brace", "unterminated"])
def test_malformed_json(run, raw):
    bad_line(run, raw, PARSE_ERR)


@pytest.mark.parametrize("raw", [b"[1, 2, 3]", b'"text"', b"42", b"null"],
                         ids=["array", "string", "number", "null"])
def test_not_an_object(run, raw):
    bad_line(run, raw, r"object|" + PARSE_ERR)


@pytest.mark.parametrize("raw", [
    b'{"topic": "caf\xc3", "msg_id": "m1"}',
    b'{"topic": "\xe2\x82", "msg_id": "m1"}',
    b'{"topic": "\xff", "msg_id": "m1"}',
    b'{"topic": "x", "msg_id": "m1", "a": "\xf0\x9f\x98"}',
], ids=["cut-2-byte", "cut-3-byte", "byte-ff", "cut-4-byte"])
def test_truncated_utf8(run, raw):
    bad_line(run, raw, r"utf-?8|encoding|unicode|byte")


def test_too_large(run):
    raw = b'{"topic": "t", "msg_id": "big", "msg": "' + b"x" * (10 << 20) \
        + b'"}'
    bad_line(run, raw, r"too (large|big|long)|exceed|limit|maximum|size")


def test_too_deep(run):
    n = 100000
    raw = b'{"topic": "t", "msg_id": "deep", "msg": ' + b"[" * n + b"]" * n \
        + b"}"
    bad_line(run, raw, r"depth|nest|deep")


def test_nul_bytes_then_next_line(run):
    """Raw NUL bytes are not JSON; the next line is still read."""
    raw = b'{"topic": "a\x00b", "msg_id": "nul"}\n\x00\x00\n' + \
        body("basic_ascii").encode("ascii") + b"\n"
    r = run("fedmsg-verify", ["--ca", CA, "--crl", CRL], input=raw)
    got = verdicts(r.stdout)
    assert len(got) == 3, r
    assert got[0][:2] == ("invalid", "-") and got[0][2], r
    assert got[1][:2] == ("invalid", "-") and got[1][2], r
    assert got[2][:2] == ("valid", msg_id_of(VECTORS_BY_NAME["basic_ascii"]))
    assert r.rc == 1, r


def tampered(name="basic_ascii", **changes):
    m = message(name)
    for k, v in changes.items():
        if v is None:
            m.pop(k, None)
        else:
            m[k] = v
    return json.dumps(m), m["msg_id"]


def check_invalid(run, text, msg_id, reason_re):
    r = run("fedmsg-verify", ["--ca", CA, "--crl", CRL], input=text + "\n")
    verdict, got_id, reason = one_verdict(r)
    assert (verdict, got_id) == ("invalid", msg_id), r
    assert re.search(reason_re, reason, re.I), \
        "reason %r does not match /%s/i" % (reason, reason_re)


def test_missing_signature_field(run):
    text, mid = tampered(signature=None)
    check_invalid(run, text, mid, r"signature")


def test_certificate_not_pem(run):
    cert = base64.b64encode(b"this is not a PEM certificate\n").decode()
    text, mid = tampered(certificate=cert)
    check_invalid(run, text, mid, r"certificate|pem|x\.?509")


def test_certificate_pem_garbage_inside(run):
    pem = (b"-----BEGIN CERTIFICATE-----\nAAAA\n"
           b"-----END CERTIFICATE-----\n")
    text, mid = tampered(certificate=base64.b64encode(pem).decode())
    check_invalid(run, text, mid, r"certificate|pem|x\.?509|asn|der|pars")


@pytest.mark.parametrize("field", ["signature", "certificate"])
@pytest.mark.parametrize("bad", ["QUJDRA=", "QUJDR", "Q", "QUJD=A==",
                                 "!!!!", ""],
                         ids=["short-pad", "no-pad", "one-char",
                              "pad-in-middle", "no-alphabet", "empty"])
def test_bad_base64(run, field, bad):
    text, mid = tampered(**{field: bad})
    check_invalid(run, text, mid,
                  r"base ?64|padding|decod|" + field + r"|pem|empty")


@pytest.mark.parametrize("field,value", [
    ("signature", 12345), ("certificate", ["x"]), ("crypto", 1),
    ("signature", None), ("certificate", None),
], ids=["sig-int", "cert-list", "crypto-int", "no-sig", "no-cert"])
def test_field_of_wrong_type(run, field, value):
    m = message("basic_ascii")
    if value is None:
        del m[field]
    else:
        m[field] = value
    check_invalid(run, json.dumps(m), m["msg_id"],
                  r"signature|certificate|crypto|field|type|missing")

