"""The energy ledger: joules, average watts and MLPerf efficiency metrics over any time window.

Power between two samples is taken as linear (trapezoidal rule). A window ``[t0, t1]`` uses the
samples inside it plus the value interpolated at each edge from the neighbour outside, so a
window that lies inside one sample interval still gets the interpolated energy. Where the
monitor has a hardware energy counter (NVML), the total comes from the counter instead.

Time that no data covers (before the first sample, across a gap longer than ``max_gap_s``,
past the newest sample by more than ``hold_s``) is left out: ``covered_s`` says how much of the
window was measured, and a window with no coverage reports ``no_data`` with None watts, never
0 W. MLPerf formulas (``power_check.py``): mJ/inference = avg_W x duration_s x 1000 / count;
inferences/J = count / (avg_W x duration_s), which equals images/s/W.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge_agent.hardware.base import PowerReading

Array = npt.NDArray[np.float64]


class SampleSource(Protocol):
    """Where the ledger reads samples from: the :class:`~edge_agent.power.sampler.Sampler`."""

    interval_s: float

    def samples_around(self, t0: float, t1: float) -> list[PowerReading]:
        """Samples inside ``[t0, t1]`` plus the nearest one outside on each side."""
        ...


class ListSource:
    """A fixed list of readings as a :class:`SampleSource` (recorded runs, tools)."""

    def __init__(self, readings: Sequence[PowerReading], interval_s: float = 0.02) -> None:
        self.readings = sorted(readings, key=lambda r: r.t_s)
        self.interval_s = interval_s

    def samples_around(self, t0: float, t1: float) -> list[PowerReading]:
        """Samples inside the window plus one neighbour on each side."""
        times = [r.t_s for r in self.readings]
        lo = max(0, int(np.searchsorted(times, t0, side="left")) - 1)
        hi = int(np.searchsorted(times, t1, side="right")) + 1
        return self.readings[lo:hi]


@dataclass(frozen=True, slots=True)
class RailStats:
    """Energy of one series (a rail or the total) over a window."""

    avg_w: float | None
    energy_j: float | None
    samples: int
    covered_s: float
    dynamic_avg_w: float | None = None


@dataclass(frozen=True, slots=True)
class WindowStats:
    """What the board used over ``[t0_s, t1_s]``.

    ``avg_w``/``energy_j`` are for the board total; ``rails`` per rail; ``gpu`` repeats the GPU
    rail, as the published tables list it separately. ``samples`` counts samples inside the
    window; ``no_data`` is True when nothing covers it (then every figure is None).
    """

    t0_s: float
    t1_s: float
    duration_s: float
    covered_s: float
    samples: int
    no_data: bool
    avg_w: float | None
    energy_j: float | None
    total_name: str
    total_is_sum: bool
    source: str
    rails: dict[str, RailStats] = field(default_factory=dict)
    gpu_rail: str | None = None
    gpu: RailStats | None = None
    baseline_w: float | None = None
    dynamic_avg_w: float | None = None
    dynamic_energy_j: float | None = None


@dataclass(frozen=True, slots=True)
class EfficiencyMetrics:
    """MLPerf-style efficiency over a window; None where the window has no data."""

    inferences: int
    duration_s: float
    throughput_ips: float
    avg_w: float | None
    inferences_per_j: float | None
    mj_per_inference: float | None
    gpu_avg_w: float | None = None
    gpu_inferences_per_j: float | None = None
    dynamic_mj_per_inference: float | None = None


@dataclass(frozen=True, slots=True)
class IdleBaseline:
    """Idle power, subtracted from later windows to give dynamic energy."""

    total_w: float
    rails_w: dict[str, float]
    duration_s: float
    samples: int


@dataclass(frozen=True, slots=True)
class BatchEnergy:
    """A batch's share of board energy; ``estimate`` is always True: rails are board-wide."""

    start_s: float
    end_s: float
    results: int
    energy_mj: float | None
    per_result_mj: float | None
    dynamic_per_result_mj: float | None = None
    estimate: bool = True


def integrate(
    ts: Array, ws: Array, t0: float, t1: float, *, max_gap_s: float, hold_s: float
) -> tuple[float, float]:
    """Trapezoidal integral of a sampled series over ``[t0, t1]``.

    Args:
        ts: sample times (seconds), ascending.
        ws: sample values (watts).
        t0: window start.
        t1: window end.
        max_gap_s: samples further apart than this are not interpolated across.
        hold_s: the newest value is held this long past the newest sample.

    Returns:
        (energy in joules, seconds of the window that the data covers).
    """
    if ts.size == 0 or t1 <= t0:
        return 0.0, 0.0
    starts = np.append(ts[:-1], ts[-1])
    ends = np.append(ts[1:], ts[-1] + hold_s)
    w_starts = np.append(ws[:-1], ws[-1])
    w_ends = np.append(ws[1:], ws[-1])
    span = ends - starts
    valid = (span > 0) & (span <= max_gap_s)
    a = np.maximum(starts, t0)
    b = np.minimum(ends, t1)
    valid &= b > a
    if not valid.any():
        return 0.0, 0.0
    starts, span, w_starts, w_ends, a, b = (
        x[valid] for x in (starts, span, w_starts, w_ends, a, b)
    )
    slope = (w_ends - w_starts) / span
    wa = w_starts + slope * (a - starts)
    wb = w_starts + slope * (b - starts)
    return float(np.sum((wa + wb) * 0.5 * (b - a))), float(np.sum(b - a))


def _counter_energy(ts: Array, counter_mj: Array, t0: float, t1: float) -> float | None:
    a, b = max(t0, float(ts[0])), min(t1, float(ts[-1]))
    if ts.size < 2 or b <= a or np.any(np.diff(counter_mj) < 0):
        return None  # a reset (driver reload) breaks the counter; integrate instead
    return float(np.interp(b, ts, counter_mj) - np.interp(a, ts, counter_mj)) / 1000.0


def _series(samples: list[PowerReading]) -> tuple[Array, Array, dict[str, tuple[Array, Array]]]:
    total_t = [s.t_s for s in samples if s.total_mw is not None]
    total_w = [s.total_mw / 1000.0 for s in samples if s.total_mw is not None]
    rails: dict[str, tuple[list[float], list[float]]] = {}
    for sample in samples:
        for rail in sample.rails:
            times, watts = rails.setdefault(rail.name, ([], []))
            times.append(sample.t_s)
            watts.append(rail.power_mw / 1000.0)
    arrays = {name: (np.array(t, float), np.array(w, float)) for name, (t, w) in rails.items()}
    return np.array(total_t, float), np.array(total_w, float), arrays


class EnergyLedger:
    """Energy over windows of a sampler's buffer, idle baseline, per-batch attribution.

    Args:
        source: the sampler (or any :class:`SampleSource`).
        max_gap_s: do not interpolate across gaps longer than this (default max(1 s, 10 x
            interval)).
        hold_s: hold the newest value this long (default 2 x interval), so a window ending
            just after the newest sample is answered now rather than one interval later.
    """

    def __init__(
        self, source: SampleSource, *, max_gap_s: float | None = None, hold_s: float | None = None
    ) -> None:
        self.source = source
        interval = source.interval_s
        self.max_gap_s = max_gap_s if max_gap_s is not None else max(1.0, 10.0 * interval)
        self.hold_s = hold_s if hold_s is not None else 2.0 * interval
        self.baseline: IdleBaseline | None = None
        self._mark_s: float | None = None
        self._cumulative_j = 0.0

    def window(self, t0: float, t1: float) -> WindowStats:
        """Energy and average power over ``[t0, t1]`` (monotonic seconds).

        Raises:
            ValueError: ``t1`` is before ``t0``.
        """
        if t1 < t0:
            raise ValueError(f"window ends before it starts: {t0} > {t1}")
        samples = self.source.samples_around(t0, t1)
        inside = sum(1 for s in samples if t0 <= s.t_s <= t1)
        ref = samples[-1] if samples else None
        total_t, total_w, rail_series = _series(samples)
        energy_j, covered_s = integrate(
            total_t, total_w, t0, t1, max_gap_s=self.max_gap_s, hold_s=self.hold_s
        )
        method = "trapezoid"
        counters = [s.energy_mj for s in samples]
        if len(samples) >= 2 and all(c is not None for c in counters):
            times = np.array([s.t_s for s in samples], float)
            counted = _counter_energy(times, np.array(counters, float), t0, t1)
            if counted is not None:
                energy_j, method = counted, "counter"
                covered_s = min(t1, float(times[-1])) - max(t0, float(times[0]))
        base = self.baseline
        rails: dict[str, RailStats] = {}
        for name, (ts, ws) in rail_series.items():
            rail_j, rail_s = integrate(ts, ws, t0, t1, max_gap_s=self.max_gap_s, hold_s=self.hold_s)
            rail_avg = rail_j / rail_s if rail_s > 0 else None
            base_w = base.rails_w.get(name) if base is not None else None
            rails[name] = RailStats(
                avg_w=rail_avg,
                energy_j=rail_j if rail_s > 0 else None,
                samples=int(np.count_nonzero((ts >= t0) & (ts <= t1))),
                covered_s=rail_s,
                dynamic_avg_w=None if rail_avg is None or base_w is None else rail_avg - base_w,
            )
        no_data = covered_s <= 0
        avg_w = None if no_data else energy_j / covered_s
        dynamic = None if avg_w is None or base is None else avg_w - base.total_w
        gpu_rail = ref.gpu_rail if ref is not None else None
        return WindowStats(
            t0_s=t0,
            t1_s=t1,
            duration_s=t1 - t0,
            covered_s=max(covered_s, 0.0),
            samples=inside,
            no_data=no_data,
            avg_w=avg_w,
            energy_j=None if no_data else energy_j,
            total_name=ref.total_name if ref is not None else "",
            total_is_sum=ref.total_is_sum if ref is not None else False,
            source="none" if no_data else method,
            rails=rails,
            gpu_rail=gpu_rail,
            gpu=rails.get(gpu_rail) if gpu_rail else None,
            baseline_w=base.total_w if base is not None else None,
            dynamic_avg_w=dynamic,
            dynamic_energy_j=None if dynamic is None else dynamic * covered_s,
        )

    def metrics(self, window: WindowStats, inferences: int) -> EfficiencyMetrics:
        """MLPerf efficiency for ``inferences`` completed inside ``window``."""
        duration = window.duration_s
        throughput = inferences / duration if duration > 0 else 0.0

        def per_j(avg_w: float | None) -> float | None:
            if avg_w is None or avg_w <= 0 or duration <= 0:
                return None
            return inferences / (avg_w * duration)

        def mj_each(avg_w: float | None) -> float | None:
            if avg_w is None or inferences <= 0:
                return None
            return avg_w * duration * 1000.0 / inferences

        gpu_w = window.gpu.avg_w if window.gpu is not None else None
        return EfficiencyMetrics(
            inferences=inferences,
            duration_s=duration,
            throughput_ips=throughput,
            avg_w=window.avg_w,
            inferences_per_j=per_j(window.avg_w),
            mj_per_inference=mj_each(window.avg_w),
            gpu_avg_w=gpu_w,
            gpu_inferences_per_j=per_j(gpu_w),
            dynamic_mj_per_inference=mj_each(window.dynamic_avg_w),
        )

    def measure_idle(self, t0: float, t1: float) -> IdleBaseline | None:
        """Record ``[t0, t1]`` as the idle baseline; None (and no change) without data."""
        stats = self.window(t0, t1)
        if stats.avg_w is None:
            return None
        rails_w = {name: r.avg_w for name, r in stats.rails.items() if r.avg_w is not None}
        self.baseline = IdleBaseline(stats.avg_w, rails_w, stats.covered_s, stats.samples)
        return self.baseline

    def energy_for(self, start: float, end: float) -> float | None:
        """Board energy in joules between ``start`` and ``end``; None without data."""
        return self.window(start, end).energy_j

    def batch_energy(self, start: float, end: float, results: int) -> BatchEnergy:
        """Split a batch's board energy evenly over its results (an estimate)."""
        stats = self.window(start, end)
        energy_mj = None if stats.energy_j is None else stats.energy_j * 1000.0
        each = None if energy_mj is None or results <= 0 else energy_mj / results
        dynamic = None
        if stats.dynamic_energy_j is not None and results > 0:
            dynamic = stats.dynamic_energy_j * 1000.0 / results
        return BatchEnergy(start, end, results, energy_mj, each, dynamic)

    def cumulative_j(self) -> float:
        """Board energy since the first call, advanced to the newest sample.

        The buffer only keeps the last few minutes, so call this at least once per buffer span
        (telemetry does, every interval).
        """
        latest = self.source.samples_around(float("inf"), float("inf"))
        if not latest:
            return self._cumulative_j
        newest = latest[-1].t_s
        if self._mark_s is None:
            self._mark_s = newest
        elif newest > self._mark_s:
            stats = self.window(self._mark_s, newest)
            self._cumulative_j += stats.energy_j or 0.0
            self._mark_s = newest
        return self._cumulative_j
