"""What the dev cluster's parts share: `start()` returns the part, `stop()` ends it, and
`with Part(...) as part:` stops it however the block ends."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Started:
    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
