"""ResultsDB-Updater's own consumer as an oracle: reads CI messages (JSON
lines on stdin), prints for each what it would POST to ResultsDB and why it
rejected it.  Run from ../shared/peers/resultsdb-updater (its fedmsg.d)
with it and fedmsg on PYTHONPATH.  Two imports Debian lacks are stood in
for: moksha's consumer base class (unused here: consume() is called
directly, as its tests do) and semantic_version.match for the "<X.Y.Z"
specs message.py uses."""
import json
import logging
import sys
import types
from unittest import mock


def _semver_match(spec, version):
    assert spec.startswith("<")
    core = version.split("+")[0]
    pre = "-" in core
    parts = core.split("-")[0].split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError("Invalid version string: %r" % version)
    v = tuple(int(p) for p in parts)
    w = tuple(int(p) for p in spec[1:].split("."))
    return v < w or (v == w and pre and False)


sv = types.ModuleType("semantic_version")
sv.match = _semver_match
sys.modules["semantic_version"] = sv
fc = types.ModuleType("fedmsg.consumers")


class FedmsgConsumer:
    def __init__(self, hub, *a, **k):
        pass


fc.FedmsgConsumer = FedmsgConsumer
sys.modules["fedmsg.consumers"] = fc

import fedmsg  # noqa: E402
fedmsg.consumers = fc
from resultsdbupdater import consumer as ciconsumer  # noqa: E402


class Grab(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, rec):
        self.lines.append(rec.getMessage())


grab = Grab()
logging.getLogger("CIConsumer").addHandler(grab)
c = ciconsumer.CIConsumer(None)
with mock.patch("resultsdbupdater.utils.session") as session, \
        mock.patch("resultsdbupdater.utils.uuid.uuid4", return_value="U"):
    session.get.return_value.json.return_value = {"data": []}
    session.post.return_value.status_code = 201
    for line in sys.stdin:
        session.post.reset_mock()
        grab.lines = []
        c.consume(json.loads(line))
        posts = [json.loads(k["data"]) for _, k in
                 session.post.call_args_list]
        rejected = [m.split("Invalid message rejected: ", 1)[1]
                    for m in grab.lines if "Invalid message rejected: " in m]
        print(json.dumps({"posts": posts, "rejected": rejected}),
              flush=True)
