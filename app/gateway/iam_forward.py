"""`/acs/api/v1/*` forwarded to the remote IAM, as Admin Router forwards it to Bouncer
(reference §5): logins (`dcos auth login`, `logway login` against the gateway's URL), the JWKS
and the admin API all answer from the one IAM every replica shares, errors included.

The IAM issues the tokens, so it alone receives a caller's credentials: `Authorization` and
the `dcos-acs-auth-cookie` cookie go with the method, the raw path, the raw query and the body;
other cookies and headers stay here (an allow-list; hop-by-hop ones, and any the `Connection`
header names, never pass). `X-Forwarded-For`/`X-Real-IP` are *replaced* by the client address
and `X-Forwarded-Proto` by the scheme, so an IAM that trusts this gateway's address for
forwarded headers (uvicorn's `FORWARDED_ALLOW_IPS`) limits failed logins per real client and
marks its cookie `Secure` behind TLS. Back come the status, the body and a few headers, among
them `Set-Cookie`, `WWW-Authenticate` and `Retry-After`; a `Location` only when it names no host.

The path is forwarded byte for byte (`%2F` in a resource id stays `%2F`), after refusing `.` and
`..` segments, plain or percent-encoded: the HTTP client would resolve them and could take the
request out of `/acs/api/v1` to another route of the IAM's host.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from urllib.parse import unquote_to_bytes

import httpx
from fastapi import APIRouter
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app.authn.extract import AUTH_COOKIE
from app.core.errors import BadRequest, NotFound
from app.iam.views import PREFIX
from app.proxy.errors import UpstreamTimeout, UpstreamUnreachable
from app.proxy.headers import Headers, connection_named, response_headers

log = logging.getLogger(__name__)

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# The IAM refuses bodies over 64 KiB itself (app/iam/bodies.py); this only bounds our buffer.
MAX_BODY_BYTES = 1024 * 1024
CONNECT_TIMEOUT = 5.0
# A login hashes a password (scrypt), possibly queued behind others.
READ_TIMEOUT = 30.0
NODE = "iam"  # how the upstream is named in error bodies and logs

IAM_REQUEST_HEADERS = frozenset(
    {b"accept", b"accept-language", b"authorization", b"content-type", b"origin", b"user-agent"}
)
IAM_RESPONSE_HEADERS = frozenset(
    {
        b"content-type",
        b"content-length",
        b"content-encoding",
        b"content-language",
        b"cache-control",
        b"expires",
        b"pragma",
        b"etag",
        b"last-modified",
        b"vary",
        b"retry-after",
        b"set-cookie",
        b"www-authenticate",
        b"x-content-type-options",
    }
)
_AUTH_COOKIE = AUTH_COOKIE.encode("ascii")
_DOT_SEGMENTS = frozenset({b".", b".."})


class IamForwarder:
    """Forwards one request to the IAM at `iam_url` over `client` (the caller's to close)."""

    def __init__(self, iam_url: str, client: httpx.AsyncClient) -> None:
        self.base = httpx.URL(iam_url)
        self._base_path = self.base.raw_path.split(b"?", 1)[0].rstrip(b"/")
        self._client = client
        self._timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT).as_dict()

    async def relay(self, request: Request) -> Response:
        """The caller's request, as it came, to the IAM; its answer streamed back."""
        raw_path = _checked_path(request.scope.get("raw_path") or request.scope["path"].encode())
        query: bytes = request.scope.get("query_string", b"")
        target = self._base_path + raw_path + (b"?" + query if query else b"")
        upstream = httpx.Request(
            request.method,
            self.base.copy_with(raw_path=target),
            headers=_request_headers(request),
            content=await _body(request) or None,
            extensions={"timeout": self._timeout},
        )
        try:
            response = await self._client.send(
                upstream, auth=None, follow_redirects=False, stream=True
            )
        except httpx.TimeoutException as exc:
            log.warning("IAM %s did not answer in time (%s)", self.base, type(exc).__name__)
            raise UpstreamTimeout("the IAM did not answer in time", node=NODE) from None
        except httpx.HTTPError as exc:
            log.warning("IAM %s unreachable (%s)", self.base, type(exc).__name__)
            raise UpstreamUnreachable("cannot reach the IAM", node=NODE) from None
        answer = StreamingResponse(
            _relay(response),
            status_code=response.status_code,
            background=BackgroundTask(response.aclose),
        )
        answer.raw_headers = response_headers(
            response.headers.raw, allowed=IAM_RESPONSE_HEADERS, prefixes=()
        )
        return answer


def iam_forward_router(forwarder: IamForwarder) -> APIRouter:
    router = APIRouter()

    @router.api_route(PREFIX + "/{rest:path}", methods=METHODS)
    async def forward_to_iam(request: Request) -> Response:
        """The IAM's API (login, JWKS, users, groups, ACLs), answered by the remote IAM."""
        return await forwarder.relay(request)

    return router


def _checked_path(raw_path: bytes) -> bytes:
    if not raw_path.startswith(PREFIX.encode() + b"/"):
        raise NotFound(f"not under {PREFIX}/")
    # Percent-decoded first: `%2e%2e`, and `..` hidden behind an encoded slash, count too.
    if any(s in _DOT_SEGMENTS for s in unquote_to_bytes(raw_path).split(b"/")):
        raise BadRequest("path: '.' and '..' segments are not forwarded to the IAM")
    return raw_path


async def _body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(f"body: larger than {MAX_BODY_BYTES} bytes", parameter="body")
    return bytes(body)


def _request_headers(request: Request) -> Headers:
    incoming: list[tuple[bytes, bytes]] = request.scope["headers"]
    hop = connection_named(incoming)
    out: Headers = [
        (name, value)
        for raw_name, value in incoming
        if (name := raw_name.lower()) in IAM_REQUEST_HEADERS and name not in hop
    ]
    cookie = _auth_cookie(value for name, value in incoming if name.lower() == b"cookie")
    if cookie is not None and b"cookie" not in hop:
        out.append((b"cookie", cookie))
    if request.client is not None:
        address = request.client.host.encode("ascii")
        out += [(b"x-forwarded-for", address), (b"x-real-ip", address)]
    out.append((b"x-forwarded-proto", request.url.scheme.encode("ascii")))
    return out


def _auth_cookie(values: Iterable[bytes]) -> bytes | None:
    """Of all cookies, only the auth token's."""
    for value in values:
        for pair in value.split(b";"):
            name, _, _ = pair.strip().partition(b"=")
            if name.strip() == _AUTH_COOKIE:
                return pair.strip()
    return None


async def _relay(response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:
        # The status is sent: all that is left is to end the body early.
        log.warning("IAM answer cut off (%s)", type(exc).__name__)
    finally:
        await response.aclose()
