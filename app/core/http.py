"""Reading an answer of a service we call (IAM, JWKS, Mesos) without trusting its size."""

from __future__ import annotations

import httpx


async def read_bounded(response: httpx.Response, limit: int) -> bytes | None:
    """The streamed `response`'s body, or None as soon as it grows past `limit` bytes (the rest
    is not read). Transport errors propagate as httpx raises them."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
