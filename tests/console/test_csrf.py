"""The cross-origin rule for state changes (app/console/csrf.py), as a table."""

from __future__ import annotations

import pytest

from app.console.csrf import cross_origin

HOST = {"host": "gw.example:8000"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "refused"),
    [
        # Reads are never refused: they change nothing.
        ("GET", "/console/", {"sec-fetch-site": "cross-site"}, False),
        ("HEAD", "/system/v1/logs/v1/range/", {"origin": "http://evil.example"}, False),
        # Browsers with Fetch Metadata.
        ("POST", "/acs/api/v1/auth/login", {"sec-fetch-site": "same-origin"}, False),
        ("POST", "/acs/api/v1/auth/login", {"sec-fetch-site": "none"}, False),
        ("POST", "/acs/api/v1/auth/login", {"sec-fetch-site": "cross-site"}, True),
        ("POST", "/acs/api/v1/auth/login", {"sec-fetch-site": "same-site"}, True),
        ("PUT", "/acs/api/v1/users/x", {"sec-fetch-site": "cross-site"}, True),
        ("DELETE", "/acs/api/v1/acls/r", {"sec-fetch-site": "same-site"}, True),
        ("POST", "/console/api/logout", {"sec-fetch-site": "cross-site"}, True),
        # DC/OS's logout is a GET that changes state.
        ("GET", "/acs/api/v1/auth/logout", {"sec-fetch-site": "cross-site"}, True),
        ("GET", "/acs/api/v1/auth/logout", {"sec-fetch-site": "same-origin"}, False),
        # Fetch Metadata wins over Origin (a proxy may rewrite Host).
        ("POST", "/console/api/logout", {"sec-fetch-site": "same-origin", "origin": "x:"}, False),
        # Older browsers: Origin against Host.
        ("POST", "/acs/api/v1/auth/login", {"origin": "http://gw.example:8000"}, False),
        ("POST", "/acs/api/v1/auth/login", {"origin": "http://GW.example:8000"}, False),
        ("POST", "/acs/api/v1/auth/login", {"origin": "http://evil.example"}, True),
        ("POST", "/acs/api/v1/auth/login", {"origin": "http://gw.example:8001"}, True),
        ("POST", "/acs/api/v1/auth/login", {"origin": "null"}, True),
        # No browser at all (the CLIs, curl, SDKs): nothing to check.
        ("POST", "/acs/api/v1/auth/login", {}, False),
        ("PATCH", "/acs/api/v1/users/x", {}, False),
    ],
)
def test_cross_origin(method: str, path: str, headers: dict[str, str], refused: bool) -> None:
    assert cross_origin(method, path, {**HOST, **headers}) is refused
