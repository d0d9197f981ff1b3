"""Calling a service we depend on (the IAM, its JWKS, Mesos): one exchange, sent without
following redirects, its status checked, its answer read without trusting its size, the
response closed, and httpx's exceptions mapped to the error tree once, here (as httpx maps
httpcore's in `map_httpcore_exceptions`)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass, field

import httpx

from app.core.errors import Unavailable


class ServiceCallFailed(Unavailable):
    """No usable answer: unreachable, timed out, an unexpected status or too large."""


class UnexpectedStatus(ServiceCallFailed):
    """The service answered, with a status the caller did not expect."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    # For a caller that expects a redirect (`Location`); no credential is ever read from here.
    headers: httpx.Headers = field(default_factory=httpx.Headers)


async def read_bounded(response: httpx.Response, limit: int) -> bytes | None:
    """The streamed `response`'s body, or None as soon as it grows past `limit` bytes (the rest
    is not read). Transport errors propagate as httpx raises them."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def call_service(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    limit: int,
    service: str,
    expect: Collection[int] = (200,),
    deadline: float | None = None,
) -> Answer:
    """Send `request` (the client's own auth and redirects off) and read at most `limit` bytes
    of an answer whose status is one of `expect` (else `UnexpectedStatus`); anything else is
    `ServiceCallFailed`, whose message names `service` ("the IAM") but never the request's
    headers.

    `deadline` (seconds) bounds the whole exchange, body included: httpx's timeouts are per
    read, and a service that sends a byte now and then would otherwise hold the caller."""
    try:
        async with asyncio.timeout(deadline):
            return await _exchange(client, request, limit=limit, expect=expect)
    except TimeoutError:
        raise ServiceCallFailed(f"timed out after {deadline} s") from None
    except httpx.TimeoutException:
        timeout = request.extensions.get("timeout", {}).get("read")
        raise ServiceCallFailed(f"timed out after {timeout} s") from None
    except httpx.HTTPError as exc:
        raise ServiceCallFailed(f"cannot reach {service} ({type(exc).__name__})") from None


async def _exchange(
    client: httpx.AsyncClient, request: httpx.Request, *, limit: int, expect: Collection[int]
) -> Answer:
    response = await client.send(request, auth=None, follow_redirects=False, stream=True)
    try:
        if response.status_code not in expect:
            raise UnexpectedStatus(response.status_code)
        body = await read_bounded(response, limit)
        if body is None:
            raise ServiceCallFailed(f"answer larger than {limit} bytes")
    finally:
        await response.aclose()
    return Answer(response.status_code, body, response.headers)
