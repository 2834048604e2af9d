"""Live apply of a new config with a health gate: it runs healthily, or the old one returns.

A SIGHUP reload (and later fleet pushes) swaps the pipeline for one built from the new config,
then watches it for a probation window. The new config is rolled back when:

- building or starting it raises;
- one of its threads dies within the window (the supervisor diverts that death here instead
  of stopping the agent);
- a camera is ``down`` when the window ends (a missing device, an unreadable video).

After the window the normal rule applies again: a thread that dies stops the agent.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Protocol

from edge_agent.errors import EdgeAgentError

logger = logging.getLogger(__name__)

DEFAULT_PROBATION_S = 3.0

START_FAILURES = (EdgeAgentError, OSError, ValueError, RuntimeError, MemoryError)
"""What building and starting a pipeline can raise: ours, the OS's, OpenCV's and NumPy's."""


class GatedPipeline(Protocol):
    """What the gate needs to know about the pipeline it watches."""

    def thread_names(self) -> frozenset[str]: ...

    def source_states(self) -> dict[str, tuple[str, str | None]]: ...


@dataclass
class Probation:
    """Catches deaths of one pipeline's threads while a new config is on probation.

    ``divert`` is called by the supervisor's hook from the dying thread; it returns True when
    the death is the probation's business (the agent keeps running).
    """

    names: frozenset[str] = frozenset()
    failed: threading.Event = field(default_factory=threading.Event)
    reasons: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def divert(self, thread_name: str, error: str) -> bool:
        with self._lock:
            if thread_name not in self.names:
                return False
            self.reasons.append(f"thread {thread_name} died: {error}")
        self.failed.set()
        return True

    def watch(self, names: frozenset[str]) -> None:
        with self._lock:
            self.names = names
            self.reasons.clear()
        self.failed.clear()

    def end(self) -> None:
        with self._lock:
            self.names = frozenset()


def health_failure(
    pipeline: GatedPipeline,
    probation: Probation,
    stop: threading.Event,
    window_s: float,
) -> str | None:
    """Wait up to ``window_s`` for a sign of failure; the reason, or None when healthy.

    Returns at once when a watched thread dies or ``stop`` is set (a shutdown is no failure).
    """
    probation.watch(pipeline.thread_names())
    try:
        waited = 0.0
        step_s = 0.1
        while waited < window_s:
            if probation.failed.wait(min(step_s, window_s - waited)):
                return "; ".join(probation.reasons)
            if stop.is_set():
                return None
            waited += step_s
        down = [
            f"camera {name} is down: {error or 'no frames'}"
            for name, (state, error) in pipeline.source_states().items()
            if state == "down"
        ]
        return "; ".join(down) or None
    finally:
        probation.end()
