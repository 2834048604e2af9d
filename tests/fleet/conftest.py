"""Fleet fixtures: in-process agents on simulated boards, each with its own state folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent.daemon import Agent
from edge_agent.agent.hooks import PipelineHooks
from edge_agent.clock import Clock
from tests.fakes.broker import MosquittoBroker
from tests.fleet.fleet_helpers import agent_config

AgentFactory = Callable[..., Agent]


@pytest.fixture
def make_agent(tmp_path: Path, mosquitto: MosquittoBroker) -> Iterator[AgentFactory]:
    """``make_agent(device, prefix, folder=None, clock=None, **fleet)``; shut down after the
    test."""
    agents: list[Agent] = []

    def make(
        device: str,
        prefix: str,
        folder: Path | None = None,
        clock: Clock | None = None,
        **fleet: Any,
    ) -> Agent:
        config = agent_config(folder or tmp_path, mosquitto, device, prefix, **fleet)
        agent = Agent(config, hooks=PipelineHooks(), clock=clock)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.shutdown()
