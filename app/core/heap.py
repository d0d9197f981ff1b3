"""The garbage collector in a long-running server (issue 17, target 4: small ranges through the
gateway at 32 clients, p99 < 20 ms).

CPython's full collection (generation 2) walks every container object the process holds. Once
started, a gateway holds about 120,000 of them (modules, classes, functions, FastAPI's and
pydantic's route and settings models) that live as long as the process. Under load a full
collection ran every few seconds and cost 60-70 ms of CPU each time (`gc.callbacks` timings in
the gateway under 32 paced clients, 2026-12-07), and every request in flight waited for it:
those pauses were the tail of the latency. `freeze_startup_heap`, called once the server is up,
moves what exists then into the permanent generation, which no collection walks: a full
collection then walks only what was built since (the Mesos snapshot, the caches; about 7,000
objects in the bench, ~2 ms).

The young generations keep CPython's thresholds (700, 10, 10): every request leaves reference
cycles that only the collector frees (httpx's response and its stream, the tracebacks of
exceptions handled on the way), so fewer, larger young collections cost as much CPU in all and
stall longer each (generation 0 at 20,000: ~20 ms per generation-1 collection, measured).
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect once (garbage frozen would never be freed), then freeze every object alive.
    Frozen objects are still freed when their last reference goes: only the cycle collector
    no longer looks at them."""
    gc.collect()
    gc.freeze()


__all__ = ["freeze_startup_heap"]
