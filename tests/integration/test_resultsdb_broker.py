"""consumers/resultsdb behind a real broker: unsigned CI messages as
test systems send them on UMB (ActiveMQ, the session's "activemq"
fixture), through fedmsg-bridge into the hub's plugin, land in a real
ResultsDB as ResultsDB-Updater's own consumer puts them."""

import json
import time
import uuid

import pytest

from conftest import (AMQ_STOMP_PORT, SLOW, bridge_config, bus_config,
                      free_ports, project_plugin, start_bridge, tcp, unique,
                      wait_until, write_config)
from resultsdb_peer import fake_messages, updater_expected
from test_resultsdb import comparable
from test_resultsdb import resultsdbs  # noqa: F401,F811 (the fixture)

# headers the fake messages recorded from their delivery, not sent by the
# test system (an old "expires" would expire the message at once)
TRANSPORT = {"content-length", "destination", "expires", "message-id",
             "original-destination", "persistent", "priority",
             "subscription", "timestamp", "JMS_AMQP_ContentType",
             "JMS_AMQP_FirstAcquirer", "JMS_AMQP_MESSAGE_FORMAT",
             "JMS_AMQP_NATIVE"}

pytestmark = [pytest.mark.usefixtures("broker_time_limit"),
              pytest.mark.broker_limit(120)]   # ActiveMQ's start included

def test_unsigned_ci_messages_through_a_broker(
        tmp_path, activemq, hubs, daemons, zctx, stomp_peers, resultsdbs):
    """UMB's way: test systems send plain (unsigned) CI messages to
    /topic/VirtualTopic.* on ActiveMQ; fedmsg-bridge reads its
    virtual-topic queue and wraps them, the hub's plugin puts them into
    ResultsDB: field by field what ResultsDB-Updater's consumer puts
    there."""
    fakes = fake_messages()
    picked = [n for n, f in fakes.items()
              if f["topic"].startswith("/topic/VirtualTopic.")]
    assert len(picked) >= 20
    # what the test system sends: its own headers only (JMSXUserID is
    # the broker's to set, from the login: none on this anonymous one)
    for n in picked:
        fakes[n]["headers"] = {
            k: str(v) for k, v in fakes[n].get("headers", {}).items()
            if k not in TRANSPORT and k != "JMSXUserID"}
    ref = resultsdbs("reference")
    for e in updater_expected([fakes[n] for n in picked]):
        for p in e["posts"]:
            for g in p["groups"]:
                g["uuid"] = str(uuid.uuid4())
            ref.post(p)
    total = len(ref.results())
    db = resultsdbs("target")

    u = unique("rdb")
    bport, mport = free_ports(2)
    bcfg = write_config(tmp_path, bridge_config({"umb": {
        "from": "stomp://127.0.0.1:%d" % AMQ_STOMP_PORT, "to": "zmq",
        "source": "/queue/Consumer.%s.VirtualTopic.>" % u,
        "endpoints": tcp(bport)}}), "bridge.json")
    start_bridge(daemons, bcfg)
    cfg = bus_config()
    cfg.update(endpoints={"bridge": [tcp(bport)]}, zmq_linger=0,
               hub={"metrics": "127.0.0.1:%d" % mport, "drain_timeout": 3},
               consumers={"rdb": {
                   "plugin": str(project_plugin("resultsdb")),
                   "dedup_window": 0, "backoff": 0.2,
                   "config": {"api_url": db.url, "timeout": 10}}})
    hub = hubs(write_config(tmp_path, cfg), metrics_port=mport).ready()
    peer = stomp_peers(AMQ_STOMP_PORT)
    # the bridge's queue and its subscriber exist once a message sent to
    # the topic reaches the hub (ignored by the plugin: not a CI result)
    deadline = time.monotonic() + 15 * SLOW
    while hub.metrics()("fedmsg_hub_received_total") == 0:
        assert time.monotonic() < deadline, hub.describe()
        peer.send("/topic/VirtualTopic.eng.ci.zz_sync", '{"sync": 1}')
        time.sleep(0.2)
    for n in picked:
        f = fakes[n]
        peer.send(f["topic"], json.dumps(f["body"]["msg"]),
                  headers=f["headers"])
    wait_until(lambda: len(db.results()) >= total, 30,
               "%d results" % total, hub)
    hub.idle()
    assert comparable(db) == comparable(ref)
    assert comparable(db) == comparable(ref)
