"""Home Assistant discovery configs, retained on a real broker."""

from __future__ import annotations

import json

from edge_agent.clock import FakeClock
from edge_agent.config import MqttConfig
from edge_agent.telemetry.ha_discovery import HaDiscovery, publish_discovery
from edge_agent.telemetry.mqtt_link import MqttLink
from tests.fakes.broker import MosquittoBroker
from tests.telemetry.mqtt_helpers import Subscriber


def test_discovery_configs_are_retained_and_point_at_our_topics(
    mosquitto: MosquittoBroker, unique_prefix: str
) -> None:
    ha_prefix = f"{unique_prefix}ha"
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
    assert link.wait_subscribed(5)
    link.stop()
    configs: dict[str, dict[str, object]] = {}
    with Subscriber(mosquitto.host, mosquitto.port, f"{ha_prefix}/#") as sub:
        while len(configs) < 5:
            topic, payload, retained = sub.get()
            assert retained
            configs[topic] = json.loads(payload)
    base = f"{ha_prefix}/sensor/dev1"
    assert set(configs) == {
        f"{base}/board_power/config",
        f"{base}/fps/config",
        f"{base}/perf_per_watt/config",
        f"{base}/latency_p50/config",
        f"{ha_prefix}/select/dev1/profile/config",
    }
    power = configs[f"{base}/board_power/config"]
    assert power["state_topic"] == f"{unique_prefix}/dev1/telemetry"
    assert power["value_template"] == "{{ value_json.power.total_w }}"
    assert power["unit_of_measurement"] == "W"
    assert power["availability_topic"] == f"{unique_prefix}/dev1/status"
    select = configs[f"{ha_prefix}/select/dev1/profile/config"]
    assert select["command_topic"] == f"{unique_prefix}/dev1/profile/set"
    assert select["state_topic"] == f"{unique_prefix}/dev1/profile/state"
    assert select["options"] == ["maxq", "maxp"]
    assert len({c["unique_id"] for c in configs.values()}) == 5
    assert power["device"] == {
        "identifiers": ["edge-agent-dev1"],
        "name": "edge-agent dev1",
        "manufacturer": "NVIDIA",
        "model": "jetson-tx2",
        "sw_version": "1.0",
    }
