"""Koji's real protonmsg hub plugin -> RabbitMQ (AMQP 1.0) ->
fedmsg-bridge -> ZeroMQ: with "koji" in the bridge's config, each Koji
event arrives as the Fedora buildsys.* message of the spec
(publishers-consumers.md 2.3), signed by the bridge and validated by the
real fedmsg; events Fedora never published are counted skips.  Without
"koji" the UMB shape (Koji's body, its properties as headers) is kept.

protonmsg is driven as Koji's own tests drive it (peers.py
koji_protonmsg_send): prep_* callbacks, then send_queued_msgs with a real
proton Container to the test broker.
"""

import json

import pytest

from conftest import (BridgeSource, Probes, Sub, bridge_config, bridge_stats,
                      free_ports, make_envelope, start_bridge, tcp, unique,
                      write_config)
from peers import koji_protonmsg_send, need_koji
from test_bridge_amqp import AMQP_URL, end_marker, from_amqp, non_probes, \
    stop_bridge, sync_amqp, sync_zmq, to_amqp

pytestmark = pytest.mark.usefixtures("broker_time_limit")

BUILD = {"id": 2456789, "build_id": 2456789, "name": "python-requests",
         "nvr": "python-requests-2.31.0-5.fc41", "version": "2.31.0",
         "release": "5.fc41", "epoch": None, "owner_id": 4321,
         "owner_name": "jsmith", "state": 1, "task_id": 118765432,
         "volume_id": 0, "volume_name": "DEFAULT", "extra": None,
         "creation_ts": 1714650000.25, "completion_ts": 1714651234.5}
TAG = {"id": 64512, "name": "f41-signing-pending", "arches": None,
       "locked": False, "extra": {}}
USER = {"id": 99, "name": "bodhi", "krb_principal": None, "status": 0,
        "usertype": 0}
TASK = {"id": 118766001, "parent": None, "method": "build",
        "arch": "noarch", "state": 5, "owner": 4321, "weight": 0.2,
        "request": ["cli-build/1714650000.1234.AbCd/"
                    "python-requests-2.31.0-5.fc41.src.rpm", "rawhide",
                    {"scratch": True}],
        "children": [{"id": 118766010, "parent": 118766001,
                      "method": "buildArch", "start_ts": 1.5}]}
RPM = {"id": 41234567, "build_id": 2456789, "name": "python3-requests",
       "version": "2.31.0", "release": "5.fc41", "epoch": None,
       "arch": "noarch", "size": 154210}

# (prep function, callback, kwargs): Koji hub callbacks.
EVENTS = [
    ("prep_build_state_change", "postBuildStateChange",
     {"attribute": "state", "old": 0, "new": 1, "info": BUILD}),
    ("prep_tag", "postTag", {"tag": TAG, "build": BUILD, "user": USER,
                             "force": False}),
    ("prep_untag", "postUntag", {"tag": TAG, "build": BUILD, "user": USER}),
    ("prep_task_state_change", "postTaskStateChange",
     {"attribute": "state", "old": "OPEN", "new": "FAILED", "info": TASK}),
    # a child task: Fedora publishes only scratch parents (a skip)
    ("prep_task_state_change", "postTaskStateChange",
     {"attribute": "state", "old": "FREE", "new": "OPEN",
      "info": {"id": 5, "parent": 4, "method": "buildArch"}}),
    ("prep_repo_init", "postRepoInit", {"tag": TAG, "repo_id": 6203311,
                                        "with_src": False, "event": 1}),
    ("prep_repo_done", "postRepoDone",
     {"repo": {"id": 6203311, "tag_id": 64500, "tag_name": "f41-build",
               "state": 1, "task_id": None},
      "expire": False, "data": {}}),
    ("prep_package_list_change", "postPackageListChange",
     {"action": "add", "tag": {"id": 1, "name": "f41"},
      "package": {"id": 2, "name": "python-newlib"}, "owner": 1,
      "block": False, "extra_arches": None, "force": None, "update": False,
      "user": {"name": "jsmith"}}),
    ("prep_rpm_sign", "postRPMSign",
     {"sigkey": "105ef944", "sighash": "0f2a7c5e", "build": BUILD,
      "rpm": RPM}),
    # an import: no Fedora message (a skip)
    ("prep_import", "postImport", {"type": "build", "build": BUILD}),
]
SKIPS = 2

STRIPPED_BUILD = {k: v for k, v in BUILD.items() if k != "completion_ts"}
TAGGED = {"tag": "f41-signing-pending", "tag_id": 64512,
          "build_id": 2456789, "name": "python-requests",
          "version": "2.31.0", "release": "5.fc41", "user": "bodhi",
          "owner": "jsmith", "instance": "primary"}
WANT = {
    "build.state.change": {
        "build_id": 2456789, "name": "python-requests", "version": "2.31.0",
        "release": "5.fc41", "epoch": None, "owner": "jsmith",
        "attribute": "state", "old": 0, "new": 1, "task_id": 118765432,
        "request": None, "instance": "primary"},
    "tag": TAGGED,
    "untag": TAGGED,
    "task.state.change": {
        "id": 118766001, "method": "build", "attribute": "state",
        "old": "OPEN", "new": "FAILED", "owner": None,
        "srpm": "python-requests-2.31.0-5.fc41.src.rpm",
        "info": {k: v for k, v in dict(TASK, children=[
            {"id": 118766010, "parent": 118766001,
             "method": "buildArch"}]).items() if k != "weight"},
        "instance": "primary"},
    "repo.init": {"tag": "f41-signing-pending", "tag_id": 64512,
                  "repo_id": 6203311, "instance": "primary"},
    "repo.done": {"tag": "f41-build", "tag_id": 64500, "repo_id": 6203311,
                  "instance": "primary"},
    "package.list.change": {
        "tag": "f41", "package": "python-newlib", "action": "add",
        "owner": None, "block": False, "extra_arches": None, "force": None,
        "update": False, "instance": "primary"},
    "rpm.sign": {"sigkey": "105ef944", "sighash": "0f2a7c5e",
                 "rpm": RPM, "build": STRIPPED_BUILD,
                 "instance": "primary"},
}


def start(tmp_path, daemons, zctx, amqp_peers, dev_pki, **kw):
    """An AMQP -> ZeroMQ bridge on a fresh /topic/<prefix>.# (what Koji's
    topic_prefix names), signing; returns (bridge, prefix, sub, probes)."""
    need_koji()
    prefix = unique("brew")
    port = free_ports(1)[0]
    cfg = write_config(tmp_path, bridge_config(
        {"in": from_amqp(tmp_path, "/topic/%s.#" % prefix, port, **kw)},
        sign_messages=True, ssldir=str(dev_pki),
        certnames={"bridge": "bridge-localhost"}))
    bridge = start_bridge(daemons, cfg)
    snd = amqp_peers.sender("/topic/%s.zz_probe" % prefix)
    sub = Sub(zctx, tcp(port))
    probes = sync_zmq(snd, sub, bridge)
    return bridge, prefix, snd, sub, probes


def received(sub):
    return [json.loads(body) for _, body in sub.msgs
            if not Probes.is_probe(body)]


def test_koji_protonmsg_to_fedora_buildsys(tmp_path, rabbitmq, daemons, zctx,
                                           amqp_peers, dev_pki, fedmsg_peer):
    bridge, prefix, snd, sub, probes = start(
        tmp_path, daemons, zctx, amqp_peers, dev_pki,
        koji={"topic": "org.fedoraproject.prod.buildsys"})
    queued = koji_protonmsg_send(tmp_path, AMQP_URL, "/topic/" + prefix,
                                 EVENTS)
    assert queued == len(EVENTS)        # protonmsg drops nothing, but...
    end_marker(snd, sub, probes)        # ...the bridge skips two
    got = received(sub)
    by_topic = {e["topic"]: e for e in got}
    assert len(got) == len(WANT) and len(by_topic) == len(WANT), \
        [e["topic"] for e in got]
    for suffix, body in WANT.items():
        env = by_topic["org.fedoraproject.prod.buildsys." + suffix]
        assert env["msg"] == body, suffix
        assert "headers" not in env     # Fedora's messages had none
    # each frame's topic is the envelope's, and the real fedmsg validates
    # every one as signed by the bridge's certificate
    for frame, body in sub.msgs:
        assert frame == json.loads(body)["topic"].encode()
    fedmsg_peer.assert_signed_by(got, "bridge-localhost",
                                 ca=dev_pki / "ca.crt",
                                 crl=dev_pki / "crl.pem")
    text = stop_bridge(bridge)
    st = bridge_stats(text, "in")
    assert st["skipped"] == SKIPS and st["out"] >= len(WANT)
    assert "Koji message skipped: a child task" in text
    assert "Koji message skipped: event type \"Import\"" in text


def test_koji_protonmsg_umb_shape_kept(tmp_path, rabbitmq, daemons, zctx,
                                       amqp_peers, dev_pki, fedmsg_peer):
    """Without "koji" the bridge keeps Koji's own body and properties."""
    bridge, prefix, snd, sub, probes = start(
        tmp_path, daemons, zctx, amqp_peers, dev_pki)
    koji_protonmsg_send(tmp_path, AMQP_URL, "/topic/" + prefix, EVENTS[1:2])
    end_marker(snd, sub, probes)
    got = received(sub)
    assert len(got) == 1
    env = got[0]
    assert env["msg"]["tag"] == TAG and env["msg"]["user"] == USER
    assert env["msg"]["build"]["completion_ts"] == 1714651234.5
    assert env["headers"]["type"] == "Tag"
    assert env["headers"]["user"] == "bodhi"
    fedmsg_peer.assert_signed_by(got, "bridge-localhost",
                                 ca=dev_pki / "ca.crt",
                                 crl=dev_pki / "crl.pem")
    assert bridge_stats(stop_bridge(bridge), "in")["skipped"] == 0


def test_fedora_buildsys_to_koji_shape_and_back(tmp_path, rabbitmq, daemons,
                                                zctx, amqp_peers, dev_pki):
    """The reverse: the Fedora bodies above, published on ZeroMQ, leave a
    ZeroMQ -> AMQP bridge with "koji" in Koji's protonmsg shape (address
    <prefix>.<event>, Koji's body, its "type" and other properties), and
    a second bridge process (AMQP -> ZeroMQ, "koji") turns them back into
    the very same Fedora bodies.  A Fedora event with no Koji form is a
    counted skip."""
    need_koji()
    dev = "org.fedoraproject.dev." + unique("k")
    fed = dev + ".buildsys"
    for d in ("out", "in"):
        (tmp_path / d).mkdir()
    # the way back first, in its own process (a bridge drops what carries
    # the origin marker of a bridge of its own process, as a loop)
    back, umb, snd, sub, probes = start(
        tmp_path / "in", daemons, zctx, amqp_peers, dev_pki,
        koji={"topic": fed})
    src = BridgeSource(zctx)
    rcv = amqp_peers.receiver("/topic/%s.#" % umb)
    out_cfg = write_config(tmp_path / "out", bridge_config(
        {"out": to_amqp(tmp_path / "out", src,
                        address="/topic/%s.{topic}" % umb,
                        koji={"topic": fed})},
        endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, out_cfg)
    src.wait_subscriber(daemon=bridge)
    sync_amqp(src, rcv, dev, bridge)   # probes outside "koji": as they are

    events = list(WANT.items()) + [("build.promote", {"build_id": 1})]
    for ev, body in events:
        src.send(make_envelope("%s.%s" % (fed, ev), body))
    rcv.wait_messages(len(WANT))
    rcv.quiet(0.5)
    koji = {m.address: m for m in non_probes(rcv)}
    assert sorted(koji) == sorted(
        "/topic/%s.%s" % (umb, a) for a in (
            "build.complete", "build.tag", "build.untag", "task.failed",
            "repo.init", "repo.done", "package.add", "sign.rpm"))
    tag = koji["/topic/%s.build.tag" % umb]
    assert json.loads(bytes(tag.body)) == {
        "tag": {"id": 64512, "name": "f41-signing-pending"},
        "build": {"id": 2456789, "build_id": 2456789,
                  "nvr": "python-requests-2.31.0-5.fc41",
                  "name": "python-requests", "version": "2.31.0",
                  "release": "5.fc41", "owner_name": "jsmith"},
        "user": {"name": "bodhi"}}
    assert {k: v for k, v in tag.properties.items()
            if k != "fedmsg_c_bridge"} == {
        "type": "Tag", "tag": "f41-signing-pending",
        "name": "python-requests", "version": "2.31.0",
        "release": "5.fc41", "user": "bodhi"}
    done = koji["/topic/%s.build.complete" % umb].properties
    assert (done["type"], done["old"], done["new"]) == (
        "BuildStateChange", "BUILDING", "COMPLETE")
    text = stop_bridge(bridge)
    assert "Koji's shape: buildsys.build.promote has no Koji" in text
    assert bridge_stats(text, "out")["skipped"] == 1

    # ... and back, through the second bridge: the same Fedora bodies
    end_marker(snd, sub, probes)
    got = {e["topic"]: e["msg"] for e in received(sub)}
    assert got == {"%s.%s" % (fed, ev): body for ev, body in WANT.items()}
    assert bridge_stats(stop_bridge(back), "in")["skipped"] == 0
