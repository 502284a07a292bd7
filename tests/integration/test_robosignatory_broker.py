"""consumers/robosignatory behind fedmsg-hub on a real AMQP 1.0 broker
(the session's RabbitMQ): a signed buildsys.tag put into the hub's queue
is signed and moved once through the fake Koji of test_robosignatory.py,
the result is published to the broker (the hub's first publish there),
and the same message put in again
(a redelivery, a replay) signs nothing twice."""

import json

from conftest import (RMQ_AMQP_PORT, bus_config, canonical, free_ports,
                      password_file, project_plugin, signed, unique,
                      vector_validation, wait_until, write_config)
from test_robosignatory import (FROM, TO, consumer_config, koji,  # noqa
                                tag_msg)

RESULT = "org.fedoraproject.dev.robosignatory.build.sign"


def test_tag_through_rabbitmq(rabbitmq, broker_time_limit, tmp_path, hubs,
                              amqp_peers, dev_pki, koji):    # noqa: F811
    # (the broker first: its start is not the test's time)
    q = "/queue/" + unique("robosig")
    mport, = free_ports(1)
    conf, rec = consumer_config(tmp_path, dev_pki, koji)
    cfg = bus_config(**vector_validation())
    cfg.update(zmq_linger=0, hub={
        "bus": "amqp://127.0.0.1:%d" % RMQ_AMQP_PORT, "source": q,
        "user": "guest", "password_file": password_file(tmp_path),
        "allow_plaintext_credentials": True,    # RabbitMQ on loopback
        "metrics": "127.0.0.1:%d" % mport, "drain_timeout": 3},
        consumers={"robosignatory": {
            "plugin": str(project_plugin("robosignatory")),
            "topics": ["org.fedoraproject.dev.buildsys.tag"],
            "config": conf}})
    hub = hubs(write_config(tmp_path, cfg), metrics_port=mport).ready(15)
    hub.wait_stderr("connected to the broker", 15)
    results = amqp_peers.receiver("/topic/" + RESULT)
    snd = amqp_peers.sender(q)
    env = signed("buildsys.tag", tag_msg())
    snd.send(canonical(env))
    wait_until(lambda: "tagBuild" in koji.methods(), 20, "the move", hub)
    assert koji.order() == [      # "SIGN": the signer, after the login
        "getBuild", "listTags", "listRPMs", "queryRPMSigs", "queryRPMSigs",
        "sslLogin", "SIGN", "writeSignedRPM", "writeSignedRPM", "tagBuild"]
    assert koji.calls[-1][1] == [TO, 1001, False, FROM]
    n = len(koji.calls)

    def reported(status):
        results.pump(0.1)
        return [json.loads(b)["msg"] for b in results.bodies()
                if json.loads(b)["msg"]["status"] == status]
    # the first result is the hub's first publish to its address: it
    # waits for the new sender link's credit, it is not lost
    wait_until(lambda: reported("success"), 20, "success on the broker",
               hub)
    assert reported("success")[0]["rpms_signed"] == 2
    # the same message again (a redelivery), then a new one for the moved
    # build: reported on the broker, never signed or moved twice
    snd.send(canonical(env))
    snd.send(canonical(signed("buildsys.tag", tag_msg())))
    wait_until(lambda: reported("already-done"), 20,
               "already-done on the broker", hub)
    m = reported("already-done")[0]
    assert (m["build"], m["to"], m["rpms_signed"]) == \
        ("pkg-1.0-1.fc41", TO, 0), m
    assert koji.methods()[n:] == ["getBuild", "listTags"]
    assert len(rec.read_text().splitlines()) == 1
    assert hub.stop() == 0
