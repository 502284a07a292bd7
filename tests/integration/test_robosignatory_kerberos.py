"""robosignatory's Koji client with authmethod "kerberos" (koji's
gssapi_login): sslLogin at .../ssllogin with HTTP Negotiate (SPNEGO),
credentials from the configured keytab and principal, against a real MIT
KDC the test starts (krb5kdc.py) and the fake Koji hub of
test_robosignatory.py, which accepts SPNEGO with its HTTP/localhost keytab
(python3-gssapi), answers with its own token (mutual authentication) and
requires the session on writeSignedRPM and tagBuild."""

import time
import types

import pytest

from conftest import SLOW, signed, wire
from krb5kdc import KDC, REALM, need_kdc
from test_robosignatory import (FakeKoji, FROM, TO, make_setup, results,
                                tag_msg, join)

pytestmark = pytest.mark.usefixtures("hub_time_limit")

ROBOSIG = "robosig/localhost@" + REALM
AFTER_GETS = ["getBuild", "listTags", "listRPMs", "queryRPMSigs",
              "queryRPMSigs"]


@pytest.fixture
def kdc(tmp_path):
    need_kdc()
    pytest.importorskip("gssapi", reason="python3-gssapi missing")
    k = KDC(tmp_path)
    yield k
    k.stop()


@pytest.fixture
def krb_koji(tmp_path, kdc, monkeypatch):
    """The fake Koji: TLS without client certificates, SPNEGO on its
    login URL with the keys of HTTP/localhost."""
    import subprocess
    crt, key = tmp_path / "koji.crt", tmp_path / "koji.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-subj", "/CN=localhost", "-days", "1",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(crt)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for k, v in kdc.env().items():      # the acceptor reads this realm
        monkeypatch.setenv(k, v)
    kdc.principal("HTTP/localhost", tmp_path / "http.keytab")
    k = FakeKoji(str(crt), str(key), None)
    k.ca = crt
    k.kerberos(tmp_path / "http.keytab")
    yield k
    k.stop()


def kerberos_instances(conf, koji, urls=None, **keytabs):
    """The one ssl instance of conf becomes one kerberos instance per
    name=(principal, keytab or None: the default ccache); urls: another
    url for some."""
    ssl = conf["koji_instances"].pop("primary")
    for name, (principal, keytab) in keytabs.items():
        opt = {"authmethod": "kerberos", "principal": principal,
               "serverca": str(koji.ca)}
        if keytab is not None:
            opt["keytab"] = str(keytab)
        conf["koji_instances"][name] = dict(ssl, options=opt)
        if name in (urls or {}):
            conf["koji_instances"][name]["url"] = urls[name]


def krb_hub(tmp_path, hubs, zctx, dev_pki, kdc, koji, **instances):
    """principals and keytabs in the KDC, the KDC started, a hub with
    robosignatory on kerberos instances of the fake Koji (byip: by
    127.0.0.1, a host the realm has no HTTP/ service for); builds 1001-1006
    in FROM."""
    keytabs = {"good": tmp_path / "robosig.keytab",
               "stale": tmp_path / "stale.keytab",
               "other": tmp_path / "mallory.keytab"}
    kdc.principal("robosig/localhost", keytabs["good"])
    kdc.principal("stale/localhost", keytabs["stale"])
    kdc.keytab("stale/localhost", tmp_path / "stale-new.keytab")  # re-key
    kdc.principal("mallory", keytabs["other"])      # someone else's
    kdc.start()
    for b in (1002, 1003, 1005, 1006):
        koji.tags[b] = {FROM}
    inst = {name: (p, keytabs.get(k)) for name, (p, k) in instances.items()}
    cfg, pub, sub, rec, mport = make_setup(
        tmp_path, dev_pki, koji, zctx, entry={"backoff": 0.1},
        edit=lambda conf: kerberos_instances(
            conf, koji, urls={"byip": "https://127.0.0.1:%d/kojihub" %
                              koji.port}, **inst))
    hub = hubs(cfg, metrics_port=mport, env=kdc.env()).ready()
    deadline = time.monotonic() + 30 * SLOW
    join(hub, pub, deadline)
    assert koji.calls == []
    return hub, pub, sub, deadline


def test_kerberos_sign_relogin_and_hub_checks(tmp_path, hubs, zctx,
                                              dev_pki, kdc, krb_koji):
    """A tag message signs a build with a Kerberos session; a session the
    hub expired is logged in again once; a hub that does not authenticate
    itself is not trusted with the session, and a hub whose key changed
    refuses the login (HTTP 401): DROP, nothing written."""
    koji = krb_koji
    hub, pub, sub, deadline = krb_hub(
        tmp_path, hubs, zctx, dev_pki, kdc, koji,
        primary=(ROBOSIG, "good"), nomutual=(ROBOSIG, "good"),
        rekeyed=(ROBOSIG, "good"))

    # signed with a Kerberos session
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg())))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert (m["status"], m["rpms_signed"], m["to"]) == \
        ("success", 2, TO), (m, hub.stderr())
    assert koji.order() == AFTER_GETS + [        # "SIGN": the signer ran
        "sslLogin", "SIGN", "writeSignedRPM", "writeSignedRPM", "tagBuild"]
    assert koji.logins == [ROBOSIG] and koji.refused == []
    assert koji.tags[1001] == {TO}

    # the hub ends the session: AuthExpired, one new login, then on (the
    # session held is not checked before signing: the hub says so at
    # writeSignedRPM)
    koji.expire()
    mark = koji.mark()
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg(
        build_id=1006, name="modpkg2"))))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert m["status"] == "success", (m, hub.stderr())
    assert koji.order(mark)[5:] == [
        "SIGN", "writeSignedRPM", "sslLogin", "writeSignedRPM",
        "writeSignedRPM", "tagBuild"]
    assert koji.logins == [ROBOSIG, ROBOSIG]

    # a hub that does not answer with its own token has not proved who
    # it is: its session is not used
    koji.mutual = False
    mark = koji.mark()
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg(
        build_id=1003, name="evil", instance="nomutual"))))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert m["status"] == "failure", m
    assert "mutual authentication failed" in m["reason"], m
    assert koji.order(mark) == AFTER_GETS + ["sslLogin"]     # no SIGN
    koji.mutual = True

    # the hub's own key changed under it (its keytab is stale): a fresh
    # ticket does not open it, it answers 401 -> DROP, nothing written
    kdc.keytab("HTTP/localhost", tmp_path / "http-new.keytab")
    mark = koji.mark()
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg(
        build_id=1002, name="side", instance="rekeyed"))))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert m["status"] == "failure", m
    assert m["reason"].endswith("the hub refused the Kerberos login "
                                "(HTTP 401)"), m
    assert koji.order(mark) == AFTER_GETS + ["sslLogin 401"]  # no SIGN
    assert len(koji.refused) == 1 and koji.logins == [ROBOSIG] * 3

    met = hub.idle()
    assert met("fedmsg_consumer_retried_total",
               consumer="robosignatory") == 0
    hub.stop()


def test_kerberos_credential_failures_and_kdc_down(tmp_path, hubs, zctx,
                                                   dev_pki, kdc, krb_koji):
    """No keytab nor ticket, a stale keytab, a keytab without the
    principal, a url host the realm has no service for: refused before
    any Koji login (DROP, the KDC's or the keytab's reason); the KDC down
    is transient (RETRY, then the failure), with no ticket yet and with
    the initial ticket only."""
    koji = krb_koji
    hub, pub, sub, deadline = krb_hub(
        tmp_path, hubs, zctx, dev_pki, kdc, koji,
        stale=("stale/localhost@" + REALM, "stale"),
        wrong=(ROBOSIG, "other"), noticket=(ROBOSIG, None),
        late=(ROBOSIG, "good"), byip=(ROBOSIG, "good"))

    # a stale keytab, a keytab without the principal, no keytab and no
    # ticket in the default ccache: Koji's login URL is never asked,
    # the signer never runs, nothing is written or moved
    for inst, build, name, why in (
            ("noticket", 1003, "evil", "Can't find client principal %s "
             "in cache collection" % ROBOSIG),
            ("stale", 1002, "side", "Decrypt integrity check failed"),
            ("wrong", 1003, "evil", "mallory.keytab: No key table entry found "
             "for " + ROBOSIG)):
        mark = koji.mark()
        pub.send_multipart(wire(signed("buildsys.tag", tag_msg(
            build_id=build, name=name, instance=inst))))
        m = results(sub, 1, deadline, hub)[0]["msg"]
        assert m["status"] == "failure", m
        assert m["reason"].startswith("kerberos login as "), m
        assert why in m["reason"], m
        assert koji.order(mark) == AFTER_GETS, koji.order(mark)
        assert koji.tags[build] == {FROM}
    assert koji.logins == [] and koji.refused == []

    # the hub's url names a host the realm has no HTTP/ service for: the
    # KDC says so (DROP); the TGT got on the way stays for what follows
    mark = koji.mark()
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg(
        build_id=1003, name="evil", instance="byip"))))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert m["status"] == "failure", m
    assert "no ticket for HTTP@127.0.0.1" in m["reason"] and \
        "Server HTTP/127.0.0.1@%s not found in Kerberos database" % REALM \
        in m["reason"], m
    assert koji.order(mark) == AFTER_GETS, koji.order(mark)
    met = hub.idle()
    assert met("fedmsg_consumer_retried_total",
               consumer="robosignatory") == 0

    # the KDC down: an instance with no ticket yet retries, then the
    # failure is published after max_attempts (3); the signer never runs
    kdc.stop()
    mark = koji.mark()
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg(
        build_id=1005, name="modpkg1", instance="late"))))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert m["status"] == "failure", m
    assert "Cannot contact any KDC" in m["reason"], m
    met = hub.idle()
    assert met("fedmsg_consumer_retried_total",
               consumer="robosignatory") == 2
    assert koji.order(mark) == AFTER_GETS * 3      # no login reached Koji
    assert koji.tags[1005] == {FROM}
    # with a TGT but no service ticket yet: the same, at the second step
    mark = koji.mark()
    pub.send_multipart(wire(signed("buildsys.tag", tag_msg(
        build_id=1003, name="evil", instance="byip"))))
    m = results(sub, 1, deadline, hub)[0]["msg"]
    assert m["status"] == "failure" and "no ticket for HTTP@127.0.0.1" in \
        m["reason"] and "Cannot contact any KDC" in m["reason"], m
    met = hub.idle()
    assert met("fedmsg_consumer_retried_total",
               consumer="robosignatory") == 4
    assert koji.order(mark) == AFTER_GETS * 3
    assert "SIGN" not in koji.order()
    hub.stop()




def test_kerberos_config_errors(tmp_path, hubs, zctx, dev_pki):
    """A bad kerberos instance stops the hub with an error naming it: an
    http:// url (the session key would travel in clear), an authmethod
    that is neither ssl nor kerberos, a principal that is not a string."""
    koji = types.SimpleNamespace(port=1, ca=tmp_path / "none.crt",
                                 watch=lambda rec: None)
    cases = [
        ({"url": "http://localhost:1/kojihub"},
         "authmethod \"kerberos\" needs an https:// 'url'"),
        ({"options": {"authmethod": "gssapi"}},
         "options.authmethod must be \"ssl\" or \"kerberos\""),
        ({"options": {"authmethod": "kerberos", "principal": 7}},
         "'principal' must be a string"),
    ]
    for i, (over, why) in enumerate(cases):
        def edit(conf, over=over):
            kerberos_instances(conf, koji, primary=(ROBOSIG, "/k.keytab"))
            conf["koji_instances"]["primary"].update(over)
        d = tmp_path / str(i)
        d.mkdir()
        cfg, pub, sub, rec, mport = make_setup(d, dev_pki, koji, zctx,
                                               edit=edit)
        hub = hubs(cfg, metrics_port=mport)
        assert hub.wait(20) != 0, hub.describe()
        err = hub.stderr()
        assert "koji_instances.primary" in err and why in err, err
        pub.close()
        sub.close()
