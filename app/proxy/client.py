"""`HttpUpstream`: the real `Upstream`, over one shared `httpx.AsyncClient`.

The client is built by `new_upstream_client` and owned (opened and closed) by the gateway's
lifespan. httpx exceptions are mapped to `UpstreamError`s here and nowhere else.
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from app.core.audience import url_audience
from app.proxy.call import UpstreamCall, UpstreamResponse
from app.proxy.errors import (
    UpstreamBroken,
    UpstreamBusy,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from app.proxy.headers import request_headers
from app.proxy.target import upstream_url
from app.proxy.transport import WHOLE_BODY, KeepAliveTransport

CONNECT_TIMEOUT = 5.0
# Idle time allowed between two reads of a range (nginx's proxy_read_timeout, which Admin Router
# kept for the logs locations). Follow streams have none: an idle journal is normal, and the
# node sends heartbeats anyway.
RANGE_READ_TIMEOUT = 60.0
WRITE_TIMEOUT = 10.0
# A full pool becomes a 503 after this long rather than a hang.
POOL_TIMEOUT = 5.0
# Every upstream follow holds one connection for its lifetime: callers of distinct follows
# (each its own task) need one each, 10,000 of them per gateway (issue 17).
MAX_CONNECTIONS = 16_384
MAX_KEEPALIVE = 256
# Below the node's own idle timeout (uvicorn's timeout_keep_alive, 5 s), so that the gateway
# never reuses a connection the node is closing at that very moment.
KEEPALIVE_EXPIRY = 4.0


def new_upstream_client(
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = RANGE_READ_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The shared client for every node: no redirects, no proxy from the environment, and a
    cookie jar that accepts nothing, so that no node's cookie can reach another user's request
    (fastapi-proxy-lib GHSA-7vwr-g6pm-9hc8). Plain-HTTP GETs (every node reader call) go over
    `KeepAliveTransport`; anything else over httpx's own transport with the same limits."""
    no_cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=MAX_KEEPALIVE,
        keepalive_expiry=KEEPALIVE_EXPIRY,
    )
    if transport is None:
        transport = KeepAliveTransport(
            fallback=httpx.AsyncHTTPTransport(limits=limits, trust_env=False),
            max_connections=max_connections,
            max_keepalive=MAX_KEEPALIVE,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )
    options: dict[str, Any] = {
        "timeout": httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=WRITE_TIMEOUT, pool=POOL_TIMEOUT
        ),
        "limits": limits,
        "follow_redirects": False,
        "trust_env": False,
        "cookies": no_cookies,
    }
    if isinstance(transport, KeepAliveTransport):
        return _UpstreamClient(transport=transport, **options)
    return httpx.AsyncClient(transport=transport, **options)


class _UpstreamClient(httpx.AsyncClient):
    """The client over `KeepAliveTransport`: a streamed request that transport serves itself
    goes to it straight, without the client's per-request machinery, none of which applies
    here (no auth, redirects off, a cookie jar that accepts nothing): the auth flow, the
    redirect loop, cookie extraction through urllib's request and response adapters, and the
    response's binding to the client, a reference cycle per response that only the garbage
    collector frees. Together ~5% of the gateway's CPU per small range (py-spy, issue 17).
    Anything else, or anything asked with its own `auth` or `follow_redirects`, is httpx's."""

    def __init__(self, *, transport: KeepAliveTransport, **options: Any) -> None:
        super().__init__(transport=transport, **options)
        self._direct = transport

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        if (
            stream
            and auth is httpx.USE_CLIENT_DEFAULT
            and follow_redirects is httpx.USE_CLIENT_DEFAULT
            and self.auth is None
            and not self.is_closed
            and self._direct.takes(request)
        ):
            return await self._direct.handle_async_request(request)
        return await super().send(
            request, stream=stream, auth=auth, follow_redirects=follow_redirects
        )


@contextmanager
def upstream_errors(node: str) -> Iterator[None]:
    """httpx's exception tree → ours, most specific first."""
    try:
        yield
    except httpx.PoolTimeout as exc:
        raise UpstreamBusy("too many open connections to the nodes", node=node) from exc
    except httpx.ConnectTimeout as exc:
        raise UpstreamTimeout("timed out connecting to the node's log reader", node=node) from exc
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout("the node's log reader did not answer in time", node=node) from exc
    except httpx.ConnectError as exc:
        raise UpstreamUnreachable("cannot connect to the node's log reader", node=node) from exc
    except httpx.TransportError as exc:
        raise UpstreamBroken("the node's log reader broke the connection", node=node) from exc


async def _raw_chunks(response: httpx.Response, node: str) -> AsyncGenerator[bytes, None]:
    with upstream_errors(node):
        # No chunk_size: a fixed size would hold small SSE frames back (security §3 P12).
        async for chunk in response.aiter_raw():
            yield chunk


class HttpUpstream:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    def _timeout(self, call: UpstreamCall) -> httpx.Timeout:
        timeout = self._client.timeout
        if not call.follow:
            return timeout
        return httpx.Timeout(
            connect=timeout.connect, read=None, write=timeout.write, pool=timeout.pool
        )

    async def open(self, node_base_url: str, call: UpstreamCall) -> UpstreamResponse:
        url = upstream_url(node_base_url, call.path, call.query)
        token = await call.token(url_audience(node_base_url)) if call.token is not None else None
        headers = request_headers(
            call.headers, client=call.client, scheme=call.scheme, uid=call.uid, token=token
        )
        # Built directly rather than with client.build_request, so that the client's default
        # headers (Accept-Encoding, Connection: keep-alive, User-Agent) are never added.
        request = httpx.Request(
            call.method, url, headers=headers, extensions={"timeout": self._timeout(call).as_dict()}
        )
        with upstream_errors(call.node):
            response = await self._client.send(request, stream=True)
        return UpstreamResponse(
            response.status_code,
            response.headers.raw,
            _raw_chunks(response, call.node),
            response.aclose,
            whole=response.extensions.get(WHOLE_BODY),
        )


__all__ = [
    "CONNECT_TIMEOUT",
    "MAX_CONNECTIONS",
    "RANGE_READ_TIMEOUT",
    "HttpUpstream",
    "new_upstream_client",
    "upstream_errors",
]
