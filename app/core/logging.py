"""Process logging with secrets redacted before any handler sees them.

Records go through a queue to a listener thread that formats and writes them, so a
request that logs (every authorization decision writes an audit line) does not wait for
the terminal or the journal.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import re
from typing import TextIO

# JWTs (three base64url segments), `token=...` and Bearer credentials.
_SECRET = re.compile(
    r"(eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"
    r"|((?:token=|Bearer\s+)[^\s;,&\"']+)",
)

_listener: logging.handlers.QueueListener | None = None


def redact(text: str) -> str:
    return _SECRET.sub("<redacted>", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


def configure_logging(level: str = "INFO", *, stream: TextIO | None = None) -> None:
    """Root logging through the queue; records are written to `stream` (stderr)."""
    global _listener
    shutdown_logging()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    enqueue = logging.handlers.QueueHandler(records)
    enqueue.addFilter(RedactingFilter())  # before the record leaves this thread
    root = logging.getLogger()
    root.handlers[:] = [enqueue]
    root.setLevel(level)
    _listener = logging.handlers.QueueListener(records, handler, respect_handler_level=True)
    _listener.start()
    atexit.unregister(shutdown_logging)
    atexit.register(shutdown_logging)


def shutdown_logging() -> None:
    """Flush and stop the listener thread; records logged afterwards are dropped."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None
    logging.getLogger().handlers.clear()
