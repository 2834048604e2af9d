"""Home Assistant device-based discovery: one retained payload, on a real broker."""

from __future__ import annotations

import json

from edge_agent.clock import FakeClock
from edge_agent.config import MqttConfig
from edge_agent.telemetry.ha_device import SENSORS
from edge_agent.telemetry.ha_discovery import HaDiscovery, publish_discovery
from edge_agent.telemetry.mqtt_link import MqttLink
from tests.fakes.broker import MosquittoBroker
from tests.telemetry.mqtt_helpers import Subscriber


def test_one_retained_device_payload_holds_every_entity(
    mosquitto: MosquittoBroker, unique_prefix: str
) -> None:
    ha_prefix = f"{unique_prefix}ha"
    legacy = f"{ha_prefix}/sensor/dev1/fps/config"
    with Subscriber(mosquitto.host, mosquitto.port, f"{ha_prefix}/#") as old_release:
        old_release.publish(legacy, b'{"name": "fps"}', retain=True)
    config = MqttConfig(
        host=mosquitto.host,
        port=mosquitto.port,
        topic_prefix=unique_prefix,
        ha_discovery=True,
        ha_prefix=ha_prefix,
    )
    link = MqttLink(config, "dev1", "b1", "1.0", FakeClock())
    discovery = publish_discovery(
        link, link.topics, ha_prefix, ["maxq", "maxp"], model="jetson-tx2"
    )
    assert isinstance(discovery, HaDiscovery)
    link.start()
    try:
        assert link.wait_subscribed(5)
        with Subscriber(mosquitto.host, mosquitto.port, f"{ha_prefix}/#") as sub:
            topic, payload, retained = sub.get()
            assert (topic, retained) == (f"{ha_prefix}/device/dev1/config", True)
            doc = json.loads(payload)
            # Home Assistant says it (re)started: the payload comes again.
            sub.publish(f"{ha_prefix}/status", b"online")
            again = sub.next_json(f"{ha_prefix}/device/dev1/config")
            assert again == doc
            assert [m[0] for m in sub.history].count(legacy) == 0, "the old config is gone"
    finally:
        link.stop()

    assert doc["dev"] == {
        "ids": ["edge-agent-dev1"],
        "name": "edge-agent dev1",
        "mf": "NVIDIA",
        "mdl": "jetson-tx2",
        "sw": "1.0",
    }
    assert doc["o"]["name"] == "edge-agent"
    # Availability is the status topic, the agent's Will: a crash makes it "offline".
    assert doc["availability_topic"] == f"{unique_prefix}/dev1/status"
    assert doc["availability_template"] == "{{ value_json.state }}"
    entities = doc["cmps"]
    assert set(entities) == {*SENSORS, "profile", "policy"}
    assert len({e["unique_id"] for e in entities.values()}) == len(entities)
    power = entities["board_power"]
    assert power["p"] == "sensor"
    assert power["state_topic"] == f"{unique_prefix}/dev1/telemetry"
    assert power["value_template"] == "{{ value_json.power.total_w }}"
    assert power["unit_of_measurement"] == "W"
    select = entities["profile"]
    assert select["p"] == "select"
    assert select["command_topic"] == f"{unique_prefix}/dev1/profile/set"
    assert select["state_topic"] == f"{unique_prefix}/dev1/profile/state"
    assert select["options"] == ["maxq", "maxp"]
    policy = entities["policy"]
    assert policy["p"] == "select"
    assert policy["unique_id"] == "dev1_policy"
    assert policy["command_topic"] == f"{unique_prefix}/dev1/policy/set"
    assert policy["state_topic"] == f"{unique_prefix}/dev1/policy/state"
    assert policy["value_template"] == "{{ value_json.policy }}"
    assert policy["options"] == ["fixed", "slo", "power_cap", "thermal", "schedule"]
