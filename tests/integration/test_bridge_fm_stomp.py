"""fedmsg-bridge's "fedora-messaging" format on STOMP (README "Message
formats"): fedora-messaging's headers (schema, severity, sent-at,
priority, the user filter headers, the envelope's own headers) travel
as STOMP text headers, read by stomp.py (conftest.StompPeer) on the
session's ActiveMQ.  broker_time_limit comes after the broker fixtures:
a broker's start is not the test's.
"""

import json
import time

from conftest import (AMQ_STOMP_PORT, HOST, BridgeSource, bridge_config,
                      make_envelope, start_bridge, unique, wait_until,
                      write_config)

STOMP_URL = "stomp://127.0.0.1:%d" % AMQ_STOMP_PORT


def test_fedora_messaging_headers_on_stomp(tmp_path, activemq, daemons, zctx,
                                           stomp_peers, broker_time_limit):
    prefix = "org.fedoraproject.dev." + unique("fms")
    src = BridgeSource(zctx)
    peer = stomp_peers(AMQ_STOMP_PORT)
    sid = peer.subscribe("/topic/%s.>" % prefix)
    cfg = write_config(tmp_path, bridge_config(
        {"out": {"from": "zmq", "to": STOMP_URL, "endpoints": ["src"],
                 "format": "fedora-messaging", "schema": "test.fms.v1",
                 "address": "/topic/{topic}",
                 "spool": {"dir": str(tmp_path / "spool")}}},
        endpoints={"src": [src.url]}))
    bridge = start_bridge(daemons, cfg)
    src.wait_subscriber(daemon=bridge)

    def of(topic):
        return [(h, b) for h, b in peer.of(sid)
                if h.get("destination") == "/topic/" + topic]

    # until the bridge is connected and subscribed: one sync message
    deadline = time.monotonic() + 15
    n = 0
    while not any("zz_sync" in h.get("destination", "")
                  for h, _ in peer.of(sid)):
        n += 1
        src.send(make_envelope("%s.zz_sync%d" % (prefix, n), {"n": n}))
        time.sleep(0.2)
        assert bridge.running(), bridge.describe()
        assert time.monotonic() < deadline, "no sync message went through"

    env = make_envelope(prefix + ".update", {"agent": "alice", "n": 3})
    env["timestamp"] = 1714658591
    env["headers"] = {"extra": 7, "flag": True}
    src.send(env)
    wait_until(lambda: of(env["topic"]), 15, "the message on STOMP")
    h, body = of(env["topic"])[0]
    assert json.loads(body) == {"agent": "alice", "n": 3}
    assert h["topic"] == env["topic"]
    assert h["fedmsg_c_bridge"] == "%s/out" % HOST
    assert h["fedora_messaging_schema"] == "test.fms.v1"
    assert h["fedora_messaging_severity"] == "20"
    assert h["sent-at"] == "2024-05-02T14:03:11+00:00"
    assert h["fedora_messaging_user_alice"] == "true"
    assert h["extra"] == "7" and h["flag"] == "true"
    # ActiveMQ takes it as the JMS priority: 0, not its default 4
    assert h["priority"] == "0", h
    rc = bridge.stop()
    assert rc == 0, bridge.describe()
