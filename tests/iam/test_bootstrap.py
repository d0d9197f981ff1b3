"""The first superuser: configured or generated, once, on an empty store only."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from app.authz.model import SUPERUSER_RID, Action, Grant
from app.iam import Iam, IamSettings, bootstrap
from tests.iam.conftest import ADMIN, ADMIN_PASSWORD, make_settings

NewSettings = Callable[..., IamSettings]


async def test_configured_superuser(new_settings: NewSettings) -> None:
    async with Iam(new_settings()) as iam:
        created = await bootstrap(iam)
        assert created is not None
        assert created.uid == ADMIN
        assert created.generated_password is None
        assert list(await iam.store.grants_for(ADMIN)) == [Grant(SUPERUSER_RID, Action.FULL)]
        assert [u.uid for u in await iam.store.members("superusers")] == [ADMIN]
        held = await iam.store.acls.held_by_user(ADMIN)
        assert {(p.rid, p.action, p.gid) for p in held} == {
            (SUPERUSER_RID, Action.FULL, None),
            (SUPERUSER_RID, Action.FULL, "superusers"),
        }
        issued = await iam.login.with_password(ADMIN, ADMIN_PASSWORD, srcip="127.0.0.1")
        assert issued.uid == ADMIN
        # Restarts leave it alone.
        assert await bootstrap(iam) is None


async def test_generated_password_is_returned_once_and_never_logged(
    new_settings: NewSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = new_settings(superuser_uid="root", superuser_password=None)
    async with Iam(settings) as iam:
        created = await bootstrap(iam)
        assert created is not None
        password = created.generated_password
        assert password is not None
        assert len(password) >= 20
        assert password not in repr(created)
        assert password not in caplog.text
        await iam.login.with_password("root", password, srcip="127.0.0.1")


async def test_only_an_empty_store_gets_one(new_settings: NewSettings) -> None:
    from app.iam.records import User

    async with Iam(new_settings()) as iam:
        await iam.store.create_user(User("someone", ""))
        assert await bootstrap(iam) is None
        assert await iam.store.find_user(ADMIN) is None


async def test_workers_starting_together_create_one(new_settings: NewSettings) -> None:
    """Workers on one host (SQLite) or replicas on one database (PostgreSQL)."""
    settings = new_settings(superuser_password=None)
    iams = [Iam(settings) for _ in range(4)]
    for iam in iams:
        await iam.open()
    try:
        results = await asyncio.gather(*(bootstrap(iam) for iam in iams))
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        await iams[0].login.with_password(ADMIN, winners[0].generated_password or "", srcip="x")
    finally:
        for iam in iams:
            await iam.close()


def test_bad_superuser_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        make_settings(tmp_path, superuser_uid="bad uid")


async def test_short_configured_password_is_refused(new_settings: NewSettings) -> None:
    async with Iam(new_settings(superuser_password=SecretStr("short"))) as iam:
        with pytest.raises(ValueError, match="password"):
            await bootstrap(iam)
