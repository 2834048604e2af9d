"""Home Assistant device-based discovery: one retained payload with every entity.

Topic ``<ha_prefix>/device/<device_id>/config`` (Home Assistant 2024.11+), payload:
``dev`` (the device card), ``o`` (origin: required for device discovery), ``cmps`` (one
entry per entity, each with its platform ``p`` and a ``unique_id``) and the options the
entities share (availability). Source:
https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload

Availability is the agent's JSON status topic, which is also its MQTT Will: a crash or a
network loss makes the broker publish ``offline`` and every entity goes unavailable at once.
Earlier releases published one config per entity; :func:`legacy_topics` names them so the
agent can clear them (an empty retained payload deletes a discovered entity).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge_agent.telemetry.policy_command import POLICY_NAMES
from edge_agent.telemetry.topics import Topics

# object id -> (name, value template over the telemetry JSON, unit, device class)
SENSORS: dict[str, tuple[str, str, str | None, str | None]] = {
    "board_power": ("Board power", "{{ value_json.power.total_w }}", "W", "power"),
    "fps": ("Inferences per second", "{{ value_json.fps }}", "fps", None),
    "perf_per_watt": (
        "Inferences per second per watt",
        "{{ value_json.perf_per_watt }}",
        "fps/W",
        None,
    ),
    "energy_per_inference": (
        "Energy per inference",
        "{{ value_json.mj_per_inference }}",
        "mJ",
        None,
    ),
    "latency_p50": ("Latency p50", "{{ value_json.latency_ms.p50 }}", "ms", "duration"),
    "latency_p99": ("Latency p99", "{{ value_json.latency_ms.p99 }}", "ms", "duration"),
}
# What earlier releases published one by one (component, object id).
LEGACY = (
    ("sensor", "board_power"),
    ("sensor", "fps"),
    ("sensor", "perf_per_watt"),
    ("sensor", "latency_p50"),
    ("select", "profile"),
)


def device_topic(topics: Topics, ha_prefix: str) -> str:
    """``<ha_prefix>/device/<device_id>/config``."""
    return f"{topics.ha_status(ha_prefix).rsplit('/', 1)[0]}/device/{topics.device_id}/config"


def legacy_topics(topics: Topics, ha_prefix: str) -> list[str]:
    """The per-entity config topics of earlier releases, to be cleared."""
    return [topics.ha_config(ha_prefix, component, oid) for component, oid in LEGACY]


def device_config(
    topics: Topics, version: str, profiles: Sequence[str], model: str
) -> dict[str, Any]:
    """The device discovery payload: the device card, the origin, the entities."""
    dev = topics.device_id
    components: dict[str, dict[str, Any]] = {}
    for object_id, (name, template, unit, device_class) in SENSORS.items():
        doc: dict[str, Any] = {
            "p": "sensor",
            "name": name,
            "unique_id": f"{dev}_{object_id}",
            "state_topic": topics.telemetry(),
            "value_template": template,
            "state_class": "measurement",
        }
        if unit is not None:
            doc["unit_of_measurement"] = unit
        if device_class is not None:
            doc["device_class"] = device_class
        components[object_id] = doc
    components["profile"] = {
        "p": "select",
        "name": "Power profile",
        "unique_id": f"{dev}_profile",
        "command_topic": topics.profile_set(),
        "state_topic": topics.profile_state(),
        "value_template": "{{ value_json.profile }}",
        "options": list(profiles),
    }
    # The governor policy: Home Assistant sends the chosen option as the bare payload, which
    # policy/set accepts; a refusal leaves policy/state on the policy in force, so the select
    # shows what the agent runs, not what was clicked.
    components["policy"] = {
        "p": "select",
        "name": "Governor policy",
        "unique_id": f"{dev}_policy",
        "command_topic": topics.policy_set(),
        "state_topic": topics.policy_state(),
        "value_template": "{{ value_json.policy }}",
        "options": list(POLICY_NAMES),
    }
    return {
        "dev": {
            "ids": [f"edge-agent-{dev}"],
            "name": f"edge-agent {dev}",
            "mf": "NVIDIA",
            "mdl": model,
            "sw": version,
        },
        "o": {"name": "edge-agent", "sw": version},
        "cmps": components,
        "availability_topic": topics.status(),
        "availability_template": "{{ value_json.state }}",
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
    }
