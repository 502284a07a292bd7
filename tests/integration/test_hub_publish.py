"""Consumers publish through the hub (host->publish): the hub builds the
envelope, signs it with its own certificate and sends it on its bus.

tests/abi/publisher.c replies to every message it consumes.  The hub is
"hubpub" in endpoints (a passive PUB on 127.0.0.1), signs with
certnames["hubpub"] = hub-localhost from the dev PKI (certs/mkcerts.sh),
and a pyzmq SUB checks every reply: SHA-1 PKCS#1 v1.5 over fedmsg's
canonical JSON of the envelope without signature and certificate, by a
certificate of the dev CA, spelled out with python3-cryptography and
judged by the real fedmsg.crypto (../shared/peers).
"""

import base64
import json
import time

import pytest

from conftest import (SLOW, HubProbes, PROBE_PREFIX, canonical, free_ports,
                      hub_config, signed, tcp, unsigned, wire,
                      write_config, zmq_module, zsocket)

pytestmark = pytest.mark.usefixtures("hub_time_limit")

REPLY_TOPIC = "org.fedoraproject.dev.pubtest.reply"


def verify_sha1_pkcs1(env, ca_path):
    """The brief's check, spelled out: the certificate in the envelope
    verifies the signature over the canonical unsigned envelope."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.x509.oid import NameOID

    cert = x509.load_pem_x509_certificate(
        base64.b64decode(env["certificate"]))
    cert.public_key().verify(
        base64.b64decode(env["signature"]),
        json.dumps(unsigned(env), sort_keys=True,
                   separators=(",", ":")).encode("utf-8"),
        padding.PKCS1v15(), hashes.SHA1())
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    assert cert.issuer == ca.subject
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_consumer_replies_are_signed_by_the_hub(tmp_path, hubs, zctx,
                                                abi_plugins, dev_pki,
                                                fedmsg_peer):
    zmq = zmq_module()
    src, out, mport = free_ports(3)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "replier": {"plugin": str(abi_plugins["publisher"]),
                    "topics": [PROBE_PREFIX, "org.fedoraproject.dev.pubin"],
                    "config": {"modname": "pubtest", "topic": "reply"}}},
        hub={"name": "hubpub", "heartbeat_interval": 0.5},
        endpoints={"src": [tcp(src)], "hubpub": [tcp(out)]},
        sign_messages=True, ssldir=str(dev_pki),
        certnames={"hubpub": "hub-localhost"}))
    hub = hubs(cfg, metrics_port=mport).ready()
    assert "publishing on tcp://127.0.0.1:%d" % out in hub.stderr()
    sub = zsocket(zctx, zmq.SUB, connect=tcp(out))
    probes = HubProbes()
    replies, beats = [], []

    def pump(t=0.05):
        while sub.poll(int(t * 1000)):
            frames = sub.recv_multipart()
            assert len(frames) == 2, frames
            env = json.loads(frames[1])
            assert frames[0].decode() == env["topic"]
            (beats if env["topic"].endswith("_heartbeat")
             else replies).append((frames, env))
            t = 0

    def answered(ids):
        return set(ids) & {e["msg"]["in_reply_to"] for _, e in replies}

    deadline = time.monotonic() + 10 * SLOW
    sent = []
    while not answered(sent):        # the slow joiners, both ways
        assert time.monotonic() < deadline, hub.describe()
        env = probes.make("sync")
        sent.append(env["msg_id"])
        pub.send_multipart(wire(env))
        pump(0.1)
    first = len(replies)

    msgs = [signed("pubin.thing", {"n": i}) for i in range(3)]
    for env in msgs:
        pub.send_multipart(wire(env))
    end = probes.make("end")
    pub.send_multipart(wire(end))
    while not answered([end["msg_id"]]):
        assert time.monotonic() < deadline, hub.describe()
        pump(0.1)
    while not beats:
        assert time.monotonic() < deadline, "no heartbeat"
        pump(0.1)

    # (replies to sync probes still in flight at `first` left out)
    mine = [e for _, e in replies[first:]
            if e["msg"]["in_reply_to"] not in sent]
    assert [e["msg"]["in_reply_to"] for e in mine] == \
        [m["msg_id"] for m in msgs] + [end["msg_id"]]
    for env, orig in zip(mine, msgs + [end]):
        assert env["topic"] == REPLY_TOPIC
        # built with the ABI 1.1 builder; "echo" is the consumed
        # payload copied from the hub's tree (build_json)
        assert env["msg"] == {"in_reply_to": orig["msg_id"],
                              "orig_topic": orig["topic"],
                              "signer": "alpha-app01.vectors.example.org",
                              "echo": orig["msg"]}
        assert env["crypto"] == "x509"
        assert isinstance(env["i"], int) and env["msg_id"]
        assert verify_sha1_pkcs1(env, dev_pki / "ca.crt") == "hub-localhost"
    fedmsg_peer.assert_signed_by(mine, "hub-localhost", ca=dev_pki / "ca.crt",
                                 crl=dev_pki / "crl.pem")
    # the body on the wire is fedmsg's canonical encoding of the envelope
    for frames, env in replies[first:]:
        assert frames[1] == canonical(env).encode()
    seq = [e["i"] for _, e in replies + beats]
    assert len(set(seq)) == len(seq)

    hb = beats[0][1]
    assert hb["topic"] == "org.fedoraproject._heartbeat"
    assert hb["msg"] == "lub-dub"
    fedmsg_peer.assert_signed_by([hb], "hub-localhost", ca=dev_pki / "ca.crt",
                                 crl=dev_pki / "crl.pem")

    m = hub.idle()
    assert m("fedmsg_hub_published_total", result="failed") == 0
    assert m("fedmsg_hub_published_total", result="ok") >= \
        len(replies) + len(beats)
    assert m("fedmsg_consumer_dropped_total", consumer="replier",
             reason="error") == 0
    assert hub.stop() == 0


def test_publish_without_publisher_is_an_error(tmp_path, hubs, zctx,
                                               abi_plugins):
    """No hub.name: nowhere to publish; the consumer's publish() is
    counted as failed and its verdict (an error) counted, the hub goes
    on."""
    zmq = zmq_module()
    src, mport = free_ports(2)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "replier": {"plugin": str(abi_plugins["publisher"]),
                    "config": {}}}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    deadline = time.monotonic() + 10 * SLOW

    def fails(m):
        return m("fedmsg_hub_published_total", result="failed")
    while fails(hub.metrics()) == 0:
        assert time.monotonic() < deadline, hub.describe()
        pub.send_multipart(wire(probes.make("sync")))
        time.sleep(0.1)
    assert "the hub has no publisher" in hub.stderr()
    assert hub.running()
    assert hub.stop() == 0
