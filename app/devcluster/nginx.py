"""nginx (Debian's `nginx-light`) as the load balancer in front of gateway replicas, for
`logway dev --replicas N` and the tests: its own prefix directory, no daemon, streams relayed
unbuffered (the gateway's follows and SSE), a failed replica skipped for new requests."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# Each stream through the balancer holds two connections (client, replica): thousands of
# followers need more than nginx's default 512 (issue 17).
WORKER_CONNECTIONS = 16384
WORKER_OPEN_FILES = 2 * WORKER_CONNECTIONS


def nginx_conf(listen: str, upstreams: Sequence[str], prefix: Path) -> str:
    """`listen` host:port; `upstreams` host:port of each replica."""
    servers = "\n".join(f"        server {u} max_fails=1 fail_timeout=2s;" for u in upstreams)
    return f"""worker_processes 1;
worker_rlimit_nofile {WORKER_OPEN_FILES};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections {WORKER_CONNECTIONS}; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    upstream logway_gateways {{
{servers}
        keepalive 16;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://logway_gateways;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 1h;
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
"""


def write_conf(prefix: Path, listen: str, upstreams: Sequence[str]) -> Path:
    prefix.mkdir(parents=True, exist_ok=True)
    path = prefix / "nginx.conf"
    path.write_text(nginx_conf(listen, upstreams, prefix))
    return path


def nginx_argv(conf: Path, prefix: Path) -> list[str]:
    return [NGINX, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"]
