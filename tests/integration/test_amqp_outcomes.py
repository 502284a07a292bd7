"""fedmsg-bridge publishing on AMQP 1.0 to a broker that settles some
messages other than "accepted" (issue 14, "bounded AMQP 1.0 publish
outcomes"), played by a listening python3-qpid-proton peer
(conftest.ProtonListener):

- "rejected" (refused for good: too big, not authorised, a policy): sent
  once, never again; the broker's error condition is in the log and the
  message is counted dropped;
- "modified" with undeliverable-here: sent again with the pauses a
  "released" gets, then given up (logged, counted dropped);
- the messages behind them still go out.
"""

import time

import pytest

from conftest import (ProtonListener, SettlingPeer, bridge_stats,
                      bridge_to_listener, free_ports, make_envelope)

pytestmark = pytest.mark.usefixtures("zmq_time_limit")

CONDITION = "amqp:resource-limit-exceeded"
DESCRIPTION = "message size exceeds the max-message-size policy"


def reject(handler, d):
    """Refused for good, with the broker's condition."""
    from proton import Condition, Delivery
    d.local.condition = Condition(CONDITION, DESCRIPTION)
    d.update(Delivery.REJECTED)
    d.settle()


def modify(handler, d):
    """Modified: delivery-failed, undeliverable-here."""
    from proton import Delivery
    d.local.failed = True
    d.local.undeliverable = True
    d.update(Delivery.MODIFIED)
    d.settle()


def test_rejected_is_reported_and_modified_is_bounded(tmp_path, daemons,
                                                      zctx):
    # rejects "toobig" subjects, modifies "elsewhere" ones
    peer = SettlingPeer([("toobig", reject), ("elsewhere", modify)])
    listener = ProtonListener(free_ports(1)[0], peer.handler)
    try:
        src, bridge = bridge_to_listener(tmp_path, daemons, zctx,
                                         listener.port, "/queue/outcomes")
        big = make_envelope("org.fedoraproject.dev.toobig.x", {"n": 0})
        moved = make_envelope("org.fedoraproject.dev.elsewhere.x", {"n": 1})
        ok = [make_envelope("org.fedoraproject.dev.fine.ok", {"n": i})
              for i in range(2, 4)]
        for env in [big, moved] + ok:
            src.send(env)
        # the rejection at once, with the broker's words
        bridge.wait_stderr("dropped: the broker refused it: rejected: "
                           "%s: %s" % (CONDITION, DESCRIPTION), 15)
        bridge.wait_stderr("dropped: the broker refused it: modified 4 times", 12)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and \
                not {e["msg_id"] for e in ok} <= set(peer.ids("fine.ok")):
            time.sleep(0.1)
        assert {e["msg_id"] for e in ok} <= set(peer.ids("fine.ok"))
        err = bridge.stderr()
        assert "record 1 rejected: %s" % CONDITION in err, err
        assert "record 2 modified 4 times" in err, err
        st = bridge_stats(bridge_stop_ok(bridge), "out")
        assert st["dropped"] == 2, st
        assert peer.ids("toobig") == [big["msg_id"]], peer.got
        assert peer.ids("elsewhere") == [moved["msg_id"]] * 4, peer.got
        assert listener.error is None, listener.error
    finally:
        listener.stop()


def bridge_stop_ok(bridge):
    rc = bridge.stop()
    assert rc == 0, bridge.describe()
    return bridge.stderr()
