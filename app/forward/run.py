"""Run a forwarder's pipelines until SIGTERM/SIGINT (graceful: exit 0) or until one of them
ends with an error; the exit status is the worst of the pipelines'."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from app.cli.credentials import Credentials
from app.cli.logs_read import Target
from app.forward.config import Config, PipelineSpec
from app.forward.credential import Credential, ServiceAccount, StaticToken
from app.forward.metrics import serve
from app.forward.pipeline import EXIT_OK, Pipeline
from app.forward.sink import open_sink
from app.forward.source import Gateway

PROGRESS_PERIOD = 1.0


def credential_for(config: Config, token: str | None) -> Credential:
    if config.service_account is not None:
        if config.private_key is None:
            raise ValueError("a service account needs its private key (--private-key)")
        return ServiceAccount(config.service_account, config.private_key)
    return StaticToken(token)


def _note(name: str, err: TextIO) -> Callable[[str], None]:
    def note(message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        print(f"{stamp} logway forward [{name}]: {message}", file=err, flush=True)

    return note


def build(spec: PipelineSpec, url: str, credential: Credential, err: TextIO) -> Pipeline:
    note = _note(spec.name, err)
    sinks = [open_sink(url_) for url_ in spec.sinks]
    rediscover, discover = spec.feeds()
    return Pipeline(
        name=spec.name,
        source=spec.label,
        discover=discover,
        rediscover=rediscover,
        gateway=Gateway(url, credential, note=note),
        sinks=sinks,
        state=spec.state,
        batch_size=spec.batch_size,
        note=note,
    )


async def run(config: Config, env: Mapping[str, str], err: TextIO = sys.stderr) -> int:
    target = Target.resolve(config.url, env, Credentials.load())
    credential = credential_for(config, target.token)
    pipelines = [build(spec, target.url, credential, err) for spec in config.pipelines]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = None
    if config.metrics is not None:
        server = await serve(config.metrics, [p.stats for p in pipelines])
    progress = asyncio.create_task(_progress(pipelines, err)) if err.isatty() else None
    try:
        tasks = [asyncio.create_task(p.run(stop)) for p in pipelines]
        codes: list[int] = []
        for next_done in asyncio.as_completed(tasks):
            code = await next_done
            codes.append(code)
            if code != EXIT_OK:
                stop.set()  # one pipeline's failure stops the process: a supervisor restarts it
        return max(codes)
    finally:
        if progress is not None:
            progress.cancel()
            print(file=err)
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _progress(pipelines: list[Pipeline], err: TextIO) -> None:
    while True:
        await asyncio.sleep(PROGRESS_PERIOD)
        parts = []
        for p in pipelines:
            s = p.stats
            lag = s.lag()
            lag_text = "-" if lag is None else f"{lag:.1f}s"
            errors = sum(x.errors for x in s.sinks.values())
            parts.append(
                f"{p.name}: {s.entries} entries, {s.rate():.0f}/s, lag {lag_text}"
                + (f", {errors} sink errors" if errors else "")
            )
        err.write("\r\x1b[K" + " | ".join(parts))
        err.flush()
