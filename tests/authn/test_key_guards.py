"""Key loading from the attacker's side, where the mutation run (docs/mutation-report.md)
found it untested: one unusable key in a JWKS (first, even) never costs the others; a JWK
without `use` or `alg` is a signing key for RS256 as RFC 7517 allows; a `kid` is 1 to
MAX_KID_LENGTH characters, and an empty one is skipped; the key count limit is exact."""

from __future__ import annotations

from typing import Any

import pytest

from app.authn.errors import KeyLoadError
from app.authn.verification_keys import MAX_JWKS_KEYS, KeySet
from app.authn.verify import MAX_KID_LENGTH
from tests.authn.conftest import Keys


def jwks(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(entries)}


def test_a_bad_first_key_never_costs_the_good_ones(keys: Keys) -> None:
    broken = keys.iam.jwk(kid="broken", n="!!")
    keyset = KeySet.from_jwks(jwks(broken, keys.iam.jwk()))
    assert keyset.select(keys.iam.kid) is not None
    assert keyset.select("broken") is None


def test_use_and_alg_may_be_left_out(keys: Keys) -> None:
    entry = {k: v for k, v in keys.iam.jwk().items() if k not in ("use", "alg")}
    assert KeySet.from_jwks(jwks(entry)).select(keys.iam.kid) is not None
    for bad in ({"use": "enc"}, {"alg": "HS256"}):
        with pytest.raises(KeyLoadError):
            KeySet.from_jwks(jwks(keys.iam.jwk(**bad)))


@pytest.mark.parametrize("kid", ["k", "k" * MAX_KID_LENGTH])
def test_a_kid_of_one_to_the_limit_is_kept(keys: Keys, kid: str) -> None:
    assert KeySet.from_jwks(jwks(keys.iam.jwk(kid=kid))).select(kid) is not None


@pytest.mark.parametrize("kid", ["", "k" * (MAX_KID_LENGTH + 1)])
def test_an_empty_or_overlong_kid_is_skipped(keys: Keys, kid: str) -> None:
    with pytest.raises(KeyLoadError):
        KeySet.from_jwks(jwks(keys.iam.jwk(kid=kid)))


def test_the_key_count_limit_is_exact(keys: Keys) -> None:
    entries = [keys.iam.jwk(kid=f"k{i}") for i in range(MAX_JWKS_KEYS)]
    assert KeySet.from_jwks(jwks(*entries)).select("k0") is not None
    with pytest.raises(KeyLoadError, match="limit"):
        KeySet.from_jwks(jwks(*entries, keys.iam.jwk(kid="one-more")))
