"""A network partition between fedmsg-bridge and its broker (issue 18),
for STOMP (ActiveMQ) and AMQP 0-9-1 (RabbitMQ): the path goes silent, no FIN, no RST (conftest has
no network namespaces to spare, so test_bridge_faults.BlackholeProxy
stands between the bridge and the broker).  The bridge must call the
link dead within 2x the configured heart-beat, keep spooling, reconnect
when the partition heals, and lose nothing (duplicates allowed: what was
in flight on the dead connection may reach the broker late).

(AMQP 1.0 through RabbitMQ: test_bridge_faults.py,
test_amqp_blackholed_connection_idle_timeout.)
"""

import json
import re
import time

import pytest

from conftest import (AMQ_STOMP_PORT, RMQ_AMQP_PORT, BridgeSource,
                      bridge_config, make_envelope, start_bridge, unique,
                      write_config)
from test_bridge_amqp import non_probes, sync_amqp, to_amqp
from test_bridge_faults import AckingReceiver, proxy  # noqa: F401
from test_bridge_stomp import Target, stop_bridge, to_stomp

pytestmark = pytest.mark.usefixtures("broker_time_limit")

DEAD = re.compile(r"no data from \S+ for (\d+) ms \(heart-beat every "
                  r"(\d+) ms\): connection dead")


@pytest.mark.broker_limit(90)
def test_stomp_partition_detected_within_two_heartbeats(tmp_path, activemq,
                                                        daemons, zctx,
                                                        proxy):  # noqa: F811
    hb = 2
    t = Target("activemq", activemq)
    q = "/queue/" + unique("part")
    src = BridgeSource(zctx)
    px = proxy(AMQ_STOMP_PORT)
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_stomp(tmp_path, t, address=q, heartbeat=hb,
                         to="stomp://127.0.0.1:%d" % px.port)},
        endpoints={"src": [src.url]}))
    rcv = AckingReceiver(AMQ_STOMP_PORT, q)
    try:
        bridge = start_bridge(daemons, cfg)
        src.wait_subscriber(daemon=bridge)
        topic = "org.fedoraproject.dev.part.x"
        before = [make_envelope(topic, {"n": i}) for i in range(20)]
        for env in before:
            src.send(env)
        bridge.wait_for(lambda: {e["msg_id"] for e in before} <=
                        set(rcv.got()), 15, "the first 20 messages")
        # three heart-beats on a healthy path: nothing declared dead
        time.sleep(3 * hb)
        assert not DEAD.search(bridge.stderr()), bridge.describe()

        accepted = px.accepted
        px.blackhole()
        bridge.wait_for(lambda: px.holed, 5, "the blackhole")
        during = [make_envelope(topic, {"n": 100 + i}) for i in range(30)]
        for env in during[:15]:
            src.send(env)
        bridge.wait_for(lambda: DEAD.search(bridge.stderr()), 4 * hb + 5,
                        "the partition to be detected")
        silent_ms, beat_ms = map(int, DEAD.search(bridge.stderr()).groups())
        print("link declared dead after %d ms without data (heart-beat "
              "%d ms)" % (silent_ms, beat_ms))
        # the bridge's own clock: no data since before the partition
        # began, declared dead at 2 beats (+ a scheduling tick)
        assert beat_ms <= hb * 1000, "heart-beat negotiated up: %d" % beat_ms
        assert silent_ms <= 2 * hb * 1000 + 500, bridge.describe()
        for env in during[15:]:     # only the spool has these
            src.send(env)
        bridge.wait_for(lambda: px.accepted > accepted, 15,
                        "a reconnect attempt into the partition")
        assert bridge.running(), bridge.describe()
        px.heal()
        want = {e["msg_id"] for e in before + during}
        bridge.wait_for(lambda: want <= set(rcv.got()), 60,
                        "every message sent during the partition")
        ids = rcv.got()
        print("received %d, distinct %d" % (len(ids), len(set(ids))))
        assert set(ids) == want
        assert not rcv.errors, rcv.errors
    finally:
        rcv.close()
    stop_bridge(bridge)


@pytest.mark.broker_limit(90)
def test_amqp091_partition_detected_and_healed(tmp_path, rabbitmq, daemons,
                                               zctx, amqp_peers,
                                               proxy):  # noqa: F811
    """The same over AMQP 0-9-1 (rabbitmq-c): the heart-beat runs out
    (rabbitmq-c's receive limit is 2 beats, checked on the bridge's 1 s
    tick), the bridge reconnects, nothing is lost."""
    hb = 2
    prefix = "org.fedoraproject.dev." + unique("p091")
    src = BridgeSource(zctx)
    px = proxy(RMQ_AMQP_PORT)
    rcv = amqp_peers.receiver("/topic/%s.#" % prefix, credit=1000)
    cfg = write_config(tmp_path, bridge_config(
        {"out": to_amqp(tmp_path, src, heartbeat=hb,
                        to="amqp091://127.0.0.1:%d" % px.port)},
        endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)
    sync_amqp(src, rcv, prefix, bridge)

    def received_ids():
        rcv.pump(0.05)
        return [json.loads(bytes(m.body))["msg_id"] for m in non_probes(rcv)]

    before = [make_envelope(prefix + ".x", {"n": i}) for i in range(20)]
    for env in before:
        src.send(env)
    bridge.wait_for(lambda: {e["msg_id"] for e in before} <=
                    set(received_ids()), 15, "the first 20 messages")
    time.sleep(3 * hb)
    received_ids()
    healthy = bridge.stderr()

    accepted = px.accepted
    px.blackhole()
    bridge.wait_for(lambda: px.holed, 5, "the blackhole")
    t_hole = time.monotonic()
    during = [make_envelope(prefix + ".x", {"n": 100 + i})
              for i in range(30)]
    for env in during[:15]:
        src.send(env)
    bridge.wait_for(lambda: px.accepted > accepted, 4 * hb + 15,
                    "the partition detected and a reconnect attempted")
    print("reconnect attempt %.1f s into the partition (heart-beat %d s); "
          "log: %s" % (time.monotonic() - t_hole, hb,
                       bridge.stderr()[len(healthy):].strip()[:600]))
    assert "connection lost: heartbeat timeout" in \
        bridge.stderr()[len(healthy):], bridge.describe()
    for env in during[15:]:
        src.send(env)
    assert bridge.running(), bridge.describe()
    px.heal()
    want = {e["msg_id"] for e in before + during}
    bridge.wait_for(lambda: want <= set(received_ids()), 60,
                    "every message sent during the partition")
    ids = received_ids()
    print("received %d, distinct %d" % (len(ids), len(set(ids))))
    assert set(ids) == want
    stop_bridge(bridge)
