"""`syslog+tcp://host:port` and `syslog+tls://host:port?ca=FILE` (RFC 5425): RFC 5424
messages, octet-counted, over one kept connection.

Syslog over TCP has no application-level acknowledgement. A batch counts as accepted once
the receiver's TCP stack has acknowledged every byte of it (the socket's send queue,
SIOCOUTQ, is empty) and the receiver has not closed the connection meanwhile; a receiver
that stops or closes mid-batch makes the batch fail, and it is sent again on a new
connection. What a receiver's process loses after its kernel acknowledged is beyond any
syslog sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import socket
import ssl
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from app.forward.record import Record
from app.forward.rfc5424 import frame
from app.forward.sink import ConfigError, SinkError, public, query

SIOCOUTQ = 0x5411  # linux/sockios.h: bytes not yet acknowledged by the peer
CONNECT_TIMEOUT = 10.0
ACK_TIMEOUT = 30.0
ACK_POLL = 0.002
CLOSE_GRACE = 0.02  # per batch: at 1,000 entries a batch, far from the sink's limit


class Closed(Exception):
    pass


class SyslogSink:
    def __init__(self, url: str, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        self.name = public(url)
        self.host, self.port, self.tls = host, port, tls
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @classmethod
    def from_url(cls, url: str) -> SyslogSink:
        parts = urlsplit(url)
        if not parts.hostname or parts.port is None:
            raise ConfigError(f"{public(url)}: expected {parts.scheme}://host:port")
        context = None
        if parts.scheme == "syslog+tls":
            ca = query(url).get("ca")
            if ca is not None and not Path(ca).is_file():
                raise ConfigError(f"{public(url)}: ca {ca!r} is not a file")
            context = ssl.create_default_context(cafile=ca)
        return cls(url, parts.hostname, parts.port, context)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._writer is not None and self._reader is not None:
            if not self._reader.at_eof() and not self._writer.is_closing():
                return self._reader, self._writer
            await self._drop()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self.tls,
                    server_hostname=self.host if self.tls else None,
                ),
                CONNECT_TIMEOUT,
            )
        except ssl.SSLCertVerificationError as exc:
            raise SinkError(f"{self.name}: {exc.verify_message}", retryable=False) from exc
        except (OSError, TimeoutError) as exc:
            raise SinkError(f"{self.name}: cannot connect: {exc}", retryable=True) from exc
        self._reader, self._writer = reader, writer
        return reader, writer

    async def send(self, batch: Sequence[Record]) -> None:
        data = b"".join(frame(r) for r in batch)
        reader, writer = await self._connect()
        try:
            writer.write(data)
            await writer.drain()
            await self._acknowledged(reader, writer)
        except Closed as exc:
            await self._drop()
            raise SinkError(f"{self.name}: {exc}", retryable=True, refused=True) from exc
        except (OSError, TimeoutError) as exc:
            await self._drop()
            raise SinkError(f"{self.name}: {exc or type(exc).__name__}", retryable=True) from exc

    async def _acknowledged(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        sock = writer.get_extra_info("socket")
        deadline = time.monotonic() + ACK_TIMEOUT
        while True:
            if reader.at_eof() or writer.is_closing():
                raise Closed("the receiver closed the connection")
            if sock is None or _unacknowledged(sock) == 0:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the receiver acknowledged nothing for {ACK_TIMEOUT:g} s")
            await asyncio.sleep(ACK_POLL)
        # A receiver that refuses closes right after reading: give its FIN time to arrive.
        await asyncio.sleep(CLOSE_GRACE)
        if reader.at_eof():
            raise Closed("the receiver closed the connection")

    async def _drop(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
                await asyncio.wait_for(writer.wait_closed(), 2.0)

    async def close(self) -> None:
        await self._drop()


def _unacknowledged(sock: socket.socket) -> int:
    raw = fcntl.ioctl(sock.fileno(), SIOCOUTQ, b"\0\0\0\0")
    count: int = struct.unpack("i", raw)[0]
    return count
