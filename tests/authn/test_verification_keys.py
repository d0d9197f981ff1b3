from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jose.backends
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose.backends.rsa_backend import RSAKey as PurePythonRSAKey

from app.authn.authenticator import JwtAuthenticator
from app.authn.errors import KeyLoadError, Reason, TokenRejected
from app.authn.verification_keys import MAX_JWKS_KEYS, KeySet, StaticKeys
from app.authn.verify import RS256Key, require_cryptography_backend
from tests.authn.conftest import Keys
from tests.authn.tokens import Signer


def rs256(signer: Signer) -> RS256Key:
    return RS256Key(signer.private_key.public_key())


# --- PEM ---------------------------------------------------------------------------------


def test_pem_file(keys: Keys, tmp_path: Path) -> None:
    path = tmp_path / "auth-token-verification-key"
    path.write_bytes(keys.iam.public_pem)
    keyset = KeySet.from_pem_file(path)
    assert keyset.select(None) == rs256(keys.iam)
    assert rs256(keys.iam).bits == 2048


def test_rsa_1024_refused_at_load(keys: Keys) -> None:
    with pytest.raises(KeyLoadError, match="1024 bits refused"):
        KeySet.from_pem(keys.weak.public_pem)
    with pytest.raises(KeyLoadError, match="1024 bits refused"):
        RS256Key(keys.weak.private_key.public_key())


def test_pem_must_be_an_rsa_public_key(keys: Keys) -> None:
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyLoadError, match="not an RSA public key"):
        KeySet.from_pem(ec_pem)
    with pytest.raises(KeyLoadError, match="not a PEM public key"):
        KeySet.from_pem(keys.iam.private_pem)
    with pytest.raises(KeyLoadError, match="not a PEM public key"):
        KeySet.from_pem(b"hello")


# --- JWKS --------------------------------------------------------------------------------


def test_jwks_keys_by_kid(keys: Keys) -> None:
    keyset = KeySet.from_jwks({"keys": [keys.iam.jwk(), keys.iam2.jwk()]})
    assert len(keyset) == 2
    assert keyset.select("iam-1") == rs256(keys.iam)
    assert keyset.select("iam-2") == rs256(keys.iam2)
    assert keyset.select("iam-3") is None
    assert keyset.select(None) is None  # two keys: a kid is required


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        pytest.param(lambda k: k.weak.jwk(), "1024 bits refused", id="J22-rsa-1024"),
        pytest.param(lambda k: k.iam2.jwk(kty="EC"), "kty is not RSA", id="kty-ec"),
        pytest.param(lambda k: {"kty": "oct", "k": "c2VjcmV0", "kid": "x"}, "kty", id="oct"),
        pytest.param(lambda k: k.iam2.jwk(alg="RS512"), "alg is not RS256", id="J23-alg"),
        pytest.param(lambda k: k.iam2.jwk(alg="HS256"), "alg is not RS256", id="J23-hs256"),
        pytest.param(lambda k: k.iam2.jwk(use="enc"), "use is not sig", id="use-enc"),
        pytest.param(lambda k: k.iam2.jwk(kid=None), "kid", id="no-kid"),
        pytest.param(lambda k: k.iam2.jwk(kid=7), "kid", id="int-kid"),
        pytest.param(lambda k: k.iam2.jwk(kid="k" * 257), "kid", id="long-kid"),
        pytest.param(lambda k: k.iam2.jwk(d="AQAB"), "private key material", id="private"),
        pytest.param(lambda k: k.iam2.jwk(n=""), "modulus or exponent", id="empty-n"),
        pytest.param(lambda k: k.iam2.jwk(e=3), "modulus or exponent", id="int-e"),
        pytest.param(lambda k: k.iam2.jwk(e="Ag"), "modulus or exponent", id="even-e"),
        pytest.param(lambda k: "iam-2", "not a JSON object", id="string"),
    ],
)
def test_unusable_jwks_entries_are_skipped(
    keys: Keys, caplog: pytest.LogCaptureFixture, entry: Any, why: str
) -> None:
    """J22: refuse at ingest, log, and keep serving with the other keys."""
    with caplog.at_level(logging.WARNING, logger="app.authn.verification_keys"):
        keyset = KeySet.from_jwks({"keys": [keys.iam.jwk(), entry(keys)]})
    assert len(keyset) == 1
    assert keyset.select("iam-1") == rs256(keys.iam)
    assert why in caplog.text


def test_jwks_without_usable_keys_is_an_error(keys: Keys) -> None:
    with pytest.raises(KeyLoadError, match="no usable RS256 key"):
        KeySet.from_jwks({"keys": [keys.weak.jwk()]})
    with pytest.raises(KeyLoadError, match="no usable RS256 key"):
        KeySet.from_jwks({"keys": []})


@pytest.mark.parametrize("document", [None, [], "keys", {"keys": {}}, {"kty": "RSA"}])
def test_not_a_jwks_document(document: object) -> None:
    with pytest.raises(KeyLoadError, match="not a JWKS document"):
        KeySet.from_jwks(document)


def test_jwks_key_count_is_bounded(keys: Keys) -> None:
    """J17: never parse (or try) thousands of keys."""
    entries = [keys.iam.jwk(kid=f"k{i}") for i in range(MAX_JWKS_KEYS + 1)]
    with pytest.raises(KeyLoadError, match="limit"):
        KeySet.from_jwks({"keys": entries})


def test_duplicate_kid_is_dropped(keys: Keys, caplog: pytest.LogCaptureFixture) -> None:
    keyset = KeySet.from_jwks(
        {"keys": [keys.iam.jwk(), keys.attacker.jwk(kid="iam-2"), keys.iam2.jwk()]}
    )
    assert keyset.select("iam-1") == rs256(keys.iam)
    assert keyset.select("iam-2") is None
    assert "published more than once" in caplog.text


def test_equality_follows_key_material(keys: Keys) -> None:
    one = KeySet.from_jwks({"keys": [keys.iam.jwk()]})
    assert one == KeySet.from_jwks({"keys": [keys.iam.jwk()]})
    assert one != KeySet.from_jwks({"keys": [keys.iam2.jwk(kid="iam-1")]})
    assert one != KeySet.from_jwks({"keys": [keys.iam.jwk(kid="other")]})
    assert "iam-1" in repr(one)
    assert "bits=2048" in repr(rs256(keys.iam))


# --- selection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("published", "kid", "selected"),
    [
        ({None: "iam"}, None, "iam"),  # PEM, no kid anywhere
        ({None: "iam"}, "anything", "iam"),  # PEM has no kid to compare with
        ({"iam-1": "iam"}, None, "iam"),  # one key: a kid-less token may use it
        ({"iam-1": "iam"}, "iam-1", "iam"),
        ({"iam-1": "iam"}, "iam-2", None),
        ({"iam-1": "iam", "iam-2": "iam2"}, None, None),  # several keys: kid required
        ({"iam-1": "iam", "iam-2": "iam2"}, "iam-2", "iam2"),
        ({"iam-1": "iam", "iam-2": "iam2"}, "../iam-1", None),
    ],
)
def test_select(
    keys: Keys, published: dict[str | None, str], kid: str | None, selected: str | None
) -> None:
    keyset = KeySet({k: rs256(getattr(keys, v)) for k, v in published.items()})
    want = rs256(getattr(keys, selected)) if selected else None
    assert keyset.select(kid) == want


def test_anonymous_key_must_be_alone(keys: Keys) -> None:
    with pytest.raises(KeyLoadError, match="must be the only key"):
        KeySet({None: rs256(keys.iam), "iam-2": rs256(keys.iam2)})


async def test_static_keys_reject_unknown_kid(keys: Keys) -> None:
    source = StaticKeys(KeySet.from_jwks({"keys": [keys.iam.jwk(), keys.iam2.jwk()]}))
    assert await source.key_for("iam-2") == rs256(keys.iam2)
    for kid, reason in (("nope", Reason.UNKNOWN_KID), (None, Reason.KID_REQUIRED)):
        with pytest.raises(TokenRejected) as info:
            await source.key_for(kid)
        assert info.value.reason == reason


# --- backend -----------------------------------------------------------------------------


def test_cryptography_backend_is_in_use() -> None:
    require_cryptography_backend()


def test_pure_python_backend_refused(keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """python-jose silently falls back to `rsa`/`ecdsa`; we refuse to start on it."""
    loaded = StaticKeys(KeySet.from_pem(keys.iam.public_pem))
    monkeypatch.setattr(jose.backends, "RSAKey", PurePythonRSAKey)
    with pytest.raises(RuntimeError, match="cryptography backend"):
        require_cryptography_backend()
    with pytest.raises(RuntimeError, match="cryptography backend"):
        RS256Key(keys.iam.private_key.public_key())
    with pytest.raises(RuntimeError, match="cryptography backend"):
        JwtAuthenticator(loaded)
