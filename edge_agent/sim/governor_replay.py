"""A discrete-event replay of the inference pipeline on a simulated board, in simulated time.

Frames arrive from one camera at the trace's rate; a single engine takes every waiting frame (up
to ``max_batch``) when it is free; a bounded queue drops the oldest frame when full. Batch time
comes from :mod:`edge_agent.sim.dvfs_model` (GPU and EMC clocks) with a small seeded jitter,
board power from :mod:`edge_agent.sim.power_model` (the input rail, busy and idle), and a
controller sees one :class:`MetricsWindow` per simulated second and names the next operating
point, which lands after the clock-change delay. Nothing sleeps: a 2-minute trace replays in well
under a second. Every number it produces is simulated.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from edge_agent.governor.points import OperatingPoint
from edge_agent.governor.window import MetricsWindow
from edge_agent.sim.boards import BoardSpec
from edge_agent.sim.dvfs_model import batch_latency_s, change_delay_s
from edge_agent.sim.perf_model import gpu_activity
from edge_agent.sim.power_model import ClockState, part_powers_mw, rail_powers_mw
from edge_agent.sim.thermal_model import ThermalModel

ENGINE_JITTER = 0.03  # sigma of the lognormal jitter on batch time (a tail, as real runs have)
ARRIVAL_JITTER = 0.1  # camera frame times vary by up to +-10% of the frame interval


@dataclass(frozen=True, slots=True)
class Segment:
    duration_s: float
    fps: float
    network: str


class Controller(Protocol):
    def initial(self) -> OperatingPoint: ...

    def on_window(self, window: MetricsWindow) -> OperatingPoint: ...


@dataclass
class WindowRecord:
    segment: int
    window: MetricsWindow
    met: bool


@dataclass
class ReplayResult:
    energy_j: float = 0.0
    inferences: int = 0
    drops: int = 0
    latencies_s: list[float] = field(default_factory=list)
    windows: list[WindowRecord] = field(default_factory=list)
    switches: list[tuple[float, int, OperatingPoint, OperatingPoint]] = field(default_factory=list)
    throttled_windows: int = 0

    @property
    def energy_per_inference_j(self) -> float:
        return self.energy_j / max(1, self.inferences)

    @property
    def p99_s(self) -> float:
        return float(np.percentile(self.latencies_s, 99)) if self.latencies_s else 0.0

    def switches_in(self, segment: int) -> int:
        return sum(1 for s in self.switches if s[1] == segment)


def input_rail_w(spec: BoardSpec, state: ClockState, busy: float) -> float:
    """Board watts: the input rail, or the sum of the rails on a board without one."""
    return _input_w(spec, state, round(busy, 4))


@functools.lru_cache(maxsize=4096)
def _input_w(spec: BoardSpec, state: ClockState, busy: float) -> float:
    rails = rail_powers_mw(spec, state, busy)
    inputs = [r.name for r in spec.rails if "input" in r.parts]
    return (rails[inputs[0]] if inputs else sum(rails.values())) / 1000.0


def gpu_w(spec: BoardSpec, state: ClockState, busy: float) -> float:
    return _gpu_w(spec, state, round(busy, 4))


@functools.lru_cache(maxsize=4096)
def _gpu_w(spec: BoardSpec, state: ClockState, busy: float) -> float:
    return part_powers_mw(spec, state, busy)["gpu"] / 1000.0


@dataclass
class _Frame:
    arrival_s: float


def replay(
    spec: BoardSpec,
    segments: Sequence[Segment],
    controller: Controller,
    clock_state: Callable[[OperatingPoint], ClockState],
    slo_s: float,
    *,
    max_batch: int = 4,
    queue_cap: int = 8,
    seed: int = 0,
    thermal: ThermalModel | None = None,
) -> ReplayResult:
    """Replay ``segments`` under ``controller``; windows are 1 s of simulated time.

    With ``thermal``, the GPU zone warms with the GPU's power, each window reports it, and the
    board's own throttling caps the GPU clock while the zone is past its trip.
    """
    rng = random.Random(seed)  # noqa: S311 - simulation jitter, not security
    out = ReplayResult()
    timeline: list[tuple[float, OperatingPoint]] = [(0.0, controller.initial())]
    arrivals: list[tuple[float, int]] = []
    t0 = 0.0
    for index, seg in enumerate(segments):
        n = int(seg.duration_s * seg.fps)
        for k in range(n):
            jitter = rng.uniform(-ARRIVAL_JITTER, ARRIVAL_JITTER) / seg.fps
            arrivals.append((max(t0, t0 + (k + 0.5) / seg.fps + jitter), index))
        t0 += seg.duration_s
    arrivals.sort()
    end_s = t0
    bounds = np.cumsum([0.0] + [s.duration_s for s in segments])

    def seg_at(t: float) -> int:
        return min(len(segments) - 1, int(np.searchsorted(bounds, t, side="right")) - 1)

    def point_at(t: float) -> OperatingPoint:
        current = timeline[0][1]
        for since, point in timeline:
            if since <= t:
                current = point
        return current

    queue: deque[_Frame] = deque()
    engine_free = 0.0
    done: list[tuple[float, float]] = []  # (completion, latency)
    # (start, end, size, extra board watts, extra GPU watts)
    batches: list[tuple[float, float, int, float, float]] = []
    win = {"arrivals": 0, "drops": 0}

    def run_engine(until: float) -> None:
        nonlocal engine_free
        while queue:
            start = max(engine_free, queue[0].arrival_s)
            if start >= until:
                return
            size = 0
            while queue and size < max_batch and queue[0].arrival_s <= start:
                frame = queue.popleft()
                size += 1
                done.append((float("nan"), frame.arrival_s))
            point, network = point_at(start), segments[seg_at(start)].network
            limit = thermal.gpu_limit_hz() if thermal is not None else None
            if limit is not None and point.gpu_hz > limit:
                point = dataclasses.replace(point, gpu_hz=limit)  # the board throttles
            state = dataclasses.replace(clock_state(point), gpu_max_hz=point.gpu_hz)
            dt = batch_latency_s(network, size, point.gpu_hz, point.emc_hz, spec)
            dt *= rng.lognormvariate(0.0, ENGINE_JITTER)
            act = gpu_activity(network, size, point.gpu_hz, spec)
            extra = input_rail_w(spec, state, act) - input_rail_w(spec, state, 0.0)
            extra_gpu = gpu_w(spec, state, act) - gpu_w(spec, state, 0.0)
            for i in range(len(done) - size, len(done)):
                done[i] = (start + dt, start + dt - done[i][1])
            batches.append((start, start + dt, size, extra, extra_gpu))
            engine_free = start + dt

    def close_window(w_start: float, w_end: float) -> None:
        run_engine(w_end)
        point = point_at(w_end - 1e-9)
        # Energy: idle power of the states in force, plus each batch's extra while it runs.
        energy = gpu_j = 0.0
        edges = [w_start] + [t for t, _ in timeline if w_start < t < w_end] + [w_end]
        for a, b in itertools.pairwise(edges):
            energy += input_rail_w(spec, clock_state(point_at(a)), 0.0) * (b - a)
            gpu_j += gpu_w(spec, clock_state(point_at(a)), 0.0) * (b - a)
        in_win = [bt for bt in batches if bt[1] > w_start and bt[0] < w_end]
        for s, e, _size, extra, extra_gpu in in_win:
            overlap = min(e, w_end) - max(s, w_start)
            energy += extra * overlap
            gpu_j += extra_gpu * overlap
        temps: dict[str, float] = {}
        if thermal is not None:
            temps["gpu"] = thermal.step(gpu_j / (w_end - w_start), w_end - w_start)
            out.throttled_windows += thermal.throttled
        lat = [d for c, d in done if w_start <= c < w_end]
        started = [bt for bt in batches if w_start <= bt[0] < w_end]
        index = seg_at(w_start)
        window = MetricsWindow(
            start_s=w_start,
            end_s=w_end,
            point=point,
            model=segments[index].network,
            input_fps=win["arrivals"] / (w_end - w_start),
            inferences=len(lat),
            drops=win["drops"],
            latency_p50_s=float(np.percentile(lat, 50)) if lat else 0.0,
            latency_p95_s=float(np.percentile(lat, 95)) if lat else 0.0,
            latency_p99_s=float(np.percentile(lat, 99)) if lat else 0.0,
            engine_s_per_batch=float(np.mean([b[1] - b[0] for b in started])) if started else 0,
            mean_batch=float(np.mean([b[2] for b in started])) if started else 1.0,
            board_w=energy / (w_end - w_start),
            queue_depth=len(queue),
            temps_c=temps,
        )
        met = bool(lat) and window.latency_p99_s <= slo_s and window.drops == 0
        out.windows.append(WindowRecord(index, window, met))
        out.energy_j += energy
        out.inferences += len(lat)
        out.drops += window.drops
        out.latencies_s.extend(lat)
        nxt = controller.on_window(window)
        if nxt.key != point.key:
            changed = {
                name
                for name, a, b in (
                    ("gpu", nxt.gpu_hz, point.gpu_hz),
                    ("emc", nxt.emc_hz, point.emc_hz),
                    ("cpu", nxt.cpu_khz, point.cpu_khz),
                )
                if a != b
            }
            timeline.append((w_end + change_delay_s(changed), nxt))
            out.switches.append((w_end, seg_at(w_end), point, nxt))
        win["arrivals"] = win["drops"] = 0
        # Old batches and completions no longer matter to later windows.
        batches[:] = [bt for bt in batches if bt[1] > w_end]
        done[:] = [d for d in done if d[0] >= w_end]

    w_start = 0.0
    for arrival_s, _index in arrivals:
        while arrival_s >= w_start + 1.0:
            close_window(w_start, w_start + 1.0)
            w_start += 1.0
        run_engine(arrival_s)
        queue.append(_Frame(arrival_s))
        win["arrivals"] += 1
        if len(queue) > queue_cap:
            queue.popleft()
            win["drops"] += 1
    while w_start + 1.0 <= end_s + 1e-9:
        close_window(w_start, w_start + 1.0)
        w_start += 1.0
    return out
