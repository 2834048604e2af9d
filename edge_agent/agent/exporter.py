"""Feeds the Prometheus endpoint from what the agent already has.

Results are counted as they arrive; at each telemetry report the counts are frozen together
with the report, so one scrape describes one window. Nothing here reads hardware.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from edge_agent.config_sections import MetricsConfig
from edge_agent.errors import TelemetryError
from edge_agent.hardware.board import BoardInfo
from edge_agent.pipeline.result import Result
from edge_agent.telemetry.metrics import AgentCollector, AgentInfo, MetricsServer, ResultCounter

logger = logging.getLogger(__name__)


class MetricsExporter:
    """The result counter, the collector and the HTTP server of ``metrics:``."""

    def __init__(self, config: MetricsConfig, version: str) -> None:
        self._version = version
        self.counter = ResultCounter()
        self.collector = AgentCollector()
        self.server = MetricsServer(config, self.collector)
        self.running = False

    def start(self) -> None:
        """Listen; a taken port is logged and the agent runs on without the endpoint."""
        try:
            self.server.start()
        except TelemetryError as err:
            logger.error("%s; running without the metrics endpoint", err)
            return
        self.running = True

    def observe(self, result: Result) -> None:
        self.counter.observe(
            result.camera, result.model, result.latency_ms / 1000, result.engine_ms / 1000
        )

    def report(
        self,
        payload: Mapping[str, Any],
        board: BoardInfo | None,
        nvpmodel_mode: str | None,
        engine: Mapping[str, Any],
    ) -> None:
        """Serve ``payload`` (one telemetry report) from now on."""
        info = AgentInfo(
            board=(board.slug or board.model) if board is not None else "",
            l4t=(board.l4t_release or "") if board is not None else "",
            nvpmodel_mode=nvpmodel_mode or "",
            profile=str(payload.get("profile") or ""),
            model=str(engine.get("model") or ""),
            precision=str(engine.get("precision") or ""),
            provider=str(engine.get("provider") or ""),
            version=self._version,
        )
        self.collector.update(payload, self.counter.snapshot(), info)

    def stop(self) -> None:
        if self.running:
            self.server.stop()

    def join(self, timeout_s: float) -> None:
        self.server.join(timeout_s)
