"""`Proxy.forward`: the one call a gateway route makes once it knows the node and has
authorised the caller.

    proxy = Proxy(HttpUpstream(client), metrics=metrics)      # in the lifespan
    return await proxy.forward(node.base_url, UpstreamCall.from_request(...))   # in a route

Failures before the first byte become a JSON 502/503/504 naming the node; a bad path or query
raises `BadRequest` (400) for the app's error handlers.
"""

from __future__ import annotations

import logging

from starlette.responses import Response

from app.proxy.call import SSE, Upstream, UpstreamCall, UpstreamResponse
from app.proxy.errors import UpstreamError, UpstreamRejected, upstream_problem
from app.proxy.headers import response_headers
from app.proxy.metrics import ProxyMetrics
from app.proxy.relay import SEND_TIMEOUT, RelayResponse, ResumePolicy
from app.proxy.share import SharedFollows

log = logging.getLogger(__name__)

NO_BODY_STATUSES = frozenset({204, 304})


class Proxy:
    def __init__(
        self,
        upstream: Upstream,
        *,
        metrics: ProxyMetrics | None = None,
        resume: ResumePolicy | None = None,
        send_timeout: float = SEND_TIMEOUT,
        share: bool = True,
    ) -> None:
        self.upstream = upstream
        self.send_timeout = send_timeout
        self.metrics = metrics if metrics is not None else ProxyMetrics()
        self.resume = resume if resume is not None else ResumePolicy()
        # Event-stream follows with equal upstream requests share one (issue 17).
        self.shares: SharedFollows | None = (
            SharedFollows(
                upstream, metrics=self.metrics, policy=self.resume, send_timeout=send_timeout
            )
            if share
            else None
        )

    def _failed(self, call: UpstreamCall, exc: UpstreamError) -> Response:
        self.metrics.upstream_error(exc.kind)
        cause = type(exc.__cause__).__name__ if exc.__cause__ else "-"
        log.warning(
            "node %s: %s %s: %s (%s)", call.node, call.method, call.path, exc.message, cause
        )
        return upstream_problem(exc)

    async def forward(self, node_base_url: str, call: UpstreamCall) -> Response:
        """The caller's own relay of the node's answer, or (a follow others share) a place
        among the followers of one shared upstream stream. Call only once `call` is
        authorized: a share is keyed on the upstream request alone."""
        follow = call.follow
        shares = self.shares
        plan = shares.plan(node_base_url, call) if follow and shares is not None else None
        share = None
        if plan is not None and shares is not None:
            joined = await shares.join(plan)
            if joined is not None:
                return joined
            share = shares.starting(plan)
            if share is not None:
                call = plan.call
        try:
            opened = await self.upstream.open(node_base_url, call)
        except UpstreamError as exc:
            if share is not None:
                share.fail()
            return self._failed(call, exc)
        if opened.status_code in (401, 403):
            # The node authenticates the gateway, never the caller: this is our credential
            # (or the node's configuration), and the caller must not be told to log in again.
            await opened.aclose()
            if share is not None:
                share.fail()
            message = "the node refused the gateway's credential"
            return self._failed(call, UpstreamRejected(message, node=call.node))
        headers = response_headers(opened.headers)
        if follow and not any(name == b"x-accel-buffering" for name, _ in headers):
            headers.append((b"x-accel-buffering", b"no"))
        resumable = follow and opened.status_code == 200 and opened.media_type == SSE
        if share is not None and shares is not None:
            if resumable:
                return shares.first(share, opened, headers)
            share.fail()  # the node's error (a 400, a 404) goes to this caller alone

        async def reopen(last_event_id: str | None) -> UpstreamResponse:
            again = call if last_event_id is None else call.resumed(last_event_id)
            return await self.upstream.open(node_base_url, again)

        return RelayResponse(
            opened,
            node=call.node,
            headers=headers,
            metrics=self.metrics,
            reopen=reopen if resumable else None,
            policy=self.resume,
            body=call.method != "HEAD" and opened.status_code not in NO_BODY_STATUSES,
            send_timeout=self.send_timeout,
        )


__all__ = ["Proxy"]
