"""nginx `proxy_pass` in front of a node reader: Admin Router's agent logs location without its
Lua (no JWT validation, no authorization), as the peer the gateway is measured against.

Runs in the foreground from a temporary prefix (config, pid, temp dirs), so it binds only the
loopback address we give it and leaves nothing behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.servers import Server, ServerError, free_port

NGINX = "nginx"
NGINX_SBIN = Path("/usr/sbin/nginx")  # not on PATH for every user
WORKER_PROCESSES = 1  # one uvicorn worker on the other side
UPSTREAM_KEEPALIVE = 64
STATIC_PATH = "/__static"  # the load client's ceiling: a file, no upstream


def nginx_binary() -> str:
    found = shutil.which(NGINX) or (str(NGINX_SBIN) if NGINX_SBIN.exists() else None)
    if found is None:
        raise ServerError(
            "nginx is not installed: the gateway bench compares against nginx proxy_pass. "
            "`make install` (or `make apt`, as root) installs it from APT_PACKAGES."
        )
    return found


def render_config(
    *, prefix: Path, listen: str, upstream: str, authorization: str, static_file: Path
) -> str:
    """Admin Router's agent logs location (reference/peers.md §6): HTTP/1.1 to the upstream
    with keep-alive, buffering off, the path after `/logs` and the query passed on, and the
    caller's credential replaced by the gateway's own."""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
worker_processes {WORKER_PROCESSES};
pid {prefix / "nginx.pid"};
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
{temp}
    upstream node_reader {{
        server {upstream};
        keepalive {UPSTREAM_KEEPALIVE};
    }}
    server {{
        listen {listen};
        location = {STATIC_PATH} {{
            default_type application/json;
            alias {static_file};
        }}
        location ~ ^/system/v1/agent/([0-9a-zA-Z-]+)/logs(.*)$ {{
            proxy_pass http://node_reader$2$is_args$args;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "{authorization}";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_cache off;
        }}
    }}
}}
"""


def nginx_proxy(
    directory: Path, *, host: str, upstream: str, authorization: str, static_body: bytes
) -> Server:
    """An nginx Server (not started) proxying the agent logs location to `upstream`, and
    serving `static_body` at STATIC_PATH."""
    binary = nginx_binary()
    port = free_port(host)
    # Started as root, nginx's workers run as `nobody`: they must reach the static file
    # (the directory stays unreadable, only traversable).
    directory.chmod(0o711)
    static_file = directory / "static.json"
    static_file.write_bytes(static_body)
    static_file.chmod(0o644)
    conf = directory / "nginx.conf"
    conf.write_text(
        render_config(
            prefix=directory,
            listen=f"{host}:{port}",
            upstream=upstream,
            authorization=authorization,
            static_file=static_file,
        )
    )
    conf.chmod(0o600)  # it holds a token
    argv = [binary, "-p", str(directory), "-c", str(conf), "-g", "daemon off; error_log stderr;"]
    return Server("nginx", argv, host=host, port=port)
