"""validate_max_age without validate_max_future: the future limit defaults
to 60 s (an age limit means nothing if messages may be dated years ahead),
seen through fedmsg-verify --config ... --now."""

import json

import pytest

from conftest import VECTORS_BY_NAME, VECTOR_CERTS, one_verdict, write_config

CA = VECTOR_CERTS / "ca.crt"


def body():
    return VECTORS_BY_NAME["basic_ascii"]["wire_body"]


def stamp():
    return int(json.loads(body())["timestamp"])


def verdict_at(run, cfg_dir, cfg, now):
    path = write_config(cfg_dir, dict(cfg, ca_cert_location=str(CA)))
    r = run("fedmsg-verify", ["--config", path, "--now", now],
            input=body())
    return one_verdict(r)


@pytest.mark.parametrize("ahead,want", [
    (0, "valid"), (60, "valid"), (61, "invalid"), (3600, "invalid"),
    (2 * 365 * 86400, "invalid")])
def test_max_age_alone_limits_the_future_to_60s(run, tmp_path, ahead, want):
    # --now before the message's timestamp: the message is dated ahead
    # (two years back is still inside the vector CA's validity)
    verdict, _, reason = verdict_at(run, tmp_path, {"validate_max_age": 300},
                                    stamp() - ahead)
    assert verdict == want, reason
    if want == "invalid":
        assert "validate_max_future 60" in reason, reason


def test_explicit_future_limit_wins(run, tmp_path):
    now = stamp() - 3600
    verdict, _, reason = verdict_at(
        run, tmp_path, {"validate_max_age": 300,
                        "validate_max_future": 7200}, now)
    assert verdict == "valid", reason
    verdict, _, reason = verdict_at(
        run, tmp_path, {"validate_max_age": 300,
                        "validate_max_future": 600}, now)
    assert verdict == "invalid" and "validate_max_future 600" in reason


def test_no_freshness_check_by_default(run, tmp_path):
    verdict, _, reason = verdict_at(run, tmp_path, {}, stamp() - 3600)
    assert verdict == "valid", reason
