"""SIGHUP to a real ``edge-agent run`` process: the fatal edits no longer stop it.

The three edits that used to kill a running agent (not UTF-8, nested 3,000 deep, ``fps:
1e-300``) and one that validates but whose engine thread dies at once are sent one after the
other to one process. After each, results keep arriving from the same boot, and a SIGTERM at
the end exits 0 with the original camera still named in the summary.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes.broker import MosquittoBroker
from tests.fakes.models import write_identity
from tests.integration.agent_helpers import (
    AgentProcess,
    Received,
    Recorder,
    agent_config,
    count_results,
    new_device_id,
    write_config,
)

pytestmark = pytest.mark.slow


def _more_results(sub: Recorder, device: str, than: int) -> int:
    counter = count_results(device)
    assert sub.wait_for(lambda history: counter(history) > than + 5, 20), "results stopped"
    return counter(sub.snapshot())


def _logged(agent: AgentProcess, text: str) -> Callable[[list[Received]], bool]:
    """A Recorder predicate: the agent has logged ``text`` (checked as each message arrives)."""
    return lambda _history: text in agent.stderr()


def test_sighup_with_fatal_edits_keeps_the_agent_running(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    device = new_device_id()
    camera = {"name": "front", "uri": "synthetic://digits", "fps": 30}
    config = agent_config(tmp_path, mosquitto.port, device, cameras=[camera])
    path = write_config(tmp_path / "agent.yaml", config)
    model = write_identity(tmp_path / "identity.onnx")
    dying = {
        **config,
        "model": {"path": str(model), "decoder": "classification", "warmup_runs": 0},
    }
    edits: list[tuple[str, bytes | None]] = [
        ("not valid UTF-8", b"device_id: caf\xe9\n"),
        ("nested deeper than 32 levels", ("x: " + "[" * 3000 + "]" * 3000).encode()),
        (
            "cameras[0].fps",
            b"cameras: [{name: front, uri: 'synthetic://digits', fps: 1e-300}]\n",
        ),
        ("rolling back", None),  # the dying engine: written below
    ]
    with (
        Recorder(mosquitto, f"edge/{device}/#") as sub,
        AgentProcess(path, name="hup") as agent,
    ):
        seen = _more_results(sub, device, 0)
        for expected, content in edits:
            if content is None:
                write_config(path, dying)
            else:
                path.write_bytes(content)
            agent.proc.send_signal(signal.SIGHUP)
            logged = _logged(agent, expected)
            assert sub.wait_for(logged, 20), f"no {expected!r} in:\n{agent.stderr()[-3000:]}"
            assert agent.running(), agent.stderr()[-3000:]
            seen = _more_results(sub, device, seen)
        summary = agent.terminate()
    assert summary["results"] > 0
    assert "CRITICAL" not in agent.stderr()
    cameras = {topic.rsplit("/", 1)[-1] for topic, _ in sub.results(device)}
    assert cameras == {"front"}
