"""The governor evaluation on simulated boards: fixed presets, the ``slo`` policy, an oracle.

``tools/governor_eval.py`` prints what :func:`evaluate` returns. The operating points are the
simulated board's own tables (GPU devfreq table, the EMC caps its nvpmodel.conf lists plus the
top EMC rate, a few CPU caps), inside the MAXN mode; the presets come from ``power_profiles/``.
The oracle is the best static point of each trace segment, found by replaying the segment at
every point. Everything here is simulated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edge_agent.governor.decide import GovernorState, decide, initial_state
from edge_agent.governor.points import (
    FrequencyTables,
    OperatingPoint,
    build_points,
    cpu_levels,
    floor_entry,
)
from edge_agent.governor.policy import GovernorParams
from edge_agent.governor.window import MetricsWindow
from edge_agent.hardware.nvpmodel import needs_reboot, parse_conf
from edge_agent.power.profiles import ProfileFile, load_profile_files, select_board_file
from edge_agent.sim.boards import BoardSpec
from edge_agent.sim.governor_replay import ReplayResult, Segment, replay
from edge_agent.sim.power_model import ClockState

FIXED = ("maxq", "maxp", "maxn")


@dataclass(frozen=True)
class Board:
    """A simulated board prepared for the evaluation."""

    spec: BoardSpec
    points: tuple[OperatingPoint, ...]
    presets: dict[str, ClockState]
    preset_points: dict[str, OperatingPoint]

    def grid_state(self, point: OperatingPoint) -> ClockState:
        """A preset's own state (its mode's online cores and caps, as the daemon applies it by
        a profile switch); any other point: all cores online (MAXN mode), each cluster capped
        at its table's floor entry. (After a preset the daemon's grid points keep that mode's
        online cores; with all of them online here, the replay errs towards more power.)"""
        if point.preset is not None and point.preset in self.presets:
            return self.presets[point.preset]
        cpu = tuple(
            (len(c.cpus), min(c.freqs_khz), floor_entry(c.freqs_khz, point.cpu_khz))
            for c in self.spec.clusters
        )
        return ClockState(min(self.spec.gpu.freqs_hz), point.gpu_hz, cpu, point.emc_hz)


def _profile_file(spec: BoardSpec) -> ProfileFile:
    conf = parse_conf(spec.conf_text)
    _source, parsed = select_board_file(
        load_profile_files(),
        model=spec.model,
        compatible=spec.compatible,
        conf_modes={m.name for m in conf.modes},
    )
    return parsed


def emc_table(spec: BoardSpec) -> tuple[int, ...]:
    """The EMC rates the BPMP lists and the board's nvpmodel.conf caps to, plus its top rate
    (what :mod:`edge_agent.governor.discovery` reads on the board)."""
    conf = parse_conf(spec.conf_text)
    caps = {mode.int_value("EMC", "MAX_FREQ") for mode in conf.modes}
    rates = {c for c in caps if c is not None and 0 < c <= spec.emc.max_hz}
    return tuple(sorted(rates | set(spec.emc.listed_rates()) | {spec.emc.max_hz}))


def prepare(spec: BoardSpec) -> Board:
    parsed = _profile_file(spec)
    gpu_top, cpu_all = (
        max(spec.gpu.freqs_hz),
        sorted({f for c in spec.clusters for f in c.freqs_khz}),
    )
    presets: dict[str, ClockState] = {}
    preset_keys: dict[str, tuple[int, int, int]] = {}
    for name in FIXED:
        caps = parsed.profiles[name].clocks
        gpu = gpu_top if caps.gpu_max_hz in (None, "max") else int(caps.gpu_max_hz)
        gpu = floor_entry(spec.gpu.freqs_hz, gpu)
        emc = spec.emc.max_hz if not caps.emc_max_hz else min(caps.emc_max_hz, spec.emc.max_hz)
        online = set(caps.cpus_online or range(spec.cpu_count))
        cpu = []
        for cluster in spec.clusters:
            cap: int = max(cluster.freqs_khz)
            for cname, value in caps.cpu_max_khz.items():
                if parsed.clusters.get(cname, [None])[0] in cluster.cpus and value != "max":
                    cap = int(value)
            top = floor_entry(cluster.freqs_khz, cap)
            cpu.append((len(online & set(cluster.cpus)), min(cluster.freqs_khz), top))
        presets[name] = ClockState(min(spec.gpu.freqs_hz), gpu, tuple(cpu), emc)
        preset_keys[name] = (gpu, emc, max(c[2] for c in cpu if c[0] > 0))
    tables = FrequencyTables(
        gpu_hz=tuple(spec.gpu.freqs_hz),
        emc_hz=emc_table(spec),
        cpu_khz=cpu_levels(cpu_all, [k[2] for k in preset_keys.values()]),
    )
    # The governor never asks for a mode that needs a reboot: from the MAXN preset's mode, the
    # presets whose switch would are not operating points (the fixed runs still use them).
    conf = parse_conf(spec.conf_text)
    mode_ids = {}
    for name in FIXED:
        mode = conf.mode_by_name(parsed.profiles[name].nvpmodel or "")
        if mode is not None:
            mode_ids[name] = mode.id
    maxn = mode_ids.get("maxn")
    live = {
        name: key
        for name, key in preset_keys.items()
        if maxn is None or name not in mode_ids or not needs_reboot(conf, maxn, mode_ids[name])
    }
    points = build_points(tables, live)
    preset_points = {
        n: OperatingPoint(*preset_keys[n], preset=n) for n in FIXED
    }  # the exact preset, cores online included, for the fixed runs
    return Board(spec, points, presets, preset_points)


class Fixed:
    def __init__(self, point: OperatingPoint) -> None:
        self.point = point

    def initial(self) -> OperatingPoint:
        return self.point

    def on_window(self, window: MetricsWindow) -> OperatingPoint:
        return self.point


class Governed:
    """The real decision function, fed one window per simulated second."""

    def __init__(self, params: GovernorParams, points: Sequence[OperatingPoint]) -> None:
        self.params, self.points = params, tuple(points)
        self.state: GovernorState = initial_state(self.points, params)
        self.converged_after: list[tuple[float, int]] = []  # (time, probes) when it settled
        self.reasons: list[str] = []
        self._settled: set[float] = set()

    def initial(self) -> OperatingPoint:
        return self.state.point

    def on_window(self, window: MetricsWindow) -> OperatingPoint:
        decision, self.state = decide(self.params, self.points, self.state, window)
        if decision.changed:
            moved = f"{decision.previous.label()} -> {decision.point.label()}"
            self.reasons.append(
                f"{window.end_s:.0f}s {moved}: {decision.reason} {decision.numbers}"
            )
        regime = self.state.regime
        if self.state.converged and regime is not None and regime.since_s not in self._settled:
            self._settled.add(regime.since_s)
            self.converged_after.append((window.end_s, self.state.probes))
        return decision.point


@dataclass
class RunSummary:
    name: str
    energy_mj: float
    p99_ms: float
    windows_met: float
    drops: int
    switches: int
    met_flags: list[bool]
    per_segment_switches: list[int]
    points: list[str] = dataclasses.field(default_factory=list)  # the oracle's, per segment


def summarize(name: str, result: ReplayResult, segments: int) -> RunSummary:
    flags = [w.met for w in result.windows]
    return RunSummary(
        name,
        result.energy_per_inference_j * 1e3,
        result.p99_s * 1e3,
        sum(flags) / max(1, len(flags)),
        result.drops,
        len(result.switches),
        flags,
        [result.switches_in(i) for i in range(segments)],
    )


@dataclass(frozen=True)
class PointRun:
    """One segment replayed at one static operating point."""

    point: OperatingPoint
    result: ReplayResult
    windows_met: float

    @property
    def qualifies(self) -> bool:
        """The SLO met in >= 99% of the windows, with no drops."""
        return self.windows_met >= 0.99 and self.result.drops == 0


def landscape(board: Board, segment: Segment, slo_s: float, seed: int) -> list[PointRun]:
    """``segment`` replayed at every operating point: the DVFS energy/latency landscape."""
    runs = []
    for point in board.points:
        res = replay(board.spec, [segment], Fixed(point), board.grid_state, slo_s, seed=seed)
        share = sum(w.met for w in res.windows) / max(1, len(res.windows))
        runs.append(PointRun(point, res, share))
    return runs


def oracle(board: Board, segments: Sequence[Segment], slo_s: float, seed: int) -> RunSummary:
    """The best static point per segment: least energy/inference with the SLO met in >= 99% of
    its windows and no drops (the fastest point when none qualifies)."""
    energy, inferences, drops, flags, lat, chosen_points = 0.0, 0, 0, [], [], []
    top = max(p.key for p in board.points)
    for seg in segments:
        runs = landscape(board, seg, slo_s, seed)
        fallback = next(r for r in runs if r.point.key == top)
        good = [r for r in runs if r.qualifies]
        best = min(good, key=lambda r: r.result.energy_per_inference_j) if good else None
        chosen = best.result if best else fallback.result
        chosen_points.append(best.point.label() if best else "fastest (none met the SLO)")
        energy += chosen.energy_j
        inferences += chosen.inferences
        drops += chosen.drops
        flags += [w.met for w in chosen.windows]
        lat += chosen.latencies_s
    merged = ReplayResult(energy, inferences, drops, lat)
    summary = summarize("oracle", merged, len(segments))
    share = sum(flags) / max(1, len(flags))
    return dataclasses.replace(summary, windows_met=share, met_flags=flags, points=chosen_points)


@dataclass
class Evaluation:
    board: str
    runs: dict[str, RunSummary]
    probes: list[int]  # per segment: probes until the governor settled (-1: never settled)
    reasons: list[str]

    @property
    def slo_vs_oracle(self) -> float:
        return self.runs["slo"].energy_mj / self.runs["oracle"].energy_mj - 1.0

    @property
    def slo_vs_maxn(self) -> float:
        return self.runs["slo"].energy_mj / self.runs["fixed maxn"].energy_mj - 1.0

    @property
    def oracle_vs_maxn(self) -> float:
        """How far below fixed MAXN any static choice per segment can get (the floor for slo)."""
        return self.runs["oracle"].energy_mj / self.runs["fixed maxn"].energy_mj - 1.0

    @property
    def changes_per_step(self) -> list[int]:
        """The slo run's changes in each segment after the first (each follows a step)."""
        return self.runs["slo"].per_segment_switches[1:]

    @property
    def slo_windows_met_where_maxn(self) -> float:
        pairs = zip(self.runs["slo"].met_flags, self.runs["fixed maxn"].met_flags, strict=False)
        where = [s for s, m in pairs if m]
        return sum(where) / max(1, len(where))


def constant_state(state: ClockState) -> Callable[[OperatingPoint], ClockState]:
    return lambda _point: state


def evaluate(
    spec: BoardSpec,
    segments: Sequence[Segment],
    params: GovernorParams,
    seed: int = 0,
) -> Evaluation:
    board = prepare(spec)
    runs: dict[str, RunSummary] = {}
    for name in FIXED:
        fixed, states = Fixed(board.preset_points[name]), constant_state(board.presets[name])
        res = replay(spec, segments, fixed, states, params.slo_latency_s, seed=seed)
        runs[f"fixed {name}"] = summarize(f"fixed {name}", res, len(segments))
    governed = Governed(params, board.points)
    res = replay(spec, segments, governed, board.grid_state, params.slo_latency_s, seed=seed)
    runs["slo"] = summarize("slo", res, len(segments))
    runs["oracle"] = oracle(board, segments, params.slo_latency_s, seed)
    bounds = [sum(s.duration_s for s in segments[:i]) for i in range(len(segments) + 1)]
    probes = []
    for i in range(len(segments)):
        settled = [p for t, p in governed.converged_after if bounds[i] <= t < bounds[i + 1]]
        probes.append(settled[0] if settled else -1)
    return Evaluation(spec.name, runs, probes, governed.reasons)
