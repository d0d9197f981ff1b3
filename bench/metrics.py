"""The node reader's /metrics gauges, and waiting for them to reach a value."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

FOLLOWERS = "logway_node_followers"
HANDLES = "logway_node_journal_handles"
POLL_INTERVAL = 0.1
WAIT_TIMEOUT = 60.0


def parse(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            values[name] = float(value)
    return values


async def scrape(client: httpx.AsyncClient, base_url: str) -> dict[str, float]:
    response = await client.get(f"{base_url}/metrics")
    response.raise_for_status()
    return parse(response.text)


async def wait_for_followers(
    client: httpx.AsyncClient,
    base_url: str,
    done: Callable[[int], bool],
    timeout: float = WAIT_TIMEOUT,
) -> tuple[int, float]:
    """Poll until `done(followers)`; returns the last count and the seconds waited."""
    started = time.monotonic()
    while True:
        followers = int((await scrape(client, base_url))[FOLLOWERS])
        waited = time.monotonic() - started
        if done(followers) or waited > timeout:
            return followers, waited
        await asyncio.sleep(POLL_INTERVAL)
