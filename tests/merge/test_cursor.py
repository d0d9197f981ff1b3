"""The composite cursor: what a merged stream's SSE `id` holds, and what it accepts back."""

from __future__ import annotations

import base64

import orjson
import pytest

from app.core.errors import BadRequest
from app.proxy.merge_cursor import after, cursor_realtime, decode_cursor, encode_cursor
from tests.merge.fakes import cursor


def _raw(obj: object) -> str:
    return "m1." + base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()


@pytest.mark.parametrize("origin", [None, 0, 1_700_000_000_123_456])
def test_round_trip(origin: int | None) -> None:
    positions = {"a1-S0": cursor(5, 1000), "a1-S1": cursor(9, 999)}
    encoded = encode_cursor(origin, positions)
    assert encoded.startswith("m1.")
    assert set(encoded[3:]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    decoded = decode_cursor(encoded)
    assert decoded.origin == origin
    assert dict(decoded.positions) == positions


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
        ("m2." + _raw({"o": None, "a": {}})[3:], "must start with"),
        ("m1.!!!", "base64url"),
        ("m1." + base64.urlsafe_b64encode(b"not json").decode(), "base64url"),
        (_raw([1, 2]), "structure"),
        (_raw({"o": None}), "structure"),
        (_raw({"o": None, "a": {}, "x": 1}), "structure"),
        (_raw({"o": "yesterday", "a": {}}), "origin"),
        (_raw({"o": -1, "a": {}}), "origin"),
        (_raw({"o": True, "a": {}}), "origin"),
        (_raw({"o": None, "a": []}), "positions"),
        (_raw({"o": None, "a": {"bad/agent": GOOD}}), "agent id"),
        (_raw({"o": None, "a": {"": GOOD}}), "agent id"),
        (_raw({"o": None, "a": {"S0": "s=1;i=2"}}), "journal cursor of agent `S0`"),
        (_raw({"o": None, "a": {"S0": 7}}), "journal cursor of agent `S0`"),
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
