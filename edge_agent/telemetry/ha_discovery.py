"""Optional Home Assistant MQTT discovery (``mqtt.ha_discovery: true``).

Publishes one retained device-based discovery payload (:mod:`edge_agent.telemetry.ha_device`)
with sensors read from the telemetry topic (board W, fps, perf/W, mJ/inference, latency p50
and p99) and a ``select`` for the power profile (command ``profile/set``, state from
``profile/state``). Availability follows the JSON status topic, the agent's Will. The payload
goes through ``MqttLink.publish_retained``, so it is re-sent on every connect, and again
whenever Home Assistant announces ``online`` on its own status topic; the per-entity configs
of earlier releases are cleared with empty retained payloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge_agent.telemetry.ha_device import device_config, device_topic, legacy_topics
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.payloads import encode
from edge_agent.telemetry.topics import Topics


class HaDiscovery:
    """Builds and publishes the Home Assistant discovery configs.

    Args:
        topics: topic names of this device.
        link: the MQTT connection.
        ha_prefix: Home Assistant's discovery prefix (``MqttConfig.ha_prefix``).
        version: agent version for the device card.
        profiles: profile names offered by the select.
        model: board name for the device card.
    """

    def __init__(
        self,
        topics: Topics,
        link: MqttLink,
        ha_prefix: str,
        version: str,
        profiles: Sequence[str],
        model: str = "Jetson",
    ) -> None:
        self.topics = topics
        self.link = link
        self.ha_prefix = ha_prefix
        self.version = version
        self.profiles = list(profiles)
        self.model = model

    def configs(self) -> dict[str, dict[str, Any]]:
        """Discovery topic -> config document (one: the device's)."""
        doc = device_config(self.topics, self.version, self.profiles, self.model)
        return {device_topic(self.topics, self.ha_prefix): doc}

    def start(self) -> None:
        """Publish the configs (retained) and re-send them when Home Assistant comes online."""
        for topic in legacy_topics(self.topics, self.ha_prefix):
            self.link.publish_retained(topic, b"")  # an empty retained payload deletes it
        self.publish()
        self.link.subscribe(self.topics.ha_status(self.ha_prefix), self._on_ha_status)

    def publish(self) -> None:
        """Publish every config, retained."""
        for topic, doc in self.configs().items():
            self.link.publish_retained(topic, encode(doc))

    def _on_ha_status(self, _topic: str, payload: bytes) -> None:
        if payload.strip() == b"online":
            self.publish()


def publish_discovery(
    link: MqttLink,
    topics: Topics,
    ha_prefix: str,
    profiles: Sequence[str],
    version: str = "",
    model: str = "Jetson",
) -> HaDiscovery:
    """Build the discovery configs, publish them (retained, re-sent on reconnect) and return
    the publisher; the link may be connected or not yet."""
    discovery = HaDiscovery(topics, link, ha_prefix, version or link.version, profiles, model)
    discovery.start()
    return discovery
