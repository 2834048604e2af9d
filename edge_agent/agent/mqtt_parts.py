"""The agent's MQTT side: the broker it uses, the link, the outbox publisher and the handlers
of inbound commands (``profile/set``, ``policy/set``, Home Assistant discovery).

Built and started by :class:`edge_agent.agent.parts.AgentParts`; the handlers call back into
the profile switch and the governor control it passes in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.agent.backlog import announce_old_rows, flush_announced
from edge_agent.agent.board_profiles import BoardProfiles
from edge_agent.agent.governor_control import GovernorControl
from edge_agent.clock import Clock
from edge_agent.config_sections import MqttConfig
from edge_agent.errors import TelemetryError
from edge_agent.telemetry.broker import EmbeddedBroker
from edge_agent.telemetry.commands import ApplyFn, ProfileCommandHandler
from edge_agent.telemetry.ha_discovery import HaDiscovery
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.outbox import Outbox
from edge_agent.telemetry.policy_command import PolicyCommandHandler
from edge_agent.telemetry.publisher import Publisher
from edge_agent.telemetry.topics import Topics

logger = logging.getLogger(__name__)

BeforeConnect = Callable[[MqttLink, Topics], None]


class MqttParts:
    """Starts and stops the MQTT side; each part is None until it is built.

    Args:
        config: the ``mqtt`` section (``host: embedded`` starts a local broker).
        device_id, boot_id, version: who this agent is (topics, the ``online`` message).
        clock: the injected clock.
        state_dir: where the outbox lives.
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        device_id: str,
        boot_id: str,
        version: str,
        clock: Clock,
        state_dir: Path,
    ) -> None:
        self.config = config
        self.device_id = device_id
        self.boot_id = boot_id
        self.version = version
        self.clock = clock
        self.state_dir = state_dir
        self.port = config.port  # the embedded broker's, once it runs
        self.broker: EmbeddedBroker | None = None
        self.topics: Topics | None = None
        self.link: MqttLink | None = None
        self.publisher: Publisher | None = None
        self.commands: ProfileCommandHandler | None = None
        self.policy_commands: PolicyCommandHandler | None = None
        self._final_outbox: dict[str, Any] | None = None

    def start(
        self,
        profiles: BoardProfiles,
        switch: ApplyFn,
        control: GovernorControl,
        model: str,
        before_connect: BeforeConnect | None,
    ) -> None:
        """Build the link and publisher, start the command handlers, then connect.

        ``switch`` applies a profile for ``profile/set``; ``model`` names the board for Home
        Assistant; ``before_connect`` runs with the link before it connects, so fleet
        subscriptions precede ``online``.
        """
        mqtt = self.config
        if mqtt.host == "embedded":
            mqtt = self._start_embedded_broker()
        self.topics = Topics(mqtt.topic_prefix, self.device_id)
        self.link = MqttLink(
            mqtt,
            self.device_id,
            self.boot_id,
            self.version,
            self.clock,
            reconnect_max_s=mqtt.reconnect_max_s,
        )
        outbox = Outbox(self.state_dir / "outbox.sqlite3", mqtt.outbox_max_mb)
        announce_old_rows(
            outbox, self.state_dir / "outbox.sqlite3", f"{self.link.host}:{mqtt.port}"
        )
        self.publisher = Publisher(
            self.link, outbox, self.topics, self.clock, mqtt.inflight_window, self.boot_id
        )
        self._start_commands(mqtt, self.topics, self.link, profiles, switch, control, model)
        if before_connect is not None:
            before_connect(self.link, self.topics)
        self.link.start()
        self.publisher.start()

    def _start_commands(
        self,
        mqtt: MqttConfig,
        topics: Topics,
        link: MqttLink,
        profiles: BoardProfiles,
        switch: ApplyFn,
        control: GovernorControl,
        model: str,
    ) -> None:
        self.commands = ProfileCommandHandler(
            topics,
            link,
            switch,
            profiles=profiles.names() or None,
            clock=self.clock,
            current=profiles.current(),
        )
        self.commands.start()
        self.commands.report(profiles.current(), profiles.error)
        self.policy_commands = PolicyCommandHandler(
            topics,
            link,
            lambda: control.config,
            lambda: control.set_by,
            lambda profile: control.set_policy(profile, "mqtt"),
            clock=self.clock,
        )
        self.policy_commands.start()
        self.policy_commands.report()
        if mqtt.ha_discovery:
            HaDiscovery(
                topics,
                link,
                mqtt.ha_prefix,
                self.version,
                profiles.names(),
                model,
                clock=self.clock,
            ).start()

    def _start_embedded_broker(self) -> MqttConfig:
        port = self.config.port
        self.broker = EmbeddedBroker(host="127.0.0.1", port=port)
        try:
            self.broker.start()
        except TelemetryError as err:
            logger.warning("%s; using a free port instead (the banner shows it)", err)
            self.broker = EmbeddedBroker(host="127.0.0.1", port=0)
            self.broker.start()
        self.port = self.broker.port
        return self.config.model_copy(update={"host": "127.0.0.1", "port": self.broker.port})

    def stop_policy_commands(self) -> None:
        """Stop taking policy changes (before the governor stops)."""
        if self.policy_commands is not None:
            self.policy_commands.stop()
            self.policy_commands.join(timeout_s=5.0)

    def close(self, flush_timeout_s: float) -> None:
        """Flush the outbox, stop the publisher and profile commands, publish ``stopped``."""
        if self.publisher is not None:
            broker = "(none)" if self.link is None else f"{self.link.host}:{self.link.config.port}"
            flush_announced(self.publisher, broker, flush_timeout_s)
            self.publisher.stop()
            self.publisher.join(timeout_s=5.0)
            self._final_outbox = self.publisher.stats().to_dict()
            self.publisher.outbox.close()
        if self.commands is not None:
            self.commands.stop()
            self.commands.join(timeout_s=5.0)
        if self.link is not None:
            self.link.stop(timeout_s=flush_timeout_s, publish_stopped=True)

    def stop_broker(self) -> None:
        """Stop the embedded broker (last: nothing publishes after this)."""
        if self.broker is not None:
            self.broker.stop()

    def outbox_stats(self) -> dict[str, Any] | None:
        """Publisher and outbox counters (the final ones once the outbox is closed)."""
        if self._final_outbox is not None:
            return self._final_outbox
        return None if self.publisher is None else self.publisher.stats().to_dict()
