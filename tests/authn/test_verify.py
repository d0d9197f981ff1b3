"""The JWT attack catalogue (reference/security.md §1, J1-J27) against the verifier.

Every hostile vector asserts the *reason* it was refused, so a test cannot pass because some
earlier, unrelated check happened to fire.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import jose.jws
import pytest

from app.authn import verify as verify_module
from app.authn.authenticator import JwtAuthenticator
from app.authn.errors import Reason, TokenRejected
from app.authn.verification_keys import KeySet, StaticKeys
from app.authn.verify import (
    DEFAULT_LEEWAY,
    MAX_TOKEN_LENGTH,
    Claims,
    RS256Key,
    UnverifiedToken,
    parse,
    verify,
)
from tests.authn.conftest import Clock, Keys
from tests.authn.tokens import NOW, b64json, raw_token, split

L = DEFAULT_LEEWAY
GOOD = {"uid": "alice", "exp": NOW + 3600}
HEADER = {"alg": "RS256", "typ": "JWT", "kid": "iam-1"}


@pytest.fixture
def auth(keys: Keys, clock: Clock) -> JwtAuthenticator:
    """Two published IAM keys, selected by kid."""
    keyset = KeySet.from_jwks({"keys": [keys.iam.jwk(), keys.iam2.jwk()]})
    return JwtAuthenticator(StaticKeys(keyset), clock=clock)


async def rejected(auth: JwtAuthenticator, token: str) -> Reason:
    with pytest.raises(TokenRejected) as info:
        await auth.verify(token)
    # Never echo the token, a claim or a header value (k8s TestUnmarshalClaimError).
    assert str(info.value) == "Invalid authentication token"
    return info.value.reason


async def test_good_token(auth: JwtAuthenticator, keys: Keys) -> None:
    claims = await auth.verify(keys.iam.token({"uid": "alice", "exp": NOW + 60, "iat": NOW}))
    assert claims == Claims(uid="alice", exp=NOW + 60, iat=NOW)


async def test_key_is_selected_by_kid(auth: JwtAuthenticator, keys: Keys) -> None:
    assert (await auth.verify(keys.iam2.token())).uid == "alice"


@pytest.mark.parametrize("typ", [None, "JWT", "jwt"])
async def test_typ_optional_or_jwt(auth: JwtAuthenticator, keys: Keys, typ: str | None) -> None:
    header = {k: v for k, v in HEADER.items() if k != "typ"}
    if typ is not None:
        header["typ"] = typ
    assert (await auth.verify(raw_token(header, GOOD, signer=keys.iam))).uid == "alice"


Vector = Callable[[Keys], str]


def _alg(alg: str, *, keep_signature: bool) -> Vector:
    def build(k: Keys) -> str:
        _, body, sig = split(k.iam.token())
        forged = b64json({"alg": alg, "typ": "JWT", "kid": "iam-1"})
        return f"{forged}.{body}." + (sig if keep_signature else "")

    return build


def _header(**members: Any) -> Vector:
    return lambda k: raw_token(HEADER | members, GOOD, signer=k.iam)


def _without(member: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda d: {key: v for key, v in d.items() if key != member}


def _claims(**claims: Any) -> Vector:
    return lambda k: raw_token(HEADER, GOOD | claims, signer=k.iam)


def _payload(payload: dict[str, Any] | bytes) -> Vector:
    return lambda k: raw_token(HEADER, payload, signer=k.iam)


def _hs256(secret: Callable[[Keys], bytes], *, alg: str = "HS256") -> Vector:
    return lambda k: raw_token(HEADER | {"alg": alg}, GOOD, hmac_secret=secret(k))


def _jwk_json(k: Keys) -> bytes:
    return json.dumps(k.iam.jwk()).encode()


def _forged_payload(k: Keys) -> str:
    head, _, sig = split(k.iam.token())
    return f"{head}.{b64json(GOOD | {'uid': 'root'})}.{sig}"


def _non_canonical_signature(k: Keys) -> str:
    head, body, sig = split(k.iam.token())
    # 256 bytes -> 342 chars, the last carrying 2 unused bits: flip one of those.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(sig[-1]) ^ 1]
    return f"{head}.{body}.{sig[:-1]}{last}"


VECTORS = [
    # J1: alg none in every spelling, signature stripped or kept.
    *[
        pytest.param(_alg(alg, keep_signature=False), Reason.MALFORMED, id=f"J1-{alg}-stripped")
        for alg in ("none", "None", "NONE", "nOnE")
    ],
    *[
        pytest.param(_alg(alg, keep_signature=True), Reason.ALGORITHM, id=f"J1-{alg}-kept-sig")
        for alg in ("none", "None", "NONE", "nOnE")
    ],
    # J2-J4: HS256 keyed with the public key in PEM, DER and JWK-JSON form.
    pytest.param(_hs256(lambda k: k.iam.public_pem), Reason.ALGORITHM, id="J2-hs256-pem"),
    pytest.param(_hs256(lambda k: k.iam.public_der), Reason.ALGORITHM, id="J4-hs256-der"),
    pytest.param(_hs256(_jwk_json), Reason.ALGORITHM, id="J4-hs256-jwk-json"),
    # ...and the same HMAC signatures relabelled RS256.
    pytest.param(
        _hs256(lambda k: k.iam.public_pem, alg="RS256"), Reason.SIGNATURE, id="J2-hmac-as-rs256"
    ),
    pytest.param(_hs256(_jwk_json, alg="RS256"), Reason.SIGNATURE, id="J4-jwk-hmac-as-rs256"),
    # J23: other algorithms, even ones python-jose supports.
    *[
        pytest.param(_header(alg=alg), Reason.ALGORITHM, id=f"J23-{alg}")
        for alg in ("RS512", "RS384", "PS256", "ES256", "EdDSA", "rs256", "")
    ],
    pytest.param(
        lambda k: raw_token(_without("alg")(HEADER), GOOD, signer=k.iam),
        Reason.ALGORITHM,
        id="no-alg",
    ),
    # J6: kid as anything but a key into our dict.
    pytest.param(lambda k: k.iam2.token(kid="iam-1"), Reason.SIGNATURE, id="J6-kid-other-key"),
    pytest.param(lambda k: k.attacker.token(kid="iam-1"), Reason.SIGNATURE, id="J6-kid-forged"),
    pytest.param(lambda k: k.iam.token(kid="nope"), Reason.UNKNOWN_KID, id="J6-unknown-kid"),
    pytest.param(
        lambda k: k.iam.token(kid="../../../../dev/null"), Reason.UNKNOWN_KID, id="J6-path-kid"
    ),
    pytest.param(
        lambda k: k.iam.token(kid="iam-1' OR '1'='1"), Reason.UNKNOWN_KID, id="J6-sqli-kid"
    ),
    pytest.param(_header(kid=5), Reason.KID, id="J6-int-kid"),
    pytest.param(_header(kid=None), Reason.KID, id="J6-null-kid"),
    pytest.param(_header(kid=""), Reason.KID, id="J6-empty-kid"),
    pytest.param(_header(kid="k" * 257), Reason.KID, id="J6-long-kid"),
    pytest.param(lambda k: k.iam.token(kid=None), Reason.KID_REQUIRED, id="J6-no-kid-2-keys"),
    # J7, J15, J26: header members beyond alg/typ/kid.
    pytest.param(
        lambda k: k.attacker.token(headers={"jwk": k.attacker.jwk()}, kid="iam-1"),
        Reason.HEADER_MEMBER,
        id="J7-embedded-jwk",
    ),
    pytest.param(_header(jku="http://127.0.0.1:1/jwks"), Reason.HEADER_MEMBER, id="J7-jku"),
    pytest.param(_header(x5u="http://127.0.0.1:1/cert"), Reason.HEADER_MEMBER, id="J7-x5u"),
    pytest.param(_header(x5c=["MIIB"]), Reason.HEADER_MEMBER, id="J7-x5c"),
    pytest.param(
        _header(crit=["x-unknown"], **{"x-unknown": 1}), Reason.HEADER_MEMBER, id="J15-crit"
    ),
    pytest.param(_header(crit=["b64"], b64=False), Reason.HEADER_MEMBER, id="J15-b64"),
    pytest.param(_header(zip="DEF"), Reason.HEADER_MEMBER, id="J26-zip"),
    pytest.param(_header(cty="JWT"), Reason.HEADER_MEMBER, id="J26-cty"),
    pytest.param(_header(typ="at+jwt"), Reason.TYP, id="J26-typ-other"),
    pytest.param(_header(typ=1), Reason.TYP, id="J26-typ-int"),
    # J8-J12: time claims.
    pytest.param(_payload(_without("exp")(GOOD)), Reason.EXP_MISSING, id="J8-no-exp"),
    pytest.param(_claims(exp="9999999999"), Reason.TIME_CLAIM, id="J9-string-exp"),
    pytest.param(_claims(exp=float(NOW + 3600)), Reason.TIME_CLAIM, id="J9-float-exp"),
    pytest.param(_claims(exp=NOW + 3600.5), Reason.TIME_CLAIM, id="J9-fractional-exp"),
    pytest.param(_claims(exp=True), Reason.TIME_CLAIM, id="J9-bool-exp"),
    pytest.param(_claims(exp=None), Reason.TIME_CLAIM, id="J9-null-exp"),
    pytest.param(_claims(exp=1e30), Reason.TIME_CLAIM, id="J9-1e30-exp"),
    pytest.param(_claims(exp=10**30), Reason.TIME_CLAIM, id="J9-huge-int-exp"),
    pytest.param(_claims(exp=-1), Reason.TIME_CLAIM, id="J9-negative-exp"),
    pytest.param(_claims(exp=NOW - L - 1), Reason.EXPIRED, id="J9-expired"),
    pytest.param(_claims(nbf=str(NOW)), Reason.TIME_CLAIM, id="J9-string-nbf"),
    pytest.param(_claims(iat=float(NOW)), Reason.TIME_CLAIM, id="J9-float-iat"),
    pytest.param(_claims(nbf=NOW + L + 1), Reason.NOT_YET_VALID, id="J10-future-nbf"),
    pytest.param(_claims(iat=NOW + L + 1), Reason.ISSUED_IN_FUTURE, id="J11-future-iat"),
    # J25: uid.
    pytest.param(_payload(_without("uid")(GOOD)), Reason.UID, id="J25-no-uid"),
    *[
        pytest.param(_claims(uid=uid), Reason.UID, id=f"J25-uid-{name}")
        for name, uid in [
            ("null", None),
            ("empty", ""),
            ("int", 5),
            ("list", ["alice"]),
            ("object", {"name": "alice"}),
            ("crlf", "alice\r\nX-Injected: 1"),
            ("lf", "alice\n"),
            ("nul", "alice\x00"),
            ("bidi", "alice\u202e"),
            ("257-chars", "a" * 257),
        ]
    ],
    # J16: shape and encoding.
    pytest.param(lambda k: k.iam.token() + ".", Reason.MALFORMED, id="J16-trailing-dot"),
    pytest.param(lambda k: k.iam.token() + ".e30", Reason.MALFORMED, id="J16-4-segments"),
    pytest.param(
        lambda k: ".".join(["eyJhbGciOiJSU0EtT0FFUCJ9", "a", "b", "c", "d"]),
        Reason.MALFORMED,
        id="J5-jwe-5-segments",
    ),
    pytest.param(
        lambda k: ".".join(split(k.iam.token())[:2]), Reason.MALFORMED, id="J16-2-segments"
    ),
    pytest.param(
        lambda k: ".".join(split(k.iam.token())[:2]) + ".",
        Reason.MALFORMED,
        id="J16-signature-stripped",
    ),
    pytest.param(lambda k: k.iam.token()[:-10], Reason.SIGNATURE, id="J16-truncated-signature"),
    pytest.param(lambda k: k.iam.token() + "AAAA", Reason.SIGNATURE, id="J16-long-signature"),
    pytest.param(_forged_payload, Reason.SIGNATURE, id="J16-forged-payload-kept-signature"),
    pytest.param(lambda k: k.iam.token() + "==", Reason.MALFORMED, id="J16-padding"),
    pytest.param(
        lambda k: k.iam.token().replace("-", "+").replace("_", "/") + "+/",
        Reason.MALFORMED,
        id="J16-std-base64",
    ),
    pytest.param(lambda k: " " + k.iam.token(), Reason.MALFORMED, id="J16-space"),
    pytest.param(_non_canonical_signature, Reason.MALFORMED, id="J20-non-canonical-b64"),
    pytest.param(lambda k: "", Reason.MALFORMED, id="empty"),
    # Header and payload JSON.
    pytest.param(
        lambda k: raw_token(b"not json", GOOD, signer=k.iam), Reason.MALFORMED, id="header-not-json"
    ),
    pytest.param(
        lambda k: raw_token(b'["RS256"]', GOOD, signer=k.iam), Reason.MALFORMED, id="header-array"
    ),
    pytest.param(
        lambda k: raw_token(b'{"alg":"none","alg":"RS256","kid":"iam-1"}', GOOD, signer=k.iam),
        Reason.MALFORMED,
        id="header-duplicate-alg",
    ),
    pytest.param(
        lambda k: raw_token(b"\xff\xfe{}", GOOD, signer=k.iam),
        Reason.MALFORMED,
        id="header-not-utf8",
    ),
    pytest.param(_payload(b'["alice"]'), Reason.CLAIMS, id="payload-array"),
    pytest.param(
        _payload(b'{"uid":"root","uid":"alice","exp":1800003600}'),
        Reason.MALFORMED,
        id="payload-duplicate-uid",
    ),
    pytest.param(_payload(b'{"uid":"alice","exp":NaN}'), Reason.MALFORMED, id="payload-nan"),
    pytest.param(_payload(b"[" * 2000 + b"]" * 2000), Reason.MALFORMED, id="payload-deep"),
]


@pytest.mark.parametrize(("build", "reason"), VECTORS)
async def test_catalogue(auth: JwtAuthenticator, keys: Keys, build: Vector, reason: Reason) -> None:
    assert await rejected(auth, build(keys)) == reason


# J12: leeway boundaries, both sides of each limit.
@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": NOW - L}, Reason.EXPIRED),
        ({"exp": NOW - L + 1}, None),
        ({"exp": NOW}, None),
        ({"nbf": NOW + L + 1}, Reason.NOT_YET_VALID),
        ({"nbf": NOW + L}, None),
        ({"iat": NOW + L + 1}, Reason.ISSUED_IN_FUTURE),
        ({"iat": NOW + L}, None),
        ({"iat": 0, "nbf": 0}, None),
    ],
)
async def test_leeway_boundaries(
    auth: JwtAuthenticator, keys: Keys, claims: dict[str, int], reason: Reason | None
) -> None:
    token = keys.iam.token(GOOD | claims)
    if reason is None:
        assert (await auth.verify(token)).uid == "alice"
    else:
        assert await rejected(auth, token) == reason


async def test_uid_edges_accepted(auth: JwtAuthenticator, keys: Keys) -> None:
    for uid in ("a" * 256, "dcos_logway-gateway", "ops@example.com", "Zoë"):
        assert (await auth.verify(keys.iam.token({"uid": uid, "exp": NOW + 60}))).uid == uid


async def test_huge_token_is_refused_before_any_decoding(
    auth: JwtAuthenticator, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded a token over the size limit")

    monkeypatch.setattr(verify_module, "_b64decode", must_not_run)
    monkeypatch.setattr(jose.jws, "verify", must_not_run)
    monkeypatch.setattr(verify_module, "_COMPACT_JWS", None)  # not even the regex
    token = keys.iam.token(GOOD | {"pad": "x" * (5 * 1024 * 1024)})
    assert len(token) > 5 * 1024 * 1024
    started = time.perf_counter()
    assert await rejected(auth, token) == Reason.TOO_LARGE
    assert time.perf_counter() - started < 0.05


async def test_size_limit_boundary(auth: JwtAuthenticator, keys: Keys) -> None:
    def longest_token_within(limit: int) -> str:
        base = len(keys.iam.token(GOOD | {"pad": ""}))
        estimate = (limit - base) * 3 // 4
        fits = [
            token
            for pad in range(estimate - 8, estimate + 8)
            if len(token := keys.iam.token(GOOD | {"pad": "x" * pad})) <= limit
        ]
        return max(fits, key=len)

    exact = longest_token_within(MAX_TOKEN_LENGTH)
    assert MAX_TOKEN_LENGTH - 2 <= len(exact) <= MAX_TOKEN_LENGTH
    assert (await auth.verify(exact)).uid == "alice"
    over = longest_token_within(MAX_TOKEN_LENGTH + 8)
    assert len(over) > MAX_TOKEN_LENGTH
    assert await rejected(auth, over) == Reason.TOO_LARGE


async def test_service_login_token_is_not_an_auth_token(keys: Keys, clock: Clock) -> None:
    """J24: same claims, RS256, but signed by a service account's own key."""
    pem_only = JwtAuthenticator(StaticKeys(KeySet.from_pem(keys.iam.public_pem)), clock=clock)
    service_login = keys.attacker.token({"uid": "gateway", "exp": NOW + 300}, kid=None)
    assert await rejected(pem_only, service_login) == Reason.SIGNATURE


async def test_pem_key_without_kid_accepts_any_kid(keys: Keys, clock: Clock) -> None:
    """A PEM file has no kid to match (Adminrouter ignored kid too); the signature decides."""
    pem_only = JwtAuthenticator(StaticKeys(KeySet.from_pem(keys.iam.public_pem)), clock=clock)
    for kid in (None, "iam-1", "../../etc/passwd"):
        assert (await pem_only.verify(keys.iam.token(kid=kid))).uid == "alice"


async def test_pem_key_with_kid_requires_it(keys: Keys, clock: Clock) -> None:
    pinned = KeySet.from_pem(keys.iam.public_pem, kid="iam-1")
    auth = JwtAuthenticator(StaticKeys(pinned), clock=clock)
    assert (await auth.verify(keys.iam.token())).uid == "alice"
    assert (await auth.verify(keys.iam.token(kid=None))).uid == "alice"
    assert await rejected(auth, keys.iam.token(kid="iam-2")) == Reason.UNKNOWN_KID


def test_jose_call_alone_refuses_hmac_with_our_key_object(keys: Keys) -> None:
    """Second line of defence for J2/J4: even past `parse`, the pinned key object and
    `algorithms=["RS256"]` make python-jose refuse an HS256 token."""
    key = RS256Key(keys.iam.private_key.public_key())
    for secret in (keys.iam.public_pem, keys.iam.public_der):
        token = raw_token(HEADER | {"alg": "HS256"}, GOOD, hmac_secret=secret)
        with pytest.raises(TokenRejected) as info:
            verify(UnverifiedToken(compact=token, kid="iam-1"), key, now=NOW, leeway=L)
        assert info.value.reason == Reason.SIGNATURE


def test_parse_returns_kid_and_hides_token_from_repr(keys: Keys) -> None:
    token = keys.iam.token()
    parsed = parse(token)
    assert parsed.kid == "iam-1"
    assert split(token)[2] not in repr(parsed)
