"""Fixtures for the MQTT tests: a running link + outbox + publisher against a real broker."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.clock import SystemClock
from edge_agent.config import MqttConfig
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.outbox import Outbox
from edge_agent.telemetry.payloads import new_boot_id
from edge_agent.telemetry.publisher import Publisher


@dataclass
class Agent:
    """The telemetry half of an agent, wired as the daemon wires it."""

    link: MqttLink
    outbox: Outbox
    publisher: Publisher
    boot_id: str
    stopped: bool = False

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.publisher.stop()
        self.publisher.join()
        self.link.stop()
        self.outbox.close()


AgentFactory = Callable[..., Agent]


@pytest.fixture
def unique_prefix() -> str:
    """A topic prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_agent(tmp_path: Path, unique_prefix: str) -> Iterator[AgentFactory]:
    """Build and start agents; every one still running is stopped at teardown."""
    agents: list[Agent] = []

    def build(
        port: int,
        window: int = 20,
        max_mb: float = 16.0,
        device: str = "dev1",
        outbox_name: str = "outbox.sqlite",
        **mqtt: object,
    ) -> Agent:
        config = MqttConfig.model_validate(
            {
                "host": "127.0.0.1",
                "port": port,
                "topic_prefix": unique_prefix,
                "inflight_window": window,
                **mqtt,
            }
        )
        clock = SystemClock()
        boot_id = new_boot_id()
        link = MqttLink(
            config, device, boot_id, "9.9.9", clock, reconnect_min_s=1, reconnect_max_s=1
        )
        outbox = Outbox(tmp_path / outbox_name, max_mb=max_mb)
        publisher = Publisher(link, outbox, link.topics, clock, window, boot_id)
        agent = Agent(link, outbox, publisher, boot_id)
        agents.append(agent)
        link.start()
        publisher.start()
        return agent

    yield build
    for agent in agents:
        agent.stop()
