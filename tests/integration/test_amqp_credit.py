"""How fedmsg-bridge gives AMQP 1.0 credit back, seen from the other end:
a python3-qpid-proton peer that LISTENS (the bridge connects to it as to a
broker), sends envelopes on the link the bridge receives on, one per
millisecond as credit allows (each in a read of its own, as from a busy
broker), and records every flow frame that gives credit.

The bridge holds at most `credit` deliveries unsettled (the window), and
gives settled credit back half a window at a time, as qpid-proton's own
examples do: a flow frame per message made RabbitMQ handle one each (its
CPU per message fell by a fifth without them, `make bench`).  Checked
here: every message goes out, the credit the peer sees plus what it has
sent unsettled never exceeds the window, and the flow frames number about
N / (window / 2), not about N."""

import threading

import pytest

from conftest import (ProtonListener, answer_link, bridge_config,
                      bridge_stats, canonical, free_ports, make_envelope,
                      start_bridge, tcp, write_config)

pytestmark = pytest.mark.usefixtures("zmq_time_limit")

N = 200
WINDOW = 20


class CreditPeer:
    """Sends `envelopes` on the link the bridge receives on, one per
    millisecond as credit allows; grants: the credit after each flow frame that gave some (the
    credit the peer sees rises only by one); accepted: deliveries the
    bridge accepted."""

    def __init__(self, envelopes):
        from proton.handlers import MessagingHandler

        peer = self
        self.todo = list(envelopes)
        self.lock = threading.Lock()
        self.grants = []
        self.accepted = 0

        class Handler(MessagingHandler):
            def __init__(self):
                super().__init__(auto_accept=False, auto_settle=True)
                self.credit = 0
                self.snd = None

            on_link_opening = staticmethod(answer_link)

            def on_link_flow(self, event):
                snd = event.link
                if not snd.is_sender:
                    return
                if snd.credit > self.credit:
                    with peer.lock:
                        peer.grants.append(snd.credit)
                self.credit = snd.credit
                if self.snd is None:
                    self.snd = snd
                    event.container.schedule(0.001, self)

            def on_timer_task(self, event):
                # one message per millisecond: each comes in a read of
                # its own, as from a broker under load
                from proton import Message
                snd = self.snd
                if snd.credit and peer.todo:
                    snd.send(Message(body=peer.todo.pop(0), inferred=True,
                                     content_type="application/json"))
                self.credit = snd.credit
                if peer.todo:
                    event.container.schedule(0.001, self)

            def on_accepted(self, event):
                with peer.lock:
                    peer.accepted += 1

        self.listener = ProtonListener(free_ports(1)[0], Handler())
        self.url = "amqp://127.0.0.1:%d" % self.listener.port

    def snapshot(self):
        with self.lock:
            return list(self.grants), self.accepted


def test_credit_given_back_half_a_window_at_a_time(tmp_path, daemons):
    envs = [canonical(make_envelope("org.fedoraproject.dev.credit.test",
                                    {"n": i}, i=i)).encode()
            for i in range(N)]
    peer = CreditPeer(envs)
    port, = free_ports(1)
    cfg = write_config(tmp_path, bridge_config(
        {"in": {"from": peer.url, "to": "zmq", "source": "/queue/credit",
                "credit": WINDOW, "endpoints": tcp(port)}}))
    try:
        bridge = start_bridge(daemons, cfg)
        bridge.wait_for(lambda: peer.snapshot()[1] == N, 20,
                        "every delivery accepted (%s)" % peer.listener.error)
        grants, _ = peer.snapshot()
        # never more than the window at once; the first grant is the
        # window, then about one per half window (slack for reads that
        # end mid-way)
        assert max(grants) <= WINDOW, grants
        assert len(grants) <= 2 * N // (WINDOW // 2) + 2, (len(grants),
                                                           grants[:60])
        # accepted once ZeroMQ had it: all of them went out
        st = bridge_stats(bridge.stop() == 0 and bridge.stderr(), "in")
        assert st["out"] == N, st
    finally:
        peer.listener.stop()
