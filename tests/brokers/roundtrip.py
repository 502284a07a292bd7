#!/usr/bin/python3
"""A real publish -> subscribe round trip through a broker: broker.sh's
readiness check (a listening port alone does not mean a working broker).

  roundtrip.py amqp URL SEND_ADDR [RECV_ADDR] [--ca FILE] [--user U --password P]
  roundtrip.py stomp PORT SEND_DEST [SUB_DEST] [--vhost V] [--ca FILE]
                     [--cert FILE --key FILE] [--user U --password P]

Subscribes first, then sends one JSON message; exits 0 when the same body
comes back within --timeout seconds (default 5), 1 otherwise.  Needs
Debian's python3-qpid-proton / python3-stomp: run it with /usr/bin/python3.
"""
import argparse
import json
import ssl
import sys
import threading
import time
import uuid


def amqp(a, body):
    from proton import Message, SSLDomain
    from proton.utils import BlockingConnection

    kw = {}
    if a.url.startswith("amqps"):
        d = SSLDomain(SSLDomain.MODE_CLIENT)
        d.set_trusted_ca_db(a.ca)
        d.set_peer_authentication(SSLDomain.VERIFY_PEER_NAME)
        kw["ssl_domain"] = d
    if a.user:
        kw.update(user=a.user, password=a.password, allowed_mechs="PLAIN")
    else:
        kw["allowed_mechs"] = "ANONYMOUS PLAIN"
    c = BlockingConnection(a.url, timeout=a.timeout, **kw)
    try:
        r = c.create_receiver(a.recv or a.send, credit=10)
        s = c.create_sender(a.send)
        s.send(Message(body=body.encode(), inferred=True,
                       content_type="application/json"))
        deadline = time.monotonic() + a.timeout
        while time.monotonic() < deadline:
            m = r.receive(timeout=a.timeout)
            r.accept()
            got = m.body.decode() if isinstance(m.body, bytes) else m.body
            if got == body:
                return True
        return False
    finally:
        c.close()


def stomp(a, body):
    import stomp as st

    got = threading.Event()
    bound = threading.Event()
    box = {}

    class L(st.ConnectionListener):
        def on_message(self, frame):
            if frame.body == body:
                got.set()

        def on_receipt(self, frame):
            bound.set()

        def on_error(self, frame):
            box["error"] = (frame.headers, frame.body)
            bound.set()
            got.set()

    c = st.Connection12([("127.0.0.1", a.port)], vhost=a.vhost or None,
                        heartbeats=(0, 0), auto_content_length=True)
    if a.ca:
        c.set_ssl(for_hosts=[("127.0.0.1", a.port)], ca_certs=a.ca,
                  cert_file=a.cert, key_file=a.key,
                  ssl_version=ssl.PROTOCOL_TLS_CLIENT)
    c.set_listener("", L())
    c.connect(a.user, a.password, wait=True)
    try:
        c.subscribe(destination=a.recv or a.send, id="1", ack="auto",
                    receipt="sub-1")
        # a receipt tells us the subscription is bound before we publish
        deadline = time.monotonic() + a.timeout
        bound.wait(a.timeout)
        c.send(destination=a.send, body=body,
               content_type="application/json")
        ok = got.wait(max(0.0, deadline - time.monotonic()))
        if "error" in box:
            print("ERROR frame:", box["error"], file=sys.stderr)
            return False
        return ok
    finally:
        c.disconnect()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("proto", choices=("amqp", "stomp"))
    ap.add_argument("where")          # amqp: URL; stomp: port
    ap.add_argument("send")
    ap.add_argument("recv", nargs="?")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--vhost")
    ap.add_argument("--timeout", type=float, default=5.0)
    a = ap.parse_args()
    if a.proto == "amqp":
        a.url = a.where
    else:
        a.port = int(a.where)
    body = json.dumps({"topic": "org.fedoraproject.test.roundtrip",
                       "msg": {"id": uuid.uuid4().hex}})
    t0 = time.monotonic()
    try:
        ok = (amqp if a.proto == "amqp" else stomp)(a, body)
    except Exception as e:   # noqa: BLE001 - any failure means "not ready"
        print("FAIL %s %s: %s: %s" % (a.proto, a.send, type(e).__name__, e))
        return 1
    print("%s %s %s -> %s %.0f ms" % ("OK" if ok else "FAIL", a.proto, a.send,
                                      a.recv or a.send,
                                      (time.monotonic() - t0) * 1000))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
