"""fedmsg-logger --broker: publishing to a broker with the relay tool's
options, read by real consumers on the session's brokers: fedora-messaging's
own `consume --callback` on RabbitMQ (AMQP 0-9-1, --format
fedora-messaging) and stomp.py on ActiveMQ.  broker_time_limit comes
after the broker fixtures: a broker's start is not the test's.
"""

import json
import subprocess
import time

from amqp091_setup import (FM_CONSUME, URL091, fm_consumer_env, fm_got,
                           fm_toml, guest_options)
from conftest import (AMQ_STOMP_PORT, HOST, RMQ_AMQP_PORT, SLOW,
                      bridge_config, free_ports, unique, wait_until,
                      write_config)
from peers import need_fedora_messaging

STOMP_URL = "stomp://127.0.0.1:%d" % AMQ_STOMP_PORT


def logger(run, tmp_path, *args, **config):
    cfg = write_config(tmp_path, bridge_config({}, **config))
    return run("fedmsg-logger", ["--config", cfg] + list(args), timeout=60)


def test_logger_to_a_fedora_messaging_consumer(tmp_path, rabbitmq, run,
                                               broker_time_limit):
    need_fedora_messaging()
    mod = unique("lg")
    queue = unique("lgq")
    topic = "org.fedoraproject.dev.%s.log" % mod
    conf = fm_toml(tmp_path / "fm.toml", queue, "amq.topic", [topic],
                   durable=False)
    env, out = fm_consumer_env(tmp_path, conf, 1)
    consumer = subprocess.Popen(FM_CONSUME, env=env, cwd=str(tmp_path),
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    try:
        # until the consumer's queue is bound, a publish is unroutable:
        # the logger says so and exits 1
        results = []

        def sent():
            r = logger(run, tmp_path, "--broker", URL091,
                       *guest_options(tmp_path),
                       "--format", "fedora-messaging", "--modname", mod,
                       "--message", "caf\u00e9 ok")
            results.append(r)
            return r.rc == 0
        wait_until(sent, 30, "a publish the broker routed")
        consumer.wait(30 * SLOW)
    finally:
        if consumer.poll() is None:
            consumer.kill()
        consumer.wait()
    assert consumer.returncode == 0, consumer.stderr.read().decode()[-3000:]
    for r in results[:-1]:
        assert "unroutable" in r.stderr, r
    got = fm_got(out)
    assert len(got) == 1
    g = got[0]
    assert g["topic"] == topic
    assert g["body"] == {"log": "caf\u00e9 ok"}
    assert g["severity"] == 20 and g["schema"] == "Message"
    assert g["headers"]["fedora_messaging_schema"] == "base.message"
    assert g["id"].startswith(time.strftime("%Y-"))     # the msg_id


def test_logger_to_stomp(tmp_path, activemq, stomp_peers, run, dev_pki,
                         fedmsg_peer, broker_time_limit):
    """The fedmsg format on ActiveMQ: the envelope signed as for the
    relay, which the real fedmsg validates."""
    mod = unique("ls")
    peer = stomp_peers(AMQ_STOMP_PORT)
    sid = peer.subscribe("/topic/org.fedoraproject.dev.%s.>" % mod)
    r = logger(run, tmp_path, "--broker", STOMP_URL, "--modname", mod,
               "--topic", "note", "--json-input", "--message",
               '{"n": 1, "who": "carol"}', sign_messages=True,
               ssldir=str(dev_pki),
               certnames={"shell.%s" % HOST: "shell-localhost"})
    assert r.rc == 0, r
    msgs = peer.wait_count(sid, 1, 15)
    assert len(msgs) == 1
    h, body = msgs[0]
    env = json.loads(body)          # the fedmsg format: the envelope
    assert env["topic"] == "org.fedoraproject.dev.%s.note" % mod
    assert env["msg"] == {"n": 1, "who": "carol"}
    assert h["topic"] == env["topic"] and h["who"] == "carol"
    assert h["fedmsg_msg_id"] == env["msg_id"]
    fedmsg_peer.assert_signed_by([env], "shell-localhost",
                                 ca=dev_pki / "ca.crt",
                                 crl=dev_pki / "crl.pem")


def test_logger_broker_errors(tmp_path, run):
    """No broker there: a clear error within --timeout, exit 1; a bad
    --format is a usage error."""
    (port,) = free_ports(1)
    r = logger(run, tmp_path, "--broker", "stomp://127.0.0.1:%d" % port,
               "--timeout", "2", "--message", "x")
    assert r.rc == 1
    assert "no connection to stomp://127.0.0.1" in r.stderr, r
    r = logger(run, tmp_path, "--broker", STOMP_URL, "--format", "xml",
               "--message", "x")
    assert r.rc == 2 and "--format" in r.stderr, r
    # a usage error after the --broker options: nothing leaks (run fails
    # on a LeakSanitizer report)
    r = logger(run, tmp_path, "--broker", STOMP_URL, "--user", "u",
               "--timeout", "soon")
    assert r.rc == 2 and "--timeout" in r.stderr, r


def test_logger_to_tail_on_amqp10(tmp_path, rabbitmq, daemons, run,
                                  broker_time_limit):
    """Both tools on AMQP 1.0 (RabbitMQ): fedmsg-logger --format umb, read
    by fedmsg-tail --json: the payload as the body, the properties as
    headers."""
    mod = unique("la")
    url = "amqp://127.0.0.1:%d" % RMQ_AMQP_PORT
    creds = guest_options(tmp_path)
    cfg = write_config(tmp_path, bridge_config({}))
    tail = daemons("fedmsg-tail", ["--config", cfg, "--broker", url] + creds
                   + ["--source", "/topic/org.fedoraproject.dev.%s.#" % mod,
                      "--count", "1", "--json"], config=cfg)
    deadline = time.monotonic() + 30 * SLOW
    while tail.running():
        assert time.monotonic() < deadline, tail.describe()
        r = logger(run, tmp_path, "--broker", url, *creds, "--format",
                   "umb", "--modname", mod, "--json-input", "--message",
                   '{"n": 5, "who": "carol"}')
        assert r.rc == 0, r
        time.sleep(0.5)
    assert tail.wait() == 0, tail.describe()
    got = json.loads(tail.stdout())
    assert got["topic"] == "org.fedoraproject.dev.%s.log" % mod
    assert got["body"] == {"n": 5, "who": "carol"}
    assert got["headers"]["who"] == "carol"
    assert got["headers"]["msg_id"] == got["id"]
    assert got["headers"]["fedmsg_c_bridge"].endswith("/fedmsg-logger")
