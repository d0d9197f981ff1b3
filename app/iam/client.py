"""The IAM's HTTP API (reference §5) as the tools that call it see it: `logway login`, `logway
iam`, the dev cluster's accounts and the bench log in, make users and grant through this one
client, over
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
JWKS_PATH = f"{API}/auth/jwks"
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

    def delete_user(self, uid: str) -> None:
        self.call("DELETE", user_path(uid), None, NO_CONTENT)

    def users(self, *, services: bool) -> list[dict[str, Any]]:
        """The users (`services=False`) or the service accounts."""
        params = "?type=service" if services else ""
        rows = _rows(self.call("GET", f"{API}/users{params}", None).json())
        return [r for r in rows if bool(r.get("is_service") or r.get("public_key")) == services]

    def put_group(self, gid: str, description: str) -> None:
        self.call("PUT", group_path(gid), {"description": description}, CREATED)

    def delete_group(self, gid: str) -> None:
        self.call("DELETE", group_path(gid), None, NO_CONTENT)

    def groups(self) -> list[dict[str, Any]]:
        return _rows(self.call("GET", f"{API}/groups", None).json())

    def add_member(self, gid: str, uid: str) -> None:
        self.call("PUT", f"{group_path(gid)}/users/{quote(uid, safe='')}", None, NO_CONTENT)

    def remove_member(self, gid: str, uid: str) -> None:
        self.call("DELETE", f"{group_path(gid)}/users/{quote(uid, safe='')}", None, NO_CONTENT)

    def grant(self, rid: str, uid: str, action: str, *, to: str = "users") -> None:
        """`uid` (a group's gid with `to="groups"`) may `action` on `rid` (the ACL made if
        missing); granting twice is no error."""
        self.call("PUT", acl_path(rid), {"description": rid}, CREATED, CONFLICT)
        self.call("PUT", grant_path(rid, uid, action, to), None, NO_CONTENT, CONFLICT)

    def revoke(self, rid: str, uid: str, action: str, *, to: str = "users") -> None:
        self.call("DELETE", grant_path(rid, uid, action, to), None, NO_CONTENT)

    def permissions(self, uid: str) -> dict[str, list[dict[str, Any]]]:
        """`uid`'s grants: `direct` and through its `groups`."""
        answer: dict[str, list[dict[str, Any]]] = self.call(
            "GET", f"{user_path(uid)}/permissions", None
        ).json()
        return answer

    def rotate_keys(self) -> None:
        self.call("POST", f"{API}/auth/rotate-keys", None, OK, CREATED, NO_CONTENT)

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


def group_path(gid: str) -> str:
    return f"{API}/groups/{quote(gid, safe='')}"


def acl_path(rid: str) -> str:
    return f"{API}/acls/{rid_path(rid)}"


def grant_path(rid: str, name: str, action: str, to: str) -> str:
    if to not in ("users", "groups"):
        raise ValueError(f"grants go to users or groups, not {to!r}")
    return f"{acl_path(rid)}/{to}/{quote(name, safe='')}/{action}"


def _rows(answer: Any) -> list[dict[str, Any]]:
    """A list answer, bare or in DC/OS's `{"array": [...]}`."""
    rows = answer.get("array", answer) if isinstance(answer, dict) else answer
    return list(rows or [])
