"""consumers/robosignatory end to end on ZeroMQ: a signed buildsys.tag ->
fedmsg-hub -> robosignatory -> a fake Koji hub (python3 xmlrpc.server
behind TLS that requires a client certificate of the dev CA, recording
every call) -> the signing command -> the result message on the hub's
bus.  The signing command is a script that records what it was asked to
sign and the passphrase it read (no rpm/rpmsign in this environment).
Forged-by-another-signer messages and replays cause no Koji call."""

import base64
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import urllib.parse
from xmlrpc.client import Fault
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

import pytest

from conftest import (FM_BUILD, VECTOR_CERTS, free_ports, hub_config,
                      hub_sync, HubProbes, project_plugin, signed, tcp,
                      wait_until, wire, write_config, zmq_module, zsocket)

pytestmark = pytest.mark.usefixtures("hub_time_limit")

FROM, TO, KEYID = "f41-signing-pending", "f41-updates-testing-pending", \
    "e99d6ad1"
SIDE = "f41-build-side-42-signing-pending"
SIDE_TO = "f41-build-side-42-testing-pending"
BUILDS = {1001: "pkg", 1002: "side", 1003: "evil", 1004: "mod",
          1005: "modpkg1", 1006: "modpkg2", 1007: "badmod", 1008: "evilpkg"}
# what robosignatory asks Koji before anything is signed (build 1001)
GETS = ["getBuild", "listTags", "listRPMs", "queryRPMSigs", "queryRPMSigs"]
MFROM, MTO, MBS = "f41-modular-signing-pending", "f41-modular-updates", \
    "mbs/mbs.example.org"
# module build -> (content tag, [(content build, owner)])
MODULES = {1004: ("module-mod-content", [(1005, MBS), (1006, MBS)]),
           1007: ("module-bad-content", [(1008, "mallory")])}


def tagging(tag, who, event, active):
    """A row of Koji's queryHistory()["tag_listing"]."""
    return {"tag.name": tag, "creator_name": who, "create_event": event,
            "active": True if active else None}


class FakeKoji:
    """Koji's calls as robosignatory uses them, over a build with two
    RPMs; calls are recorded as (method, args).  client_ca: the TLS
    client certificate it requires (authmethod "ssl"); without one,
    kerberos(keytab) makes sslLogin need HTTP Negotiate (SPNEGO) for a
    principal of the realm, as koji's hub behind mod_auth_gssapi does."""

    def __init__(self, server_cert, server_key, client_ca):
        self.calls = []
        self.session, self.expired = (7, "k/e y"), set()
        self.gss, self.logins, self.refused = None, [], []
        self.mutual = True      # answer a login with the server's token
        self.tags = {1001: {FROM}, 1002: {SIDE}, 1003: {SIDE},
                     1004: {MFROM}, 1007: {MFROM}}
        # 1003: bodhi's tagging was revoked, mallory's is the active one
        self.history = {
            1002: [tagging(FROM, "mallory", 3, False),
                   tagging(SIDE, "bodhi", 10, True)],
            1003: [tagging(SIDE, "bodhi", 5, False),
                   tagging(SIDE, "mallory", 9, True)]}
        self.sigs = set()
        self.check_signed = None
        # the order of Koji's calls and the recording signer's runs
        self.lock, self.events, self.rec, self.runs = \
            threading.Lock(), [], None, 0
        self.login_refused = None   # a Fault for sslLogin, or "503"
        srv = SimpleXMLRPCServer(("127.0.0.1", 0), allow_none=True,
                                 logRequests=False,
                                 requestHandler=Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(server_cert, server_key)
        if client_ca is not None:
            ctx.load_verify_locations(client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        srv.fake = self
        srv.register_instance(self, allow_dotted_names=False)
        self.srv = srv
        self.port = srv.server_address[1]
        self.t = threading.Thread(target=srv.serve_forever, daemon=True)
        self.t.start()

    def _dispatch(self, method, params):
        if params and isinstance(params[-1], dict) and \
                params[-1].pop("__starstar", False):
            kw = params[-1]
            params = params[:-1]
        else:
            kw = {}
        self.event(method)
        self.calls.append((method, list(params), kw))
        if method in ("writeSignedRPM", "tagBuild") and \
                "session-id=%d&session-key=%s&" % (
                    self.session[0], urllib.parse.quote(self.session[1],
                                                        safe="")) not in \
                self.srv.koji_query + "&":
            sid = urllib.parse.parse_qs(self.srv.koji_query).get(
                "session-id", ["0"])[0]
            if int(sid) in self.expired:
                raise Fault(1007, "AuthExpired: session %s expired" % sid)
            raise Fault(1000, "%s needs a session" % method)
        return getattr(self, "k_" + method)(*params, **kw)

    def k_sslLogin(self):
        if isinstance(self.login_refused, Fault):
            raise self.login_refused
        return {"session-id": self.session[0],
                "session-key": self.session[1]}

    def expire(self):
        """The hub ends the session: its calls get AuthExpired."""
        self.expired.add(self.session[0])
        self.session = (self.session[0] + 1, "k/e y%d" % self.session[0])

    def kerberos(self, keytab):
        """sslLogin needs SPNEGO, accepted with the HTTP/ keys in
        keytab."""
        import gssapi
        self.gss = gssapi.Credentials(usage="accept",
                                      store={"keytab": str(keytab)})

    def accept(self, authz):
        """The login's Authorization header -> (principal, the answer
        token for mutual authentication), or (None, None)."""
        import gssapi
        if not authz or not authz.startswith("Negotiate "):
            self.refused.append("no Negotiate token")
            return None, None
        try:
            ctx = gssapi.SecurityContext(creds=self.gss, usage="accept")
            out = ctx.step(base64.b64decode(authz[10:]))
            complete = ctx.complete     # raises a failed step's error
        except (gssapi.exceptions.GSSError, ValueError) as e:
            self.refused.append(str(e))
            return None, None
        if not complete:
            self.refused.append("context not complete")
            return None, None
        self.logins.append(str(ctx.initiator_name))
        return str(ctx.initiator_name), \
            base64.b64encode(out).decode() if out and self.mutual else None

    def k_getBuild(self, build_id):
        if build_id == 666:
            raise Fault(1000, "GenericError: the database is on fire")
        if build_id not in BUILDS:
            return None
        n = BUILDS[build_id]
        b = {"id": build_id, "name": n, "version": "1.0",
             "release": "1.fc41", "nvr": n + "-1.0-1.fc41"}
        if build_id in MODULES:
            b["extra"] = {"typeinfo": {"module": {
                "content_koji_tag": MODULES[build_id][0]}}}
        return b

    def k_listTagged(self, tag):
        for content, builds in MODULES.values():
            if content == tag:
                return [{"build_id": b, "owner_name": who,
                         "nvr": BUILDS[b] + "-1.0-1.fc41"}
                        for b, who in builds]
        raise Fault(1000, "No such tag: %s" % tag)

    def k_queryHistory(self, tables=None, build=None):
        return {"tag_listing": self.history.get(build, [])}

    def k_listTags(self, build_id):
        return [{"name": t} for t in sorted(self.tags.get(build_id, ()))]

    def k_listRPMs(self, build_id):
        n, base = BUILDS[build_id], (build_id - 1000) * 10
        return [{"id": base + 1, "name": n, "version": "1.0",
                 "release": "1.fc41", "arch": "x86_64"},
                {"id": base + 2, "name": n, "version": "1.0",
                 "release": "1.fc41", "arch": "src"}]

    def k_queryRPMSigs(self, rpm_id=None, sigkey=None):
        return [{"sigkey": sigkey}] if (rpm_id, sigkey) in self.sigs else []

    def k_writeSignedRPM(self, rpm_id, sigkey):
        if self.check_signed is not None:     # Koji needs the signature
            self.check_signed(rpm_id, sigkey)
        self.sigs.add((rpm_id, sigkey))
        return None

    def k_tagBuild(self, tag, build, force, fromtag):
        self.tags[build].add(tag)
        if fromtag:
            self.tags[build].discard(fromtag)
        return None

    def methods(self):
        return [c[0] for c in self.calls]

    def watch(self, rec):
        """Put the runs of the recording signer (a line each in rec)
        among the calls in order(), as "SIGN"."""
        self.rec = rec

    def event(self, what):
        """Record a call (None: only the signer's runs so far).  A
        run the signer finished before a call reached us is before it."""
        with self.lock:
            try:
                runs = self.rec.read_text().count("\n") if self.rec else 0
            except FileNotFoundError:
                runs = 0
            self.events += ["SIGN"] * (runs - self.runs)
            self.runs = runs
            if what is not None:
                self.events.append(what)
            return len(self.events)

    def mark(self):
        """Where order() is to start for what comes next."""
        return self.event(None)

    def order(self, mark=0):
        """Koji's methods and the signer's runs ("SIGN") since mark;
        a login the fake refused with HTTP 401 or 503 reads "sslLogin
        401" or "sslLogin 503"."""
        self.event(None)
        with self.lock:
            return self.events[mark:]

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class Handler(SimpleXMLRPCRequestHandler):
    """Koji's paths; a session's calls carry it in the query string."""
    rpc_paths = ("/kojihub", "/kojihub/ssllogin")

    def is_rpc_path_valid(self):
        path, _, query = self.path.partition("?")
        self.server.koji_query = query
        return path in self.rpc_paths

    def do_POST(self):
        fake = self.server.fake
        self.negotiate_reply = None
        login = self.path.partition("?")[0].endswith("/ssllogin")
        if login and fake.login_refused == "503":
            fake.event("sslLogin 503")
            self.refuse(503)
            return
        if fake.gss is not None and login:
            who, self.negotiate_reply = fake.accept(
                self.headers.get("Authorization"))
            if who is None:
                fake.event("sslLogin 401")
                self.refuse(401, ("WWW-Authenticate", "Negotiate"))
                return
        super().do_POST()

    def refuse(self, status, *headers):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(status)
        for h in headers:
            self.send_header(*h)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def end_headers(self):
        if getattr(self, "negotiate_reply", None):
            self.send_header("WWW-Authenticate",
                             "Negotiate " + self.negotiate_reply)
        super().end_headers()


@pytest.fixture
def koji(tmp_path, dev_pki):
    crt, key = tmp_path / "koji.crt", tmp_path / "koji.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-subj", "/CN=localhost", "-days", "1",
                    "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(crt)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    k = FakeKoji(str(crt), str(key), str(dev_pki / "ca.crt"))
    k.ca = crt
    yield k
    k.stop()


SIGNER = """#!/bin/sh
rec=%s
pass=$(cat | tr -d '\\0')
echo "pass=$pass args=$*" >> "$rec"
exit 0
"""


def consumer_config(tmp_path, dev_pki, koji, command=None, keyid=KEYID,
                    sign_timeout=20, xml=None):
    """robosignatory's config for the fake Koji, and the file the
    recording signer writes."""
    client = tmp_path / "client.pem"
    client.write_bytes((dev_pki / "shell-localhost.crt").read_bytes() +
                       (dev_pki / "shell-localhost.key").read_bytes())
    rec = tmp_path / "signed.txt"
    script = tmp_path / "fake-sigul"
    script.write_text(SIGNER % rec)
    script.chmod(0o755)
    passf = tmp_path / "pass"
    passf.write_text("s3cret\n")
    conf = {
        "trusted_publishers": ["alpha-app01.vectors.example.org"],
        "signing": {"command": command or [
                        str(script), "-k", "{instance}", "--v3-signature",
                        "{key}", "{rpms}"],
                    "user": "autopen", "passphrase_file": str(passf),
                    "timeout": sign_timeout},
        "koji_instances": {"primary": {
            "url": "https://localhost:%d/kojihub" % koji.port,
            "options": {"authmethod": "ssl", "cert": str(client),
                        "serverca": str(koji.ca)},
            "tags": [{"from": FROM, "to": TO, "key": "fedora-41",
                      "keyid": keyid, "sidetags": {
                          "pattern": "f41-build-side-<seq_id>",
                          "from": "<sidetag>-signing-pending",
                          "to": "<sidetag>-testing-pending",
                          "trusted_taggers": ["bodhi"]}},
                     {"from": MFROM, "to": MTO, "key": "fedora-41",
                      "keyid": keyid, "type": "modular"}],
            "mbs_user": MBS}}}
    if xml is not None:
        conf["xml"] = xml
    koji.watch(rec)
    return conf, rec


def make_setup(tmp_path, dev_pki, koji, zctx, entry=None, command=None,
               keyid=KEYID, sign_timeout=20, xml=None, source=None,
               edit=None, **extra):
    """The hub's config with robosignatory, a PUB the hub reads (none
    when `source`, a ZeroMQ URL, is where it reads), a SUB on what the
    hub publishes, the recording signer's file and the metrics port;
    edit(conf) changes the consumer's config before it is written."""
    zmq = zmq_module()
    src, out, mport = free_ports(3)
    conf, rec = consumer_config(tmp_path, dev_pki, koji, command, keyid,
                                sign_timeout, xml)
    if edit is not None:
        edit(conf)
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "robosignatory": {"plugin": str(project_plugin("robosignatory")),
                          "topics": ["org.fedoraproject.dev.buildsys.tag",
                                     "org.fedoraproject.dev.robosignatory."
                                     "xml-sign",
                                     "org.fedoraproject.dev.brew.build.tag",
                                     "org.fedoraproject.dev.probe"],
                          "config": conf, **(entry or {})}},
        hub={"name": "hubpub"},
        endpoints={"src": [source or tcp(src)], "hubpub": [tcp(out)]},
        sign_messages=True, ssldir=str(dev_pki),
        certnames={"hubpub": "hub-localhost"}, **extra))
    pub = None if source else zsocket(zctx, zmq.PUB, bind=tcp(src))
    sub = zsocket(zctx, zmq.SUB, connect=tcp(out))
    return cfg, pub, sub, rec, mport


def edit_consumer_config(cfg, **conf):
    """Set keys of robosignatory's config in the hub's config file."""
    doc = json.loads(cfg.read_text())
    doc["consumers"]["robosignatory"]["config"].update(conf)
    write_config(cfg.parent, doc, cfg.name)


def tag_msg(**over):
    body = {"build_id": 1001, "name": "pkg", "version": "1.0",
            "release": "1.fc41", "tag": FROM, "instance": "primary",
            "owner": "someone", "tag_id": 5, "user": "bodhi"}
    body.update(over)
    return body


def results(sub, want, deadline, hub, tail="robosignatory.build.sign"):
    got = []
    while len(got) < want:
        assert time.monotonic() < deadline, hub.describe()
        if sub.poll(100):
            env = json.loads(sub.recv_multipart()[1])
            if env["topic"].endswith(tail):
                got.append(env)
    return got


BETA = (VECTOR_CERTS / "beta-pkgs02.vectors.example.org.crt",
        VECTOR_CERTS / "beta-pkgs02.vectors.example.org.key")


def join(hub, pub, deadline):
    """The slow joiner: wrong-signer messages until the hub logs one."""
    while "not in trusted_publishers" not in hub.stderr():
        assert time.monotonic() < deadline, hub.describe()
        pub.send_multipart(wire(signed("buildsys.tag", tag_msg(),
                                       signer=BETA)))
        time.sleep(0.2)


def test_tag_sign_move_and_replay(tmp_path, hubs, zctx, dev_pki, koji):
    cfg, pub, sub, rec, mport = make_setup(tmp_path, dev_pki, koji, zctx)
    hub = hubs(cfg, metrics_port=mport).ready()
    deadline = time.monotonic() + 30
    join(hub, pub, deadline)
    assert koji.calls == []            # an untrusted signer: no Koji call

    env = signed("buildsys.tag", tag_msg())
    pub.send_multipart(wire(env))
    got = results(sub, 1, deadline, hub)
    # the session before the signer ("SIGN"): a failed login never runs it
    assert koji.order() == GETS + [
        "sslLogin", "SIGN", "writeSignedRPM", "writeSignedRPM", "tagBuild"]
    assert koji.calls[-1][1] == [TO, 1001, False, FROM]
    assert koji.calls[3][2] == {"rpm_id": 11, "sigkey": KEYID}
    lines = rec.read_text().splitlines()
    assert lines == ["pass=s3cret args=-k primary --v3-signature fedora-41 "
                     "pkg-1.0-1.fc41.x86_64 pkg-1.0-1.fc41.src"]
    m = got[0]["msg"]
    assert got[0]["topic"] == "org.fedoraproject.dev.robosignatory.build.sign"
    assert (m["status"], m["build"], m["to"], m["rpms_signed"]) == \
        ("success", "pkg-1.0-1.fc41", TO, 2)

    # the same message again: nothing; a new message for the moved build:
    # reported, never signed or moved twice
    n = len(koji.calls)
    pub.send_multipart(wire(env))
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg())))
    got = results(sub, 1, deadline, hub)
    assert got[0]["msg"]["status"] == "already-done"
    assert koji.methods()[n:] == ["getBuild", "listTags"]
    assert len(rec.read_text().splitlines()) == 1
    hub.stop()


def test_forged_policy_fault_and_koji_down(tmp_path, hubs, zctx, dev_pki,
                                          koji):
    """Forged and routing-policy-violating tag messages stop at the hub (no
    Koji call); a Koji fault is permanent (DROP, failure published); Koji
    down is transient (RETRY) until the hub entry's max_attempts (which
    robosignatory's config does not repeat: the hub hands it over), then
    the failure is published and the message dropped."""
    policy = {"org.fedoraproject.dev.buildsys.tag":
              ["alpha-app01.vectors.example.org"]}
    cfg, pub, sub, rec, mport = make_setup(
        tmp_path, dev_pki, koji, zctx,
        entry={"backoff": 0.1, "max_attempts": 2}, routing_policy=policy)
    hub = hubs(cfg, metrics_port=mport).ready()
    deadline = time.monotonic() + 30

    def invalid(m, reason):
        return m("fedmsg_hub_invalid_total", reason=reason)
    # forged: a signed message whose body was changed afterwards (sent
    # until one arrives: the slow joiner)
    while invalid(hub.metrics(), "bad_signature") == 0:
        assert time.monotonic() < deadline, hub.describe()
        env = signed("buildsys.tag", tag_msg())
        env["msg"]["tag"] = FROM + "-evil"
        pub.send_multipart(wire(env))
        time.sleep(0.2)
    # policy: beta may not send buildsys.tag
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg(),
                                   signer=BETA)))
    hub.wait_metric(lambda m: invalid(m, "routing_policy") == 1, 10,
                    "the policy violation")
    # a Koji fault on getBuild: DROP, failure published
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg(build_id=666))))
    got = results(sub, 1, deadline, hub)
    assert koji.methods() == ["getBuild"]   # nothing before: forged, policy
    m = got[0]["msg"]
    assert (m["status"], m["build_id"]) == ("failure", 666), m
    assert "database is on fire" in m["reason"], m
    met = hub.idle()
    assert met("fedmsg_consumer_retried_total",
               consumer="robosignatory") == 0
    assert met("fedmsg_consumer_dropped_total", consumer="robosignatory",
               reason="verdict") == 1
    # Koji down: retried, then the failure on the hub entry's last attempt
    # (max_attempts 2, not robosignatory's default 3)
    koji.stop()
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg())))
    got = results(sub, 1, deadline, hub)
    m = got[0]["msg"]
    assert (m["status"], m["build_id"]) == ("failure", 1001), m
    assert "koji https://localhost:%d/kojihub" % koji.port in m["reason"], m
    met = hub.idle()
    assert met("fedmsg_consumer_retried_total",
               consumer="robosignatory") == 1
    assert met("fedmsg_consumer_dropped_total", consumer="robosignatory",
               reason="verdict") == 2
    assert met("fedmsg_consumer_dropped_total", consumer="robosignatory",
               reason="retries_exhausted") == 0
    assert hub.stderr().count("will retry") == 1
    assert rec.exists() is False            # never signed
    hub.stop()


def test_max_attempts_is_the_hubs(tmp_path, hubs, zctx, dev_pki, koji):
    """robosignatory's own max_attempts may only repeat the hub entry's
    (the hub hands it over in config()["fedmsg_hub"]); a different one,
    and an entry config that takes the hub's member, stop the hub."""
    for conf_extra, entry, want in [
            ({"max_attempts": 5}, {"max_attempts": 2},
             "'max_attempts' (5) differs from the hub entry's max_attempts "
             "(2)"),
            ({"fedmsg_hub": {"max_attempts": 9}}, {},
             "consumers.robosignatory.config.fedmsg_hub: the hub's own"),
            ({"max_attempts": 4}, {"max_attempts": 4}, None)]:
        cfg, pub, sub, rec, mport = make_setup(tmp_path, dev_pki, koji, zctx,
                                               entry=entry)
        edit_consumer_config(cfg, **conf_extra)
        hub = hubs(cfg, ["--check"], metrics_port=mport)
        rc = hub.wait(15)
        if want is None:
            assert rc == 0, hub.describe()
        else:
            assert rc != 0 and want in hub.stderr(), hub.describe()
        pub.close()
        sub.close()


def test_side_tags_need_a_trusted_tagger(tmp_path, hubs, zctx, dev_pki,
                                        koji):
    """A side tag (f41-build-side-<seq_id>-signing-pending) is signed and
    moved to its own "to" only when Koji's history shows its latest active
    tagging by a trusted tagger."""
    cfg, pub, sub, rec, mport = make_setup(tmp_path, dev_pki, koji, zctx)
    hub = hubs(cfg, metrics_port=mport).ready()
    deadline = time.monotonic() + 30
    join(hub, pub, deadline)
    # untrusted: mallory's tagging is the active one -> DROP, no signing
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg(
        build_id=1003, name="evil", tag=SIDE))))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert (m["status"], m["build_id"], m["tag"]) == \
        ("failure", 1003, SIDE), m
    assert "untrusted user mallory" in m["reason"], m
    assert koji.methods() == ["getBuild", "queryHistory"]
    assert koji.calls[1][2] == {"build": 1003}
    # trusted: bodhi -> signed, moved to the side tag's "to"
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg(
        build_id=1002, name="side", tag=SIDE))))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert (m["status"], m["to"], m["rpms_signed"]) == \
        ("success", SIDE_TO, 2), m
    assert koji.methods()[2:5] == ["getBuild", "queryHistory", "listTags"]
    assert koji.calls[-1][1] == [SIDE_TO, 1002, False, SIDE]
    assert koji.tags[1002] == {SIDE_TO}
    assert rec.read_text().splitlines() == [
        "pass=s3cret args=-k primary --v3-signature fedora-41 "
        "side-1.0-1.fc41.x86_64 side-1.0-1.fc41.src"]
    hub.stop()


SPEC = """Name: pkg
Version: 1.0
Release: 1.fc41
Summary: robosignatory test package
License: MIT
%description
A package to sign.
%install
mkdir -p %{buildroot}/usr/share/pkg
echo hi > %{buildroot}/usr/share/pkg/hi
%files
/usr/share/pkg/hi
"""

RPMSIGN = """#!/bin/sh
# sigul's part in the test: rpmsign --addsign the RPMs named N-V-R.A with
# the GnuPG key named $1 (the throwaway key has no passphrase: stdin is
# read and dropped)
cat >/dev/null
key=$1; shift
for nvra in "$@"; do
    GNUPGHOME=%(gnupg)s rpmsign --addsign --define "_gpg_name $key" \\
        --define "__gpg %(gpg)s" --define "_gpg_path %(gnupg)s" \\
        "%(rpms)s/$nvra.rpm" </dev/null || exit 1
done
"""


def rpm_tools():
    tools = [shutil.which(t) for t in ("rpmbuild", "rpmsign", "rpm", "gpg")]
    if None in tools:
        pytest.skip("rpmbuild, rpmsign or gpg missing (Debian rpm, gnupg)")
    return tools


def run(*argv, **kw):
    return subprocess.run([str(a) for a in argv], check=True,
                          capture_output=True, text=True, **kw)


class RealSigner:
    """A throwaway GnuPG key named like the configured key ("fedora-41"),
    the RPMs of SPEC built by rpmbuild (Koji's RPM ids 11 and 12 of build
    1001), a signing command that really signs them (rpmsign --addsign),
    a fake Koji whose writeSignedRPM refuses an RPM without a signature by
    keyid, and verify(): rpm -K of both against the public key."""

    def __init__(self, tmp_path, koji):
        rpmbuild, rpmsign, self.rpm, self.gpg = rpm_tools()
        self.tmp = tmp_path
        gnupg, top, self.rpms = tmp_path / "gnupg", tmp_path / "top", \
            tmp_path / "rpms"
        gnupg.mkdir(mode=0o700)
        self.rpms.mkdir()
        self.env = dict(os.environ, GNUPGHOME=str(gnupg))
        run(self.gpg, "--batch", "--pinentry-mode", "loopback",
            "--passphrase", "", "--quick-gen-key", "fedora-41", "rsa2048",
            "sign", "1d", env=self.env)
        fpr = [ln.split(":")[9] for ln in run(
            self.gpg, "--with-colons", "--list-keys",
            env=self.env).stdout.splitlines() if ln.startswith("fpr:")][0]
        self.keyid = fpr[-8:].lower()
        (tmp_path / "pkg.spec").write_text(SPEC)
        run(rpmbuild, "-ba", "--define", "_topdir %s" % top,
            tmp_path / "pkg.spec")
        for f in top.glob("*RPMS/**/*.rpm"):
            shutil.copy(f, self.rpms)
        self.names = {11: "pkg-1.0-1.fc41.x86_64", 12: "pkg-1.0-1.fc41.src"}
        assert sorted(p.stem for p in self.rpms.iterdir()) == \
            sorted(self.names.values())
        koji.check_signed = self.check_signed
        script = tmp_path / "rpmsign-as-sigul"
        script.write_text(RPMSIGN % {"gnupg": gnupg, "gpg": self.gpg,
                                     "rpms": self.rpms})
        script.chmod(0o755)
        self.command = [str(script), "{key}", "{rpms}"]

    def check_signed(self, rpm_id, sigkey):
        sig = run(self.rpm, "-qp", "--qf", "%{RSAHEADER:pgpsig}",
                  self.rpms / (self.names[rpm_id] + ".rpm")).stdout
        if not sig.lower().endswith(sigkey):
            raise Fault(1000, "no signature by %s: %s" % (sigkey, sig))

    def verify(self):
        db, asc = self.tmp / "rpmdb", self.tmp / "pub.asc"
        run(self.gpg, "--armor", "--output", asc, "--export", "fedora-41",
            env=self.env)
        run(self.rpm, "--dbpath", db, "--initdb")
        run(self.rpm, "--dbpath", db, "--import", asc)
        for n in self.names.values():
            out = run(self.rpm, "--dbpath", db, "-K",
                      self.rpms / (n + ".rpm")).stdout
            assert out.strip().endswith("digests signatures OK"), out


def test_real_rpmsign(tmp_path, hubs, zctx, dev_pki, koji):
    """The signing command really signs (rpmsign with a throwaway GnuPG
    key named like the configured key); the fake Koji's writeSignedRPM
    refuses an RPM without a signature by keyid; rpm -K verifies both
    RPMs against the public key afterwards."""
    signer = RealSigner(tmp_path, koji)
    keyid = signer.keyid
    cfg, pub, sub, rec, mport = make_setup(
        tmp_path, dev_pki, koji, zctx, keyid=keyid, command=signer.command)
    hub = hubs(cfg, metrics_port=mport).ready()
    deadline = time.monotonic() + 30
    join(hub, pub, deadline)
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg())))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert (m["status"], m["rpms_signed"], m["keyid"]) == \
        ("success", 2, keyid), (m, hub.stderr())
    assert koji.methods()[-3:] == ["writeSignedRPM", "writeSignedRPM",
                                   "tagBuild"]
    signer.verify()
    hub.stop()


def test_failed_login_never_runs_the_signer(tmp_path, hubs, zctx, dev_pki,
                                           koji):
    """The session is got before the signing command: a login Koji
    refuses (koji's AuthError fault) is DROPped, one it cannot answer
    (HTTP 503) is RETRYed until max_attempts; the signer never runs,
    nothing is written or moved.  With nothing left to sign the login
    comes where writeSignedRPM needs it, and no signer runs."""
    cfg, pub, sub, rec, mport = make_setup(
        tmp_path, dev_pki, koji, zctx,
        entry={"backoff": 0.1, "max_attempts": 2})
    hub = hubs(cfg, metrics_port=mport).ready()
    deadline = time.monotonic() + 30
    join(hub, pub, deadline)

    koji.login_refused = Fault(1002, "AuthError: no user for this cert")
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg())))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert m["status"] == "failure" and "AuthError" in m["reason"], m
    assert koji.order() == GETS + ["sslLogin"]

    koji.login_refused = "503"
    mark = koji.mark()
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg())))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert m["status"] == "failure" and "HTTP 503" in m["reason"], m
    assert koji.order(mark) == (GETS + ["sslLogin 503"]) * 2
    met = hub.idle()
    assert met("fedmsg_consumer_retried_total",
               consumer="robosignatory") == 1
    assert not rec.exists() and not koji.sigs       # never signed
    assert koji.tags[1001] == {FROM}

    # signed meanwhile: no signer; the login that now works comes first
    koji.login_refused = None
    koji.sigs = {(11, KEYID), (12, KEYID)}
    mark = koji.mark()
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg())))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert (m["status"], m["rpms_signed"]) == ("success", 0), m
    assert koji.order(mark) == GETS + [
        "sslLogin", "writeSignedRPM", "writeSignedRPM", "tagBuild"]
    assert not rec.exists()
    hub.stop()


BAD_SIGNER = """#!/bin/sh
cat >/dev/null
case "$*" in
*side-*) echo $$ > %(pidfile)s; exec sleep 600 ;;   # hangs
esac
echo "sigul: key refused" >&2
exit 1
"""


def test_signer_refuses_or_hangs(tmp_path, hubs, zctx, dev_pki, koji):
    """A signer exiting non-zero is permanent (DROP, its output logged); a
    signer that hangs is killed at signing.timeout and retried until
    max_attempts, then the failure is published.  Neither writes a
    signature or moves the build; the session got before the first
    signer run serves the rest."""
    script, pidfile = tmp_path / "bad-sigul", tmp_path / "hung.pid"
    script.write_text(BAD_SIGNER % {"pidfile": pidfile})
    script.chmod(0o755)
    koji.tags[1002] = {FROM}
    cfg, pub, sub, rec, mport = make_setup(
        tmp_path, dev_pki, koji, zctx, entry={"backoff": 0.1},
        command=[str(script), "{rpms}"], sign_timeout=1)
    hub = hubs(cfg, metrics_port=mport).ready()
    deadline = time.monotonic() + 30
    join(hub, pub, deadline)
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg())))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert (m["status"], m["reason"]) == \
        ("failure", "Signing failed (non-zero exit)"), m
    assert "signer said: sigul: key refused" in hub.stderr()
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg(
        build_id=1002, name="side"))))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert (m["status"], m["reason"]) == ("failure", "signer timed out"), m
    met = hub.idle()
    assert met("fedmsg_consumer_retried_total",
               consumer="robosignatory") == 2
    assert not {"writeSignedRPM", "tagBuild"} & set(koji.methods())
    assert koji.methods().index("sslLogin") == len(GETS) and \
        koji.methods().count("sslLogin") == 1
    assert {b: koji.tags[b] for b in (1001, 1002)} == \
        {1001: {FROM}, 1002: {FROM}}
    pid = int(pidfile.read_text())          # the last hung signer: killed
    wait_until(lambda: not os.path.exists("/proc/%d" % pid), 5,
               "the hung signer killed", hub)
    hub.stop()


XML_SIGNER = """#!/bin/sh
# sigul sign-data's part: an armored detached signature by key $1
cat >/dev/null
echo "$2" >> %(rec)s
GNUPGHOME=%(gnupg)s exec %(gpg)s --batch --yes --armor --detach-sign \\
    -u "$1" -o "$3" "$2"
"""
REPOMD = '<?xml version="1.0" encoding="UTF-8"?>\n<repomd><revision>1' \
    '</revision></repomd>\n'


def test_signer_gets_no_hub_descriptor(tmp_path, hubs, zctx, dev_pki,
                                       koji):
    """The signer (it gets the key's passphrase) starts with stdin, stdout
    and stderr only, none of the hub's descriptors (its sockets, libcurl's
    pipes), and with no signal blocked or ignored by the hub (SIGPIPE).
    tests/tools/proc_state stands in for it and says what it got."""
    out = tmp_path / "signer-state.txt"
    tool = FM_BUILD / "asan" / "tests" / "tools" / "proc_state"
    cfg, pub, sub, _, mport = make_setup(
        tmp_path, dev_pki, koji, zctx, command=[str(tool), str(out),
                                                "{rpms}"])
    hub = hubs(cfg, metrics_port=mport).ready()
    deadline = time.monotonic() + 30
    join(hub, pub, deadline)
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg())))
    results(sub, 1, deadline, hub)
    assert out.read_text() == "fds - blocked - ignored -\n", \
        out.read_text()
    assert hub.stop() == 0


def test_default_command_without_config_file(tmp_path, hubs, zctx, dev_pki,
                                             koji):
    """The default sigul command with no signing.config_file: the
    --config-file option goes with its unset value (robosignatory adds
    the pair only when it is set), so sigul gets its sub-command."""
    bindir, argv_file = tmp_path / "bin", tmp_path / "sigul-argv.txt"
    bindir.mkdir()
    sigul = bindir / "sigul"
    sigul.write_text("#!/bin/sh\ncat >/dev/null\necho \"$*\" > %s\n"
                     % argv_file)
    sigul.chmod(0o755)

    def edit(conf):
        del conf["signing"]["command"]      # sigul's default
        conf["signing"].pop("config_file", None)
    cfg, pub, sub, _, mport = make_setup(tmp_path, dev_pki, koji, zctx,
                                         edit=edit)
    hub = hubs(cfg, metrics_port=mport, env={
        "PATH": "%s:%s" % (bindir, os.environ["PATH"])}).ready()
    deadline = time.monotonic() + 30
    join(hub, pub, deadline)
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg())))
    results(sub, 1, deadline, hub)
    argv = argv_file.read_text().split()
    assert argv[:5] == ["--batch", "--user-name", argv[2], "sign-rpms",
                        "--store-in-koji"], argv
    assert "--config-file" not in argv
    assert hub.stop() == 0


def test_xml_sign(tmp_path, hubs, zctx, dev_pki, koji):
    """robosignatory.xml-sign: an XML body is signed (a detached armored
    signature gpg --verify accepts) and answered on xml-sign.finished;
    anything else (here an RPM header's magic) is answered with an error
    and never reaches the signer; no temporary file is left."""
    gpg = shutil.which("gpg")
    if gpg is None:
        pytest.skip("gpg missing (Debian gnupg)")
    gnupg, tmp, rec = tmp_path / "gnupg", tmp_path / "xmltmp", \
        tmp_path / "xml-signed.txt"
    gnupg.mkdir(mode=0o700)
    tmp.mkdir()
    env = dict(os.environ, GNUPGHOME=str(gnupg))
    run(gpg, "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
        "--quick-gen-key", "fedora-42", "rsa2048", "sign", "1d", env=env)
    script = tmp_path / "xml-sigul"
    script.write_text(XML_SIGNER % {"gnupg": gnupg, "gpg": gpg, "rec": rec})
    script.chmod(0o755)
    cfg, pub, sub, _, mport = make_setup(
        tmp_path, dev_pki, koji, zctx, xml={
            "key": "fedora-42", "tmpdir": str(tmp),
            "trusted_publishers": ["alpha-app01.vectors.example.org"],
            "command": [str(script), "{key}", "{input}", "{output}"]})
    hub = hubs(cfg, metrics_port=mport).ready()
    deadline = time.monotonic() + 30
    join(hub, pub, deadline)
    pub.send_multipart(wire(signed("robosignatory.xml-sign", REPOMD)))
    m = results(sub, 1, deadline, hub, "robosignatory.xml-sign.finished")
    m = m[0]["msg"]
    assert m["body"] == REPOMD and "error" not in m, m
    assert m["signature"].startswith("-----BEGIN PGP SIGNATURE-----"), m
    (tmp_path / "body.xml").write_text(REPOMD)
    (tmp_path / "body.asc").write_text(m["signature"])
    run(gpg, "--verify", tmp_path / "body.asc", tmp_path / "body.xml",
        env=env)
    hdr = "\u008e\u00ad\u00e8\u0001 not XML"
    pub.send_multipart(wire(signed("robosignatory.xml-sign", hdr)))
    m = results(sub, 1, deadline, hub, "robosignatory.xml-sign.finished")
    assert m[0]["msg"] == {"body": hdr, "error": "not an XML document"}, m
    assert len(rec.read_text().splitlines()) == 1
    assert list(tmp.iterdir()) == []
    assert koji.calls == []
    hub.stop()


def test_brew_build_tag_shape(tmp_path, hubs, zctx, dev_pki, koji):
    """Brew's protonmsg build.tag body (nested build and tag, as
    fedmsg-bridge wraps it from UMB) is understood like Fedora's flat
    buildsys.tag; a body of neither shape is dropped without a Koji
    call."""
    cfg, pub, sub, rec, mport = make_setup(tmp_path, dev_pki, koji, zctx)
    hub = hubs(cfg, metrics_port=mport).ready()
    deadline = time.monotonic() + 30
    join(hub, pub, deadline)
    pub.send_multipart(wire(signed("brew.build.tag", {"build": {}})))
    brew = {"tag": {"id": 5, "name": FROM, "arches": None},
            "build": {"id": 1001, "build_id": 1001, "nvr": "pkg-1.0-1.fc41",
                      "name": "pkg", "version": "1.0", "release": "1.fc41",
                      "owner_name": "jdoe"},
            "user": {"id": 7, "name": "bodhi"}, "force": False}
    pub.send_multipart(wire(signed("brew.build.tag", brew)))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert (m["status"], m["build"], m["tag"], m["to"]) == \
        ("success", "pkg-1.0-1.fc41", FROM, TO), m
    assert "not a buildsys.tag body" in hub.stderr()
    assert koji.methods()[0] == "getBuild" and \
        koji.methods().count("getBuild") == 1
    assert len(rec.read_text().splitlines()) == 1
    hub.stop()


def test_modular_builds(tmp_path, hubs, zctx, dev_pki, koji):
    """A module build tagged into a "modular" from tag: the RPMs of every
    build in its content tag are signed (all owned by mbs_user) and the
    module build is moved; a content tag with a build owned by anyone
    else is refused before anything is signed."""
    cfg, pub, sub, rec, mport = make_setup(tmp_path, dev_pki, koji, zctx)
    hub = hubs(cfg, metrics_port=mport).ready()
    deadline = time.monotonic() + 30
    join(hub, pub, deadline)
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg(
        build_id=1007, name="badmod", tag=MFROM))))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert m["status"] == "failure" and "owned by mallory" in m["reason"], m
    assert koji.methods() == ["getBuild", "listTags", "listTagged"]
    assert not rec.exists()
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg(
        build_id=1004, name="mod", tag=MFROM))))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert (m["status"], m["to"], m["rpms_signed"]) == ("success", MTO, 4), m
    assert koji.calls[5] == ("listTagged", ["module-mod-content"], {})
    assert [c[1] for c in koji.calls if c[0] == "listRPMs"] == \
        [[1005], [1006]]
    assert [c[1][0] for c in koji.calls if c[0] == "writeSignedRPM"] == \
        [51, 52, 61, 62]
    assert koji.calls[-1][1] == [MTO, 1004, False, MFROM]
    assert rec.read_text().splitlines() == [
        "pass=s3cret args=-k primary --v3-signature fedora-41 "
        "modpkg1-1.0-1.fc41.x86_64 modpkg1-1.0-1.fc41.src "
        "modpkg2-1.0-1.fc41.x86_64 modpkg2-1.0-1.fc41.src"]
    hub.stop()
