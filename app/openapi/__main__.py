"""`python -m app.openapi [DIR]`: write gateway.json and node.json into DIR (openapi/)."""

from __future__ import annotations

import sys
from pathlib import Path

from app.openapi import DOCUMENTS, render


def main(argv: list[str]) -> int:
    directory = Path(argv[0] if argv else "openapi")
    directory.mkdir(parents=True, exist_ok=True)
    for name, build in DOCUMENTS.items():
        path = directory / name
        text = render(build())
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path}")
        else:
            print(f"{path} unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
