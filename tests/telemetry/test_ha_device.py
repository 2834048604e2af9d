"""The device discovery payload uses only keys Home Assistant documents, with the required ones.

Keys from https://www.home-assistant.io/integrations/mqtt/ (device discovery payload,
device and origin mappings) and the sensor and select platform pages (sensor.mqtt,
select.mqtt), full names and their documented abbreviations.
"""

from __future__ import annotations

from typing import Any

import pytest

from edge_agent.telemetry.ha_device import device_config, device_topic, legacy_topics
from edge_agent.telemetry.topics import Topics

AVAILABILITY = {
    "availability_topic",
    "availability_template",
    "availability_mode",
    "payload_available",
    "payload_not_available",
}
ROOT_KEYS = {"dev", "device", "o", "origin", "cmps", "components", "qos", "encoding", "~"}
ROOT_KEYS |= AVAILABILITY | {"state_topic", "command_topic"}
DEVICE_KEYS = {
    "ids", "identifiers", "name", "mf", "manufacturer", "mdl", "model", "mdl_id", "model_id",
    "sw", "sw_version", "hw", "hw_version", "sn", "serial_number", "cu", "configuration_url",
    "cns", "connections", "sa", "suggested_area", "via_device",
}  # fmt: skip
ORIGIN_KEYS = {"name", "sw", "sw_version", "url", "support_url"}
ENTITY_COMMON = AVAILABILITY | {
    "p", "platform", "name", "unique_id", "uniq_id", "icon", "entity_category",
    "enabled_by_default", "json_attributes_topic", "json_attributes_template", "qos",
    "encoding", "object_id", "default_entity_id",
}  # fmt: skip
PLATFORM_KEYS = {
    "sensor": ENTITY_COMMON | {
        "state_topic", "value_template", "unit_of_measurement", "device_class", "state_class",
        "expire_after", "force_update", "suggested_display_precision", "last_reset_value_template",
    },
    "select": ENTITY_COMMON | {
        "command_topic", "command_template", "state_topic", "value_template", "options",
        "optimistic", "retain",
    },
}  # fmt: skip
REQUIRED = {"sensor": {"state_topic"}, "select": {"command_topic", "options"}}
SENSOR_DEVICE_CLASSES = {"power", "duration", "energy", "temperature", "frequency"}


@pytest.fixture
def doc() -> dict[str, Any]:
    return device_config(Topics("edge", "tx2-01"), "0.9.0", ["maxq", "maxp"], "jetson-tx2")


def test_keys_are_documented_and_required_ones_present(doc: dict[str, Any]) -> None:
    assert set(doc) <= ROOT_KEYS
    assert set(doc["dev"]) <= DEVICE_KEYS
    assert doc["dev"]["ids"]
    assert set(doc["o"]) <= ORIGIN_KEYS
    assert doc["o"]["name"], "origin name is required for device discovery"
    for object_id, entity in doc["cmps"].items():
        platform = entity["p"]
        assert set(entity) <= PLATFORM_KEYS[platform], object_id
        assert REQUIRED[platform] <= set(entity), object_id
        assert entity["unique_id"].startswith("tx2-01_"), object_id
        if "device_class" in entity:
            assert entity["device_class"] in SENSOR_DEVICE_CLASSES, object_id


def test_topics(doc: dict[str, Any]) -> None:
    topics = Topics("edge", "tx2-01")
    assert device_topic(topics, "homeassistant") == "homeassistant/device/tx2-01/config"
    assert legacy_topics(topics, "homeassistant") == [
        "homeassistant/sensor/tx2-01/board_power/config",
        "homeassistant/sensor/tx2-01/fps/config",
        "homeassistant/sensor/tx2-01/perf_per_watt/config",
        "homeassistant/sensor/tx2-01/latency_p50/config",
        "homeassistant/select/tx2-01/profile/config",
    ]
    for entity in doc["cmps"].values():
        assert entity.get("state_topic", "").startswith("edge/tx2-01/")
