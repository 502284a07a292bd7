"""fedmsg-bridge refuses a bad "bridges" config before it connects to
anything: exit status 2 and one line naming the bridge, the key and what
is wrong.  An unknown key is only a warning (fedmsg's own config is full
of keys other programs read), and the bridge runs.  No broker is needed:
every case here fails, or is checked, before the first connection."""

import pytest

import os

from conftest import bridge_config, free_ports, password_file, \
    start_bridge, tcp, write_config

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
                       "want amqp://, amqps:// (AMQP 1.0), amqp091://, "
                       "amqps091:// (AMQP 0-9-1), stomp:// or stomp+ssl://"),
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
    "coalesce_us_negative": (lambda t: amqp_to_zmq(coalesce_us=-1),
                             "coalesce_us must be an integer from 0 to "
                             "10000 (microseconds)"),
    "coalesce_us_too_long": (lambda t: amqp_to_zmq(coalesce_us=10001),
                             "coalesce_us must be an integer from 0 to "
                             "10000"),
    "coalesce_us_zmq_to_broker": (lambda t: zmq_to_amqp(t, coalesce_us=500),
                                  "coalesce_us is for a broker -> zmq "
                                  "bridge"),
    "coalesce_us_not_a_number": (lambda t: amqp_to_zmq(coalesce_us="200us"),
                                 "coalesce_us must be an integer"),
    "password_file": (lambda t: amqp_to_zmq(
        user="guest", password_file=str(t / "missing-password")),
        "missing-password: No such file or directory"),
    # credentials never travel in clear (see README, Security)
    "password_file_mode": (lambda t: amqp_to_zmq(**{
        "from": "amqps://127.0.0.1:1", "user": "guest",
        "password_file": readable_password(t)}),
        "mode 0640 lets group or others read it; chmod 600 it"),
    "mixed_amqp": (lambda t: amqp_to_zmq(**{
        "from": ["amqps://127.0.0.1:1", "amqp://127.0.0.1:2"]}),
        "the URL list mixes amqps:// and amqp:// (amqp://127.0.0.1:2)"),
    "mixed_stomp": (lambda t: amqp_to_zmq(**{
        "from": ["stomp+ssl://127.0.0.1:1", "stomp://127.0.0.1:2"]}),
        "the URL list mixes stomp+ssl:// and plain stomp:// "
        "(stomp://127.0.0.1:2)"),
    "mixed_stomp_comma_list": (lambda t: zmq_to_amqp(t, to=[
        "stomp+ssl://127.0.0.1:1", "stomp+ssl://127.0.0.1:3,tcp://"
        "127.0.0.1:2"]),
        "the URL list mixes stomp+ssl:// and plain stomp:// "
        "(stomp://127.0.0.1:2)"),
    "plain_amqp_user": (lambda t: amqp_to_zmq(user="guest"),
                        "user/password_file over plain amqp://127.0.0.1:1 "
                        "would send them in clear: use amqps:// (or set "
                        "allow_plaintext_credentials: true)"),
    "plain_amqp_password": (lambda t: zmq_to_amqp(
        t, user="guest", password_file=password_file(t)),
        "user/password_file over plain amqp://127.0.0.1:1 would send them "
        "in clear"),
    "plain_stomp_password": (lambda t: zmq_to_amqp(
        t, to="stomp://127.0.0.1:1", user="guest",
        password_file=password_file(t)),
        "user/password_file over plain stomp://127.0.0.1:1 would send them "
        "in clear: use stomp+ssl://"),
    "allow_plaintext_credentials": (lambda t: amqp_to_zmq(
        user="guest", allow_plaintext_credentials="yes"),
        "allow_plaintext_credentials must be true or false"),
    # a wrong type is no silent "unset": no password, no user at all
    "password_file_not_a_string": (lambda t: amqp_to_zmq(
        password_file=[password_file(t)]), "password_file must be a string"),
    "user_not_a_string": (lambda t: amqp_to_zmq(user=5),
                          "user must be a string"),
    "tls_ca_not_a_string": (lambda t: amqp_to_zmq(tls={"ca": True}),
                            "tls.ca must be a string"),
    "credit_negative": (lambda t: amqp_to_zmq(credit=-1),
                        "credit must be from 0 to 65535"),
    "heartbeat_negative": (lambda t: amqp_to_zmq(heartbeat=-5),
                           "heartbeat must be from 0 to 3600 seconds"),
    # a refused URL is quoted without its password
    "password_in_url": (lambda t: amqp_to_zmq(**{
        "from": "amqps://alice:Tr0ub4dor@127.0.0.1:1"}),
        "amqps://alice:***@127.0.0.1:1"),
}


def readable_password(t):
    p = password_file(t)
    os.chmod(p, 0o640)
    return p


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
    assert "Tr0ub4dor" not in r.stderr, r


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


@pytest.mark.parametrize("to", ["amqp://127.0.0.1:1", "stomp://127.0.0.1:1"])
def test_plaintext_credentials_opt_in_is_logged(tmp_path, daemons, to):
    """allow_plaintext_credentials: true lets a password go over a plain
    URL, and the bridge says so loudly when it starts."""
    entry = zmq_to_amqp(tmp_path, to=to, user="guest",
                        password_file=password_file(tmp_path, "s3cret"),
                        allow_plaintext_credentials=True)
    cfg = write_config(tmp_path, bridge_config(
        {"b1": entry}, endpoints={"src": [tcp(free_ports()[0])]}))
    bridge = start_bridge(daemons, cfg, wait="bridge b1:")
    err = bridge.stderr()
    warn = [x for x in err.splitlines() if "INSECURE" in x]
    assert warn and "allow_plaintext_credentials" in warn[0] and \
        to in warn[0], err
    assert "s3cret" not in err
    assert "unknown key" not in err
    assert bridge.stop() == 0, bridge.describe()
