"""The test harness's own teardown: a process that is still running when
its test ends gets SIGTERM, and if it has not exited within STOP_TIMEOUT,
SIGKILL.  The report LeakSanitizer or valgrind (`make valgrind`'s FM_WRAP)
writes at exit is then lost, and that must fail the test, not vanish.
"""

import signal

import pytest

import conftest
from conftest import bus_config, start_relay, stop_all, tcp, \
    free_ports, write_config


def relay(tmp_path, daemons):
    inp, out = free_ports(2)
    cfg = write_config(tmp_path, bus_config(
        relay_inbound=tcp(inp), endpoints={"relay_outbound": [tcp(out)]}))
    return start_relay(daemons, cfg)


def test_lost_report_fails_the_teardown(tmp_path, daemons, monkeypatch):
    """A relay that cannot act on SIGTERM (stopped) is SIGKILLed by the
    teardown: the test fails, naming the lost report."""
    d = relay(tmp_path, daemons)
    monkeypatch.setattr(conftest, "STOP_TIMEOUT", 1)
    d.proc.send_signal(signal.SIGSTOP)
    with pytest.raises(pytest.fail.Exception) as e:
        stop_all([d])
    assert not d.running()
    assert d.proc.returncode == -signal.SIGKILL
    assert "SIGKILLed, so its" in str(e.value) and \
        "report was lost" in str(e.value), str(e.value)


def test_clean_exit_passes(tmp_path, daemons):
    """The same relay, able to exit on SIGTERM: nothing to report."""
    d = relay(tmp_path, daemons)
    stop_all([d])
    assert d.proc.returncode == 0, d.describe()


def test_report_fails(tmp_path, daemons):
    """A process that exited with a report on stderr fails the teardown."""
    d = relay(tmp_path, daemons)
    d.stop()
    with open(d.err_path, "a") as f:
        f.write("==123== Invalid read of size 8\n")
    with pytest.raises(pytest.fail.Exception) as e:
        stop_all([d])
    assert "sanitizer/valgrind report" in str(e.value)
    # the fixture's own teardown would fail the same way: undo it
    d.err_path.write_text("")
