"""The Prometheus endpoint: the agent's last telemetry report, served by prometheus-client.

A scrape reads memory only. The collector holds the latest telemetry payload (the one the
Reporter just published over MQTT), the per-camera result counters and latency histograms as
they stood at that report, and the info labels; it has no root and no hardware handle, so a
scrape can cost no extra sysfs read or ``nvpmodel`` run. Every figure in one scrape belongs to
the same reporting window, the window the MQTT telemetry message of the same
``edge_agent_report_timestamp_seconds`` describes.

Names follow the Prometheus conventions (base units in the name, ``_total`` on counters):
https://prometheus.io/docs/practices/naming/
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector, CollectorRegistry

from edge_agent.config_sections import MetricsConfig
from edge_agent.errors import TelemetryError

logger = logging.getLogger(__name__)

# Seconds; covers a 1 ms TensorRT batch-1 result up to a 10 s stall.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CLOCK_UNITS = {"_hz": 1.0, "_khz": 1e3, "_mhz": 1e6}

# Every family the collector can yield (the Grafana dashboard test checks against this).
METRIC_NAMES = (
    "edge_agent_info",
    "edge_agent_report_timestamp_seconds",
    "edge_agent_report_window_seconds",
    "edge_agent_rail_power_watts",
    "edge_agent_board_power_watts",
    "edge_agent_energy_joules_total",
    "edge_agent_inferences_per_joule",
    "edge_agent_inferences_total",
    "edge_agent_inference_latency_seconds",
    "edge_agent_engine_seconds",
    "edge_agent_frames_dropped_total",
    "edge_agent_outbox_depth",
    "edge_agent_clock_hz",
    "edge_agent_temperature_celsius",
    "edge_agent_load_ratio",
    "edge_agent_governor_info",
    "edge_agent_governor_point_hz",
)
# The caps of the governor's operating point, by the unit the telemetry gives them in.
POINT_CAPS = (("gpu", "gpu_hz", 1.0), ("emc", "emc_hz", 1.0), ("cpu", "cpu_khz", 1e3))


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """The labels of ``edge_agent_info``; unknown values are empty strings."""

    board: str = ""
    l4t: str = ""
    nvpmodel_mode: str = ""
    profile: str = ""
    model: str = ""
    precision: str = ""
    provider: str = ""
    version: str = ""

    def labels(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class Histogram:
    """Cumulative bucket counts and a sum, in seconds."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    total_s: float = 0.0

    def observe(self, value_s: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS_S, value_s)] += 1
        self.total_s += value_s

    def copy(self) -> Histogram:
        return Histogram(list(self.counts), self.total_s)

    def buckets(self) -> list[tuple[str, float]]:
        """``(le, cumulative count)`` pairs ending with ``+Inf``, as prometheus-client wants."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*LATENCY_BUCKETS_S, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
        return out


@dataclass(frozen=True, slots=True)
class ResultCounts:
    """Results by ``(camera, model)``, and the latency and engine-time histograms."""

    by_camera: dict[tuple[str, str], int]
    latency: Histogram
    engine: Histogram


class ResultCounter:
    """Counts results as they arrive (memory only); ``snapshot`` freezes them for a report."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_camera: dict[tuple[str, str], int] = {}
        self._latency = Histogram()
        self._engine = Histogram()

    def observe(self, camera: str, model: str, latency_s: float, engine_s: float) -> None:
        with self._lock:
            key = (camera, model)
            self._by_camera[key] = self._by_camera.get(key, 0) + 1
            self._latency.observe(latency_s)
            self._engine.observe(engine_s)

    def snapshot(self) -> ResultCounts:
        with self._lock:
            return ResultCounts(dict(self._by_camera), self._latency.copy(), self._engine.copy())


class AgentCollector(Collector):
    """Serves the last report; ``update`` is called by the agent after each telemetry step."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._telemetry: Mapping[str, Any] | None = None
        self._counts: ResultCounts | None = None
        self._info = AgentInfo()
        self._energy_total_j = 0.0

    def update(self, telemetry: Mapping[str, Any], counts: ResultCounts, info: AgentInfo) -> None:
        """Take one telemetry payload; its window's energy adds to the running total.

        Reporting windows are back to back (each starts where the previous ended), so the sum
        of their energies is the energy since the first report began.
        """
        with self._lock:
            self._telemetry = telemetry
            self._counts = counts
            self._info = info
            energy = telemetry.get("energy_j")
            if energy is not None:
                self._energy_total_j += float(energy)

    def describe(self) -> Iterable[Metric]:
        # No families up front: registering must not trigger a collect.
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            telemetry, counts, info = self._telemetry, self._counts, self._info
            energy_total = self._energy_total_j
        info_family = InfoMetricFamily("edge_agent", "Board, release, profile and engine")
        info_family.add_metric([], info.labels())
        yield info_family
        if telemetry is None or counts is None:
            return  # nothing reported yet: only the info, no made-up zeros
        yield from _report_families(telemetry, energy_total)
        yield from _result_families(counts)
        yield from _board_families(telemetry)
        yield from _governor_families(telemetry)


def _gauge(name: str, doc: str, value: Any) -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, doc, value=float(value))


def _report_families(telemetry: Mapping[str, Any], energy_total_j: float) -> Iterator[Metric]:
    power = telemetry.get("power") or {}
    outbox = telemetry.get("outbox") or {}
    yield from _gauge(
        "edge_agent_report_timestamp_seconds", "Wall time of the report served", telemetry["ts"]
    )
    yield from _gauge(
        "edge_agent_report_window_seconds",
        "Length of the report's window",
        telemetry.get("window_s"),
    )
    yield from _gauge(
        "edge_agent_board_power_watts",
        "Board input power, mean over the report window",
        power.get("total_w"),
    )
    rails = GaugeMetricFamily(
        "edge_agent_rail_power_watts", "Power of each INA3221 rail, last sample", labels=["rail"]
    )
    for name, rail in sorted((power.get("rails") or {}).items()):
        rails.add_metric([name], float(rail["w"]))
    yield rails
    if telemetry.get("energy_j") is not None:
        yield CounterMetricFamily(
            "edge_agent_energy_joules",
            "Board energy since the first report (sum of the report windows)",
            value=energy_total_j,
        )
    yield from _gauge(
        "edge_agent_inferences_per_joule",
        "Inferences per joule over the report window (MLPerf efficiency)",
        telemetry.get("perf_per_watt"),
    )
    yield from _gauge(
        "edge_agent_outbox_depth", "Messages waiting in the outbox", outbox.get("depth")
    )
    dropped = CounterMetricFamily(
        "edge_agent_frames_dropped",
        "Frames dropped before inference",
        labels=["camera", "reason"],
    )
    for key, count in sorted((telemetry.get("drops") or {}).items()):
        parts = key.split(".")
        if parts[0] != "camera" or len(parts) < 2:
            continue  # "batcher" is the sum of the per-camera queue drops
        reason = "decode_error" if parts[-1] == "decode_errors" else "queue_full"
        dropped.add_metric([parts[1], reason], float(count))
    yield dropped


def _result_families(counts: ResultCounts) -> Iterator[Metric]:
    inferences = CounterMetricFamily(
        "edge_agent_inferences", "Results produced since start", labels=["camera", "model"]
    )
    for (camera, model), count in sorted(counts.by_camera.items()):
        inferences.add_metric([camera, model], float(count))
    yield inferences
    for name, doc, hist in (
        ("edge_agent_inference_latency_seconds", "Capture to result", counts.latency),
        ("edge_agent_engine_seconds", "Engine time of each result's batch", counts.engine),
    ):
        yield HistogramMetricFamily(name, doc, buckets=hist.buckets(), sum_value=hist.total_s)


def _board_families(telemetry: Mapping[str, Any]) -> Iterator[Metric]:
    clocks = GaugeMetricFamily(
        "edge_agent_clock_hz", "Clock frequencies (current, or *_max caps)", labels=["domain"]
    )
    for key, value in sorted((telemetry.get("clocks") or {}).items()):
        for suffix, scale in CLOCK_UNITS.items():
            if key.endswith(suffix) and isinstance(value, (int, float)):
                clocks.add_metric([key.removesuffix(suffix)], float(value) * scale)
                break
    yield clocks
    temps = GaugeMetricFamily(
        "edge_agent_temperature_celsius", "Thermal zone temperatures", labels=["zone"]
    )
    for zone, value in sorted((telemetry.get("temps") or {}).items()):
        if value is not None:
            temps.add_metric([zone], float(value))
    yield temps
    loads = GaugeMetricFamily("edge_agent_load_ratio", "Busy fraction 0..1", labels=["unit"])
    for unit, value in sorted((telemetry.get("loads") or {}).items()):
        if value is not None:
            loads.add_metric([unit], float(value))
    yield loads


def _governor_families(telemetry: Mapping[str, Any]) -> Iterator[Metric]:
    governor = telemetry.get("governor")
    if not governor:
        return
    point = governor.get("point") or {}
    info = InfoMetricFamily(
        "edge_agent_governor", "Governor policy in force, who set it, the point it holds"
    )
    info.add_metric(
        [],
        {
            "policy": str(governor.get("policy") or ""),
            "set_by": str(governor.get("set_by") or ""),
            "preset": str(governor.get("preset") or ""),
            "point": str(point.get("label") or ""),
        },
    )
    yield info
    caps = GaugeMetricFamily(
        "edge_agent_governor_point_hz",
        "Clock caps of the governor's operating point (none while no governor runs)",
        labels=["domain"],
    )
    for domain, key, scale in POINT_CAPS:
        if isinstance(point.get(key), (int, float)):
            caps.add_metric([domain], float(point[key]) * scale)
    yield caps


class MetricsServer:
    """The HTTP endpoint (prometheus-client's own WSGI server) on its own thread."""

    def __init__(self, config: MetricsConfig, collector: AgentCollector) -> None:
        self._config = config
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when the config asked for 0)."""
        return int(self._server.server_port) if self._server is not None else self._config.port

    def start(self) -> None:
        """Listen on ``bind:port``.

        Raises:
            TelemetryError: the address is taken or cannot be bound.
        """
        try:
            self._server, self._thread = start_http_server(
                self._config.port, addr=self._config.bind, registry=self.registry
            )
        except OSError as err:
            raise TelemetryError(
                f"metrics endpoint {self._config.bind}:{self._config.port}: {err.strerror}"
            ) from err
        self._thread.name = "metrics-http"
        logger.info("metrics on http://%s:%d/metrics", self._config.bind, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def join(self, timeout_s: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)
