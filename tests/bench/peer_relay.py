#!/usr/bin/python3
"""peer_relay.py IN_URL OUT_URL CA CRL -- the real fedmsg 1.1.7's relay
with validation, for `make bench` (tests/bench/run_bus.sh) to measure
beside fedmsg-relay --validate.  Run with the peer's source on PYTHONPATH
(../shared/peers/fedmsg).

fedmsg-relay itself is a moksha hub (fedmsg/commands/relay.py), and moksha
is not in Debian 12, so this is the same per-message work done through the
peer's own API, with moksha's sockets: a SUB bound on IN_URL (moksha's
zmq_subscribe_method "bind"), a PUB bound on OUT_URL; each message is
decoded with fedmsg.encoding.loads, checked with fedmsg.crypto.validate
(FedmsgConsumer.validate with validate_signatures on; invalid ones are
dropped), and sent on with fedmsg.encoding.dumps (RelayConsumer.consume
-> hub.send_message).  Until SIGTERM.
"""
import signal
import sys

import zmq

import fedmsg.crypto
import fedmsg.encoding


def main():
    if len(sys.argv) != 5:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    in_url, out_url, ca, crl = sys.argv[1:]
    config = {"validate_signatures": True, "crypto_backend": "x509",
              "crypto_validate_backends": ["x509"],
              "ca_cert_location": ca, "crl_location": crl}
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    pub = ctx.socket(zmq.PUB)
    for s in (sub, pub):
        s.setsockopt(zmq.RCVHWM, 10000)
        s.setsockopt(zmq.SNDHWM, 10000)
        s.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.bind(in_url)
    pub.bind(out_url)
    running = [True]
    signal.signal(signal.SIGTERM, lambda *a: running.__setitem__(0, False))
    invalid = 0
    while running[0]:
        if not sub.poll(100):
            continue
        topic, body = sub.recv_multipart()[:2]
        msg = fedmsg.encoding.loads(body.decode("utf-8"))
        if not fedmsg.crypto.validate(msg, **config):
            invalid += 1
            continue
        pub.send_multipart([topic, fedmsg.encoding.dumps(msg).encode()])
    if invalid:
        print("peer_relay: %d invalid messages dropped" % invalid,
              file=sys.stderr)
    sub.close()
    pub.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
