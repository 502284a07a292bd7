"""fedmsg-bridge refuses a bad "bridges" config before it connects to
anything: exit status 2 and one line naming the bridge, the key and what
is wrong.  An unknown key is only a warning (fedmsg's own config is full
of keys other programs read), and the bridge runs.  No broker is needed:
every case here fails, or is checked, before the first connection."""

import pytest

from conftest import bridge_config, free_ports, start_bridge, tcp, \
    write_config

AMQP = "amqp://127.0.0.1:1"             # never reached: config errors first


def zmq_to_amqp(tmp_path, **kw):
    b = {"from": "zmq", "to": AMQP, "address": "/topic/{topic}",
         "spool": {"dir": str(tmp_path / "spool")}}
    b.update(kw)
    return b


def amqp_to_zmq(**kw):
    b = {"from": AMQP, "to": "zmq", "source": "/queue/x",
         "endpoints": tcp(free_ports()[0])}
    b.update(kw)
    return b


CASES = {
    "both_zmq": (lambda t: {"from": "zmq", "to": "zmq"},
                 'exactly one of "from" and "to" must be "zmq"'),
    "url_not_a_string": (lambda t: zmq_to_amqp(t, to=42),
                         '"to" must be a broker URL or a list of them'),
    "unknown_scheme": (lambda t: zmq_to_amqp(t, to="http://127.0.0.1:1"),
                       "want amqp://, amqps://, stomp:// or stomp+ssl://"),
    "topics_not_a_list": (lambda t: zmq_to_amqp(t, topics="org.x"),
                          "topics must be a list"),
    "no_spool": (lambda t: {"from": "zmq", "to": AMQP},
                 "spool.dir is required"),
    "spool_max_bytes": (lambda t: zmq_to_amqp(
        t, spool={"dir": str(t / "s"), "max_bytes": "1G"}),
        "spool.max_bytes must be a positive integer"),
    "spool_full": (lambda t: zmq_to_amqp(
        t, spool={"dir": str(t / "s"), "full": "sometimes"}),
        'spool.full must be "drop_oldest" or "drop_new"'),
    "spool_fsync": (lambda t: zmq_to_amqp(
        t, spool={"dir": str(t / "s"), "fsync": "yes"}),
        "spool.fsync must be true or false"),
    "no_source": (lambda t: amqp_to_zmq(source=None),
                  '"source" (the address to receive from) is required'),
    "validate": (lambda t: amqp_to_zmq(validate="yes"),
                 "validate must be true or false"),
    "heartbeat": (lambda t: amqp_to_zmq(heartbeat="10s"),
                  "heartbeat a number of seconds"),
    "confirm_timeout": (lambda t: amqp_to_zmq(confirm_timeout=0),
                        "confirm_timeout must be a number of seconds"),
    "password_file": (lambda t: amqp_to_zmq(
        user="guest", password_file=str(t / "missing-password")),
        "missing-password: No such file or directory"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_bridge_config_is_refused(run, tmp_path, case):
    make, want = CASES[case]
    entry = {k: v for k, v in make(tmp_path).items() if v is not None}
    cfg = write_config(tmp_path, bridge_config({"b1": entry}))
    r = run("fedmsg-bridge", ["--config", cfg])
    assert r.rc == 2, r
    errors = [x for x in r.stderr.splitlines() if "bridges.b1" in x]
    assert errors and want in errors[0], r
    assert "connect" not in r.stderr, r         # refused before any I/O


def test_no_bridges_is_refused(run, tmp_path):
    cfg = write_config(tmp_path, bridge_config({}))
    r = run("fedmsg-bridge", ["--config", cfg])
    assert r.rc == 2, r
    assert '"bridges" must be an object of named bridges' in r.stderr, r


def test_no_endpoints_is_refused(run, tmp_path):
    cfg = write_config(tmp_path, bridge_config({"b1": zmq_to_amqp(
        tmp_path)}))
    r = run("fedmsg-bridge", ["--config", cfg])
    assert r.rc == 2, r
    assert "bridges.b1: no endpoints to subscribe to" in r.stderr, r


def test_unknown_keys_are_warnings(tmp_path, daemons):
    cfg = write_config(tmp_path, bridge_config({"b1": zmq_to_amqp(
        tmp_path, adress="/topic/{topic}",
        spool={"dir": str(tmp_path / "spool"), "max_byte": 1000})},
        endpoints={"src": [tcp(free_ports()[0])]}))
    bridge = start_bridge(daemons, cfg, wait="retrying in")
    err = bridge.stderr()
    assert "bridges.b1: unknown key 'adress'" in err
    assert "bridges.b1.spool: unknown key 'max_byte'" in err
    assert bridge.running()
    assert bridge.stop() == 0, bridge.describe()
