"""The governor thread's step on a simulated board tree: real sysfs files, caps read back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent.governor_worker import GovernorInputs, GovernorWorker
from edge_agent.agent.result_stats import ResultStats
from edge_agent.clock import FakeClock
from edge_agent.errors import ProfileError
from edge_agent.governor.discovery import board_points, read_tables
from edge_agent.governor.policy import GovernorParams
from edge_agent.hardware import clocks
from edge_agent.hardware.root import Root
from edge_agent.sim.dvfs_model import batch_latency_s
from edge_agent.sim.perf_model import gpu_activity
from edge_agent.sim.power_model import rail_powers_mw, read_state
from edge_agent.sim.tree import SimBoard, create_board


@pytest.fixture
def orin(tmp_path: Path) -> SimBoard:
    return create_board("jetson-orin-nano", tmp_path / "orin")


@pytest.fixture
def tx2(tmp_path: Path) -> SimBoard:
    return create_board("jetson-tx2", tmp_path / "tx2")


class Load:
    """A camera at ``fps`` and an engine that takes the simulated ResNet-50 time at the caps
    the tree holds: what the pipeline would report each second."""

    def __init__(self, board: SimBoard, clock: FakeClock, stats: ResultStats) -> None:
        self.board, self.root, self.clock, self.stats = board, Root(board.root), clock, stats
        self.captured = self.drops = self.batches = 0
        self.engine_ms = 0.0
        self.watts = 0.0

    def board_w(self, _t0: float, _t1: float) -> float:
        return self.watts

    def pipeline_stats(self) -> dict[str, Any]:
        return {
            "cameras": {"cam0": {"captured": self.captured, "dropped": self.drops}},
            "drops": 0,
            "batches": self.batches,
            "mean_batch_size": 1.0,
            "service_ms_by_batch": {1: self.engine_ms},
            "queue_depth": 0,
        }

    def second(self, fps: int) -> None:
        dev = clocks.find_gpu_devfreq(self.root)
        assert dev is not None
        gpu_hz = clocks.read_gpu(self.root, dev).max_hz
        emc_hz = clocks.read_emc_cap_hz(self.root) or self.board.spec.emc.max_hz
        engine_s = batch_latency_s("resnet50", 1, gpu_hz, emc_hz, self.board.spec)
        served = min(fps, int(1.0 / engine_s))
        util = served * engine_s
        latency_ms = engine_s * 1000 * (1 + util / (2 * max(0.05, 1 - util)))
        self.engine_ms = engine_s * 1000
        for i in range(served):
            self.clock.now += 1.0 / fps
            self.stats.record(latency_ms * (1.2 if i == 0 else 1.0), self.engine_ms)
        self.clock.now += (fps - served) / fps
        state = read_state(self.board.root, self.board.spec)
        busy = util * gpu_activity("resnet50", 1, gpu_hz, self.board.spec)
        powers = rail_powers_mw(self.board.spec, state, busy)
        self.watts = powers["VDD_IN"] / 1000.0
        self.captured += fps
        self.drops += fps - served
        self.batches += served


def test_tables_come_from_the_tree(orin: SimBoard) -> None:
    root = Root(orin.root)
    tables = read_tables(root)
    assert tables is not None
    mode_cap = clocks.read_gpu(root, tables.gpu).max_hz  # the nvpmodel mode's GPU cap
    assert mode_cap < max(orin.spec.gpu.freqs_hz)
    assert tables.tables.gpu_hz == tuple(f for f in orin.spec.gpu.freqs_hz if f <= mode_cap)
    # The super conf boots in 25W, whose EMC cap (-1) reads back as the board maximum, 3199 MHz;
    # below it, the rates the BPMP lists (debugfs possible_rates).
    listed = (orin.root / clocks.EMC_CLK_DIR / "possible_rates").read_text(encoding="utf-8")
    assert listed == "204000000 665600000 2133000000 3199000000\n"
    assert tables.tables.emc_hz == (204000000, 665600000, 2133000000, 3199000000)
    cpu_table = {f for c in orin.spec.clusters for f in c.freqs_khz}
    assert set(tables.tables.cpu_khz) <= cpu_table


class Driven:
    """A governor worker on the simulated TX2 whose windows the test drives: ``run(seconds,
    fps)`` feeds that load second by second and returns the GPU cap after each window."""

    def __init__(
        self,
        tx2: SimBoard,
        params: GovernorParams,
        presets: dict[str, tuple[int, int, int]] | None = None,
        apply_preset: Callable[[str], None] | None = None,
    ) -> None:
        self.clock = FakeClock()
        stats = ResultStats(self.clock)
        self.load = Load(tx2, self.clock, stats)
        self.root = Root(tx2.root)
        tables = read_tables(self.root)
        assert tables is not None
        self.tables = tables
        inputs = GovernorInputs(
            stats,
            self.load.board_w,
            self.load.pipeline_stats,
            lambda: "resnet50",
            self.root,
            apply_preset=apply_preset,
        )
        points = board_points(tables, presets or {})
        self.worker = GovernorWorker(params, points, tables, inputs, self.clock)
        self.worker.start()  # the thread only waits on its interval; the test drives step()
        self.worker.stop()

    def run(self, seconds: int, fps: int) -> list[int]:
        caps = []
        for _ in range(seconds):
            self.load.second(fps)
            self.worker.step(self.clock.monotonic())
            caps.append(clocks.read_gpu(self.root, self.tables.gpu).max_hz)
        return caps


def test_slo_worker_speeds_up_on_a_load_step_and_back_down(tx2: SimBoard) -> None:
    # The simulated TX2 at 10 fps is idle-dominated: points differ by a few percent only.
    driven = Driven(tx2, GovernorParams(policy="slo", slo_latency_s=0.020, hysteresis=0.02))
    worker, tables, run = driven.worker, driven.tables, driven.run
    quiet = run(30, 10)
    slow_cap = quiet[-1]
    assert slow_cap < max(tables.tables.gpu_hz)  # the governor left the top clocks
    busy = run(10, 150)
    assert max(busy[:3]) > slow_cap  # a faster point within a few seconds of the step
    assert busy[-1] > slow_cap
    calm = run(15, 10)
    assert calm[-1] < busy[-1]  # and back down when the load falls
    events = worker.drain_events()
    step_up = [e for e in events if "fps 150" in e]
    assert step_up
    assert "p99_ms" in step_up[0]
    assert "-> gpu 1122/" in step_up[0]
    assert all(e.startswith("governor: ") and "applied in" in e for e in events)
    assert worker.drain_events() == []


def test_new_params_take_effect_at_the_next_window_and_keep_the_model(tx2: SimBoard) -> None:
    driven = Driven(tx2, GovernorParams(policy="slo", slo_latency_s=0.020, hysteresis=0.02))
    worker, tables, run = driven.worker, driven.tables, driven.run
    quiet = run(30, 10)
    assert quiet[-1] < max(tables.tables.gpu_hz)  # settled below the top clock for 20 ms
    learned = dict(worker.state.models)
    assert learned
    # A tighter SLO (a runtime policy change): the very next window moves to a faster point.
    worker.set_params(GovernorParams(policy="slo", slo_latency_s=0.012, hysteresis=0.02), 2.0)
    assert worker.window_s == 2.0
    (tight,) = run(1, 10)
    assert tight == max(tables.tables.gpu_hz)
    assert worker.decisions[-1].numbers["slo_ms"] == 12.0
    assert dict(worker.state.models).keys() >= learned.keys()  # what it learned is kept


def test_a_point_the_board_refuses_is_not_tried_again(tx2: SimBoard) -> None:
    """A preset whose switch fails (here: verification) is reported once and then left alone,
    rather than retried, and failed, every window."""
    tried: list[str] = []

    def refuse(name: str) -> None:
        tried.append(name)
        raise ProfileError(f"profile {name}: verification failed: gpu max_freq reads 0")

    driven = Driven(
        tx2,
        GovernorParams(policy="slo", slo_latency_s=0.060),
        presets={"maxq": (854250000, 1331200000, 1113600)},
        apply_preset=refuse,
    )
    driven.run(20, 10)
    assert tried == ["maxq"]  # the presets are measured first: it was asked for once
    events = driven.worker.drain_events()
    failed = [e for e in events if "failed" in e]
    assert failed == [
        "governor: apply maxq failed: profile maxq: verification failed: gpu max_freq reads 0; "
        "not tried again"
    ]
    assert any("-> gpu" in e for e in events)  # it went on with the grid
    assert driven.worker.state.point.preset is None
