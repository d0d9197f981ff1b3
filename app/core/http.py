"""Calling a service we depend on (the IAM, its JWKS, Mesos): one exchange, sent without
following redirects, its status checked, its answer read without trusting its size, the
response closed, and httpx's exceptions mapped to the error tree once, here (as httpx maps
httpcore's in `map_httpcore_exceptions`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import httpx

from app.core.errors import Unavailable


class ServiceCallFailed(Unavailable):
    """No usable answer: unreachable, timed out, an unexpected status or too large."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


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
) -> Answer:
    """Send `request` (the client's own auth and redirects off) and read at most `limit` bytes
    of an answer whose status is one of `expect`; anything else is `ServiceCallFailed`, whose
    message names `service` ("the IAM") but never the request's headers."""
    try:
        response = await client.send(request, auth=None, follow_redirects=False, stream=True)
        try:
            if response.status_code not in expect:
                raise ServiceCallFailed(f"HTTP {response.status_code}")
            body = await read_bounded(response, limit)
            if body is None:
                raise ServiceCallFailed(f"answer larger than {limit} bytes")
        finally:
            await response.aclose()
    except httpx.TimeoutException:
        timeout = request.extensions.get("timeout", {}).get("read")
        raise ServiceCallFailed(f"timed out after {timeout} s") from None
    except httpx.HTTPError as exc:
        raise ServiceCallFailed(f"cannot reach {service} ({type(exc).__name__})") from None
    return Answer(response.status_code, body)
