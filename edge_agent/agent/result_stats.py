"""Rolling result statistics: counts, fps, latency percentiles, accuracy."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from edge_agent.clock import Clock


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """What the agent has produced so far."""

    results: int
    elapsed_s: float
    fps: float  # results per second between the first and the last result
    recent_fps: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    engine_p50_ms: float | None
    accuracy: float | None
    labelled: int
    first_result_mono: float | None = None
    last_result_mono: float | None = None

    def latency_dict(self) -> dict[str, float | None]:
        return {"p50": self.latency_p50_ms, "p95": self.latency_p95_ms, "p99": self.latency_p99_ms}


class ResultStats:
    """Thread-safe counters over every result, percentiles over the most recent ones."""

    def __init__(self, clock: Clock, window: int = 10_000, fps_window_s: float = 10.0) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock.monotonic()
        self._latency: deque[float] = deque(maxlen=window)
        self._engine: deque[float] = deque(maxlen=window)
        self._times: deque[float] = deque(maxlen=window)
        self._fps_window_s = fps_window_s
        self._results = 0
        self._first_mono: float | None = None
        self._last_mono: float | None = None
        self._labelled = 0
        self._correct = 0

    def record(self, latency_ms: float, engine_ms: float, correct: bool | None = None) -> None:
        """Count one result; ``correct`` is None when the frame had no ground truth."""
        now = self._clock.monotonic()
        with self._lock:
            self._results += 1
            if self._first_mono is None:
                self._first_mono = now
            self._last_mono = now
            self._latency.append(latency_ms)
            self._engine.append(engine_ms)
            self._times.append(now)
            if correct is not None:
                self._labelled += 1
                self._correct += int(correct)

    def since(self, start_mono: float) -> tuple[int, float | None]:
        """Results recorded at or after ``start_mono`` and their p95 latency (ms)."""
        recent = self.latencies_since(start_mono)
        if not recent:
            return 0, None
        return len(recent), round(float(np.percentile(np.array(recent), 95)), 3)

    def latencies_since(self, t0: float) -> list[float]:
        """Latencies (ms) of the results recorded at or after ``t0`` (the governor's window)."""
        return self._since(t0, self._latency)

    def engine_since(self, t0: float) -> list[float]:
        """Engine times (ms) of the results recorded at or after ``t0``."""
        return self._since(t0, self._engine)

    def _since(self, t0: float, values: deque[float]) -> list[float]:
        # The ring is in time order: walk back from the newest until the window starts.
        with self._lock:
            out = []
            for t, value in zip(reversed(self._times), reversed(values), strict=True):
                if t < t0:
                    break
                out.append(value)
        out.reverse()
        return out

    def snapshot(self) -> StatsSnapshot:
        now = self._clock.monotonic()
        with self._lock:
            latency = np.array(self._latency, dtype=np.float64)
            engine = np.array(self._engine, dtype=np.float64)
            recent = sum(1 for t in self._times if now - t <= self._fps_window_s)
            results, labelled, correct = self._results, self._labelled, self._correct
            first, last = self._first_mono, self._last_mono
        elapsed = max(now - self._start, 1e-9)
        # Throughput while producing: from the first result to the last, so start-up (model
        # load, warm-up) and shutdown do not dilute it.
        span = (last - first) if first is not None and last is not None else 0.0
        fps = (results - 1) / span if results > 1 and span > 0 else 0.0
        window = min(self._fps_window_s, elapsed)

        def pct(values: np.ndarray, q: float) -> float | None:
            return round(float(np.percentile(values, q)), 3) if values.size else None

        return StatsSnapshot(
            results=results,
            elapsed_s=elapsed,
            fps=fps,
            recent_fps=recent / window if window > 0 else 0.0,
            latency_p50_ms=pct(latency, 50),
            latency_p95_ms=pct(latency, 95),
            latency_p99_ms=pct(latency, 99),
            engine_p50_ms=pct(engine, 50),
            accuracy=correct / labelled if labelled else None,
            labelled=labelled,
            first_result_mono=first,
            last_result_mono=last,
        )


def pipeline_healthy(
    now: float, last_progress: float | None, stall_s: float, pending: int, cameras_up: int
) -> bool:
    """Whether the watchdog may ping: the pipeline made progress recently, or it is idle.

    Idle means nothing is waiting and no camera is delivering (all down and retrying), which
    is a reported state, not a hang. Frames pending with no finished batch is a stalled engine;
    a camera that says ``up`` but delivers nothing for ``stall_s`` is a wedged capture.
    """
    if last_progress is not None and now - last_progress <= stall_s:
        return True
    return pending == 0 and cameras_up == 0
