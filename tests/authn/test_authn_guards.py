"""Authentication guards from the attacker's side, where the mutation run (docs/mutation-report.md)
found them untested: a node reader built from a PEM file still refuses a valid token of a uid
it does not allow, a PEM key pinned to a kid still refuses other kids, a cached token whose kid
now names another key is verified again; and every size and date limit is inclusive (a
verifier that refuses one more value than it should is a fault too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.authn.authenticator import JwtAuthenticator
from app.authn.cache import VerifiedTokens
from app.authn.errors import Reason, TokenRejected
from app.authn.verification_keys import KeySet, StaticKeys
from app.authn.verify import (
    DEFAULT_LEEWAY,
    MAX_KID_LENGTH,
    MAX_NUMERIC_DATE,
    MAX_TOKEN_LENGTH,
    parse,
)
from tests.authn.conftest import Clock, Keys, http_request
from tests.authn.tokens import NOW, Signer, raw_token


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


# --- boundaries the mutation run found untested: each limit is inclusive ----------------


def keyed(keys: Keys, clock: Clock, *, leeway: int = DEFAULT_LEEWAY) -> JwtAuthenticator:
    keyset = KeySet.from_jwks({"keys": [keys.iam.jwk()]})
    return JwtAuthenticator(StaticKeys(keyset), leeway=leeway, clock=clock)


async def reason_of(auth: JwtAuthenticator, token: str) -> Reason:
    with pytest.raises(TokenRejected) as caught:
        await auth.verify(token)
    return caught.value.reason


async def test_no_leeway_is_a_valid_setting_and_means_none(keys: Keys, clock: Clock) -> None:
    strict = keyed(keys, clock, leeway=0)
    assert (await strict.verify(keys.iam.token({"uid": "alice", "exp": NOW + 1}))).uid == "alice"
    at_exp = keys.iam.token({"uid": "alice", "exp": NOW})
    assert await reason_of(strict, at_exp) == Reason.EXPIRED


async def test_a_one_character_uid_and_kid_are_accepted(keys: Keys, clock: Clock) -> None:
    short = keys.iam.token({"uid": "a", "exp": NOW + 60})
    assert (await keyed(keys, clock).verify(short)).uid == "a"
    one = Signer.generate("k")
    auth = JwtAuthenticator(StaticKeys(KeySet.from_jwks({"keys": [one.jwk()]})), clock=clock)
    assert (await auth.verify(one.token())).uid == "alice"


async def test_a_kid_of_the_longest_length_is_accepted(clock: Clock) -> None:
    longest = Signer.generate("k" * MAX_KID_LENGTH)
    assert parse(longest.token()).kid == "k" * MAX_KID_LENGTH
    auth = JwtAuthenticator(StaticKeys(KeySet.from_jwks({"keys": [longest.jwk()]})), clock=clock)
    assert (await auth.verify(longest.token())).uid == "alice"


async def test_the_last_numeric_date_is_accepted(keys: Keys, clock: Clock) -> None:
    token = keys.iam.token({"uid": "alice", "exp": MAX_NUMERIC_DATE})
    assert (await keyed(keys, clock).verify(token)).exp == MAX_NUMERIC_DATE
    over = keys.iam.token({"uid": "alice", "exp": MAX_NUMERIC_DATE + 1})
    assert await reason_of(keyed(keys, clock), over) == Reason.TIME_CLAIM


def test_a_token_of_exactly_the_size_limit_is_parsed() -> None:
    def sized(kid: int, pad: int) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": "k" * kid}
        payload = {"uid": "alice", "exp": NOW + 60, "pad": "x" * pad}
        return raw_token(header, payload, signature=b"s" * 256)

    exact = next(
        token
        for kid in range(1, 5)  # a JWS segment is never 4k+1 characters long: two knobs
        for pad in range(5000, 6500)
        if len(token := sized(kid, pad)) == MAX_TOKEN_LENGTH
    )
    assert parse(exact).kid is not None
    with pytest.raises(TokenRejected) as caught:
        parse(exact + "A")
    assert caught.value.reason == Reason.TOO_LARGE


def test_a_segment_no_base64_can_spell_is_malformed() -> None:
    # Five characters (4k+1) decode to no byte string; the regex lets them through.
    with pytest.raises(TokenRejected) as caught:
        parse("eyJhb.eyJ1aWQiOiJhIn0.c2ln")
    assert caught.value.reason == Reason.MALFORMED


async def test_a_cached_token_is_verified_again_when_its_kid_names_another_key(
    keys: Keys, clock: Clock
) -> None:
    # The IAM republishes kid iam-1 with another key (no fetch without it in between): the
    # token verified under the old key is not served from the cache, and fails its signature.
    source = StaticKeys(KeySet.from_jwks({"keys": [keys.iam.jwk()]}))
    auth = JwtAuthenticator(source, clock=clock)
    token = keys.iam.token()
    assert (await auth.verify(token)).uid == "alice"
    source.keys = KeySet.from_jwks({"keys": [keys.attacker.jwk(kid="iam-1")]})
    assert await reason_of(auth, token) == Reason.SIGNATURE
    source.keys = KeySet.from_jwks({"keys": [keys.iam.jwk()]})
    assert (await auth.verify(token)).uid == "alice"


async def test_a_signature_whose_last_character_is_x_is_canonical(clock: Clock) -> None:
    # A 3072-bit signature is 384 bytes (a multiple of 3): its last base64url character is
    # any of 64, `X` included; such a token is valid like any other (a canonical-encoding
    # check that strips more than `=` would refuse one token in 64).
    signer = Signer.generate("big", bits=3072)
    auth = JwtAuthenticator(StaticKeys(KeySet.from_jwks({"keys": [signer.jwk()]})), clock=clock)
    token = next(
        t
        for n in range(2000)
        if (t := signer.token({"uid": f"alice-{n}", "exp": NOW + 60})).endswith("X")
    )
    assert (await auth.verify(token)).uid.startswith("alice-")
