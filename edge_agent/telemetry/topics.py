"""MQTT topic names: the only module that builds topic strings.

Layout (DESIGN.md section 6), ``<p>`` the prefix (default ``edge``), ``<dev>`` the device id:

- ``<p>/<dev>/status``: retained availability, also the Will;
- ``<p>/<dev>/results/<camera>``: one message per inference result;
- ``<p>/<dev>/telemetry``: periodic power and performance;
- ``<p>/<dev>/profile/set`` -> ``<p>/<dev>/profile/state`` (retained);
- ``<p>/<dev>/policy/set`` -> ``<p>/<dev>/policy/state`` (retained): the governor policy;
- ``<p>/<dev>/config/set``, ``<p>/fleet/<group>/config/set`` -> ``<p>/<dev>/config/state``;
- ``<ha_prefix>/<component>/<dev>/<object>/config``: Home Assistant discovery.
"""

from __future__ import annotations

import re

from edge_agent.errors import TelemetryError

_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")


def check_segment(value: str, what: str) -> str:
    """Return ``value`` if it is safe as one topic level, else raise TelemetryError.

    Args:
        value: the level (device id, camera name, group, object id).
        what: a name for the error message.
    """
    if not _SEGMENT.match(value):
        raise TelemetryError(
            f"{what} {value!r} may hold only letters, digits, '_', '.' and '-' in an MQTT topic"
        )
    return value


def _check_prefix(prefix: str) -> str:
    if not prefix or prefix.startswith("/") or prefix.endswith("/"):
        raise TelemetryError(
            f"topic prefix {prefix!r} must be non-empty without a leading/trailing '/'"
        )
    for level in prefix.split("/"):
        check_segment(level, "topic prefix level")
    return prefix


class Topics:
    """Every topic this device publishes or subscribes to.

    Args:
        prefix: the topic prefix (``MqttConfig.topic_prefix``).
        device_id: this device's id; one topic level.
    """

    def __init__(self, prefix: str, device_id: str) -> None:
        self.prefix = _check_prefix(prefix)
        self.device_id = check_segment(device_id, "device id")
        self.base = f"{self.prefix}/{self.device_id}"
        self._results: dict[str, str] = {}

    def status(self) -> str:
        """Retained availability (online/offline/stopped); also the Will."""
        return f"{self.base}/status"

    def device_filter(self) -> str:
        """Subscription filter matching everything this device publishes (``<p>/<dev>/#``)."""
        return f"{self.base}/#"

    def results(self, camera: str) -> str:
        """Results of one camera."""
        topic = self._results.get(camera)
        if topic is None:
            topic = f"{self.base}/results/{check_segment(camera, 'camera name')}"
            self._results[camera] = topic
        return topic

    def results_filter(self) -> str:
        """Subscription filter matching every camera's results."""
        return f"{self.base}/results/+"

    def telemetry(self) -> str:
        """Periodic telemetry."""
        return f"{self.base}/telemetry"

    def profile_set(self) -> str:
        """Incoming profile command."""
        return f"{self.base}/profile/set"

    def profile_state(self) -> str:
        """Retained answer to profile commands."""
        return f"{self.base}/profile/state"

    def policy_set(self) -> str:
        """Incoming governor policy command."""
        return f"{self.base}/policy/set"

    def policy_state(self) -> str:
        """Retained governor policy in force, and the answer to policy commands."""
        return f"{self.base}/policy/state"

    def config_set(self) -> str:
        """Incoming desired config for this device."""
        return f"{self.base}/config/set"

    def fleet_config_set(self, group: str) -> str:
        """Incoming desired config for a fleet group."""
        return f"{self.prefix}/fleet/{check_segment(group, 'fleet group')}/config/set"

    def config_state(self) -> str:
        """Retained reported config state."""
        return f"{self.base}/config/state"

    def ha_config(self, ha_prefix: str, component: str, object_id: str) -> str:
        """Home Assistant discovery config topic for one entity."""
        return (
            f"{_check_prefix(ha_prefix)}/{check_segment(component, 'HA component')}/"
            f"{self.device_id}/{check_segment(object_id, 'HA object id')}/config"
        )

    def ha_status(self, ha_prefix: str) -> str:
        """Home Assistant's own birth/LWT topic (re-send discovery on ``online``)."""
        return f"{_check_prefix(ha_prefix)}/status"
