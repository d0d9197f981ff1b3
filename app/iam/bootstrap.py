"""The first superuser, created when the store has no user at all.

Its uid and password come from settings (`LOGWAY_IAM_SUPERUSER_UID` / `_PASSWORD`); with no
password configured one is generated and returned, once, for the caller to show the operator
(it is never logged). The superuser holds `dcos:superuser` `full` directly and as a member of
the `superusers` group, which holds it too (DC/OS: members of `superusers` inherit it).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

from app.authz.model import SUPERUSER_RID
from app.iam.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, hash_password
from app.iam.records import Group, User
from app.iam.service import Iam

SUPERUSERS_GROUP = Group("superusers", "Superusers: hold dcos:superuser full")
GENERATED_PASSWORD_BYTES = 18  # 24 URL-safe characters


@dataclass(frozen=True, slots=True)
class Bootstrapped:
    uid: str
    # Set only when generated: the one time anyone sees it.
    generated_password: str | None = field(default=None, repr=False)


async def bootstrap(iam: Iam) -> Bootstrapped | None:
    """Create the superuser if the store is empty; None if it was not (a no-op on restarts,
    and for all but one of several workers starting together)."""
    if await iam.store.has_users():
        return None
    settings = iam.settings
    uid = settings.superuser_uid  # syntax checked by IamSettings
    configured = settings.superuser_password
    password = (
        configured.get_secret_value()
        if configured is not None
        else secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
    )
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValueError(
            f"superuser password must have {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters"
        )
    password_hash = await asyncio.to_thread(hash_password, password, log2_n=settings.scrypt_log2_n)
    user = User(uid, "Superuser (bootstrap)", password_hash=password_hash)
    created = await iam.store.bootstrap_superuser(user, group=SUPERUSERS_GROUP, rid=SUPERUSER_RID)
    if not created:
        return None
    return Bootstrapped(uid, None if configured is not None else password)
