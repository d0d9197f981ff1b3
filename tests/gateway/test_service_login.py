"""The gateway's token from a remote IAM (`RemoteServiceToken`): one service login, reused,
renewed at half its life, replaced when the IAM stops publishing its key, kept through a
failed renewal; and the key it logs in with (`TokenSigner`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwt

from app.authn import Claims, Reason, TokenRejected
from app.authn.sign import LOGIN_TOKEN_LIFETIME, TokenSigner
from app.core.errors import Unavailable
from app.gateway.service_login import RETRY_INTERVAL, RemoteServiceToken
from tests.authn.tokens import Signer
from tests.support.fake_iam import FakeIam

UID = "logway-gateway"
LIFETIME = 3600


SIGNER = Signer.generate("unused")


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Tokens:
    """The IAM's tokens here: logins answer `"<uid>|<exp>|<n>"` (n counts logins), the verifier
    reads them back; `unpublished` tokens fail verification as with a key the IAM dropped."""

    clock: Clock
    iam: FakeIam
    uid: str = UID
    unpublished: set[str] = field(default_factory=set)

    def issue(self, _: str) -> str:
        exp = int(self.clock()) + LIFETIME
        return f"{self.uid}|{exp}|{len(self.iam.logins)}"

    async def verify(self, token: str) -> Claims:
        uid, exp, _ = token.split("|")
        if token in self.unpublished:
            raise TokenRejected(Reason.UNKNOWN_KID)
        if self.clock() >= int(exp):
            raise TokenRejected(Reason.EXPIRED)
        return Claims(uid=uid, exp=int(exp))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def iam() -> FakeIam:
    return FakeIam()


@pytest.fixture
def tokens(iam: FakeIam, clock: Clock) -> Tokens:
    tokens = Tokens(clock, iam)
    iam.issue = tokens.issue
    return tokens


@pytest.fixture
async def token(tokens: Tokens, iam: FakeIam, clock: Clock) -> AsyncIterator[RemoteServiceToken]:
    key = TokenSigner.from_pem(SIGNER.private_pem, source="test key")
    async with httpx.AsyncClient(transport=iam.transport()) as client:
        yield RemoteServiceToken(
            "http://iam.test/",
            UID,
            key,
            client=client,
            verifier=tokens,
            clock=clock,
            monotonic=clock,  # one fake clock for both
        )


async def test_one_login_reused_then_renewed_at_half_life(
    token: RemoteServiceToken, iam: FakeIam, clock: Clock
) -> None:
    first = await token()
    assert first.endswith("|1")
    clock.now += LIFETIME * 0.5 - 1
    assert await token() == first
    clock.now += 2
    second = await token()
    assert second.endswith("|2")
    assert len(iam.logins) == 2
    token.invalidate()
    assert (await token()).endswith("|3")


async def test_the_login_is_a_service_login_signed_with_the_key(
    token: RemoteServiceToken, iam: FakeIam, clock: Clock
) -> None:
    await token()
    (body,) = iam.logins
    assert body["uid"] == UID
    # The fake clock is in 1970: the signature is checked, not the expiry against today.
    claims = jwt.decode(
        body["token"],
        SIGNER.public_pem.decode(),
        algorithms=["RS256"],
        options={"verify_exp": False},
    )
    assert claims == {"uid": UID, "exp": int(clock.now) + LOGIN_TOKEN_LIFETIME}
    assert jwt.get_unverified_header(body["token"]) == {"alg": "RS256", "typ": "JWT"}


async def test_concurrent_callers_share_one_login(token: RemoteServiceToken, iam: FakeIam) -> None:
    tokens = await asyncio.gather(*(token() for _ in range(20)))
    assert set(tokens) == {tokens[0]}
    assert len(iam.logins) == 1


async def test_a_token_whose_key_the_iam_dropped_is_replaced_at_once(
    token: RemoteServiceToken, iam: FakeIam, tokens: Tokens
) -> None:
    first = await token()
    tokens.unpublished.add(first)
    second = await token()
    assert second != first
    assert len(iam.logins) == 2


async def test_a_failed_renewal_keeps_the_valid_token_and_retries_later(
    token: RemoteServiceToken, iam: FakeIam, clock: Clock
) -> None:
    first = await token()
    clock.now += LIFETIME * 0.75
    iam.down = True
    assert await token() == first
    clock.now += RETRY_INTERVAL / 2
    assert await token() == first  # no new attempt before the retry interval
    iam.down = False
    assert await token() == first
    assert len(iam.logins) == 1
    clock.now += RETRY_INTERVAL
    assert (await token()).endswith("|2")


async def test_no_token_at_all_is_503_and_the_iam_is_not_hammered(
    token: RemoteServiceToken, iam: FakeIam, clock: Clock
) -> None:
    iam.status = 401
    with pytest.raises(Unavailable, match="service login at the IAM failed: HTTP 401"):
        await token()
    with pytest.raises(Unavailable):
        await token()
    assert len(iam.logins) == 1
    clock.now += RETRY_INTERVAL
    iam.status = 200
    assert (await token()).endswith("|2")


async def test_an_expired_token_is_never_handed_out(
    token: RemoteServiceToken, iam: FakeIam, clock: Clock
) -> None:
    await token()
    iam.down = True
    clock.now += LIFETIME + 1
    with pytest.raises(Unavailable, match="cannot reach the IAM"):
        await token()


async def test_a_token_for_another_uid_is_refused(
    token: RemoteServiceToken, tokens: Tokens
) -> None:
    tokens.uid = "someone-else"
    with pytest.raises(Unavailable, match="another uid"):
        await token()


def test_the_key_must_be_an_unencrypted_rsa_key_of_2048_bits(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an unencrypted PEM private key"):
        TokenSigner.from_pem(b"-----BEGIN NONSENSE-----", source="k")
    encrypted = SIGNER.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ValueError, match="not an unencrypted PEM private key"):
        TokenSigner.from_pem(encrypted, source="k")
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="not an RSA private key"):
        TokenSigner.from_pem(ec_pem, source="k")
    with pytest.raises(ValueError, match="1024 bits"):
        TokenSigner.from_pem(Signer.generate("small", bits=1024).private_pem, source="k")
    with pytest.raises(ValueError, match="cannot read"):
        TokenSigner.from_file(tmp_path / "missing.pem")
    path = tmp_path / "key.pem"
    path.write_bytes(SIGNER.private_pem)
    assert TokenSigner.from_file(path).login_token(UID, now=0)
