"""Rollouts in waves (AWS IoT Jobs style): wave sizes, device outcomes, the abort rule.

Pure functions; :mod:`edge_agent.fleet.operator` does the MQTT.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal[
    "applied", "scheduled", "rejected", "rolled_back", "stale", "no_answer", "pending"
]
FAILED: tuple[Outcome, ...] = ("rejected", "rolled_back", "stale", "no_answer")
"""``scheduled`` is not failed: the device accepted the document and applies it at its
``not_before``."""


def parse_waves(text: str) -> list[str]:
    """``"1,10%,100%"`` -> ``["1", "10%", "100%"]``, checked.

    Raises:
        ValueError: an empty item, a non-number, a percentage outside (0, 100] or a count < 1.
    """
    items = [item.strip() for item in text.split(",")]
    for item in items:
        number = item[:-1] if item.endswith("%") else item
        try:
            value = float(number) if item.endswith("%") else int(number)
        except ValueError as err:
            raise ValueError(f"wave {item!r} must be a count or a percentage") from err
        if item.endswith("%") and not 0 < value <= 100:
            raise ValueError(f"wave {item!r} must be a percentage in (0, 100]")
        if not item.endswith("%") and value < 1:
            raise ValueError(f"wave {item!r} must be at least 1 device")
    return items


def wave_sizes(waves: Sequence[str], total: int) -> list[int]:
    """Cumulative device counts after each wave; the last wave always reaches ``total``."""
    sizes: list[int] = []
    reached = 0
    for item in waves:
        if item.endswith("%"):
            want = math.ceil(total * float(item[:-1]) / 100)
        else:
            want = reached + int(item)
        reached = max(reached, min(total, want))
        if not sizes or reached > sizes[-1]:
            sizes.append(reached)
    if not sizes or sizes[-1] < total:
        sizes.append(total)
    return sizes


def parse_percent(text: str) -> float:
    """``"5%"`` or ``"5"`` -> 5.0.

    Raises:
        ValueError: not a number in [0, 100].
    """
    value = float(text.rstrip("%"))
    if not 0 <= value <= 100:
        raise ValueError(f"{text!r} must be a percentage in [0, 100]")
    return value


def outcome_of(report: Mapping[str, Any] | None, target: str, version: int) -> Outcome:
    """What one device's ``config/state`` says about ``version`` of ``target``."""
    if report is None:
        return "pending"
    running = report.get("running") or {}
    if isinstance(running, Mapping) and int(running.get(target, 0) or 0) >= version:
        return "applied"
    if report.get("version") == version and report.get("status") in (
        "rejected",
        "rolled_back",
        "stale",
    ):
        status: Outcome = report["status"]
        return status
    scheduled = report.get("scheduled") or {}
    entry = scheduled.get(target) if isinstance(scheduled, Mapping) else None
    if isinstance(entry, Mapping) and entry.get("version") == version:
        return "scheduled"
    return "pending"


@dataclass(frozen=True)
class AbortRule:
    """Stop the rollout once failures exceed ``max_failure_pct`` of at least ``min_devices``."""

    max_failure_pct: float
    min_devices: int = 1

    def should_abort(self, outcomes: Mapping[str, Outcome]) -> bool:
        finished = [o for o in outcomes.values() if o != "pending"]
        if len(finished) < self.min_devices or not finished:
            return False
        failed = sum(1 for o in finished if o in FAILED)
        return 100.0 * failed / len(finished) > self.max_failure_pct
