"""A ZeroMQ -> AMQP 1.0 bridge whose spool's disk fills up: the bridge
runs in a mount namespace of its own (`unshare -m`) with its spool on a
64 KiB tmpfs, and sends to a python3-qpid-proton peer that holds every
delivery unsettled until the test lets it accept them.

What must hold: appends that find no space fail with the reason (ENOSPC)
and how many messages they held, counted as dropped; the bridge neither
crashes nor hangs; what was spooled before the disk filled is delivered,
once each, when the broker takes it."""

import json
import os
import re
import shutil
import subprocess
import threading

import pytest

from conftest import (BridgeSource, ProtonListener, answer_link,
                      bridge_config, bridge_stats, free_ports, make_envelope,
                      start_bridge, wait_until, write_config)

pytestmark = pytest.mark.usefixtures("zmq_time_limit")


def _unavailable():
    """Why this machine cannot give the bridge a tmpfs of its own, or None."""
    if os.geteuid() != 0:
        return "not root"
    if not shutil.which("unshare"):
        return "no unshare (util-linux)"
    p = subprocess.run(["unshare", "-m", "sh", "-c",
                        "mount -t tmpfs -o size=4k none /mnt"],
                       capture_output=True, text=True, timeout=10)
    if p.returncode != 0:
        return "cannot mount a tmpfs in a mount namespace: %s" % p.stderr
    return None


class HoldingPeer:
    """Keeps every delivery unsettled until release(); then accepts them
    all, and what comes later at once (on the container's thread, by a
    timer).  ids(): msg_ids received, in order."""

    def __init__(self):
        from proton.handlers import MessagingHandler

        peer = self
        self.lock = threading.Lock()
        self.got = []
        self.releasing = False

        class Handler(MessagingHandler):
            def __init__(self):
                super().__init__(auto_accept=False)
                self.held = []
                self.timer = False

            def on_link_opening(self, event):
                answer_link(event)
                if not self.timer:
                    self.timer = True
                    event.container.schedule(0.1, self)

            def on_message(self, event):
                msg_id = json.loads(bytes(event.message.body))["msg_id"]
                with peer.lock:
                    peer.got.append(msg_id)
                self.held.append(event.delivery)
                self.settle_held()

            def settle_held(self):
                with peer.lock:
                    go = peer.releasing
                if go:
                    for d in self.held:
                        self.accept(d)
                    self.held = []

            def on_timer_task(self, event):
                self.settle_held()
                event.container.schedule(0.1, self)

        self.listener = ProtonListener(free_ports(1)[0], Handler())

    def release(self):
        with self.lock:
            self.releasing = True

    def ids(self):
        with self.lock:
            return list(self.got)


def not_spooled(err):
    """How many messages the bridge said it could not spool."""
    return sum(int(n) for n in
               re.findall(r"\((\d+) messages? not spooled\)", err))


def test_spool_disk_full_is_reported_and_loses_nothing_spooled(
        tmp_path, daemons, zctx):
    why = _unavailable()
    if why:
        pytest.skip("no tmpfs for the spool: %s" % why)
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    peer = HoldingPeer()
    try:
        src = BridgeSource(zctx)
        cfg = write_config(tmp_path, bridge_config(
            {"out": {"from": "zmq", "endpoints": ["src"],
                     "to": "amqp://127.0.0.1:%d" % peer.listener.port,
                     "address": "/queue/full",
                     "spool": {"dir": str(spool)}}},
            endpoints={"src": [src.url]}))
        mount = ('mount -t tmpfs -o size=64k,mode=0700 fmspool "%s" && '
                 'exec "$0" "$@"' % spool)
        bridge = start_bridge(daemons, cfg,
                              prefix=("unshare", "-m", "sh", "-c", mount))
        src.wait_subscriber(daemon=bridge)
        # 4 KiB each: the tmpfs holds about 15
        envs = [make_envelope("org.fedoraproject.dev.full.x",
                              {"n": i, "pad": "x" * 4000})
                for i in range(40)]
        for env in envs:
            src.send(env)
        # every message either spooled (and sent: the peer holds it) or
        # reported not spooled, with the reason
        wait_until(lambda: len(peer.ids()) + not_spooled(bridge.stderr())
                   == len(envs), 20, "all 40 spooled or reported")
        err = bridge.stderr()
        assert "No space left on device" in err, err[-2000:]
        assert bridge.proc.poll() is None, "the bridge died"
        spooled = peer.ids()
        assert 5 <= len(spooled) < len(envs), len(spooled)
        # the broker takes them: each once, in the order sent
        peer.release()
        sent = [e["msg_id"] for e in envs]
        assert len(spooled) == len(set(spooled)), spooled
        assert spooled == [i for i in sent if i in set(spooled)]
        st = bridge_stats(bridge.stop() == 0 and bridge.stderr(), "out")
        assert st["dropped"] == len(envs) - len(spooled), st
        assert peer.ids() == spooled    # nothing sent twice
    finally:
        peer.listener.stop()
