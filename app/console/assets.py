"""The console's static files, loaded once: each served under one content hash of them all
(`/console/static/<hash>/<name>`, cached for a year, immutable), so the JavaScript modules keep
their relative imports and a new release never meets a stale cache. The page itself names
the hash and is never cached."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

STATIC_PACKAGE = "app.console"
STATIC_DIR = "static"
PAGE = "index.html"
ASSETS_PLACEHOLDER = "{{ASSETS}}"
HASH_LENGTH = 16
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str


@dataclass(frozen=True, slots=True)
class Assets:
    digest: str
    page: bytes  # index.html with the hashed asset prefix filled in
    files: dict[str, Asset]

    def prefix(self, base: str) -> str:
        return f"{base}/static/{self.digest}"


def load_assets(base: str = "/console") -> Assets:
    root = resources.files(STATIC_PACKAGE).joinpath(STATIC_DIR)
    files: dict[str, Asset] = {}
    digest = hashlib.sha256()
    for item in sorted(root.iterdir(), key=lambda i: i.name):
        suffix = "." + item.name.rsplit(".", 1)[-1]
        if not item.is_file() or item.name == PAGE or suffix not in MEDIA_TYPES:
            continue
        body = item.read_bytes()
        files[item.name] = Asset(body, MEDIA_TYPES[suffix])
        digest.update(item.name.encode() + b"\0" + hashlib.sha256(body).digest())
    page = root.joinpath(PAGE).read_text(encoding="utf-8")
    short = digest.hexdigest()[:HASH_LENGTH]
    filled = page.replace(ASSETS_PLACEHOLDER, f"{base}/static/{short}")
    return Assets(short, filled.encode(), files)
