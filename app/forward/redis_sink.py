"""`redis://host:port/db?key=NAME`: RPUSH each batch onto a list in Logstash's `json_event`
shape (what the Logstash `redis` input reads with `data_type => "list"`), or with
`?mode=stream` XADD each record to a stream (`?maxlen=N` trims it approximately).

A batch is one RPUSH (atomic: all or nothing) or one pipelined round of XADDs; Redis has
accepted it once the reply is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from app.forward.record import Record
from app.forward.sink import ConfigError, SinkError, public, query

MODES = ("list", "stream")
SOCKET_TIMEOUT = 30.0


class RedisSink:
    def __init__(self, url: str, *, key: str, mode: str, maxlen: int | None) -> None:
        self.name = public(url)
        self.key = key
        self.mode = mode
        self.maxlen = maxlen
        parts = urlsplit(url)
        self._client = aioredis.Redis.from_url(
            urlunsplit(parts._replace(query="")),
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=10.0,
            retry_on_timeout=False,
        )

    @classmethod
    def from_url(cls, url: str) -> RedisSink:
        options = query(url)
        key = options.get("key")
        if not key:
            raise ConfigError(f"{public(url)}: needs ?key=NAME (the list or stream to write)")
        mode = options.get("mode", "list")
        if mode not in MODES:
            raise ConfigError(f"{public(url)}: mode {mode!r}; expected list or stream")
        raw = options.get("maxlen")
        if raw is not None and not raw.isdigit():
            raise ConfigError(f"{public(url)}: maxlen {raw!r}; expected a number")
        return cls(url, key=key, mode=mode, maxlen=int(raw) if raw else None)

    async def send(self, batch: Sequence[Record]) -> None:
        try:
            if self.mode == "list":
                await self._client.rpush(self.key, *(orjson.dumps(r.event()) for r in batch))
                return
            pipe = self._client.pipeline(transaction=False)
            for record in batch:
                fields = stream_fields(record)
                pipe.xadd(self.key, fields, maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
            await pipe.execute()
        except (redis_errors.AuthenticationError, redis_errors.AuthorizationError) as exc:
            raise SinkError(f"redis refused the login: {exc}", retryable=False) from exc
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            raise SinkError(f"redis unreachable: {exc}", retryable=True) from exc
        except redis_errors.ResponseError as exc:
            # OOM (maxmemory) and LOADING pass; WRONGTYPE, NOPERM and the like do not.
            message = str(exc)
            retry = message.startswith(("OOM", "LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN"))
            raise SinkError(f"redis answered: {message}", retryable=retry) from exc

    async def close(self) -> None:
        await self._client.aclose()


def stream_fields(record: Record) -> dict[str, str | bytes]:
    """A stream entry: the mapped scalars as fields, the whole event as `event`."""
    event = record.event()
    flat: dict[str, str | bytes] = {
        key: str(value) for key, value in event.items() if isinstance(value, str | int)
    }
    flat["event"] = orjson.dumps(event)
    return flat
