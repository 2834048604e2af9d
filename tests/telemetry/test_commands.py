"""profile/set -> profile/state through a real broker, including hostile payloads."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import pytest

from edge_agent.clock import FakeClock
from edge_agent.config import MqttConfig
from edge_agent.errors import ProfileError
from edge_agent.telemetry.commands import (
    MAX_COMMAND_BYTES,
    CommandRejected,
    ProfileCommandHandler,
    parse_profile_command,
)
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.payloads import load_schema
from tests.fakes.broker import MosquittoBroker
from tests.telemetry.mqtt_helpers import Subscriber


class Profiles:
    """A stand-in for the profiles module: records what was applied."""

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def apply(self, name: str) -> Mapping[str, Any]:
        self.entered.set()
        self.release.wait(10)
        if name == "broken":
            raise ProfileError("nvpmodel -m 7 failed: verify mismatch")
        self.applied.append(name)
        return {"profile": name, "applied": True, "error": None}


@pytest.fixture
def handler_env(
    mosquitto: MosquittoBroker, unique_prefix: str
) -> Iterator[tuple[ProfileCommandHandler, Profiles, Subscriber]]:
    config = MqttConfig(host=mosquitto.host, port=mosquitto.port, topic_prefix=unique_prefix)
    link = MqttLink(config, "dev1", "boot1", "1.0", FakeClock())
    profiles = Profiles()
    handler = ProfileCommandHandler(
        link.topics,
        link,
        profiles.apply,
        profiles={"maxq", "maxp", "broken"},
        clock=FakeClock(),
        current="maxp",
        queue_size=1,
    )
    with Subscriber(mosquitto.host, mosquitto.port, f"{unique_prefix}/dev1/profile/state") as sub:
        handler.start()
        link.start()
        assert link.wait_subscribed(5)
        try:
            yield handler, profiles, sub
        finally:
            handler.stop()
            handler.join()
            link.stop()


def send(sub: Subscriber, handler: ProfileCommandHandler, payload: bytes) -> dict[str, Any]:
    sub.publish(handler.topics.profile_set(), payload)
    doc = sub.next_json(handler.topics.profile_state(), timeout=10)
    jsonschema.validate(doc, load_schema("profile_state"))
    return doc


@pytest.mark.parametrize("payload", [b"maxq", b'"maxq"', b'{"profile": "maxq"}', b" maxq\n"])
def test_valid_command_applies_and_answers(
    handler_env: tuple[ProfileCommandHandler, Profiles, Subscriber], payload: bytes
) -> None:
    handler, profiles, sub = handler_env
    doc = send(sub, handler, payload)
    assert (doc["profile"], doc["applied"], doc["error"], doc["requested"]) == (
        "maxq",
        True,
        None,
        "maxq",
    )
    assert profiles.applied == ["maxq"]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"", "empty payload"),
        (b"   \n", "empty payload"),
        (b"\xff\xfemaxq", "not UTF-8"),
        (b"m" * (MAX_COMMAND_BYTES + 1), "too large"),
        (b"turbo", "unknown profile 'turbo'"),
        (b"max q", "expected a profile name"),
        (b"{not json", "not valid JSON"),
        (b'{"mode": "maxq"}', "expected a profile name"),
        (b"[1, 2]", "expected a profile name"),
    ],
)
def test_bad_command_is_answered_and_pipeline_untouched(
    handler_env: tuple[ProfileCommandHandler, Profiles, Subscriber], payload: bytes, error: str
) -> None:
    handler, profiles, sub = handler_env
    doc = send(sub, handler, payload)
    assert doc["applied"] is False
    assert error in doc["error"]
    assert doc["profile"] == "maxp"  # still the profile active before the command
    assert profiles.applied == []
    assert handler.rejected == 1


def test_apply_failure_is_answered(
    handler_env: tuple[ProfileCommandHandler, Profiles, Subscriber],
) -> None:
    handler, _profiles, sub = handler_env
    doc = send(sub, handler, b"broken")
    assert (doc["applied"], doc["profile"], doc["requested"]) == (False, "maxp", "broken")
    assert "verify mismatch" in doc["error"]


def test_busy_worker_refuses_instead_of_queueing_forever(
    handler_env: tuple[ProfileCommandHandler, Profiles, Subscriber],
) -> None:
    handler, profiles, sub = handler_env
    profiles.release.clear()
    sub.publish(handler.topics.profile_set(), b"maxq")
    assert profiles.entered.wait(5)  # the worker is busy applying it
    sub.publish(handler.topics.profile_set(), b"maxp")  # fills the queue of 1
    busy = send(sub, handler, b"maxq")
    assert busy["applied"] is False
    assert "busy" in busy["error"]
    profiles.release.set()
    answers = [sub.next_json(handler.topics.profile_state(), timeout=10) for _ in range(2)]
    assert [a["profile"] for a in answers] == ["maxq", "maxp"]
    assert profiles.applied == ["maxq", "maxp"]


def test_answer_is_retained(
    handler_env: tuple[ProfileCommandHandler, Profiles, Subscriber], mosquitto: MosquittoBroker
) -> None:
    handler, _profiles, sub = handler_env
    send(sub, handler, b"maxq")
    with Subscriber(mosquitto.host, mosquitto.port, handler.topics.profile_state()) as late:
        _topic, payload, retained = late.get()
    assert retained
    assert b'"maxq"' in payload


def test_parse_is_pure_and_strict() -> None:
    assert parse_profile_command(b'{"profile":"maxn"}') == "maxn"
    with pytest.raises(CommandRejected, match="64"):
        parse_profile_command(b'"' + b"a" * 65 + b'"')
