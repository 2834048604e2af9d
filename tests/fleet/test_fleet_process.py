"""``kill -9`` of a real agent process in the middle of an apply, then a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes.broker import MosquittoBroker
from tests.fleet.fleet_helpers import StateWatcher, encode
from tests.integration.agent_helpers import (
    AgentProcess,
    Recorder,
    agent_config,
    new_device_id,
    write_config,
)

pytestmark = pytest.mark.slow


def test_kill_9_mid_apply_leaves_last_good_running(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    device = new_device_id()
    fleet = {"enabled": True, "health_window_s": 60, "health_min_results": 5}
    cameras = [{"name": "demo", "uri": "synthetic://digits", "fps": 30}]
    config = write_config(
        tmp_path / "agent.yaml",
        agent_config(tmp_path, mosquitto.port, device, fleet=fleet, cameras=cameras),
    )
    topic = f"edge/{device}/config/set"
    good = {"version": 1, "target": f"device:{device}", "sections": {"batching": {"max_batch": 2}}}
    # A camera that never delivers keeps version 2 in its health window for 60 s.
    dead = [{"name": "demo", "uri": f"file://{tmp_path}/never.mp4"}]
    bad = {"version": 2, "target": f"device:{device}", "sections": {"cameras": dead}}
    with StateWatcher(mosquitto, "edge", device) as states:
        with AgentProcess(config, tmpdir=tmp_path, name="first") as first:
            states.publish(topic, encode(good), retain=True)
            states.wait_for(1, ["applied"])
            states.publish(topic, encode(bad), retain=True)
            states.wait_for(2, ["applying"])
            first.kill()
        with (
            Recorder(mosquitto, f"edge/{device}/results/+") as results,
            AgentProcess(config, tmpdir=tmp_path, name="second") as second,
        ):
            report = states.wait_for(2, ["rolled_back"])
            assert "restarted during the apply" in report["reason"]
            assert report["running"] == {f"device:{device}": 1}
            assert results.wait_for(lambda h: len(h) >= 10, 30), "last-good runs again"
            second.terminate()
        saved = json.loads((tmp_path / "state" / "fleet-state.json").read_text())
        assert saved["failed"] == {f"device:{device}": 2}
        assert saved["committed"] == {f"device:{device}": 1}
        assert saved["attempt"] is None
        states.publish(topic, b"", retain=True)
