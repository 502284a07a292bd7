"""fedmsg-git-hook straight to the session's brokers (git_hook.broker),
with Fedora's hook beside it on the same bare repository
(test_git_hook.Site): every field a real subscriber sees equals what
Fedora's hook builds for the same push.

* UMB shape (git_hook.shape "umb", format "umb") -> ActiveMQ STOMP ->
  stomp.py on /topic/VirtualTopic.eng.distgit.commit: the flat commit body
  and its top-level scalars as headers; then distgit.push for the ref.
* format "fedora-messaging" -> RabbitMQ (AMQP 0-9-1) -> fedora-messaging's
  own `consume`: topic, id = msg_id, body = Fedora's body.
* format "fedmsg" -> RabbitMQ (AMQP 1.0) -> a proton receiver: the signed
  envelope, message id = msg_id, topic and the payload's scalars as
  application properties.
* the broker down: the push succeeds, the messages stay spooled; --flush
  (format "fedmsg", ActiveMQ STOMP) delivers them in order with their
  original msg_ids, signed; the next push sends only its own.
"""

import json

import pytest

from amqp091_setup import fm_consume, fm_toml
from conftest import (AMQ_STOMP_PORT, RMQ_AMQP_PORT, free_ports,
                      password_file, unique, write_config)
from peers import assert_signed_by, need_fedora_messaging
from test_git_hook import (Site, need_fedora_hook,
                           stop_fedora_hook_servers)  # noqa: F401 autouse

pytestmark = pytest.mark.usefixtures("broker_time_limit")

UMB_TOPIC = "VirtualTopic.eng.distgit.commit"
UMB_PUSH_TOPIC = "VirtualTopic.eng.distgit.push"


def header_form(v):
    """A payload scalar as the "umb" format (brokers/broker_format.c)
    spells it in a STOMP header."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def test_umb_shape_to_activemq_stomp(tmp_path, daemons, zctx, dev_pki,
                                     activemq, stomp_peers):
    need_fedora_hook()
    s = Site(tmp_path, daemons, zctx, dev_pki, relay=False, shape="umb",
             broker={"url": "stomp://127.0.0.1:%d" % AMQ_STOMP_PORT,
                     "format": "umb", "address": "/topic/{topic}"})
    peer = stomp_peers(AMQ_STOMP_PORT)
    sid = peer.subscribe("/topic/" + UMB_TOPIC)
    psid = peer.subscribe("/topic/" + UMB_PUSH_TOPIC)
    revs = [s.commit({"README": "hello\n"}, "first"),
            s.commit({"pkg.spec": "Name: pkg\n",
                      "logo.png": bytes(range(256))},
                     "add spec and logo\n\nwith a body\n")]
    _, theirs, err = s.push("master")
    assert len(theirs) == 2
    assert "3 message(s) sent to the broker" in err, err
    path = str(s.bare) + "/"                # pygit2's repo.path
    arrived = peer.wait_count(sid, 2)
    got = [(h, json.loads(b)) for h, b in arrived
           if json.loads(b).get("path") == path]
    assert len(got) == 2, arrived
    ids = set()
    for (h, body), t in zip(got, theirs):
        want = dict(t["commit"], agent=t["agent"])
        assert body == want                 # every field, flat
        for k, v in want.items():
            if isinstance(v, (str, bool, int)) and not (
                    isinstance(v, str) and ("\r" in v or len(v) > 256)):
                assert h.get(k) == header_form(v), k
        assert h["destination"] == "/topic/" + UMB_TOPIC
        ids.add(h["fedmsg_msg_id"])
    # multi-line text travels too, its line feeds escaped per STOMP 1.2
    assert got[1][0]["message"] == theirs[1]["commit"]["message"]
    assert "\n" in got[1][0]["message"]
    assert len(ids) == 2

    # distgit.push: one per updated ref, after its commits
    pushes = [(h, json.loads(b)) for h, b in peer.wait_count(psid, 1)
              if json.loads(b).get("path") == path]
    assert len(pushes) == 1
    h, body = pushes[0]
    assert body == {"oldrev": "0" * 40, "newrev": revs[1],
                    "commits": revs[::-1], "numcommits": 2,
                    "username": theirs[0]["agent"], "repo": "pkg",
                    "namespace": "ns", "branch": "master", "path": path}
    for k in ("oldrev", "newrev", "numcommits", "repo", "branch", "path"):
        assert h[k] == header_form(body[k])


def test_fedora_messaging_format_to_rabbitmq(tmp_path, daemons, zctx,
                                             dev_pki, rabbitmq):
    need_fedora_hook()
    need_fedora_messaging()
    queue = unique("githook")
    key = "org.fedoraproject.dev.git.receive"
    s = Site(tmp_path, daemons, zctx, dev_pki, relay=False, broker={
        "url": "amqp091://127.0.0.1:%d" % RMQ_AMQP_PORT,
        "user": "guest", "password_file": password_file(tmp_path),
        "allow_plaintext_credentials": True,        # loopback broker
        "format": "fedora-messaging",
        "address": "/exchange/amq.topic/{topic}",
        "queues": {queue: {"durable": True, "auto_delete": False}},
        "bindings": [{"queue": queue, "exchange": "amq.topic",
                      "routing_keys": [key]}]})
    s.commit({"a": "1\n"}, "one")
    s.commit({"a": "2\n", "b": "x\n"}, "two")
    _, theirs, err = s.push("master")
    assert "2 message(s) sent to the broker" in err, err

    got, _ = fm_consume(tmp_path, fm_toml(tmp_path / "fm.toml", queue,
                                          "amq.topic", [key]), 2)
    assert [g["body"] for g in got] == theirs
    assert [g["topic"] for g in got] == [key, key]
    assert all(g["id"] and g["id"][:4].isdigit() for g in got)
    assert len({g["id"] for g in got}) == 2
    for g in got:
        assert g["headers"]["fedora_messaging_user_%s" %
                            g["body"]["agent"]] is True
        assert g["headers"]["fedora_messaging_schema"] == "base.message"


def test_fedmsg_format_to_rabbitmq_amqp10(tmp_path, daemons, zctx, dev_pki,
                                          rabbitmq, amqp_peers):
    need_fedora_hook()
    topic = unique("githook")
    s = Site(tmp_path, daemons, zctx, dev_pki, relay=False, broker={
        "url": "amqp://127.0.0.1:%d" % RMQ_AMQP_PORT,
        "user": "guest", "password_file": password_file(tmp_path),
        "allow_plaintext_credentials": True,        # loopback broker
        "address": "/topic/%s.{topic}" % topic})
    rcv = amqp_peers.receiver("/topic/%s.#" % topic)
    s.commit({"a": "1\n"}, "one")
    s.commit({"b": "2\n"}, "two")
    _, theirs, err = s.push("master")
    assert "2 message(s) sent to the broker" in err, err
    got = rcv.wait_count(2)
    envs = [json.loads(b) for b in rcv.bodies()]
    assert [e["msg"] for e in envs] == theirs
    assert [m.id for m in got] == [e["msg_id"] for e in envs]
    for m, e in zip(got, envs):
        assert m.subject == e["topic"]
        assert m.properties["topic"] == e["topic"]
        assert m.properties["agent"] == e["msg"]["agent"]
    assert_signed_by(envs, "shell-localhost", ca=dev_pki / "ca.crt",
                     crl=dev_pki / "crl.pem")


def test_broker_down_spools_then_flush_in_order(tmp_path, daemons, zctx,
                                                dev_pki, activemq,
                                                stomp_peers, run):
    need_fedora_hook()
    down = {"url": "stomp://127.0.0.1:%d" % free_ports(1)[0],
            "format": "fedmsg"}
    s = Site(tmp_path, daemons, zctx, dev_pki, relay=False, broker=down)
    s.commit({"a": "1\n"}, "one")
    s.commit({"a": "2\n"}, "two")
    _, theirs, err = s.push("master")       # the push succeeds
    assert "2 stay in the spool" in err, err
    s.commit({"a": "3\n"}, "three")
    _, theirs3, err = s.push("master")
    assert "3 stay in the spool" in err, err

    conf = json.loads(s.cfg.read_text())
    topic = unique("githook")
    conf["git_hook.broker"] = {
        "url": "stomp://127.0.0.1:%d" % AMQ_STOMP_PORT, "format": "fedmsg",
        "address": "/topic/%s.{topic}" % topic}
    write_config(tmp_path, conf)            # same path, the broker now up
    peer = stomp_peers(AMQ_STOMP_PORT)
    sid = peer.subscribe("/topic/%s.>" % topic)
    r = run("fedmsg-git-hook", ["--config", str(s.cfg), "--flush"],
            env={"GIT_DIR": str(s.bare)})
    assert r.rc == 0, r
    got = peer.wait_count(sid, 3)
    envs = [json.loads(b) for _, b in got]
    assert [e["msg"] for e in envs] == theirs + theirs3
    assert [h["fedmsg_msg_id"] for h, _ in got] == [e["msg_id"]
                                                    for e in envs]
    assert_signed_by(envs, "shell-localhost", ca=dev_pki / "ca.crt",
                     crl=dev_pki / "crl.pem")
    # Once delivered, never again; the next push sends only its own.
    s.commit({"a": "4\n"}, "four")
    _, theirs4, err = s.push("master")
    assert "1 message(s) sent to the broker" in err, err
    got = peer.wait_count(sid, 4)
    envs = [json.loads(b) for _, b in got]
    assert [e["msg"] for e in envs] == theirs + theirs3 + theirs4
    assert len({e["msg_id"] for e in envs}) == 4
