"""The duplicate-key forgery (and non-string topics) against every path.

Python's json.loads keeps the LAST copy of a duplicated key, and so does
fedmsg-c's parser, so a signature checks out over the last copies; many
other readers (cJSON, RapidJSON, gjson, scripts, an `exec` program) keep
the FIRST.  Fields put in front of a genuine signed body therefore reach
those readers under a valid signature.  fedmsg-c refuses any envelope
holding a key twice (at any depth, keys compared after decoding escapes):
fedmsg-verify says `invalid ... (duplicate_key)`, and fm_msg_parse(), which
every daemon parses with, drops it whether or not it validates.

Each forged variant is built from a real signed vector
(tests/data/vectors/signed.jsonl) or from an envelope signed with the
vectors' alpha key; a genuine message sent after it shows that the path
was open, so "the forgery never arrived" is not a timing accident.
"""

import json
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import (ALPHA_CRT, ALPHA_KEY, REPO, VECTOR_CA, VECTOR_CERTS,
                      VECTOR_CRL, VECTORS, VECTORS_BY_NAME, BridgeSource,
                      HubProbes, Probes, ProtonListener, Sub, active_publisher,
                      answer_link, bridge_config, bridge_stats, bus_config,
                      canonical, fast_sign, free_ports, frame_matches_body,
                      hub_config, hub_mark, hub_sync, is_default_config,
                      make_envelope, project_plugin, relay_stats, start_bridge,
                      start_relay, sync_tail, finish_tail, tcp,
                      valid_by_default, vector_path, vector_validation,
                      verdicts, wait_until, write_config, zmq_module, zsocket)

EVIL = "org.fedoraproject.prod.EVIL"
BETA_CN = "beta-pkgs02.vectors.example.org"
PEER_FEDMSG = REPO.parent / "shared" / "peers" / "fedmsg"


# ---- the forged variants ---------------------------------------------------

def _after_brace(body, text):
    assert body.startswith(b"{"), body[:40]
    return b"{" + text + body[1:]


def _in_msg(body, text):
    """text inserted at the start of the top-level "msg" object."""
    m = re.search(rb'"msg"\s*:\s*\{', body)
    assert m, body[:200]
    return body[:m.end()] + text + body[m.end():]


def forge(body, kind):
    """A forged copy of a signed body (bytes) that still validates under
    last-wins parsing; readers keeping the first copy see the attacker's."""
    env = json.loads(body)
    if kind == "prefix":
        # the example, verbatim
        return _after_brace(body, b'"msg":{"action":"delete-everything"},'
                            b'"msg_id":"--evil","topic":"' +
                            EVIL.encode() + b'",')
    if kind == "escaped_key":
        # readers that do not decode key escapes see two different keys
        return _after_brace(body, b'"m\\u0073g":{"action":'
                            b'"delete-everything"},')
    if kind == "topic":
        # a first topic that routing_policy never looked at
        return _after_brace(body, b'"topic":"' + EVIL.encode() + b'",')
    if kind == "nested":
        k = next(iter(env["msg"]))
        return _in_msg(body, json.dumps(k).encode() + b':"evil",')
    raise ValueError(kind)


KINDS = ("prefix", "escaped_key", "topic", "nested")


def forgeable(rec):
    """Valid vectors (default config) whose msg is a non-empty object and
    whose topic frame is the body's topic: the ones every variant applies
    to."""
    if not (is_default_config(rec) and rec["valid"] and
            frame_matches_body(rec)):
        return False
    msg = json.loads(rec["wire_body"]).get("msg")
    return isinstance(msg, dict) and len(msg) > 0 and \
        re.search(r'"msg"\s*:\s*\{', rec["wire_body"]) is not None


BASES = [r for r in VECTORS if forgeable(r)]
BASIC = VECTORS_BY_NAME["basic_ascii"]


def array_forgery():
    """A duplicate inside an object in an array inside msg, on an envelope
    signed with the vectors' alpha key."""
    env = fast_sign(make_envelope("org.fedoraproject.dev.forgery.array", {
        "builds": [{"nvr": "bash-5.2"}, {"nvr": "glibc-2.38",
                                         "state": "ok"}]}))
    body = canonical(env).encode()
    forged = body.replace(b'{"nvr":"glibc-2.38"',
                          b'{"nvr":"evil-1.0","nvr":"glibc-2.38"', 1)
    assert forged != body
    return env, body, forged


def all_forgeries(rec=BASIC):
    body = rec["wire_body"].encode()
    out = [forge(body, k) for k in KINDS]
    out.append(array_forgery()[2])
    return out


def first_copy_differs(forged, genuine):
    """Sanity: a reader keeping the first copy sees other content, and
    Python (last copy) sees the genuine message."""
    first = json.loads(forged, object_pairs_hook=lambda p: dict(reversed(p)))
    assert json.loads(forged) == json.loads(genuine)
    return first != json.loads(genuine)


def test_variants_fool_first_copy_readers():
    for rec in BASES:
        for k in KINDS:
            f = forge(rec["wire_body"].encode(), k)
            assert first_copy_differs(f, rec["wire_body"].encode()), \
                (rec["name"], k)
    _, body, forged = array_forgery()
    assert first_copy_differs(forged, body)
    assert len(BASES) >= 15


# ---- fedmsg-verify ---------------------------------------------------------

def verify_args(rec=None):
    rec = rec or BASIC
    args = ["--ca", vector_path(rec["ca_cert"])]
    if rec["crl"]:
        args += ["--crl", vector_path(rec["crl"])]
    return args


def test_verify_rejects_every_variant(run):
    lines, want_ids = [], []
    for rec in BASES:
        body = rec["wire_body"].encode()
        for k in KINDS:
            lines.append(forge(body, k))
            want_ids.append(json.loads(body)["msg_id"])
    env, _, forged = array_forgery()
    lines.append(forged)
    want_ids.append(env["msg_id"])
    r = run("fedmsg-verify", verify_args(), input=b"\n".join(lines) + b"\n")
    got = verdicts(r.stdout)
    assert len(got) == len(lines), r
    for (verdict, msg_id, reason), want in zip(got, want_ids):
        assert verdict == "invalid", r
        assert msg_id == want               # Python's (last) copy, shown
        assert reason.endswith("(duplicate_key)"), reason
        assert "duplicate key " in reason, reason
    assert r.rc == 1
    # and each genuine body is still valid
    r = run("fedmsg-verify", verify_args(),
            input="".join(rec["wire_body"] + "\n" for rec in BASES))
    assert [v for v, _, _ in verdicts(r.stdout)] == ["valid"] * len(BASES)


def test_verify_names_the_key(run):
    body = BASIC["wire_body"].encode()
    r = run("fedmsg-verify", verify_args(), input=forge(body, "escaped_key"))
    assert r.rc == 1
    assert re.fullmatch(r'invalid \S+: duplicate key "msg" in the object at '
                        r'byte 0: .* \(duplicate_key\)\n', r.stdout), r
    r = run("fedmsg-verify", verify_args(), input=forge(body, "nested"))
    m = re.fullmatch(r'invalid \S+: duplicate key "(.*)" in the object at '
                     r'byte (\d+): .* \(duplicate_key\)\n', r.stdout)
    assert m, r
    assert m.group(1) == next(iter(json.loads(body)["msg"]))
    assert body[int(m.group(2)):int(m.group(2)) + 1] == b"{"
    # --canonical shows what Python checks the signature against: the
    # genuine message's text, which is why the forgery validated in fedmsg
    r = run("fedmsg-verify", ["--canonical"], input=forge(body, "prefix"))
    assert r.rc == 0
    assert r.stdout == BASIC["canonical"] + "\n"


def test_every_vector_keeps_its_verdict(run, tmp_path):
    """No genuine message is lost: each vector under its own config."""
    for rec in VECTORS:
        args = verify_args(rec)
        if rec["routing_policy"] is not None:
            p = tmp_path / ("%s.json" % rec["name"])
            p.write_text(json.dumps(rec["routing_policy"]))
            args += ["--routing-policy", p]
        if rec["routing_nitpicky"]:
            args.append("--nitpicky")
        r = run("fedmsg-verify", args, input=rec["wire_body"] + "\n")
        (verdict, _, reason), = verdicts(r.stdout)
        assert verdict == ("valid" if rec["valid"] else "invalid"), \
            (rec["name"], r)
        assert "duplicate_key" not in reason, (rec["name"], reason)
        if "(bad_field)" in reason:     # a missing signature/certificate
            assert rec["name"].startswith("missing_"), (rec["name"], reason)


def peer_sign(envs):
    """Sign envelopes with the real fedmsg 1.1.7 (fedmsg.crypto.sign) and
    return the bodies it would publish (fedmsg.encoding.dumps)."""
    code = (
        "import json, sys\n"
        "import fedmsg.crypto, fedmsg.encoding\n"
        "cfg = dict(crypto_backend='x509', crypto_validate_backends="
        "['x509'], ssldir=sys.argv[1], certname=sys.argv[2])\n"
        "for line in sys.stdin:\n"
        "    m = fedmsg.crypto.sign(json.loads(line), **cfg)\n"
        "    print(fedmsg.encoding.dumps(m))\n")
    env = dict(os.environ, PYTHONPATH=str(PEER_FEDMSG))
    p = subprocess.run(
        ["/usr/bin/python3", "-c", code, str(VECTOR_CERTS),
         Path(ALPHA_KEY).stem],
        input="".join(json.dumps(e) + "\n" for e in envs).encode(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode().splitlines()


@pytest.mark.skipif(not PEER_FEDMSG.is_dir(),
                    reason="/work/shared/peers/fedmsg is absent: the real "
                    "fedmsg peer cannot be run")
def test_real_fedmsg_output_is_accepted(run):
    envs = [make_envelope("org.fedoraproject.dev.peer.x", m) for m in (
        {"a": 1, "b": [{"c": 1}, {"c": 2}], "d": {"e": {"f": None}}},
        {"msg": {"msg": "nested keys named like the envelope's"},
         "topic": "x", "signature": "y"},
        {"\u00e9": "caf\u00e9", "e\u0301": 1, "": 0, "\ud83d\ude00": [{}]},
        [], "text", 1.5)]
    bodies = peer_sign(envs)
    assert len(bodies) == len(envs)
    r = run("fedmsg-verify", verify_args(),
            input="".join(b + "\n" for b in bodies))
    assert [v for v, _, _ in verdicts(r.stdout)] == ["valid"] * len(envs), r


# ---- non-string topics -----------------------------------------------------

def test_verify_refuses_non_string_topic(run, tmp_path):
    """Only beta may publish on the topic; alpha signs it as a list (or
    other non-string, or with a NUL) so that routing_policy, which cannot
    read it, used to be skipped."""
    topic = "org.fedoraproject.dev.bodhi.update"
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({topic: [BETA_CN]}))
    bodies, want = [], []
    for t, why in (([topic], "'topic' is not a string"),
                   (7, "'topic' is not a string"),
                   ({"t": topic}, "'topic' is not a string"),
                   (None, "'topic' is not a string"),
                   (topic + "\u0000", "'topic' holds a NUL character")):
        env = fast_sign(dict(make_envelope(topic, {"a": 1}), topic=t))
        bodies.append(canonical(env))
        want.append(why + " (bad_field)")
    # the string topic is judged by the policy, as before
    bodies.append(canonical(fast_sign(make_envelope(topic, {"a": 1}))))
    r = run("fedmsg-verify", verify_args() + ["--routing-policy", policy],
            input="".join(b + "\n" for b in bodies))
    got = verdicts(r.stdout)
    assert [reason for _, _, reason in got[:-1]] == want, r
    assert got[-1][0] == "invalid" and got[-1][2].endswith(
        "(routing_policy)"), r


# ---- fedmsg-relay ----------------------------------------------------------

def relay_config(tmp_path, p_in, p_out, **extra):
    return write_config(tmp_path, bus_config(
        relay_inbound=tcp(p_in),
        endpoints={"relay_outbound": [tcp(p_out)]}, **extra))


@pytest.mark.usefixtures("zmq_time_limit")
@pytest.mark.parametrize("validate", [True, False])
def test_relay_never_forwards_a_forgery(tmp_path, daemons, zctx, validate):
    p_in, p_out = free_ports(2)
    extra = vector_validation(validate_signatures=False) if validate else {}
    cfg = relay_config(tmp_path, p_in, p_out, **extra)
    relay = start_relay(daemons, cfg, *(["--validate"] if validate else []))
    pub = active_publisher(zctx, tcp(p_in))
    sub = Sub(zctx, tcp(p_out))
    probes = Probes(sign=True)
    sub.sync(pub.send_multipart, probes)
    topic = BASIC["wire_topic"].encode()
    forged = all_forgeries()
    for f in forged[:-1]:
        pub.send_multipart([topic, f])
    pub.send_multipart([b"org.fedoraproject.dev.forgery.array", forged[-1]])
    pub.send_multipart([topic, BASIC["wire_body"].encode()])
    sub.finish(pub.send_multipart, probes)
    assert sub.msgs == [[topic, BASIC["wire_body"].encode()]]
    assert relay.stop() == 0
    log = relay.stderr()
    st = relay_stats(log)
    assert st["bad_json"] == len(forged) and st["invalid"] == 0, log
    assert log.count("duplicate key") >= len(forged), log


# ---- fedmsg-tail --validate ------------------------------------------------

@pytest.mark.usefixtures("zmq_time_limit")
def test_tail_validate_drops_a_forgery(tmp_path, daemons, zctx):
    port, = free_ports(1)
    pub = zsocket(zctx, zmq_module().PUB, bind=tcp(port))
    cfg = write_config(tmp_path, bus_config(
        endpoints={"svc": [tcp(port)]},
        **vector_validation(validate_signatures=False)))
    tail = daemons("fedmsg-tail", ["--config", cfg, "--json", "--validate"],
                   config=cfg)
    probes = Probes(sign=True)
    sync_tail(tail, pub.send_multipart, probes)
    topic = BASIC["wire_topic"].encode()
    forged = all_forgeries()
    for f in forged[:-1]:
        pub.send_multipart([topic, f])
    pub.send_multipart([b"org.fedoraproject.dev.forgery.array", forged[-1]])
    pub.send_multipart([topic, BASIC["wire_body"].encode()])
    finish_tail(tail, pub.send_multipart, probes)
    assert tail.stop() == 0
    printed = [ln for ln in tail.lines() if not Probes.is_probe(ln)]
    assert printed == [BASIC["wire_body"]]
    assert "--evil" not in tail.stdout().decode()
    assert tail.stderr().count("duplicate key") == len(forged)


# ---- fedmsg-hub ------------------------------------------------------------

def archive_bodies(d):
    out = []
    for p in sorted(Path(d).glob("*.jsonl")):
        out.extend(p.read_bytes().splitlines())
    return out


@pytest.mark.usefixtures("hub_time_limit")
@pytest.mark.parametrize("validate", [True, False])
def test_hub_never_hands_a_forgery_to_a_consumer(tmp_path, hubs, zctx,
                                                 validate):
    zmq = zmq_module()
    src, mport = free_ports(2)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    adir = tmp_path / "archive"
    cfg = hub_config(src, mport, {"arch": {
        "plugin": str(project_plugin("archive")),
        "config": {"dir": str(adir), "rotate_daily": False},
        "dedup_window": 0}})
    if not validate:
        cfg["validate_signatures"] = False
    hub = hubs(write_config(tmp_path, cfg), metrics_port=mport).ready()
    probes = HubProbes()

    def seen():
        return [json.loads(b)["msg_id"] for b in archive_bodies(adir)]
    hub_sync(pub.send_multipart, probes, seen, hub)
    base = hub.idle()
    topic = BASIC["wire_topic"].encode()
    forged = all_forgeries()
    for f in forged[:-1]:
        pub.send_multipart([topic, f])
    pub.send_multipart([b"org.fedoraproject.dev.forgery.array", forged[-1]])
    pub.send_multipart([topic, BASIC["wire_body"].encode()])
    hub_mark(pub.send_multipart, probes, seen, hub)
    got = [b for b in archive_bodies(adir) if not Probes.is_probe(b)]
    assert got == [BASIC["wire_body"].encode()]
    m = hub.metrics()
    assert m("fedmsg_hub_rejected_total", reason="bad_json") - \
        base("fedmsg_hub_rejected_total", reason="bad_json") == len(forged)
    assert hub.stderr().count("duplicate key") >= len(forged)
    assert hub.stop() == 0


# ---- bridges, against a python3-qpid-proton peer (no broker) ----------------

class Peer:
    """An AMQP 1.0 peer the bridge connects to as to a broker: keeps the
    bodies it is sent (accepting them) and sends `todo` bodies on the link
    the bridge receives on, recording each one's outcome."""

    def __init__(self, todo=()):
        from proton.handlers import MessagingHandler

        peer = self
        self.lock = threading.Lock()
        self.got = []
        self.todo = list(todo)
        self.outcomes = {}

        class Handler(MessagingHandler):
            def __init__(self):
                super().__init__(auto_accept=True, auto_settle=True)
                self.tags = {}

            on_link_opening = staticmethod(answer_link)

            def on_message(self, event):
                with peer.lock:
                    peer.got.append(bytes(event.message.body))

            def on_sendable(self, event):
                from proton import Message
                snd = event.sender
                while snd.credit and peer.todo:
                    n = len(peer.outcomes) + len(self.tags)
                    body = peer.todo.pop(0)
                    dlv = snd.send(Message(body=body, inferred=True,
                                           content_type="application/json"))
                    self.tags[dlv.tag] = n

            def record(self, event):
                from proton import Disposition
                names = {Disposition.ACCEPTED: "accepted",
                         Disposition.REJECTED: "rejected",
                         Disposition.RELEASED: "released",
                         Disposition.MODIFIED: "modified"}
                n = self.tags.pop(event.delivery.tag, None)
                with peer.lock:
                    peer.outcomes[n] = names.get(event.delivery.remote_state,
                                                 "?")

            on_accepted = on_rejected = on_released = record

        self.listener = ProtonListener(free_ports(1)[0], Handler())
        self.url = "amqp://127.0.0.1:%d" % self.listener.port

    def bodies(self):
        with self.lock:
            return list(self.got)

    def outcome_list(self):
        with self.lock:
            return [self.outcomes.get(i) for i in range(len(self.outcomes))]


@pytest.fixture
def peers():
    made = []

    def make(todo=()):
        p = Peer(todo)
        made.append(p)
        return p
    yield make
    for p in made:
        p.listener.stop()


@pytest.mark.usefixtures("zmq_time_limit")
def test_bridge_zmq_to_amqp_never_forwards_a_forgery(tmp_path, daemons, zctx,
                                                     peers):
    peer = peers()
    src = BridgeSource(zctx)
    cfg = write_config(tmp_path, bridge_config(
        {"out": {"from": "zmq", "to": peer.url, "endpoints": ["src"],
                 "address": "/queue/forgery",
                 "spool": {"dir": str(tmp_path / "spool")}}},
        endpoints={"src": [src.url]}, **vector_validation()))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)
    topic = BASIC["wire_topic"].encode()
    forged = all_forgeries()
    for f in forged[:-1]:
        src.send([topic, f])
    src.send([b"org.fedoraproject.dev.forgery.array", forged[-1]])
    src.send([topic, BASIC["wire_body"].encode()])
    bridge.wait_for(lambda: peer.bodies(), 10,
                    "the genuine message at the peer (%s)"
                    % peer.listener.error)
    assert peer.bodies() == [BASIC["wire_body"].encode()]
    assert bridge.stderr().count("duplicate key") == len(forged)


@pytest.mark.usefixtures("zmq_time_limit")
def test_bridge_amqp_to_zmq_never_forwards_a_forgery(tmp_path, daemons, zctx,
                                                     peers):
    forged = all_forgeries()
    # a non-string topic, signed: refused by validation (bad_field)
    listed = canonical(fast_sign(dict(make_envelope(
        "org.fedoraproject.dev.bodhi.update", {"a": 1}),
        topic=["org.fedoraproject.dev.bodhi.update"]))).encode()
    todo = forged + [listed, BASIC["wire_body"].encode()]
    peer = peers(todo)
    port, = free_ports(1)
    cfg = write_config(tmp_path, bridge_config(
        {"in": {"from": peer.url, "to": "zmq", "source": "/queue/forgery",
                "endpoints": tcp(port)}}, **vector_validation()))
    bridge = start_bridge(daemons, cfg)
    sub = Sub(zctx, tcp(port))
    bridge.wait_for(lambda: len(peer.outcome_list()) == len(todo), 10,
                    "every delivery settled (%s)" % peer.listener.error)
    assert peer.outcome_list() == ["rejected"] * (len(todo) - 1) + \
        ["accepted"]
    # what it published (a late SUB may miss it, but never sees a forgery)
    sub.pump(200)
    for frames in sub.msgs:
        assert frames[1] == BASIC["wire_body"].encode()
    err = bridge.stderr()
    assert err.count("duplicate key") == len(forged), err
    assert "'topic' is not a string" in err
    st = bridge_stats(bridge.stop() == 0 and bridge.stderr(), "in")
    assert st["not_json"] == len(forged) and st["invalid"] == 1, st
