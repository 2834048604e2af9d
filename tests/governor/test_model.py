"""The online model: what it remembers per point and how it predicts board power."""

from __future__ import annotations

import pytest

from edge_agent.governor.model import Observation, OnlineModel, Scales
from edge_agent.governor.points import OperatingPoint
from tests.governor.synthetic import POINTS, Truth

SCALES = Scales(1020000000, 3199000000, 1728000)
TRUTH = Truth()


def _obs(point: OperatingPoint, fps: float, watts: float | None = None) -> Observation:
    util = fps * TRUTH.engine_s(point)
    return Observation(
        point=point,
        engine_s_per_inference=TRUTH.engine_s(point),
        utilization=util,
        board_w=TRUTH.board_w(point, util) if watts is None else watts,
        tail_ratio=1.3,
        input_fps=fps,
    )


def _learned(*obs: Observation) -> OnlineModel:
    model = OnlineModel(SCALES)
    for o in obs:
        model = model.observe(o)
    return model


def test_a_preset_and_the_grid_point_at_its_clocks_are_measured_apart() -> None:
    """A preset runs in a mode of its own (other cores online, say): its joules are its own."""
    maxq = next(p for p in POINTS if p.preset == "maxq")
    twin = OperatingPoint(maxq.gpu_hz, maxq.emc_hz, maxq.cpu_khz)
    model = _learned(_obs(maxq, 20.0, watts=3.0))
    assert model.measured_energy_j(maxq, 20.0) == pytest.approx(3.0 / 20.0)
    assert model.measured_energy_j(twin, 20.0) is None


def test_a_measured_point_keeps_its_offset_from_the_fit_at_another_load() -> None:
    """Measured 0.5 W under what the clocks predict, it is predicted 0.5 W under at any load."""
    grid = [p for p in POINTS if p.preset is None]
    obs = [_obs(p, 20.0) for p in grid[:: max(1, len(grid) // 8)]]
    odd = grid[len(grid) // 2 + 1]
    frugal = _obs(odd, 20.0, watts=TRUTH.board_w(odd, 20.0 * TRUTH.engine_s(odd)) - 0.5)
    plain = _learned(*obs)
    model = _learned(*obs, frugal)
    busy = 0.5
    assert model.board_w(odd, busy) == pytest.approx((plain.board_w(odd, busy) or 0) - 0.5, abs=0.1)


def test_idle_power_never_falls_as_the_emc_clock_rises() -> None:
    """Noise that would fit a negative idle EMC term (less power at a higher EMC clock) is
    dropped from the fit, so a lower EMC cap is never predicted to cost more at idle."""
    low = next(p for p in POINTS if p.preset is None and p.emc_hz == 2133000000)
    high = OperatingPoint(low.gpu_hz, 3199000000, low.cpu_khz)
    model = _learned(_obs(low, 1.0, watts=4.6), _obs(high, 1.0, watts=4.2))
    other_gpu = next(g for g in sorted({p.gpu_hz for p in POINTS}) if g != low.gpu_hz)
    unseen_low = OperatingPoint(other_gpu, low.emc_hz, low.cpu_khz)
    unseen_high = OperatingPoint(other_gpu, high.emc_hz, high.cpu_khz)
    assert (model.board_w(unseen_low, 0.0) or 0) <= (model.board_w(unseen_high, 0.0) or 0)
