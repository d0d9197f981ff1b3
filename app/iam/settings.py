"""Settings of the embedded IAM. Environment variables use the LOGWAY_IAM_ prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# DC/OS: EXPIRATION_AUTH_TOKEN_DAYS = 5 (reference/dcos-logs-api.md §5).
DEFAULT_TOKEN_LIFETIME = 5 * 24 * 3600
DEFAULT_SUPERUSER_UID = "admin"


class IamSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOGWAY_IAM_", frozen=True)

    # SQLite file shared by every gateway worker on the host (created on first run).
    db_path: Path
    # Signing keys (private keys mode 0600); shared by the workers like the database.
    keys_dir: Path
    token_lifetime: int = Field(default=DEFAULT_TOKEN_LIFETIME, gt=0)
    # Clock skew tolerated on service login tokens (exp, nbf, iat), as for auth tokens.
    leeway: int = Field(default=30, ge=0, le=60)
    # First superuser, created when the store is empty; no password = one is generated.
    superuser_uid: str = Field(default=DEFAULT_SUPERUSER_UID, pattern=r"^[a-zA-Z0-9._@-]{1,96}$")
    superuser_password: SecretStr | None = None
    # Failed logins allowed per window before 429 (per process on SQLite, across replicas on
    # PostgreSQL: see login_limits.py).
    login_failures_per_uid: int = Field(default=10, ge=1)
    login_failures_per_address: int = Field(default=30, ge=1)
    login_failure_window: float = Field(default=60.0, gt=0)
    # scrypt cost for new password hashes: N = 2**scrypt_log2_n (r=8, p=1). Stored per hash,
    # so raising it only affects passwords set afterwards.
    scrypt_log2_n: int = Field(default=15, ge=10, le=20)
    # How long a write waits for another process's write lock before answering 503.
    busy_timeout: float = Field(default=5.0, gt=0)
    # PostgreSQL shared by every gateway replica (postgresql://user:pass@host/db); unset: the
    # SQLite file `db_path`. On PostgreSQL the signing keys live in the database too, sealed
    # with the key-encryption secret (a file, or the value itself): one of the two is needed.
    database_url: SecretStr | None = None
    key_encryption_key_file: Path | None = None
    key_encryption_key: SecretStr | None = None
    # Without the change signal (PostgreSQL unreachable), cached authorization decisions are
    # trusted this long, then every decision needs the store (pg.py).
    stale_grants: float = Field(default=30.0, ge=0)

    @model_validator(mode="after")
    def _postgres_url(self) -> IamSettings:
        url = self.database_url
        if url is not None and not url.get_secret_value().startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError("LOGWAY_IAM_DATABASE_URL must be a postgresql:// URL")
        return self

    def sealing_secret(self) -> bytes:
        if self.key_encryption_key is not None:
            return self.key_encryption_key.get_secret_value().encode()
        if self.key_encryption_key_file is None:
            raise ValueError(
                "LOGWAY_IAM_DATABASE_URL needs LOGWAY_IAM_KEY_ENCRYPTION_KEY_FILE (or"
                " LOGWAY_IAM_KEY_ENCRYPTION_KEY): the secret the signing keys are sealed with"
            )
        try:
            return self.key_encryption_key_file.read_bytes()
        except OSError as exc:
            raise ValueError(
                f"LOGWAY_IAM_KEY_ENCRYPTION_KEY_FILE: cannot read {self.key_encryption_key_file}"
                f" ({exc.strerror})"
            ) from None
