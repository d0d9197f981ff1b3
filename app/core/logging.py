"""Process logging with secrets redacted before any handler sees them."""

from __future__ import annotations

import logging
import re

# JWTs (three base64url segments), `token=...` and Bearer credentials.
_SECRET = re.compile(
    r"(eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"
    r"|((?:token=|Bearer\s+)[^\s;,&\"']+)",
)


def redact(text: str) -> str:
    return _SECRET.sub("<redacted>", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
