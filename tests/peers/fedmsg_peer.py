"""Drive the real fedmsg (../shared/peers/fedmsg) for the integration tests.

Run by tests/integration/peers.py as
    PYTHONPATH=<peers>/fedmsg /usr/bin/python3 fedmsg_peer.py MODE
with its working directory and HOME set to a directory whose fedmsg.d/
holds the Python config files, which is where fedmsg's own loader looks.
Nothing of fedmsg is copied or changed here: this only calls its API.

MODE oracle     one JSON request per stdin line, one JSON answer per line:
                {"op": "validate", "config": {...}, "messages": [...]}
                  -> {"results": [true | false | {"raised": "..."}]}
                {"op": "validate_signed_by", ..., "signer": CN}
                {"op": "sign", "config": {"ssldir", "certname"}, ...}
                  -> {"results": [signed envelope | {"raised": "..."}]}
MODE publish    fedmsg.init() from fedmsg.d (active, relay_inbound), then
                per stdin line {"topic", "modname", "msg"[, "certname"]}
                fedmsg.publish(); prints the envelope sent, one per line
"""

import json
import sys
import traceback


def oracle():
    import fedmsg.crypto
    import fedmsg.crypto.utils

    for line in sys.stdin:
        req = json.loads(line)
        # Each request sees the CA/CRL files as they are now, as a fresh
        # process would: fedmsg caches them per location until a failure.
        fedmsg.crypto.utils._cached_certificates.clear()
        fedmsg.crypto._implementation = None
        fedmsg.crypto._validate_implementations = None
        cfg = req.get("config", {})
        out = []
        for m in req["messages"]:
            try:
                if req["op"] == "validate":
                    out.append(bool(fedmsg.crypto.validate(m, **cfg)))
                elif req["op"] == "validate_signed_by":
                    out.append(bool(fedmsg.crypto.validate_signed_by(
                        m, req["signer"], **cfg)))
                elif req["op"] == "sign":
                    out.append(fedmsg.crypto.sign(m, **cfg))
                else:
                    raise ValueError("unknown op %r" % req["op"])
            except Exception as e:  # fedmsg raises on some bad input
                out.append({"raised": "%s: %s" % (type(e).__name__, e)})
        sys.stdout.write(json.dumps({"results": out}) + "\n")
        sys.stdout.flush()


def publish():
    import fedmsg

    ctx = fedmsg.init(active=True, name="relay_inbound")
    key = "shell.%s" % ctx.hostname
    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        req = json.loads(line)
        if "certname" in req:
            ctx.c["certnames"][key] = req["certname"]
        sent = []
        ctx.publish(topic=req["topic"], modname=req["modname"],
                    msg=req["msg"], pre_fire_hook=sent.append)
        sys.stdout.write(json.dumps(sent[0]) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    try:
        {"oracle": oracle, "publish": publish}[sys.argv[1]]()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
