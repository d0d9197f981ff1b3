"""A bounded cache of positive verification results, so a follower's reconnects and a gateway's
many calls with one token cost one RSA verification.

Keyed on a digest of the whole token, which is safe only because an entry is only ever a
*positive* result for those exact bytes: any other spelling of a token is a miss and is verified
in full. It must never be used for revocation, deny lists or dedupe: one token can have several
valid byte strings (ECDSA `(r, n-s)`, non-canonical base64; security.md J20). Entries die at the
token's `exp` and are dropped if the key that verified them is no longer the key for their `kid`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from app.authn.verify import Claims, RS256Key

DEFAULT_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Verified:
    claims: Claims
    key: RS256Key
    kid: str | None


class VerifiedTokens:
    """LRU of `token -> (claims, key)`, valid until the token's `exp`."""

    def __init__(self, max_entries: int = DEFAULT_CACHE_SIZE) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self._max = max_entries
        self._entries: OrderedDict[bytes, Verified] = OrderedDict()

    def lookup(self, token: str, *, now: float) -> Verified | None:
        """The entry for these exact bytes while unexpired; the caller still checks that
        `entry.key` is the current key for `entry.kid`."""
        digest = _digest(token)
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if now >= entry.claims.exp:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return entry

    def get(self, token: str, *, key: RS256Key, now: float) -> Claims | None:
        entry = self.lookup(token, now=now)
        if entry is None:
            return None
        if entry.key != key:
            self.discard(token)
            return None
        return entry.claims

    def discard(self, token: str) -> None:
        self._entries.pop(_digest(token), None)

    def put(self, token: str, *, key: RS256Key, claims: Claims, kid: str | None = None) -> None:
        if self._max == 0:
            return
        digest = _digest(token)
        self._entries[digest] = Verified(claims, key, kid)
        self._entries.move_to_end(digest)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()
