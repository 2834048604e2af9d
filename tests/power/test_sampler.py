"""The sampler: step() driven by a FakeClock, limit events, the ring, and the real thread."""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path

import pytest

from edge_agent.clock import FakeClock, SystemClock
from edge_agent.hardware.base import PowerReading, RawSample
from edge_agent.hardware.ina3221 import InaMonitor
from edge_agent.hardware.root import Root
from edge_agent.power.monitor import UnavailableMonitor
from edge_agent.power.sampler import LimitEvent, Sampler
from tests.fakes.ina import TX2_RAILS, InaTree, make_ina3221

LOGGER = "edge_agent.power.sampler"
SUMMARY = (
    r"power sampler fell behind (\d+) more time\(s\) in 60 s "
    r"\(worst gap 100\.0 ms, (\d+) in all\)"
)


def _tx2(tmp_path: Path, clock: FakeClock, **limits: tuple[int, int]) -> tuple[InaTree, Sampler]:
    tree = make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0, limits=limits)
    monitor = InaMonitor(Root(tmp_path), clock)
    return tree, Sampler(monitor, clock, interval_s=0.02, capacity=50)


def test_step_stamps_samples_with_the_clock(tmp_path: Path, fake_clock: FakeClock) -> None:
    tree, sampler = _tx2(tmp_path, fake_clock)
    times = []
    for i in range(5):
        tree.set_power("VDD_IN", 1000 * (i + 1), voltage_mv=19000)
        reading = sampler.step(fake_clock.monotonic())
        assert reading is not None
        times.append(fake_clock.monotonic())
        fake_clock.advance(0.02)
    samples = sampler.samples()
    assert [s.t_s for s in samples] == times
    assert [round((s.total_w or 0) * 10) / 10 for s in samples] == [1.0, 2.0, 3.0, 4.0, 5.0]
    latest = sampler.latest()
    assert latest is not None
    assert latest.t_s == times[-1]
    assert [s.t_s for s in sampler.samples_between(times[1], times[3])] == times[1:4]
    around = sampler.samples_around(times[1] + 0.001, times[2] + 0.001)
    assert [s.t_s for s in around] == times[1:4]


def test_ring_buffer_is_bounded_and_counts_overwrites(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    _, sampler = _tx2(tmp_path, fake_clock)
    for _ in range(80):
        sampler.step(fake_clock.monotonic())
        fake_clock.advance(0.02)
    stats = sampler.stats()
    assert stats.samples == 80
    assert stats.buffered == 50
    assert stats.overwritten == 30
    assert sampler.samples()[0].t_s == pytest.approx(1000.0 + 30 * 0.02)


def test_falling_behind_warns_once(
    tmp_path: Path, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    _, sampler = _tx2(tmp_path, fake_clock)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for gap in (0.3, 0.3, 0.3, 0.02):  # startup grace: the first second is not counted
            sampler.step(fake_clock.monotonic())
            fake_clock.advance(gap)
        assert sampler.stats().late == 0
        for gap in (0.02, 0.02, 0.09, 0.02, 0.2, 0.5, 0.02):
            sampler.step(fake_clock.monotonic())
            fake_clock.advance(gap)
    warnings = [r for r in caplog.records if "fell behind" in r.getMessage()]
    assert len(warnings) == 1
    assert "90.0 ms" in warnings[0].getMessage()
    assert sampler.stats().late == 3


def test_falling_behind_all_the_time_is_summarised_with_a_count(
    tmp_path: Path, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    _, sampler = _tx2(tmp_path, fake_clock)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        # A loaded machine: every pass 100 ms late for 150 s (1500 misses after the grace).
        for _ in range(1511):
            sampler.step(fake_clock.monotonic())
            fake_clock.advance(0.1)
    lines = [r.getMessage() for r in caplog.records if "fell behind" in r.getMessage()]
    assert len(lines) == 3  # once, then once a minute
    assert "100.0 ms between samples" in lines[0]
    summaries = [re.fullmatch(SUMMARY, line) for line in lines[1:]]
    counts = [(int(m[1]), int(m[2])) for m in summaries if m is not None]
    assert len(counts) == 2
    # About 600 misses a minute (10 passes a second), each line adding up with the last.
    assert all(595 <= more <= 605 for more, _ in counts)
    assert counts[0][1] == 1 + counts[0][0]
    assert counts[1][1] == counts[0][1] + counts[1][0]
    assert sampler.stats().late >= counts[1][1]


def test_limit_crossing_logs_once_and_queues_events(
    tmp_path: Path, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    tree, sampler = _tx2(tmp_path, fake_clock, VDD_IN=(3000, 5000))
    currents = [1000, 3100, 3200, 3050, 5200, 5300, 4990, 2990, 2950, 1000]
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for current in currents:
            tree.set("VDD_IN", 19000, current)
            sampler.step(fake_clock.monotonic())
            fake_clock.advance(0.02)
    events = sampler.drain_events()
    assert [(e.level, e.previous, e.current_ma, e.recovered) for e in events] == [
        ("warn", "ok", 3100, False),
        ("crit", "warn", 5200, False),
        # 4990 mA is within the 2% hysteresis of the 5000 mA crit limit: still crit.
        ("warn", "crit", 2990, True),  # below 4900 but still within warn's hysteresis band
        ("ok", "warn", 1000, True),
    ]
    assert events[0] == LimitEvent(
        t_s=1000.02, rail="VDD_IN", level="warn", previous="ok", current_ma=3100,
        limit_ma=3000, recovered=False,
    )  # fmt: skip
    assert events[-1].limit_ma == 3000
    assert events[1].to_dict() == {
        "type": "rail_limit",
        "ts_mono": events[1].t_s,
        "rail": "VDD_IN",
        "level": "crit",
        "previous": "warn",
        "current_ma": 5200,
        "limit_ma": 5000,
        "recovered": False,
    }
    assert sampler.drain_events() == []
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in messages] == [
        logging.WARNING,
        logging.WARNING,
        logging.INFO,
        logging.INFO,
    ]
    assert "VDD_IN above its warn current limit: 3100 mA >= 3000 mA" in messages[0][1]
    assert sampler.limit_levels()["VDD_IN"] == "ok"


def test_unset_limits_never_fire(tmp_path: Path, fake_clock: FakeClock) -> None:
    tree, sampler = _tx2(tmp_path, fake_clock)  # 32760 mA everywhere
    tree.set("VDD_IN", 19000, 9000)
    sampler.step(fake_clock.monotonic())
    assert sampler.drain_events() == []


def test_failing_monitor_counts_errors(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sampler = Sampler(UnavailableMonitor("gone"), fake_clock)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert sampler.step(fake_clock.monotonic()) is None
        assert sampler.step(fake_clock.monotonic()) is None
    assert sampler.stats().read_errors == 2
    assert len([r for r in caplog.records if "read failed" in r.getMessage()]) == 1
    assert sampler.latest() is None


def test_thread_samples_until_stopped(tmp_path: Path) -> None:
    make_ina3221(tmp_path, "hwmon", {"VDD_IN": (5000, 1000)})
    clock = SystemClock()
    sampler = Sampler(InaMonitor(Root(tmp_path), clock), clock, interval_s=0.005, capacity=1000)
    sampler.start()
    try:
        assert sampler.running
        assert sampler.wait_for(10, timeout_s=10.0)
    finally:
        sampler.stop()
        assert sampler.join(5.0)
    assert not sampler.running
    samples = sampler.samples()
    assert len(samples) >= 10
    assert all(s.total_mw == 5000.0 for s in samples)
    assert all(b.t_s > a.t_s for a, b in itertools.pairwise(samples))
    with pytest.raises(RuntimeError):
        sampler.start()


def test_rejects_bad_parameters(fake_clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="interval_s"):
        Sampler(UnavailableMonitor("x"), fake_clock, interval_s=0)


class _CountingMonitor(InaMonitor):
    """The real INA reader, counting how often a raw pass is turned into a reading."""

    decoded = 0

    def decode(self, raw: RawSample) -> PowerReading:
        self.decoded += 1
        return super().decode(raw)


def test_passes_stay_raw_until_a_query_decodes_each_once(tmp_path: Path) -> None:
    make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0)
    clock = SystemClock()
    monitor = _CountingMonitor(Root(tmp_path), clock)
    sampler = Sampler(monitor, clock, interval_s=0.005, capacity=1000)
    sampler.start()
    try:
        assert sampler.wait_for(10, timeout_s=10.0)
    finally:
        sampler.stop()
        assert sampler.join(5.0)
    taken = sampler.stats().samples
    assert monitor.decoded == 0  # the thread only stored raw passes
    samples = sampler.samples()
    assert len(samples) == taken
    assert monitor.decoded == taken
    assert all(s.total_mw == 19000 * 220 / 1000 for s in samples)
    assert sampler.samples_between(samples[2].t_s, samples[4].t_s) == samples[2:5]
    assert monitor.decoded == taken  # decoded once, kept


def test_a_pass_near_a_limit_is_checked_at_once(tmp_path: Path) -> None:
    tree = make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0, limits={"VDD_IN": (3000, 5000)})
    tree.set("VDD_IN", 19000, 3500)
    clock = SystemClock()
    monitor = _CountingMonitor(Root(tmp_path), clock)
    sampler = Sampler(monitor, clock, interval_s=0.005, capacity=1000)
    sampler.start()
    try:
        assert sampler.wait_for(3, timeout_s=10.0)
    finally:
        sampler.stop()
        assert sampler.join(5.0)
    # Every pass was decoded by the thread itself (no query yet), and the crossing reported.
    assert monitor.decoded == sampler.stats().samples
    assert [(e.rail, e.level) for e in sampler.drain_events()] == [("VDD_IN", "warn")]
