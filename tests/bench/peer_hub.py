#!/usr/bin/python3
"""peer_hub.py PUB_URL METRICS_PORT CA CRL on|off -- the real fedmsg 1.1.7
hub, for `make bench` (tests/bench/run_bus.sh) to measure beside
fedmsg-hub: fedmsg's own `fedmsg-hub` command (fedmsg.commands.hub, a
moksha hub) subscribed to PUB_URL, with signature validation on or off
and one consumer that counts.  Run with the peer's source on PYTHONPATH
(../shared/peers/fedmsg) and moksha.hub importable: Fedora packages it
(python3-moksha-hub), Debian 12 does not (run_bus.sh then puts
$FM_MOKSHA_HUB, a directory holding moksha/hub from mokshaproject/moksha,
on PYTHONPATH).

The consumer is a FedmsgConsumer subclass, as a Fedora service writes
one; fedmsg validates each message before consume() (in moksha's reactor
thread, and again in the consumer's worker thread: that is the real
hub's work).  bench_zmq reads what it consumed the way it reads our
hub's: GET /metrics on 127.0.0.1:METRICS_PORT (fedmsg_hub_received_total,
fedmsg_consumer_ok_total, fedmsg_hub_invalid_total).  The counters live
in a shared memory page and a separate process serves them, so the
polling costs the hub's process nothing.  Until SIGTERM.
"""
import http.server
import mmap
import multiprocessing
import os
import struct
import sys
import tempfile
import threading
import time

import fedmsg.consumers

COUNTERS = ("fedmsg_hub_received_total", "fedmsg_consumer_ok_total",
            "fedmsg_consumer_dropped_total", "fedmsg_hub_invalid_total")
RECEIVED, OK, DROPPED, INVALID = range(4)
_page = None


def _counters():
    global _page
    if _page is None:
        with open(os.environ["PEER_HUB_COUNTERS"], "r+b") as f:
            _page = mmap.mmap(f.fileno(), 8 * len(COUNTERS))
    return _page


def _bump(i):
    page = _counters()
    struct.pack_into("Q", page, 8 * i,
                     struct.unpack_from("Q", page, 8 * i)[0] + 1)


class BenchConsumer(fedmsg.consumers.FedmsgConsumer):
    """Counts what fedmsg hands it; topic '*', like a catch-all.  fedmsg-hub
    loads it by name: --with-consumers peer_hub:BenchConsumer."""
    topic = "*"
    config_key = "bench.consumer.enabled"

    def _consume(self, message):
        _bump(RECEIVED)
        return super()._consume(message)

    def validate(self, message):
        try:
            super().validate(message)
        except Exception:
            # the reactor thread's check decides; the worker's repeats it
            if threading.current_thread() is threading.main_thread():
                _bump(INVALID)
            raise

    def consume(self, message):
        _bump(OK)


class Metrics(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"	# keep-alive, as bench_zmq polls

    def do_GET(self):
        page = _counters()
        body = "".join("%s %d\n" % (name, struct.unpack_from(
            "Q", page, 8 * i)[0]) for i, name in enumerate(COUNTERS))
        body = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve_metrics(port, parent):
    def orphaned():		# the hub may die without stopping us
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Metrics) \
        .serve_forever()


def main():
    if len(sys.argv) != 6 or sys.argv[5] not in ("on", "off"):
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    pub_url, port, ca, crl, validate = sys.argv[1:]
    tmp = tempfile.mkdtemp(prefix="peer-hub.")
    counters = os.path.join(tmp, "counters")
    with open(counters, "wb") as f:
        f.write(bytes(8 * len(COUNTERS)))
    os.environ["PEER_HUB_COUNTERS"] = counters
    config = os.path.join(tmp, "fedmsg.py")
    with open(config, "w") as f:
        f.write("config = %r\n" % {
            "endpoints": {"bench": [pub_url]},
            "zmq_enabled": True,
            "validate_signatures": validate == "on",
            "crypto_backend": "x509",
            "crypto_validate_backends": ["x509"],
            "ca_cert_location": ca,
            "crl_location": crl,
            # as a deployment's: the bench topic's signer (without a
            # policy fedmsg logs a warning per message, twice)
            "routing_policy": {
                "org.fedoraproject.prod.git.receive": ["shell-localhost"],
                "org.fedoraproject.prod.bench.probe": ["shell-localhost"]},
            "high_water_mark": 10000,
            "bench.consumer.enabled": True,
            "status_directory": None,
        })
    metrics = multiprocessing.Process(target=serve_metrics,
                                      args=(int(port), os.getpid()),
                                      daemon=True)
    metrics.start()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.argv = ["fedmsg-hub", "--config-filename", config,
                "--with-consumers", "peer_hub:BenchConsumer"]
    from fedmsg.commands.hub import hub
    try:
        hub()		# until SIGTERM stops moksha's reactor
    finally:
        metrics.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
