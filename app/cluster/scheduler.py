"""Where a framework's scheduler leads, from the Mesos state alone (issue 18).

Admin Router asked Marathon itself (`/v2/leader`, reference §3.3). The master's state says it
too: only the leading Marathon holds the framework's registration, so the active framework's
scheduler address (`pid` host, else `hostname`) is the leader's. That address is what the
framework told Mesos, so it is a claim: it must name a node the gateway knows otherwise (the
leading master, a master it polls by IP address, or an agent by its `pid` address or its
hostname), and the read goes to that node's reader as the snapshot builds its URL. Anything
else is refused (503 naming why), never proxied to.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.cluster.model import Agent, ClusterSnapshot, Framework, Master
from app.core.errors import Unavailable

MARATHON = "marathon"  # DC/OS's root Marathon; Marathon-on-Marathon instances are named apart


@dataclass(frozen=True, slots=True)
class SchedulerNode:
    """The node a framework's leading scheduler runs on."""

    framework: Framework
    node: Master | Agent

    @property
    def reader_url(self) -> str:
        return self.node.reader_url


class SchedulerUnknown(Unavailable):
    """No active framework of that name, several, or one registered from an unknown node."""


def scheduler_node(snapshot: ClusterSnapshot, name: str) -> SchedulerNode:
    active = [f for f in snapshot.frameworks.values() if f.name == name and f.active]
    if not active:
        # Admin Router's words for a Marathon it could not find (reference §3.3).
        raise SchedulerUnknown(f"{name} leader is unknown: no active `{name}` framework in Mesos")
    if len(active) > 1:
        ids = ", ".join(sorted(f.id for f in active))
        raise SchedulerUnknown(
            f"{name} leader is unknown: several active `{name}` frameworks ({ids})"
        )
    framework = active[0]
    host = framework.scheduler_host
    if host is None:
        raise SchedulerUnknown(
            f"{name} leader is unknown: framework {framework.id} names no scheduler address"
        )
    node = known_node(snapshot, host)
    if node is None:
        raise SchedulerUnknown(
            f"{name} leader is unknown: framework {framework.id} registered from {host!r}, "
            "which is no master or agent of this cluster; the gateway reads only nodes the "
            "Mesos state knows"
        )
    return SchedulerNode(framework, node)


def known_node(snapshot: ClusterSnapshot, host: str) -> Master | Agent | None:
    """The master or agent at `host`: an IP from a `pid`, or a hostname Mesos reports."""
    for master in snapshot.masters or (snapshot.leader,):
        if host in (master.ip, master.hostname):
            return master
    by_name = None
    for agent in snapshot.agents.values():
        if agent.ip == host:
            return agent
        if by_name is None and agent.hostname == host:
            by_name = agent
    return by_name
