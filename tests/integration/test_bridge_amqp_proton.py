"""fedmsg-bridge against a second AMQP 1.0 broker: the example broker that
ships with qpid-proton (/usr/share/proton/examples/c/broker.c, from
libqpid-proton11-dev-examples, built unchanged into
build/tests/proton-broker by `make integration`).  Debian 12 has no other
AMQP 1.0 broker than RabbitMQ's plugin; this one is code we did not
write, with its own behaviour:

  * it delivers pre-settled (at most once) to receivers, so the AMQP ->
    ZeroMQ bridge sees deliveries it must not settle again;
  * it grants senders a credit window of 5 and accepts each message once
    queued, so the ZeroMQ -> AMQP bridge's window is the broker's;
  * addresses are plain queue names, made on first use; no SASL users.

What must hold whatever the broker: every message comes out, in order,
byte for byte, with the coalescing wait after a turn at its default
(0 on AMQP), off, or at its longest (10 ms).
"""

import socket
import subprocess
import time

import pytest

from conftest import (FM_BUILD, BridgeSource, Probes, Sub, AmqpReceiver,
                      AmqpSender, bridge_config, bridge_stats, canonical,
                      free_ports, make_envelope, start_bridge, tcp, unique,
                      wait_until, write_config)

BROKER = FM_BUILD / "tests" / "proton-broker"
N = 300


@pytest.fixture
def proton_broker(tmp_path):
    """The example broker on a free port: its amqp:// URL."""
    if not BROKER.exists():
        pytest.fail("%s is missing: run `make integration`" % BROKER,
                    pytrace=False)
    port = free_ports(1)[0]
    log = open(tmp_path / "proton-broker.log", "wb")
    p = subprocess.Popen([str(BROKER), "127.0.0.1", str(port)],
                         stdout=log, stderr=subprocess.STDOUT)
    url = "amqp://127.0.0.1:%d" % port
    try:
        # ready once it accepts a connection (never a blocking read)
        deadline = time.monotonic() + 10
        while True:
            assert p.poll() is None, "proton broker exited: %s" % (
                (tmp_path / "proton-broker.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, \
                    "proton broker not listening on %d in 10 s" % port
                time.sleep(0.05)
        yield url
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()


def stop_bridge(bridge):
    rc = bridge.stop()
    assert rc == 0, bridge.describe()
    return bridge.stderr()


def burst(prefix):
    return [canonical(make_envelope("%s.burst.x" % prefix, {"n": i}))
            for i in range(N)]


@pytest.mark.parametrize("coalesce_us", [None, 0, 10000])
def test_amqp_to_zmq_presettled_in_order(tmp_path, daemons, zctx,
                                      proton_broker, coalesce_us):
    """N envelopes from python3-qpid-proton into the broker's queue: the
    bridge reads them pre-settled and every one comes out on ZeroMQ, in
    order, byte for byte."""
    queue = unique("q")
    port = free_ports(1)[0]
    b = {"from": proton_broker, "to": "zmq", "source": queue,
         "endpoints": tcp(port)}
    if coalesce_us is not None:
        b["coalesce_us"] = coalesce_us
    bridge = start_bridge(daemons, write_config(tmp_path, bridge_config(
        {"in": b})))
    sub = Sub(zctx, tcp(port))
    send = AmqpSender(queue, url=proton_broker)
    probes = Probes(prefix=unique("p"))
    try:
        sub.sync(lambda frames: send.send(frames[1]), probes)
        sent = burst(unique("org.fedoraproject.dev"))
        for body in sent:
            send.send(body.encode())
        end = probes.make("end")
        send.send(canonical(end).encode())
        sub.wait_probe(end["msg_id"], 15)
    finally:
        send.close()
    assert [body for _, body in sub.msgs] == [b.encode() for b in sent]
    st = bridge_stats(stop_bridge(bridge), "in")
    assert st["out"] == st["in"] and st["dropped"] == 0, st


def test_zmq_to_amqp_within_the_broker_credit(tmp_path, daemons,
                                                     zctx, proton_broker):
    """N envelopes from a fedmsg endpoint: the bridge sends each within
    the broker's credit (5) and waits for its acceptance; a proton
    receiver then gets every one from the queue, in order, byte for
    byte, and everything the bridge took from ZeroMQ went out."""
    queue = unique("q")
    src = BridgeSource(zctx)
    b = {"from": "zmq", "to": proton_broker, "endpoints": ["src"],
         "address": queue, "spool": {"dir": str(tmp_path / "spool")}}
    bridge = start_bridge(daemons, write_config(tmp_path, bridge_config(
        {"out": b}, endpoints={"src": [src.url]})))
    src.wait_subscriber(daemon=bridge)
    prefix = unique("org.fedoraproject.dev")
    rcv = AmqpReceiver(queue, accept=False, url=proton_broker)
    try:
        # the slow joiner: probes until one is through
        probes = Probes(prefix=prefix + ".zz_probe")
        deadline = time.monotonic() + 15
        while not any(Probes.is_probe(body) for body in rcv.bodies()):
            assert time.monotonic() < deadline, bridge.describe()
            src.send(probes.make("sync"))
            rcv.pump(0.2)
        sent = burst(prefix)
        for body in sent:
            src.send([("%s.burst.x" % prefix).encode(), body.encode()])
        def burst_received():
            rcv.pump(0.1)
            return [x for x in rcv.bodies() if not Probes.is_probe(x)]

        wait_until(lambda: len(burst_received()) >= N, timeout=30,
                   what="%d messages from the broker" % N)
        got = burst_received()
    finally:
        rcv.close()
    assert got == [b.encode() for b in sent]
    st = bridge_stats(stop_bridge(bridge), "out")
    assert st["out"] == st["in"] and st["out"] >= N, st
    assert st["dropped"] == 0, st
