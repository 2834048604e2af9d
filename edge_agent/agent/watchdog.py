"""sd_notify duties: READY after the first result, WATCHDOG only while frames flow.

A stalled engine or a wedged capture stops the pings and systemd restarts the agent. While a
TensorRT engine is being built the start timeout is extended instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from edge_agent.agent.periodic import PeriodicThread
from edge_agent.agent.result_stats import pipeline_healthy
from edge_agent.agent.sdnotify import Notifier
from edge_agent.clock import Clock


class ProgressSource(Protocol):
    """What the watchdog reads from the pipeline."""

    def engine_info(self) -> dict[str, Any]: ...

    def stats(self) -> dict[str, Any]: ...

    def last_progress_mono(self) -> float | None: ...


logger = logging.getLogger(__name__)

DEFAULT_STALL_S = 10.0
BUILD_EXTEND_S = 120.0


class Watchdog:
    """A small thread that speaks the notify protocol for the agent."""

    def __init__(
        self,
        pipeline: Callable[[], ProgressSource | None],
        first_result: threading.Event,
        status_line: Callable[[], str],
        notifier: Notifier,
        clock: Clock,
    ) -> None:
        """Args:
        pipeline: the running pipeline (it is replaced on reload, hence a callable).
        first_result: set when the first result is out; READY follows it.
        status_line: one line for STATUS=.
        notifier: the sd_notify sender.
        clock: the injected clock.
        """
        self._pipeline = pipeline
        self._first_result = first_result
        self._status_line = status_line
        self._notifier = notifier
        self._clock = clock
        interval = notifier.watchdog_interval_s
        self.ping_interval_s = min(1.0, interval / 4) if interval else 1.0
        self.stall_s = max(0.5, interval / 2) if interval else DEFAULT_STALL_S
        self.ready_sent = False
        self.pinging = False
        self._thread = PeriodicThread("watchdog", lambda: self.ping_interval_s, self.step, clock)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def step(self, now: float) -> None:
        """One tick: READY once, then WATCHDOG while healthy, EXTEND while building."""
        pipeline = self._pipeline()
        if pipeline is None:
            return
        if not self.ready_sent:
            info = pipeline.engine_info()
            if info.get("state") == "building_engine":
                self._notifier.extend_timeout(BUILD_EXTEND_S)
                self._notifier.status(
                    f"building TensorRT engine ({float(info.get('state_elapsed_s', 0.0)):.0f} s)"
                )
            if self._first_result.is_set():
                sent = self._notifier.ready(self._status_line())
                # Outside systemd there is no one to tell: ready all the same, and said once.
                # Under systemd a failed send is retried next tick (Notifier logs it once).
                self.ready_sent = sent or not self._notifier.enabled
                if self.ready_sent:
                    logger.info("ready: first result produced")
            return
        stats = pipeline.stats()
        healthy = pipeline_healthy(
            now,
            pipeline.last_progress_mono(),
            self.stall_s,
            int(stats.get("queue_depth", 0)),
            sum(1 for cam in stats.get("cameras", {}).values() if cam.get("state") == "up"),
        )
        if healthy:
            self._notifier.watchdog()
        if healthy != self.pinging:
            if healthy:
                logger.info("pipeline progressing; watchdog pings resumed")
            else:
                logger.error(
                    "pipeline stalled for more than %.1f s; watchdog pings stopped", self.stall_s
                )
            self.pinging = healthy
