"""SIGHUP reload through the bounded reader: nothing in an edited file stops a running agent.

The three configs that used to kill a running agent (not UTF-8, nested 3,000 deep,
``fps: 1e-300``) are rejected; a config that validates but whose new component dies at start
(an engine thread that raises, a camera whose video cannot be read) is rolled back. In every
case the agent keeps producing results on its old config.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge_agent.agent.daemon import Agent
from edge_agent.agent.hooks import PipelineHooks
from edge_agent.config import AgentConfig, load_config
from edge_agent.power.profile_check import profile_checks
from edge_agent.sim import create_board
from tests.fakes.broker import MosquittoBroker
from tests.fakes.models import write_identity
from tests.integration.agent_helpers import Recorder, wait_results

pytestmark = pytest.mark.slow


def _base(tmp_path: Path, broker: MosquittoBroker) -> dict[str, Any]:
    root = tmp_path / "board"
    if not root.exists():
        create_board("jetson-orin-nano", root)
    return {
        "device_id": f"reload-{tmp_path.name[-12:]}".replace("_", "-"),
        "root": str(root),
        "state_dir": str(tmp_path / "state"),
        "power": {"monitor": "sim"},
        "mqtt": {"host": broker.host, "port": broker.port},
        "telemetry": {"interval_s": 0.5},
        "cameras": [{"name": "demo", "uri": "synthetic://digits", "fps": 50}],
    }


@pytest.fixture
def running(tmp_path: Path, mosquitto: MosquittoBroker) -> Iterator[tuple[Agent, Path]]:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(_base(tmp_path, mosquitto)), encoding="utf-8")

    def source() -> AgentConfig:
        return load_config(path, env={}, extra_checks=profile_checks())

    agent = Agent(source(), reload_source=source, hooks=PipelineHooks())
    agent.probation_s = 1.0
    agent.start()
    try:
        yield agent, path
    finally:
        agent.shutdown()


def _edit(path: Path, **changes: Any) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def _still_running_on_old_config(agent: Agent, before: AgentConfig) -> None:
    assert not agent.stop.is_set()
    assert agent.supervisor.failures == []
    assert agent.config == before
    wait_results(agent, agent.snapshot().results + 5)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"device_id: caf\xe9\n", "(file): not valid UTF-8: byte 0xe9 at byte offset 14"),
        (("x: " + "[" * 3000 + "]" * 3000 + "\n").encode(), "nested deeper than 32 levels"),
        (
            b"cameras:\n  - {name: demo, uri: 'synthetic://digits', fps: 1e-300}\n",
            "cameras[0].fps: Input should be greater than or equal to 0.01",
        ),
    ],
    ids=["not-utf8", "nested-3000", "fps-1e-300"],
)
def test_fatal_edits_are_rejected_and_the_agent_keeps_running(
    running: tuple[Agent, Path], content: bytes, expected: str
) -> None:
    agent, path = running
    wait_results(agent, 3)
    before = agent.config
    path.write_bytes(content)
    outcome = agent.reload_from_file()
    assert outcome.status == "rejected"
    assert any(expected in error for error in outcome.errors), outcome.errors
    _still_running_on_old_config(agent, before)


def test_sighup_runs_the_reload_in_the_agent_loop(running: tuple[Agent, Path]) -> None:
    agent, path = running
    wait_results(agent, 3)
    before = agent.config
    path.write_bytes(b"device_id: \xff\n")
    with agent.signal_handlers():
        os.kill(os.getpid(), signal.SIGHUP)
        assert agent.reload_requested.is_set()
        assert agent.run(duration_s=1.0) == 0
    assert not agent.reload_requested.is_set(), "the loop handled the reload"
    _still_running_on_old_config(agent, before)


def test_a_new_engine_thread_that_dies_is_rolled_back(
    running: tuple[Agent, Path], tmp_path: Path
) -> None:
    agent, path = running
    wait_results(agent, 3)
    before = agent.config
    # Loads fine, but its output does not fit the classification decoder: the engine thread
    # raises on the first batch (no warm-up runs to find it earlier).
    model = write_identity(tmp_path / "identity.onnx")
    _edit(path, model={"path": str(model), "decoder": "classification", "warmup_runs": 0})
    outcome = agent.reload_from_file()
    assert outcome.status == "rolled_back"
    assert outcome.changed == ("model",)
    assert "thread engine died: InferenceError" in outcome.errors[0]
    _still_running_on_old_config(agent, before)


def test_a_camera_that_cannot_start_is_rolled_back(
    running: tuple[Agent, Path], tmp_path: Path
) -> None:
    agent, path = running
    wait_results(agent, 3)
    before = agent.config
    video = tmp_path / "broken.avi"
    video.write_bytes(b"RIFF not really a video" * 100)
    _edit(path, cameras=[{"name": "door", "uri": f"file://{video}", "reconnect_max_s": 5}])
    outcome = agent.reload_from_file()
    assert outcome.status == "rolled_back"
    assert outcome.errors[0].startswith("camera door is down:"), outcome.errors
    assert "broken.avi" in outcome.errors[0]
    _still_running_on_old_config(agent, before)


def test_a_healthy_edit_applies_after_probation(running: tuple[Agent, Path]) -> None:
    agent, path = running
    first = wait_results(agent, 3)
    _edit(path, cameras=[{"name": "demo", "uri": "synthetic://digits", "fps": 40}])
    outcome = agent.reload_from_file()
    assert outcome.status == "applied", outcome.errors
    assert agent.config.cameras[0].fps == 40
    wait_results(agent, first + 5)
    assert not agent.stop.is_set()


def test_each_reload_outcome_reaches_telemetry_as_an_event(
    running: tuple[Agent, Path], mosquitto: MosquittoBroker
) -> None:
    """An operator who sent SIGHUP sees from the broker what it did, refusals included."""
    agent, path = running
    wait_results(agent, 3)
    topic = f"edge/{agent.config.device_id}/telemetry"
    with Recorder(mosquitto, topic) as rec:
        path.write_bytes(b"device_id: \xff\n")
        assert agent.reload_from_file().status == "rejected"
        valid = _base(path.parent, mosquitto)
        valid["telemetry"] = {"interval_s": 0.4}
        path.write_text(yaml.safe_dump(valid), encoding="utf-8")
        assert agent.reload_from_file().status == "applied"

        def reload_events() -> list[str]:
            return [
                e
                for m in rec.snapshot()
                for e in m.json().get("events", [])
                if e.startswith("config reload: ")
            ]

        tick = threading.Event()
        for _ in range(100):
            if len(reload_events()) >= 2:
                break
            tick.wait(0.1)
    events = reload_events()
    assert events[0].startswith("config reload: rejected: (file): not valid UTF-8"), events
    assert events[1] == "config reload: applied: telemetry", events
