"""The engine busy fraction that feeds the simulated power model and telemetry."""

from __future__ import annotations

import pytest

from edge_agent.agent.hooks import PipelineHooks
from edge_agent.clock import FakeClock


def test_busy_fraction_over_the_recent_window(fake_clock: FakeClock) -> None:
    hooks = PipelineHooks(clock=fake_clock, window_s=1.0)
    now = fake_clock.monotonic()
    hooks.record_batch(now - 2.0, now - 1.5)  # outside the window
    hooks.record_batch(now - 1.2, now - 0.9)  # 0.1 s inside
    hooks.record_batch(now - 0.5, now - 0.2)  # 0.3 s inside
    assert hooks.busy_fraction() == pytest.approx(0.4)
    # Reading does not consume: a second reader sees the same value.
    assert hooks.busy_fraction() == pytest.approx(0.4)
    assert hooks.busy_fraction_at(now, window_s=2.0) == pytest.approx(0.55)  # 1.1 s of 2


def test_busy_fraction_is_clamped_and_idle_is_zero(fake_clock: FakeClock) -> None:
    hooks = PipelineHooks(clock=fake_clock, window_s=0.5)
    assert hooks.busy_fraction() == 0.0
    now = fake_clock.monotonic()
    hooks.record_batch(now - 3.0, now)
    assert hooks.busy_fraction() == 1.0
    fake_clock.advance(10.0)
    assert hooks.busy_fraction() == 0.0
