"""A real node reader with token authentication (PEM key, uid allow-list)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.core.audience import url_audience
from app.devcluster.journald import JournaldNamespace
from app.devcluster.signing_key import DevKeys
from tests.support.servers import node_reader

GATEWAY_UID = "logway-gateway"


@pytest.fixture
def keys(tmp_path: Path) -> DevKeys:
    return DevKeys.create(tmp_path / "keys")


@pytest.fixture
def base(journal_namespace: JournaldNamespace, keys: DevKeys) -> Iterator[str]:
    with node_reader(
        journal_namespace.name, f"--public-key={keys.public_path}", f"--allow-uid={GATEWAY_UID}"
    ) as url:
        yield url


def for_node(keys: DevKeys, base: str, uid: str, **options: int) -> str:
    """A token addressed to the reader at `base`, as the gateway mints it."""
    return keys.token(uid, audience=url_audience(base), **options)


def get(base: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{base}/v1/range/?skip_prev=1", headers=headers, timeout=10)


def test_no_credentials_is_401_acsjwt(base: str) -> None:
    r = get(base)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "acsjwt"


@pytest.mark.parametrize("scheme", ["token={}", "Bearer {}"])
def test_gateway_token_is_accepted(base: str, keys: DevKeys, scheme: str) -> None:
    r = get(base, authorization=scheme.format(for_node(keys, base, GATEWAY_UID)))
    assert r.status_code in (200, 204)


def test_cookie_is_accepted_only_without_a_header(base: str, keys: DevKeys) -> None:
    good = for_node(keys, base, GATEWAY_UID)
    assert get(base, cookie=f"dcos-acs-auth-cookie={good}").status_code in (200, 204)
    both = get(base, cookie=f"dcos-acs-auth-cookie={good}", authorization="token=bad.to.ken")
    assert both.status_code == 401


def test_other_uid_signed_by_the_same_key_is_refused(base: str, keys: DevKeys) -> None:
    r = get(base, authorization=f"token={for_node(keys, base, 'alice')}")
    assert r.status_code == 401
    assert "alice" not in r.text


def test_token_from_another_key_is_refused(base: str, tmp_path: Path) -> None:
    other = DevKeys.create(tmp_path / "other")
    r = get(base, authorization=f"token={for_node(other, base, GATEWAY_UID)}")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "acsjwt"


def test_expired_token_is_refused(base: str, keys: DevKeys) -> None:
    r = get(base, authorization=f"token={for_node(keys, base, GATEWAY_UID, lifetime=-120)}")
    assert r.status_code == 401


def test_error_body_never_echoes_the_token(base: str, keys: DevKeys) -> None:
    token = for_node(keys, base, "intruder")
    r = get(base, authorization=f"token={token}")
    assert token not in r.text


def test_a_stream_ends_when_the_token_expires(base: str, keys: DevKeys) -> None:
    # J27: a follow must not outlive the credential that opened it.
    token = for_node(keys, base, GATEWAY_UID, lifetime=2)
    started = time.monotonic()
    with httpx.stream(
        "GET",
        f"{base}/v1/stream/?skip_prev=1",
        headers={"Authorization": f"token={token}", "Accept": "text/event-stream"},
        timeout=20,
    ) as r:
        assert r.status_code == 200
        for _ in r.iter_bytes():
            pass
    assert time.monotonic() - started < 8


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_no_framework_documents_outside_the_authentication(base: str, path: str) -> None:
    # Starlette would serve these without the app's dependencies; openapi/node.json is the
    # document.
    assert httpx.get(f"{base}{path}", timeout=10).status_code == 404


@pytest.mark.parametrize(
    "audience",
    [None, "logway-node:127.0.0.99:61001", "logway-mesos", "logway-node:127.0.0.2"],
    ids=["unaddressed", "another-node", "mesos", "no-port"],
)
def test_a_token_addressed_to_anyone_else_is_refused(
    base: str, keys: DevKeys, audience: str | None
) -> None:
    # Issue 12 §2: a node reader accepts only the credential minted for its own address, so
    # a token a rogue node received cannot be replayed here.
    r = get(base, authorization=f"token={keys.token(GATEWAY_UID, audience=audience)}")
    assert r.status_code == 401


def test_an_address_is_required_when_listening_everywhere(
    journal_namespace: JournaldNamespace, keys: DevKeys
) -> None:
    with (
        pytest.raises(RuntimeError, match="--address"),
        node_reader(journal_namespace.name, f"--public-key={keys.public_path}", host="0.0.0.0"),
    ):
        pass
