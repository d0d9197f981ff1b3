"""`python bench/stall_watch.py OUT logway ARGS…`: a Logway server with two watches that write
one line per event to OUT, for `bench.stalls` (issue 17, target 4):

* `gc MONOTONIC CPU_MS generation=N objects=M`: every collection that took 0.5 ms of CPU or
  more, and every full one (`gc.callbacks`, CPU time of the collecting thread);
* `lag MONOTONIC WALL_MS cpu=CPU_MS`: the event loop came back to a 2 ms timer 2 ms or more
  late; `cpu` is the loop thread's own CPU in that time (the rest: waiting for a CPU).

A test build only: the watches cost the loop a wake-up every 2 ms.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from typing import Any

import uvicorn.server

TICK = 0.002
LAG_MS = 2.0
GC_MS = 0.5


def main() -> int:
    out = open(sys.argv[1], "a", buffering=1)  # noqa: SIM115 - open for the process's life
    started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.thread_time()
            return
        cpu = (time.thread_time() - started[0]) * 1e3
        generation = info["generation"]
        if cpu >= GC_MS or generation == 2:
            objects = len(gc.get_objects(2)) if generation == 2 else 0
            out.write(
                f"gc {time.monotonic():.6f} {cpu:.3f} generation={generation} objects={objects}\n"
            )

    async def watch_loop() -> None:
        while True:
            wall, cpu = time.monotonic(), time.thread_time()
            await asyncio.sleep(TICK)
            lag = (time.monotonic() - wall - TICK) * 1e3
            if lag >= LAG_MS:
                used = (time.thread_time() - cpu) * 1e3
                out.write(f"lag {time.monotonic():.6f} {lag:.3f} cpu={used:.3f}\n")

    startup = uvicorn.server.Server.startup

    async def watched_startup(self: uvicorn.server.Server, sockets: Any = None) -> None:
        asyncio.get_running_loop().create_task(watch_loop())
        await startup(self, sockets)

    uvicorn.server.Server.startup = watched_startup  # type: ignore[method-assign]
    gc.callbacks.append(on_gc)
    from app.cli.main import main as logway

    return logway(sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
