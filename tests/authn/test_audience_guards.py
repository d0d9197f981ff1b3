"""Addressed tokens from the attacker's side (issue 12 §2; issue 20's mutation run found these
lines tested only end to end): a token addressed to a node reader or to Mesos is refused by
every verifier built without that audience (the gateway's), a verifier built for one reader
accepts that reader's tokens only, and an `aud` that is not one printable string is refused
before anyone compares it.

The end-to-end forms are in tests/node/test_auth.py (a real reader) and tests/gateway/
test_logs.py (a rogue agent's token at the gateway and at another reader)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.authn.authenticator import Identity, JwtAuthenticator
from app.authn.errors import Reason, TokenRejected
from app.authn.verification_keys import KeySet, StaticKeys
from app.authn.verify import MAX_AUDIENCE_LENGTH
from tests.authn.conftest import Clock, Keys, http_request
from tests.authn.tokens import NOW
from tests.support.fake_iam import FakeIam

NODE = "logway-node:10.0.4.7:61001"
GATEWAY_UID = "logway-gateway"


def token(keys: Keys, aud: Any = None) -> str:
    claims: dict[str, Any] = {"uid": GATEWAY_UID, "exp": NOW + 300}
    if aud is not None:
        claims["aud"] = aud
    return keys.iam.token(claims)


def built(keys: Keys, clock: Clock, audience: str | None) -> JwtAuthenticator:
    keyset = KeySet.from_jwks({"keys": [keys.iam.jwk()]})
    return JwtAuthenticator(StaticKeys(keyset), audience=audience, clock=clock)


async def admitted(auth: JwtAuthenticator, token: str) -> Identity:
    identity = await auth.authenticate(http_request([("Authorization", f"token={token}")]))
    assert identity is not None
    return identity


async def refused(auth: JwtAuthenticator, token: str) -> Reason:
    with pytest.raises(TokenRejected) as caught:
        await auth.authenticate(http_request([("Authorization", f"token={token}")]))
    return caught.value.reason


@pytest.mark.parametrize("aud", [NODE, "logway-mesos", "anyone"])
async def test_a_verifier_without_an_audience_refuses_every_addressed_token(
    keys: Keys, clock: Clock, aud: str
) -> None:
    # The gateway's verifier: a node's credential, replayed there, is no credential.
    gateway = built(keys, clock, None)
    assert await refused(gateway, token(keys, aud)) == Reason.AUDIENCE
    assert (await admitted(gateway, token(keys))).uid == GATEWAY_UID


@pytest.mark.parametrize(
    "aud",
    [None, "logway-node:10.0.4.8:61001", "logway-mesos", NODE[:-1], NODE + "0", NODE.upper()],
    ids=["unaddressed", "another-node", "mesos", "prefix", "longer", "other-case"],
)
async def test_a_readers_verifier_accepts_its_own_address_only(
    keys: Keys, clock: Clock, aud: str | None
) -> None:
    reader = built(keys, clock, NODE)
    assert await refused(reader, token(keys, aud)) == Reason.AUDIENCE
    identity = await admitted(reader, token(keys, NODE))
    assert identity.uid == GATEWAY_UID


async def test_a_reader_from_a_pem_file_is_bound_to_its_audience(
    keys: Keys, tmp_path: Path
) -> None:
    path = tmp_path / "iam.pem"
    path.write_bytes(keys.iam.public_pem)
    reader = JwtAuthenticator.from_pem_file(path, allowed_uids={GATEWAY_UID}, audience=NODE)
    claims = {"uid": GATEWAY_UID, "exp": 2**31}
    assert await refused(reader, keys.iam.token(claims)) == Reason.AUDIENCE
    assert (await admitted(reader, keys.iam.token(claims | {"aud": NODE}))).uid == GATEWAY_UID


@pytest.fixture
async def jwks_client() -> AsyncIterator[tuple[FakeIam, httpx.AsyncClient]]:
    iam = FakeIam(url="http://iam.test")
    async with httpx.AsyncClient(transport=iam.transport()) as client:
        yield iam, client


async def test_a_reader_from_a_jwks_url_is_bound_to_its_audience(
    keys: Keys, jwks_client: tuple[FakeIam, httpx.AsyncClient]
) -> None:
    iam, client = jwks_client
    iam.jwks = {"keys": [keys.iam.jwk()]}
    reader = JwtAuthenticator.from_jwks_url(
        iam.jwks_url, client=client, allowed_uids={GATEWAY_UID}, audience=NODE
    )
    claims = {"uid": GATEWAY_UID, "exp": 2**31}
    assert await refused(reader, keys.iam.token(claims)) == Reason.AUDIENCE
    assert (await admitted(reader, keys.iam.token(claims | {"aud": NODE}))).uid == GATEWAY_UID


@pytest.mark.parametrize(
    "aud",
    [
        [NODE],  # RFC 7519 allows an array; a Logway credential names one audience
        7,
        True,
        {"node": NODE},
        "",
        "n" * (MAX_AUDIENCE_LENGTH + 1),
        NODE + "\n",
        "logway-node:\u202e10.0.4.7:61001",  # a bidi override
    ],
    ids=["array", "number", "bool", "object", "empty", "too-long", "newline", "bidi"],
)
async def test_an_aud_that_is_not_one_printable_string_is_refused(
    keys: Keys, clock: Clock, aud: object
) -> None:
    # Refused by the verification itself (`verify`, no audience compared), so nothing that
    # reads Claims.aud ever sees one (a service login token's, app/iam/login.py).
    with pytest.raises(TokenRejected) as caught:
        await built(keys, clock, None).verify(token(keys, aud))
    assert caught.value.reason == Reason.AUDIENCE


@pytest.mark.parametrize("aud", ["n", "n" * MAX_AUDIENCE_LENGTH], ids=["one", "longest"])
async def test_the_audience_length_bounds_are_inclusive(keys: Keys, clock: Clock, aud: str) -> None:
    reader = built(keys, clock, aud)
    assert (await reader.verify(token(keys, aud))).aud == aud
    assert (await admitted(reader, token(keys, aud))).uid == GATEWAY_UID
