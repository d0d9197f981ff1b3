"""Admin Router's test-harness cases (reference §6.2) against a real `logway gateway` process.

The node readers are Admin Router harness-style reflectors on 127.0.0.2 and 127.0.0.3 (they
answer with what they received), placed by the Mesos simulator exactly as AR's mock places its
agents: `…-S1` on 127.0.0.2, `…-S0` on 127.0.0.3; the leading master is on 127.0.0.2 and this
master's own reader on 127.0.0.3. Tokens are signed with the gateway IAM's own key, as AR's
harness signs with the IAM test key.

Deliberate differences from Admin Router, each asserted below:
* the gateway talks to node readers directly, so the node sees `/<rest>`, not the agent
  Admin Router's `/system/v1/logs/<rest>` (cases 1-3, 8, 13);
* the node sees the gateway's own token, never the caller's (cases 19-24);
* `exp` is required (case 22: AR accepted tokens that never expire), and checked with a 30 s
  clock-skew leeway (case 23 expires the token 45 s ago, not AR's 15 s);
* 401 bodies are text/plain with `WWW-Authenticate: acsjwt` (case 16);
* agent routes need `dcos:adminrouter:ops:system-logs` like the master's (case 40: AR Open
  asked for authentication only).
"""

from __future__ import annotations

import http.cookies
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from jose import jws, jwt
from jose.backends.cryptography_backend import CryptographyRSAKey

from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster
from app.iam.key_ring import KeyRing
from tests.gateway.support import add_user, grant, login, port_free_on
from tests.proxy.harness import serve_in_thread
from tests.proxy.upstreams import Reflector
from tests.support.gateway import gateway

PASSWORD = "harness admin password"
MASTER_ID = "de1baf83-c36c-4d23-9cb0-f89f596cd6ab"
S1, S0 = f"{MASTER_ID}-S1", f"{MASTER_ID}-S0"
UNKNOWN = "bdcd424a-b59e-4df4-b492-b54e38926bd8-S0"
AGENT_HOST = {S1: "127.0.0.2", S0: "127.0.0.3"}
SYSTEM_LOGS = "dcos:adminrouter:ops:system-logs"


@dataclass
class Harness:
    base: str
    reflectors: dict[str, Reflector]  # by host
    keys: KeyRing
    log_path: Path
    bozydar: dict[str, str]  # holds system-logs read
    nobody: dict[str, str]  # holds nothing

    def get(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        return httpx.get(self.base + path, headers=headers, timeout=15, **kw)

    def seen(self, host: str) -> dict[str, Any]:
        """The last request the reflector on `host` received."""
        requests = self.reflectors[host].requests
        assert requests, f"nothing reached {host}"
        return requests[-1]

    def token(self, claims: dict[str, Any]) -> str:
        key = self.keys.current
        signer = CryptographyRSAKey(key.private_key, "RS256")
        return jws.sign(claims, signer, headers={"kid": key.kid}, algorithm="RS256")

    def clear(self) -> None:
        for reflector in self.reflectors.values():
            reflector.requests.clear()


def headers_of(seen: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in seen["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    port = port_free_on(("127.0.0.2", "127.0.0.3"))
    reflectors = {host: Reflector() for host in ("127.0.0.2", "127.0.0.3")}
    cluster = SimCluster(master_id=MASTER_ID)
    cluster.agents = [SimAgent(agent, host) for agent, host in AGENT_HOST.items()]
    data_dir = tmp_path_factory.mktemp("gw")
    log_path = tmp_path_factory.mktemp("gwlog") / "gateway.log"
    with (
        serve_in_thread(reflectors["127.0.0.2"], "127.0.0.2", port),
        serve_in_thread(reflectors["127.0.0.3"], "127.0.0.3", port),
        MesosSimulator(cluster, masters=[("127.0.0.2", 0)]) as sim,
        gateway(
            data_dir,
            f"--mesos={sim.urls[0]}",
            f"--reader-port={port}",
            f"--master-reader-url=http://127.0.0.3:{port}",
            "--log-level=INFO",
            password=PASSWORD,
            log_path=log_path,
        ) as base,
    ):
        admin = login(base, "admin", PASSWORD)
        bozydar = add_user(base, admin, "bozydar", "bozydar password")
        grant(base, admin, SYSTEM_LOGS, "bozydar")
        nobody = add_user(base, admin, "nobody", "nobody password")
        keys = KeyRing(data_dir / "keys", token_lifetime=3600)
        keys.load()
        yield Harness(base, reflectors, keys, log_path, bozydar, nobody)


@pytest.fixture
def h(harness: Harness) -> Harness:
    harness.clear()
    return harness


# Agent routing (cases 1-7)


def test_case_1_agent_request_reaches_its_node_with_forwarding_headers(h: Harness) -> None:
    r = h.get(f"/system/v1/agent/{S1}/logs/v1/range/?key=value&var=num", h.bozydar)
    assert r.status_code == 200, r.text
    seen = h.seen("127.0.0.2")
    assert (seen["path"], seen["query"]) == ("/v1/range/", "key=value&var=num")
    assert seen["http_version"] == "1.1"
    headers = headers_of(seen)
    assert "connection" not in headers
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert headers["x-forwarded-proto"] == ["http"]
    assert headers["x-real-ip"] == ["127.0.0.1"]
    assert headers["x-logway-uid"] == ["bozydar"]


def test_case_2_trailing_slash_and_none(h: Harness) -> None:
    # Admin Router forwarded `…/logs/` itself; Logway forwards only the reader's log routes
    # (issue 12 §6), and a reader serves nothing at `/`.
    assert h.get(f"/system/v1/agent/{S1}/logs/", h.bozydar).status_code == 404
    assert not h.reflectors["127.0.0.2"].requests
    r = h.get(f"/system/v1/agent/{S1}/logs", h.bozydar)
    assert r.status_code == 301
    assert r.headers["location"] == f"/system/v1/agent/{S1}/logs/"
    assert not h.reflectors["127.0.0.2"].requests


@pytest.mark.parametrize(
    "rest", ["/metrics", "/", "/v1/nope", "/v2/task/x", "/v1/range/framework/f/executor/e"]
)
def test_only_the_readers_log_routes_are_forwarded(h: Harness, rest: str) -> None:
    # Issue 12 §6: `…/logs/metrics` reached the reader's own metrics.
    for prefix in (
        f"/system/v1/agent/{S1}/logs",
        "/system/v1/logs",
        "/system/v1/leader/mesos/logs",
    ):
        r = h.get(prefix + rest, h.bozydar)
        assert r.status_code == 404, (prefix, rest, r.text)
    assert not h.reflectors["127.0.0.2"].requests
    assert not h.reflectors["127.0.0.3"].requests


def test_case_3_each_agent_to_its_own_node(h: Harness) -> None:
    assert h.get(f"/system/v1/agent/{S0}/logs/v1/range/", h.bozydar).status_code == 200
    assert h.seen("127.0.0.3")["path"] == "/v1/range/"
    assert not h.reflectors["127.0.0.2"].requests


def test_case_5_dcos_cookies_are_stripped_others_kept(h: Harness) -> None:
    token = h.bozydar["Authorization"].removeprefix("token=")
    only_dcos = f"dcos-acs-auth-cookie={token}; dcos-acs-info-cookie=abc"
    assert h.get(f"/system/v1/agent/{S1}/logs/v1/range/", {"Cookie": only_dcos}).status_code == 200
    assert "cookie" not in headers_of(h.seen("127.0.0.2"))
    mixed = only_dcos + "; some-random-cookie=some-random-value"
    assert h.get(f"/system/v1/agent/{S1}/logs/v1/range/", {"Cookie": mixed}).status_code == 200
    cookies = headers_of(h.seen("127.0.0.2"))["cookie"]
    assert len(cookies) == 1
    parsed = http.cookies.SimpleCookie(cookies[0])
    assert {k: v.value for k, v in parsed.items()} == {"some-random-cookie": "some-random-value"}


def test_case_6_accept_encoding_never_reaches_the_node(h: Harness) -> None:
    headers = {**h.bozydar, "Accept-Encoding": "gzip"}
    assert h.get(f"/system/v1/agent/{S0}/logs/v1/range/", headers).status_code == 200
    assert "accept-encoding" not in headers_of(h.seen("127.0.0.3"))


def test_case_7_authentication_before_agent_resolution(h: Harness) -> None:
    path = f"/system/v1/agent/{UNKNOWN}/logs/v1/range/"
    anonymous = h.get(path)
    assert anonymous.status_code == 401
    r = h.get(path, h.bozydar)
    assert r.status_code == 404
    assert r.text == f"agent `{UNKNOWN}` unknown\n"


# Logs routes (cases 8-12)


def test_case_8_9_master_logs_reach_this_masters_reader(h: Harness) -> None:
    assert h.get("/system/v1/logs/v1/range/", h.bozydar).status_code == 200
    assert h.seen("127.0.0.3")["path"] == "/v1/range/"
    assert h.get("/system/v1/logs/", h.bozydar).status_code == 404


def test_case_10_logs_without_slash_is_a_relative_301(h: Harness) -> None:
    r = h.get("/system/v1/logs", h.bozydar)
    assert r.status_code == 301
    assert r.headers["location"] == "/system/v1/logs/"


def test_case_12_x_accel_buffering_reaches_the_client(h: Harness) -> None:
    for path in ("/system/v1/logs/v1/range/", f"/system/v1/agent/{S1}/logs/v1/range/"):
        r = h.get(path, h.bozydar)
        assert r.headers["x-accel-buffering"] == "TEST", path


# Leader route (case 13)


def test_case_13_leader_route_reaches_the_leading_masters_reader(h: Harness) -> None:
    r = h.get("/system/v1/leader/mesos/logs/v1/range/?key=value&var=num", h.bozydar)
    assert r.status_code == 200, r.text
    seen = h.seen("127.0.0.2")
    assert (seen["path"], seen["query"], seen["http_version"]) == (
        "/v1/range/",
        "key=value&var=num",
        "1.1",
    )
    assert h.get("/system/v1/leader/mesos/logs/", h.bozydar).status_code == 404
    r = h.get("/system/v1/leader/mesos/logs", h.bozydar)
    assert (r.status_code, r.headers["location"]) == (301, "/system/v1/leader/mesos/logs/")


# Authentication (cases 16-25)

PATH = f"/system/v1/agent/{S1}/logs/v1/range/"


def test_case_16_no_token(h: Harness) -> None:
    r = h.get(PATH)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "acsjwt"
    assert r.headers["content-type"].startswith("text/plain")
    assert not h.reflectors["127.0.0.2"].requests


def test_case_17_invalid_cookie(h: Harness) -> None:
    assert h.get(PATH, {"Cookie": "dcos-acs-auth-cookie=invalid"}).status_code == 401


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"uid": None}, id="18-uid-null"),
        pytest.param({}, id="21-no-uid"),
        pytest.param({"uid": "bozydar", "exp": None}, id="22-no-exp-is-refused"),
        # AR's case uses now-15; that is inside our 30 s clock-skew leeway (security J12).
        pytest.param({"uid": "bozydar", "exp": -45}, id="23-expired"),
    ],
)
def test_cases_18_21_22_23_bad_claims(h: Harness, claims: dict[str, Any]) -> None:
    body = {"exp": int(time.time()) + 3600, **claims}
    if body["exp"] is None:
        del body["exp"]
    elif body["exp"] < 0:
        body["exp"] = int(time.time()) + body["exp"]
    token = h.token(body)
    for headers in (
        {"Authorization": f"token={token}"},
        {"Cookie": f"dcos-acs-auth-cookie={token}"},
    ):
        assert h.get(PATH, headers).status_code == 401, headers
    assert not h.reflectors["127.0.0.2"].requests


def test_case_19_24_valid_token_in_cookie_header_or_bearer(h: Harness) -> None:
    token = h.bozydar["Authorization"].removeprefix("token=")
    for headers in (
        {"Cookie": f"dcos-acs-auth-cookie={token}"},
        {"Authorization": f"token={token}"},
        {"Authorization": f"Bearer {token}"},
    ):
        assert h.get(PATH, headers).status_code == 200, headers
        seen = headers_of(h.seen("127.0.0.2"))
        # The node gets the gateway's own credential, never the caller's.
        (forwarded,) = seen["authorization"]
        assert token not in forwarded
        assert jwt.get_unverified_claims(forwarded.removeprefix("token="))["uid"] == (
            "logway-gateway"
        )


def test_case_20_header_wins_over_cookie(h: Harness) -> None:
    other = h.nobody["Authorization"].removeprefix("token=")
    headers = {**h.bozydar, "Cookie": f"dcos-acs-auth-cookie={other}"}
    assert h.get(PATH, headers).status_code == 200
    assert headers_of(h.seen("127.0.0.2"))["x-logway-uid"] == ["bozydar"]


def test_case_25_forged_token(h: Harness) -> None:
    token = h.bozydar["Authorization"].removeprefix("token=")
    header, _, signature = token.split(".")
    claims = jwt.get_unverified_claims(token)
    forged_payload = jws.base64url_encode(json.dumps({**claims, "uid": "fafok"}).encode())
    forged = f"{header}.{forged_payload.decode()}.{signature}"
    assert h.get(PATH, {"Authorization": f"token={forged}"}).status_code == 401


# Authorization with its audit (EE cases 39-42)


def audit_lines(h: Harness, pattern: str) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        found = [line for line in h.log_path.read_text().splitlines() if re.search(pattern, line)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_case_39_system_logs_needs_the_permission_and_every_decision_is_audited(
    h: Harness,
) -> None:
    path = "/system/v1/logs/v1/range/"
    assert h.get(path).status_code == 401
    assert audit_lines(h, rf'object={re.escape(path)} .*result=deny reason="not authenticated')
    assert h.get(path, h.bozydar).status_code == 200
    assert audit_lines(h, rf"object={SYSTEM_LOGS} action=read result=allow .*uid=bozydar")
    assert h.get(path, h.nobody).status_code == 403
    assert audit_lines(h, rf"object={SYSTEM_LOGS} action=read result=deny .*uid=nobody")


def test_case_40_agent_routes_need_the_permission_too(h: Harness) -> None:
    assert h.get(f"/system/v1/agent/{S1}/logs/v1/range/", h.nobody).status_code == 403
    assert not h.reflectors["127.0.0.2"].requests


def test_case_41_client_headers_reach_the_node(h: Harness) -> None:
    path = f"/system/v1/agent/{S1}/logs/v1/stream/framework/test/executor/test/container/test"
    headers = {**h.bozydar, "X-Accel-Buffering": "no", "Last-Event-ID": "s=1;i=2"}
    assert h.get(path, headers).status_code == 200
    seen = headers_of(h.seen("127.0.0.2"))
    assert seen["x-accel-buffering"] == ["no"]
    assert seen["last-event-id"] == ["s=1;i=2"]


@pytest.mark.parametrize("method", ["HEAD", "POST", "DELETE"])
def test_log_routes_answer_get_only_and_every_405_says_allow(h: Harness, method: str) -> None:
    # Issue 12 §6: HEAD was routed, then refused by the reader without Allow.
    for path in (f"/system/v1/agent/{S1}/logs/v1/range/", "/system/v1/logs/v1/range/"):
        r = httpx.request(method, h.base + path, headers=h.bozydar, timeout=10)
        assert r.status_code == 405, (method, path)
        assert r.headers["allow"] == "GET"
    r = httpx.request(method, h.base + "/acs/api/v1/auth/jwks", timeout=10)
    assert r.status_code == 405
    assert "GET" in r.headers["allow"]
    assert not h.reflectors["127.0.0.2"].requests
    assert not h.reflectors["127.0.0.3"].requests
