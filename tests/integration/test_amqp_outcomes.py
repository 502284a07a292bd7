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

import json
import signal
import time

import pytest

from conftest import (BridgeSource, ProtonListener, SettlingPeer,
                      answer_link, bridge_config, bridge_stats,
                      bridge_to_listener, free_ports, make_envelope,
                      start_bridge, wait_until, write_config)

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


class HeldAcceptor:
    """The broker side of a ProtonListener that holds every delivery
    unsettled until release(), then accepts them all (and any later one
    at once): a broker slow to confirm, on the test's cue."""

    def __init__(self):
        import threading
        from proton import Delivery
        from proton.handlers import MessagingHandler

        peer = self
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.closing = threading.Event()   # close() was asked
        self.gone = threading.Event()      # a connection's transport closed
        self.ids = []
        held, conns = [], []
        self.conns = conns

        class Check:
            def on_timer_task(self, event):
                if peer.closing.is_set():
                    for c in conns:
                        c.close()
                    return
                if not peer.released.is_set():
                    event.container.schedule(0.05, self)
                    return
                while held:
                    d = held.pop()
                    d.update(Delivery.ACCEPTED)
                    d.settle()

        class Handler(MessagingHandler):
            def __init__(self):
                super().__init__(auto_accept=False)

            on_link_opening = staticmethod(answer_link)

            def on_message(self, event):
                with peer.lock:
                    peer.ids.append(json.loads(bytes(event.message.body))
                                    ["msg_id"])
                held.append(event.delivery)
                conns.append(event.connection)
                event.container.schedule(0, Check())

            def on_transport_closed(self, event):
                peer.gone.set()

        self.handler = Handler()

    def release(self):
        self.released.set()

    def close(self):
        """Go away with what is held: the connections closed, and their
        close through to the other side before this returns (a listener
        stopped first would leave the socket open, the bridge none the
        wiser)."""
        self.closing.set()
        if self.conns:
            self.gone.wait(5)

    def got(self):
        with self.lock:
            return list(self.ids)


def test_stop_waits_for_the_broker_to_confirm(tmp_path, daemons, zctx):
    """SIGTERM while a send waits for the broker's "accepted": the bridge
    stops reading ZeroMQ, waits for it (up to 2 s), and exits with the
    record out of the spool, so the next start does not send it again."""
    peer = HeldAcceptor()
    listener = ProtonListener(free_ports(1)[0], peer.handler)
    try:
        src = BridgeSource(zctx)
        cfg = write_config(tmp_path, bridge_config(
            {"out": {"from": "zmq", "endpoints": ["src"],
                     "to": "amqp://127.0.0.1:%d" % listener.port,
                     "address": "/queue/slow",
                     "spool": {"dir": str(tmp_path / "spool")}}},
            endpoints={"src": [src.url]}))
        bridge = start_bridge(daemons, cfg)
        src.wait_subscriber(daemon=bridge)
        env = make_envelope("org.fedoraproject.dev.slow.x", {"n": 1})
        src.send(env)
        wait_until(lambda: peer.got(), 15, "the delivery", bridge)
        bridge.proc.send_signal(signal.SIGTERM)
        bridge.wait_stderr("stopping: waiting up to 2000 ms for the "
                           "brokers to confirm 1 sends")
        peer.release()
        st = bridge_stats(bridge_stop_ok(bridge), "out")
        assert (st["in"], st["out"]) == (1, 1), st

        again = start_bridge(daemons, cfg)
        time.sleep(1.5)                 # a resend would come at once
        bridge_stop_ok(again)
        assert peer.got() == [env["msg_id"]]
        assert listener.error is None, listener.error
    finally:
        listener.stop()


class ResettingListener:
    """A TCP listener that reads what a client sends first (a TLS
    ClientHello, an AMQP header) and answers with a reset: a broker that
    refuses the client during the handshake, its alert lost."""

    def __init__(self):
        import socket
        import struct
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.done = threading.Event()

        def serve():
            while not self.done.is_set():
                try:
                    c, _ = self.sock.accept()
                except OSError:
                    continue
                c.settimeout(2)
                try:
                    c.recv(4096)
                except OSError:
                    pass
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
                c.close()
        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def stop(self):
        self.done.set()
        self.thread.join(5)
        self.sock.close()


@pytest.mark.parametrize("scheme", ["amqps", "amqp"])
def test_reset_before_the_open_names_the_stage(tmp_path, daemons, zctx,
                                               dev_pki, scheme):
    """A reset before the broker's AMQP open: on amqps:// the reason says
    it came during the TLS handshake or the login (a refused certificate
    whose alert was lost); on amqp:// it is the reset alone."""
    lst = ResettingListener()
    try:
        src = BridgeSource(zctx)
        entry = {"from": "zmq", "endpoints": ["src"],
                 "to": "%s://localhost:%d" % (scheme, lst.port),
                 "address": "/queue/x",
                 "spool": {"dir": str(tmp_path / "spool")}}
        if scheme == "amqps":
            entry["tls"] = {"ca": str(dev_pki / "ca.crt")}
        cfg = write_config(tmp_path, bridge_config(
            {"out": entry}, endpoints={"src": [src.url]}))
        bridge = start_bridge(daemons, cfg, wait=None)
        bridge.wait_for(lambda: bridge.stderr().count("retrying in") >= 2,
                        15, "two refused attempts")
        fails = [line for line in bridge.stderr().splitlines()
                 if "retrying in" in line]
        stage = "(during the TLS handshake or the login)"
        assert all((stage in line) == (scheme == "amqps")
                   for line in fails), fails
        bridge_stop_ok(bridge)
    finally:
        lst.stop()


def test_stop_with_the_broker_gone_does_not_wait(tmp_path, daemons, zctx):
    """The broker goes away holding a send unconfirmed: a stop then has
    nothing to wait for (the send stays spooled for the next start)."""
    peer = HeldAcceptor()
    listener = ProtonListener(free_ports(1)[0], peer.handler)
    try:
        src, bridge = bridge_to_listener(tmp_path, daemons, zctx,
                                         listener.port, "/queue/gone")
        src.send(make_envelope("org.fedoraproject.dev.gone.x", {"n": 1}))
        wait_until(lambda: peer.got(), 15, "the delivery", bridge)
    finally:
        peer.close()
        listener.stop()
    bridge.wait_stderr("retrying in", 15)
    text = bridge_stop_ok(bridge)
    assert "stopping: waiting" not in text, text
    st = bridge_stats(text, "out")
    assert (st["in"], st["out"]) == (1, 0), st
