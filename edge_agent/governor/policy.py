"""Governor policy parameters (the config section maps onto these)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from edge_agent.config_sections import GovernorConfig

PolicyName = Literal["fixed", "slo", "power_cap", "thermal", "schedule"]
POLICIES: tuple[PolicyName, ...] = ("fixed", "slo", "power_cap", "thermal", "schedule")


@dataclass(frozen=True, slots=True)
class GovernorParams:
    """What the governor aims for and how cautiously it moves.

    Attributes:
        policy: the objective. ``fixed`` holds ``preset``; ``slo`` finds the least energy per
            inference meeting ``slo_latency_s`` at ``slo_percentile`` with no drops;
            ``power_cap`` the fastest point under ``power_cap_w``; ``thermal`` the fastest
            point that keeps the hottest zone under ``thermal_limit_c``; ``schedule`` the
            preset of the ``schedule`` entry in force at the time of day.
        power_cap_w, thermal_limit_c: limits; when set they bound every policy but ``fixed``,
            with precedence thermal > power_cap > slo.
        dwell_s: the least time between two changes that are not forced by a limit or an SLO
            miss; ``hysteresis``: the least predicted energy saving worth a change.
        headroom: share of the SLO kept free on top of the measured tail.
        max_utilization: the engine busy share above which frames would queue up and drop.
        rate_change: relative change of the input rate that starts a new exploration.
        thermal_band_c: the governor backs off from ``thermal_limit_c - thermal_band_c``
            and relaxes below ``thermal_limit_c - 2 * thermal_band_c``.
    """

    policy: PolicyName = "fixed"
    preset: str = "maxn"
    slo_latency_s: float = 0.1
    slo_percentile: Literal["p95", "p99"] = "p99"
    power_cap_w: float | None = None
    thermal_limit_c: float | None = None
    thermal_band_c: float = 3.0
    schedule: tuple[tuple[float, str], ...] = ()
    dwell_s: float = 2.0
    hysteresis: float = 0.05
    headroom: float = 0.15
    max_utilization: float = 0.85
    rate_change: float = 0.25

    def __post_init__(self) -> None:
        if self.policy == "power_cap" and self.power_cap_w is None:
            raise ValueError("policy power_cap needs power_cap_w")
        if self.policy == "thermal" and self.thermal_limit_c is None:
            raise ValueError("policy thermal needs thermal_limit_c")
        if self.policy == "schedule" and not self.schedule:
            raise ValueError("policy schedule needs at least one entry")


def scheduled_preset(schedule: tuple[tuple[float, str], ...], time_of_day_s: float) -> str:
    """The preset of the last entry starting at or before ``time_of_day_s`` (wrapping midnight:
    before the first entry, the last one of the previous day is in force)."""
    ordered = sorted(schedule)
    current = ordered[-1][1]
    for start_s, name in ordered:
        if start_s <= time_of_day_s % 86400:
            current = name
    return current


def params_from_config(
    policy: PolicyName, preset_name: str | None, cfg: GovernorConfig
) -> GovernorParams:
    """The parameters for ``profile.policy`` and its ``profile.governor`` section."""
    return GovernorParams(
        policy=policy,
        preset=preset_name or "maxn",
        slo_latency_s=cfg.slo_latency_ms / 1000.0,
        slo_percentile=cfg.slo_percentile,
        power_cap_w=cfg.power_cap_w,
        thermal_limit_c=cfg.thermal_limit_c,
        thermal_band_c=cfg.thermal_band_c,
        schedule=tuple((entry.start_s, entry.profile) for entry in cfg.schedule),
        dwell_s=cfg.dwell_s,
        hysteresis=cfg.hysteresis,
        headroom=cfg.headroom,
    )


def unknown_schedule_profiles(profiles: Sequence[str], known: Iterable[str]) -> str | None:
    """The refusal for a schedule naming profiles the board lacks, or None when it has them."""
    have = set(known)
    unknown = sorted(set(profiles) - have)
    if not unknown:
        return None
    return (
        f"profile.governor.schedule: unknown profile {', '.join(unknown)}; "
        f"known: {', '.join(sorted(have)) or 'none'}"
    )
