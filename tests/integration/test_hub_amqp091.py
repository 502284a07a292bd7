"""fedmsg-hub on AMQP 0-9-1 (amqp091://) consuming what fedora-messaging
publishes, on the test RabbitMQ.

The hub's source is broker-authenticated ("broker_authenticated": true):
the broker's login is the trust, as in fedora-messaging, so an unsigned
payload is wrapped as fedmsg-bridge does (topic = routing key, msg_id =
"<year>-<message_id>") and dispatched, while a signed envelope is still
validated.  Verdicts of the tests/abi/verdicts.c plugin become 0-9-1
settlements:

  ok                     basic.ack                      gone
  drop                   basic.reject                   dead-lettered
  halt (not processed)   basic.nack(requeue)            back in the queue
  (then for the halted   held unsettled until stop,     back in the queue
   consumer)             then basic.nack(requeue)
  retry, waiting at stop basic.nack(requeue)            back in the queue
  no consumer wants it   hub.unrouted (reject)          dead-lettered
  bad signature          basic.reject                   dead-lettered

Publishers: the real fedora-messaging api.publish (../shared/peers) for
the payloads, pika (python3-pika) for the raw envelopes; pika reads the
queues afterwards.
"""

import json
import time

import pika
import pytest

from amqp091_setup import URL091, fm_run, fm_toml, guest_entry, pika_channel
from conftest import (bus_config, free_ports, signed, unique,
                      vector_validation, wait_until, write_config)
from peers import need_fedora_messaging

pytestmark = pytest.mark.usefixtures("broker_time_limit")

DEV = "org.fedoraproject.dev."


def fm_publish(tmp_path, topics):
    """fedora-messaging's api.publish of {"verdict": <last topic word>}
    on each topic -> [message id]."""
    script = (
        "import json, sys\n"
        "from fedora_messaging import api, message\n"
        "for t in sys.argv[1:]:\n"
        "    m = message.Message(topic=t,\n"
        "                        body={'verdict': t.rsplit('.', 1)[1]})\n"
        "    api.publish(m)\n"
        "    print(m.id)\n")
    return fm_run(tmp_path, fm_toml(tmp_path / "fm.toml"), script,
                  *topics).split()


def queue_ids(queue):
    """message_ids (or, for envelopes, msg_ids) in queue, drained."""
    conn, ch = pika_channel()
    out = []
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            break
        out.append(props.message_id or json.loads(body)["msg_id"])
    conn.close()
    return out


def test_fedora_messaging_publishers_to_hub_plugins(tmp_path, rabbitmq, hubs,
                                                    abi_plugins):
    need_fedora_messaging()
    rabbitmq.ensure()
    stem = unique("hb")
    prefix = DEV + stem
    q, dlq = unique("hubq"), unique("hubdlq")
    rec, hrec = tmp_path / "v.txt", tmp_path / "h.txt"
    mport = free_ports(1)[0]
    cfg = bus_config(**vector_validation())
    cfg.update(zmq_linger=0, hub=guest_entry(tmp_path, **{
        "bus": URL091, "source": "/queue/" + q, "broker_authenticated": True,
        "metrics": "127.0.0.1:%d" % mport, "drain_timeout": 2,
        "queues": {
            dlq: {"durable": True},
            q: {"durable": True, "arguments": {
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": dlq}}},
        "bindings": [{"queue": q, "exchange": "amq.topic",
                      "routing_keys": [prefix + ".#"]}]}))
    cfg["consumers"] = {
        "v": {"plugin": str(abi_plugins["verdicts"]),
              "topics": [prefix + ".ok", prefix + ".drop",
                         prefix + ".retry"],
              "backoff": 60, "max_attempts": 5, "config": {"file": str(rec)}},
        "h": {"plugin": str(abi_plugins["verdicts"]),
              "topics": [prefix + ".halt"], "config": {"file": str(hrec)}}}
    hub = hubs(write_config(tmp_path, cfg), metrics_port=mport).ready(15)
    hub.wait_stderr("connected to the broker", 15)

    words = ["ok", "drop", "retry", "halt", "nobody"]
    ids = dict(zip(words, fm_publish(tmp_path,
                                     [prefix + "." + w for w in words])))
    # signed envelopes, published raw: still validated
    good = signed(stem + ".ok", {"verdict": "ok"})
    forged = signed(stem + ".ok", {"verdict": "ok"})
    forged["msg"]["verdict"] = "drop"           # signature now wrong
    conn, ch = pika_channel()
    for env in (good, forged):
        ch.basic_publish("amq.topic", env["topic"], json.dumps(env),
                         pika.BasicProperties(content_type="application/json"))
    conn.close()

    year = time.gmtime().tm_year
    wrapped = {w: "%d-%s" % (year, i) for w, i in ids.items()}
    wait_until(lambda: rec.exists() and all(
        x in rec.read_text() for x in (wrapped["ok"], wrapped["drop"],
                                       wrapped["retry"], good["msg_id"])),
        15, "ok, drop, the first retry and the signed envelope consumed", hub)
    wait_until(lambda: hrec.exists() and wrapped["halt"] in hrec.read_text(),
               15, "halt consumed", hub)
    wait_until(lambda: "no consumer wants %s" % wrapped["nobody"]
               in hub.stderr(), 15, "the unrouted one settled", hub)
    wait_until(lambda: "invalid message %s" % forged["msg_id"]
               in hub.stderr(), 15, "the forged one rejected", hub)
    assert forged["msg_id"] not in rec.read_text()
    # the halt message, redelivered, is held for the halted consumer (not
    # released in a loop: RabbitMQ would redeliver it at once, forever)
    wait_until(lambda: "consumer h has halted: the messages only it wants "
               "stay with the broker" in hub.stderr(), 15, "parked", hub)
    assert hub.metrics()("fedmsg_hub_received_total") < 20
    assert hub.stop() == 0, hub.describe()

    dead = queue_ids(dlq)
    assert sorted(dead) == sorted([ids["drop"], ids["nobody"],
                                   forged["msg_id"]]), dead
    back = queue_ids(q)
    assert sorted(set(back)) == sorted([ids["retry"], ids["halt"]]), back
