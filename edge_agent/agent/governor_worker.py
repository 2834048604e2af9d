"""The governor thread: one metrics window per ``window_s``, a decision, the caps applied.

It reads what the reporter reads (the result latencies, the pipeline's counters, the energy
ledger, the thermal zones), builds a :class:`MetricsWindow`, asks the pure
:func:`edge_agent.governor.decide.decide` for the next point and applies it through
:mod:`edge_agent.power` (sysfs caps with read-back, or a profile switch for a preset). Every
change is logged and queued as a telemetry event: from, to, the reason with its numbers, and
the time the apply took.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_agent.agent.periodic import PeriodicThread
from edge_agent.agent.result_stats import ResultStats
from edge_agent.clock import Clock
from edge_agent.errors import EdgeAgentError
from edge_agent.governor.decide import Decision, GovernorState, decide, initial_state
from edge_agent.governor.discovery import BoardTables
from edge_agent.governor.points import OperatingPoint
from edge_agent.governor.policy import GovernorParams
from edge_agent.governor.window import MetricsWindow
from edge_agent.hardware.root import Root
from edge_agent.hardware.thermal import read_thermal_zones
from edge_agent.power.dvfs_caps import apply_caps
from edge_agent.power.ledger import EnergyLedger


def ledger_watts(ledger: EnergyLedger | None) -> Callable[[float, float], float | None]:
    """Mean board watts over a window from the energy ledger (None without a power monitor)."""

    def watts(t0: float, t1: float) -> float | None:
        if ledger is None or t1 <= t0:
            return None
        return ledger.window(t0, t1).avg_w

    return watts


logger = logging.getLogger(__name__)

MAX_EVENTS = 64


@dataclass(frozen=True)
class GovernorInputs:
    stats: ResultStats
    board_w: Callable[[float, float], float | None]  # mean board watts over [t0, t1]
    pipeline_stats: Callable[[], dict[str, Any]]
    model: Callable[[], str]
    root: Root
    apply_preset: Callable[[str], None] | None = None
    time_of_day_s: Callable[[], float] = lambda: 0.0


@dataclass
class _Counters:
    mono: float
    captured: int
    drops: int
    batches: int


def _counters(now: float, stats: dict[str, Any]) -> _Counters:
    cams = stats.get("cameras", {})
    captured = sum(int(c.get("captured", 0)) for c in cams.values())
    drops = int(stats.get("drops", 0)) + sum(int(c.get("dropped", 0)) for c in cams.values())
    return _Counters(now, captured, drops, int(stats.get("batches", 0)))


def build_window(
    start: _Counters,
    end: _Counters,
    stats: dict[str, Any],
    latencies_ms: list[float],
    board_w: float,
    temps_c: dict[str, float],
    point: OperatingPoint,
    model: str,
    time_of_day_s: float = 0.0,
    engine_ms: list[float] | None = None,
) -> MetricsWindow:
    """The metrics window between two counter readings (a pure function)."""
    span = max(end.mono - start.mono, 1e-6)
    lat = np.array(latencies_ms, dtype=np.float64) / 1000.0
    mean_batch = float(stats.get("mean_batch_size") or 1.0)
    if engine_ms:
        # Measured in this window: the pipeline's per-batch-size estimate is smoothed over the
        # whole run and would lag a change of clocks.
        service_ms = float(np.mean(engine_ms))
    else:
        by_batch = stats.get("service_ms_by_batch") or {}
        size = max(1, round(mean_batch))
        service_ms = by_batch.get(size) or (next(iter(by_batch.values())) if by_batch else 0.0)

    def pct(q: float) -> float:
        return float(np.percentile(lat, q)) if lat.size else 0.0

    return MetricsWindow(
        start_s=start.mono,
        end_s=end.mono,
        point=point,
        model=model,
        # A reload starts the counters again: then everything captured counts as new.
        input_fps=(
            end.captured - start.captured if end.captured >= start.captured else end.captured
        )
        / span,
        inferences=int(lat.size),
        drops=end.drops - start.drops if end.drops >= start.drops else end.drops,
        latency_p50_s=pct(50),
        latency_p95_s=pct(95),
        latency_p99_s=pct(99),
        engine_s_per_batch=float(service_ms) / 1000.0,
        mean_batch=mean_batch,
        board_w=board_w,
        queue_depth=int(stats.get("queue_depth", 0)),
        temps_c=temps_c,
        time_of_day_s=time_of_day_s,
    )


class GovernorWorker:
    """Runs the governor on its own thread (``governor``)."""

    def __init__(
        self,
        params: GovernorParams,
        points: tuple[OperatingPoint, ...],
        tables: BoardTables,
        inputs: GovernorInputs,
        clock: Clock,
        window_s: float = 1.0,
    ) -> None:
        self.params, self.points, self.tables = params, points, tables
        self.window_s = window_s
        self._in, self._clock = inputs, clock
        self.state: GovernorState = initial_state(points, params)
        self._events: deque[str] = deque(maxlen=MAX_EVENTS)
        self._lock = threading.Lock()
        self._last: _Counters | None = None
        self.decisions: list[Decision] = []
        self._thread = PeriodicThread("governor", lambda: self.window_s, self.step, clock)

    def start(self) -> None:
        self._last = _counters(self._clock.monotonic(), self._in.pipeline_stats())
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def set_params(self, params: GovernorParams, window_s: float) -> None:
        """Aim for ``params`` from the next window on (a runtime policy change).

        What the worker learned (the point in force, the latency and power models) is kept;
        the next window decides under the new policy.
        """
        self.params = params
        self.window_s = window_s

    def drain_events(self) -> list[str]:
        """Governor changes since the last call, for the telemetry ``events`` list."""
        with self._lock:
            out = list(self._events)
            self._events.clear()
        return out

    def step(self, now: float) -> Decision | None:
        """Measure the window that ends now, decide, and apply a change."""
        stats = self._in.pipeline_stats()
        end = _counters(now, stats)
        start, self._last = self._last, end
        if start is None or end.mono <= start.mono:
            return None
        board_w = self._in.board_w(start.mono, end.mono) or 0.0
        temps = {
            z.name: z.temp_c
            for z in read_thermal_zones(self._in.root)
            if z.online and z.temp_c is not None
        }
        window = build_window(
            start,
            end,
            stats,
            self._in.stats.latencies_since(start.mono),
            board_w,
            temps,
            self.state.point,
            self._in.model(),
            self._in.time_of_day_s(),
            self._in.stats.engine_since(start.mono),
        )
        params = self.params  # one read: a policy change lands between windows
        decision, new_state = decide(params, self.points, self.state, window)
        if decision.changed:
            try:
                took = self._apply(decision.point)
            except EdgeAgentError as err:
                # Not retried: a point the board refused once would fail every window.
                self._event(
                    f"governor: apply {decision.point.label()} failed: {err}; not tried again"
                )
                logger.warning("governor: apply %s failed: %s", decision.point.label(), err)
                self.state = dataclasses.replace(
                    self.state, unreachable=self.state.unreachable | {decision.point.key}
                )
                return decision
            numbers = ", ".join(f"{k} {v:g}" for k, v in decision.numbers.items())
            text = (
                f"governor: {decision.previous.label()} -> {decision.point.label()}: "
                f"{decision.reason} ({numbers}); applied in {took * 1000:.0f} ms"
            )
            self._event(text)
            logger.info("%s", text)
        self.state = new_state
        self.decisions.append(decision)
        return decision

    def _event(self, text: str) -> None:
        with self._lock:
            self._events.append(text)

    def _apply(self, point: OperatingPoint) -> float:
        start = self._clock.monotonic()
        if point.preset is not None and self._in.apply_preset is not None:
            self._in.apply_preset(point.preset)
            return self._clock.monotonic() - start
        done = apply_caps(
            self._in.root,
            self._clock,
            self.tables.gpu,
            self.tables.cpus,
            gpu_hz=point.gpu_hz,
            emc_hz=point.emc_hz,
            cpu_khz=point.cpu_khz,
        )
        return done.duration_s
