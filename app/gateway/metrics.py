"""The gateway's Prometheus metrics: requests by route and status, authentication failures by
reason, and, rendered beside them, the proxy's streams, bytes and entries and the cluster
state's age. Plain counters updated on the event loop, no metrics library."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "logway_gateway"
UNMATCHED = "unmatched"
# Any other method a client invents counts as "OTHER": labels must stay a small, fixed set.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass
class GatewayMetrics:
    # (route template, method, status) -> count; the template, not the path, so that agent
    # and task ids never become label values.
    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    auth_failures: Counter[str] = field(default_factory=Counter)

    def prometheus(self, *, snapshot_age: float | None, ready: bool) -> str:
        lines = [f"# TYPE {PREFIX}_requests_total counter"]
        lines += [
            f'{PREFIX}_requests_total{{route="{_label(route)}",method="{method}",'
            f'status="{status}"}} {count}'
            for (route, method, status), count in sorted(self.requests.items())
        ]
        lines.append(f"# TYPE {PREFIX}_auth_failures_total counter")
        lines += [
            f'{PREFIX}_auth_failures_total{{reason="{reason}"}} {count}'
            for reason, count in sorted(self.auth_failures.items())
        ]
        lines.append(f"# TYPE {PREFIX}_cluster_state_age_seconds gauge")
        age = "NaN" if snapshot_age is None else f"{snapshot_age:.3f}"
        lines.append(f"{PREFIX}_cluster_state_age_seconds {age}")
        lines.append(f"# TYPE {PREFIX}_ready gauge")
        lines.append(f"{PREFIX}_ready {int(ready)}")
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class RequestMetrics:
    """ASGI middleware: one count per finished request, labelled with the route template the
    router matched (`scope["route"]`) and the status sent. A stream counts when it ends."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # nothing sent: the server answers 500 (or the client left)

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED)
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            self.metrics.requests[(route, method, status)] += 1


__all__ = ["GatewayMetrics", "RequestMetrics"]
