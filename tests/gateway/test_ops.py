"""`/healthz`, `/readyz`, `/metrics` and the audit of refused credentials, on a real gateway
process over the Mesos simulator (no node reader is needed for these)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster
from tests.conftest import free_port
from tests.gateway.support import add_user, grant, login
from tests.support.gateway import gateway

PASSWORD = "ops test admin password"
AGENT = "4a5e1c1e-0000-4000-8000-00000000000a-S0"
UNKNOWN = "4a5e1c1e-0000-4000-8000-00000000000a-S9"


def wait_ready(base: str) -> httpx.Response:
    deadline = time.monotonic() + 20
    while True:
        r = httpx.get(f"{base}/readyz", timeout=5)
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log_path = tmp_path_factory.mktemp("gwlog") / "gateway.log"
    cluster = SimCluster(master_id="4a5e1c1e-0000-4000-8000-00000000000a")
    cluster.agents = [SimAgent(AGENT, "127.0.0.2")]
    with (
        MesosSimulator(cluster, masters=[("127.0.0.1", 0)]) as sim,
        gateway(
            tmp_path_factory.mktemp("gw"),
            f"--mesos={sim.urls[0]}",
            "--log-level=INFO",
            password=PASSWORD,
            log_path=log_path,
        ) as base,
    ):
        yield base, log_path


def test_healthz_answers_without_credentials(cluster_gateway: tuple[str, Path]) -> None:
    r = httpx.get(f"{cluster_gateway[0]}/healthz")
    assert (r.status_code, r.text) == (200, "ok\n")


def test_ready_once_the_cluster_state_is_loaded(cluster_gateway: tuple[str, Path]) -> None:
    r = wait_ready(cluster_gateway[0])
    assert (r.status_code, r.text) == (200, "ready\n")


def test_not_ready_without_mesos_and_says_why(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port('127.0.0.1')}"  # nothing listens there
    with gateway(tmp_path, f"--mesos={dead}", password=PASSWORD) as base:
        r = httpx.get(f"{base}/readyz")
        assert r.status_code == 503
        assert r.text.startswith("not ready: cluster state unusable (")
        assert "IAM" not in r.text  # the IAM store itself is fine
        assert httpx.get(f"{base}/healthz").status_code == 200


def test_metrics_need_a_token_and_the_metrics_permission(
    cluster_gateway: tuple[str, Path],
) -> None:
    base = cluster_gateway[0]
    assert httpx.get(f"{base}/metrics").status_code == 401
    admin = login(base, "admin", PASSWORD)
    nobody = add_user(base, admin, "metrics-nobody", "nobody password 1")
    denied = httpx.get(f"{base}/metrics", headers=nobody)
    assert denied.status_code == 403
    assert "dcos:adminrouter:ops:metrics" in denied.text
    grant(base, admin, "dcos:adminrouter:ops:metrics", "metrics-nobody")
    assert httpx.get(f"{base}/metrics", headers=nobody).status_code == 200


def counter(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}\{{{re.escape(want)}\}} (\S+)$" if labels else rf"^{name} (\S+)$"
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def test_metrics_count_requests_by_route_template_and_auth_failures_by_reason(
    cluster_gateway: tuple[str, Path],
) -> None:
    base = cluster_gateway[0]
    admin = login(base, "admin", PASSWORD)
    wait_ready(base)
    before = httpx.get(f"{base}/metrics", headers=admin)
    assert before.headers["content-type"].startswith("text/plain; version=0.0.4")
    route = "/system/v1/agent/{agent_id}/logs{rest:path}"
    labels = {"route": route, "method": "GET", "status": "404"}
    missing = counter(before.text, "logway_gateway_auth_failures_total", reason="missing")
    malformed = counter(before.text, "logway_gateway_auth_failures_total", reason="malformed")
    not_found = counter(before.text, "logway_gateway_requests_total", **labels)

    assert httpx.get(f"{base}/system/v1/agent/{UNKNOWN}/logs/v1/range/").status_code == 401
    bad = {"Authorization": "token=not-a-jwt"}
    assert httpx.get(f"{base}/system/v1/agent/{UNKNOWN}/logs/", headers=bad).status_code == 401
    for _ in range(2):
        r = httpx.get(f"{base}/system/v1/agent/{UNKNOWN}/logs/v1/range/", headers=admin)
        assert r.status_code == 404

    for invented in ("BREW", "PROPFIND"):
        httpx.request(invented, f"{base}/healthz")

    after = httpx.get(f"{base}/metrics", headers=admin).text
    assert 'method="BREW"' not in after
    assert 'route="/healthz",method="OTHER"' in after
    assert counter(after, "logway_gateway_auth_failures_total", reason="missing") == missing + 1
    assert counter(after, "logway_gateway_auth_failures_total", reason="malformed") == malformed + 1
    assert counter(after, "logway_gateway_requests_total", **labels) == not_found + 2
    assert UNKNOWN not in after  # ids never become label values
    assert 0 <= counter(after, "logway_gateway_cluster_state_age_seconds") < 3600
    assert counter(after, "logway_gateway_ready") == 1
    for name in ("active_streams", "bytes_relayed_total", "entries_relayed_total"):
        assert f"\nlogway_proxy_{name} " in after


def test_refused_credentials_are_audited_without_the_token(
    cluster_gateway: tuple[str, Path],
) -> None:
    base, log_path = cluster_gateway
    secret = "eyJhbGciOiJub25lIn0.eyJ1aWQiOiJtYWxsb3J5In0.c2VjcmV0LXNpZ25hdHVyZQ"
    path = "/system/v1/logs/v1/range/"
    r = httpx.get(f"{base}{path}", headers={"Authorization": f"token={secret}"})
    assert r.status_code == 401
    expected = f'type=audit object={path} action=read result=deny reason="not authenticated:'
    deadline = time.monotonic() + 10
    while expected not in log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    text = log_path.read_text()
    assert expected in text
    assert secret not in text
    assert "c2VjcmV0" not in text


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_no_framework_documents(cluster_gateway: tuple[str, Path], path: str) -> None:
    # Not in the route table, so not served: openapi/gateway.json is the document.
    assert httpx.get(f"{cluster_gateway[0]}{path}", timeout=10).status_code == 404


@pytest.mark.parametrize(
    "headers",
    [{f"x-h{i}": "v" for i in range(300)}, {"cookie": "c=" + "a" * 200_000}],
)
def test_oversized_header_blocks_are_431_before_authentication(
    cluster_gateway: tuple[str, Path], headers: dict[str, str]
) -> None:
    base, _ = cluster_gateway
    r = httpx.get(f"{base}/capabilities", headers=headers, timeout=10)
    assert r.status_code == 431, r.text
    assert "Traceback" not in r.text
