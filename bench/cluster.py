"""A one-agent cluster, every part real and started here: a fresh journald namespace, the
Mesos simulator naming one agent, `logway gateway` over it, the agent's `logway node` trusting
only the gateway's uid (keys from the gateway's JWKS) (`gateway_and_node`: the forward
section's), and for the gateway section nginx proxying Admin Router's agent logs location to
the same node reader (`one_agent_cluster`).

Each process on its own loopback address, as Admin Router's harness does; all stopped on
the way out, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.authz.route_table import SYSTEM_LOGS_RID
from app.core.audience import node_audience
from app.devcluster.journald import JournaldNamespace
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster
from app.iam.client import IamClient
from app.iam.key_ring import KeyRing
from app.iam.tokens import TokenIssuer
from bench.fill import KeepAlive, fill
from bench.nginx import STATIC_PATH, nginx_binary, nginx_proxy
from bench.servers import Server, ServerError, free_port, logway_gateway, node_reader

MESOS_HOST = "127.0.0.20"
GATEWAY_HOST = "127.0.0.21"
NODE_HOST = "127.0.0.22"
NGINX_HOST = "127.0.0.23"
MASTER_ID = "b0e5c1a2-0000-4000-8000-00000000be0c"
AGENT_ID = f"{MASTER_ID}-S0"
GATEWAY_UID = "logway-gateway"  # GatewaySettings.service_uid
READER_UID = "bench-reader"  # a plain user granted the system logs, nothing more
JWKS_PATH = "/acs/api/v1/auth/jwks"
RESOLVE_TIMEOUT = 30.0
IAM_TIMEOUT = 30.0


# A bench run outlives the gateway's own 5-minute node tokens: mint one for the run.
NODE_TOKEN_LIFETIME = 4 * 3600


def node_token(gateway_data_dir: Path, host: str, port: int) -> str:
    """A token of the gateway's service uid addressed to the node reader at host:port, signed
    with that gateway's key (node readers accept no other, issue 12 §2)."""
    ring = KeyRing(gateway_data_dir / "keys", token_lifetime=NODE_TOKEN_LIFETIME)
    ring.load()
    issuer = TokenIssuer(ring, lifetime=NODE_TOKEN_LIFETIME)
    return issuer.issue(GATEWAY_UID, audience=node_audience(host, port)).token


@dataclass(frozen=True, slots=True)
class Cluster:
    entries: int
    gateway: Server
    node: Server
    nginx: Server
    user_token: str  # READER_UID's, sent to the gateway (and to nginx, which replaces it)
    service_token: str  # GATEWAY_UID's, addressed to the node reader, to read it directly
    directory: Path  # private to this run: header files for curl


def login(http: httpx.Client, uid: str, password: str) -> str:
    return IamClient(http).login(uid, password)


def add_user(http: httpx.Client, admin: str, uid: str) -> str:
    """A new user with a random password; returns its token."""
    password = secrets.token_urlsafe(24)
    if not IamClient(http, token=admin).put_user(uid, {"password": password}):
        raise ServerError(f"the user {uid} exists already")
    return login(http, uid, password)


def grant_read(http: httpx.Client, admin: str, rid: str, uid: str) -> None:
    IamClient(http, token=admin).grant(rid, uid, "read")


def wait_resolved(
    url: str,
    token: str,
    *,
    ok: tuple[int, ...] = (200,),
    timeout: float = RESOLVE_TIMEOUT,
    what: str = "reached the agent",
) -> bytes:
    """The gateway answers 503 until its first Mesos poll; then `url`'s body (a status in
    `ok`: 204 too where an empty read will do)."""
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"token={token}", "Accept": "application/json"}
    while True:
        r = httpx.get(url, headers=headers, timeout=10)
        if r.status_code in ok:
            return r.content
        if time.monotonic() > deadline:
            raise ServerError(f"the gateway never {what}: {r.status_code} {r.text}")
        time.sleep(0.1)


def _header_file(path: Path, token: str) -> Path:
    path.touch(0o600)
    path.write_text(f"Authorization: token={token}\n")
    return path


@dataclass(frozen=True, slots=True)
class Hosts:
    """A loopback address per process: each section its own, as Admin Router's harness."""

    mesos: str = MESOS_HOST
    gateway: str = GATEWAY_HOST
    node: str = NODE_HOST


@dataclass(frozen=True, slots=True)
class Core:
    """The journal, the gateway and the agent's node reader, every part started and ready."""

    namespace: JournaldNamespace
    gateway: Server
    node: Server
    user_token: str  # READER_UID's, sent to the gateway
    service_token: str  # GATEWAY_UID's, addressed to the node reader, to read it directly
    directory: Path  # private to this run


@contextlib.contextmanager
def gateway_and_node(
    entries: int, *, hosts: Hosts = Hosts(), reader_uid: str = READER_UID, prefix: str = "benchgw"
) -> Iterator[Core]:
    """A fresh journald namespace filled with `entries` task lines, the Mesos simulator naming
    one agent, `logway gateway` over it, and the agent's `logway node` trusting only the
    gateway's uid (keys from the gateway's JWKS); `reader_uid` is a user granted the system
    logs, nothing more. The gateway reaches the agent when this yields."""
    password = secrets.token_urlsafe(24)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"logway-{prefix}-")))
        ns = stack.enter_context(JournaldNamespace(f"{prefix}{os.getpid()}"))
        stack.enter_context(KeepAlive(ns.runtime_dir / "stdout"))
        seconds = fill(ns.socket, entries)
        ns.sync()
        print(f"journal {ns.name}: wrote {entries:,} entries in {seconds:.1f} s", flush=True)

        reader_port = free_port(hosts.node)
        mesos = SimCluster(master_id=MASTER_ID)
        mesos.agents = [SimAgent(AGENT_ID, hosts.node)]
        sim = stack.enter_context(MesosSimulator(mesos, masters=[(hosts.mesos, 0)]))
        gw = stack.enter_context(
            logway_gateway(
                tmp / "gateway",
                host=hosts.gateway,
                mesos=sim.urls[0],
                reader_port=reader_port,
                password=password,
            )
        )
        gw.start(JWKS_PATH)
        with httpx.Client(base_url=gw.base_url, timeout=IAM_TIMEOUT) as http:
            admin = login(http, "admin", password)
            add_user(http, admin, GATEWAY_UID)
            user_token = add_user(http, admin, reader_uid)
            grant_read(http, admin, SYSTEM_LOGS_RID, reader_uid)

        auth = (f"--jwks-url={gw.base_url}{JWKS_PATH}", f"--allow-uid={GATEWAY_UID}")
        node = stack.enter_context(
            node_reader(ns.name, host=hosts.node, port=reader_port, auth=auth)
        )
        service_token = node_token(tmp / "gateway", hosts.node, reader_port)
        node.start("/v1/fields/STREAM", headers={"Authorization": f"token={service_token}"})
        print(
            f"Mesos simulator {sim.urls[0]} (agent {AGENT_ID} at {hosts.node}); "
            f"gateway pid {gw.pid} at {gw.base_url}; node reader pid {node.pid} at "
            f"{node.base_url}",
            flush=True,
        )
        yield Core(ns, gw, node, user_token, service_token, tmp)


@contextlib.contextmanager
def one_agent_cluster(entries: int, small_query: str) -> Iterator[Cluster]:
    """`gateway_and_node`, and nginx proxying the agent's logs location to the same node
    reader; `small_query`: the node-reader path nginx's static file copies (the client's
    ceiling is measured on the same bytes)."""
    nginx_binary()  # before minutes of filling: fail at once when it is missing
    with contextlib.ExitStack() as stack:
        core = stack.enter_context(gateway_and_node(entries))
        agent_path = f"/system/v1/agent/{AGENT_ID}/logs{small_query}"
        small = wait_resolved(core.gateway.base_url + agent_path, core.user_token)

        # Its own directory: nginx's workers (`nobody`) must traverse it to the static file,
        # and must not reach the gateway's keys.
        nginx_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="logway-bench-nginx-"))
        nginx = stack.enter_context(
            nginx_proxy(
                Path(nginx_dir),
                host=NGINX_HOST,
                upstream=f"{core.node.host}:{core.node.port}",
                authorization=f"token={core.service_token}",
                static_body=small,
            )
        )
        nginx.start(STATIC_PATH)
        print(
            f"nginx pid {nginx.pid} at {nginx.base_url}; small range body {len(small):,} bytes",
            flush=True,
        )
        tmp = core.directory
        _header_file(tmp / "user.headers", core.user_token)
        _header_file(tmp / "service.headers", core.service_token)
        yield Cluster(
            entries, core.gateway, core.node, nginx, core.user_token, core.service_token, tmp
        )
