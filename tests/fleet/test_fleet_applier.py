"""The device-side applier: one apply at a time, newer documents supersede waiting ones, and
SIGHUP through the same health gate."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent.daemon import ReloadOutcome
from edge_agent.agent.fleet_apply import FleetApplier
from edge_agent.clock import SystemClock
from edge_agent.config import AgentConfig, validate_config
from edge_agent.fleet.health import HealthSample
from edge_agent.fleet.store import FleetStore
from tests.fakes.broker import MosquittoBroker
from tests.fleet.conftest import AgentFactory
from tests.fleet.fleet_helpers import StateWatcher, agent_config, encode, unique


def _doc(version: int, max_batch: int) -> bytes:
    sections = {"batching": {"max_batch": max_batch}}
    return encode({"version": version, "target": "device:box1", "sections": sections})


def test_a_newer_document_supersedes_one_still_waiting(tmp_path: Path) -> None:
    base = validate_config(
        {"device_id": "box1", "state_dir": str(tmp_path), "fleet": {"enabled": True}},
        env={},
    )
    started, release = threading.Event(), threading.Event()
    applied: list[int] = []

    def apply(config: AgentConfig, source: str) -> ReloadOutcome:
        assert source == "fleet"
        applied.append(config.batching.max_batch)
        started.set()
        release.wait(10)  # the first apply is slow: the others arrive meanwhile
        return ReloadOutcome("applied")

    applier = FleetApplier(
        base,
        clock=SystemClock(),
        apply=apply,
        probe=lambda _since: HealthSample(results=100),
        store=FleetStore(tmp_path),
    )
    applier.startup_config()
    applier.start()
    try:
        applier.on_message("t", _doc(1, 2))
        assert started.wait(10)
        applier.on_message("t", _doc(2, 3))
        applier.on_message("t", _doc(3, 4))
        applier.on_message("t", _doc(2, 3))  # an older one after a newer: still superseded
        release.set()
        done = threading.Event()
        for _ in range(200):
            if applier.state.ledger.committed.get("device:box1") == 3:
                break
            done.wait(0.05)
    finally:
        applier.stop()
        applier.join(10)
    assert applied == [2, 4], "version 2 was superseded before it started"
    assert applier.state.ledger.committed == {"device:box1": 3}
    assert applier.state.report is not None
    assert applier.state.report["status"] == "applied"
    saved = json.loads((tmp_path / "fleet-state.json").read_text())
    assert saved["last_good"]["device:box1"]["sections"] == {"batching": {"max_batch": 4}}


@pytest.mark.slow
def test_sighup_keeps_pushed_sections_and_passes_the_health_gate(
    tmp_path: Path, mosquitto: MosquittoBroker, make_agent: AgentFactory
) -> None:
    prefix, device = unique("fl"), unique("box")
    agent = make_agent(device, prefix)
    local = agent_config(tmp_path, mosquitto, device, prefix)
    sources: list[AgentConfig] = []
    agent.reload_source = lambda: sources[-1]
    doc = {"version": 1, "target": f"device:{device}", "sections": {"batching": {"max_batch": 3}}}
    with StateWatcher(mosquitto, prefix, device) as states:
        agent.start()
        states.wait_for(0, ["applied"])
        states.publish(f"{prefix}/{device}/config/set", encode(doc))
        states.wait_for(1, ["applied"])

        def with_section(**update: Any) -> AgentConfig:
            return local.model_copy(update=update)

        # A new local file: telemetry changes, the pushed batching stays on top.
        sources.append(with_section(telemetry=local.telemetry.model_copy(update={"interval_s": 1})))
        assert agent.reload_from_file().status == "applied"
        assert agent.config.telemetry.interval_s == 1
        assert agent.config.batching.max_batch == 3
        # A local file whose camera never delivers fails the gate and is rolled back.
        dead = local.cameras[0].model_copy(update={"uri": f"file://{tmp_path}/never.mp4"})
        sources.append(with_section(cameras=[dead]))
        outcome = agent.reload_from_file()
        assert outcome.status == "rolled_back"
        assert "demo" in outcome.errors[0]
        assert agent.config.cameras[0].uri == "synthetic://digits"
        assert agent.config.telemetry.interval_s == 1
