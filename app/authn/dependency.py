"""FastAPI glue: turn an `Authenticator` into a dependency that yields an `Identity` or 401s.

Both failures are `LogwayError`s with status 401, which `app.core.problems` answers with
`WWW-Authenticate: acsjwt` (what the dcos CLI expects).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request

from app.authn.authenticator import Authenticator, Identity
from app.core.errors import Unauthenticated


def require_identity(authenticator: Authenticator) -> Callable[[Request], Awaitable[Identity]]:
    """`Depends(require_identity(auth))`: no credentials -> `Unauthenticated`; bad credentials
    -> `AuthenticationError` (from the authenticator); otherwise the caller's `Identity`."""

    async def identity(request: Request) -> Identity:
        found = await authenticator.authenticate(request)
        if found is None:
            raise Unauthenticated("Authentication required")
        return found

    return identity
