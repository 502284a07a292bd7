"""What fedmsg-hub refuses at start (exit status 2, a line naming the
problem), with `--check`, so no broker and no traffic are needed:
credentials over a plain broker URL, a failover list that mixes TLS and
plain URLs, a plugin given by a relative path or found through a relative
plugin_dir, a plugin file or directory others may write to, and a
hub.metrics address with anything after the port."""

import os
import shutil

import pytest

from conftest import free_ports, hub_config, password_file, write_config

pytestmark = pytest.mark.usefixtures("hub_time_limit")


def check(hubs, tmp_path, cfg, mport):
    hub = hubs(write_config(tmp_path, cfg), ["--check"], metrics_port=mport)
    return hub.wait(10), hub.stderr()


def verdicts_consumer(path, tmp_path):
    return {"v": {"plugin": str(path),
                  "config": {"file": str(tmp_path / "v.txt")}}}


# ---- credentials ---------------------------------------------------------------

def broker_hub(tmp_path, src, mport, **hub):
    h = {"bus": "amqp://127.0.0.1:1", "source": "/queue/x"}
    h.update(hub)
    return hub_config(src, mport, {}, hub=h)


def test_password_over_plain_amqp_is_refused(tmp_path, hubs):
    src, mport = free_ports(2)
    rc, err = check(hubs, tmp_path, broker_hub(
        tmp_path, src, mport, user="guest",
        password_file=password_file(tmp_path)), mport)
    assert rc == 2, err
    assert "hub: user/password_file over plain amqp://127.0.0.1:1 would " \
        "send them in clear: use amqps:// (or set " \
        "allow_plaintext_credentials: true)" in err, err


def test_mixed_tls_and_plain_bus_is_refused(tmp_path, hubs):
    src, mport = free_ports(2)
    rc, err = check(hubs, tmp_path, broker_hub(
        tmp_path, src, mport, bus=["amqps://127.0.0.1:1",
                                   "amqp://127.0.0.1:2"]), mport)
    assert rc == 2, err
    assert "hub: the URL list mixes amqps:// and amqp:// " \
        "(amqp://127.0.0.1:2)" in err, err


# ---- plugins -------------------------------------------------------------------

def test_relative_plugin_path_is_refused(tmp_path, hubs, abi_plugins):
    src, mport = free_ports(2)
    rel = os.path.relpath(abi_plugins["verdicts"])
    assert "/" in rel and not rel.startswith("/")
    rc, err = check(hubs, tmp_path, hub_config(
        src, mport, verdicts_consumer(rel, tmp_path)), mport)
    assert rc == 2, err
    assert "consumer v: plugin '%s' is a relative path: give an absolute " \
        "path, or a bare name looked up in plugin_dir" % rel in err, err


def test_relative_plugin_dir_is_refused(tmp_path, hubs, abi_plugins):
    src, mport = free_ports(2)
    rel = os.path.relpath(abi_plugins["verdicts"].parent)
    rc, err = check(hubs, tmp_path, hub_config(
        src, mport, verdicts_consumer("verdicts", tmp_path),
        plugin_dir=rel), mport)
    assert rc == 2, err
    assert "plugin_dir must be an absolute path" in err, err


def copy_plugin(abi_plugins, d, file_mode, dir_mode):
    d.mkdir()
    p = d / "verdicts.so"
    shutil.copy(abi_plugins["verdicts"], p)
    p.chmod(file_mode)
    d.chmod(dir_mode)
    return p


@pytest.mark.parametrize("how", ["absolute", "plugin_dir"])
def test_plugin_writable_by_others_is_refused(tmp_path, hubs, abi_plugins,
                                              how):
    src, mport = free_ports(2)
    p = copy_plugin(abi_plugins, tmp_path / "pl", 0o757, 0o755)
    extra = {"plugin_dir": str(p.parent)} if how == "plugin_dir" else {}
    rc, err = check(hubs, tmp_path, hub_config(src, mport, verdicts_consumer(
        p if how == "absolute" else "verdicts", tmp_path), **extra), mport)
    assert rc == 2, err
    assert "consumer v: %s is writable by others (mode 0757): refused" % p \
        in err, err


def test_plugin_in_directory_writable_by_others_is_refused(tmp_path, hubs,
                                                           abi_plugins):
    src, mport = free_ports(2)
    p = copy_plugin(abi_plugins, tmp_path / "pl", 0o755, 0o777)
    rc, err = check(hubs, tmp_path, hub_config(
        src, mport, verdicts_consumer(p, tmp_path)), mport)
    assert rc == 2, err
    assert "consumer v: %s is in %s, which others may write to (mode " \
        "0777): refused" % (p, p.parent) in err, err


def test_plugin_with_safe_modes_loads(tmp_path, hubs, abi_plugins):
    """The same copy, 0755 in a 0755 directory (and in a sticky 01777
    one, like /tmp): accepted."""
    src, mport = free_ports(2)
    for name, dmode in (("pl", 0o755), ("sticky", 0o1777)):
        p = copy_plugin(abi_plugins, tmp_path / name, 0o755, dmode)
        rc, err = check(hubs, tmp_path, hub_config(
            src, mport, verdicts_consumer(p, tmp_path)), mport)
        assert rc == 0, err


# ---- hub.metrics ----------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["%djunk", "%d ", " %d", "+%d", "%d0000",
                                    ""])
def test_metrics_address_parsed_strictly(tmp_path, hubs, abi_plugins,
                                         suffix):
    src, mport = free_ports(2)
    addr = "127.0.0.1:" + (suffix % mport if "%d" in suffix else suffix)
    cfg = hub_config(src, mport, verdicts_consumer(abi_plugins["verdicts"],
                                                   tmp_path))
    cfg["hub"]["metrics"] = addr
    rc, err = check(hubs, tmp_path, cfg, None)
    assert rc == 2, err
    assert "hub.metrics '%s': want HOST:PORT" % addr in err, err
