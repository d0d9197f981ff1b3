"""The composite cursor: what a merged stream's SSE `id` holds, and what it accepts back."""

from __future__ import annotations

import base64

import orjson
import pytest

from app.core.errors import BadRequest
from app.merge.cursor import (
    AgentState,
    Debt,
    after,
    cursor_realtime,
    decode_cursor,
    digest,
    digests,
    encode_cursor,
    pack,
    unpack,
)
from tests.merge.fakes import cursor


def _raw(obj: object, version: str = "m2.") -> str:
    return version + base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()


def _m2(**parts: object) -> str:
    return _raw({"o": None, "a": {"S0": GOOD}, "c": {}, "d": {}, **parts})


@pytest.mark.parametrize("origin", [None, 0, 1_700_000_000_123_456])
def test_round_trip(origin: int | None) -> None:
    positions = {"a1-S0": cursor(5, 1000), "a1-S1": cursor(9, 999)}
    encoded = encode_cursor(origin, positions)
    assert encoded.startswith("m2.")
    assert set(encoded[3:]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    decoded = decode_cursor(encoded)
    assert decoded.origin == origin
    assert dict(decoded.positions) == positions
    assert dict(decoded.members) == {}  # coverage unknown: none was given
    assert decoded.state("a1-S0") == AgentState(cursor(5, 1000), None)
    assert decoded.state("a1-S9") is None


def test_coverage_and_debts_round_trip() -> None:
    positions = {"S0": cursor(9, 900), "S1": cursor(4, 400)}
    s0 = digests(["c-web-0", "c-web-0b"])
    debt = Debt(cursor(2, 200), cursor(7, 700), digests(["c-web-0b"]))
    fresh = Debt(None, cursor(8, 800), digests(["c-new"]))
    encoded = encode_cursor(
        7,
        positions,
        {"S0": pack(s0), "S1": pack(digests(["c-web-1"]))},
        {"S0": [debt.encoded(), fresh.encoded()]},
    )
    decoded = decode_cursor(encoded, parameter="Last-Event-ID")
    state = decoded.state("S0")
    assert state is not None
    assert state.cursor == cursor(9, 900)
    assert state.members == s0
    assert [(d.start, d.end, d.members) for d in state.debts] == [
        (debt.start, debt.end, debt.members),
        (None, fresh.end, fresh.members),
    ]
    assert decoded.state("S1") == AgentState(cursor(4, 400), digests(["c-web-1"]))
    assert set(decoded.states()) == {"S0", "S1"}


def test_digests_are_short_stable_and_never_name_the_container() -> None:
    d = digest("c-web-0")
    assert len(d) == 8
    assert d == digest("c-web-0") != digest("c-web-1")
    assert "web" not in encode_cursor(None, {"S0": GOOD}, {"S0": pack(digests(["c-web-0"]))})
    members = digests(f"container-{i}" for i in range(500))
    assert len(members) == 500  # no collisions among many
    assert unpack(pack(members)) == members
    assert pack(members) == pack(sorted(members, reverse=True))  # order-independent


def test_m1_cursors_are_still_accepted_with_their_coverage_unknown() -> None:
    old = _raw({"o": 5, "a": {"S0": GOOD, "S1": cursor(3, 30)}}, "m1.")
    decoded = decode_cursor(old, parameter="Last-Event-ID")
    assert decoded.origin == 5
    assert dict(decoded.positions) == {"S0": GOOD, "S1": cursor(3, 30)}
    assert decoded.state("S0") == AgentState(GOOD, None, ())
    assert dict(decoded.debts) == {}


def test_no_agents_yet() -> None:
    decoded = decode_cursor(encode_cursor(None, {}))
    assert decoded.origin is None
    assert dict(decoded.positions) == {}


GOOD = cursor(1, 2)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "must start with"),
        ("s=1;i=2;b=3;m=4;t=5;x=6", "must start with"),  # a plain journald cursor
        ("m3." + _raw({"o": None, "a": {}})[3:], "must start with"),
        (_raw({"o": None, "a": {}, "c": {}}, "m1."), "structure"),  # m1 has no coverage
        (_raw({"o": None, "a": {}}), "structure"),  # m2 always has it
        (_m2(c=[]), "coverage"),
        (_m2(c={"S1": "AAAAAAAA"}), "coverage"),  # an agent without a place
        (_m2(c={"S0": "AAAA"}), "coverage of agent `S0`"),
        (_m2(c={"S0": "AAAAAAA!"}), "coverage of agent `S0`"),
        (_m2(c={"S0": 5}), "coverage of agent `S0`"),
        (_m2(c={"S0": "AAAAAAAA" * 257}), "coverage of agent `S0`"),
        (_m2(d=[]), "debts"),
        (_m2(d={"S1": []}), "debts"),
        (_m2(d={"S0": {}}), "debts of agent `S0`"),
        (_m2(d={"S0": [[None, GOOD]]}), "debts of agent `S0`"),
        (_m2(d={"S0": [[None, "s=1", "AAAAAAAA"]]}), "debts of agent `S0`"),
        (_m2(d={"S0": [["x", GOOD, "AAAAAAAA"]]}), "debts of agent `S0`"),
        (_m2(d={"S0": [[None, GOOD, ""]]}), "debts of agent `S0`"),
        (_m2(d={"S0": [[None, GOOD, "AAAAAAAAA"]]}), "debts of agent `S0`"),
        ("m1.!!!", "base64url"),
        ("m1." + base64.urlsafe_b64encode(b"not json").decode(), "base64url"),
        (_raw([1, 2]), "structure"),
        (_raw({"o": None}), "structure"),
        (_raw({"o": None, "a": {}, "c": {}, "d": {}, "x": 1}), "structure"),
        (_m2(o="yesterday"), "origin"),
        (_m2(o=-1), "origin"),
        (_m2(o=True), "origin"),
        (_m2(a=[]), "positions"),
        (_m2(a={"bad/agent": GOOD}), "agent id"),
        (_m2(a={"": GOOD}), "agent id"),
        (_m2(a={"S0": "s=1;i=2"}), "journal cursor of agent `S0`"),
        (_m2(a={"S0": 7}), "journal cursor of agent `S0`"),
        (_raw({"o": None, "a": {"S0": 7}}, "m1."), "journal cursor of agent `S0`"),
        (_raw({"o": "x", "a": {}}, "m1."), "origin"),
        ("m1." + "A" * 70_000, "too long"),
    ],
)
@pytest.mark.parametrize("parameter", ["cursor", "Last-Event-ID"])
def test_malformed_cursors_are_400_naming_the_parameter(raw: str, why: str, parameter: str) -> None:
    with pytest.raises(BadRequest, match=why) as caught:
        decode_cursor(raw, parameter=parameter)
    assert caught.value.parameter == parameter
    assert f"`{parameter}`" in caught.value.message


def test_cursor_fields() -> None:
    assert cursor_realtime(cursor(3, 0x1234)) == 0x1234
    assert after(cursor(4, 10), cursor(3, 99))  # same journal: sequence numbers decide
    assert not after(cursor(3, 10), cursor(3, 10))
    assert not after(cursor(2, 99), cursor(3, 10))
    other = cursor(1, 11, seqnum_id="1" * 32)
    assert after(other, cursor(50, 10))  # another seqnum id: time decides
