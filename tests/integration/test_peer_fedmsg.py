"""fedmsg-c against the real fedmsg 1.1.7 (../shared/peers/fedmsg), run as
users run it: fedmsg.crypto as the oracle, fedmsg.publish as a publisher,
the fedmsg-tail command as a validating subscriber, all configured from a
fedmsg.d directory that fedmsg-c reads too (FEDMSG_CONFIG=DIR, its *.json;
fedmsg reads the *.py beside them).  Without the peers these tests skip
with one line (tests/integration/peers.py); in CI that fails the run.

Also the operations paths a deployment relies on: the CA/CRL re-read in a
running relay and hub (a certificate revoked while they run), the gateway
on its default port, systemd's notify socket.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import (HOST, MKCERTS, VECTORS, VECTOR_CA, VECTOR_CRL,
                      archive_ids, archive_lines, bus_config, canonical, fast_sign, free_ports,
                      is_default_config, make_envelope, project_plugin,
                      py_sign, py_validate, tcp, valid_by_default,
                      vector_path, vector_validation)

ALPHA_CRT = VECTOR_CA.parent / "alpha-app01.vectors.example.org.crt"
ALPHA_KEY = VECTOR_CA.parent / "alpha-app01.vectors.example.org.key"


def site_config(pki, p_in, p_out, **extra):
    """One config for every program of a test: the relay's two sockets,
    signing with the dev PKI (fedmsg's cert lookup: shell.<host> for an
    active publisher and fedmsg-logger, hub.<host> for the hub), and the
    CA/CRL to validate with."""
    cfg = bus_config(
        relay_inbound=tcp(p_in),
        endpoints={"relay_outbound": [tcp(p_out)]},
        sign_messages=True, validate_signatures=True, ssldir=str(pki),
        certnames={"shell." + HOST: "shell-localhost",
                   "revoked." + HOST: "revoked",
                   "hub." + HOST: "hub-localhost"},
        ca_cert_location=str(pki / "ca.crt"),
        crl_location=str(pki / "crl.pem"))
    cfg.update(extra)
    return cfg


def relay_on(daemons, confdir, *args):
    """fedmsg-relay with FEDMSG_CONFIG=confdir and no --config."""
    d = daemons("fedmsg-relay", list(args), config=confdir)
    d.wait_stderr("outbound (PUB) bound on")
    return d


def archive_bodies(adir):
    return archive_lines(adir)


def sync(publish, *seen, timeout=15.0):
    """Publish until every seen() shows one of the messages (the slow
    joiners); returns the msg_ids sent."""
    deadline = time.monotonic() + timeout
    sent = []
    while True:
        sent.append(publish()["msg_id"])
        t = time.monotonic() + 0.2
        while time.monotonic() < t:
            if all(set(sent) & set(s()) for s in seen):
                return sent
            time.sleep(0.02)
        if time.monotonic() > deadline:
            pytest.fail("no message came through within %.1f s" % timeout,
                        pytrace=False)


# ---- 1. fedmsg.crypto as the oracle ---------------------------------------

def test_real_fedmsg_judges_every_vector_as_recorded(fedmsg_peer):
    """The oracle plumbing, and the vectors still hold: the live fedmsg
    gives each vector's recorded verdict under its recorded config."""
    for rec in VECTORS:
        cfg = {"ca_cert_location": vector_path(rec["ca_cert"]),
               "crypto_validate_backends": ["x509"]}
        # no CRL: None, else fedmsg would fetch Fedora's over HTTPS
        cfg["crl_location"] = vector_path(rec["crl"]) if rec["crl"] else None
        if rec["routing_policy"] is not None:
            cfg["routing_policy"] = rec["routing_policy"]
            cfg["routing_nitpicky"] = rec["routing_nitpicky"]
        got = fedmsg_peer.validate([json.loads(rec["wire_body"])], **cfg)[0]
        assert (got is True) == rec["valid"], (rec["name"], got)


def test_self_written_validator_agrees_with_real_fedmsg(fedmsg_peer):
    """conftest's py_validate stands in for fedmsg only in a clone without
    the peers (valid_by_default); here it must give fedmsg's verdict on
    every vector under the default config, and valid_by_default gives the
    live fedmsg's."""
    msgs = [json.loads(r["wire_body"]) for r in VECTORS]
    real = fedmsg_peer.validate(msgs, ca_cert_location=VECTOR_CA,
                                crl_location=VECTOR_CRL)
    for rec, m, v in zip(VECTORS, msgs, real):
        assert py_validate(m)[0] == (v is True), (rec["name"], v)
        assert valid_by_default(rec) == (v is True), rec["name"]
        if is_default_config(rec):
            assert (v is True) == rec["valid"], rec["name"]
    other = {r["name"]: v is True for r, v in zip(VECTORS, real)
             if not is_default_config(r)}
    assert other == {
        "routing_policy_lists_signer_nitpicky": True,
        "routing_policy_other_topic_not_nitpicky": True,
        "cert_revoked_but_no_crl_configured": False,   # crl.pem revokes it
        "crl_stale_rejects_good_cert": True,           # fresh CRL: fine
        "routing_policy_violation": True,              # no policy: fine
        "routing_policy_allowed_same_message": True,
        "routing_nitpicky_topic_not_in_policy": True,
        "routing_policy_cn_substring_not_enough": True,
    }


SIGN_CASES = [
    make_envelope("org.fedoraproject.dev.peer.ascii", {"a": 1}, i=1,
                  msg_id="2026-peer-ascii", timestamp=1767225600),
    make_envelope("org.fedoraproject.dev.peer.unicode",
                  {"caf\u00e9": "\u2603 \U0001f600 \u007f", "k": [None, True]},
                  i=2, msg_id="2026-peer-unicode", timestamp=1767225601),
    make_envelope("org.fedoraproject.dev.peer.numbers",
                  {"f": [0.1, 1e22, 1e-07, -0.0, 5e-324, 1.5],
                   "big": 2 ** 100, "neg": -(2 ** 70)},
                  i=3, msg_id="2026-peer-numbers", timestamp=1767225602.25),
]


def test_test_signers_are_real_fedmsg_sign(fedmsg_peer):
    """The tests' own signers (py_sign, fast_sign) make input faster than
    fedmsg.crypto.sign, which re-reads and checks the key per message:
    they must give its exact envelopes."""
    real = fedmsg_peer.sign([dict(e) for e in SIGN_CASES],
                            ALPHA_CRT, ALPHA_KEY)
    for env, r in zip(SIGN_CASES, real):
        assert "raised" not in r, r
        assert canonical(py_sign(env)) == canonical(r)
        assert canonical(fast_sign(env)) == canonical(r)


def test_fedmsg_sign_is_real_fedmsg_sign_and_validates_there(
        run, fedmsg_peer, dev_pki):
    """Our fedmsg-sign prints what fedmsg.crypto.sign returns for the same
    envelope and key, and fedmsg.crypto.validate accepts it (signed by
    that CN, under the dev CA and CRL); a revoked signer it rejects."""
    crt, key = dev_pki / "shell-localhost.crt", dev_pki / "shell-localhost.key"
    real = fedmsg_peer.sign([dict(e) for e in SIGN_CASES], crt, key)
    ours = []
    for env, r in zip(SIGN_CASES, real):
        res = run("fedmsg-sign", ["--cert", crt, "--key", key],
                  input=json.dumps(env))
        assert res.rc == 0, res
        assert res.stdout == canonical(r) + "\n"
        ours.append(json.loads(res.out))
    fedmsg_peer.assert_signed_by(ours, "shell-localhost",
                                 ca=dev_pki / "ca.crt",
                                 crl=dev_pki / "crl.pem")
    bad = json.loads(run("fedmsg-sign", [
        "--cert", dev_pki / "revoked.crt", "--key", dev_pki / "revoked.key"],
        input=json.dumps(SIGN_CASES[0])).out)
    assert fedmsg_peer.validate([bad], ca_cert_location=dev_pki / "ca.crt",
                                crl_location=dev_pki / "crl.pem") == [False]


# ---- 2. end to end with the real publisher and subscriber ------------------

def test_real_publisher_through_relay_to_tail_and_hub(
        tmp_path, fedmsg_peer, daemons, hubs, dev_pki):
    """fedmsg.publish (active, signing) -> fedmsg-relay -> fedmsg-tail
    --validate and fedmsg-hub (archive consumer), every program configured
    by the same fedmsg.d directory (FEDMSG_CONFIG, split over two files);
    a message signed by a revoked certificate reaches neither."""
    p_in, p_out, mport = free_ports(3)
    adir = tmp_path / "archive"
    site = tmp_path / "site"
    fedmsg_peer.write_site(site, site_config(dev_pki, p_in, p_out), "10-bus")
    confdir = fedmsg_peer.write_site(site, {
        "consumers": {"arch": {"plugin": str(project_plugin("archive")),
                               "config": {"dir": str(adir), "prefix": "bus",
                                          "rotate_daily": False}}},
        "hub": {"metrics": "127.0.0.1:%d" % mport, "drain_timeout": 3}},
        "20-hub")
    relay_on(daemons, confdir)
    tail = daemons("fedmsg-tail", ["--validate", "--json"], config=confdir)
    hub = hubs(confdir, metrics_port=mport).ready()
    pub = fedmsg_peer.publisher(site)

    def tail_ids():
        return [json.loads(ln)["msg_id"] for ln in tail.lines()]

    n = [0]

    def probe():
        n[0] += 1
        return pub.publish("sync", {"n": n[0]})
    sync(probe, tail_ids, lambda: archive_ids(adir))

    good = [pub.publish("build.done", {"name": "bash", "i": i,
                                       "caf\u00e9": "\u2603\U0001f600",
                                       "f": [0.1, 1e22, -0.0],
                                       "big": 2 ** 70}) for i in range(3)]
    bad = pub.publish("build.done", {"name": "evil"}, certname="revoked")
    good.append(pub.publish("build.done", {"name": "after"},
                            certname="shell-localhost"))
    end = pub.publish("end", {})
    tail.wait_for(lambda: end["msg_id"] in tail_ids(), 10, "the end marker")
    hub.wait_for(lambda: end["msg_id"] in archive_ids(adir), 10,
                 "the end marker in the archive")

    want = [e["msg_id"] for e in good + [end]]
    got_tail = [json.loads(ln) for ln in tail.lines()]
    got_tail = [e for e in got_tail if e["msg_id"] in want + [bad["msg_id"]]]
    assert [e["msg_id"] for e in got_tail] == want
    assert got_tail == good + [end]        # as fedmsg sent them
    arch = [b for b in archive_bodies(adir)
            if json.loads(b)["msg_id"] in want + [bad["msg_id"]]]
    # the exact bytes fedmsg put on the wire (fedmsg.encoding.dumps)
    assert arch == [canonical(e).encode() for e in good + [end]]
    # and the real fedmsg agrees with both
    fedmsg_peer.assert_signed_by(good + [end], "shell-localhost",
                                 ca=dev_pki / "ca.crt",
                                 crl=dev_pki / "crl.pem")
    assert fedmsg_peer.validate([bad], ca_cert_location=dev_pki / "ca.crt",
                                crl_location=dev_pki / "crl.pem") == [False]
    assert hub.stop() == 0
    assert "untrusted_certificate" in hub.stderr() or \
        "revoked" in hub.stderr(), hub.stderr()[-2000:]


def test_logger_through_relay_to_real_fedmsg_tail(tmp_path, fedmsg_peer,
                                                  daemons, dev_pki):
    """Our fedmsg-logger -> fedmsg-relay -> the real fedmsg-tail
    --validate (fedmsg.tail_messages validating with fedmsg.crypto): it
    prints what we signed and refuses what a revoked certificate signed."""
    p_in, p_out = free_ports(2)
    site = tmp_path / "site"
    confdir = fedmsg_peer.write_site(site, site_config(dev_pki, p_in, p_out))
    relay_on(daemons, confdir)
    ftail = fedmsg_peer.tail(site, "--validate", "--query", "msg.log")
    logger = daemons("fedmsg-logger", [], config=confdir, stdin="pipe")
    tag = os.urandom(4).hex()

    def printed():
        return re.findall(r"\] (\S+-%s\S*)$" % tag, ftail.stdout(), re.M)

    def say(text):
        logger.proc.stdin.write(("%s\n" % text).encode())
        logger.proc.stdin.flush()
    deadline = time.monotonic() + 20
    i = 0
    while not printed():
        i += 1
        say("sync%d-%s" % (i, tag))
        time.sleep(0.1)
        assert logger.running(), logger.describe()
        assert ftail.running(), ftail.describe()
        assert time.monotonic() < deadline, ftail.describe()
    ftail.wait_for(lambda: "sync%d-%s" % (i, tag) in printed(), 10,
                   "the last sync line")
    say("first-%s" % tag)
    say("caf\u00e9\u2603-%s" % tag)
    r = daemons("fedmsg-logger", ["--cert-prefix", "revoked", "--message",
                                  "revoked-%s" % tag], config=confdir)
    assert r.wait(15) == 0, r.describe()
    say("end-%s" % tag)
    ftail.wait_for(lambda: "end-%s" % tag in printed(), 10, "the end line")
    after = printed()[printed().index("sync%d-%s" % (i, tag)) + 1:]
    assert after == ["first-%s" % tag, "caf\u00e9\u2603-%s" % tag,
                     "end-%s" % tag]
    assert "invalid message received" in ftail.stderr()
    assert "revoked-%s" % tag in ftail.stderr()       # fedmsg's warning


def test_hub_active_publishes_to_relay_for_real_fedmsg_tail(
        tmp_path, fedmsg_peer, daemons, hubs, dev_pki):
    """hub.active: the hub connects to relay_inbound and publishes there
    (its heartbeat and the example consumer's summaries, signed with
    certnames["hub.<host>"]); the real fedmsg-tail --validate receives
    them from the relay and fedmsg checks the signer by routing policy."""
    p_in, p_out, mport = free_ports(3)
    site = tmp_path / "site"
    confdir = fedmsg_peer.write_site(site, site_config(
        dev_pki, p_in, p_out,
        routing_policy={
            "org.fedoraproject._heartbeat": ["hub-localhost"],
            "org.fedoraproject.dev.example.summary": ["hub-localhost"]},
        routing_nitpicky=True,
        consumers={"example": {"plugin": str(project_plugin("example")),
                               "config": {"interval_ms": 200}}},
        hub={"active": True, "heartbeat_interval": 0.2,
             "metrics": "127.0.0.1:%d" % mport, "drain_timeout": 3}))
    relay_on(daemons, confdir)
    ftail = fedmsg_peer.tail(site, "--validate", "--exclude", "^$",
                             "--include", ".",
                             "--query", "topic,msg_id")
    hub = hubs(confdir, metrics_port=mport).ready()

    def got(topic):
        return re.findall(r"\] %s, (\S+)$" % re.escape(topic),
                          ftail.stdout(), re.M)
    ftail.wait_for(lambda: len(got("org.fedoraproject._heartbeat")) >= 2
                   and got("org.fedoraproject.dev.example.summary"), 20,
                   "heartbeats and a summary from the active hub")
    assert "invalid message received" not in ftail.stderr()
    assert hub.running()
    m = hub.metrics()
    assert m("fedmsg_hub_published_total", result="failed") == 0
    assert hub.stop() == 0


# ---- 3. the CRL re-read in a running relay and hub --------------------------

def revoke(pki, name):
    """Revoke pki/name.crt with the dev CA; returns the new CRL's PEM."""
    for args in (["-revoke", name + ".crt", "-crl_reason", "keyCompromise"],
                 ["-gencrl", "-out", "crl.new"]):
        p = subprocess.run(["openssl", "ca", "-config", "openssl.cnf"] +
                           args, cwd=pki, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        assert p.returncode == 0, p.stderr.decode()
    data = (pki / "crl.new").read_bytes()
    (pki / "crl.new").unlink()
    return data


PAD = 2048      # room for the grown CRL in the padded file (see below)


@pytest.mark.parametrize("daemon", ["relay", "hub"])
@pytest.mark.parametrize("how", ["file_changed", "crl_cache_expiry"])
def test_certificate_revoked_while_running_is_rejected(
        tmp_path, fedmsg_peer, daemons, hubs, zctx, daemon, how):
    """A certificate revoked while fedmsg-relay --validate or fedmsg-hub
    runs is rejected within the documented time: the CRL file is re-read
    when it changes (stat at most once a second), and, with
    crl_cache_expiry, after that many seconds even when stat sees no
    change (here: rewritten in place, same size, same mtime)."""
    pki = tmp_path / "pki"
    p = subprocess.run(["sh", str(MKCERTS), str(pki), "shell-localhost",
                        "victim-localhost", "hub-localhost"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120)
    assert p.returncode == 0, p.stdout.decode()
    crl = pki / "crl.pem"
    # trailing text after the PEM block is ignored by PEM readers: pad,
    # so the grown CRL can later be written over it at the same size
    crl.write_bytes(crl.read_bytes() + b"\n" * PAD)
    expiry = 2 if how == "crl_cache_expiry" else 0
    bound = (expiry or 0) + 1 + 1          # documented, + 1 s of stat
    p_in, p_out, mport = free_ports(3)
    adir = tmp_path / "archive"
    site = tmp_path / "site"
    cfg = site_config(pki, p_in, p_out, crl_cache_expiry=expiry)
    cfg["certnames"]["victim." + HOST] = "victim-localhost"
    if daemon == "hub":
        cfg.update(consumers={"arch": {
            "plugin": str(project_plugin("archive")),
            "config": {"dir": str(adir), "prefix": "bus",
                       "rotate_daily": False}}},
            hub={"metrics": "127.0.0.1:%d" % mport, "drain_timeout": 3})
    confdir = fedmsg_peer.write_site(site, cfg)
    if daemon == "relay":
        relay_on(daemons, confdir, "--validate")
        sub = daemons("fedmsg-tail", ["--no-validate", "--json"],
                      config=confdir)

        def seen():
            return [json.loads(ln)["msg_id"] for ln in sub.lines()]
        proc = sub
    else:
        relay_on(daemons, confdir)
        proc = hubs(confdir, metrics_port=mport).ready()

        def seen():
            return archive_ids(adir)
    pub = fedmsg_peer.publisher(site)
    n = [0]

    def send(cert):
        n[0] += 1
        return pub.publish("crl", {"n": n[0]}, certname=cert)

    def round_trip():
        """A victim message, then a good one; once the good one is seen,
        the victim's fate is decided (one ordered path).  True if the
        victim's message came through."""
        v = send("victim-localhost")["msg_id"]
        g = send("shell-localhost")["msg_id"]
        proc.wait_for(lambda: g in seen(), 10, "a good message")
        return v in seen()

    sync(lambda: send("shell-localhost"), seen)
    assert round_trip(), "the victim is valid before the revocation"
    new = revoke(pki, "victim-localhost")
    if how == "file_changed":
        tmp = pki / "crl.tmp"
        tmp.write_bytes(new)
        os.replace(tmp, crl)
    else:
        st = crl.stat()
        assert len(new) <= st.st_size
        with open(crl, "r+b") as f:
            f.write(new + b"\n" * (st.st_size - len(new)))
        os.utime(crl, ns=(st.st_atime_ns, st.st_mtime_ns))
        st2 = crl.stat()
        assert (st2.st_ino, st2.st_size, st2.st_mtime_ns) == \
            (st.st_ino, st.st_size, st.st_mtime_ns)
    t0 = time.monotonic()
    while round_trip():
        assert time.monotonic() - t0 < bound + 3, (
            "a certificate revoked %.1f s ago still passes (documented: "
            "within %d s)" % (time.monotonic() - t0, bound))
    for _ in range(3):                      # and it stays rejected
        assert not round_trip()


# ---- 4. the gateway on its default port -------------------------------------

def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_gateway_on_its_default_port_to_real_fedmsg_tail(
        tmp_path, fedmsg_peer, daemons, dev_pki):
    """fedmsg-gateway without a port binds fedmsg's default 9940
    (fedmsg.consumers.gateway.port); the real fedmsg-tail --validate,
    subscribed to tcp://127.0.0.1:9940 only, gets what a real publisher
    sent through the relay."""
    if not port_free(9940):
        pytest.skip("peer test skipped: port 9940 (the gateway's default) "
                    "is in use on this machine")
    p_in, p_out = free_ports(2)
    bus = tmp_path / "bus"
    confdir = fedmsg_peer.write_site(bus, site_config(dev_pki, p_in, p_out))
    relay_on(daemons, confdir)
    gw = daemons("fedmsg-gateway", [], config=confdir)
    gw.wait_stderr("9940")
    watch = tmp_path / "watch"
    fedmsg_peer.write_site(watch, site_config(
        dev_pki, p_in, p_out,
        endpoints={"gateway": ["tcp://127.0.0.1:9940"]}))
    ftail = fedmsg_peer.tail(watch, "--validate", "--query", "msg_id")
    pub = fedmsg_peer.publisher(bus)

    def printed():
        return re.findall(r"\] (\S+)$", ftail.stdout(), re.M)
    sync(lambda: pub.publish("gw", {"x": 1}), printed)
    env = pub.publish("gw", {"x": 2})
    ftail.wait_for(lambda: env["msg_id"] in printed(), 10, "the message")
    assert "invalid message received" not in ftail.stderr()


# ---- 5. systemd Type=notify ----------------------------------------------

def test_hub_systemd_notify_ready_and_watchdog(tmp_path, hubs, dev_pki):
    """The hub as systemd runs it (Type=notify, WatchdogSec): READY=1 on
    NOTIFY_SOCKET once its consumers run, WATCHDOG=1 at least every
    WATCHDOG_USEC/2, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on
    SIGTERM."""
    d = tempfile.mkdtemp(prefix="fm-notify-")    # sun_path is short
    try:
        path = os.path.join(d, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(0.1)
        got = []

        def pump():
            try:
                while True:
                    got.append(sock.recv(4096).decode())
            except socket.timeout:
                pass
            return got
        src, mport = free_ports(2)
        cfg = tmp_path / "hub.json"
        cfg.write_text(json.dumps(bus_config(
            endpoints={"src": [tcp(src)]}, **vector_validation(),
            consumers={"example": {"plugin": str(project_plugin("example"))}},
            hub={"metrics": "127.0.0.1:%d" % mport, "drain_timeout": 3})))
        hub = hubs(cfg, metrics_port=mport,
                   env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})

        def count(word):
            return sum(1 for m in pump() if word in m.split("\n"))
        hub.wait_for(lambda: count("READY=1") >= 1, 15, "READY=1")
        ready = [m for m in got if "READY=1" in m.split("\n")][0]
        assert "STATUS=running 1 consumer(s)" in ready, ready
        hub.wait_for(lambda: count("WATCHDOG=1") >= 3, 15, "WATCHDOG=1 x3")
        hub.proc.send_signal(signal.SIGHUP)
        hub.wait_for(lambda: count("RELOADING=1") >= 1 and
                     count("READY=1") >= 2, 15, "RELOADING=1, READY=1")
        assert hub.stop() == 0
        pump()
        assert count("STOPPING=1") == 1, got
        sock.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)
