from __future__ import annotations

import logging

import pytest

from app.core.logging import RedactingFilter, redact

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJ1aWQiOiJ4In0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: token={JWT}",
        f"Authorization: Bearer {JWT}",
        f"cookie dcos-acs-auth-cookie={JWT}; other=1",
        f"bare {JWT} in a message",
        "token=opaque-secret-value",
    ],
)
def test_secrets_are_redacted(text: str) -> None:
    out = redact(text)
    assert JWT not in out
    assert "opaque-secret-value" not in out
    assert "<redacted>" in out


def test_filter_redacts_formatted_arguments() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "header %s", (f"token={JWT}",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "header <redacted>"
