"""`SigningKeys`: what the token issuer, the verifier and login need of a key ring, whichever
keeps it — files on one host (key_ring.py `KeyRing`) or the shared database (stored_keys.py)."""

from __future__ import annotations

from typing import Protocol

from app.iam.key_ring import SigningKey


class SigningKeys(Protocol):
    @property
    def current(self) -> SigningKey: ...

    def published(self) -> list[SigningKey]:
        """The current key first, then retired keys whose tokens may still be unexpired."""
        ...

    def jwks(self) -> dict[str, list[dict[str, str]]]: ...

    async def refresh(self, *, force: bool = False) -> None:
        """Pick up another worker's or replica's rotation."""
        ...
