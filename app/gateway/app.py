"""The gateway's FastAPI shell: the IAM (embedded: login, JWKS, admin API; or a remote one
that replicas share, `app.gateway.remote_iam`) and the cluster log routes (`app.gateway.logs`)
over the Mesos cluster state and the node reader proxy.

The gateway starts even when no Mesos master answers: the IAM works, and the log routes
answer 503 naming the cluster state's last error until a poll succeeds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.types import Receive, Scope, Send

from app.authn import Authenticator
from app.authn.known import KnownUids
from app.authz import AclAuthorizer, Authorizer
from app.authz.access import AccessWatcher, ChangeSignal
from app.authz.gate import check_routes
from app.cluster import ClusterSettings, ClusterState, MesosClient
from app.console import CrossOriginProtection, console_router
from app.core.audience import MESOS
from app.core.config import GatewaySettings
from app.core.credential import NodeTokenProvider
from app.core.graceful import GracefulStreams, OpenStreams
from app.core.header_limits import HeaderLimits
from app.core.problems import install_error_handlers
from app.gateway.discovery import router as discovery_router
from app.gateway.leases import LeasedStreamCount
from app.gateway.limits import StreamCount, StreamSlots
from app.gateway.logs import router as logs_router
from app.gateway.merged import router as merged_router
from app.gateway.merged_count import router as merged_count_router
from app.gateway.metrics import GatewayMetrics, RequestMetrics
from app.gateway.node_credentials import embedded_node_tokens
from app.gateway.ops import router as ops_router
from app.gateway.ops import store_problem
from app.gateway.remote_iam import RemoteIam
from app.gateway.service_token import ServiceCredential, ServiceToken
from app.gateway.services import GatewayServices
from app.gateway.task_count import router as task_count_router
from app.iam import Iam, IamSettings, bootstrap, serve_iam
from app.iam.pg import PgDatabase
from app.iam.store import IamStore
from app.proxy import HttpUpstream, Proxy, ProxyMetrics, new_upstream_client
from app.proxy.direct import keep_server_send

log = logging.getLogger("logway.gateway")
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
# Beside the IAM store, when the superuser password was generated.
SUPERUSER_PASSWORD_FILE = "superuser-password"  # noqa: S105 (a file name)


def iam_settings(settings: GatewaySettings) -> IamSettings:
    # Superuser uid/password and limits still come from LOGWAY_IAM_* variables.
    return IamSettings(
        db_path=settings.data_dir / "iam.sqlite3", keys_dir=settings.data_dir / "keys"
    )


def cluster_settings(
    settings: GatewaySettings, service_token: ServiceCredential
) -> ClusterSettings:
    return ClusterSettings(
        masters=settings.mesos_masters,
        reader_scheme=settings.reader_scheme,
        reader_port=settings.reader_port,
        poll_period=settings.mesos_poll_period,
        soft_limit=settings.mesos_soft_limit,
        hard_limit=settings.mesos_hard_limit,
        request_timeout=settings.mesos_request_timeout,
        refresh_min_interval=settings.mesos_refresh_min_interval,
        refresh_wait=settings.mesos_refresh_wait,
        service_token=service_token,
    )


@asynccontextmanager
async def embedded_iam(iam: Iam) -> AsyncIterator[None]:
    async with iam:
        created = await bootstrap(iam)
        if created is not None:
            log.warning("created superuser %r on an empty IAM store", created.uid)
            if created.generated_password is not None:
                _hand_over(created.uid, created.generated_password, iam.settings.db_path.parent)
        yield


def _hand_over(uid: str, password: str, data_dir: Path) -> None:
    """A generated superuser password goes to a 0600 file beside the IAM store, never through
    logging, and to stderr only when that is a terminal: under systemd or Marathon stderr is a
    journal that Logway itself serves."""
    path = data_dir / SUPERUSER_PASSWORD_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    shown = f", password {password!r}" if sys.stderr.isatty() else ""
    print(
        f"\nLogway superuser: uid {uid!r}{shown}; the password is in {path} (0600): "
        "read it, change it, delete the file\n",
        file=sys.stderr,
        flush=True,
    )


class _Gateway(FastAPI):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        keep_server_send(scope, send)  # shared follows write around the middleware
        await super().__call__(scope, receive, send)


def create_app(settings: GatewaySettings, *, iam: Iam | None = None) -> FastAPI:
    """Raises ValueError, naming the setting, on settings that cannot work."""
    remote = RemoteIam.from_settings(settings)
    authenticator: Authenticator
    authorizer: Authorizer
    service_token: ServiceCredential  # towards Mesos
    node_tokens: NodeTokenProvider  # towards each node reader, given its audience
    remote_routes: APIRouter | None = None  # the IAM's, forwarded to the remote IAM
    iam_problem: Callable[[], Awaitable[str | None]]
    iam_lifespan: AbstractAsyncContextManager[object]
    # What tells open streams' watcher that grants may have changed (app.authz.access).
    signal: ChangeSignal
    store: IamStore | None = None
    if remote is None:
        iam = iam or Iam(iam_settings(settings))
        authenticator, authorizer = iam.authenticator, AclAuthorizer(iam.store)
        lifetime = settings.node_token_lifetime
        service_token = ServiceToken(
            iam.issuer, settings.service_uid, audience=MESOS, lifetime=lifetime
        )
        node_tokens = embedded_node_tokens(iam.issuer, settings.service_uid, lifetime=lifetime)
        iam_problem = partial(store_problem, iam.store)
        iam_lifespan = embedded_iam(iam)
        signal = store = iam.store
    else:
        authenticator, authorizer = remote.authenticator, remote.authorizer
        service_token, node_tokens = remote.mesos_token, remote.node_tokens
        remote_routes, iam_problem, iam_lifespan = remote.router(), remote.problem, remote
        signal = remote.signal
    cluster_config = cluster_settings(settings, service_token)  # invalid settings fail here

    metrics = GatewayMetrics()  # the request middleware counts into it from the start
    # The per-identity caps: across every replica on a shared PostgreSQL store, else here.
    merge_limits: StreamSlots = StreamCount()
    follow_limits: StreamSlots = StreamCount()
    shared_limits: list[LeasedStreamCount] = []
    if iam is not None and isinstance(iam.store.engine, PgDatabase):
        shared_limits = [
            LeasedStreamCount(iam.store.engine, kind, ttl=settings.stream_lease_ttl)
            for kind in ("merge", "follow")
        ]
        merge_limits, follow_limits = shared_limits

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            iam_lifespan,
            httpx.AsyncClient() as mesos,
            new_upstream_client() as upstream,
        ):
            cluster = ClusterState(cluster_config, MesosClient(cluster_config, mesos))
            access = AccessWatcher(
                signal,
                period=settings.stream_access_period,
                # A deleted uid ends its streams in either mode (issue 12 §1, §5).
                known=authenticator.exists if isinstance(authenticator, KnownUids) else None,
            )
            app.state.services = GatewayServices(
                settings=settings,
                authenticator=authenticator,
                authorizer=authorizer,
                service_token=service_token,
                node_tokens=node_tokens,
                cluster=cluster,
                cluster_settings=cluster_config,
                proxy=Proxy(
                    HttpUpstream(upstream),
                    metrics=ProxyMetrics(),
                    send_timeout=settings.client_send_timeout,
                ),
                metrics=metrics,
                iam_problem=iam_problem,
                merge_limits=merge_limits,
                follow_limits=follow_limits,
                access=access,
            )
            await cluster.start()
            for leased in shared_limits:
                await leased.start()
            watcher = asyncio.create_task(access.run(), name="access-watcher")
            # The store's push signal (PostgreSQL NOTIFY; SQLite's poll) wakes the watcher at
            # once; without it the watcher still looks every `stream_access_period`.
            unsubscribe = store.subscribe(lambda _topic: access.changed()) if store else None
            try:
                yield
            finally:
                if unsubscribe is not None:
                    unsubscribe()
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                for leased in shared_limits:
                    await leased.close()
                await cluster.close()
                if app.state.services.proxy.shares is not None:
                    await app.state.services.proxy.shares.aclose()

    # No /docs or /openapi.json: openapi/gateway.json is the complete document (`make openapi`),
    # and every path the gateway serves is in its route table (public ones by decision).
    app = _Gateway(
        title="Logway gateway",
        version="1",
        lifespan=lifespan,
        redirect_slashes=False,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry hooks asked OpenTelemetry for its providers on every
        # request whenever the API package was importable (~6% of the gateway's CPU per small
        # range, issue 17); Logway configures no OpenTelemetry SDK, so they never did more.
        telemetry=TELEMETRY_OFF,
    )
    # Built before the lifespan: the server's exit handler ends open streams through it.
    app.state.open_streams = OpenStreams()
    app.add_middleware(GracefulStreams, streams=app.state.open_streams)
    app.add_middleware(CrossOriginProtection)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(HeaderLimits)  # outermost: refused before metrics, routes, authn
    install_error_handlers(app)
    # The gateway's own routes, each admitted on its route table rule; a route the table does
    # not name is an error here, never a silent allow. So are the embedded IAM's (serve_iam).
    console = console_router()
    check_routes(
        r
        for router in (
            merged_router,
            merged_count_router,
            task_count_router,
            logs_router,
            discovery_router,
            ops_router,
            console,
        )
        for r in router.routes
    )
    # Merged role/app reads before the log routes, whose `/system/v1/logs/{rest}` would
    # take them for the master's own journal.
    app.include_router(merged_router)
    app.include_router(merged_count_router)
    app.include_router(task_count_router)  # before the task file route's `{rest:path}`
    app.include_router(logs_router)  # early: the hot routes match in fewer tries
    if remote_routes is not None:
        app.include_router(remote_routes)
    else:
        assert iam is not None
        serve_iam(app, iam, authorizer)
    app.include_router(discovery_router)
    app.include_router(ops_router)
    app.include_router(console)
    return app
