"""What the AMQP 0-9-1 tests share on the session's RabbitMQ (conftest's
rabbitmq fixture starts it): its URLs, a pika channel on it, the guest
login as the tools' options and as a bridge entry, fedora-messaging's
config file for it, and fedora-messaging's own consumer (its CLI with a
callback that writes each message as a JSON line) and scripts.
"""

import json
import subprocess
import sys
import time

from conftest import RMQ_AMQP_PORT, password_file
from peers import fedora_messaging_env

URL091 = "amqp091://127.0.0.1:%d" % RMQ_AMQP_PORT
FM_URL = "amqp://guest:guest@127.0.0.1:%d/%%2F" % RMQ_AMQP_PORT

# the fedora-messaging callback: one JSON line per message to FM_OUT, then
# stop once FM_WANT lines are there
FM_CALLBACK = '''
import json, os
from fedora_messaging.exceptions import HaltConsumer

def callback(message):
    with open(os.environ["FM_OUT"], "a") as f:
        f.write(json.dumps({
            "topic": message.topic, "body": message.body, "id": message.id,
            "severity": message.severity, "headers": message._headers,
            "content_type": message._properties.content_type,
            "content_encoding": message._properties.content_encoding,
            "delivery_mode": message._properties.delivery_mode,
            "schema": type(message).__name__}) + "\\n")
    with open(os.environ["FM_OUT"]) as f:
        if len(f.readlines()) >= int(os.environ["FM_WANT"]):
            raise HaltConsumer(exit_code=0)
'''

# fedora-messaging's `consume` with FM_CALLBACK (run with fm_consumer_env)
FM_CONSUME = [sys.executable, "-c",
              "from fedora_messaging.cli import cli; cli()",
              "consume", "--callback=fm_cb:callback"]


def pika_channel():
    """A pika (python3-pika, a real AMQP 0-9-1 client) connection and
    channel on the test RabbitMQ as guest; the caller closes the
    connection."""
    import pika     # here: the tests that only use the tools need no pika
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", RMQ_AMQP_PORT,
        credentials=pika.PlainCredentials("guest", "guest")))
    return conn, conn.channel()


def drain_ids(queue, want, timeout):
    """The message_ids read from queue (acked), until the set want is
    covered and the queue is empty, or timeout seconds have passed."""
    conn, ch = pika_channel()
    ids = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                if want <= set(ids):
                    break
                time.sleep(0.1)
                continue
            ids.append(props.message_id)
    finally:
        conn.close()
    return ids


def guest_options(tmp_path):
    """The fedmsg tools' options for RabbitMQ's guest login (plain
    credentials: the broker is on loopback)."""
    return ["--user", "guest", "--password-file", password_file(tmp_path),
            "--allow-plaintext-credentials"]


def guest_entry(tmp_path, **kw):
    """A bridge entry with RabbitMQ's guest login, updated with kw."""
    b = {"user": "guest", "password_file": password_file(tmp_path),
         "allow_plaintext_credentials": True}      # RabbitMQ on loopback
    b.update(kw)
    return b


def fm_toml(path, queue=None, exchange=None, keys=(), durable=True):
    """fedora-messaging's config at path (returned): the test RabbitMQ and,
    with queue, that queue bound to exchange by keys (durable, or
    auto-deleted)."""
    lines = ['amqp_url = "%s"' % FM_URL, 'passive_declares = false']
    if queue:
        lines += ['[queues.%s]' % queue,
                  'durable = %s' % ("true" if durable else "false"),
                  'auto_delete = %s' % ("false" if durable else "true"),
                  'exclusive = false',
                  'arguments = {}', '[[bindings]]', 'queue = "%s"' % queue,
                  'exchange = "%s"' % exchange,
                  'routing_keys = %s' % json.dumps(list(keys))]
    path.write_text("\n".join(lines) + "\n")
    return path


def fm_consumer_env(tmp_path, conf, want):
    """The environment for FM_CONSUME with config conf, stopping after
    want messages, and the file its lines go to (read with fm_got)."""
    cb = tmp_path / "cbmod"
    cb.mkdir()
    (cb / "fm_cb.py").write_text(FM_CALLBACK)
    out = tmp_path / "got.jsonl"
    env = fedora_messaging_env(conf, cb)
    env.update(FM_OUT=str(out), FM_WANT=str(want))
    return env, out


def fm_got(out):
    """What the consumer wrote: one dict per message, in order."""
    return [json.loads(line) for line in out.read_text().splitlines()]


def fm_consume(tmp_path, conf, want, timeout=45):
    """Run fedora-messaging's consumer until it has want messages (it must
    exit 0 within timeout): the messages and its standard error."""
    env, out = fm_consumer_env(tmp_path, conf, want)
    p = subprocess.run(FM_CONSUME, env=env, cwd=str(tmp_path),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    return fm_got(out), p.stderr.decode()


def fm_run(tmp_path, conf, script, *args, stdin=None, timeout=45):
    """Run a Python script with fedora-messaging set up by the config conf
    (it must exit 0 within timeout): its standard output."""
    r = subprocess.run([sys.executable, "-c", script] + list(args),
                       input=stdin, env=fedora_messaging_env(conf),
                       cwd=str(tmp_path), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    return r.stdout.decode()
