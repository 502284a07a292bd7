#!/usr/bin/python3
"""bench_fm.py: fedora-messaging's own publish and consume, for
tests/bench/run_brokers.sh (the AMQP 0-9-1 half of `make bench`) to
measure beside fedmsg-bridge.  The real library (fedora-messaging 3.6,
../shared/peers/fedora-messaging on PYTHONPATH), used as its
documentation says:

  bench_fm.py [-n N] [-b BROKER_PID] NAME PORT QUEUE ENVFILE

1. NAME_publish: api.publish() of the first N envelopes of ENVFILE
   (bench_zmq envelopes: the same 3 KB signed envelopes the bridge
   carries, each whole as the JSON body) to the default exchange with
   routing key QUEUE, one after the other: api.publish returns when the
   broker confirmed the message (publisher confirms), the guarantee the
   bridge's spool gives.  QUEUE is declared first (not durable, not
   auto-delete, as bench_broker's amqp091 endpoint).
2. NAME_consume: api.consume() of those N from QUEUE (prefetch 100, the
   bridge's credit; each message acknowledged when the callback
   returns), halted by the callback at the N-th.

Not end to end like bench_broker: publish is timed from the first call to
the last return, consume from the first callback to the last.  Prints two
lines like bench_broker's, "broker NAME_publish|NAME_consume SENT
RECEIVED DUPS SECONDS MSGS_PER_S LIB_CPU_S BROKER_CPU_S -1": LIB_CPU_S is
this process's CPU time (fedora-messaging, pika, Twisted: the work a
bridge process does), in the column bench_broker gives the bridge.
Exit 1 when a run could not be made.
"""
import argparse
import json
import os
import sys
import tempfile
import time

from bench_cpu import cpu_of, cpu_self


def load(path, n):
    out = []
    with open(path) as f:
        for line in f:
            kind, topic, body = line.rstrip("\n").split(" ", 2)
            if kind == "m":
                out.append(json.loads(body))
                if len(out) == n:
                    break
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("-b", type=int, default=0)
    ap.add_argument("name")
    ap.add_argument("port", type=int)
    ap.add_argument("queue")
    ap.add_argument("envfile")
    a = ap.parse_args()
    envs = load(a.envfile, a.n)
    if len(envs) < a.n:
        print("bench_fm: %s has %d messages" % (a.envfile, len(envs)),
              file=sys.stderr)
        return 1
    conf = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    conf.write('amqp_url = "amqp://guest:guest@127.0.0.1:%d/%%2F"\n'
               'publish_exchange = ""\n'
               '[qos]\nprefetch_size = 0\nprefetch_count = 100\n'
               % a.port)
    conf.close()
    os.environ["FEDORA_MESSAGING_CONF"] = conf.name
    try:
        return run(a, envs)
    finally:
        os.unlink(conf.name)


def run(a, envs):
    import pika
    from fedora_messaging import api, exceptions, message

    queues = {a.queue: {"durable": False, "auto_delete": False,
                        "exclusive": False, "arguments": {}}}
    c = pika.BlockingConnection(pika.URLParameters(
        "amqp://guest:guest@127.0.0.1:%d/%%2F" % a.port))
    c.channel().queue_declare(a.queue, durable=False, auto_delete=False)
    c.close()

    msgs = [message.Message(topic=a.queue, body=e) for e in envs]
    api.publish(message.Message(topic=a.queue, body={"warm": "up"}))
    k0, c0, t0 = cpu_of(a.b), cpu_self(), time.monotonic()
    for m in msgs:
        api.publish(m, exchange="")
    t1 = time.monotonic()
    secs = t1 - t0
    print("broker %s_publish %d %d 0 %.4f %.1f %.3f %.3f -1" % (
        a.name, len(msgs), len(msgs), secs, len(msgs) / secs,
        cpu_self() - c0, cpu_of(a.b) - k0 if a.b else -1), flush=True)

    seen = set()
    st = {"first": 0.0, "last": 0.0, "k0": 0.0, "c0": 0.0, "dups": 0}

    def callback(m):
        body = m.body
        if not isinstance(body, dict) or "msg" not in body:
            return                  # the warm-up message
        now = time.monotonic()
        if not seen:
            st.update(first=now, k0=cpu_of(a.b), c0=cpu_self())
        seq = body["msg"].get("bench_seq")
        if seq in seen:
            st["dups"] += 1
        seen.add(seq)
        st["last"] = now
        if len(seen) == len(msgs):
            st.update(k1=cpu_of(a.b), c1=cpu_self())
            raise exceptions.HaltConsumer(exit_code=0)

    try:
        api.consume(callback, bindings=[], queues=queues)
    except exceptions.HaltConsumer as e:
        if e.exit_code != 0:
            raise
    if len(seen) < 2:
        print("bench_fm: %s: consumed %d" % (a.name, len(seen)),
              file=sys.stderr)
        return 1
    secs = st["last"] - st["first"]
    print("broker %s_consume %d %d %d %.4f %.1f %.3f %.3f -1" % (
        a.name, len(msgs), len(seen), st["dups"], secs,
        (len(seen) - 1) / secs, st["c1"] - st["c0"],
        st["k1"] - st["k0"] if a.b else -1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
