"""The energy ledger: known-integral signals through real files, window edges, MLPerf metrics."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge_agent.clock import FakeClock
from edge_agent.hardware.base import PowerReading, RailReading
from edge_agent.hardware.ina3221 import InaMonitor
from edge_agent.hardware.root import Root
from edge_agent.power.ledger import EnergyLedger, ListSource, integrate
from edge_agent.power.sampler import Sampler
from tests.fakes.ina import AGX_ORIN_RAILS, TX2_RAILS, make_ina3221

Signal = Callable[[float], float]
INTERVAL_S = 0.02  # the default sampling interval


def _exact(signal: Signal, t0: float, t1: float, points: int = 100_000) -> float:
    """The signal's integral by a fine midpoint sum (exact to ~1e-6 for these signals)."""
    step = (t1 - t0) / points
    return sum(signal(t0 + (i + 0.5) * step) for i in range(points)) * step


def _drive(
    tmp_path: Path, clock: FakeClock, signal: Signal, seconds: float, rail: str = "VDD_IN"
) -> tuple[EnergyLedger, float]:
    """Write ``signal(t)`` watts into a TX2 tree, sampling every 20 ms through the files."""
    tree = make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0)
    sampler = Sampler(InaMonitor(Root(tmp_path), clock), clock, interval_s=INTERVAL_S)
    start = clock.monotonic()
    steps = round(seconds / INTERVAL_S)
    for i in range(steps + 1):
        tree.set_power(rail, signal(i * INTERVAL_S) * 1000.0, voltage_mv=19000)
        sampler.step(clock.monotonic())
        if i < steps:
            clock.advance(INTERVAL_S)
    return EnergyLedger(sampler), start


def _step(t: float) -> float:
    return 2.0 if t < 2.505 else 7.0


def _square(t: float) -> float:
    return 9.0 if (t % 0.37) < 0.37 * 0.4 else 3.0


def _ramp(t: float) -> float:
    return 1.0 + t


@pytest.mark.parametrize(
    ("name", "signal"), [("step", _step), ("square", _square), ("ramp", _ramp)]
)
def test_energy_error_below_one_percent(
    tmp_path: Path, fake_clock: FakeClock, name: str, signal: Signal
) -> None:
    ledger, start = _drive(tmp_path, fake_clock, signal, 10.0)
    stats = ledger.window(start, start + 10.0)
    exact = _exact(signal, 0.0, 10.0)
    assert not stats.no_data
    assert stats.energy_j is not None
    assert abs(stats.energy_j - exact) / exact < 0.01, name
    assert stats.avg_w == pytest.approx(exact / 10.0, rel=0.01)
    assert stats.samples == 501
    assert stats.source == "trapezoid"
    assert stats.total_name == "VDD_IN"


def _burst_ramp(t: float) -> float:
    return 200.0 * t  # 0 -> 100 W in 0.5 s: a load coming up, 25 J exactly


def _charge(t: float) -> float:
    return 40.0 * (1.0 - math.exp(-t / 0.1))  # a fast exponential rise, tau = 100 ms


@pytest.mark.parametrize(
    ("name", "signal", "exact"),
    [
        ("burst ramp", _burst_ramp, 25.0),
        ("charge", _charge, 40.0 * (0.5 - 0.1 * (1.0 - math.exp(-5.0)))),
    ],
)
def test_energy_error_below_one_percent_where_rectangles_are_far_off(
    tmp_path: Path, fake_clock: FakeClock, name: str, signal: Signal, exact: float
) -> None:
    """A short window over a fast rise: 26 samples, 20 ms apart, with an analytic integral.

    Any rectangle rule misses half a step of the rise per sample, (w_end - w_start) x dt / 2
    in all: 4% of the ramp and 2.5% of the charge. The trapezoid must stay within 1%.
    """
    ledger, start = _drive(tmp_path, fake_clock, signal, 0.5)
    stats = ledger.window(start, start + 0.5)
    assert stats.energy_j is not None
    assert stats.samples == 26
    samples = [signal(i * INTERVAL_S) for i in range(26)]
    left = sum(samples[:-1]) * INTERVAL_S
    right = sum(samples[1:]) * INTERVAL_S
    assert abs(left - exact) / exact > 0.02  # the signal is hard enough to tell the rules apart
    assert abs(right - exact) / exact > 0.02
    assert abs(stats.energy_j - exact) / exact < 0.01, name
    assert stats.avg_w == pytest.approx(exact / 0.5, rel=0.01)


def test_sub_windows_of_a_step_use_only_their_own_samples(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    ledger, start = _drive(tmp_path, fake_clock, _step, 5.0)
    before = ledger.window(start + 0.5, start + 2.0)
    after = ledger.window(start + 3.0, start + 4.5)
    assert before.avg_w == pytest.approx(2.0, rel=0.005)
    assert after.avg_w == pytest.approx(7.0, rel=0.005)
    assert before.energy_j == pytest.approx(3.0, rel=0.005)
    # Idle 2 W measured before the step; dynamic power after it is 5 W.
    baseline = ledger.measure_idle(start + 0.5, start + 2.0)
    assert baseline is not None
    assert baseline.total_w == pytest.approx(2.0, rel=0.005)
    after = ledger.window(start + 3.0, start + 4.5)
    assert after.dynamic_avg_w == pytest.approx(5.0, rel=0.005)
    assert after.dynamic_energy_j == pytest.approx(7.5, rel=0.005)


def _reading(t: float, total_mw: float | None, **rails_mw: float) -> PowerReading:
    rails = tuple(RailReading(name, mw) for name, mw in rails_mw.items())
    return PowerReading(t, rails, "VDD_IN", total_mw, gpu_rail="GPU" if "GPU" in rails_mw else None)


def _ledger(*readings: PowerReading, **kwargs: float) -> EnergyLedger:
    return EnergyLedger(ListSource(readings, interval_s=1.0), **kwargs)


def test_window_inside_one_sample_interval_interpolates() -> None:
    ledger = _ledger(_reading(0.0, 1000.0), _reading(1.0, 3000.0), _reading(2.0, 3000.0))
    stats = ledger.window(0.25, 0.75)
    assert stats.samples == 0
    assert not stats.no_data
    assert stats.avg_w == pytest.approx(2.0)  # 1.5 W at 0.25 s to 2.5 W at 0.75 s
    assert stats.energy_j == pytest.approx(1.0)
    assert stats.covered_s == pytest.approx(0.5)


def test_window_edges_are_interpolated_between_neighbours() -> None:
    ledger = _ledger(_reading(0.0, 1000.0), _reading(1.0, 3000.0), _reading(2.0, 3000.0))
    stats = ledger.window(0.5, 2.0)
    # 0.5..1.0: 2 W -> 3 W (1.25 J); 1.0..2.0: 3 W (3 J)
    assert stats.energy_j == pytest.approx(4.25)
    assert stats.samples == 2
    assert ledger.window(0.0, 2.0).energy_j == pytest.approx(5.0)


def test_windows_without_data_report_no_data_never_zero_watts() -> None:
    ledger = _ledger(
        _reading(10.0, 1000.0), _reading(11.0, 1000.0), _reading(30.0, 1000.0), max_gap_s=2.0
    )
    for t0, t1 in ((0.0, 5.0), (40.0, 50.0), (15.0, 20.0)):  # before, after, inside a gap
        stats = ledger.window(t0, t1)
        assert stats.no_data, (t0, t1)
        assert stats.avg_w is None
        assert stats.energy_j is None
        assert stats.source == "none"
        assert ledger.energy_for(t0, t1) is None
    empty = EnergyLedger(ListSource([])).window(0.0, 1.0)
    assert empty.no_data
    assert empty.total_name == ""
    with pytest.raises(ValueError, match="ends before"):
        ledger.window(2.0, 1.0)


def test_window_partly_outside_the_data_averages_what_is_covered() -> None:
    ledger = _ledger(_reading(10.0, 2000.0), _reading(11.0, 4000.0), hold_s=0.0)
    stats = ledger.window(9.0, 13.0)
    assert stats.covered_s == pytest.approx(1.0)
    assert stats.energy_j == pytest.approx(3.0)
    assert stats.avg_w == pytest.approx(3.0)
    assert stats.duration_s == pytest.approx(4.0)


def test_newest_value_is_held_briefly_for_a_window_ending_now() -> None:
    ledger = _ledger(_reading(0.0, 2000.0), _reading(1.0, 2000.0), hold_s=0.5)
    stats = ledger.window(0.5, 1.25)
    assert stats.covered_s == pytest.approx(0.75)
    assert stats.avg_w == pytest.approx(2.0)


def test_skipped_total_is_bridged_not_a_dip() -> None:
    ledger = _ledger(_reading(0.0, 2000.0), _reading(1.0, None), _reading(2.0, 2000.0))
    assert ledger.window(0.0, 2.0).avg_w == pytest.approx(2.0)


def test_hardware_energy_counter_is_preferred() -> None:
    readings = [
        PowerReading(t, (RailReading("GPU0", 100_000.0),), "GPU0", 100_000.0, energy_mj=mj)
        for t, mj in ((0.0, 0.0), (1.0, 150_000.0), (2.0, 250_000.0))
    ]
    stats = EnergyLedger(ListSource(readings)).window(0.5, 2.0)
    assert stats.source == "counter"
    assert stats.energy_j == pytest.approx(250.0 - 75.0)  # counter interpolated at 0.5 s
    assert stats.avg_w == pytest.approx(175.0 / 1.5)
    assert stats.rails["GPU0"].energy_j == pytest.approx(150.0)  # rails still integrate


def test_per_rail_and_gpu_figures_on_a_sum_board(tmp_path: Path, fake_clock: FakeClock) -> None:
    make_ina3221(tmp_path, "hwmon", AGX_ORIN_RAILS)
    sampler = Sampler(InaMonitor(Root(tmp_path), fake_clock), fake_clock)
    start = fake_clock.monotonic()
    for _ in range(51):
        sampler.step(fake_clock.monotonic())
        fake_clock.advance(0.02)
    stats = EnergyLedger(sampler).window(start, start + 1.0)
    assert stats.total_is_sum
    assert set(stats.rails) == {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"}
    rail_sum = sum(r.energy_j or 0.0 for r in stats.rails.values())
    assert stats.energy_j == pytest.approx(rail_sum)
    assert stats.gpu_rail == "VDD_GPU_SOC"
    assert stats.gpu is not None
    assert stats.gpu.avg_w == pytest.approx(5.7)
    assert stats.gpu.samples == 51


def test_mlperf_metrics() -> None:
    ledger = _ledger(
        *(_reading(float(t), 10_000.0, GPU=4000.0) for t in range(11)),
    )
    stats = ledger.window(0.0, 10.0)
    metrics = ledger.metrics(stats, inferences=500)
    assert metrics.throughput_ips == pytest.approx(50.0)
    assert metrics.avg_w == pytest.approx(10.0)
    assert metrics.inferences_per_j == pytest.approx(5.0)  # = 50 images/s / 10 W
    assert metrics.mj_per_inference == pytest.approx(10.0 * 10.0 * 1000.0 / 500)
    assert metrics.gpu_avg_w == pytest.approx(4.0)
    assert metrics.gpu_inferences_per_j == pytest.approx(12.5)
    none = ledger.metrics(ledger.window(50.0, 60.0), inferences=10)
    assert none.avg_w is None
    assert none.inferences_per_j is None
    assert none.mj_per_inference is None
    assert ledger.metrics(stats, inferences=0).mj_per_inference is None


def test_batch_attribution_is_an_estimated_share() -> None:
    ledger = _ledger(_reading(0.0, 5000.0), _reading(1.0, 5000.0), _reading(2.0, 5000.0))
    batch = ledger.batch_energy(0.25, 0.35, results=4)  # 100 ms inside one interval
    assert batch.estimate
    assert batch.energy_mj == pytest.approx(500.0)
    assert batch.per_result_mj == pytest.approx(125.0)
    assert batch.dynamic_per_result_mj is None
    ledger.measure_idle(1.0, 2.0)
    assert ledger.batch_energy(0.25, 0.35, 4).dynamic_per_result_mj == pytest.approx(0.0)
    assert ledger.energy_for(0.0, 2.0) == pytest.approx(10.0)
    assert ledger.batch_energy(5.0, 6.0, 4).per_result_mj is None


def test_cumulative_energy_advances_with_new_samples(tmp_path: Path, fake_clock: FakeClock) -> None:
    tree = make_ina3221(tmp_path, "hwmon", {"VDD_IN": (5000, 1000)})
    sampler = Sampler(InaMonitor(Root(tmp_path), fake_clock), fake_clock, capacity=20)
    ledger = EnergyLedger(sampler)
    assert ledger.cumulative_j() == 0.0
    total = 0.0
    for second in range(3):  # 3 s through a ring that holds only 0.4 s
        tree.set("VDD_IN", 5000, 1000 * (second + 1))
        for _ in range(50):
            sampler.step(fake_clock.monotonic())
            fake_clock.advance(0.02)
            total = ledger.cumulative_j()
    # 5 W, 10 W, 15 W for ~1 s each, with the two steps linearly bridged over one interval
    assert total == pytest.approx(5.0 * 0.98 + 10.0 * 1.0 + 15.0 * 0.98, rel=0.01)


def test_integrate_matches_a_plain_trapezoid_on_irregular_samples() -> None:
    rng = np.random.default_rng(7)
    ts = np.cumsum(rng.uniform(0.01, 0.03, 400))
    ws = rng.uniform(1.0, 10.0, 400)
    energy, covered = integrate(ts, ws, float(ts[0]), float(ts[-1]), max_gap_s=1.0, hold_s=0.0)
    assert energy == pytest.approx(float(np.sum((ws[1:] + ws[:-1]) / 2 * np.diff(ts))))
    assert covered == pytest.approx(float(ts[-1] - ts[0]))
    assert math.isclose(integrate(ts[:0], ws[:0], 0.0, 1.0, max_gap_s=1.0, hold_s=0.0)[0], 0.0)
