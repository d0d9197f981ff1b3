"""Header hygiene at the gateway → node hop, both ways (security §3 P4-P6, P9, P17;
dcos-logs-api §3.2).

Request: end-to-end headers (`Accept`, `Last-Event-ID`, `Cache-Control`, `X-Accel-Buffering`,
`User-Agent`, …) pass; hop-by-hop headers and every header named in `Connection` go; so do
`Host` (httpx sets the node's), `Accept-Encoding` (the node answers identity, as behind Admin
Router), the caller's `Authorization`, the `dcos-acs-*` cookies (other cookies stay, in one
`Cookie` header), and every client-sent forwarding or identity header. Then the gateway adds its
own: `X-Forwarded-For`/`X-Real-IP` are *replaced* by the client address, not appended to. The
address is already the real client's when uvicorn trusts a load balancer in front
(`--forwarded-allow-ips`), so a chain a client could forge is never passed on.
No request body is forwarded (the log API is read-only), hence no framing headers either.

Response: an allow-list (P9), so `Set-Cookie`, `Server`, `Date` and hop-by-hop headers of the
node never reach the client; a `Location` is kept only when it names no host, so no internal
address leaks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import quote

import httpx

Headers = list[tuple[bytes, bytes]]

# RFC 9110 §7.6.1, Go's httputil.ReverseProxy hopHeaders.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_NOT_FORWARDED = frozenset(
    {
        b"host",
        b"accept-encoding",
        b"authorization",
        b"content-length",
        b"expect",
        b"forwarded",
        b"x-real-ip",
    }
)
_NOT_FORWARDED_PREFIXES = (b"proxy-", b"x-forwarded-", b"x-logway-", b"x-remote-")
# Admin Router's util.clear_dcos_cookies: the caller's credentials never reach a node.
DCOS_COOKIES = frozenset({b"dcos-acs-auth-cookie", b"dcos-acs-info-cookie"})

RESPONSE_HEADERS = frozenset(
    {
        b"content-type",
        b"content-length",
        b"content-encoding",
        b"content-disposition",
        b"cache-control",
        b"expires",
        b"last-modified",
        b"etag",
        b"vary",
        b"retry-after",
        b"x-accel-buffering",
        b"x-content-type-options",
        b"access-control-allow-origin",
        b"access-control-expose-headers",
    }
)
_RESPONSE_PREFIXES = (b"x-journal-",)  # X-Journal-Skip-Next / -Prev

UID_HEADER = b"x-logway-uid"
_UID_SAFE = "@._-+~"


def connection_named(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names listed in `Connection` (hop-by-hop by declaration)."""
    return frozenset(
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
        if token.strip()
    )


def filter_cookies(values: Iterable[bytes]) -> bytes | None:
    """One `Cookie` value without the DC/OS credential cookies, or None when nothing is left."""
    kept = [
        pair
        for value in values
        for pair in (p.strip() for p in value.split(b";"))
        if pair and pair.split(b"=", 1)[0].strip() not in DCOS_COOKIES
    ]
    return b"; ".join(kept) if kept else None


def request_headers(
    incoming: Sequence[tuple[bytes, bytes]],
    *,
    client: str | None,
    scheme: str,
    uid: str | None,
    token: str | None,
) -> Headers:
    named = connection_named(incoming)
    out: Headers = []
    cookies: list[bytes] = []
    for raw_name, value in incoming:
        name = raw_name.lower()
        if name == b"cookie":
            cookies.append(value)
        elif not (
            name in HOP_BY_HOP
            or name in named
            or name in _NOT_FORWARDED
            or name.startswith(_NOT_FORWARDED_PREFIXES)
        ):
            out.append((name, value))
    cookie = filter_cookies(cookies)
    if cookie is not None:
        out.append((b"cookie", cookie))
    if client:
        address = client.encode("ascii")
        out += [(b"x-forwarded-for", address), (b"x-real-ip", address)]
    out.append((b"x-forwarded-proto", scheme.encode("ascii")))
    if uid is not None:
        # Percent-encoded so that no uid can inject a header; plain uids pass unchanged.
        out.append((UID_HEADER, quote(uid, safe=_UID_SAFE).encode("ascii")))
    if token is not None:
        out.append((b"authorization", b"token=" + token.encode("ascii")))
    return out


def keeps_location(value: str) -> bool:
    """A node's `Location` is kept only when it names no host: a path (`/v1/range/`) or a
    relative reference resolves against the gateway URL the client used. An absolute URL would
    show the client an internal address (or send it elsewhere) and is dropped, as are
    protocol-relative ones and backslashes, which browsers read as slashes."""
    if value.startswith("//") or "\\" in value:
        return False
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        return False
    return not url.scheme and not url.host


def response_headers(
    upstream: Sequence[tuple[bytes, bytes]],
    *,
    allowed: frozenset[bytes] = RESPONSE_HEADERS,
    prefixes: tuple[bytes, ...] = _RESPONSE_PREFIXES,
) -> Headers:
    """The upstream's headers a client may see: `allowed` ones, those starting with one of
    `prefixes`, and a `Location` naming no host; never one that `Connection` names."""
    named = connection_named(upstream)
    out: Headers = []
    for raw_name, value in upstream:
        name = raw_name.lower()
        if name in named:
            continue
        if (
            name in allowed
            or name.startswith(prefixes)
            or (name == b"location" and keeps_location(value.decode("latin-1")))
        ):
            out.append((name, value))
    return out


__all__ = [
    "DCOS_COOKIES",
    "HOP_BY_HOP",
    "RESPONSE_HEADERS",
    "UID_HEADER",
    "connection_named",
    "filter_cookies",
    "keeps_location",
    "request_headers",
    "response_headers",
]
