"""The daemon with ``profile.policy: slo`` on a simulated Orin Nano: real ORT, real mosquitto.

The simulated board stretches the real engine's time by the GPU cap (as ``run --sim`` does) and
its power model writes the rails the sampler reads. A load step (the camera's rate raised by a
config reload) must move the governor to a faster point within a few seconds, the fall must bring
it back down, and each change must reach the telemetry topic as an event.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.agent.daemon import Agent
from edge_agent.governor.points import OperatingPoint
from tests.daemon.sim_agent import gpu_cap, simulated_agent, wait_for
from tests.fakes.broker import MosquittoBroker
from tests.integration.agent_helpers import Recorder

pytestmark = pytest.mark.slow


@pytest.fixture
def sim_agent(tmp_path: Path, mosquitto: MosquittoBroker) -> Iterator[tuple[Agent, Path]]:
    # The simulated board at 60 fps is idle-dominated: points differ by a few percent.
    profile = {
        "policy": "slo",
        "governor": {"slo_latency_ms": 50, "dwell_s": 1, "hysteresis": 0.01},
    }
    with simulated_agent(tmp_path, mosquitto, "gov", profile) as pair:
        yield pair


def _caps(point: OperatingPoint) -> tuple[int, int]:
    """The caps the engine's time depends on (GPU and EMC); the CPU cap does not change it."""
    return (point.gpu_hz, point.emc_hz)


def _faster(a: OperatingPoint, b: OperatingPoint) -> bool:
    """``a`` has the GPU and EMC caps at least ``b``'s and one higher: a faster engine."""
    return _caps(a) != _caps(b) and all(x >= y for x, y in zip(_caps(a), _caps(b), strict=True))


def test_slo_daemon_speeds_up_on_a_load_step_and_settles_back(
    sim_agent: tuple[Agent, Path], mosquitto: MosquittoBroker
) -> None:
    agent, root = sim_agent
    top_gpu = gpu_cap(root)
    with Recorder(mosquitto, f"edge/{agent.config.device_id}/telemetry") as rec:
        agent.start()
        gov = agent.parts.governor
        assert gov is not None
        # Under a light load the governor leaves the mode's top GPU clock (the board file).
        assert wait_for(lambda: gpu_cap(root) < top_gpu, 30.0)
        wait_for(lambda: gov.state.converged, 30)
        quiet = gov.state.point
        top = (max(p.gpu_hz for p in gov.points), max(p.emc_hz for p in gov.points))
        # At 200 fps the cheapest point is below the top GPU/EMC caps, so a load step has
        # somewhere faster to go.
        assert _caps(quiet) != top, [(d.point.label(), d.reason) for d in gov.decisions[-8:]]
        # Telemetry names the policy, who set it and the point the governor holds.
        reporter = agent.parts.reporter
        assert reporter is not None
        for _ in range(20):  # the point read before and after the report must agree
            before = gov.state.point
            payload = reporter.step(agent.clock.monotonic())
            if gov.state.point == before:
                break
        assert gov.state.point == before
        assert payload["governor"] == {
            "policy": "slo",
            "set_by": "config",
            "point": {
                "label": before.label(),
                "gpu_hz": before.gpu_hz,
                "emc_hz": before.emc_hz,
                "cpu_khz": before.cpu_khz,
            },
        }
        cameras = [agent.config.cameras[0].model_copy(update={"fps": 1000})]
        assert agent.apply_config(agent.config.model_copy(update={"cameras": cameras})).status == (
            "applied"
        )
        stepped = wait_for(lambda: _faster(gov.state.point, quiet), 10.0)
        assert stepped, [(d.point.label(), d.reason) for d in gov.decisions[-8:]]
        loaded = [gov.state.point]
        cameras = [agent.config.cameras[0].model_copy(update={"fps": 200})]
        agent.apply_config(agent.config.model_copy(update={"cameras": cameras}))

        # The governor may still step up once more while the reload lands; "back down" means
        # a point slower than the fastest one it used for the load.
        def came_down() -> bool:
            loaded.append(gov.state.point)
            fastest_used = max(loaded, key=_caps)
            return any(
                x < y for x, y in zip(_caps(gov.state.point), _caps(fastest_used), strict=True)
            )

        assert wait_for(came_down, 30.0), [(d.point.label(), d.reason) for d in gov.decisions[-8:]]
        # The board's files follow the governor's point (applied through sysfs, read back).
        assert wait_for(lambda: gpu_cap(root) == gov.state.point.gpu_hz, 5.0)
        events = [
            e
            for m in rec.snapshot()
            for e in m.json().get("events", [])
            if e.startswith("governor: ")
        ]
    assert any("-> gpu" in e and "applied in" in e for e in events)
    governed = [m.json()["governor"] for m in rec.snapshot()]
    labels = {p.label() for p in gov.points}
    assert all((g["policy"], g["set_by"]) == ("slo", "config") for g in governed)
    assert {g["point"]["label"] for g in governed if "point" in g} <= labels
    assert any("point" in g for g in governed)
