"""Whom a credential the gateway mints is for (the JWT `aud` claim).

The gateway's own credential is never one bearer token good everywhere (issue 12 §2): a node
reader receives a token addressed to its own address, the Mesos master one addressed to Mesos,
and every Logway verifier refuses a token addressed to anyone else. The address is what the
gateway dials (the agent's IP from the Mesos state and the reader port), so a rogue agent
registration receives a token good only at its own address.
"""

from __future__ import annotations

from urllib.parse import urlsplit

NODE_PREFIX = "logway-node:"
MESOS = "logway-mesos"


def node_audience(host: str, port: int) -> str:
    """`logway-node:<host>:<port>`, the audience of a node reader at that address."""
    return f"{NODE_PREFIX}{host.lower().strip('[]')}:{port}"


def url_audience(url: str) -> str:
    """The audience of the node reader at `url` (`http://10.0.4.7:61001/...`)."""
    parts = urlsplit(url)
    if parts.hostname is None:
        raise ValueError("a node reader URL needs a host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return node_audience(parts.hostname, port)


def is_addressable(audience: str) -> bool:
    """Whether a service may ask the IAM for a token addressed to `audience`."""
    return audience == MESOS or audience.startswith(NODE_PREFIX)
