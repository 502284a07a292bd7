"""A third party's view: `make install DESTDIR=<tmp> PREFIX=/usr`, a
consumer built out of tree with nothing but `pkg-config --cflags
fedmsg-c`, run by the INSTALLED fedmsg-hub next to an installed plugin
found by name in the installed plugin directory.

The install runs `make` in the repository with the build directory of
this test run (FM_BUILD, default <repo>/build), so it builds the release
binaries there if needed.
"""

import os
import re
import shutil
import subprocess

import pytest

from conftest import (ABI_CFLAGS, ABI_DIR, FM_BUILD, HubProbes, Probes, REPO,
                      VECTORS_BY_NAME, free_ports, hub_config, hub_mark,
                      hub_sync, recorded_ids, tcp, vector_frames,
                      write_config, zmq_module, zsocket)

PREFIX = "/usr"


def make_install(dest, prefix):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DESTDIR",
                        "PREFIX")}
    argv = ["make", "-C", str(REPO), "install", "DESTDIR=%s" % dest,
            "PREFIX=%s" % prefix]
    if FM_BUILD.resolve() != (REPO / "build").resolve():
        argv.append("B=%s" % FM_BUILD)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=env, timeout=600)
    assert p.returncode == 0, "%s failed:\n%s" % (
        " ".join(argv), p.stdout.decode()[-5000:])
    return dest


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """DESTDIR of `make install DESTDIR=... PREFIX=/usr`."""
    return make_install(tmp_path_factory.mktemp("destdir"), PREFIX)


def pkg_config(dest, *args):
    env = dict(os.environ, PKG_CONFIG_PATH=str(dest / "usr/lib/pkgconfig"),
               PKG_CONFIG_SYSROOT_DIR=str(dest))
    p = subprocess.run(["pkg-config"] + list(args) + ["fedmsg-c"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode().split()


def test_installed_layout(installed):
    d = installed / "usr"
    for f in ("bin/fedmsg-hub", "include/fedmsg/plugin.h",
              "include/fedmsg/plugin_config.h",
              "share/doc/fedmsg-c/examples/example.c",
              "lib/pkgconfig/fedmsg-c.pc", "lib/fedmsg-c/archive.so",
              "lib/fedmsg-c/exec.so", "lib/fedmsg-c/example.so",
              "lib/systemd/system/fedmsg-hub.service"):
        assert (d / f).is_file(), f
    assert os.access(d / "bin/fedmsg-hub", os.X_OK)
    # what a plugin author needs, and nothing private
    assert sorted(p.name for p in (d / "include/fedmsg").iterdir()) == [
        "bus.h", "crypto.h", "message.h", "plugin.h", "plugin_config.h"]
    unit = (d / "lib/systemd/system/fedmsg-hub.service").read_text()
    assert "/usr/bin/fedmsg-hub" in unit and "/usr/local" not in unit
    pc = (d / "lib/pkgconfig/fedmsg-c.pc").read_text()
    assert re.search(r"^prefix=/usr$", pc, re.M), \
        "installed fedmsg-c.pc was not made for PREFIX=/usr:\n" + pc
    assert re.search(r"^plugindir=/usr/lib/fedmsg-c$", pc, re.M), pc


def default_plugin_dir(hub_exe, tmp_path):
    """Where an installed hub looks for a plugin named without plugin_dir
    (from --check's message)."""
    src, mport = free_ports(2)
    cfg = hub_config(src, mport, {"example": {"config": {}}})
    path = write_config(tmp_path, cfg)
    p = subprocess.run([str(hub_exe), "--config", str(path), "--check"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    err = p.stderr.decode()
    m = re.search(r"(?:cannot load|from) (\S+)/example\.so", err)
    assert m, err
    return m.group(1)


def test_installed_hub_default_plugin_dir(installed, tmp_path):
    """Without plugin_dir the installed hub looks in PREFIX/lib/fedmsg-c."""
    got = default_plugin_dir(installed / "usr/bin/fedmsg-hub", tmp_path)
    assert got == "/usr/lib/fedmsg-c"


def test_install_follows_prefix(installed, tmp_path_factory, tmp_path):
    """A second install with another PREFIX (after the /usr one above):
    the .pc and the hub's built-in plugin directory follow it."""
    prefix = "/opt/fmc-test"
    dest = make_install(tmp_path_factory.mktemp("destdir-opt"), prefix)
    d = dest / prefix.lstrip("/")
    pc = (d / "lib/pkgconfig/fedmsg-c.pc").read_text()
    assert re.search(r"^prefix=%s$" % prefix, pc, re.M), \
        "installed fedmsg-c.pc was not made for PREFIX=%s:\n%s" % (
            prefix, pc)
    assert re.search(r"^plugindir=%s/lib/fedmsg-c$" % prefix, pc, re.M), pc
    unit = (d / "lib/systemd/system/fedmsg-hub.service").read_text()
    assert "%s/bin/fedmsg-hub" % prefix in unit
    assert default_plugin_dir(d / "bin/fedmsg-hub", tmp_path) == \
        prefix + "/lib/fedmsg-c"


@pytest.mark.usefixtures("hub_time_limit")
def test_third_party_consumer_with_installed_hub(installed, tmp_path, hubs,
                                                 zctx):
    # The consumer's sources, outside the repository.
    proj = tmp_path / "thirdparty"
    proj.mkdir()
    for f in ("verdicts.c", "record.h"):
        shutil.copy(ABI_DIR / f, proj / f)
    cflags = pkg_config(installed, "--cflags")
    inc = [f[2:] for f in cflags if f.startswith("-I")]
    assert any(os.path.isfile(os.path.join(i, "fedmsg", "plugin.h"))
               for i in inc), (
        "pkg-config --cflags fedmsg-c gives %s: no fedmsg/plugin.h there "
        "(the installed .pc says:\n%s)" % (cflags, (
            installed / "usr/lib/pkgconfig/fedmsg-c.pc").read_text()))
    assert all(i.startswith(str(installed)) for i in inc), cflags
    so = proj / "thirdparty.so"
    p = subprocess.run(["cc"] + ABI_CFLAGS + cflags +
                       ["-o", str(so), "verdicts.c"], cwd=proj,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    assert p.returncode == 0, p.stderr.decode()

    zmq = zmq_module()
    src, mport = free_ports(2)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    rec, adir = tmp_path / "tp.txt", tmp_path / "archive"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "thirdparty": {"plugin": str(so), "config": {"file": str(rec)}},
        "archive": {"config": {"dir": str(adir), "rotate_daily": False}}},
        plugin_dir=str(installed / "usr/lib/fedmsg-c")))
    hub = hubs(cfg, exe=installed / "usr/bin/fedmsg-hub",
               metrics_port=mport).ready()
    err = hub.stderr()
    assert "from %s" % so in err
    assert "from %s/usr/lib/fedmsg-c/archive.so" % installed in err
    probes = HubProbes()
    seen = lambda: recorded_ids(rec, probes=True)      # noqa: E731
    hub_sync(pub.send_multipart, probes, seen, hub)
    vecs = [VECTORS_BY_NAME[n] for n in ("basic_ascii", "non_bmp_emoji",
                                         "cert_revoked_in_crl")]
    for v in vecs:
        pub.send_multipart(vector_frames(v))
    end = hub_mark(pub.send_multipart, probes, seen, hub)
    ids = [__import__("json").loads(v["wire_body"])["msg_id"] for v in vecs]
    assert recorded_ids(rec) == ids[:2]        # the revoked one is refused
    hub.wait_for(lambda: end.encode() in (adir / "fedmsg.jsonl")
                 .read_bytes(), 5, "archive")
    lines = [ln for ln in (adir / "fedmsg.jsonl").read_bytes().splitlines()
             if not Probes.is_probe(ln)]
    assert lines == [v["wire_body"].encode() for v in vecs[:2]]
    assert hub.stop() == 0
