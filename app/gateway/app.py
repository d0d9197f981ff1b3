"""The gateway's FastAPI shell. Today it serves the embedded IAM (login, JWKS, admin API);
the cluster log routes join it with the gateway issue."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.authz import AclAuthorizer
from app.core.config import GatewaySettings
from app.core.problems import install_error_handlers
from app.iam import Iam, IamSettings, bootstrap, iam_router

log = logging.getLogger("logway.gateway")


def iam_settings(settings: GatewaySettings) -> IamSettings:
    # Superuser uid/password and limits still come from LOGWAY_IAM_* variables.
    return IamSettings(
        db_path=settings.data_dir / "iam.sqlite3", keys_dir=settings.data_dir / "keys"
    )


def create_app(settings: GatewaySettings, *, iam: Iam | None = None) -> FastAPI:
    iam = iam or Iam(iam_settings(settings))
    authorizer = AclAuthorizer(iam.store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert iam is not None
        async with iam:
            created = await bootstrap(iam)
            if created is not None:
                log.warning("created superuser %r on an empty IAM store", created.uid)
                if created.generated_password is not None:
                    # Shown once, on the terminal only: never through logging.
                    print(
                        f"\nLogway superuser: uid {created.uid!r}, "
                        f"password {created.generated_password!r} (shown once)\n",
                        file=sys.stderr,
                        flush=True,
                    )
            yield

    app = FastAPI(title="Logway gateway", version="1", lifespan=lifespan, redirect_slashes=False)
    app.state.iam = iam
    app.state.authorizer = authorizer
    install_error_handlers(app)
    app.include_router(iam_router(iam, authorizer))
    return app
