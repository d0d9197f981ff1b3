"""The forwarder's identity toward the gateway: a token as given (`LOGWAY_TOKEN`, a stored
login), or a service account that logs in with its key as `logway login` does and logs in
again before the token expires and whenever the gateway says it has (the key signs a
service login token with `app.authn.sign`, as `logway login --service-account` does)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Protocol

import httpx
from jose import jwt
from jose.exceptions import JOSEError

from app.authn.sign import TokenSigner

LOGIN_PATH = "/acs/api/v1/auth/login"
RENEW_BEFORE = 120.0  # seconds before `exp`


class LoginRefused(Exception):
    pass


class Credential(Protocol):
    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]: ...

    async def renew(self, client: httpx.AsyncClient) -> bool:
        """After a 401: True when a fresh token was obtained (worth trying again)."""
        ...


class StaticToken:
    def __init__(self, token: str | None) -> None:
        self._headers = {"Authorization": f"token={token}"} if token else {}

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        return self._headers

    async def renew(self, client: httpx.AsyncClient) -> bool:
        return False


class ServiceAccount:
    def __init__(self, uid: str, private_key: Path) -> None:
        self.uid = uid
        self.private_key = private_key
        self._signer: TokenSigner | None = None  # loaded at the first login
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        if self._token is None or time.time() > self._expires - RENEW_BEFORE:
            async with self._lock:
                if self._token is None or time.time() > self._expires - RENEW_BEFORE:
                    await self._login(client)
        return {"Authorization": f"token={self._token}"}

    async def renew(self, client: httpx.AsyncClient) -> bool:
        async with self._lock:
            await self._login(client)
        return True

    async def _login(self, client: httpx.AsyncClient) -> None:
        if self._signer is None:
            try:
                self._signer = TokenSigner.from_file(self.private_key)
            except ValueError as exc:  # unreadable, not a PEM, not RSA, too short
                raise LoginRefused(f"service account key: {exc}") from exc
        body = {"uid": self.uid, "token": self._signer.login_token(self.uid, now=time.time())}
        response = await client.post(LOGIN_PATH, json=body)
        if response.status_code != 200:
            raise LoginRefused(
                f"the gateway refused the login of {self.uid} ({response.status_code}): "
                f"{response.text.strip()[:300]}"
            )
        token = response.json().get("token")
        if not isinstance(token, str):
            raise LoginRefused("the gateway's login answer has no token")
        self._token = token
        try:
            exp = jwt.get_unverified_claims(token).get("exp")
        except JOSEError:
            exp = None
        self._expires = float(exp) if isinstance(exp, int | float) else time.time() + 3600
