"""`logway login` and `logway iam` against a real gateway with the embedded IAM."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.gateway import gateway

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with gateway(tmp_path_factory.mktemp("gw"), password=PASSWORD) as url:
        yield url


@pytest.fixture
def config_home(tmp_path: Path) -> Path:
    return tmp_path / "config"


def logway(config_home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home)}
    return subprocess.run(
        [sys.executable, "-m", "app.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def login_admin(base: str, config_home: Path) -> None:
    ok(
        logway(
            config_home,
            "login",
            "--url",
            base,
            "--username",
            "admin",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
    )


def test_login_stores_the_token_privately(base: str, config_home: Path) -> None:
    login_admin(base, config_home)
    creds = config_home / "logway" / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert PASSWORD not in creds.read_text()


def test_wrong_password_is_denied_with_exit_3(base: str, config_home: Path) -> None:
    r = logway(
        config_home,
        "login",
        "--url",
        base,
        "--username",
        "admin",
        "--password-stdin",
        stdin="nope\n",
    )
    assert r.returncode == 3
    assert "401" in r.stderr


def test_users_groups_grants_and_permissions(base: str, config_home: Path) -> None:
    login_admin(base, config_home)
    ok(
        logway(
            config_home, "iam", "user", "add", "bob", "--password-stdin", stdin="bob-password-1\n"
        )
    )
    assert "bob" in ok(logway(config_home, "iam", "user", "list"))
    ok(logway(config_home, "iam", "group", "add", "devs"))
    ok(logway(config_home, "iam", "group", "add-user", "devs", "bob"))
    assert "devs" in ok(logway(config_home, "iam", "group", "list"))
    rid = "dcos:mesos:agent:task:app_id:/dev"
    ok(logway(config_home, "iam", "grant", "group:devs", rid, "read"))
    ok(logway(config_home, "iam", "grant", "bob", "dcos:adminrouter:ops:system-logs", "read"))
    perms = ok(logway(config_home, "iam", "permissions", "bob"))
    assert rid in perms
    assert "dcos:adminrouter:ops:system-logs" in perms
    ok(logway(config_home, "iam", "revoke", "group:devs", rid, "read"))
    assert rid not in ok(logway(config_home, "iam", "permissions", "bob"))
    # bob is no superuser: administration is denied with exit code 3.
    bob_home = config_home.parent / "bob"
    ok(
        logway(
            bob_home,
            "login",
            "--url",
            base,
            "--username",
            "bob",
            "--password-stdin",
            stdin="bob-password-1\n",
        )
    )
    denied = logway(bob_home, "iam", "user", "list")
    assert denied.returncode == 3
    assert "403" in denied.stderr
    ok(logway(config_home, "iam", "user", "delete", "bob"))
    ok(logway(config_home, "iam", "group", "delete", "devs"))
    assert "bob" not in ok(logway(config_home, "iam", "user", "list"))


def test_service_account_login_with_its_key(base: str, config_home: Path, tmp_path: Path) -> None:
    login_admin(base, config_home)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = tmp_path / "svc.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = tmp_path / "svc.pub.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    ok(
        logway(
            config_home, "iam", "service-account", "add", "svc-reader", "--public-key", str(public)
        )
    )
    assert "svc-reader" in ok(logway(config_home, "iam", "service-account", "list"))
    svc_home = tmp_path / "svc-home"
    out = ok(
        logway(
            svc_home,
            "login",
            "--url",
            base,
            "--service-account",
            "svc-reader",
            "--private-key",
            str(private),
        )
    )
    assert "svc-reader" in out


def test_rotate_keys_keeps_existing_logins_valid(base: str, config_home: Path) -> None:
    login_admin(base, config_home)
    ok(logway(config_home, "iam", "rotate-keys"))
    # The token issued before the rotation still works.
    assert "admin" in ok(logway(config_home, "iam", "user", "list"))


def test_no_url_is_a_usage_error(config_home: Path) -> None:
    r = logway(config_home, "iam", "user", "list")
    assert r.returncode == 2
    assert "--url" in r.stderr
