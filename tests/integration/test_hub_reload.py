"""SIGHUP: fedmsg-hub re-reads its config, the CA and the CRL; consumers
get their new "config" (reload()); a broken config keeps the running one
and says so.

The consumer is tests/abi/verdicts.c, which records to its config "file"
and re-reads it in reload().  The CA and CRL are copies in the test's
directory that the test rewrites: a CRL that revokes the alpha signer
(made with the vectors' CA key and python3-cryptography), then the dev
PKI of certs/mkcerts.sh instead of the vectors' CA.
"""

import datetime
import shutil
import signal

import pytest

from conftest import (VECTOR_CA, VECTOR_CERTS, VECTOR_CRL, fast_sign,
                      free_ports, hub_config, make_envelope, recorded_ids,
                      tcp, wait_until, wire, write_config, zmq_module, zsocket)

pytestmark = pytest.mark.usefixtures("hub_time_limit")

ALPHA = (VECTOR_CERTS / "alpha-app01.vectors.example.org.crt",
         VECTOR_CERTS / "alpha-app01.vectors.example.org.key")
BETA = (VECTOR_CERTS / "beta-pkgs02.vectors.example.org.crt",
        VECTOR_CERTS / "beta-pkgs02.vectors.example.org.key")


def crl_revoking(*certs):
    """A CRL of the vectors' CA that revokes these certificates."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    ca = x509.load_pem_x509_certificate(VECTOR_CA.read_bytes())
    key = serialization.load_pem_private_key(
        (VECTOR_CERTS / "ca.key").read_bytes(), None)
    now = datetime.datetime.utcnow()
    b = x509.CertificateRevocationListBuilder().issuer_name(ca.subject) \
        .last_update(now - datetime.timedelta(days=1)) \
        .next_update(now + datetime.timedelta(days=30))
    for path in certs:
        c = x509.load_pem_x509_certificate(path.read_bytes())
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(c.serial_number)
            .revocation_date(now - datetime.timedelta(hours=1)).build())
    return b.sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM)


class Sender:
    """Signed messages with a chosen signer, and end markers."""

    def __init__(self, pub, rec, hub):
        self.pub, self.rec, self.hub = pub, rec, hub
        self.n = 0

    def send(self, signer, tail="reload.test"):
        self.n += 1
        env = fast_sign(make_envelope("org.fedoraproject.dev." + tail,
                                    {"n": self.n}), *signer)
        self.pub.send_multipart(wire(env))
        return env["msg_id"]

    def mark(self, signer, rec=None, timeout=15.0):
        """Send messages until one shows up in rec (the slow joiner at
        first; later, everything sent before it has been handled)."""
        rec = rec or self.rec
        sent = []
        deadline = __import__("time").monotonic() + timeout

        def seen():
            return bool(set(sent) & set(recorded_ids(rec)))
        while True:
            sent.append(self.send(signer, "reload.mark"))
            try:
                wait_until(seen, 0.2, "marker")
                return sent
            except BaseException:
                if __import__("time").monotonic() > deadline:
                    raise
                if not self.hub.running():
                    pytest.fail("hub exited: " + self.hub.describe(),
                                pytrace=False)


def reloads(hub):
    return hub.stderr().count("reloaded: CA/CRL re-read")


def idle(hub):
    """Wait until no consumer has anything queued or in consume()."""
    hub.wait_metric(lambda m: all(
        v == 0 for (name, _), v in m.values.items()
        if name == "fedmsg_consumer_queue_depth"), 5, "idle consumers")


def hup(hub, what="reloaded: CA/CRL re-read"):
    # SIGHUP while a consume() runs is tested on its own below
    idle(hub)
    n = hub.stderr().count(what)
    hub.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: hub.stderr().count(what) > n, 5, repr(what), hub)


def test_sighup_reloads_consumer_config_ca_and_crl(tmp_path, hubs, zctx,
                                                   abi_plugins, dev_pki):
    zmq = zmq_module()
    src, mport = free_ports(2)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    ca, crl = tmp_path / "ca.pem", tmp_path / "crl.pem"
    shutil.copy(VECTOR_CA, ca)
    shutil.copy(VECTOR_CRL, crl)
    f1, f2, f3 = (tmp_path / n for n in ("one.txt", "two.txt", "3.txt"))

    def config(recfile, **extra):
        cfg = hub_config(src, mport, {
            "v": {"plugin": str(abi_plugins["verdicts"]),
                  "config": {"file": str(recfile)}}},
            ca_cert_location=str(ca), crl_location=str(crl))
        cfg.update(extra)
        return cfg

    cfgpath = write_config(tmp_path, config(f1))
    hub = hubs(cfgpath, metrics_port=mport).ready()
    s = Sender(pub, f1, hub)
    s.mark(ALPHA)
    a1 = s.send(ALPHA)
    s.mark(BETA)
    assert a1 in recorded_ids(f1)

    # 1. the consumer's config: a new file
    write_config(tmp_path, config(f2))
    hup(hub)
    hub.wait_stderr("verdicts: now recording to %s" % f2)
    a2 = s.send(ALPHA)
    s.mark(BETA, f2)
    assert a2 in recorded_ids(f2) and a2 not in recorded_ids(f1)

    # 2. a CRL that also revokes alpha, rewritten in place
    base = hub.idle()("fedmsg_hub_invalid_total",
                         reason="untrusted_certificate")
    crl.write_bytes(crl_revoking(ALPHA[0]))
    hup(hub)
    a3 = s.send(ALPHA)
    b3 = s.send(BETA)
    s.mark(BETA, f2)
    got = recorded_ids(f2)
    assert b3 in got and a3 not in got, "alpha is revoked now"
    assert hub.metrics()("fedmsg_hub_invalid_total",
                         reason="untrusted_certificate") == base + 1

    # 3. another CA altogether: the dev PKI
    shutil.copy(dev_pki / "ca.crt", ca)
    shutil.copy(dev_pki / "crl.pem", crl)
    dev = (dev_pki / "shell-localhost.crt", dev_pki / "shell-localhost.key")
    hup(hub)
    b4 = s.send(BETA)
    d4 = s.send(dev)
    s.mark(dev, f2)
    got = recorded_ids(f2)
    assert d4 in got and b4 not in got
    assert hub.metrics()("fedmsg_hub_invalid_total",
                         reason="untrusted_certificate") == base + 2

    # 4. a config that does not parse: everything stays as it was
    cfgpath.write_text('{"consumers": {"v": ')
    hup(hub, "reload failed, keeping the running config")
    d5 = s.send(dev)
    s.mark(dev, f2)
    assert d5 in recorded_ids(f2)

    # 5. a CA that cannot be read: the same
    write_config(tmp_path, config(f3, ca_cert_location=str(
        tmp_path / "missing.pem")))
    hup(hub, "reload failed, keeping the running config")
    d6 = s.send(dev)
    s.mark(dev, f2)
    assert d6 in recorded_ids(f2) and not f3.exists()

    assert hub.running()
    assert hub.stop() == 0


def verdicts_hub(tmp_path, hubs, zctx, abi_plugins):
    """A running hub with the verdicts plugin as consumer "v", recording
    to v.txt, past the slow joiner: (hub, its config, the record file,
    a Sender)."""
    zmq = zmq_module()
    src, mport = free_ports(2)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    rec = tmp_path / "v.txt"
    cfg = hub_config(src, mport, {
        "v": {"plugin": str(abi_plugins["verdicts"]),
              "config": {"file": str(rec)}}})
    hub = hubs(write_config(tmp_path, cfg), metrics_port=mport).ready()
    s = Sender(pub, rec, hub)
    s.mark(ALPHA)
    return hub, cfg, rec, s


def test_sighup_consumer_refuses_new_config(tmp_path, hubs, zctx,
                                            abi_plugins):
    """A consumer whose reload() refuses the new config (and logs why at
    FM_LOG_ERR, as plugin.h asks) keeps its old one; the hub goes on."""
    hub, cfg, rec, s = verdicts_hub(tmp_path, hubs, zctx, abi_plugins)
    cfg["consumers"]["v"]["config"] = {"file": "relative/path"}
    write_config(tmp_path, cfg)
    idle(hub)
    hub.proc.send_signal(signal.SIGHUP)
    try:
        hub.wait_stderr("reloaded: CA/CRL re-read", 10)
    except BaseException:
        pytest.fail("the hub never finished the reload after the plugin's "
                    "reload() logged an error (main loop stuck); stderr:\n"
                    + hub.stderr()[-1500:], pytrace=False)
    assert "reload() refused the new config; it keeps running" in hub.stderr()
    assert "verdicts: reload failed, keeping %s" % rec in hub.stderr()
    a = s.send(ALPHA)
    s.mark(ALPHA)
    assert a in recorded_ids(rec)
    assert hub.stop() == 0


def test_sighup_while_consume_runs(tmp_path, hubs, zctx, abi_plugins):
    """plugin.h: reload() runs "while no consume() runs": the hub waits
    for the running one to finish, then reloads and goes on."""
    zmq = zmq_module()
    src, mport = free_ports(2)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    rec = tmp_path / "slow.txt"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "slow": {"plugin": str(abi_plugins["slow"]),
                 "config": {"file": str(rec)}}}))
    hub = hubs(cfg, metrics_port=mport).ready()
    s = Sender(pub, rec, hub)
    s.mark(ALPHA)
    idle(hub)
    # long enough that the main loop sees the SIGHUP (at once, or at its
    # next wake-up, <= 1 s, when a worker thread took the signal) while
    # consume() still runs
    env = fast_sign(make_envelope("org.fedoraproject.dev.reload.slow",
                                {"sleep_ms": 2500}), *ALPHA)
    pub.send_multipart(wire(env))
    hub.wait_metric(lambda m: m("fedmsg_consumer_queue_depth",
                                consumer="slow") == 1, 5, "consume() busy")
    hub.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: env["msg_id"] in recorded_ids(rec), 5,
               "the slow message", hub)
    try:
        hub.wait_stderr("reloaded: CA/CRL re-read", 10)
    except BaseException:
        pytest.fail("SIGHUP during consume(): the reload never completed "
                    "(the hub's main loop is stuck in consumer_reload()); "
                    "stderr:\n" + hub.stderr()[-2000:], pytrace=False)
    s.mark(ALPHA)
    assert hub.stop() == 0


def test_sighup_checks_the_entries_as_start_up_does(tmp_path, hubs, zctx,
                                                    abi_plugins):
    """A consumer entry that start-up would refuse (a "config" that is no
    object) fails the reload as a whole: every consumer keeps its config,
    and no plugin gets an empty one.  A consumer whose entry is gone runs
    on with its own, said so."""
    hub, cfg, rec, s = verdicts_hub(tmp_path, hubs, zctx, abi_plugins)
    cfg["consumers"]["v"]["config"] = "file=%s" % rec     # an edit gone wrong
    write_config(tmp_path, cfg)
    idle(hub)
    hub.proc.send_signal(signal.SIGHUP)
    hub.wait_stderr("reload failed, keeping the running config: "
                    "consumers.v: a key has the wrong type", 10)
    assert "reloaded: CA/CRL re-read" not in hub.stderr()
    a = s.send(ALPHA)           # still recorded where it was
    s.mark(ALPHA)
    assert a in recorded_ids(rec)

    del cfg["consumers"]["v"]
    cfg["consumers"]["w"] = {"plugin": str(abi_plugins["verdicts"]),
                             "config": {"file": str(tmp_path / "w.txt")}}
    write_config(tmp_path, cfg)
    hub.proc.send_signal(signal.SIGHUP)
    hub.wait_stderr("reloaded: CA/CRL re-read", 10)
    assert "consumers.v is gone from the config: it runs on" in hub.stderr()
    a = s.send(ALPHA)
    s.mark(ALPHA)
    assert a in recorded_ids(rec)
    assert hub.stop() == 0
