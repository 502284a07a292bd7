"""fedmsg-check against a pyzmq stand-in for moksha's monitoring socket and
against the real fedmsg-hub (hub/hub_report.c).

The stand-in is a PUB bound on a fresh ipc:// socket that publishes one
single-frame moksha-style report every 0.2 s from a thread, like moksha's
MonitoringProducer (which does socket.send(json.dumps(data)) every 5 s).
"""

import json
import os
import threading
import uuid

import pytest

from conftest import (FM_PLUGINS, bus_config, free_ports, tcp,
                      write_config, zmq_module, zsocket)

pytestmark = pytest.mark.usefixtures("zmq_time_limit")

PERIOD = 0.2                  # seconds between reports from the stand-in


def consumer(name, initialized=True, last_error=None, **extra):
    """A consumer entry as moksha's hub serialises it."""
    e = {"name": name, "module": "mymod.consumers", "topic": ["org.a.b"],
         "initialized": initialized, "exceptions": 0, "jsonify": True,
         "backlog": 2, "headcount_in": 5, "headcount_out": 4,
         "times": [0.1, 0.0025, 1.5e-05]}
    if last_error is not None:
        e["last_error"] = last_error
    e.update(extra)
    return e


def producer(name, initialized=True):
    return {"name": name, "module": "moksha.hub.monitoring",
            "initialized": initialized, "exceptions": 0, "jsonify": True,
            "backlog": 0, "headcount_in": 0, "headcount_out": 0,
            "times": []}


def report(consumers=(), producers=()):
    return {"consumers": list(consumers), "producers": list(producers)}


def ipc_url():
    return "ipc:///tmp/fm-check-%s.sock" % uuid.uuid4().hex[:12]


class StatusPublisher:
    """A PUB bound at url, sending frames every PERIOD s from a thread
    (the only user of the socket until it has stopped)."""

    def __init__(self, ctx, url, frames):
        zmq = zmq_module()
        self.url = url
        self.frames = frames
        self.sock = zsocket(ctx, zmq.PUB, bind=url)
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            self.sock.send_multipart(self.frames)
            if self.stop_ev.wait(PERIOD):
                return

    def close(self):
        self.stop_ev.set()
        self.thread.join(5)
        self.sock.close(linger=0)
        if self.url.startswith("ipc://"):
            try:
                os.unlink(self.url[len("ipc://"):])
            except OSError:
                pass


@pytest.fixture
def publish(zctx):
    """publish(report_obj | [frames]) -> URL of a running stand-in.
    Torn down (thread joined) before zctx destroys the context."""
    started = []

    def _publish(what, url=None):
        if isinstance(what, dict):
            frames = [json.dumps(what).encode("utf-8")]
        elif isinstance(what, bytes):
            frames = [what]
        else:
            frames = list(what)
        p = StatusPublisher(zctx, url or ipc_url(), frames)
        started.append(p)
        return p.url

    yield _publish
    for p in started:
        p.close()


def check(run, *args, timeout=5):
    """Run fedmsg-check with a short --timeout unless one is given."""
    args = [str(a) for a in args]
    if "--timeout" not in args:
        args += ["--timeout", str(timeout)]
    return run("fedmsg-check", args)


# ---- against the pyzmq stand-in --------------------------------------------

def test_named_consumer_ok_prints_report(run, publish):
    rep = report([consumer("alpha"), consumer("beta")],
                 [producer("MonitoringProducer")])
    url = publish(rep)
    r = check(run, "--socket", url, "-c", "alpha", "--consumer", "beta",
              "-p", "MonitoringProducer")
    assert r.rc == 0, r
    assert json.loads(r.out) == rep      # floats come back the same
    assert r.stdout.startswith("{\n    \"consumers\": [\n"), r
    assert r.stdout.endswith("}\n")
    # sorted keys, as fedmsg's json.dumps(sort_keys=True)
    first = r.stdout.index('"backlog"')
    assert first < r.stdout.index('"exceptions"') < \
        r.stdout.index('"times"') < r.stdout.index('"topic"')
    assert r.stderr == ""


def test_no_names_prints_report(run, publish):
    rep = report([consumer("alpha", initialized=False)])
    url = publish(rep)
    r = check(run, "--socket", url)
    assert r.rc == 0, r           # nothing named: nothing to fail
    assert json.loads(r.out) == rep


def test_endpoint_from_config_and_from_env(run, publish, tmp_path):
    rep = report([consumer("alpha")])
    url = publish(rep)
    cfg = write_config(tmp_path, bus_config(
        **{"moksha.monitoring.socket": url}))
    r = check(run, "--config", cfg, "-c", "alpha")
    assert r.rc == 0, r
    assert json.loads(r.out) == rep
    r = run("fedmsg-check", ["-c", "alpha", "--timeout", "5"],
            env={"FEDMSG_CONFIG": str(cfg)})
    assert r.rc == 0, r
    assert json.loads(r.out) == rep


def test_socket_overrides_config(run, publish, tmp_path):
    rep = report([consumer("alpha")])
    url = publish(rep)
    cfg = write_config(tmp_path, bus_config(
        **{"moksha.monitoring.socket": ipc_url()}))   # nobody there
    r = check(run, "--config", cfg, "--socket", url, "-c", "alpha")
    assert r.rc == 0, r


def test_missing_consumer(run, publish):
    url = publish(report([consumer("alpha"), consumer("beta")]))
    r = check(run, "--socket", url, "-c", "alpha", "-c", "gamma")
    assert r.rc == 1, r
    assert r.out == b""
    assert "consumer gamma not found; running: alpha, beta" in r.stderr, r
    assert "alpha not found" not in r.stderr


def test_missing_producer_and_consumer_both_reported(run, publish):
    url = publish(report([consumer("alpha")], []))
    r = check(run, "--socket", url, "-c", "nope", "-p", "Prod")
    assert r.rc == 1, r
    assert "consumer nope not found; running: alpha" in r.stderr, r
    assert "producer Prod not found; running: none" in r.stderr, r


def test_consumer_name_is_not_a_producer(run, publish):
    url = publish(report([consumer("alpha")], [producer("Prod")]))
    r = check(run, "--socket", url, "-p", "alpha")
    assert r.rc == 1, r
    assert "producer alpha not found; running: Prod" in r.stderr, r


def test_uninitialized_consumer(run, publish):
    url = publish(report([
        consumer("alpha"),
        consumer("broken", initialized=False,
                 last_error="init: no such database\x1b[2J"),
        consumer("quiet", initialized=False)]))
    r = check(run, "--socket", url, "-c", "alpha", "-c", "broken")
    assert r.rc == 1, r
    assert r.out == b""
    assert "consumer broken is not initialized; last error: init: no " \
        "such database\\x1b[2J" in r.stderr, r
    assert "\x1b" not in r.stderr     # terminal escapes are defused
    r = check(run, "--socket", url, "-c", "quiet")
    assert r.rc == 1, r
    assert "consumer quiet is not initialized" in r.stderr, r
    assert "last error" not in r.stderr


@pytest.mark.parametrize("value", [None, 1, "true", "missing"])
def test_anything_but_true_is_uninitialized(run, publish, value):
    """fedmsg: `if active[name]['initialized'] is not True`."""
    c = consumer("alpha", initialized=value)
    if value == "missing":
        del c["initialized"]
    url = publish(report([c]))
    r = check(run, "--socket", url, "-c", "alpha")
    assert r.rc == 1, r
    assert "consumer alpha is not initialized" in r.stderr, r


def test_uninitialized_producer(run, publish):
    url = publish(report([], [producer("Prod", initialized=False)]))
    r = check(run, "--socket", url, "-p", "Prod")
    assert r.rc == 1, r
    assert "producer Prod is not initialized" in r.stderr, r


def test_duplicate_names_last_wins(run, publish):
    """fedmsg builds a dict by name, so the last entry counts."""
    url = publish(report([consumer("alpha", initialized=False),
                          consumer("alpha")]))
    assert check(run, "--socket", url, "-c", "alpha").rc == 0
    url = publish(report([consumer("beta"),
                          consumer("beta", initialized=False)]))
    assert check(run, "--socket", url, "-c", "beta").rc == 1


def test_names_from_the_socket_are_defused(run, publish):
    url = publish(report([consumer("evil\nfedmsg-check: ok"),
                          consumer("caf\u00e9")]))
    r = check(run, "--socket", url, "-c", "x")
    assert r.rc == 1, r
    assert "running: evil\\x0afedmsg-check: ok, caf\u00e9" in r.stderr, r
    assert len(r.stderr.splitlines()) == 1, r


def test_tcp_socket(run, publish):
    (port,) = free_ports(1)
    rep = report([consumer("alpha")])
    publish(rep, url=tcp(port))
    r = check(run, "--socket", tcp(port), "-c", "alpha")
    assert r.rc == 0, r
    assert json.loads(r.out) == rep


def test_no_publisher_times_out(run):
    url = ipc_url()
    r = run("fedmsg-check", ["--socket", url, "-c", "alpha",
                             "--timeout", "1"], timeout=10)
    assert r.rc == 1, r
    assert r.out == b""
    assert "no status report received from %s within 1 second " % url \
        in r.stderr, r


def test_multipart_message_is_not_a_report(run, publish):
    """Pointed at a fedmsg endpoint by mistake: two frames."""
    url = publish([b"org.fedoraproject.dev.x", b'{"topic": "x"}'])
    r = check(run, "--socket", url)
    assert r.rc == 1, r
    assert "2-frame message" in r.stderr, r
    assert r.out == b""


@pytest.mark.parametrize("body,why", [
    (b"not json", "invalid JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"consumers": []}', 'no "producers" list'),
    (b'{"consumers": {}, "producers": []}', 'no "consumers" list'),
])
def test_not_a_report(run, publish, body, why):
    url = publish(body)
    r = check(run, "--socket", url, "-c", "alpha")
    assert r.rc == 1, r
    assert "not a status report" in r.stderr and why in r.stderr, r


# ---- usage and configuration errors: exit status 2 -------------------------

def test_no_monitoring_socket_configured(run, empty_config):
    r = run("fedmsg-check", ["-c", "alpha", "--timeout", "1"])
    assert r.rc == 2, r
    assert "moksha.monitoring.socket" in r.stderr, r
    assert "--socket" in r.stderr, r
    r = run("fedmsg-check", ["--config", empty_config, "--timeout", "1"])
    assert r.rc == 2, r


def test_monitoring_socket_of_wrong_type(run, tmp_path):
    cfg = write_config(tmp_path, {"moksha.monitoring.socket": 9940})
    r = run("fedmsg-check", ["--config", cfg, "--timeout", "1"])
    assert r.rc == 2, r
    assert "must be a string" in r.stderr, r


def test_empty_monitoring_socket_is_unset(run, tmp_path):
    """fedmsg: `if not endpoint: raise ...`."""
    cfg = write_config(tmp_path, {"moksha.monitoring.socket": ""})
    r = run("fedmsg-check", ["--config", cfg, "--timeout", "1"])
    assert r.rc == 2, r
    assert "no monitoring endpoint" in r.stderr, r


@pytest.mark.parametrize("args", [
    ["--timeout", "abc"], ["--timeout", "0"], ["--timeout", "-1"],
    ["--timeout", "5x"], ["--timeout", "99999999999"], ["--socket", ""],
    ["extra-argument"], ["--bogus"], ["-c"],
])
def test_usage_errors(run, args):
    r = run("fedmsg-check", ["--socket", ipc_url()] + args)
    assert r.rc == 2, r
    assert r.out == b""
    assert r.stderr, r


def test_bad_url(run):
    r = run("fedmsg-check", ["--socket", "nosuchproto://x", "--timeout",
                             "1"])
    assert r.rc == 2, r
    assert "nosuchproto://x" in r.stderr, r


def test_bad_config(run, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = run("fedmsg-check", ["--config", bad, "--socket", ipc_url()])
    assert r.rc == 2, r
    assert "bad.json" in r.stderr, r


def test_help(run):
    r = run("fedmsg-check", ["--help"])
    assert r.rc == 0, r
    assert r.stdout.startswith("usage: fedmsg-check")
    for flag in ("--timeout", "--consumer", "--producer", "--socket",
                 "--config"):
        assert flag in r.stdout


# ---- against the real fedmsg-hub -------------------------------------------

def test_real_hub(tmp_path, daemons):
    """The hub reports every 5 s; two checks wait for the same report."""
    (port,) = free_ports(1)
    mon = "ipc://%s" % (tmp_path / "monitoring.sock")
    cfg = write_config(tmp_path, bus_config(
        plugin_dir=str(FM_PLUGINS),
        consumers={"example": {}},
        endpoints={"src": [tcp(port)]},
        **{"moksha.monitoring.socket": mon}))
    hub = daemons("fedmsg-hub", ["--config", cfg], config=cfg)
    hub.wait_stderr("running with 1 consumer(s)")
    ok = daemons("fedmsg-check", ["-c", "example", "--timeout", "8"],
                 config=cfg)
    bad = daemons("fedmsg-check", ["-c", "example", "-c", "nosuch",
                                   "--timeout", "8"], config=cfg)
    # exit 0: a report came before --timeout (fedmsg-check's own bound)
    assert ok.wait(timeout=30) == 0, ok.describe()
    rep = json.loads(ok.stdout())
    assert rep["producers"] == []
    (c,) = rep["consumers"]
    assert c["name"] == "example" and c["module"] == "example"
    assert c["initialized"] is True
    for key in ("topic", "exceptions", "jsonify", "backlog", "headcount_in",
                "headcount_out", "times", "last_error"):
        assert key in c, key

    assert bad.wait(timeout=30) == 1, bad.describe()
    assert "consumer nosuch not found; running: example" in bad.stderr()
    assert "example not found" not in bad.stderr()
    assert bad.stdout() == b""
    assert hub.running(), hub.describe()
