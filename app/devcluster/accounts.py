"""The dev cluster's IAM accounts: the superuser's kept password, and the gateway's service
account, made through the gateway's own IAM API as an operator would."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SERVICE_KEY_BITS = 2048


class AccountError(RuntimeError):
    pass


def superuser_password(path: Path) -> str:
    """Generated once and kept (0600), so `make run` logs in with the same password each time."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(12) + "\n")
    return path.read_text().strip()


def write_private(path: Path, text: str) -> None:
    """`text` into `path`, readable by the owner only (also when the file existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def login(client: httpx.Client, gateway: str, uid: str, password: str) -> str:
    r = client.post(f"{gateway}/acs/api/v1/auth/login", json={"uid": uid, "password": password})
    if r.status_code != 200:
        raise AccountError(
            f"login as {uid!r} failed ({r.status_code}): the IAM store was made with another "
            "password; remove the dev data directory to start over"
        )
    token: str = r.json()["token"]
    return token


def ensure_service_account(client: httpx.Client, gateway: str, admin_token: str, uid: str) -> None:
    """The gateway's service account, so the IAM lists the uid its node-reader tokens carry.

    The gateway signs those tokens itself with the IAM's keys; nobody needs to log in as this
    account, so its private key is never kept."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=SERVICE_KEY_BITS)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    r = client.put(
        f"{gateway}/acs/api/v1/users/{uid}",
        json={"description": "the gateway towards node readers", "public_key": pem.decode()},
        headers={"Authorization": f"token={admin_token}"},
    )
    if r.status_code not in (201, 409):  # 409: made by an earlier run
        raise AccountError(f"creating service account {uid!r} failed ({r.status_code}): {r.text}")
