"""Memory stays bounded before any check of ours runs.

libzmq reads a whole frame into memory before the program sees it.  Every
socket that receives from the network gets ZMQ_MAXMSGSIZE =
max_message_bytes, so a frame that announces more makes libzmq drop the
peer's connection after reading the frame header.  These tests send one
4 x 16 MiB multipart message and check the receiving program's peak RSS
(VmHWM) stays near what it was idle, and that it still works afterwards.
On a socket without the option the program's peak grows by the size of
the message (libzmq queues every frame of it).
"""

import time

import pytest

from conftest import (Probes, Sub, active_publisher, bus_config,
                      finish_tail, free_ports, make_envelope, start_relay,
                      sync_tail, tcp, wire, write_config, zmq_module,
                      zsocket)

pytestmark = pytest.mark.usefixtures("zmq_time_limit")

MiB = 1024 * 1024
FRAME = 16 * MiB
FRAMES = 4
# The peak may move a little (log lines, libzmq's 8 KiB read buffer, the
# sanitizer's allocator); one whole frame queued would be 16 MiB.
SLACK_KB = 8 * 1024


def vm_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (key, pid))


def monitor(sock):
    zmq = zmq_module()
    return sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)


def send_big(sock):
    # the same buffer four times, not copied: keeps this process small
    blob = b"x" * FRAME
    sock.send_multipart([blob] * FRAMES, copy=False)


def wait_refused(daemon, mon, needle, timeout=60.0):
    """Until libzmq dropped our connection (the fix) or the program logged
    dropping the message it had read whole (no limit on the socket)."""
    zmq = zmq_module()
    from zmq.utils.monitor import recv_monitor_message

    gone = []

    def done():
        while mon.poll(0):
            if recv_monitor_message(mon)["event"] == \
                    zmq.EVENT_DISCONNECTED:
                gone.append(True)
        return bool(gone) or needle in daemon.stderr()

    daemon.wait_for(done, timeout, "the big message to be refused")
    return bool(gone)


def test_relay_big_multipart_message_keeps_memory_bounded(tmp_path, daemons,
                                                          zctx):
    p_in, p_out = free_ports(2)
    cfg = write_config(tmp_path, bus_config(
        relay_inbound=tcp(p_in), endpoints={"relay_outbound": [tcp(p_out)]},
        max_message_bytes=1 * MiB))
    relay = start_relay(daemons, cfg)
    pub = active_publisher(zctx, tcp(p_in))
    sub = Sub(zctx, tcp(p_out))
    probes = Probes()
    sub.sync(pub.send_multipart, probes)
    idle = vm_kb(relay.pid, "VmHWM")

    big = active_publisher(zctx, tcp(p_in))
    mon = monitor(big)
    send_big(big)
    dropped = wait_refused(relay, mon, "dropped a message with")
    peak = vm_kb(relay.pid, "VmHWM")
    print("relay VmHWM idle %d kB, after %d x %d MiB: %d kB" % (
        idle, FRAMES, FRAME // MiB, peak))
    assert peak - idle < SLACK_KB, (idle, peak)
    assert dropped, relay.describe()

    # the relay still forwards, and the big message never came out
    good = make_envelope("org.fedoraproject.dev.test.after_big", {"n": 1})
    pub.send_multipart(wire(good))
    sub.finish(pub.send_multipart, probes)
    assert sub.msgs == [wire(good)]
    assert relay.running()
    assert relay.stop() == 0


def test_subscriber_big_multipart_message_keeps_memory_bounded(
        tmp_path, daemons, zctx):
    """The SUB side (bus.c, shared by fedmsg-tail, the gateway, the hub and
    the bridges), through fedmsg-tail."""
    zmq = zmq_module()
    port, = free_ports(1)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(port))
    mon = monitor(pub)
    cfg = write_config(tmp_path, bus_config(
        endpoints={"svc": [tcp(port)]}, max_message_bytes=1 * MiB))
    tail = daemons("fedmsg-tail", ["--config", cfg, "--json"], config=cfg)
    probes = Probes()
    sync_tail(tail, pub.send_multipart, probes)
    idle = vm_kb(tail.pid, "VmHWM")

    send_big(pub)
    dropped = wait_refused(tail, mon, "dropped a message with")
    peak = vm_kb(tail.pid, "VmHWM")
    print("tail VmHWM idle %d kB, after %d x %d MiB: %d kB" % (
        idle, FRAMES, FRAME // MiB, peak))
    assert peak - idle < SLACK_KB, (idle, peak)
    assert dropped, tail.describe()
    tail.wait_stderr("connection lost")
    line = [x for x in tail.stderr().splitlines() if "connection lost" in x]
    assert tcp(port) in line[0] and "max_message_bytes = 1048576" in line[0]

    # the SUB reconnects by itself and prints the next messages (probes
    # with a new prefix: sync_tail looks for the prefix in all output)
    again = Probes(prefix="org.fedoraproject.dev.zz_again")
    sync_tail(tail, pub.send_multipart, again, timeout=30)
    good = make_envelope("org.fedoraproject.dev.test.after_big", {"n": 2})
    pub.send_multipart(wire(good))
    finish_tail(tail, pub.send_multipart, again)
    assert "after_big" in tail.stdout().decode()
    assert tail.stop() == 0


def test_gateway_subscriptions_are_bounded(tmp_path, daemons, zctx):
    """A PUB receives only subscriptions: topic prefixes, which libzmq
    keeps at some 32 bytes of memory per byte.  The gateway's (a public
    socket) takes none longer than 4 KiB: a subscriber sending 128 of
    16 KiB is dropped (its prefixes never kept), and the others still
    get what it publishes.  (Not longer ones here: libzmq frees its
    tree recursively, a frame per byte, and a 256 KiB prefix overflows
    the stack of the process that closes such a SUB, this one.)"""
    zmq = zmq_module()
    p_pub, p_gw = free_ports(2)
    cfg = write_config(tmp_path, bus_config(endpoints={"svc": [tcp(p_pub)]}))
    pub = zsocket(zctx, zmq.PUB, bind=tcp(p_pub))
    gw = daemons("fedmsg-gateway", ["--config", cfg, "--bind", tcp(p_gw)],
                 config=cfg)
    gw.wait_stderr("publishing on %s" % tcp(p_gw))
    sub = Sub(zctx, tcp(p_gw))
    probes = Probes()
    sub.sync(pub.send_multipart, probes)
    idle = vm_kb(gw.pid, "VmHWM")

    greedy = zsocket(zctx, zmq.SUB, connect=tcp(p_gw))
    for k in range(128):
        greedy.setsockopt(zmq.SUBSCRIBE, b"%03d" % k + b"x" * (16 * 1024))
    time.sleep(1.0)
    # the gateway's PUB takes subscriptions in as it sends
    good = make_envelope("org.fedoraproject.dev.test.after_subs", {"n": 1})
    pub.send_multipart(wire(good))
    sub.finish(pub.send_multipart, probes)
    greedy.close(linger=0)
    assert wire(good) in sub.msgs
    peak = vm_kb(gw.pid, "VmHWM")
    print("gateway VmHWM idle %d kB, after 128 x 16 KiB subscriptions: "
          "%d kB" % (idle, peak))
    assert peak - idle < SLACK_KB, (idle, peak)
    assert gw.stop() == 0
