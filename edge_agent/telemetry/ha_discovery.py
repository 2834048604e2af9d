"""Optional Home Assistant MQTT discovery (``mqtt.ha_discovery: true``).

Publishes one retained device-based discovery payload (:mod:`edge_agent.telemetry.ha_device`)
with sensors read from the telemetry topic (board W, fps, perf/W, mJ/inference, latency p50
and p99), a ``select`` for the power profile (command ``profile/set``, state from
``profile/state``) and one for the governor policy (command ``policy/set``, state from
``policy/state``). Availability follows the JSON status topic, the agent's Will. The payload
goes through ``MqttLink.publish_retained``, so it is re-sent on every connect, and again
whenever Home Assistant announces ``online`` on its own status topic; the per-entity configs
of earlier releases are cleared with empty retained payloads. Home Assistant's status topic
is inbound: its payload goes through the bounded inbound parser, and re-sends are
rate-limited (an ``online`` storm costs at most a couple of re-sends; the configs are retained
anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from edge_agent.clock import Clock, SystemClock
from edge_agent.telemetry.ha_device import device_config, device_topic, legacy_topics
from edge_agent.telemetry.inbound import InboundLog, RateLimiter, decode_text, guard, validate
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.payloads import encode
from edge_agent.telemetry.topics import Topics

HA_STATUS_MAX_BYTES = 64
REDISCOVERY_BURST = 2
REDISCOVERY_EVERY_S = 10.0


class HaStatus(BaseModel):
    """Home Assistant's birth/last-will payload on ``<ha_prefix>/status``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: Literal["online", "offline"]


class HaDiscovery:
    """Builds and publishes the Home Assistant discovery configs.

    Args:
        topics: topic names of this device.
        link: the MQTT connection.
        ha_prefix: Home Assistant's discovery prefix (``MqttConfig.ha_prefix``).
        version: agent version for the device card.
        profiles: profile names offered by the select.
        model: board name for the device card.
        clock: the injected clock (the rediscovery rate limit).
    """

    def __init__(
        self,
        topics: Topics,
        link: MqttLink,
        ha_prefix: str,
        version: str,
        profiles: Sequence[str],
        model: str = "Jetson",
        clock: Clock | None = None,
    ) -> None:
        self.topics = topics
        self.link = link
        self.ha_prefix = ha_prefix
        self.version = version
        self.profiles = list(profiles)
        self.model = model
        clock = clock or SystemClock()
        self.rediscovery = RateLimiter(clock, REDISCOVERY_BURST, REDISCOVERY_EVERY_S)
        self.log = InboundLog(clock, "ha status")
        self.published = 0

    def configs(self) -> dict[str, dict[str, Any]]:
        """Discovery topic -> config document (one: the device's)."""
        doc = device_config(self.topics, self.version, self.profiles, self.model)
        return {device_topic(self.topics, self.ha_prefix): doc}

    def start(self) -> None:
        """Publish the configs (retained) and re-send them when Home Assistant comes online."""
        for topic in legacy_topics(self.topics, self.ha_prefix):
            self.link.publish_retained(topic, b"")  # an empty retained payload deletes it
        self.publish()
        # Nothing to answer on: the status topic is Home Assistant's own. Refusals are counted
        # and logged.
        self.link.subscribe(
            self.topics.ha_status(self.ha_prefix), guard(self.on_ha_status, None, self.log)
        )

    def publish(self) -> None:
        """Publish every config, retained."""
        for topic, doc in self.configs().items():
            self.link.publish_retained(topic, encode(doc))
        self.published += 1

    def on_ha_status(self, _topic: str, payload: bytes) -> None:
        """Re-send the configs when Home Assistant comes online (rate-limited).

        Raises:
            InboundRejected: the payload is not ``online`` or ``offline``.
        """
        status = validate(HaStatus, {"state": decode_text(payload, HA_STATUS_MAX_BYTES)})
        if status.state == "online" and self.rediscovery.allow():
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
