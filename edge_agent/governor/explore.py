"""Where the governor looks next: the search over a new model's operating points, and the blind
step down when the model cannot yet tell which point draws less."""

from __future__ import annotations

from collections.abc import Sequence

from edge_agent.governor.model import OnlineModel
from edge_agent.governor.points import OperatingPoint

EXPLORE_BUDGET = 10  # probes (changes) per model under its first load; the fit decides after
AXES = ("gpu_hz", "emc_hz", "cpu_khz")


def _line(
    grid: Sequence[OperatingPoint], through: OperatingPoint, axis: str
) -> list[OperatingPoint]:
    """The points of ``grid`` that differ from ``through`` on ``axis`` alone, by that clock."""
    others = [a for a in AXES if a != axis]
    return sorted(
        (p for p in grid if all(getattr(p, a) == getattr(through, a) for a in others)),
        key=lambda p: getattr(p, axis),
    )


def _bisect(line: Sequence[OperatingPoint], energy: Sequence[float | None]) -> int | None:
    """The index to measure next on a line of points ordered by one clock, or None when the
    best measured point's neighbours are all measured (a bisection towards the least energy;
    for a U-shaped energy curve it needs about log2(len) probes)."""
    known = [i for i, e in enumerate(energy) if e is not None]
    if not known:
        return len(line) // 2
    best = min(known, key=lambda i: energy[i] or 0.0)
    left = max((i for i in known if i < best), default=-1)
    right = min((i for i in known if i > best), default=len(line))
    gaps = []
    if best - left > 1:
        gaps.append((best - left, (max(left, 0) + best) // 2 if left >= 0 else best // 2))
    if right - best > 1:
        gaps.append((right - best, (best + min(right, len(line) - 1) + 1) // 2))
    gaps = [(gap, i) for gap, i in gaps if energy[i] is None]
    return max(gaps)[1] if gaps else None


def next_probe(
    model: OnlineModel,
    feasible: Sequence[OperatingPoint],
    current: OperatingPoint,
    fps: float,
    probes: int = 0,
) -> OperatingPoint | None:
    """The next point to measure while the served model is new (no earlier model to start from).

    Only under the first load the model sees; later rate changes rely on the fit. First each
    preset predicted to meet the SLO, then a coordinate search on measured energy per
    inference: along the GPU clock (at the EMC and CPU caps of the best point measured so far),
    then the EMC clock, then the CPU cap, each by bisection over the points predicted to meet
    the SLO. None when the search is done or the budget of ``EXPLORE_BUDGET`` probes is spent.
    """
    if model.informed or probes >= EXPLORE_BUDGET or not model.only_at_rate(fps):
        return None
    # The presets first: few, each a mode of its own (other cores online, say) that the
    # grid's clocks do not describe, so only a measurement tells their energy.
    preset = next((p for p in feasible if p.preset is not None and not model.measured(p)), None)
    if preset is not None:
        return preset
    grid = [p for p in feasible if p.preset is None]
    measured = [p for p in grid if model.measured_energy_j(p, fps) is not None]
    anchor = min(measured, key=lambda p: model.measured_energy_j(p, fps) or 0.0, default=current)
    for axis in AXES:
        line = _line(grid, anchor, axis)
        if len(line) < 2:
            continue
        index = _bisect(line, [model.measured_energy_j(p, fps) for p in line])
        if index is not None:
            return line[index]
    return None


def step_down(points: Sequence[OperatingPoint], current: OperatingPoint) -> OperatingPoint | None:
    """The grid point one table entry below ``current`` on one clock (the GPU first, then the
    EMC, then the CPU cap; the others unchanged), or None at the bottom of every table."""
    grid = [p for p in points if p.preset is None]
    for axis in AXES:
        below = [p for p in _line(grid, current, axis) if getattr(p, axis) < getattr(current, axis)]
        if below:
            return below[-1]
    return None
