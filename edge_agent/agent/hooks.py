"""What the environment (a simulated board) adds to the pipeline: engine-time stretch and
the engine's recent busy fraction."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_agent.clock import Clock, SystemClock


@dataclass
class PipelineHooks:
    """What the environment (a simulated board) adds to the pipeline.

    ``latency_scale`` stretches engine time by the simulated clock ratio. The engine's busy
    fraction over a recent window feeds the simulated power model and the ``engine`` load in
    telemetry; reading it never resets anything, so both can ask.
    """

    latency_scale: Callable[[], float] | None = None
    clock: Clock = field(default_factory=SystemClock)
    window_s: float = 0.5
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _batches: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=16384))

    def record_batch(self, start: float, end: float) -> None:
        with self._lock:
            self._batches.append((start, end))

    def busy_fraction_at(self, now: float, window_s: float | None = None) -> float:
        """Engine busy time within ``[now - window_s, now]`` over the window, in [0, 1]."""
        span = self.window_s if window_s is None else window_s
        low = now - span
        with self._lock:
            busy = sum(
                max(0.0, min(end, now) - max(start, low))
                for start, end in self._batches
                if end > low
            )
        return min(1.0, busy / span) if span > 0 else 0.0

    def busy_fraction(self) -> float:
        return self.busy_fraction_at(self.clock.monotonic())
