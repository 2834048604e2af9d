"""A named thread that calls ``step(now)`` every interval until stopped.

Logic lives in ``step``, tested directly; this is the thin loop around it
(``while not stop.wait(interval_s): step(clock.monotonic())``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from edge_agent.clock import Clock


class PeriodicThread:
    """Runs ``step(now)`` every ``interval()`` seconds on its own named thread."""

    def __init__(
        self,
        name: str,
        interval: Callable[[], float],
        step: Callable[[float], object],
        clock: Clock,
    ) -> None:
        self._interval = interval
        self._step = step
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval()):
            self._step(self._clock.monotonic())
