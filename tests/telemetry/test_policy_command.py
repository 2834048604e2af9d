"""policy/set -> policy/state through a real broker, including hostile payloads."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.clock import FakeClock
from edge_agent.config import MqttConfig
from edge_agent.config_sections import GovernorConfig, ProfileConfig
from edge_agent.telemetry.inbound import InboundRejected
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.payloads import load_schema
from edge_agent.telemetry.policy_command import (
    PolicyCommandHandler,
    PolicyOutcome,
    parse_policy_command,
    policy_config,
)
from tests.fakes.broker import MosquittoBroker
from tests.telemetry.hostile import HOSTILE_PAYLOADS, POLICY_HOSTILE
from tests.telemetry.mqtt_helpers import Subscriber

RUNNING = ProfileConfig(initial="maxq", governor=GovernorConfig(slo_latency_ms=80, dwell_s=5))


class Governed:
    """A stand-in for the daemon's governor control: holds the section in force."""

    def __init__(self) -> None:
        self.config = RUNNING
        self.set_by = "config"
        self.applied: list[ProfileConfig] = []
        self.refuse: str | None = None
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def apply(self, new: ProfileConfig) -> PolicyOutcome:
        self.entered.set()
        self.release.wait(10)
        if self.refuse is not None:
            return PolicyOutcome(self.refuse)
        self.applied.append(new)
        self.config, self.set_by = new, "mqtt"
        return PolicyOutcome()


Env = tuple[PolicyCommandHandler, Governed, Subscriber]


@pytest.fixture
def env(mosquitto: MosquittoBroker, unique_prefix: str) -> Iterator[Env]:
    config = MqttConfig(host=mosquitto.host, port=mosquitto.port, topic_prefix=unique_prefix)
    link = MqttLink(config, "dev1", "boot1", "1.0", FakeClock())
    governed = Governed()
    handler = PolicyCommandHandler(
        link.topics,
        link,
        lambda: governed.config,
        lambda: governed.set_by,
        governed.apply,
        FakeClock(),
        queue_size=1,
    )
    with Subscriber(mosquitto.host, mosquitto.port, f"{unique_prefix}/dev1/policy/state") as sub:
        handler.start()
        link.start()
        assert link.wait_subscribed(5)
        try:
            yield handler, governed, sub
        finally:
            handler.stop()
            handler.join()
            link.stop()


def send(sub: Subscriber, handler: PolicyCommandHandler, payload: bytes) -> dict[str, Any]:
    sub.publish(handler.topics.policy_set(), payload)
    doc = sub.next_json(handler.topics.policy_state(), timeout=10)
    jsonschema.validate(doc, load_schema("policy_state"))
    return doc


def test_start_report_is_the_config_policy_and_retained(
    env: Env, mosquitto: MosquittoBroker
) -> None:
    handler, _governed, sub = env
    handler.report()
    doc = sub.next_json(handler.topics.policy_state(), timeout=10)
    jsonschema.validate(doc, load_schema("policy_state"))
    assert {k: doc[k] for k in ("policy", "preset", "set_by", "persists", "accepted")} == {
        "policy": "fixed",
        "preset": "maxq",
        "set_by": "config",
        "persists": True,
        "accepted": True,
    }
    with Subscriber(mosquitto.host, mosquitto.port, handler.topics.policy_state()) as late:
        _topic, payload, retained = late.get()
    assert retained
    assert b'"set_by":"config"' in payload


@pytest.mark.parametrize("payload", [b"slo", b'"slo"', b'{"policy": "slo"}', b" slo\n"])
def test_a_policy_name_is_applied_on_the_section_in_force(env: Env, payload: bytes) -> None:
    handler, governed, sub = env
    doc = send(sub, handler, payload)
    assert (doc["policy"], doc["accepted"], doc["error"], doc["requested"]) == (
        "slo",
        True,
        None,
        "slo",
    )
    # A runtime override: the config file decides again at the next start.
    assert (doc["set_by"], doc["persists"], doc["preset"]) == ("mqtt", False, None)
    # Only the policy changed: the SLO target and every other field are the section's.
    assert governed.applied == [RUNNING.model_copy(update={"policy": "slo"})]


def test_parameters_override_the_governor_fields_they_name(env: Env) -> None:
    handler, governed, sub = env
    doc = send(sub, handler, b'{"policy": "power_cap", "governor": {"power_cap_w": 7.5}}')
    assert (doc["policy"], doc["accepted"]) == ("power_cap", True)
    (new,) = governed.applied
    assert new.governor.power_cap_w == 7.5
    assert (new.governor.slo_latency_ms, new.governor.dwell_s) == (80, 5)
    doc = send(sub, handler, b'{"policy": "fixed", "initial": "maxp"}')
    assert (doc["policy"], doc["preset"], doc["accepted"]) == ("fixed", "maxp", True)
    assert governed.config.governor.power_cap_w == 7.5  # merged onto the new section


@pytest.mark.parametrize("name", sorted(POLICY_HOSTILE))
def test_hostile_policy_payloads_are_refused_naming_the_field(env: Env, name: str) -> None:
    handler, governed, sub = env
    payload, error = POLICY_HOSTILE[name]
    doc = send(sub, handler, payload)
    assert doc["accepted"] is False
    assert error in doc["error"]
    assert (doc["policy"], doc["set_by"]) == ("fixed", "config")  # still the policy in force
    assert governed.applied == []
    assert handler.rejected == 1


def test_every_shared_hostile_payload_is_refused_and_the_handler_still_obeys(env: Env) -> None:
    handler, governed, sub = env
    for name, payload in sorted(HOSTILE_PAYLOADS.items()):
        doc = send(sub, handler, payload)
        assert doc["accepted"] is False, name
        assert doc["error"], name
    assert handler.rejected == len(HOSTILE_PAYLOADS)
    assert send(sub, handler, b"slo")["accepted"] is True
    assert [c.policy for c in governed.applied] == ["slo"]


def test_a_refused_apply_is_answered_with_the_policy_in_force(env: Env) -> None:
    handler, governed, sub = env
    governed.refuse = "profile.policy: slo needs the governor, which is off: no tables"
    doc = send(sub, handler, b"slo")
    assert (doc["accepted"], doc["policy"], doc["requested"]) == (False, "fixed", "slo")
    assert doc["error"] == governed.refuse


def test_changes_are_rate_limited_and_a_full_queue_is_busy(env: Env) -> None:
    handler, governed, sub = env
    governed.release.clear()
    sub.publish(handler.topics.policy_set(), b"slo")
    assert governed.entered.wait(5)  # the worker is busy applying it
    sub.publish(handler.topics.policy_set(), b"thermal_limit")  # refused: not a policy
    refused = sub.next_json(handler.topics.policy_state(), timeout=10)
    assert "profile.policy" in refused["error"]
    sub.publish(handler.topics.policy_set(), b"fixed")  # fills the queue of 1
    for _ in range(2):  # the third and fourth change of the burst find the queue full
        busy = send(sub, handler, b"slo")
        assert "busy: 1 policy commands pending" in busy["error"]
    limited = send(sub, handler, b"slo")  # 4 at once, and fake time stands still
    assert "rate limited" in limited["error"]
    governed.release.set()
    answers = [sub.next_json(handler.topics.policy_state(), timeout=10) for _ in range(2)]
    assert [(a["policy"], a["accepted"]) for a in answers] == [("slo", True), ("fixed", True)]


def test_parse_checks_shape_and_the_config_model_checks_values() -> None:
    command = parse_policy_command(b'{"policy": "thermal", "governor": {"thermal_limit_c": 70}}')
    assert command.policy == "thermal"
    assert policy_config(RUNNING, command).governor.thermal_limit_c == 70
    # The same section in the config file is refused for the same reason.
    needs = r"policy thermal needs governor\.thermal_limit_c"
    with pytest.raises(InboundRejected, match=f"^profile: {needs}$"):
        policy_config(RUNNING, parse_policy_command(b"thermal"))
    with pytest.raises(ValueError, match=needs):
        ProfileConfig(policy="thermal")


_value = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_governor = st.dictionaries(
    st.sampled_from(
        ["slo_latency_ms", "slo_percentile", "power_cap_w", "thermal_limit_c", "dwell_s", "x"]
    ),
    _value,
    max_size=4,
)
_command = st.fixed_dictionaries(
    {"policy": st.sampled_from(["fixed", "slo", "power_cap", "thermal", "schedule", "x"]) | _value},
    optional={"governor": _governor | _value, "initial": _value},
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | _command.map(lambda d: json.dumps(d).encode()))
def test_any_payload_gives_a_valid_section_or_a_refusal(payload: bytes) -> None:
    try:
        new = policy_config(RUNNING, parse_policy_command(payload))
    except InboundRejected:
        return
    # Whatever is accepted is a section the config file itself could hold.
    assert ProfileConfig.model_validate(new.model_dump()) == new
    assert new.backend == RUNNING.backend
    assert new.custom == RUNNING.custom
