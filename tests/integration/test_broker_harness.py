"""The test brokers' harness itself (tests/brokers/broker.sh,
tests/brokers/brokerrun.py, the BrokerPool of conftest.py): brokers on
ports of their own per run, beside other runs and beside whatever holds
the brokers' usual ports, and nothing left running by a run that was
killed."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import (BROKER_PORT_VARS, BROKER_RUN, BrokerPool, amqp_connection,
                      amqp_message, brokerrun, read_ports_env, unique)

# what a system RabbitMQ / ActiveMQ, or a test run of an older tree, holds
USUAL_PORTS = (5672, 5671, 61613, 61612, 61611, 61623, 61624, 25672, 4371)


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail("not within %s s: %s" % (timeout, what),
                        pytrace=False)
        time.sleep(0.05)


def alive(pid):
    return brokerrun.proc_start(pid) is not None


def sleeper(env_extra=None):
    """A `sleep` of its own session: a stand-in owner or broker."""
    env = {k: v for k, v in os.environ.items() if k != brokerrun.TAG}
    env.update(env_extra or {})
    return subprocess.Popen(["sleep", "600"], env=env,
                            start_new_session=True)


def stop(p):
    if p.poll() is None:
        p.kill()
    p.wait()


def test_reserved_ports_are_free_distinct_and_not_the_usual_ones():
    mine = set(BROKER_RUN.ports)
    assert len(mine) == len(BROKER_RUN.ports)
    assert not mine & set(USUAL_PORTS)
    more = BROKER_RUN.reserve(20)
    assert not set(more) & mine and len(set(more)) == 20
    # another run never gets a port this one holds
    assert mine | set(more) <= brokerrun.reserved_ports()
    assert not set(brokerrun.pick_ports(50, brokerrun.reserved_ports())) \
        & (mine | set(more))


def test_a_dead_owners_run_is_cleaned_up_and_nothing_else():
    owner = sleeper()
    run = brokerrun.Run.create(owner=owner.pid)
    victim = sleeper(run.env())         # "its broker"
    bystander = sleeper()               # no mark: never touched
    live = brokerrun.Run.create()       # a live run (ours)
    live_proc = sleeper(live.env())
    try:
        wait_until(lambda: victim.pid in brokerrun.tagged(run.dir), 5,
                   "the marked process is found")
        brokerrun.reap()
        assert run.dir.is_dir() and alive(victim.pid)   # owner alive
        stop(owner)
        brokerrun.reap()
        wait_until(lambda: victim.poll() is not None, 10,
                   "the dead run's process killed")
        assert not run.dir.exists()
        assert alive(bystander.pid)
        assert live.dir.is_dir() and alive(live_proc.pid)
    finally:
        for p in (owner, victim, bystander, live_proc):
            stop(p)
        live.close()


def test_a_reused_owner_pid_does_not_keep_a_run_alive():
    run = brokerrun.Run.create()
    pid, start = (run.dir / "owner").read_text().split()
    (run.dir / "owner").write_text("%s %d\n" % (pid, int(start) + 1))
    try:
        assert not brokerrun.owner_alive(run.dir)
        brokerrun.reap()
        assert not run.dir.exists()
    finally:
        run.close()


def test_the_watchdog_cleans_up_when_the_owner_is_killed():
    owner = sleeper()
    run = brokerrun.Run.create(owner=owner.pid)
    dog = run.watch()
    victim = sleeper(run.env())
    try:
        time.sleep(0.2)
        assert dog.poll() is None and victim.poll() is None
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        wait_until(lambda: victim.poll() is not None, 15,
                   "the watchdog kills the run's process")
        wait_until(lambda: not run.dir.exists(), 5, "run dir removed")
        assert dog.wait(10) == 0
    finally:
        for p in (owner, victim):
            stop(p)
        run.close()


def test_the_watchdog_ends_with_its_run():
    run = brokerrun.Run.create()
    dog = run.watch()
    victim = sleeper(run.env())
    try:
        run.close()                     # the normal end of a run
        assert dog.wait(10) == 0
        assert victim.wait(10) == -signal.SIGTERM
    finally:
        stop(victim)


def test_a_run_closed_while_its_watchdog_starts_is_gone():
    """close() at any moment of the watchdog's start removes the run and
    ends the watchdog (once, a file the watchdog wrote during close()'s
    removal kept both: CI waited for it in vain)."""
    for i in range(20):
        run = brokerrun.Run.create()
        dog = run.watch()
        time.sleep(i * 0.004)
        run.close()
        assert dog.wait(10) == 0
        assert not run.dir.exists()


def test_the_watchdog_does_not_take_a_closing_run_for_a_dead_one():
    """close() removes the owner file before the directory: the watchdog
    must not kill the run's processes then (make bench's own `brokerrun.py
    close` is one of them, and died of it)."""
    run = brokerrun.Run.create()
    dog = run.watch()
    victim = sleeper(run.env())
    try:
        wait_until(lambda: (run.dir / "watchdog").exists(), 10,
                   "the watchdog is started")
        (run.dir / "owner").unlink()
        # the watchdog polls every 0.5 s: give it a few rounds
        time.sleep(2.0)
        assert victim.poll() is None, "the watchdog killed a closing run"
        assert dog.poll() is None
        shutil.rmtree(run.dir)
        assert dog.wait(10) == 0
        assert victim.poll() is None
    finally:
        stop(victim)
        run.close()


def hold(ports):
    """Listen on those of ports that are free, like a system broker."""
    held = []
    for p in ports:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            s.listen(1)
            held.append(s)
        except OSError:
            s.close()                   # taken already: just as good
    return held


def send_one(broker, queue, body):
    conn = amqp_connection(url=broker.amqp_url)
    try:
        conn.create_sender(queue).send(amqp_message(body), timeout=10)
    finally:
        conn.close()


@pytest.mark.broker_limit(400)
def test_a_second_rabbitmq_beside_the_sessions_and_a_killed_run(
        tmp_path, rabbitmq, broker_time_limit):
    """Another run's RabbitMQ (its owner a stand-in process) starts while
    the usual ports are held and this session's RabbitMQ runs; both
    work, each with its own queues; when the other run's owner is killed
    (SIGKILL), its watchdog stops its broker and frees its ports."""
    held = hold(USUAL_PORTS)
    owner = sleeper()
    run = brokerrun.Run.create(owner=owner.pid)
    ports = dict(zip(BROKER_PORT_VARS["rabbitmq"], run.reserve(6)))
    pool = BrokerPool(tmp_path / "other", [], ports=ports, run=run)
    try:
        other = pool.get("rabbitmq")
        assert other.ports == ports
        assert not set(ports.values()) & set(rabbitmq.ports.values())
        env = read_ports_env(other.dir / "ports.env")
        node = read_ports_env(rabbitmq.dir / "ports.env")["FM_RMQ_NODE"]
        assert env["FM_RMQ_NODE"] != node
        assert {int(env[n]) for n in ports} == set(ports.values())

        q = "/queue/" + unique("harness")
        send_one(other, q, "to the other broker")
        assert other.queues().get(q[7:], (0,))[0] == 1
        assert q[7:] not in rabbitmq.queues()
        send_one(rabbitmq, q, "to ours")     # ours still works
        assert rabbitmq.queues()[q[7:]][0] == 1

        pids = brokerrun.tagged(run.dir)
        assert other.pids() and set(other.pids()) <= set(pids)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        wait_until(lambda: not any(alive(p) for p in pids), 60,
                   "the killed run's broker processes gone")
        wait_until(lambda: all(brokerrun.port_free(p)
                               for p in ports.values()), 30,
                   "the killed run's ports free")
        wait_until(lambda: not run.dir.exists(), 30,
                   "the killed run's directory removed")
        assert rabbitmq.running()
    finally:
        stop(owner)
        for s in held:
            s.close()
        pool.close()
        run.close()
