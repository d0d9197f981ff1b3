"""The IAM's HTTP API (reference §5) as the tools that call it see it: `logway login`, the dev
cluster's accounts and the bench log in, make users and grant through this one client, over
the gateway's `/acs/api/v1` or any DC/OS-compatible IAM.

Synchronous, over an `httpx.Client` the caller owns (and closes). A status the call did not
expect is `IamCallFailed`, naming the call and the status; transport errors propagate as httpx
raises them.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx

from app.authn.sign import TokenSigner
from app.authz.resource import rid_path

API = "/acs/api/v1"
LOGIN_PATH = f"{API}/auth/login"
OK, CREATED, NO_CONTENT, CONFLICT = 200, 201, 204, 409


class IamCallFailed(Exception):
    def __init__(self, method: str, path: str, status: int, text: str) -> None:
        super().__init__(f"{method} {path} failed ({status}): {text}")
        self.status = status
        self.text = text


class IamClient:
    def __init__(self, http: httpx.Client, base_url: str = "", *, token: str | None = None):
        """`base_url` is the gateway or IAM ("" when `http` has a base URL of its own)."""
        self._http = http
        self._base = base_url.rstrip("/")
        self.token = token

    def authenticated(self, token: str) -> IamClient:
        """The same IAM, called as the holder of `token`."""
        return IamClient(self._http, self._base, token=token)

    def login(self, uid: str, password: str) -> str:
        """A user's auth token for a password."""
        return self._token(self.call("POST", LOGIN_PATH, {"uid": uid, "password": password}))

    def service_login(self, uid: str, signer: TokenSigner) -> str:
        """A service account's auth token, for a login token signed with its private key (as
        `dcos auth login --private-key` does)."""
        body = {"uid": uid, "token": signer.login_token(uid, now=time.time())}
        return self._token(self.call("POST", LOGIN_PATH, body))

    def put_user(self, uid: str, body: dict[str, str]) -> bool:
        """Make a user (`password`) or service account (`public_key`); False if it exists."""
        return self.call("PUT", user_path(uid), body, CREATED, CONFLICT).status_code == CREATED

    def patch_user(self, uid: str, body: dict[str, str]) -> None:
        self.call("PATCH", user_path(uid), body, NO_CONTENT)

    def grant(self, rid: str, uid: str, action: str) -> None:
        """`uid` may `action` on `rid` (the ACL made if missing); granting twice is no error."""
        acl = acl_path(rid)
        self.call("PUT", acl, {"description": rid}, CREATED, CONFLICT)
        self.call("PUT", f"{acl}/users/{quote(uid, safe='')}/{action}", None, NO_CONTENT, CONFLICT)

    def call(self, method: str, path: str, body: Any, *expected: int) -> httpx.Response:
        """One call of the API; a status outside `expected` (default 200) is `IamCallFailed`."""
        headers = {"Authorization": f"token={self.token}"} if self.token is not None else {}
        response = self._http.request(method, self._base + path, json=body, headers=headers)
        if response.status_code not in (expected or (OK,)):
            raise IamCallFailed(method, path, response.status_code, response.text)
        return response

    @staticmethod
    def _token(response: httpx.Response) -> str:
        token: str = response.json()["token"]
        return token


def user_path(uid: str) -> str:
    return f"{API}/users/{quote(uid, safe='')}"


def acl_path(rid: str) -> str:
    return f"{API}/acls/{rid_path(rid)}"
