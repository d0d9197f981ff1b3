"""The upstream URL: the node's base URL (trusted, from the Mesos snapshot) plus a path and a
query string that carry client input, checked so that they can only ever name a resource on
that node (security §3 P1-P3).

The path is taken in its raw, percent-encoded form, so that an encoded slash is still visible
here: a decoded `a%2Fb` path parameter would already look like two segments. Each segment is
decoded once and must then be a plain name (`[A-Za-z0-9._~!$&'()*+,;=:-]`, not `.` or `..`);
everything else (`//`, `..`, `%2F`, `%2e%2e`, `%25`, a backslash, `@`, NUL, a full URL) is a 400.
The result is the normalised (decoded) path. `@` is refused even though the URL is built from
parts, so that it could not move the host anyway; the price is that systemd template units
(`name@instance.service`) cannot be named through the gateway.

The query string is forwarded byte for byte, so it is refused rather than re-encoded when it holds
a byte that httpx would escape (space, `"`, `<`, `>`, `#`, controls, non-ASCII).
"""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote

import httpx

from app.core.errors import BadRequest

MAX_PATH_BYTES = 4096
MAX_QUERY_BYTES = 8192

_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:-]+")
_ESCAPES = re.compile(r"(?:[^%]|%[0-9A-Fa-f]{2})*")
# What httpx keeps unchanged in a query (measured with httpx 0.28.1).
_QUERY = re.compile(rb"[A-Za-z0-9!$%&'()*+,\-./:;=?@\[\\\]^_`{|}~]*")


def _bad_path(reason: str) -> BadRequest:
    return BadRequest(f"Invalid path: {reason}", parameter="path")


def _segment(raw: str) -> str:
    if not _ESCAPES.fullmatch(raw):
        raise _bad_path("malformed percent-escape")
    try:
        decoded = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise _bad_path("percent-escape is not UTF-8") from None
    if decoded in (".", ".."):
        raise _bad_path("'.' and '..' segments are not allowed")
    if not _SEGMENT.fullmatch(decoded):
        raise _bad_path("a segment holds a character that is not allowed")
    return decoded


def normalised_path(raw_path: str) -> str:
    """`raw_path` checked segment by segment and normalised for the node, or `BadRequest`."""
    if len(raw_path) > MAX_PATH_BYTES:
        raise _bad_path("too long")
    if not raw_path.startswith("/"):
        raise _bad_path("must start with '/'")
    parts = raw_path[1:].split("/")
    out: list[str] = []
    for i, part in enumerate(parts):
        if part:
            out.append(_segment(part))
        elif i == len(parts) - 1:
            out.append("")  # a trailing slash is meaningful: /v1/range/
        else:
            raise _bad_path("empty segment ('//')")
    return "/" + "/".join(out)


def check_query(query: bytes) -> bytes:
    if len(query) > MAX_QUERY_BYTES:
        raise BadRequest("Query string too long", parameter="query")
    if not _QUERY.fullmatch(query):
        raise BadRequest(
            "Query string holds a character that must be percent-encoded", parameter="query"
        )
    return query


# Checked URLs kept per (base, path, query): the same small range is asked again and again, and
# httpx parses a URL (and its host as an IP address) on every construction. Only URLs that
# passed every check are kept (a refusal raises, which lru_cache never stores); bounded, so
# client-chosen paths and queries cannot grow it.
URL_CACHE_SIZE = 1024


def upstream_url(node_base_url: str, raw_path: str, query: bytes) -> httpx.URL:
    """`node_base_url` (`http://10.0.0.5:61001`, optionally with a path prefix) + path + query.

    A bad base URL is the caller's bug (`ValueError`); a bad path or query is the client's (400).
    """
    return _upstream_url(node_base_url, raw_path, query)


@functools.lru_cache(maxsize=URL_CACHE_SIZE)
def _upstream_url(node_base_url: str, raw_path: str, query: bytes) -> httpx.URL:
    base = httpx.URL(node_base_url)
    if base.scheme not in ("http", "https") or not base.host:
        raise ValueError("node base URL must be an absolute http(s) URL")
    if base.userinfo or base.query or base.fragment:
        raise ValueError("node base URL must not carry credentials, a query or a fragment")
    target = base.raw_path.rstrip(b"/") + normalised_path(raw_path).encode("ascii")
    query = check_query(query)
    url = base.copy_with(raw_path=target + b"?" + query if query else target)
    if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
        raise ValueError("upstream URL left the node")  # unreachable by construction
    return url


__all__ = ["MAX_PATH_BYTES", "MAX_QUERY_BYTES", "check_query", "normalised_path", "upstream_url"]
