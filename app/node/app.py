"""The node reader's FastAPI shell: the journal, authentication, routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import Depends, FastAPI

from app.core.config import NodeSettings
from app.core.graceful import GracefulStreams, OpenStreams
from app.core.header_limits import HeaderLimits
from app.core.problems import install_error_handlers
from app.journal.handle import JournalLocation
from app.journal.source import Journal, JournalSettings
from app.node.auth import build_authenticator
from app.node.deps import NodeServices, require_caller
from app.node.routes import router

log = logging.getLogger(__name__)


def location_of(settings: NodeSettings) -> JournalLocation:
    return JournalLocation(namespace=settings.journal_namespace, directory=settings.journal_dir)


def create_app(settings: NodeSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        journal = Journal(location_of(settings), JournalSettings(threads=settings.journal_threads))
        await journal.start()
        async with httpx.AsyncClient(timeout=5.0) as client:
            authenticator = None if settings.no_auth else build_authenticator(settings, client)
            app.state.services = NodeServices(
                journal=journal,
                authenticator=authenticator,
                heartbeat=settings.heartbeat_interval,
            )
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
        # Starlette serves /docs and /openapi.json outside the dependencies, so they would be
        # open to anyone; openapi/node.json is the document (`make openapi`).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    # Built before the lifespan: the server's exit handler ends open streams through it.
    app.state.open_streams = OpenStreams()
    app.add_middleware(GracefulStreams, streams=app.state.open_streams)
    app.add_middleware(HeaderLimits)
    install_error_handlers(app)
    app.include_router(router)
    return app
