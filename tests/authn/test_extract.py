from __future__ import annotations

import pytest

from app.authn.errors import Reason, TokenRejected
from app.authn.extract import AUTH_COOKIE, extract_token
from tests.authn.conftest import http_request

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJ1aWQiOiJhIn0.c2ln"
COOKIE = f"{AUTH_COOKIE}={JWT}"


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ([], None),
        ([("Authorization", f"token={JWT}")], JWT),
        ([("Authorization", f"Bearer {JWT}")], JWT),
        ([("Authorization", f"bearer {JWT}")], JWT),
        ([("Authorization", f"BEARER   {JWT}  ")], JWT),
        ([("Authorization", f"  token={JWT}")], JWT),
        ([("Cookie", COOKIE)], JWT),
        ([("Cookie", f"other=1; {COOKIE}; more=2")], JWT),
        # An emptied cookie (logout) is no credentials, not bad ones.
        ([("Cookie", f"{AUTH_COOKIE}=")], None),
        ([("Cookie", "dcos-acs-info-cookie=e30")], None),
        # Header wins; the cookie is not even looked at.
        ([("Authorization", "Bearer header-token"), ("Cookie", COOKIE)], "header-token"),
        # The extractor returns what it found; `verify.parse` judges its shape.
        ([("Authorization", "Bearer abc def")], "abc def"),
    ],
)
def test_extract(headers: list[tuple[str, str]], token: str | None) -> None:
    assert extract_token(http_request(headers)) == token


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", Reason.AUTH_SCHEME),
        ("Basic YWxpY2U6c2VjcmV0", Reason.AUTH_SCHEME),
        (JWT, Reason.AUTH_SCHEME),  # a bare token: no scheme
        (f"Bearer-invalid {JWT}", Reason.AUTH_SCHEME),
        (f"Token {JWT}", Reason.AUTH_SCHEME),
        ("token=", Reason.AUTH_HEADER),
        ("Bearer", Reason.AUTH_HEADER),
        ("Bearer   ", Reason.AUTH_HEADER),
    ],
)
def test_unreadable_authorization_header(value: str, reason: Reason) -> None:
    with pytest.raises(TokenRejected) as info:
        extract_token(http_request([("Authorization", value), ("Cookie", COOKIE)]))
    assert info.value.reason == reason
    assert "token=<JWT>" in str(info.value)
    assert JWT not in str(info.value)


def test_two_authorization_headers_are_refused() -> None:
    request = http_request([("Authorization", f"token={JWT}"), ("Authorization", "Bearer x")])
    with pytest.raises(TokenRejected) as info:
        extract_token(request)
    assert info.value.reason == Reason.AUTH_HEADER


@pytest.mark.parametrize("name", ["token", "access_token", "jwt", AUTH_COOKIE, "authorization"])
def test_query_string_is_never_a_source(name: str) -> None:
    assert extract_token(http_request(query_string=f"{name}={JWT}".encode())) is None
