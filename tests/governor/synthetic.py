"""A synthetic board for governor tests: known latency and power per point, windows from them."""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.governor.decide import queue_factor
from edge_agent.governor.points import FrequencyTables, OperatingPoint, build_points
from edge_agent.governor.window import MetricsWindow

TABLES = FrequencyTables(
    gpu_hz=(306000000, 510000000, 624750000, 828750000, 1020000000),
    emc_hz=(2133000000, 3199000000),
    cpu_khz=(960000, 1344000, 1728000),
)
PRESETS = {"maxq": (306000000, 2133000000, 960000), "maxn": (1020000000, 3199000000, 1728000)}
POINTS = build_points(TABLES, PRESETS)


@dataclass(frozen=True)
class Truth:
    """Engine seconds per inference: a/g + b/e + c; board watts: idle + u * busy(g, e, c)."""

    a: float = 4e-3  # s * GHz
    b: float = 1.5e-3
    c: float = 0.3e-3
    idle_w: float = 4.0
    scale: float = 1.0  # the model change multiplies the engine time

    def engine_s(self, p: OperatingPoint) -> float:
        return self.scale * (self.a * 1e9 / p.gpu_hz + self.b * 1e9 / p.emc_hz + self.c)

    def board_w(self, p: OperatingPoint, util: float) -> float:
        g, e, c = p.gpu_hz / 1.02e9, p.emc_hz / 3.199e9, p.cpu_khz / 1.728e6
        return self.idle_w + 0.6 * e + util * (2.0 + 6.0 * g**3 + 1.0 * e + 1.5 * c)

    def energy_j(self, p: OperatingPoint, fps: float) -> float:
        return self.board_w(p, min(1.0, fps * self.engine_s(p))) / fps

    def p99_s(self, p: OperatingPoint, fps: float) -> float:
        util = fps * self.engine_s(p)
        return self.engine_s(p) * 1.3 * queue_factor(util)

    def window(
        self,
        p: OperatingPoint,
        fps: float,
        start_s: float,
        model: str = "resnet50",
        temps_c: dict[str, float] | None = None,
    ) -> MetricsWindow:
        util = fps * self.engine_s(p)
        served = min(fps, 1.0 / self.engine_s(p))
        drops = round(fps - served) if util > 0.95 else 0
        return MetricsWindow(
            start_s=start_s,
            end_s=start_s + 1.0,
            point=p,
            model=model,
            input_fps=fps,
            inferences=round(served),
            drops=drops,
            latency_p50_s=self.engine_s(p),
            latency_p95_s=self.p99_s(p, fps) * 0.95,
            latency_p99_s=self.p99_s(p, fps),
            engine_s_per_batch=self.engine_s(p),
            mean_batch=1.0,
            board_w=self.board_w(p, min(util, 1.0)),
            temps_c=temps_c or {"gpu": 50.0},
        )
