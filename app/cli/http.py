"""The CLI's HTTP calls: the stored token, and exit codes from statuses."""

from __future__ import annotations

import sys
from typing import Any

import httpx

from app.cli.credentials import Credentials

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DENIED = 3


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def session(url: str | None) -> tuple[str, httpx.Client]:
    creds = Credentials.load()
    base = (url or (creds.url if creds else "")).rstrip("/")
    if not base:
        raise CliError("no gateway URL: pass --url or run `logway login --url URL` first", 2)
    headers = {}
    if creds is not None and creds.url.rstrip("/") == base:
        headers["Authorization"] = f"token={creds.token}"
    return base, httpx.Client(base_url=base, headers=headers, timeout=30.0)


def refused(status: int, text: str) -> CliError:
    """The error for an answer with a 4xx or 5xx `status`: 401 and 403 exit `EXIT_DENIED`."""
    if status in (401, 403):
        return CliError(f"{status}: {text.strip() or 'denied'}", EXIT_DENIED)
    return CliError(f"{status}: {text.strip()}")


def check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise refused(response.status_code, response.text)
    if response.status_code == 204 or not response.content:
        return None
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.text


def fail(exc: CliError | httpx.HTTPError) -> int:
    if isinstance(exc, CliError):
        print(f"logway: {exc}", file=sys.stderr)
        return exc.code
    print(f"logway: cannot reach the gateway: {exc}", file=sys.stderr)
    return EXIT_ERROR
