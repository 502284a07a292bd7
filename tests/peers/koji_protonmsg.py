"""Drive Koji's real protonmsg hub plugin the way Koji's own tests do
(tests/test_plugins/test_protonmsg.py): call its prep_* callbacks with a
hub callback's keyword arguments, then send_queued_msgs("postCommit"),
which sends with a real proton Container.  Only what needs Koji's
database is patched out (get_build_type; the db queue stays disabled).

    koji_protonmsg.py CONF EVENTS_JSON

EVENTS_JSON: [{"prep": "prep_tag", "callback": "postTag", "kws": {...}}].
Prints {"queued": n, "unsent": m}; exits 1 when something was not sent.
Run with PYTHONPATH=<koji>:<koji>/plugins/hub (tests/integration/peers.py).
"""

import json
import logging
import sys
from unittest import mock

import protonmsg
from koji.context import context


def main():
    conf, events = sys.argv[1], sys.argv[2]
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    protonmsg.CONFIG_FILE = conf
    protonmsg.CONFIG = None
    with open(events) as f:
        evs = json.load(f)
    with mock.patch("protonmsg.get_build_type", return_value={"rpm": None}):
        for ev in evs:
            getattr(protonmsg, ev["prep"])(ev["callback"], **ev["kws"])
    queued = len(getattr(context, "protonmsg_msgs", []))
    protonmsg.send_queued_msgs("postCommit")
    unsent = len(getattr(context, "protonmsg_msgs", []))
    print(json.dumps({"queued": queued, "unsent": unsent}))
    return 1 if unsent else 0


if __name__ == "__main__":
    sys.exit(main())
