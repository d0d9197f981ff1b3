from __future__ import annotations

import pytest

from app.authn.cache import VerifiedTokens
from app.authn.verify import Claims, RS256Key
from tests.authn.conftest import Keys
from tests.authn.tokens import NOW


@pytest.fixture
def key(keys: Keys) -> RS256Key:
    return RS256Key(keys.iam.private_key.public_key())


def claims(uid: str = "alice", exp: int = NOW + 60) -> Claims:
    return Claims(uid=uid, exp=exp)


def test_hit_until_exp(key: RS256Key) -> None:
    cache = VerifiedTokens()
    cache.put("t", key=key, claims=claims())
    assert cache.get("t", key=key, now=NOW) == claims()
    assert cache.get("t", key=key, now=NOW + 59.9) == claims()
    assert cache.get("t", key=key, now=NOW + 60) is None
    assert len(cache) == 0  # the expired entry is gone, not just hidden
    assert cache.get("other", key=key, now=NOW) is None


def test_entry_dies_with_its_key(keys: Keys, key: RS256Key) -> None:
    cache = VerifiedTokens()
    cache.put("t", key=key, claims=claims())
    rotated = RS256Key(keys.iam2.private_key.public_key())
    assert cache.get("t", key=rotated, now=NOW) is None
    assert cache.get("t", key=key, now=NOW) is None
    # An equal key (a JWKS refresh rebuilds the objects) keeps the entry.
    cache.put("t", key=key, claims=claims())
    same = RS256Key(keys.iam.private_key.public_key())
    assert cache.get("t", key=same, now=NOW) == claims()


def test_lru_bound(key: RS256Key) -> None:
    cache = VerifiedTokens(max_entries=3)
    for name in "abc":
        cache.put(name, key=key, claims=claims(name))
    assert cache.get("a", key=key, now=NOW) is not None  # a is now most recent
    cache.put("d", key=key, claims=claims("d"))
    assert len(cache) == 3
    assert cache.get("b", key=key, now=NOW) is None
    assert [cache.get(n, key=key, now=NOW) for n in "acd"] == [claims(n) for n in "acd"]


def test_size_zero_disables(key: RS256Key) -> None:
    cache = VerifiedTokens(max_entries=0)
    cache.put("t", key=key, claims=claims())
    assert cache.get("t", key=key, now=NOW) is None
    with pytest.raises(ValueError, match=">= 0"):
        VerifiedTokens(max_entries=-1)
