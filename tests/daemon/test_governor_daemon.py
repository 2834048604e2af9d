"""The daemon with ``profile.policy: slo`` on a simulated Orin Nano: real ORT, real mosquitto.

The simulated board stretches the real engine's time by the GPU cap (as ``run --sim`` does) and
its power model writes the rails the sampler reads. A load step (the camera's rate raised by a
config reload) must move the governor to a faster point within a few seconds, the fall must bring
it back down, and each change must reach the telemetry topic as an event.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent.daemon import Agent
from edge_agent.agent.hooks import PipelineHooks
from edge_agent.clock import SystemClock
from edge_agent.config import validate_config
from edge_agent.errors import SysfsError
from edge_agent.governor.points import OperatingPoint
from edge_agent.hardware import clocks
from edge_agent.hardware.root import Root
from edge_agent.sim import create_board
from edge_agent.sim.perf_model import time_scale
from edge_agent.sim.power_model import PowerModel
from tests.fakes.broker import MosquittoBroker
from tests.integration.agent_helpers import Recorder

pytestmark = pytest.mark.slow


@pytest.fixture
def sim_agent(tmp_path: Path, mosquitto: MosquittoBroker) -> Iterator[tuple[Agent, Path]]:
    root = tmp_path / "board"
    create_board("jetson-orin-nano", root)
    clock = SystemClock()
    hooks = PipelineHooks(latency_scale=lambda: time_scale(root), clock=clock)
    power = PowerModel(root, clock, busy=hooks.busy_fraction)
    config = validate_config(
        {
            "device_id": f"gov-{tmp_path.name[-10:]}".replace("_", "-"),
            "root": str(root),
            "state_dir": str(tmp_path / "state"),
            "power": {"monitor": "sim"},
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
            "telemetry": {"interval_s": 0.5},
            "cameras": [{"name": "demo", "uri": "synthetic://digits", "fps": 200}],
            # The simulated board at 60 fps is idle-dominated: points differ by a few percent.
            "profile": {
                "policy": "slo",
                "governor": {"slo_latency_ms": 50, "dwell_s": 1, "hysteresis": 0.01},
            },
        },
        env={},
    )
    power.start()
    agent = Agent(config, clock=clock, hooks=hooks)
    yield agent, root
    agent.shutdown()
    power.stop()
    power.join()


def _gpu_cap(root: Path) -> int:
    r = Root(root)
    dev = clocks.find_gpu_devfreq(r)
    assert dev is not None
    pause = threading.Event()
    for _ in range(50):
        try:
            return r.read_int(f"{dev.path}/max_freq")
        except SysfsError:
            # The simulated tree's files are rewritten in place (truncate, write): a read can
            # land in between and see an empty file, which a kernel sysfs file never shows.
            # On a loaded machine the writer can be descheduled in between for a while, so
            # the retries are spread over a second rather than spun.
            pause.wait(0.02)
    return r.read_int(f"{dev.path}/max_freq")


def _wait(predicate: Any, timeout_s: float) -> bool:
    tick = threading.Event()
    for _ in range(int(timeout_s / 0.1)):
        if predicate():
            return True
        tick.wait(0.1)
    return bool(predicate())


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
    top_gpu = _gpu_cap(root)
    with Recorder(mosquitto, f"edge/{agent.config.device_id}/telemetry") as rec:
        agent.start()
        gov = agent.parts.governor
        assert gov is not None
        # Under a light load the governor leaves the mode's top GPU clock (the board file).
        assert _wait(lambda: _gpu_cap(root) < top_gpu, 30.0)
        _wait(lambda: gov.state.converged, 30)
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
        stepped = _wait(lambda: _faster(gov.state.point, quiet), 10.0)
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

        assert _wait(came_down, 30.0), [(d.point.label(), d.reason) for d in gov.decisions[-8:]]
        # The board's files follow the governor's point (applied through sysfs, read back).
        assert _wait(lambda: _gpu_cap(root) == gov.state.point.gpu_hz, 5.0)
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
