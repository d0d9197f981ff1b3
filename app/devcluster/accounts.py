"""The dev cluster's identities, made through the gateway's own IAM API as an operator would:
the superuser (the gateway makes it from its kept password), a user who may read the /dev/*
tasks' logs only, a service account reading every log with its private key on disk, and the
gateway's own service account.

Secrets are generated once and kept under the data directory (0600), so a second `make run`
logs in with the same passwords and key. An account an earlier run made (409) is brought in
line with what is on disk: its password or public key is set again, so a lost key file means a
new key, not an account nobody can log in as.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.authn.sign import TokenSigner
from app.authz.route_table import SYSTEM_LOGS_RID, TASK_APP_RID
from app.devcluster.cluster import DEV_USER, GATEWAY_UID, OPS_ACCOUNT, SUPERUSER
from app.iam.client import IamCallFailed, IamClient

SERVICE_KEY_BITS = 2048
DEV_GRANT = f"{TASK_APP_RID}:/dev"  # covers /dev/worker and /dev/batch, not /prod/web
READ = "read"


class AccountError(RuntimeError):
    pass


@dataclass(frozen=True, kw_only=True)
class Identity:
    uid: str
    token: str
    password: str | None = None  # a user's
    private_key_path: Path | None = None  # a service account's


@dataclass(frozen=True, kw_only=True)
class Identities:
    superuser: Identity
    dev: Identity
    service: Identity


def superuser_password_path(data_dir: Path) -> Path:
    return data_dir / "superuser-password"


def kept_password(path: Path) -> str:
    """Generated once and kept (0600), so every run logs in with the same password."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, secrets.token_urlsafe(12) + "\n")
    return path.read_text().strip()


def kept_private_key(path: Path) -> str:
    """The PEM public key of the RSA key kept (0600) in `path`, made if missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, _private_pem(_fresh_key()).decode())
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise AccountError(f"{path} is not an RSA private key: remove it to get a new one")
    return _public_pem(loaded.public_key()).decode()


def write_private(path: Path, text: str) -> None:
    """`text` into `path`, readable by the owner only (also when the file existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def bootstrap(
    client: httpx.Client, gateway: str, data_dir: Path, superuser_password: str
) -> Identities:
    """Every identity of the dev cluster, made or brought in line, each with a fresh token."""
    admin = Admin(client, gateway, login(client, gateway, SUPERUSER, superuser_password))
    admin.ensure_service_account(GATEWAY_UID, _public_pem(_fresh_key().public_key()).decode())

    dev_password = kept_password(data_dir / f"{DEV_USER}-password")
    admin.ensure_user(DEV_USER, "reads the /dev/* tasks' logs", password=dev_password)
    admin.grant(DEV_GRANT, DEV_USER, READ)

    key_path = data_dir / f"{OPS_ACCOUNT}-private-key.pem"
    admin.ensure_user(OPS_ACCOUNT, "reads every log", public_key=kept_private_key(key_path))
    admin.grant(SYSTEM_LOGS_RID, OPS_ACCOUNT, READ)

    dev_token = login(client, gateway, DEV_USER, dev_password)
    return Identities(
        superuser=Identity(uid=SUPERUSER, token=admin.token, password=superuser_password),
        dev=Identity(uid=DEV_USER, token=dev_token, password=dev_password),
        service=Identity(
            uid=OPS_ACCOUNT,
            token=service_login(client, gateway, OPS_ACCOUNT, key_path),
            private_key_path=key_path,
        ),
    )


def login(client: httpx.Client, gateway: str, uid: str, password: str) -> str:
    try:
        return IamClient(client, gateway).login(uid, password)
    except IamCallFailed as exc:
        raise AccountError(
            f"login as {uid!r} failed ({exc.status}): the IAM store was made with another "
            "password; remove the dev data directory to start over"
        ) from None


def service_login(client: httpx.Client, gateway: str, uid: str, private_key: Path) -> str:
    """A service account's token: a login token signed with its private key (as `dcos auth
    login --private-key` and `logway login --service-account` do)."""
    try:
        return IamClient(client, gateway).service_login(uid, TokenSigner.from_file(private_key))
    except ValueError as exc:
        raise AccountError(f"service login as {uid!r}: {exc}") from None
    except IamCallFailed as exc:
        raise AccountError(f"service login as {uid!r} failed ({exc.status}): {exc.text}") from None


class Admin:
    """IAM calls with the superuser's token, each one idempotent."""

    def __init__(self, client: httpx.Client, gateway: str, token: str) -> None:
        self._iam = IamClient(client, gateway, token=token)
        self.token = token

    def ensure_user(
        self,
        uid: str,
        description: str,
        *,
        password: str | None = None,
        public_key: str | None = None,
    ) -> None:
        """The user (password) or service account (public key), with exactly these secrets."""
        body = {"description": description}
        body |= {"password": password} if password is not None else {}
        body |= {"public_key": public_key} if public_key is not None else {}
        with _as_account_error():
            if not self._iam.put_user(uid, body):
                self._iam.patch_user(uid, body)

    def ensure_service_account(self, uid: str, public_key: str) -> None:
        """A service account nobody logs in as: one an earlier run made is left as it is."""
        body = {"description": "the gateway towards node readers", "public_key": public_key}
        with _as_account_error():
            self._iam.put_user(uid, body)

    def grant(self, rid: str, uid: str, action: str) -> None:
        with _as_account_error():
            self._iam.grant(rid, uid, action)


@contextlib.contextmanager
def _as_account_error() -> Iterator[None]:
    try:
        yield
    except IamCallFailed as exc:
        raise AccountError(str(exc)) from None


def _fresh_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=SERVICE_KEY_BITS)


def _private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_pem(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
