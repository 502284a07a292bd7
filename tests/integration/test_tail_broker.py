"""fedmsg-tail --broker: watching a broker with the ZeroMQ tool's options,
fed by real publishers on the session's brokers: fedora-messaging's
api.publish on RabbitMQ (AMQP 0-9-1; --json is fedora-messaging's
serialised form, read back with its own message.loads) and stomp.py on
ActiveMQ.  broker_time_limit comes after the broker fixtures: a broker's
start is not the test's.
"""

import json
import time

from amqp091_setup import URL091, fm_run, fm_toml, guest_options
from conftest import (AMQ_STOMP_PORT, SLOW, bridge_config, canonical,
                      make_envelope, signed, unique, vector_validation,
                      write_config)
from peers import need_fedora_messaging

STOMP_URL = "stomp://127.0.0.1:%d" % AMQ_STOMP_PORT


def start_tail(daemons, tmp_path, *args, **config):
    cfg = write_config(tmp_path, bridge_config({}, **config))
    return daemons("fedmsg-tail", ["--config", cfg, "-v"] + list(args),
                   config=cfg)


def until_printed(tail, send, timeout=30.0):
    """Call send() every half second until the tail (with --count) exits
    by itself; its standard output."""
    deadline = time.monotonic() + timeout * SLOW
    while tail.running():
        assert time.monotonic() < deadline, \
            "fedmsg-tail printed nothing: " + tail.describe()
        send()
        time.sleep(0.5)
    assert tail.wait() == 0, tail.describe()
    return tail.stdout().decode("utf-8")


def test_tail_sees_fedora_messaging_publish(tmp_path, rabbitmq, daemons,
                                            broker_time_limit):
    """api.publish -> RabbitMQ amq.topic -> fedmsg-tail --broker amqp091
    --json: one line that fedora-messaging's loads() reads back as the
    message that was published."""
    need_fedora_messaging()
    prefix = "org.fedoraproject.dev." + unique("tl")
    conf = fm_toml(tmp_path / "fm.toml")
    tail = start_tail(
        daemons, tmp_path, "--broker", URL091, *guest_options(tmp_path),
        "--source", "/exchange/amq.topic/%s.#" % prefix,
        "--json", "--count", "1")
    publish = (
        "import sys\n"
        "from fedora_messaging import api, message\n"
        "api.publish(message.Message(topic=sys.argv[1], body={\n"
        "    'who': 'carol', 'n': 1, 'text': 'caf\\u00e9'},\n"
        "    headers={'extra': 7}))\n")

    text = until_printed(tail, lambda: fm_run(tmp_path, conf, publish,
                                              prefix + ".x"))
    lines = text.splitlines()
    assert len(lines) == 1, text
    got = json.loads(lines[0])
    assert got["topic"] == prefix + ".x"
    assert got["body"] == {"who": "carol", "n": 1, "text": "caf\u00e9"}
    assert got["headers"]["extra"] == 7
    assert got["headers"]["fedora_messaging_severity"] == 20
    # fedora-messaging's own reader takes it, typed headers and all
    check = (
        "import sys\n"
        "from fedora_messaging import message\n"
        "text = sys.stdin.read()\n"
        "m, = message.loads(text)\n"
        "assert m.topic == sys.argv[1], m.topic\n"
        "assert m.body['who'] == 'carol', m.body\n"
        "assert m.severity == message.INFO, m.severity\n"
        "assert m._headers['extra'] == 7\n"
        "print(m.id)\n"
        "# and its own dumps() writes back the very same line\n"
        "assert message.dumps(m) == text, (message.dumps(m), text)\n")
    out = fm_run(tmp_path, conf, check, prefix + ".x",
                 stdin=text.encode("utf-8"))
    assert out.strip() == got["id"]


def test_tail_sees_a_stomp_send(tmp_path, activemq, stomp_peers, daemons,
                                broker_time_limit):
    """stomp.py SEND -> ActiveMQ -> fedmsg-tail --broker stomp: a plain
    body is wrapped (topic from the destination), an envelope shown as
    it is, in fedmsg-tail's usual line."""
    prefix = "org.fedoraproject.dev." + unique("ts")
    peer = stomp_peers(AMQ_STOMP_PORT)
    tail = start_tail(daemons, tmp_path, "--broker", STOMP_URL,
                      "--source", "/topic/%s.>" % prefix, "--count", "2")
    env = make_envelope(prefix + ".env", {"kind": "envelope"})

    def send():
        peer.send("/topic/%s.plain" % prefix, canonical({"kind": "plain"}))
        peer.send("/topic/%s.env" % prefix, canonical(env))
    text = until_printed(tail, send)
    lines = text.splitlines()
    assert len(lines) == 2, text
    # "<time> <topic> <canonical JSON without signature>"
    by_topic = {l.split(" ", 2)[1]: json.loads(l.split(" ", 2)[2])
                for l in lines}
    assert by_topic[prefix + ".plain"]["msg"] == {"kind": "plain"}
    assert by_topic[prefix + ".plain"]["username"] == "fedmsg-tail"
    assert by_topic[prefix + ".env"]["msg_id"] == env["msg_id"]


def test_tail_json_names_the_stomp_queue(tmp_path, activemq, stomp_peers,
                                        daemons, broker_time_limit):
    """--json on STOMP: "queue" is the queue subscribed to (as on AMQP),
    not the link's own subscription id."""
    q = unique("tq")
    peer = stomp_peers(AMQ_STOMP_PORT)
    tail = start_tail(daemons, tmp_path, "--broker", STOMP_URL,
                      "--source", "/queue/" + q, "--json", "--count", "1")
    env = make_envelope("org.fedoraproject.dev.tq.x", {"n": 1})
    text = until_printed(tail, lambda: peer.send("/queue/" + q,
                                                 canonical(env)))
    got = json.loads(text.splitlines()[0])
    assert got["queue"] == q, got


def test_tail_validates_broker_messages(tmp_path, activemq, stomp_peers,
                                       daemons, broker_time_limit):
    """--validate on a broker: a signed envelope is printed; an unsigned
    envelope and a wrapped plain body are dropped as invalid."""
    name = unique("tv")
    prefix = "org.fedoraproject.dev." + name
    peer = stomp_peers(AMQ_STOMP_PORT)
    tail = start_tail(daemons, tmp_path, "--broker", STOMP_URL,
                      "--source", "/topic/%s.>" % prefix,
                      "--validate", "--count", "1", **vector_validation())
    good = signed(name + ".signed", {"ok": True})
    bad = make_envelope(prefix + ".unsigned", {"ok": False})

    # first the unsigned ones, until the tail has dropped the envelope
    # and a wrapped plain body after it
    deadline = time.monotonic() + 30 * SLOW
    while not ("dropped invalid message %s" % bad["msg_id"] in
               tail.stderr() and tail.stderr().count("unsigned:") >= 2):
        assert tail.running() and time.monotonic() < deadline, \
            tail.describe()
        peer.send("/topic/%s.unsigned" % prefix, canonical(bad))
        peer.send("/topic/%s.plain" % prefix, canonical({"ok": False}))
        time.sleep(0.5)
    assert tail.stdout() == b""         # nothing printed for them
    text = until_printed(tail, lambda: peer.send(
        "/topic/%s.signed" % prefix, canonical(good)))
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert json.loads(lines[0].split(" ", 2)[2])["msg_id"] == good["msg_id"]


def test_tail_broker_usage_errors(tmp_path, run):
    """No broker needed: a clear error for a missing --source."""
    cfg = write_config(tmp_path, bridge_config({}))
    r = run("fedmsg-tail", ["--config", cfg, "--broker", STOMP_URL])
    assert r.rc == 2
    assert "--source is needed" in r.stderr
    r = run("fedmsg-tail", ["--help"])
    assert "--broker URL" in r.stdout and "--tls-ca" in r.stdout


def test_tail_topic_binds_on_amqp091(tmp_path, rabbitmq, daemons,
                                     broker_time_limit):
    """--topic on AMQP 0-9-1 without --source: the private queue is bound
    to the prefix's words, so RabbitMQ filters.  fedora-messaging's
    api.publish sends a topic outside the prefix, then one inside, on one
    channel (in order): only the second reaches the tail, which receives
    (not only prints) one message.  Binding "#" and filtering in the tail
    would receive the first one too."""
    need_fedora_messaging()
    prefix = "org.fedoraproject.dev." + unique("tt")
    conf = fm_toml(tmp_path / "fm.toml")
    tail = start_tail(
        daemons, tmp_path, "--broker", URL091, *guest_options(tmp_path),
        "--topic", prefix + ".wanted", "--count", "1")
    publish = (
        "import sys\n"
        "from fedora_messaging import api, message\n"
        "for t in sys.argv[1:]:\n"
        "    api.publish(message.Message(topic=t, body={'t': t}))\n")

    text = until_printed(tail, lambda: fm_run(
        tmp_path, conf, publish, prefix + ".other.x", prefix + ".wanted.x"))
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].split(" ", 2)[1] == prefix + ".wanted.x"
    assert "1 received, 1 printed" in tail.stderr(), tail.describe()
