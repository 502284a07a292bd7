"""A Brew/Koji tag event through a real bridge to robosignatory: Koji's
real protonmsg plugin (peers.py koji_protonmsg_send) -> the session's
RabbitMQ (AMQP 1.0) -> fedmsg-bridge with the koji map (Koji's build.tag
becomes Fedora's buildsys.tag, signed by the bridge) -> ZeroMQ ->
fedmsg-hub -> robosignatory -> the fake Koji of test_robosignatory.py ->
RPMs really signed (rpmsign; rpm -K verifies them) -> the result message
on the hub's bus.  robosignatory trusts only the bridge's certificate,
so the signer check is on the bridge's signature."""

import time

import pytest

from conftest import Probes, canonical, wait_until, zmq_module
from peers import koji_protonmsg_send
from test_bridge_amqp import AMQP_URL
from test_bridge_koji import BUILD, TAG, USER, start
from test_robosignatory import (FROM, TO, RealSigner,  # noqa: F401
                                edit_consumer_config, koji, make_setup,
                                results)

pytestmark = pytest.mark.usefixtures("broker_time_limit")


def test_brew_tag_through_the_bridge_is_signed(tmp_path, rabbitmq, daemons,
                                               zctx, hubs, amqp_peers,
                                               dev_pki, koji):  # noqa: F811
    signer = RealSigner(tmp_path, koji)
    (tmp_path / "bridge").mkdir()
    bridge, prefix, snd, bsub, _ = start(
        tmp_path / "bridge", daemons, zctx, amqp_peers, dev_pki,
        koji={"topic": "org.fedoraproject.dev.buildsys"})
    url = bsub.sock.getsockopt(zmq_module().LAST_ENDPOINT).decode()
    # the hub reads the bridge's PUB and validates with the dev CA (the
    # bridge's certificate)
    cfg, _, sub, rec, mport = make_setup(
        tmp_path, dev_pki, koji, zctx, keyid=signer.keyid,
        command=signer.command, source=url,
        ca_cert_location=str(dev_pki / "ca.crt"),
        crl_location=str(dev_pki / "crl.pem"))
    edit_consumer_config(cfg, trusted_publishers=["bridge-localhost"])
    hub = hubs(cfg, metrics_port=mport).ready()

    probes = Probes(prefix="org.fedoraproject.dev.probe", sign=True)

    def hub_got_a_probe():
        snd.send(canonical(probes.make("sync")))
        return hub.metrics()("fedmsg_hub_received_total") > 0
    # the slow joiner: probes through the bridge until the hub has one
    # (on a topic the hub subscribes to; signed by the test vectors' CA,
    # so invalid here: only counted)
    wait_until(hub_got_a_probe, 20, "a probe through the bridge", hub)

    build = dict(BUILD, id=1001, build_id=1001, name="pkg", version="1.0",
                 release="1.fc41", nvr="pkg-1.0-1.fc41")
    assert koji_protonmsg_send(
        tmp_path, AMQP_URL, "/topic/" + prefix,
        [("prep_tag", "postTag", {"tag": dict(TAG, name=FROM),
                                  "build": build, "user": USER,
                                  "force": False})]) == 1
    m = results(sub, 1, time.monotonic() + 30, hub)[0]
    assert m["topic"] == "org.fedoraproject.dev.robosignatory.build.sign"
    assert (m["msg"]["status"], m["msg"]["build"], m["msg"]["tag"],
            m["msg"]["to"], m["msg"]["rpms_signed"], m["msg"]["keyid"]) == \
        ("success", "pkg-1.0-1.fc41", FROM, TO, 2, signer.keyid), m
    assert koji.methods() == [
        "getBuild", "listTags", "listRPMs", "queryRPMSigs", "queryRPMSigs",
        "sslLogin", "writeSignedRPM", "writeSignedRPM", "tagBuild"]
    assert koji.calls[-1][1] == [TO, 1001, False, FROM]
    signer.verify()
    assert hub.stop() == 0
    assert bridge.stop() == 0, bridge.describe()
