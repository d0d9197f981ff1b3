"""The `Upstream` seam: what the gateway asks of a node reader and what comes back.

The gateway decides where to go (a node base URL from the Mesos snapshot) and whether the caller
may go there; this layer only carries the call out safely and hands back a streaming response.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request

from app.core.credential import NodeTokenProvider

SSE = "text/event-stream"


_V1_STREAM = re.compile(r"(?:^|/)v1/stream(?:/|$)")
_V2 = re.compile(r"(?:^|/)v2/")


def is_follow(path: str, accept: str | None) -> bool:
    """Does this call follow the journal (an endless stream) rather than read a range?

    dcos-log v1 follows on `/v1/stream/…`; v2 has no stream URL and follows when the client
    asks for an event stream (reference §2.2).
    """
    if _V1_STREAM.search(path):
        return True
    return bool(_V2.search(path)) and accept is not None and SSE in accept.lower()


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One request to a node reader, already authorised by the gateway.

    `path`: the node-side path in raw, percent-encoded form (`/v1/range/`, or the raw tail of the
    client's path): take it from `request.scope["raw_path"]` or quote every client-supplied
    segment with `quote(segment, safe="")`; never join decoded path parameters, or an encoded
    slash turns into a real one. `query`: the raw query string, forwarded byte for byte.
    `headers`: the client's raw request headers; the proxy filters them.
    `node`: a display name (the agent id) for error bodies and logs.
    `token`: the gateway's own credential, attached as `Authorization: token=…`. Attach it only
    to calls the gateway has authorised itself (confused deputy, security §3 P5); None sends none.
    """

    method: str
    path: str
    query: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    node: str
    uid: str | None
    client: str | None
    scheme: str
    token: NodeTokenProvider | None

    @classmethod
    def from_request(
        cls,
        request: Request,
        *,
        path: str,
        node: str,
        uid: str | None,
        token: NodeTokenProvider | None,
    ) -> UpstreamCall:
        return cls(
            method=request.method,
            path=path,
            query=request.scope.get("query_string", b""),
            headers=tuple(request.scope["headers"]),
            node=node,
            uid=uid,
            client=request.client.host if request.client else None,
            scheme=request.url.scheme,
            token=token,
        )

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return None

    @property
    def follow(self) -> bool:
        return is_follow(self.path, self.header(b"accept"))

    def resumed(self, last_event_id: str) -> UpstreamCall:
        """The same call, continuing after `last_event_id` (replacing the client's own)."""
        headers = [(k, v) for k, v in self.headers if k.lower() != b"last-event-id"]
        headers.append((b"last-event-id", last_event_id.encode("utf-8")))
        return dataclasses.replace(self, headers=tuple(headers))


class UpstreamResponse:
    """A node's answer: status and headers read, body not yet. Whoever holds it closes it.

    `chunks()` yields the body as it arrives on the wire (no decoding, no re-chunking) and
    raises `UpstreamError` subclasses, never a foreign exception.
    """

    def __init__(
        self,
        status_code: int,
        headers: Sequence[tuple[bytes, bytes]],
        chunks: AsyncGenerator[bytes, None],
        close: Callable[[], Awaitable[None]],
        *,
        whole: Callable[[], bytes | None] | None = None,
    ) -> None:
        self.status_code = status_code
        self.headers = list(headers)
        self._chunks = chunks
        self._close = close
        self._whole = whole
        self._closed = False

    @property
    def media_type(self) -> str:
        for name, value in self.headers:
            if name.lower() == b"content-type":
                return value.split(b";", 1)[0].strip().lower().decode("latin-1")
        return ""

    def chunks(self) -> AsyncGenerator[bytes, None]:
        return self._chunks

    def whole_body(self) -> bytes | None:
        """The whole body, when the upstream knows it has all arrived and none of it was read
        yet; then `chunks()` yields nothing. None: read `chunks()`."""
        return self._whole() if self._whole is not None else None

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._chunks.aclose()
        finally:
            await self._close()


class Upstream(Protocol):
    async def open(self, node_base_url: str, call: UpstreamCall) -> UpstreamResponse:
        """Send `call` to the node; raise `UpstreamError` (or `BadRequest` for a bad path)."""
        ...


__all__ = ["SSE", "Upstream", "UpstreamCall", "UpstreamResponse", "is_follow"]
