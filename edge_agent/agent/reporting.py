"""Telemetry every ``interval_s``, per-result payloads and the run summary.

perf/W and mJ per inference come from the energy ledger over exactly the reporting window
(MLPerf: efficiency = inferences / joules; mJ/inference = avg W x seconds x 1000 / count).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge_agent.agent.periodic import PeriodicThread
from edge_agent.agent.result_stats import StatsSnapshot
from edge_agent.clock import Clock
from edge_agent.config import TelemetryConfig
from edge_agent.errors import HardwareError
from edge_agent.hardware.clocks import find_gpu_devfreq, list_cpus, read_gpu
from edge_agent.hardware.thermal import read_thermal_zones
from edge_agent.telemetry.payloads import result_payload, telemetry_payload

if TYPE_CHECKING:
    from edge_agent.agent.result_stats import ResultStats
    from edge_agent.hardware.root import Root
    from edge_agent.pipeline.result import Result
    from edge_agent.pipeline.runner import Pipeline
    from edge_agent.power.ledger import EnergyLedger
    from edge_agent.power.sampler import Sampler
    from edge_agent.telemetry.publisher import Publisher


@dataclass(frozen=True)
class ReportInputs:
    """The collaborators the reporter reads, handed over one by one (never the whole agent).

    The pipeline is replaced on reload and the profile is re-read from the board, so both are
    callables asked at each use.
    """

    stats: ResultStats
    ledger: EnergyLedger | None
    sampler: Sampler | None
    publisher: Publisher | None
    root: Root
    busy_fraction_at: Callable[[float, float], float]
    pipeline: Callable[[], Pipeline | None]
    profile: Callable[[], str | None]
    profile_error: str | None
    monitor_reason: str
    config_version: Callable[[], Mapping[str, int] | None] = lambda: None
    extra_events: Callable[[], list[str]] = lambda: []  # e.g. the governor's changes
    governor: Callable[[], Mapping[str, Any] | None] = lambda: None  # policy and point in force


logger = logging.getLogger(__name__)

FIRST_REPORT_S = 1.0


class Reporter:
    """Publishes telemetry on its own thread and prices each result in energy."""

    def __init__(
        self,
        inputs: ReportInputs,
        config: TelemetryConfig,
        clock: Clock,
        *,
        on_report: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._in = inputs
        self._on_report = on_report
        self._config = config
        self._clock = clock
        self._interval_s = config.interval_s
        self._steps = 0
        self._thread = PeriodicThread("reporter", self._next_interval, self.step, clock)
        self._lock = threading.Lock()
        self._last_mono = clock.monotonic()
        self._last_results = 0
        self._profile: str | None = inputs.profile()
        self._batch_mj: float | None = None
        self.last_telemetry: dict[str, Any] | None = None

    # -- thread ----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def _next_interval(self) -> float:
        # The first report comes after at most a second, so a person watching (live view,
        # systemd STATUS) sees watts and perf/W at once, not after a whole interval.
        return min(FIRST_REPORT_S, self._interval_s) if self._steps == 0 else self._interval_s

    def set_interval(self, interval_s: float) -> None:
        self._interval_s = interval_s

    def note_profile(self, profile: str | None) -> None:
        """A profile was just applied: label results with it now, not at the next telemetry."""
        self._profile = profile

    # -- per batch / per result ------------------------------------------------------------
    def record_batch(self, start: float, end: float, count: int) -> None:
        """Price a finished batch; its results carry the per-result share (an estimate)."""
        ledger = self._in.ledger
        share = None
        if ledger is not None and count > 0:
            share = ledger.batch_energy(start, end, count).per_result_mj
        with self._lock:
            self._batch_mj = share

    def result_payload(self, result: Result) -> dict[str, Any]:
        """The MQTT result body; ``batch_energy_share_mj`` is an estimate (see payloads)."""

        with self._lock:
            share = self._batch_mj
        return result_payload(
            ts=self._clock.wall(),
            camera=result.camera,
            frame=result.frame,
            captured_at=result.captured_at,
            latency_ms=round(result.latency_ms, 3),
            engine_ms=round(result.engine_ms, 3),
            model=result.model,
            precision=result.precision,
            profile=self._profile,
            outputs=result.outputs,
            queue_ms=round(result.queue_ms, 3),
            batch_size=result.batch_size,
            provider=result.provider,
            truth=result.truth,
            batch_energy_share_mj=None if share is None else round(share, 4),
        )

    # -- telemetry -------------------------------------------------------------------------
    def step(self, now: float) -> dict[str, Any]:
        """Build and publish one telemetry message for the window since the last one."""

        inputs = self._in
        pipeline = inputs.pipeline()
        self._steps += 1
        self._profile = inputs.profile()
        snap = inputs.stats.snapshot()
        with self._lock:
            start, results_before = self._last_mono, self._last_results
            self._last_mono, self._last_results = now, snap.results
        inferences = snap.results - results_before
        energy = self._energy(start, now, inferences)
        pipeline_stats: dict[str, Any] = pipeline.stats() if pipeline is not None else {}
        outbox = inputs.publisher.stats() if inputs.publisher is not None else None
        events = inputs.sampler.drain_events() if inputs.sampler is not None else []
        power = energy["power"]
        payload = telemetry_payload(
            ts=self._clock.wall(),
            profile=self._profile,
            total_w=None if power is None else power["total_w"],
            rails=None if power is None else power["rails"],
            energy_j=energy["energy_j"],
            perf_per_watt=energy["perf_per_watt"],
            mj_per_inference=energy["mj_per_inference"],
            fps=round(inferences / (now - start), 3) if now > start else 0.0,
            latency_ms=_percentiles(snap),
            clocks=self._clocks(),
            temps=self._temps(),
            loads=self._loads(),
            queues=_queues(pipeline_stats),
            drops=_drops(pipeline_stats),
            outbox_depth=0 if outbox is None else outbox.depth,
            outbox_dropped=0 if outbox is None else outbox.dropped,
            outbox_lost=0 if outbox is None else outbox.lost,
            outbox_errors=0 if outbox is None else outbox.errors,
            outbox_detail=None if outbox is None else outbox.telemetry_detail(),
            events=[_event_text(e) for e in events] + inputs.extra_events() + self._notes(),
            window_s=round(now - start, 3),
            total_name=energy["total_name"],
            results=snap.results,
            profile_error=inputs.profile_error,
            engine=_engine(pipeline),
            config_version=inputs.config_version(),
            governor=inputs.governor(),
        )
        self.last_telemetry = payload
        if inputs.publisher is not None:
            inputs.publisher.publish_telemetry(payload)
        if self._on_report is not None:
            self._on_report(payload)
        return payload

    def publish_final(self) -> None:
        self.step(self._clock.monotonic())

    def _energy(self, start: float, end: float, inferences: int) -> dict[str, Any]:
        """Board energy over exactly ``[start, end]`` and the MLPerf efficiency figures."""
        ledger = self._in.ledger
        empty: dict[str, Any] = {
            "power": None,
            "energy_j": None,
            "perf_per_watt": None,
            "mj_per_inference": None,
            "total_name": None,
        }
        if ledger is None or end <= start:
            return empty
        window = ledger.window(start, end)
        if window.no_data or window.energy_j is None or window.avg_w is None:
            return empty
        rails: dict[str, tuple[float | None, float | None, float]] = {}
        latest = self._in.sampler.latest() if self._in.sampler is not None else None
        if latest is not None and self._config.include_rails:
            for rail in latest.rails:
                if rail.name in latest.offline:
                    continue
                rails[rail.name] = (
                    None if rail.voltage_mv is None else round(rail.voltage_mv / 1000, 3),
                    None if rail.current_ma is None else round(rail.current_ma / 1000, 4),
                    round(rail.power_mw / 1000, 4),
                )
        metrics = ledger.metrics(window, inferences)
        return {
            "power": {"total_w": round(window.avg_w, 4), "rails": rails},
            "energy_j": round(window.energy_j, 6),
            "perf_per_watt": _round(metrics.inferences_per_j, 4) if inferences else None,
            "mj_per_inference": _round(metrics.mj_per_inference, 4) if inferences else None,
            "total_name": window.total_name,
        }

    def _clocks(self) -> dict[str, float]:
        """Current clocks, units in the names: ``gpu_hz``, ``gpu_max_hz``, ``cpuN_max_khz``."""

        root = self._in.root
        out: dict[str, float] = {}
        try:
            dev = find_gpu_devfreq(root)
            if dev is not None:
                gpu = read_gpu(root, dev)
                out["gpu_hz"] = gpu.cur_hz
                out["gpu_max_hz"] = gpu.max_hz
            for cpu in list_cpus(root):
                if cpu.online and cpu.max_khz is not None:
                    out[f"cpu{cpu.index}_max_khz"] = cpu.max_khz
        except HardwareError as err:
            logger.debug("clocks unreadable: %s", err)
        return out

    def _loads(self) -> dict[str, float]:
        """Busy fractions 0..1: the GPU (devfreq ``load``) and the engine."""

        out: dict[str, float] = {}
        try:
            dev = find_gpu_devfreq(self._in.root)
            load = None if dev is None else read_gpu(self._in.root, dev).load_permille
        except HardwareError:
            load = None
        if load is not None:
            out["gpu"] = round(load / 1000, 3)
        now = self._clock.monotonic()
        out["engine"] = round(self._in.busy_fraction_at(now, self._interval_s), 3)
        return out

    def _temps(self) -> dict[str, float]:
        """Online thermal zones in degrees C (offline zones are left out, not zero)."""

        return {
            z.name: z.temp_c
            for z in read_thermal_zones(self._in.root)
            if z.online and z.temp_c is not None
        }

    def _notes(self) -> list[str]:
        notes = []
        if self._in.profile_error:
            notes.append(f"profile: {self._in.profile_error}")
        if self._in.publisher is not None:
            notes.extend(self._in.publisher.outbox.drain_events())
        return notes


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _event_text(event: Any) -> str:
    data = event.to_dict() if hasattr(event, "to_dict") else dict(event)
    verb = "recovered to" if data.get("recovered") else "crossed"
    return (
        f"rail {data.get('rail')} {verb} {data.get('level')} "
        f"({data.get('current_ma')} mA, limit {data.get('limit_ma')} mA)"
    )


def _percentiles(snap: StatsSnapshot) -> tuple[float, float, float] | None:
    p50, p95, p99 = snap.latency_p50_ms, snap.latency_p95_ms, snap.latency_p99_ms
    if p50 is None or p95 is None or p99 is None:
        return None
    return (p50, p95, p99)


def _engine(pipeline: Pipeline | None) -> dict[str, Any] | None:
    if pipeline is None:
        return None
    info = pipeline.engine_info()
    keys = ("provider", "state", "state_elapsed_s", "model", "error")
    out = {key: info.get(key) for key in keys}
    if out["state_elapsed_s"] is not None:
        out["state_elapsed_s"] = round(float(out["state_elapsed_s"]), 3)
    return out


def _queues(stats: dict[str, Any]) -> dict[str, int]:
    return {"batcher": int(stats.get("queue_depth", 0))}


def _drops(stats: dict[str, Any]) -> dict[str, int]:
    drops = {"batcher": int(stats.get("drops", 0))}
    for name, cam in stats.get("cameras", {}).items():
        drops[f"camera.{name}"] = int(cam.get("dropped", 0))
        drops[f"camera.{name}.decode_errors"] = int(cam.get("decode_errors", 0))
    return drops


def total_dropped(stats: dict[str, Any]) -> int:
    """Frames the pipeline dropped: camera slots overwritten plus batcher drops."""
    return sum(v for k, v in _drops(stats).items() if not k.endswith(".decode_errors"))


def build_summary(inputs: ReportInputs, outbox: dict[str, Any] | None) -> dict[str, Any]:
    """The run summary printed at exit (``--json``: one object on the last stdout line).

    Every rate is over one measured window, the first result to the last: ``duration_s``
    is that window, ``fps`` = (results - 1) / duration_s (the intervals between results),
    and the watts and energy are integrated over the same window, so
    ``perf_per_watt`` = fps / avg_w and ``mj_per_inference`` = avg_w / fps x 1000. Start-up
    (model load, warm-up) and shutdown are outside it; ``run_s`` is the whole run.
    """
    snap = inputs.stats.snapshot()
    pipeline = inputs.pipeline()
    info = pipeline.engine_info() if pipeline is not None else {}
    pipeline_stats = pipeline.stats() if pipeline is not None else {}
    # MLPerf: power only inside the measured window, here the first to the last result, so
    # model loading and shutdown are not charged to inference.
    avg_w = energy_j = dynamic_mj = None
    inferences = max(0, snap.results - 1)
    first, last = snap.first_result_mono, snap.last_result_mono
    if inputs.ledger is not None and first is not None and last is not None and last > first:
        window = inputs.ledger.window(first, last)
        if not window.no_data:
            avg_w, energy_j = window.avg_w, window.energy_j
            if window.dynamic_energy_j is not None and inferences:
                dynamic_mj = window.dynamic_energy_j * 1000 / inferences
    perf_per_watt = inferences / energy_j if energy_j and inferences else None
    mj = energy_j * 1000 / inferences if energy_j is not None and inferences else None
    return {
        "results": snap.results,
        "duration_s": round(last - first, 3) if first is not None and last is not None else 0.0,
        "run_s": round(snap.elapsed_s, 3),
        "fps": round(snap.fps, 3),
        "latency_ms": snap.latency_dict(),
        "avg_w": None if avg_w is None else round(avg_w, 4),
        "energy_j": None if energy_j is None else round(energy_j, 4),
        "perf_per_watt": None if perf_per_watt is None else round(perf_per_watt, 4),
        "mj_per_inference": None if mj is None else round(mj, 4),
        "dynamic_mj_per_inference": None if dynamic_mj is None else round(dynamic_mj, 4),
        "dropped": total_dropped(pipeline_stats),
        "profile": inputs.profile(),
        "provider": info.get("provider"),
        "model": info.get("model"),
        "accuracy": None if snap.accuracy is None else round(snap.accuracy, 4),
        "power_source": inputs.monitor_reason,
        "outbox": outbox,
    }
