"""Hostile messages on every inbound topic, through a real mosquitto, while results flow."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import jsonschema

from edge_agent.clock import FakeClock
from edge_agent.config_sections import ProfileConfig
from edge_agent.telemetry.commands import ProfileCommandHandler
from edge_agent.telemetry.ha_discovery import HaDiscovery
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.payloads import load_schema
from edge_agent.telemetry.policy_command import PolicyCommandHandler, PolicyOutcome
from tests.fakes.broker import MosquittoBroker
from tests.telemetry.conftest import Agent, AgentFactory
from tests.telemetry.hostile import HOSTILE_PAYLOADS, NESTED
from tests.telemetry.mqtt_helpers import Subscriber
from tests.telemetry.test_publisher import result


def _apply(name: str) -> Mapping[str, Any]:
    return {"profile": name, "applied": True, "error": None}


def _handler(link: MqttLink, clock: FakeClock) -> ProfileCommandHandler:
    return ProfileCommandHandler(
        link.topics, link, _apply, profiles={"maxq", "maxp"}, clock=clock, current="maxp"
    )


def _wait(predicate: Any, timeout_s: float = 10.0) -> bool:
    tick = threading.Event()
    for _ in range(int(timeout_s / 0.02)):
        if predicate():
            return True
        tick.wait(0.02)
    return bool(predicate())


def test_hostile_payloads_on_every_inbound_topic_are_answered_and_results_flow(
    mosquitto: MosquittoBroker, make_agent: AgentFactory, unique_prefix: str
) -> None:
    clock = FakeClock()
    agent: Agent = make_agent(mosquitto.port)
    handler = _handler(agent.link, clock)
    ha_prefix = f"{unique_prefix}ha"
    discovery = HaDiscovery(agent.link.topics, agent.link, ha_prefix, "1", ["maxq"], clock=clock)
    policies: list[str] = []

    def apply_policy(new: ProfileConfig) -> PolicyOutcome:
        policies.append(new.policy)
        return PolicyOutcome()

    policy = PolicyCommandHandler(
        agent.link.topics, agent.link, ProfileConfig, lambda: "config", apply_policy, clock=clock
    )
    handler.start()
    policy.start()
    discovery.start()
    state_topic = agent.link.topics.profile_state()
    policy_topic = agent.link.topics.policy_state()
    schema = load_schema("profile_state")
    ids: list[str] = []
    try:
        assert agent.link.wait_subscribed(10)
        with Subscriber(mosquitto.host, mosquitto.port, f"{unique_prefix}/#") as sub:
            for n, (name, payload) in enumerate(sorted(HOSTILE_PAYLOADS.items())):
                ids.append(agent.publisher.publish_result("cam0", result("cam0", n)))
                sub.publish(agent.link.topics.ha_status(ha_prefix), payload)
                sub.publish(agent.link.topics.profile_set(), payload)
                sub.publish(agent.link.topics.policy_set(), payload)
                answer = sub.next_json(state_topic, timeout=10)
                jsonschema.validate(answer, schema)
                assert answer["applied"] is False, name
                assert answer["error"], name
                assert answer["profile"] == "maxp", name
                refused = sub.next_json(policy_topic, timeout=10)
                jsonschema.validate(refused, load_schema("policy_state"))
                assert (refused["accepted"], refused["policy"]) == (False, "fixed"), name
            got = sub.collect_results(set(ids), timeout=20)
            # Still alive and still obeying: a good command after all that is applied.
            sub.publish(agent.link.topics.profile_set(), b"maxq")
            applied = sub.next_json(state_topic, timeout=10)
            sub.publish(agent.link.topics.policy_set(), b"slo")
            accepted = sub.next_json(policy_topic, timeout=10)
        assert applied["applied"] is True
        assert applied["profile"] == "maxq"
        assert (accepted["accepted"], accepted["requested"], policies) == (True, "slo", ["slo"])
    finally:
        handler.stop()
        handler.join()
        policy.stop()
        policy.join()
    assert {doc["msg_id"] for _t, doc in got} == set(ids)
    assert handler.rejected == len(HOSTILE_PAYLOADS)
    assert policy.rejected == len(HOSTILE_PAYLOADS)
    assert _wait(lambda: discovery.log.count == len(HOSTILE_PAYLOADS))
    assert discovery.published == 1  # no hostile payload triggered a re-send
    assert agent.link.connected


def test_retained_nested_payload_is_answered_at_every_start(
    mosquitto: MosquittoBroker, make_agent: AgentFactory
) -> None:
    agent = make_agent(mosquitto.port)
    command = agent.link.topics.profile_set()
    state_topic = agent.link.topics.profile_state()
    with Subscriber(mosquitto.host, mosquitto.port, state_topic) as sub:
        sub.publish(command, NESTED, retain=True)
        try:
            for _start in range(3):
                # A fresh link + handler, as after a restart: the broker replays the retained
                # command on subscribe.
                link = MqttLink(agent.link.config, "dev1", "b", "1", FakeClock())
                handler = _handler(link, FakeClock())
                handler.start()
                link.start()
                try:
                    answer = sub.next_json(state_topic, timeout=10)
                    assert "nested deeper than 32 levels" in answer["error"]
                    assert link.connected
                finally:
                    handler.stop()
                    handler.join()
                    link.stop()
            ids = [agent.publisher.publish_result("cam0", result("cam0", 1))]
            assert agent.publisher.flush(10)
            assert agent.publisher.stats().acked == len(ids)
        finally:
            sub.publish(command, b"", retain=True)  # clears the retained message


def test_home_assistant_online_storm_makes_few_rediscoveries(
    mosquitto: MosquittoBroker, make_agent: AgentFactory, unique_prefix: str
) -> None:
    clock = FakeClock()
    agent = make_agent(mosquitto.port)
    ha_prefix = f"{unique_prefix}ha"
    discovery = HaDiscovery(agent.link.topics, agent.link, ha_prefix, "1", ["maxq"], clock=clock)
    discovery.start()
    assert agent.link.wait_subscribed(10)
    status = agent.link.topics.ha_status(ha_prefix)
    with Subscriber(
        mosquitto.host, mosquitto.port, f"{ha_prefix}/+/+/config"
    ) as sub:  # device-based: device/<dev>/config
        for _ in range(200):
            sub.publish(status, b"online")
        assert _wait(lambda: discovery.rediscovery.refused == 198)
        clock.advance(10.0)
        sub.publish(status, b"online")  # one token back after the interval
        assert _wait(lambda: discovery.published == 4)
        sub.publish(status, b"offline")
        sub.publish(status, b"online")
        assert _wait(lambda: discovery.rediscovery.refused == 199)
        configs = len(discovery.configs())
        # start + 2 (burst) + 1 (after 10 s); the subscriber also gets the retained copies.
        assert _wait(lambda: len(sub.history) >= 4 * configs)
        assert len(sub.history) <= 5 * configs
    assert discovery.published == 4
