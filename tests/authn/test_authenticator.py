from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from app.authn import authenticator as authenticator_module
from app.authn.authenticator import Identity, JwtAuthenticator, NoAuth
from app.authn.errors import Reason, TokenRejected
from app.authn.extract import AUTH_COOKIE
from app.authn.verification_keys import KeySet, StaticKeys
from app.authn.verify import DEFAULT_LEEWAY, MAX_LEEWAY, Claims, RS256Key, UnverifiedToken, verify
from tests.authn.conftest import Clock, Keys, http_request
from tests.authn.tokens import NOW, split


@pytest.fixture
def auth(keys: Keys, clock: Clock) -> JwtAuthenticator:
    keyset = KeySet.from_jwks({"keys": [keys.iam.jwk(), keys.iam2.jwk()]})
    return JwtAuthenticator(StaticKeys(keyset), clock=clock)


async def test_no_credentials_is_none(auth: JwtAuthenticator, keys: Keys) -> None:
    assert await auth.authenticate(http_request()) is None
    # A token in the query string is not a credential (J18).
    query = f"token={keys.iam.token()}".encode()
    assert await auth.authenticate(http_request(query_string=query)) is None


@pytest.mark.parametrize(
    "credential",
    [
        lambda t: ("Authorization", f"token={t}"),
        lambda t: ("Authorization", f"Bearer {t}"),
        lambda t: ("Cookie", f"{AUTH_COOKIE}={t}"),
    ],
    ids=["token=", "Bearer", "cookie"],
)
async def test_identity(
    auth: JwtAuthenticator, keys: Keys, credential: Callable[[str], tuple[str, str]]
) -> None:
    token = keys.iam.token({"uid": "alice", "exp": NOW + 60})
    identity = await auth.authenticate(http_request([credential(token)]))
    # valid_until: exp plus the leeway the authenticator verifies with (an open stream ends
    # then, app.authz.access).
    assert identity == Identity(
        uid="alice", token=token, exp=NOW + 60, valid_until=NOW + 60 + DEFAULT_LEEWAY
    )


async def test_header_wins_over_cookie(auth: JwtAuthenticator, keys: Keys) -> None:
    good = keys.iam.token()
    bad = keys.attacker.token(kid="iam-1")
    request = http_request(
        [("Authorization", f"Bearer {bad}"), ("Cookie", f"{AUTH_COOKIE}={good}")]
    )
    with pytest.raises(TokenRejected) as info:
        await auth.authenticate(request)
    assert info.value.reason == Reason.SIGNATURE


async def test_bad_credentials_never_echoed_nor_logged(
    auth: JwtAuthenticator, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    token = keys.attacker.token({"uid": "mallory-uid", "exp": NOW + 60}, kid="iam-1")
    with caplog.at_level(logging.DEBUG), pytest.raises(TokenRejected) as info:
        await auth.authenticate(http_request([("Authorization", f"token={token}")]))
    for secret in (*split(token), "mallory-uid"):
        assert secret not in str(info.value)
        assert secret not in caplog.text
    assert "token rejected: bad signature" in caplog.text


async def test_identity_repr_hides_token(auth: JwtAuthenticator, keys: Keys) -> None:
    token = keys.iam.token()
    identity = await auth.authenticate(http_request([("Authorization", f"token={token}")]))
    assert identity is not None
    assert split(token)[2] not in repr(identity)
    assert "alice" in repr(identity)


async def test_allow_list(keys: Keys, clock: Clock) -> None:
    keyset = KeySet.from_jwks({"keys": [keys.iam.jwk()]})
    node = JwtAuthenticator(StaticKeys(keyset), allowed_uids=["logway-gateway"], clock=clock)
    gateway = keys.iam.token({"uid": "logway-gateway", "exp": NOW + 60})
    alice = keys.iam.token({"uid": "alice", "exp": NOW + 60})
    assert await node.authenticate(http_request([("Authorization", f"token={gateway}")]))
    with pytest.raises(TokenRejected) as info:
        await node.authenticate(http_request([("Authorization", f"token={alice}")]))
    assert info.value.reason == Reason.UID_NOT_ALLOWED
    assert info.value.status == 401
    assert str(info.value) == "uid not allowed"


@pytest.mark.parametrize("allowed", [None, [], ()])
async def test_empty_allow_list_admits_any_verified_uid(
    keys: Keys, clock: Clock, allowed: list[str] | None
) -> None:
    keyset = KeySet.from_jwks({"keys": [keys.iam.jwk()]})
    auth = JwtAuthenticator(StaticKeys(keyset), allowed_uids=allowed, clock=clock)
    identity = await auth.authenticate(
        http_request([("Authorization", f"token={keys.iam.token()}")])
    )
    assert identity is not None
    assert identity.uid == "alice"


class CountingVerify:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, token: UnverifiedToken, key: RS256Key, *, now: float, leeway: int) -> Claims:
        self.calls += 1
        return verify(token, key, now=now, leeway=leeway)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> CountingVerify:
    counter = CountingVerify()
    monkeypatch.setattr(authenticator_module, "verify", counter)
    return counter


async def test_cache_hit_does_not_reverify(
    auth: JwtAuthenticator, keys: Keys, counting: CountingVerify
) -> None:
    token = keys.iam.token()
    for _ in range(10):
        assert (await auth.verify(token)).uid == "alice"
    assert counting.calls == 1
    await auth.verify(keys.iam2.token())
    assert counting.calls == 2


async def test_cache_entry_expires_at_exp(
    auth: JwtAuthenticator, keys: Keys, clock: Clock, counting: CountingVerify
) -> None:
    token = keys.iam.token({"uid": "alice", "exp": NOW + 60})
    await auth.verify(token)
    clock.advance(59)
    await auth.verify(token)
    assert counting.calls == 1
    clock.advance(1)  # at exp: the cache no longer answers; verification (with leeway) does
    await auth.verify(token)
    assert counting.calls == 2
    clock.advance(MAX_LEEWAY)
    with pytest.raises(TokenRejected) as info:
        await auth.verify(token)
    assert info.value.reason == Reason.EXPIRED


async def test_cache_never_serves_a_key_that_is_gone(
    keys: Keys, clock: Clock, counting: CountingVerify
) -> None:
    source = StaticKeys(KeySet.from_jwks({"keys": [keys.iam.jwk(), keys.iam2.jwk()]}))
    auth = JwtAuthenticator(source, clock=clock)
    token = keys.iam.token()
    await auth.verify(token)
    source.keys = KeySet.from_jwks({"keys": [keys.iam2.jwk()]})  # iam-1 rotated out
    with pytest.raises(TokenRejected) as info:
        await auth.verify(token)
    assert info.value.reason == Reason.UNKNOWN_KID
    source.keys = KeySet.from_jwks({"keys": [keys.attacker.jwk(kid="iam-1")]})  # kid reused
    with pytest.raises(TokenRejected) as info:
        await auth.verify(token)
    assert info.value.reason == Reason.SIGNATURE
    assert counting.calls == 2


async def test_rejections_are_not_cached(
    auth: JwtAuthenticator, keys: Keys, clock: Clock, counting: CountingVerify
) -> None:
    token = keys.iam.token({"uid": "alice", "exp": NOW + 3600, "nbf": NOW + 600})
    with pytest.raises(TokenRejected):
        await auth.verify(token)
    clock.advance(600)
    assert (await auth.verify(token)).uid == "alice"
    assert counting.calls == 2


def test_leeway_is_bounded(keys: Keys) -> None:
    source = StaticKeys(KeySet.from_pem(keys.iam.public_pem))
    JwtAuthenticator(source, leeway=MAX_LEEWAY)
    for leeway in (MAX_LEEWAY + 1, -1, 3600):
        with pytest.raises(ValueError, match="leeway"):
            JwtAuthenticator(source, leeway=leeway)


async def test_from_pem_file(keys: Keys, tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(keys.iam.public_pem)
    auth = JwtAuthenticator.from_pem_file(path, allowed_uids={"alice"})
    token = keys.iam.token({"uid": "alice", "exp": 2**31})
    identity = await auth.authenticate(http_request([("Authorization", f"Bearer {token}")]))
    assert identity is not None
    assert identity.uid == "alice"


async def test_no_auth(keys: Keys, caplog: pytest.LogCaptureFixture) -> None:
    auth = NoAuth()
    assert "authentication is DISABLED" in caplog.text
    assert await auth.authenticate(http_request()) == Identity(uid="no-auth")
    bad = http_request([("Authorization", "Basic eA==")])
    assert await auth.authenticate(bad) == Identity(uid="no-auth")
    assert await NoAuth("operator").authenticate(bad) == Identity(uid="operator")
