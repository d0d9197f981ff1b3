"""Pure parts: password hashes, the failure limiter, identifier syntax, audit formatting."""

from __future__ import annotations

import logging

import pytest

from app.authz.audit import audit_event
from app.authz.model import Action
from app.core.errors import BadRequest
from app.iam import names
from app.iam.passwords import dummy_hash, hash_password, verify_password
from app.iam.ratelimit import FailureLimiter, whole_seconds
from tests.iam.conftest import Clock


def test_password_hash_round_trip_and_stored_parameters() -> None:
    stored = hash_password("s3cret password", log2_n=10)
    assert stored.startswith("scrypt$ln=10,r=8,p=1$")
    assert "s3cret" not in stored
    assert verify_password("s3cret password", stored)
    assert not verify_password("s3cret passworD", stored)
    # Salted: the same password hashes differently each time.
    assert hash_password("s3cret password", log2_n=10) != stored
    # Parameters travel with the hash: a cheaper or costlier one still verifies.
    assert verify_password("x", hash_password("x", log2_n=11))


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "scrypt$ln=10,r=8,p=1$!!$!!",
        "scrypt$ln=30,r=8,p=1$c2FsdA==$" + "A" * 44,  # absurd cost is refused, not attempted
        "scrypt$ln=10,r=8,p=1$c2FsdA==$c2hvcnQ=",  # digest of the wrong length
    ],
)
def test_unusable_hashes_never_verify(stored: str) -> None:
    assert not verify_password("anything", stored)


def test_dummy_hash_matches_nothing() -> None:
    assert not verify_password("", dummy_hash(10))


def test_limiter_burst_then_refill() -> None:
    clock = Clock(0)
    limiter = FailureLimiter(3, 60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("k") == 0
        limiter.failed("k")
    assert limiter.retry_after("k") == pytest.approx(20)  # one failure per 20 s refills
    assert limiter.retry_after("other") == 0
    clock.advance(20)
    assert limiter.retry_after("k") == 0
    limiter.failed("k")
    assert limiter.retry_after("k") > 0
    limiter.refund("k")
    assert limiter.retry_after("k") == 0
    limiter.reset("k")
    assert limiter.retry_after("k") == 0


def test_limiter_memory_is_bounded() -> None:
    limiter = FailureLimiter(1, 60, clock=Clock(0), max_keys=100)
    for i in range(1000):
        limiter.failed(f"k{i}")
    assert len(limiter._buckets) == 100
    assert limiter.retry_after("k999") > 0


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert [whole_seconds(x) for x in (0.01, 1.0, 1.2, 59.9)] == [1, 1, 2, 60]


@pytest.mark.parametrize("uid", ["alice", "a.b_c-d@e", "x" * 96, "0"])
def test_good_uids(uid: str) -> None:
    assert names.uid(uid) == uid


@pytest.mark.parametrize("uid", ["", "x" * 97, "a b", "a/b", "é", "a\nb", "a:b"])
def test_bad_uids(uid: str) -> None:
    with pytest.raises(BadRequest, match=r"^uid: "):
        names.uid(uid)


def test_rids_and_actions() -> None:
    assert (
        names.rid("dcos:mesos:agent:task:app_id:/dev/web")
        == "dcos:mesos:agent:task:app_id:/dev/web"
    )
    assert names.rid("dcos:x:%2Fdev") == "dcos:x:/dev"
    assert names.action("full") is Action.FULL
    with pytest.raises(BadRequest, match=r"^action: must be one of create, read"):
        names.action("FULL")


def test_audit_quotes_what_is_not_plain(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="logway.audit")
    audit_event("login", "deny", uid="alice", srcip="::1", reason="wrong password\nuid=root")
    (line,) = caplog.messages
    assert line == (
        'type=audit action=login result=deny uid=alice srcip=::1 reason="wrong password\\nuid=root"'
    )
