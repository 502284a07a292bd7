"""A throwaway MIT Kerberos KDC for a test: its realm, database, stash,
krb5.conf and log all in one temporary directory, listening on a free
127.0.0.1 port (TCP, which the clients are told to use, so "up" is a
connect that succeeds and "down" a refused one, with no UDP timeouts),
principals and keytabs made with kadmin.local, stopped by PID.

Debian krb5-kdc, krb5-admin-server (kadmin.local) and krb5-user; without
them need_kdc() skips the test with one line.  Processes that should use
this realm get env() (KRB5_CONFIG)."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import free_ports

REALM = "FEDMSG.TEST"
TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local")
SBIN = ("/usr/sbin", "/sbin")


def tool(name):
    return shutil.which(name) or shutil.which(
        name, path=os.pathsep.join(SBIN))


def need_kdc():
    missing = [t for t in TOOLS if tool(t) is None]
    if missing:
        pytest.skip("no MIT KDC (%s missing: Debian krb5-kdc, "
                    "krb5-admin-server)" % ", ".join(missing))


class KDC:
    def __init__(self, tmp_path):
        self.dir = tmp_path / "krb5"
        self.dir.mkdir()
        self.port = free_ports(1)[0]
        self.proc = None
        (self.dir / "krb5.conf").write_text(
            "[libdefaults]\n default_realm = %(r)s\n"
            " dns_lookup_kdc = false\n dns_lookup_realm = false\n"
            " rdns = false\n dns_canonicalize_hostname = false\n"
            " udp_preference_limit = 1\n"
            "[realms]\n %(r)s = {\n  kdc = 127.0.0.1:%(p)d\n }\n"
            % {"r": REALM, "p": self.port})
        (self.dir / "kdc.conf").write_text(
            "[kdcdefaults]\n kdc_listen = 127.0.0.1:%(p)d\n"
            " kdc_tcp_listen = 127.0.0.1:%(p)d\n"
            "[realms]\n %(r)s = {\n  database_name = %(d)s/principal\n"
            "  key_stash_file = %(d)s/stash\n  acl_file = %(d)s/kadm5.acl\n"
            " }\n[logging]\n kdc = FILE:%(d)s/kdc.log\n"
            % {"r": REALM, "p": self.port, "d": self.dir})
        (self.dir / "kadm5.acl").write_text("")
        self.run("kdb5_util", "create", "-s", "-r", REALM, "-P",
                 "throwaway-master")

    def env(self):
        """For a process that uses this realm (never the system's)."""
        return {"KRB5_CONFIG": str(self.dir / "krb5.conf"),
                "KRB5_KDC_PROFILE": str(self.dir / "kdc.conf"),
                "KRB5CCNAME": "FILE:%s" % (self.dir / "ccache-unused")}

    def run(self, name, *args):
        return subprocess.run([tool(name)] + [str(a) for a in args],
                              env=dict(os.environ, **self.env()),
                              check=True, capture_output=True, text=True,
                              timeout=30)

    def kadmin(self, query):
        return self.run("kadmin.local", "-r", REALM, "-q", query)

    def principal(self, name, keytab=None):
        """Add name@REALM with a random key; with keytab, export it
        there (a second export re-keys it: older keytabs go stale)."""
        self.kadmin("addprinc -randkey %s" % name)
        if keytab:
            self.keytab(name, keytab)
        return "%s@%s" % (name, REALM)

    def keytab(self, name, path):
        self.kadmin("ktadd -k %s %s" % (path, name))

    def start(self, timeout=10.0):
        self.proc = subprocess.Popen(
            [tool("krb5kdc"), "-n", "-r", REALM],
            env=dict(os.environ, **self.env()),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail("krb5kdc exited %s: %s" % (
                    self.proc.returncode, self.proc.stderr.read()))
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         0.2).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail("krb5kdc not listening on %d within %.0f "
                                "s" % (self.port, timeout))
                time.sleep(0.05)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc is not None:
            self.proc.stderr.close()
        self.proc = None

    def log(self):
        p = self.dir / "kdc.log"
        return p.read_text() if p.exists() else ""
