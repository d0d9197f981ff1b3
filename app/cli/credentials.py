"""Where `logway login` keeps the caller's token: one file per OS user, mode 0600."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "logway" / "credentials.json"


@dataclass(frozen=True)
class Credentials:
    url: str
    uid: str
    token: str

    def save(self, path: Path | None = None) -> Path:
        path = path or credentials_path()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self), f)
        os.chmod(tmp, 0o600)  # in case the file existed with wider bits
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path | None = None) -> Credentials | None:
        path = path or credentials_path()
        try:
            data = json.loads(path.read_text())
            return cls(url=str(data["url"]), uid=str(data["uid"]), token=str(data["token"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
