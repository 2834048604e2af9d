"""Operating points: GPU x EMC x CPU caps inside the current nvpmodel mode, plus the presets.

Every frequency comes from a table the board itself lists (devfreq ``available_frequencies``,
cpufreq ``scaling_available_frequencies``, the EMC rates of the board's nvpmodel.conf); this
module only combines them, it never makes a frequency up. Units: GPU and EMC in Hz, CPU in kHz.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, order=True)
class OperatingPoint:
    """One set of clock caps. ``preset`` names the profile it equals, when it is one."""

    gpu_hz: int
    emc_hz: int
    cpu_khz: int
    preset: str | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[int, int, int, str]:
        """Identity: a preset is its own point even where its caps equal a grid point's (its
        nvpmodel mode may differ, e.g. in the CPUs it keeps online)."""
        return (self.gpu_hz, self.emc_hz, self.cpu_khz, self.preset or "")

    def label(self) -> str:
        """``maxq`` for a preset, else ``gpu 624.75/emc 2133/cpu 1510`` (MHz)."""
        if self.preset:
            return self.preset
        return f"gpu {self.gpu_hz / 1e6:g}/emc {self.emc_hz / 1e6:g}/cpu {self.cpu_khz / 1e3:g}"


@dataclass(frozen=True, slots=True)
class FrequencyTables:
    """The board's own tables, already limited to the current nvpmodel mode's caps."""

    gpu_hz: tuple[int, ...]
    emc_hz: tuple[int, ...]
    cpu_khz: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("gpu_hz", "emc_hz", "cpu_khz"):
            values = getattr(self, name)
            if not values or min(values) <= 0:
                raise ValueError(f"frequency table {name} is empty or has a non-positive entry")


def floor_entry(table: Sequence[int], limit: int) -> int:
    """The highest entry of ``table`` at or below ``limit`` (the lowest when none is)."""
    below = [f for f in table if f <= limit]
    return max(below) if below else min(table)


def within_caps(table: Iterable[int], cap: int | None) -> tuple[int, ...]:
    """The entries at or below ``cap`` (all of them when ``cap`` is None or 0 = no cap)."""
    values = sorted(set(table))
    if not cap or cap <= 0:
        return tuple(values)
    kept = tuple(f for f in values if f <= cap)
    return kept or (values[0],)


def cpu_levels(table: Sequence[int], anchors: Iterable[int], count: int = 3) -> tuple[int, ...]:
    """A few CPU caps: the anchors (mode cap, presets) snapped to the table, plus evenly spaced
    entries of the upper half of the table, so the search stays small (``count`` extra levels).

    The inference engine on a Jetson needs the CPU only to feed the GPU, so low CPU caps matter
    less than GPU and EMC; the grid keeps the upper half only.
    """
    ordered = sorted(set(table))
    chosen = {floor_entry(ordered, a) for a in anchors if a > 0}
    upper = ordered[len(ordered) // 2 :]
    if count > 0 and upper:
        step = max(1, len(upper) // count)
        chosen.update(upper[::step])
    chosen.add(ordered[-1])
    return tuple(sorted(chosen))


def build_points(
    tables: FrequencyTables, presets: dict[str, tuple[int, int, int]] | None = None
) -> tuple[OperatingPoint, ...]:
    """Every GPU x EMC x CPU combination of ``tables``, plus one point per preset, sorted.

    The presets' caps are kept as the profiles give them (they may lie in another nvpmodel mode);
    only the grid is limited to ``tables``.
    """
    grid = [
        OperatingPoint(g, e, c)
        for g in tables.gpu_hz
        for e in tables.emc_hz
        for c in tables.cpu_khz
    ]
    named = [OperatingPoint(g, e, c, name) for name, (g, e, c) in sorted((presets or {}).items())]
    return tuple(sorted({p.key: p for p in (*grid, *named)}.values()))


def fastest(points: Sequence[OperatingPoint]) -> OperatingPoint:
    """The point with every cap highest (the table's maximum corner)."""
    return max(points, key=lambda p: p.key)


def slowest(points: Sequence[OperatingPoint]) -> OperatingPoint:
    return min(points, key=lambda p: p.key)


def preset(points: Sequence[OperatingPoint], name: str) -> OperatingPoint:
    """The point that carries preset ``name``.

    Raises:
        KeyError: no such preset.
    """
    for point in points:
        if point.preset == name:
            return point
    raise KeyError(f"no operating point for preset {name!r}")
