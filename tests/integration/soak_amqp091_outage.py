"""A 30 s RabbitMQ outage under a steady real-fedmsg load, through
fedmsg-bridge on AMQP 0-9-1 with publisher confirms (issue 14).  Too long
for `make test` (the outage alone is 30 s, plus RabbitMQ's restart), so
the file name does not match test_*.py: `make soak` runs it by name.

  real fedmsg publisher (fedmsg.publish, signing, 10/s, never pausing)
    -> fedmsg-relay -> fedmsg-bridge (amqp091://, confirms, disk spool)
    -> RabbitMQ, a durable queue -> pika reads it after the run

RabbitMQ is stopped for OUTAGE_S seconds while the publisher goes on, then
started again.  Every msg_id published arrives, and none twice.  (A
publish the broker had stored but not yet confirmed when it stopped would
be sent again and arrive twice; at 10 a second, with confirms within
milliseconds, that window is nearly always empty: the assertion names the
msg_ids if it ever is not.)
"""

import collections
import os
import threading
import time

import pytest

from amqp091_setup import URL091, drain_ids, guest_entry
from conftest import (bridge_config, free_ports, start_bridge, tcp, unique,
                      write_config)
from test_peer_fedmsg import relay_on, site_config

pytestmark = pytest.mark.usefixtures("broker_time_limit")

OUTAGE_S = float(os.environ.get("FM_OUTAGE_S", "30"))
RATE = 10                       # messages per second


@pytest.mark.broker_limit(600)
def test_outage_with_confirms_loses_nothing(tmp_path, rabbitmq, daemons,
                                            fedmsg_peer, dev_pki):
    rabbitmq.ensure()
    p_in, p_out = free_ports(2)
    site = tmp_path / "site"
    confdir = fedmsg_peer.write_site(site, site_config(dev_pki, p_in, p_out),
                                     "10-bus")
    relay_on(daemons, confdir)
    topic_word = unique("outage")
    queue = unique("outq")
    cfg = write_config(tmp_path, bridge_config(
        {"out": guest_entry(tmp_path, **{
            "from": "zmq", "endpoints": ["relay_outbound"], "to": URL091,
            "address": "/topic/{topic}",
            "spool": {"dir": str(tmp_path / "spool")},
            "queues": {queue: {"durable": True, "auto_delete": False}},
            "bindings": [{"queue": queue, "exchange": "amq.topic",
                          "routing_keys": ["#.%s.#" % topic_word]}]})},
        endpoints={"relay_outbound": [tcp(p_out)]}))
    bridge = start_bridge(daemons, cfg)
    pub = fedmsg_peer.publisher(site)

    # the slow joiners: publish until the first one is in the queue
    sent = []
    deadline = time.monotonic() + 30
    while not rabbitmq.queues().get(queue, (0,))[0]:
        assert time.monotonic() < deadline, bridge.describe()
        sent.append(pub.publish(topic_word + ".sync", {})["msg_id"])
        time.sleep(0.5)

    stop = threading.Event()
    errors = []

    def publish_steadily():
        n = 0
        try:
            while not stop.is_set():
                n += 1
                sent.append(pub.publish(topic_word + ".load",
                                        {"n": n})["msg_id"])
                time.sleep(1.0 / RATE)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=publish_steadily, daemon=True)
    t.start()
    try:
        time.sleep(3)
        rabbitmq.stop()
        down_at = time.monotonic()
        bridge.wait_stderr("cannot connect", 30)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        rabbitmq.start()
        outage = time.monotonic() - down_at
        deadline = time.monotonic() + 60
        while bridge.stderr().count("amqp091 out: connected") < 2:
            assert time.monotonic() < deadline, bridge.describe()
            time.sleep(0.2)
        time.sleep(3)
    finally:
        stop.set()
        t.join(30)
    assert not errors, errors
    want = set(sent)
    got = drain_ids(queue, want, 120)
    missing = want - set(got)
    twice = {k: v for k, v in collections.Counter(got).items() if v > 1}
    print("outage %.1f s: %d published, %d received, %d missing, %d twice"
          % (outage, len(want), len(got), len(missing), len(twice)))
    assert not missing, (sorted(missing)[:10], bridge.describe())
    assert not twice, twice
    assert bridge.stop() == 0, bridge.describe()
