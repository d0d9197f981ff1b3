"""Signing keys: files and modes, kid, JWKS, rotation, expiry of retired keys, and a second
process (key ring) picking up a rotation."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from app.authn import KeySet
from app.authn.errors import TokenRejected
from app.iam import Iam, IamSettings
from app.iam.errors import TooManyRequests
from app.iam.key_ring import (
    KEYRING_FILE,
    MAX_RETIRED_KEYS,
    MIN_ROTATION_INTERVAL,
    RETIREMENT_GRACE,
    KeyFileError,
    KeyRing,
)
from tests.iam.conftest import Clock

LIFETIME = 600


def ring(directory: Path, clock: Clock) -> KeyRing:
    keys = KeyRing(directory, token_lifetime=LIFETIME, clock=clock)
    keys.load()
    return keys


def test_first_run_creates_a_private_key_0600_named_by_kid(tmp_path: Path) -> None:
    keys = ring(tmp_path / "keys", Clock())
    kid = keys.current.kid
    pem = tmp_path / "keys" / f"{kid}.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    der = keys.current.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert kid == hashlib.sha256(der).hexdigest()
    assert keys.current.private_key.key_size == 2048
    assert "PRIVATE" not in repr(keys.current)


def test_loading_again_keeps_the_key(tmp_path: Path) -> None:
    first = ring(tmp_path, Clock()).current.kid
    assert ring(tmp_path, Clock()).current.kid == first


def test_a_group_readable_private_key_is_refused(tmp_path: Path) -> None:
    kid = ring(tmp_path, Clock()).current.kid
    os.chmod(tmp_path / f"{kid}.pem", 0o640)
    with pytest.raises(KeyFileError, match="chmod 600"):
        ring(tmp_path, Clock())


def test_a_corrupt_key_ring_is_refused(tmp_path: Path) -> None:
    ring(tmp_path, Clock())
    (tmp_path / KEYRING_FILE).write_text('{"current": 5}')
    with pytest.raises(KeyFileError, match="corrupt"):
        ring(tmp_path, Clock())


def test_jwks_lists_the_current_key_first_then_retired_until_their_tokens_expire(
    tmp_path: Path,
) -> None:
    clock = Clock()
    keys = ring(tmp_path, clock)
    old = keys.current.kid
    new = keys.rotate().kid
    assert new != old
    document = keys.jwks()
    assert [k["kid"] for k in document["keys"]] == [new, old]
    assert len(KeySet.from_jwks(document)) == 2
    assert {k["e"] for k in document["keys"]} == {"AQAB"}

    clock.advance(LIFETIME + RETIREMENT_GRACE - 1)
    assert [k.kid for k in keys.published()] == [new, old]
    clock.advance(1)
    assert [k.kid for k in keys.published()] == [new]
    assert (tmp_path / f"{old}.pem").exists()
    keys.load()  # files of expired keys go at the next load or rotation
    assert not (tmp_path / f"{old}.pem").exists()
    assert [e["kid"] for e in json.loads((tmp_path / KEYRING_FILE).read_text())["retired"]] == []


async def test_rotation_in_one_worker_is_seen_by_another(tmp_path: Path) -> None:
    clock = Clock()
    a, b = ring(tmp_path, clock), ring(tmp_path, clock)
    new = a.rotate().kid
    await b.refresh(force=True)
    assert b.current.kid == new
    assert [k.kid for k in b.published()] == [k.kid for k in a.published()]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def short_settings(new_settings: Callable[..., IamSettings]) -> IamSettings:
    return new_settings(token_lifetime=LIFETIME)


async def test_tokens_across_a_rotation(short_settings: IamSettings, clock: Clock) -> None:
    async with Iam(short_settings, clock=clock) as iam:
        before = iam.issuer.issue("alice")
        old_kid = iam.keys.current.kid
        new_kid = (await iam.rotate_keys()).kid
        after = iam.issuer.issue("alice")

        assert _kid(after.token) == new_kid
        assert _kid(before.token) == old_kid
        # Signed before the rotation, still good; and the new ones, of course.
        assert (await iam.authenticator.verify(before.token)).uid == "alice"
        assert (await iam.authenticator.verify(after.token)).uid == "alice"

        # Once everything the old key signed has expired, the key is gone from the JWKS.
        clock.advance(LIFETIME + RETIREMENT_GRACE)
        assert [k["kid"] for k in (await iam.jwks())["keys"]] == [new_kid]
        with pytest.raises(TokenRejected):
            await iam.authenticator.verify(before.token)


async def test_a_token_from_another_workers_new_key_verifies(
    short_settings: IamSettings, clock: Clock
) -> None:
    async with Iam(short_settings, clock=clock) as a, Iam(short_settings, clock=clock) as b:
        await a.rotate_keys()
        token = a.issuer.issue("alice").token
        # b has not looked at the key ring since: the unknown kid makes it look.
        assert (await b.authenticator.verify(token)).uid == "alice"
        assert b.keys.current.kid == a.keys.current.kid


def _kid(token: str) -> str:
    import base64

    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    kid: str = header["kid"]
    return kid


def test_rotation_is_rate_limited_and_retired_keys_are_bounded(tmp_path: Path) -> None:
    # Issue 12 §5: 30 rotations in a row grew the JWKS to 31 keys.
    clock = Clock()
    keys = ring(tmp_path, clock)
    keys.rotate()
    with pytest.raises(TooManyRequests) as refused:
        keys.rotate()
    assert refused.value.retry_after == MIN_ROTATION_INTERVAL
    for _ in range(MAX_RETIRED_KEYS - 1):
        clock.advance(MIN_ROTATION_INTERVAL)
        keys.rotate()
    assert len(keys.published()) == MAX_RETIRED_KEYS + 1
    clock.advance(MIN_ROTATION_INTERVAL)
    with pytest.raises(TooManyRequests) as refused:
        keys.rotate()  # the oldest retired key still verifies unexpired tokens
    oldest_free = LIFETIME + RETIREMENT_GRACE - MAX_RETIRED_KEYS * MIN_ROTATION_INTERVAL
    assert refused.value.retry_after == oldest_free
    clock.advance(oldest_free)
    keys.rotate()  # the oldest is dropped now that its tokens have expired
    assert len(keys.published()) == MAX_RETIRED_KEYS + 1
