"""Loading consumer plugins: what fedmsg-hub says about broken ones (a
missing file, another ABI, no entry symbol, an init() that refuses),
hub.skip_broken_consumers, unknown keys, --check and --with-consumers.
The broken plugins are tests/abi/*.c, built like a third party's."""

import json

import pytest

from conftest import (HubProbes, free_ports, hub_config, hub_sync,
                      project_plugin, recorded_ids, tcp, write_config,
                      zmq_module, zsocket)

pytestmark = pytest.mark.usefixtures("hub_time_limit")

BROKEN = {
    "missing": None,
    "bad_abi": "declares ABI 99.0",
    "future_minor": "needs ABI minor 99, newer than this hub's 1",
    "no_entry": "has no fm_plugin_entry_v1(): not a fedmsg-c plugin",
    "init_fails": "init() failed: cannot reach the database at "
                  "db.invalid:5432 (init_fails refuses on purpose)",
}


def plugin_path(abi_plugins, tmp_path, kind):
    if kind == "missing":
        return str(tmp_path / "nowhere" / "missing.so")
    return str(abi_plugins[kind])


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_plugin_stops_the_hub(tmp_path, hubs, abi_plugins, kind):
    src, mport = free_ports(2)
    rec = tmp_path / "good.txt"
    path = plugin_path(abi_plugins, tmp_path, kind)
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "good": {"plugin": str(abi_plugins["verdicts"]),
                 "config": {"file": str(rec)}},
        "broken_one": {"plugin": path, "config": {}}}))
    hub = hubs(cfg, metrics_port=mport)
    rc = hub.wait(10)
    assert rc != 0, hub.describe()
    err = hub.stderr()
    want = BROKEN[kind] or "cannot load %s: %s" % (path, path)
    assert [ln for ln in err.splitlines() if "consumer broken_one:" in ln
            and path in ln and want in ln], err
    assert "running with" not in err


def test_missing_plugin_by_name_in_plugin_dir(tmp_path, hubs):
    src, mport = free_ports(2)
    pdir = tmp_path / "plugins"
    pdir.mkdir()
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "nosuch": {"config": {}}}, plugin_dir=str(pdir)))
    hub = hubs(cfg, metrics_port=mport)
    assert hub.wait(10) != 0
    assert "consumer nosuch: cannot load %s/nosuch.so" % pdir in \
        hub.stderr()


def test_skip_broken_consumers(tmp_path, hubs, zctx, abi_plugins):
    zmq = zmq_module()
    src, mport = free_ports(2)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    rec = tmp_path / "good.txt"
    consumers = {"good": {"plugin": str(abi_plugins["verdicts"]),
                          "config": {"file": str(rec)}}}
    for kind in BROKEN:
        consumers["b_" + kind] = {"plugin": plugin_path(
            abi_plugins, tmp_path, kind), "config": {}}
    cfg = write_config(tmp_path, hub_config(
        src, mport, consumers, hub={"skip_broken_consumers": True}))
    hub = hubs(cfg, metrics_port=mport).ready()
    err = hub.stderr()
    assert "running with 1 consumer(s)" in err
    for kind in BROKEN:
        line = [ln for ln in err.splitlines()
                if "consumer b_%s:" % kind in ln and "skipped" in ln]
        assert line, (kind, err)
        assert "(skipped: hub.skip_broken_consumers)" in line[0]
        if BROKEN[kind]:
            assert BROKEN[kind] in line[0]
    assert [c["name"] for c in hub.status()["consumers"]] == ["good"]
    hub_sync(pub.send_multipart, HubProbes(),
             lambda: recorded_ids(rec, probes=True), hub)
    assert hub.stop() == 0


def test_unknown_keys_warned(tmp_path, hubs, abi_plugins):
    src, mport = free_ports(2)
    rec = tmp_path / "good.txt"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "good": {"plugin": str(abi_plugins["verdicts"]),
                 "config": {"file": str(rec)}, "frobnicate": 1,
                 "queue_szie": 10},
        "arch": {"plugin": str(project_plugin("archive")),
                 "config": {"dir": str(tmp_path / "a"), "colour": "red"}}},
        hub={"bogus_hub_key": True}))
    hub = hubs(cfg, ["--check"], metrics_port=mport)
    assert hub.wait(10) == 0, hub.describe()
    err = hub.stderr()
    assert "consumers.good: unknown key 'frobnicate'" in err
    assert "consumers.good: unknown key 'queue_szie'" in err
    assert "hub: unknown key 'bogus_hub_key'" in err
    assert "consumer arch: unknown config key 'colour'" in err


def test_wrong_type_names_the_consumer(tmp_path, hubs, abi_plugins):
    src, mport = free_ports(2)
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "good": {"plugin": str(abi_plugins["verdicts"]), "threads": "two",
                 "config": {"file": str(tmp_path / "x")}}}))
    hub = hubs(cfg, ["--check"], metrics_port=mport)
    assert hub.wait(10) != 0
    assert "consumers.good: a key has the wrong type" in hub.stderr()
    assert "key 'threads' must be a number >= 0" in hub.stderr()


def test_empty_topics_is_an_error(tmp_path, hubs, abi_plugins):
    """"topics": [] would consume nothing; it is not "every topic"."""
    src, mport = free_ports(2)
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "none": {"plugin": str(abi_plugins["verdicts"]), "topics": [],
                 "config": {"file": str(tmp_path / "x")}}}))
    hub = hubs(cfg, ["--check"], metrics_port=mport)
    assert hub.wait(10) != 0
    assert "consumers.none.topics is empty" in hub.stderr()


def test_check_prints_status_and_exits_0(tmp_path, hubs, abi_plugins):
    src, mport = free_ports(2)
    rec = tmp_path / "v.txt"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "v": {"plugin": str(abi_plugins["verdicts"]),
              "topics": ["org.fedoraproject.dev.a.*", "org.x"],
              "config": {"file": str(rec)}},
        "arch": {"plugin": str(project_plugin("archive")),
                 "config": {"dir": str(tmp_path / "a")}},
        "off": {"plugin": str(abi_plugins["verdicts"]), "enabled": False,
                "config": {}},
        "gated": {"plugin": str(abi_plugins["verdicts"]),
                  "config_key": "my.flag", "config": {"file": str(rec)}}},
        **{"my.flag": False}))
    hub = hubs(cfg, ["--check"], metrics_port=mport)
    assert hub.wait(10) == 0, hub.describe()
    status = json.loads(hub.stdout())
    assert status["producers"] == []
    by = {c["name"]: c for c in status["consumers"]}
    assert sorted(by) == ["arch", "v"]
    assert by["v"]["module"] == "verdicts"
    assert by["v"]["topic"] == ["org.fedoraproject.dev.a.*", "org.x"]
    assert by["arch"]["module"] == "archive" and by["arch"]["topic"] == [""]
    for c in by.values():
        assert c["initialized"] is True and c["backlog"] == 0
        assert c["headcount_in"] == c["headcount_out"] == 0
        assert c["exceptions"] == 0
    assert not rec.exists()          # init()ed, but nothing consumed
    err = hub.stderr()
    assert "consumer off: not enabled" in err
    assert "consumer gated: my.flag is not true" in err

    # --with-consumers: only those
    hub = hubs(cfg, ["--check", "--with-consumers", "arch"],
               metrics_port=mport)
    assert hub.wait(10) == 0, hub.describe()
    assert [c["name"] for c in json.loads(hub.stdout())["consumers"]] == \
        ["arch"]


def test_entry_without_config_object(tmp_path, hubs, abi_plugins):
    """"config" is optional in a consumer entry (plugin.h: config_json()
    gives "{}" when absent)."""
    src, mport = free_ports(2)
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "arch": {"plugin": str(project_plugin("archive")),
                 "config": {"dir": str(tmp_path / "a")}},
        "noconf": {"plugin": str(abi_plugins["init_fails"])}},
        hub={"skip_broken_consumers": True}))
    hub = hubs(cfg, ["--check"], metrics_port=mport)
    assert hub.wait(10) == 0, hub.describe()
    assert [c["name"] for c in json.loads(hub.stdout())["consumers"]] == \
        ["arch"]
