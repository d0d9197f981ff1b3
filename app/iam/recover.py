"""`logway iam recover-superuser`: the way back when no one can use the admin API.

The API refuses any change that would leave no superuser (409), but a store can still lose its
last one outside the API (a restored backup, a hand edit, a password nobody knows). An operator
who can read and write the store (the gateway's data directory) restores one here: `uid` gets
`dcos:superuser` `full`, and a new generated password unless told to keep the current one.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

from app.iam.bootstrap import GENERATED_PASSWORD_BYTES
from app.iam.names import uid as check_uid
from app.iam.passwords import hash_password
from app.iam.service import Iam


@dataclass(frozen=True, slots=True)
class Recovered:
    uid: str
    created: bool
    password: str | None = field(default=None, repr=False)  # set when generated


async def recover_superuser(iam: Iam, uid: str, *, new_password: bool) -> Recovered:
    uid = check_uid(uid)
    if not new_password and await iam.store.find_user(uid) is None:
        raise ValueError(f"{uid!r} does not exist: recover it with a new password")
    password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES) if new_password else None
    password_hash = (
        await asyncio.to_thread(hash_password, password, log2_n=iam.settings.scrypt_log2_n)
        if password is not None
        else None
    )
    created = await iam.store.restore_superuser(uid, password_hash=password_hash)
    return Recovered(uid, created, password)
