"""A node reader from the attacker's side: it verifies tokens against the gateway's JWKS, wants
them addressed to itself and allows only the gateway's uid, so a user's valid token (even a
superuser's) never reads a journal by going to the reader directly (app/node/auth.py)."""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.support import node_headers
from tests.merge.support import AGENTS, Env


@pytest.mark.parametrize("who", ["admin", "dev"])
def test_a_users_valid_token_is_refused_by_a_reader(env: Env, who: str) -> None:
    headers = env.admin if who == "admin" else env.users[who]
    url = env.readers[AGENTS[0]].url + "/v1/range/"
    r = httpx.get(url, headers=headers, params={"limit": 1}, timeout=30)
    assert r.status_code in (401, 403), (r.status_code, r.text)
    assert "MESSAGE" not in r.text
    # The gateway's own uid, with a token from the same IAM, reads it.
    service = node_headers(env.tmp / "gateway", env.readers[AGENTS[0]].url)
    ok = httpx.get(url, headers=service, params={"limit": 1}, timeout=30)
    assert ok.status_code in (200, 204), ok.text
