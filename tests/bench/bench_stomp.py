#!/usr/bin/python3
"""bench_stomp.py: the stomp.py baseline of tests/bench/run_brokers.sh --
the same run as bench_broker's STOMP -> STOMP one, written the way a
Python user of python3-stomp (Debian's 8.0) would: one Connection12 that
sends, one that subscribes (ack auto, a listener on stomp.py's receiver
thread), in one process.

  bench_stomp.py [-n N] [-w WINDOW] [-b BROKER_PID] [-r] NAME HOST PORT
                 DEST ENVFILE

Same messages (ENVFILE of bench_zmq envelopes), same headers as
bench_broker (content-type application/json, persistent, amq-msg-type
text; content-length from stomp.py), same probes, window and timing:
probes every 100 ms until one arrives, 300 ms of quiet, then N messages
with at most WINDOW sent and not yet received; msgs/s = distinct messages
received / (last arrival - first send).  -r: a receipt for every SEND,
awaited as the window allows (stomp.py sends a receipt header; its
listener gets on_receipt).

Prints "broker NAME SENT RECEIVED DUPS SECONDS MSGS_PER_S -1 BROKER_CPU_S
CLIENT_CPU_S" like bench_broker.  Exit 1: no run could be made.  Run it
with /usr/bin/python3 (Debian's python3-stomp).
"""
import argparse
import re
import sys
import threading
import time

import stomp

from bench_cpu import cpu_of

SEQ = re.compile(r'"bench_seq":(\d+)')
PROBE_MARK = ".bench.probe"
HEADERS = {"persistent": "true", "amq-msg-type": "text"}


class Counter(stomp.ConnectionListener):
    def __init__(self, n):
        self.n = n
        self.seen = bytearray(n)
        self.received = 0
        self.dups = 0
        self.probes = 0
        self.bad = 0
        self.t_last = 0.0
        self.cond = threading.Condition()
        self.error = None

    def on_message(self, frame):
        body = frame.body
        m = SEQ.search(body)
        with self.cond:
            if m:
                k = int(m.group(1))
                if k >= self.n:
                    return
                if self.seen[k]:
                    self.dups += 1
                    return
                self.seen[k] = 1
                self.received += 1
                self.t_last = time.monotonic()
            elif PROBE_MARK in body:
                self.probes += 1
            else:
                self.bad += 1
            self.cond.notify_all()

    def on_error(self, frame):
        with self.cond:
            self.error = "%s %s" % (frame.headers, frame.body)
            self.cond.notify_all()


def load(path):
    msgs, probes = [], []
    with open(path) as f:
        for line in f:
            kind, topic, body = line.rstrip("\n").split(" ", 2)
            (msgs if kind == "m" else probes).append(body)
    return msgs, probes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("-w", type=int, default=1000)
    ap.add_argument("-b", type=int, default=0)
    ap.add_argument("-r", action="store_true")
    ap.add_argument("name")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("dest")
    ap.add_argument("envfile")
    a = ap.parse_args()
    msgs, probes = load(a.envfile)
    if a.n > len(msgs):
        sys.exit("bench_stomp.py: %s has %d messages, not %d" % (
            a.envfile, len(msgs), a.n))
    c = Counter(a.n)
    rx = stomp.Connection12([(a.host, a.port)], heartbeats=(0, 0),
                            auto_content_length=True)
    rx.set_listener("count", c)
    rx.connect(wait=True)
    rx.subscribe(a.dest, id="bench-0", ack="auto")
    tx = stomp.Connection12([(a.host, a.port)], heartbeats=(0, 0),
                            auto_content_length=True)
    tx.connect(wait=True)
    send_kw = dict(content_type="application/json;charset=utf-8",
                   headers=HEADERS)

    # probes until one comes through, then quiet
    t_first = time.monotonic()
    i = 0
    with c.cond:
        while c.probes == 0:
            if i == len(probes) or time.monotonic() - t_first > 15:
                sys.exit("bench_stomp.py: %s: no probe came through" % a.name)
            c.cond.release()
            try:
                tx.send(a.dest, probes[i], **send_kw)
            finally:
                c.cond.acquire()
            i += 1
            c.cond.wait(0.1)
    time.sleep(0.3)

    c0 = time.process_time()
    k0 = cpu_of(a.b)
    t0 = time.monotonic()
    progress = t0
    last = 0
    k = 0
    while k < a.n:
        with c.cond:
            while k - c.received >= a.w and c.error is None:
                if c.received != last:
                    last, progress = c.received, time.monotonic()
                elif time.monotonic() - progress > 3:
                    break
                c.cond.wait(0.05)
            if c.error is not None or k - c.received >= a.w:
                break
        if a.r:
            tx.send(a.dest, msgs[k], receipt="r%d" % k, **send_kw)
        else:
            tx.send(a.dest, msgs[k], **send_kw)
        k += 1
    with c.cond:
        while c.received < k and c.error is None:
            if c.received != last:
                last, progress = c.received, time.monotonic()
            elif time.monotonic() - progress > 3:
                break
            c.cond.wait(0.05)
    c1 = time.process_time()
    k1 = cpu_of(a.b)
    for conn in (tx, rx):
        try:
            conn.disconnect()
        except Exception:       # reporting only; the broker may be gone
            pass
    if c.error:
        print("bench_stomp.py: %s: ERROR frame: %s" % (a.name, c.error),
              file=sys.stderr)
    if c.received == 0 or c.t_last <= t0:
        sys.exit("bench_stomp.py: %s: nothing received" % a.name)
    secs = c.t_last - t0
    print("broker %s %d %d %d %.4f %.1f %.3f %.3f %.3f" % (
        a.name, k, c.received, c.dups, secs, c.received / secs, -1.0,
        k1 - k0 if k0 >= 0 and k1 >= 0 else -1.0, c1 - c0))


if __name__ == "__main__":
    main()
