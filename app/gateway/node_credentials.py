"""The gateway's credential towards each node reader: minted for that node alone.

A token for the gateway's service uid with `aud` = the reader's address (app/core/audience.py),
cached per node and renewed before it expires. Embedded IAM: signed here, living
`node_token_lifetime` seconds, renewed at half of it or after a key rotation (`ServiceToken`).
Remote IAM: a service login per node whose login token names the audience; a Logway IAM answers
a token addressed to it (`app.iam.login`). A node that receives one can replay it only against
itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from app.gateway.service_token import ServiceToken
from app.iam.tokens import TokenIssuer

# Beyond this many nodes the oldest credential is forgotten (and minted again when that node
# is next read); bounds memory whatever the Mesos state lists.
MAX_NODES = 10_000


class Credential(Protocol):
    async def __call__(self) -> str: ...


class PerAudience:
    """`await tokens(audience)` -> the credential addressed to `audience`, made by `make` once
    and kept (at most MAX_NODES)."""

    def __init__(self, make: Callable[[str], Credential]) -> None:
        self._make = make
        self._tokens: dict[str, Credential] = {}

    async def __call__(self, audience: str) -> str:
        token = self._tokens.get(audience)
        if token is None:
            if len(self._tokens) >= MAX_NODES:
                del self._tokens[next(iter(self._tokens))]
            token = self._tokens[audience] = self._make(audience)
        return await token()

    def __len__(self) -> int:
        return len(self._tokens)


def embedded_node_tokens(
    issuer: TokenIssuer, uid: str, *, lifetime: int, clock: Callable[[], float] = time.time
) -> PerAudience:
    return PerAudience(
        lambda audience: ServiceToken(
            issuer, uid, audience=audience, lifetime=lifetime, clock=clock
        )
    )
