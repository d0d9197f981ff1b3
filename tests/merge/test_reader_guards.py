"""A node reader from the attacker's side: it verifies tokens against the gateway's JWKS, wants
them addressed to itself and allows only the gateway's uid, so a user's valid token (even a
superuser's) never reads a journal by going to the reader directly (app/node/auth.py)."""

from __future__ import annotations

import time

import httpx
import pytest
from jose import jwt

from app.authn.sign import TokenSigner
from app.core.audience import url_audience
from tests.authn.tokens import Signer
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


def test_a_service_account_with_a_token_addressed_to_the_reader_is_refused(env: Env) -> None:
    # Any service account may ask the IAM for a token addressed to a node reader (a Logway
    # extension for the gateway's remote-IAM login, issue 12 §2; app/iam/login.py), so the
    # reader's audience check passes for it: only the reader's uid allow-list
    # (app/node/auth.py) keeps an account with no grant at all from reading whole journals.
    reader = env.readers[AGENTS[0]]
    signer = Signer.generate("intruder")
    uid = "svc-reader-intruder"
    r = httpx.put(
        f"{env.base}/acs/api/v1/users/{uid}",
        json={"description": "no grants", "public_key": signer.public_pem.decode()},
        headers=env.admin,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    login_token = TokenSigner.from_pem(signer.private_pem, source="test").login_token(
        uid, now=time.time(), audience=url_audience(reader.url)
    )
    r = httpx.post(
        f"{env.base}/acs/api/v1/auth/login", json={"uid": uid, "token": login_token}, timeout=30
    )
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    # The IAM addressed it to this reader: only the uid stands between it and the journal.
    assert jwt.get_unverified_claims(token)["aud"] == url_audience(reader.url)
    refused = httpx.get(
        reader.url + "/v1/range/",
        headers={"Authorization": f"token={token}"},
        params={"limit": 1},
        timeout=30,
    )
    assert refused.status_code == 401, (refused.status_code, refused.text)
    assert "MESSAGE" not in refused.text
