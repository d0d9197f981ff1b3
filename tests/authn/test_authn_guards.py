"""Authentication guards from the attacker's side, where the mutation run (docs/mutation-report.md)
found them untested: a node reader built from a PEM file still refuses a valid token of a uid
it does not allow, and a PEM key pinned to a kid still refuses other kids."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.authn.authenticator import JwtAuthenticator
from app.authn.cache import VerifiedTokens
from app.authn.errors import Reason, TokenRejected
from tests.authn.conftest import Keys, http_request


def pem_file(keys: Keys, tmp_path: Path) -> Path:
    path = tmp_path / "iam.pem"
    path.write_bytes(keys.iam.public_pem)
    return path


async def test_a_pem_reader_refuses_a_valid_token_of_a_uid_it_does_not_allow(
    keys: Keys, tmp_path: Path
) -> None:
    auth = JwtAuthenticator.from_pem_file(pem_file(keys, tmp_path), allowed_uids={"gateway"})
    token = keys.iam.token({"uid": "alice", "exp": 2**31})  # signed by the IAM itself
    with pytest.raises(TokenRejected) as caught:
        await auth.authenticate(http_request([("Authorization", f"token={token}")]))
    assert caught.value.reason == Reason.UID_NOT_ALLOWED
    gateway = keys.iam.token({"uid": "gateway", "exp": 2**31})
    identity = await auth.authenticate(http_request([("Authorization", f"token={gateway}")]))
    assert identity is not None
    assert identity.uid == "gateway"


async def test_a_pem_file_pinned_to_a_kid_refuses_another_kid(keys: Keys, tmp_path: Path) -> None:
    path = pem_file(keys, tmp_path)
    auth = JwtAuthenticator.from_pem_file(path, kid="iam-1")
    other = keys.iam.token({"uid": "alice", "exp": 2**31}, kid="iam-2")
    with pytest.raises(TokenRejected) as caught:
        await auth.authenticate(http_request([("Authorization", f"Bearer {other}")]))
    assert caught.value.reason == Reason.UNKNOWN_KID


def test_discarding_a_token_never_cached_is_quiet() -> None:
    """Revocation discards tokens that may never have been verified here."""
    VerifiedTokens(max_entries=4).discard("never.seen.token")
