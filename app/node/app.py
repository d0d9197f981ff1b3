"""The node reader's FastAPI shell: the journal, authentication, routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import Depends, FastAPI, Request

from app.core.config import NodeSettings
from app.core.errors import Unauthenticated
from app.core.problems import install_error_handlers
from app.journal.handle import JournalLocation
from app.journal.source import Journal, JournalSettings
from app.node.routes import router

log = logging.getLogger(__name__)


class RequestAuthenticator(Protocol):
    """`None` means no credentials; bad credentials raise `AuthenticationError`."""

    async def authenticate(self, request: Request) -> object | None: ...


async def require_caller(request: Request) -> None:
    authenticator: RequestAuthenticator | None = request.app.state.authenticator
    if authenticator is None:  # --no-auth
        return
    if await authenticator.authenticate(request) is None:
        raise Unauthenticated("Authentication required: send Authorization: token=<JWT>")


def location_of(settings: NodeSettings) -> JournalLocation:
    return JournalLocation(namespace=settings.journal_namespace, directory=settings.journal_dir)


def create_app(
    settings: NodeSettings, *, authenticator: RequestAuthenticator | None = None
) -> FastAPI:
    if authenticator is None and not settings.no_auth:
        raise ValueError("an authenticator is required unless no_auth is set")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        journal = Journal(location_of(settings), JournalSettings(threads=settings.journal_threads))
        await journal.start()
        app.state.journal = journal
        try:
            yield
        finally:
            await journal.close()

    app = FastAPI(
        title="Logway node reader",
        version="1",
        lifespan=lifespan,
        redirect_slashes=False,
        dependencies=[Depends(require_caller)],
    )
    app.state.authenticator = authenticator
    app.state.heartbeat = settings.heartbeat_interval
    install_error_handlers(app)
    app.include_router(router)
    return app
