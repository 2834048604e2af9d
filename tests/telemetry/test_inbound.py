"""The bounded inbound parser and the boundary around every inbound handler."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from edge_agent.clock import FakeClock
from edge_agent.telemetry.commands import parse_profile_command
from edge_agent.telemetry.inbound import (
    InboundLog,
    InboundRejected,
    RateLimiter,
    check_depth,
    decode_json,
    guard,
    parse_json_model,
)
from tests.telemetry.hostile import HOSTILE_PAYLOADS, NESTED, UNKNOWN_NAMES


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    name: str


def test_nested_payload_is_a_clear_error_not_a_recursion_error() -> None:
    with pytest.raises(InboundRejected, match=r"nested deeper than 32 levels \(at character 42\)"):
        parse_profile_command(NESTED)


@pytest.mark.parametrize("name", sorted(set(HOSTILE_PAYLOADS) - UNKNOWN_NAMES))
def test_every_hostile_payload_is_refused_by_the_parser(name: str) -> None:
    with pytest.raises(InboundRejected) as info:
        parse_profile_command(HOSTILE_PAYLOADS[name])
    assert str(info.value)


def test_refusals_say_what_is_wrong() -> None:
    cases = {
        b"\xff\xfemaxq": "not UTF-8 (bad byte at offset 0)",
        b'{"profile": NaN}': "NaN, which is not a JSON number",
        b'{"profile": "maxq", "profile": "maxp"}': "duplicate keys: profile",
        b'{"profile": ' + b"9" * 5000 + b"}": "not usable JSON",
        b'{"profile": "maxq"} x': "not valid JSON: Extra data (line 1 column 21)",
        b'{"profile": "maxq", "run": 1}': "run: Extra inputs are not permitted",
    }
    for payload, error in cases.items():
        with pytest.raises(InboundRejected) as info:
            parse_profile_command(payload)
        assert error in str(info.value), payload


def test_depth_scan_ignores_brackets_inside_strings() -> None:
    check_depth('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', 2)
    check_depth('{"a": "\\"[[[[[["}', 1)
    with pytest.raises(InboundRejected, match="deeper than 2"):
        check_depth('{"a": {"b": ["\\"", []]}}', 2)


def test_json_model_reports_the_field_path() -> None:
    assert parse_json_model(Doc, b'{"version": 3, "name": "x"}') == Doc(version=3, name="x")
    with pytest.raises(InboundRejected, match="version: Input should be a valid integer"):
        parse_json_model(Doc, b'{"version": "three", "name": "x"}')


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_name_or_a_refusal(payload: bytes) -> None:
    try:
        name = parse_profile_command(payload)
    except InboundRejected:
        return
    assert 1 <= len(name) <= 64


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(_json, st.integers(min_value=0, max_value=60))
def test_json_within_caps_round_trips_and_deeper_json_is_refused(doc: object, wrap: int) -> None:
    text = "[" * wrap + json.dumps(doc) + "]" * wrap
    if wrap + _depth(doc) > 32:
        with pytest.raises(InboundRejected, match="nested deeper than 32"):
            decode_json(text.encode("utf-8"), max_depth=32)
    else:
        assert decode_json(text.encode("utf-8"), max_depth=32) == json.loads(text)


def _depth(doc: object) -> int:
    if isinstance(doc, list):
        return 1 + max((_depth(x) for x in doc), default=0)
    if isinstance(doc, dict):
        return 1 + max((_depth(x) for x in doc.values()), default=0)
    return 0


def test_rate_limiter_allows_a_burst_then_one_per_interval(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(fake_clock, burst=2, every_s=10.0)
    assert [limiter.allow() for _ in range(5)] == [True, True, False, False, False]
    fake_clock.advance(9.9)
    assert not limiter.allow()
    fake_clock.advance(0.2)
    assert limiter.allow()
    assert limiter.refused == 4


def test_guard_answers_handler_bugs_and_refusals(fake_clock: FakeClock) -> None:
    answers: list[tuple[str, str, str | None]] = []

    def handler(_topic: str, payload: bytes) -> None:
        if payload == b"bug":
            raise RuntimeError("boom")
        if payload == b"deep":
            raise RecursionError("maximum recursion depth exceeded")
        raise InboundRejected("refused", subject="x")

    log = InboundLog(fake_clock, "test")
    safe = guard(handler, lambda t, err: answers.append((t, str(err), err.subject)), log)
    for payload in (b"bug", b"deep", b"other"):
        safe("a/b", payload)
    assert answers == [
        ("a/b", "internal error handling the message: RuntimeError: boom", None),
        (
            "a/b",
            "internal error handling the message: RecursionError: maximum recursion depth exceeded",
            None,
        ),
        ("a/b", "refused", "x"),
    ]
    assert log.count == 3


def test_guard_survives_a_failing_answer(fake_clock: FakeClock) -> None:
    calls = threading.Event()

    def answer(_topic: str, _err: InboundRejected) -> None:
        calls.set()
        raise OSError("broker gone")

    def handler(_topic: str, _payload: bytes) -> None:
        raise InboundRejected("no")

    guard(handler, answer, InboundLog(fake_clock, "t"))("t", b"")
    assert calls.is_set()
