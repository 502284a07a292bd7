#!/usr/bin/python3
"""peer_fedmsg_relay.py IN_URL OUT_URL -- the real fedmsg 1.1.7
fedmsg-relay command (fedmsg.commands.relay: a moksha hub with fedmsg's
RelayConsumer), for `make bench` (tests/bench/run_bus.sh) to measure
beside fedmsg-relay: a SUB bound on IN_URL (relay_inbound), a PUB bound on
OUT_URL (endpoints.relay_outbound).  fedmsg's relay never validates
(RelayConsumer sets validate_signatures False), so it stands beside our
forward-only relay.  Run with the peer's source on PYTHONPATH
(../shared/peers/fedmsg) and moksha.hub importable (see peer_hub.py).
Until SIGTERM.
"""
import os
import sys
import tempfile


def main():
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    in_url, out_url = sys.argv[1:]
    config = os.path.join(tempfile.mkdtemp(prefix="peer-relay."), "fedmsg.py")
    with open(config, "w") as f:
        f.write("config = %r\n" % {
            "relay_inbound": [in_url],
            "endpoints": {"relay_outbound": [out_url]},
            "zmq_enabled": True,
            "validate_signatures": False,
            "high_water_mark": 10000,
        })
    sys.argv = ["fedmsg-relay", "--config-filename", config]
    from fedmsg.commands.relay import relay
    relay()		# until SIGTERM stops moksha's reactor
    return 0


if __name__ == "__main__":
    sys.exit(main())
