"""consumers/resultsdb in a real fedmsg-hub against a real ResultsDB:
every message of ResultsDB-Updater's tests/fake_messages/, published
signed on ZeroMQ, lands in ResultsDB exactly as ResultsDB-Updater's own
consumer (the oracle) would put it there, field by field; a replay adds
nothing."""

import json
import time
import uuid

import pytest

from conftest import (SLOW, fast_sign, free_ports, hub_config, make_envelope,
                      project_plugin, tcp, wait_until, wire, write_config,
                      zmq_module, zsocket)
from resultsdb_peer import (ResultsDB, fake_messages, need_resultsdb,
                            updater_expected)

pytestmark = pytest.mark.usefixtures("hub_time_limit")


@pytest.fixture
def resultsdbs(tmp_path):
    need_resultsdb()
    started = []

    def start(name):
        d = tmp_path / name
        d.mkdir()
        r = ResultsDB(d).start()
        started.append(r)
        return r
    yield start
    for r in started:
        r.stop()


def unordered(v):
    """A data value: a JSON object serialized into a string is compared
    as an object (ResultsDB-Updater keeps the message's key order, the
    plugin writes sorted keys)."""
    if isinstance(v, list):
        return [unordered(x) for x in v]
    if isinstance(v, str) and v.startswith("{"):
        try:
            return json.loads(v)
        except ValueError:
            pass
    return v


def comparable(db):
    """The results of db without what ResultsDB makes up (ids, times,
    group uuids), sorted."""
    out = []
    for r in db.results():
        groups = sorted(json.dumps({k: v for k, v in db.group(g).items()
                                    if k in ("ref_url", "description")},
                                   sort_keys=True) for g in r["groups"])
        out.append(json.dumps({
            "testcase": {k: r["testcase"].get(k) for k in ("name",
                                                           "ref_url")},
            "outcome": r["outcome"], "ref_url": r["ref_url"],
            "note": r["note"], "groups": groups,
            "data": {k: unordered(v) for k, v in r["data"].items()}},
            sort_keys=True))
    return sorted(out)


def ci_envelope(fake, msg_id=None):
    env = make_envelope(fake["topic"], fake["body"]["msg"],
                        msg_id=msg_id or "2026-%s" % uuid.uuid4())
    env["headers"] = fake.get("headers", {})
    return fast_sign(env)


def test_fake_messages_land_as_resultsdb_updater_puts_them(
        tmp_path, hubs, zctx, resultsdbs):
    fakes = fake_messages()
    expected = updater_expected(list(fakes.values()))
    ref = resultsdbs("reference")
    refused = []
    for e in expected:
        for p in e["posts"]:
            for g in p["groups"]:
                g["uuid"] = str(uuid.uuid4())
            refused.append(ref.post(p).get("refused"))
    # what ResultsDB itself refuses (HTTP 400), it refuses from both
    total = len([r for r in refused if r is None])
    print("refused by ResultsDB:", [r for r in refused if r])
    db = resultsdbs("target")

    zmq = zmq_module()
    src, mport = free_ports(2)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    topics = sorted({f["topic"] for f in fakes.values()})
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "rdb": {"plugin": str(project_plugin("resultsdb")),
                "topics": topics, "dedup_window": 0, "backoff": 0.2,
                "config": {"api_url": db.url, "timeout": 10}}}))
    hub = hubs(cfg, metrics_port=mport).ready()
    # the slow joiner: one message again until its result is there
    first = fakes["message"]
    sync_env = ci_envelope(first, "2026-sync")
    sync = wire(sync_env)
    for _ in range(50):
        pub.send_multipart(sync)
        time.sleep(0.2)
        if db.results():
            break
    wait_until(lambda: db.results(), 5, "a first result", hub)
    hub.idle()
    envs = {name: ci_envelope(f) for name, f in fakes.items()}
    envs["message"] = sync_env
    for name, env in envs.items():
        if name != "message":
            pub.send_multipart(wire(env))
    wait_until(lambda: len(db.results()) >= total, 30,
               "%d results" % total, hub)
    hub.idle()
    assert comparable(db) == comparable(ref)

    # a replay of every message adds nothing: each result is found
    skipped = lambda: hub.stderr().count("already in ResultsDB")  # noqa
    before = skipped()
    for env in envs.values():
        pub.send_multipart(wire(env))
    wait_until(lambda: skipped() >= before + total, 30,
               "every replayed result found in ResultsDB", hub)
    hub.idle()
    assert len(db.results()) == total
    rejected = [r for e in expected for r in e["rejected"]]
    assert rejected == ['Missing field "test.result"']
    assert 'Invalid message rejected: Missing field "test.result"' in \
        hub.stderr()


def rdb_hub(tmp_path, hubs, zctx, db, config=None, publish_port=None,
            **entry):
    """A hub running the plugin into db, topics of every fake message,
    with a ZeroMQ PUB to feed it (and its own PUB on publish_port);
    returns (hub, pub, send(fake) -> env) once a first message has
    landed (the slow joiner)."""
    zmq = zmq_module()
    src, mport = free_ports(2)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    topics = sorted({f["topic"] for f in fake_messages().values()} |
                    {"/topic/VirtualTopic.eng.ci.bad"})
    e = {"plugin": str(project_plugin("resultsdb")), "topics": topics,
         "dedup_window": 0, "backoff": 0.2,
         "config": dict({"api_url": db.url, "timeout": 10}, **(config or {}))}
    e.update(entry)
    extra = {} if publish_port is None else {
        "hub": {"name": "hubpub", "heartbeat_interval": 0.3},
        "endpoints": {"src": [tcp(src)], "hubpub": [tcp(publish_port)]}}
    cfg = write_config(tmp_path, hub_config(src, mport, {"rdb": e},
                                            **extra))
    hub = hubs(cfg, metrics_port=mport).ready()

    def send(fake, msg_id=None):
        env = ci_envelope(fake, msg_id)
        pub.send_multipart(wire(env))
        return env
    sync = ci_envelope(fake_messages()["message"], "2026-sync")
    for _ in range(50):
        pub.send_multipart(wire(sync))
        time.sleep(0.2)
        if db.results():
            break
    wait_until(lambda: db.results(), 5, "a first result", hub)
    hub.idle()
    return hub, pub, send


def names(results):
    return sorted(r["testcase"]["name"] for r in results)


def test_resultsdb_down_then_up_every_result_lands_once(
        tmp_path, hubs, zctx, resultsdbs):
    """ResultsDB stopped while messages arrive: RETRY with backoff; once
    it is back every result lands, once (a message redelivered during
    the outage finds its results there and posts nothing)."""
    db = resultsdbs("db")
    hub, pub, send = rdb_hub(tmp_path, hubs, zctx, db,
                             config={"retries": 0, "connect_timeout": 1},
                             max_attempts=200, max_backoff=0.4)
    fakes = fake_messages()
    picked = ["compose_message", "container_image_message",
              "rpmdiff_message_two", "platformci_success_message"]
    want = names(db.results()) + sorted(
        p["testcase"]["name"] if isinstance(p["testcase"], dict)
        else p["testcase"]
        for e in updater_expected([fakes[n] for n in picked])
        for p in e["posts"])
    db.stop()
    for n in picked:
        send(fakes[n], "2026-" + n)
    send(fakes[picked[0]], "2026-" + picked[0])   # redelivered
    wait_until(lambda: hub.stderr().count("will retry") >= 2 * len(picked),
               15, "every message retried while ResultsDB is down", hub)
    db.start()
    wait_until(lambda: len(db.results()) >= len(want), 15,
               "%d results" % len(want), hub)
    hub.idle(15)
    assert names(db.results()) == sorted(want)
    m = hub.metrics()
    assert m("fedmsg_consumer_dropped_total", consumer="rdb",
             reason="retries_exhausted") == 0



def test_malformed_and_refused_are_dropped_with_the_reason_published(
        tmp_path, hubs, zctx, resultsdbs):
    """A CI message that lacks fields is dropped with ResultsDB-Updater's
    reason; a result ResultsDB refuses (HTTP 400: an unknown outcome) is
    dropped, not retried; with errors "publish" both reasons go on the
    bus as resultsdb_updater.error; the next message still lands."""
    db = resultsdbs("db")
    zmq = zmq_module()
    out = free_ports(1)[0]
    hub, pub, send = rdb_hub(tmp_path, hubs, zctx, db,
                             config={"errors": "publish"},
                             publish_port=out, max_attempts=5)
    sub = zsocket(zctx, zmq.SUB, connect=tcp(out))
    # subscribed once a heartbeat of the hub comes through
    assert sub.poll(5000 * SLOW), "no heartbeat from the hub"
    before = len(db.results())
    lacking = send({"topic": "/topic/VirtualTopic.eng.ci.bad.brew-build."
                    "test.complete", "body": {"msg": {
                        "ci": {}, "run": {"url": "u"}, "artifact": {}}}})
    refused = send({"topic": "/topic/VirtualTopic.eng.ci.bad.x.test."
                    "complete", "body": {"msg": {
                        "ref_url": "https://ci/1", "results": {
                            "bad.outcome": {"outcome": "SORT_OF"}}}}})
    errors = {}
    deadline = time.monotonic() + 10
    while len(errors) < 2 and time.monotonic() < deadline:
        if sub.poll(100):
            env = json.loads(sub.recv_multipart()[1])
            if "resultsdb_updater" in env["topic"]:
                errors[env["msg"]["msg_id"]] = env
    assert set(errors) == {lacking["msg_id"], refused["msg_id"]}, \
        hub.describe()
    e = errors[lacking["msg_id"]]
    assert e["topic"] == "org.fedoraproject.dev.resultsdb_updater.error"
    assert e["msg"]["reason"] == 'Missing field "artifact.type"'
    assert e["msg"]["topic"].endswith(".bad.brew-build.test.complete")
    assert errors[refused["msg_id"]]["msg"]["reason"].startswith(
        "Failed to create result: ")
    assert "SORT_OF" in errors[refused["msg_id"]]["msg"]["reason"]
    # both dropped at once (a 4xx is not retried), nothing stored
    m = hub.idle()
    assert m("fedmsg_consumer_dropped_total", consumer="rdb",
             reason="verdict") == 2
    assert m("fedmsg_consumer_retried_total", consumer="rdb") == 0
    assert len(db.results()) == before
    good = send(fake_messages()["compose_message"])
    wait_until(lambda: len(db.results()) > before, 10, "the next result",
               hub)
    assert good["msg_id"] not in errors



class LateResultsDB:
    """A ResultsDB stand-in that stores each POSTed result and answers it
    after `delay` seconds, and lists what it stored: a ResultsDB that
    answers after the plugin's timeout, though the result is in."""

    def __init__(self, delay):
        import threading
        import urllib.parse
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.posts = []
        stored = self.posts

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, code, obj):
                body = json.dumps(obj).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:     # the plugin gave up on it
                    pass

            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlparse(
                    self.path).query)
                group = q.get("groups", [""])[0]
                case = q.get("testcases", [""])[0]
                self.answer(200, {"data": [
                    r for r in stored if case in json.dumps(r) and
                    group in json.dumps(r)]})

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                stored.append(json.loads(self.rfile.read(n)))
                time.sleep(delay)
                self.answer(201, {})

        self.port = free_ports(1)[0]
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_post_answered_late_is_not_posted_again(tmp_path, hubs, zctx):
    """A POST whose answer came after the timeout may have been stored:
    it is not resent in place (retries are for GETs); the hub's RETRY
    first asks whether the result is there, and it is."""
    db = LateResultsDB(delay=2)
    zmq = zmq_module()
    src, mport = free_ports(2)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    entry = {"plugin": str(project_plugin("resultsdb")),
             "topics": ["org.fedoraproject.dev.ci."], "backoff": 0.2,
             "config": {"api_url": "http://127.0.0.1:%d/api/v2.0" % db.port,
                        "timeout": 1, "retries": 2}}
    hub = hubs(write_config(tmp_path, hub_config(src, mport, {"rdb": entry})),
               metrics_port=mport).ready()
    env = fast_sign(make_envelope("org.fedoraproject.dev.ci.result", {
        "ref_url": "http://ci.example.org/run/1",
        "results": {"tc.one": {"outcome": "PASSED"}}}))
    try:
        for _ in range(50):     # the slow joiner (dedup drops repeats)
            pub.send_multipart(wire(env))
            time.sleep(0.2)
            if db.posts:
                break
        hub.wait_metric(lambda m: m("fedmsg_consumer_ok_total",
                                    consumer="rdb") == 1, 15,
                        "the message consumed, on the retry")
        assert len(db.posts) == 1, (
            "one result POSTed %d times" % len(db.posts))
        assert hub.stop() == 0
    finally:
        db.stop()
