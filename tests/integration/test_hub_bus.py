"""fedmsg-hub on a real ZeroMQ bus: validation before any consumer, the
exact bytes reaching a consumer, de-duplication and exact counters.

A pyzmq PUB bound on 127.0.0.1 is the passive fedmsg endpoint "src"; the
hub (FM_BIN, the ASan build under `make integration`) subscribes to it with
validate_signatures true and the vectors' CA and CRL.  The slow joiner is
beaten with signed probes (conftest.hub_sync); the path PUB -> hub main
thread -> one consumer queue with one thread is ordered, so once an end
marker has been consumed, everything sent before it has been handled.
"""

import json

import pytest

from conftest import (HubProbes, Probes, VECTORS, VECTORS_BY_NAME,
                      archive_ids, archive_lines, frame_matches_body,
                      free_ports, hub_config, hub_mark, hub_sync,
                      project_plugin, recorded, recorded_ids, signed, tcp,
                      valid_by_default, vector_frames, wire, write_config,
                      zmq_module, zsocket)

pytestmark = pytest.mark.usefixtures("hub_time_limit")

# The reason each invalid vector is counted under, from what each vector
# does (tests/data/vectors/README.md): tampered bytes break the signature,
# a gpg/unknown "crypto" is a refused backend, a missing field is a bad
# field, revoked/expired/not-yet-valid/foreign certificates fail the chain.
INVALID_REASON = {
    "tamper_body_value_changed": "bad_signature",
    "tamper_i_changed": "bad_signature",
    "tamper_timestamp_int_to_float": "bad_signature",
    "tamper_crypto_field_removed": "bad_signature",
    "tamper_extra_top_level_field": "bad_signature",
    "tamper_signature_one_char": "bad_signature",
    "tamper_certificate_swapped": "bad_signature",
    "datagrepper_mutated": "bad_signature",
    "python_int_keys_unverifiable": "bad_signature",
    "persistent_store_seq_id_breaks_signature": "bad_signature",
    "tamper_crypto_field_gpg": "bad_backend",
    "tamper_crypto_field_unknown": "bad_backend",
    "missing_signature": "bad_field",
    "missing_certificate": "bad_field",
    "cert_revoked_in_crl": "untrusted_certificate",
    "cert_revoked_but_no_crl_configured": "untrusted_certificate",
    "cert_expired": "untrusted_certificate",
    "cert_not_yet_valid": "untrusted_certificate",
    "cert_from_untrusted_ca": "untrusted_certificate",
    "cert_without_common_name": "no_common_name",
}
REASONS = ("unsigned", "bad_field", "bad_backend", "bad_base64",
           "bad_certificate", "untrusted_certificate", "bad_signature",
           "no_common_name", "routing_policy", "stale", "future")


@pytest.fixture
def bus(tmp_path, zctx):
    """(pub socket, its port, metrics port)."""
    zmq = zmq_module()
    src, mport = free_ports(2)
    pub = zsocket(zctx, zmq.PUB, bind=tcp(src))
    return pub, src, mport


def archive_consumer(d, **entry):
    e = {"plugin": str(project_plugin("archive")),
         "config": {"dir": str(d), "rotate_daily": False}}
    e.update(entry)
    return e


def test_only_valid_vectors_reach_consumers_byte_for_byte(tmp_path, hubs,
                                                           bus):
    pub, src, mport = bus
    adir = tmp_path / "archive"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "arch": archive_consumer(adir, dedup_window=0)}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    seen = lambda: archive_ids(adir)     # noqa: E731
    hub_sync(pub.send_multipart, probes, seen, hub)
    base = hub.idle()
    for rec in VECTORS:
        pub.send_multipart(vector_frames(rec))
    hub_mark(pub.send_multipart, probes, seen, hub)

    lines = [line for line in archive_lines(adir)
             if not Probes.is_probe(line)]
    want = [rec["wire_body"].encode("utf-8") for rec in VECTORS
            if frame_matches_body(rec) and valid_by_default(rec)]
    assert len(want) == 33
    assert lines == want        # exact bytes, in order

    m = hub.metrics()
    counted = {r: m("fedmsg_hub_invalid_total", reason=r) -
               base("fedmsg_hub_invalid_total", reason=r) for r in REASONS}
    expect = dict.fromkeys(REASONS, 0)
    for rec in VECTORS:
        if frame_matches_body(rec) and not valid_by_default(rec):
            expect[INVALID_REASON[rec["name"]]] += 1
    assert counted == expect
    assert sum(expect.values()) == 20
    # the one vector whose topic frame is not the body's topic is refused
    # by the transport, before validation
    assert m("fedmsg_hub_rejected_total", reason="topic_mismatch") == 1
    n = len(VECTORS) - 1 + 1    # all but the mismatch, plus the marker
    assert m("fedmsg_hub_received_total") - \
        base("fedmsg_hub_received_total") == n
    assert "invalid message" in hub.stderr()
    assert hub.stop() == 0


def test_duplicate_msg_id_consumed_once(tmp_path, hubs, bus):
    pub, src, mport = bus
    adir = tmp_path / "archive"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "arch": archive_consumer(adir)}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    seen = lambda: archive_ids(adir)     # noqa: E731
    hub_sync(pub.send_multipart, probes, seen, hub)
    base = hub.idle()

    basic = VECTORS_BY_NAME["basic_ascii"]
    pub.send_multipart(vector_frames(basic))
    pub.send_multipart(vector_frames(basic))
    # Same msg_id, other valid bytes: re-wrapped signature, re-serialised
    # by a relay, respelled.  De-duplication is by msg_id.
    for name in ("mixed_unicode_float_slash", "valid_signature_rewrapped",
                 "valid_after_relay_reserialization",
                 "valid_equivalent_respelling"):
        pub.send_multipart(vector_frames(VECTORS_BY_NAME[name]))
    hub_mark(pub.send_multipart, probes, seen, hub)

    lines = [line for line in archive_lines(adir)
             if not Probes.is_probe(line)]
    assert lines == [basic["wire_body"].encode(),
                     VECTORS_BY_NAME["mixed_unicode_float_slash"]
                     ["wire_body"].encode()]
    m = hub.metrics()
    dup = m("fedmsg_consumer_dropped_total", consumer="arch",
            reason="duplicate") - base("fedmsg_consumer_dropped_total",
                                       consumer="arch", reason="duplicate")
    assert dup == 4
    assert hub.stop() == 0


def test_metrics_exact_after_known_run(tmp_path, hubs, bus, abi_plugins):
    """Counters are exact: everything sent is accounted for."""
    pub, src, mport = bus
    rec_a, rec_b = tmp_path / "a.txt", tmp_path / "b.txt"
    cfg = write_config(tmp_path, hub_config(src, mport, {
        "a": {"plugin": str(abi_plugins["verdicts"]),
              "config": {"file": str(rec_a)}},
        # b sees only the test topic, not the probes
        "b": {"plugin": str(abi_plugins["verdicts"]),
              "topics": ["org.fedoraproject.dev.metrics.*"],
              "config": {"file": str(rec_b), "field": "vb"}}}))
    hub = hubs(cfg, metrics_port=mport).ready()
    probes = HubProbes()
    seen = lambda: recorded_ids(rec_a, probes=True)     # noqa: E731
    hub_sync(pub.send_multipart, probes, seen, hub)

    for i in range(5):
        pub.send_multipart(wire(signed("metrics.ok", {"n": i})))
    for i in range(2):
        pub.send_multipart(wire(signed("metrics.drop", {
            "n": i, "verdict": "drop", "vb": "drop"})))
    bad = signed("metrics.bad", {"n": 1})
    bad["msg"] = {"n": 2}                   # breaks the signature
    pub.send_multipart(wire(bad))
    unrouted = signed("other.thing", {"n": 1})
    pub.send_multipart(wire(unrouted))      # a gets it, b does not
    hub_mark(pub.send_multipart, probes, seen, hub)
    wait_b = lambda: len(recorded(rec_b)) == 7       # noqa: E731
    hub.wait_for(wait_b, 5, "consumer b's 7 messages")

    m = hub.idle()
    a_lines = recorded(rec_a)
    probes_seen = sum(1 for r in a_lines if r[0].startswith("probe-"))
    # a: every probe that arrived, 5 ok, 2 drop, 1 other; b: 5 ok, 2 drop
    assert len(a_lines) == probes_seen + 8
    assert m("fedmsg_hub_received_total") == probes_seen + 9
    assert m("fedmsg_hub_invalid_total", reason="bad_signature") == 1
    assert m("fedmsg_hub_unrouted_total") == 0
    assert m("fedmsg_consumer_in_total", consumer="a") == probes_seen + 8
    assert m("fedmsg_consumer_ok_total", consumer="a") == probes_seen + 6
    assert m("fedmsg_consumer_dropped_total", consumer="a",
             reason="verdict") == 2
    assert m("fedmsg_consumer_in_total", consumer="b") == 7
    assert m("fedmsg_consumer_ok_total", consumer="b") == 5
    assert m("fedmsg_consumer_dropped_total", consumer="b",
             reason="verdict") == 2
    for c in ("a", "b"):
        for r in ("error", "retries_exhausted", "queue_full", "halted",
                  "duplicate"):
            assert m("fedmsg_consumer_dropped_total", consumer=c,
                     reason=r) == 0, (c, r)
        assert m("fedmsg_consumer_retried_total", consumer=c) == 0
        assert m("fedmsg_consumer_halted", consumer=c) == 0
        assert m("fedmsg_consumer_queue_depth", consumer=c) == 0
        assert m("fedmsg_consumer_latency_seconds_count", consumer=c) == \
            m("fedmsg_consumer_in_total", consumer=c)
    st = {c["name"]: c for c in hub.status()["consumers"]}
    assert st["a"]["headcount_in"] == probes_seen + 8
    assert st["a"]["headcount_out"] == probes_seen + 6
    assert st["b"]["headcount_in"] == 7 and st["b"]["headcount_out"] == 5
    assert st["b"]["topic"] == ["org.fedoraproject.dev.metrics.*"]
    assert st["a"]["module"] == "verdicts"
    code, body = __import__("conftest").http_get(mport, "/live")
    assert code == 200 and json.loads(body) == {"status": "OK"}
    assert hub.stop() == 0
