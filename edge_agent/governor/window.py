"""The metrics window a decision reads: what the pipeline and the power monitor measured."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_agent.governor.points import OperatingPoint


@dataclass(frozen=True, slots=True)
class MetricsWindow:
    """One reporting window (typically 1 s) measured at one operating point.

    Attributes:
        start_s, end_s: the window, on the agent's monotonic clock.
        point: the operating point in force for the whole window.
        model: the model (and precision) being served; a change re-explores.
        cameras: the camera set; a change re-explores.
        input_fps: frames offered by the cameras (served + dropped) per second.
        inferences: results produced in the window.
        drops: frames dropped for lack of throughput (slot overwrites, full queues).
        queue_depth: frames waiting at the window's end.
        latency_p50_s, latency_p95_s, latency_p99_s: capture-to-result latency.
        engine_s_per_batch: mean engine time of one batch; ``mean_batch`` its mean size.
        board_w: mean board (input rail) power; ``rail_w`` per rail.
        temps_c: thermal zone temperatures.
        time_of_day_s: local seconds since midnight (for the ``schedule`` policy).
    """

    start_s: float
    end_s: float
    point: OperatingPoint
    model: str
    input_fps: float
    inferences: int
    drops: int
    latency_p50_s: float
    latency_p95_s: float
    latency_p99_s: float
    engine_s_per_batch: float
    mean_batch: float
    board_w: float
    cameras: tuple[str, ...] = ("cam0",)
    queue_depth: int = 0
    rail_w: dict[str, float] = field(default_factory=dict)
    temps_c: dict[str, float] = field(default_factory=dict)
    time_of_day_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return max(1e-9, self.end_s - self.start_s)

    @property
    def engine_s_per_inference(self) -> float:
        return self.engine_s_per_batch / max(1.0, self.mean_batch)

    @property
    def utilization(self) -> float:
        """Share of the window the engine was busy."""
        batches = self.inferences / max(1.0, self.mean_batch)
        return min(1.0, batches * self.engine_s_per_batch / self.duration_s)

    @property
    def energy_per_inference_j(self) -> float | None:
        if self.inferences <= 0:
            return None
        return self.board_w * self.duration_s / self.inferences

    @property
    def hottest_c(self) -> float | None:
        return max(self.temps_c.values()) if self.temps_c else None
