"""The health gate after a switch: results flow, cameras stay up, latency holds, nothing died.

:func:`judge` is pure; the agent samples its pipeline into :class:`HealthSample` before the
switch and while the gate waits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LATENCY_MIN_RESULTS = 20


@dataclass(frozen=True)
class HealthSample:
    """What the gate looks at, at one moment."""

    results: int
    cameras: Mapping[str, str] = field(default_factory=dict)
    """Camera name -> capture state (``up``, ``down``, ``starting``...)."""
    latency_p95_ms: float | None = None
    failures: int = 0
    """Component threads that died (the supervisor's count)."""


@dataclass(frozen=True)
class HealthVerdict:
    """``ok`` passes the gate; ``done`` ends the wait (pass, or a failure that cannot heal)."""

    ok: bool
    done: bool
    reason: str
    figures: dict[str, Any]


def judge(
    before: HealthSample,
    after: HealthSample,
    *,
    min_results: int,
    latency_factor: float,
    final: bool,
) -> HealthVerdict:
    """The gate's verdict on ``after`` (sampled since the switch) against ``before``.

    Args:
        before: sampled just before the switch (old config).
        after: the new pipeline's counters since the switch.
        min_results: results the new config must produce.
        latency_factor: the new p95 may be at most this times the old one.
        final: the health window is over; what has not passed now fails.
    """
    lost = sorted(
        name
        for name, state in before.cameras.items()
        if state == "up" and name in after.cameras and after.cameras[name] != "up"
    )
    figures: dict[str, Any] = {
        "results": after.results,
        "min_results": min_results,
        "cameras_down": lost,
        "latency_p95_ms": after.latency_p95_ms,
        "latency_p95_before_ms": before.latency_p95_ms,
    }
    if after.failures > before.failures:
        return HealthVerdict(False, True, "a component died after the switch", figures)
    # A p95 over a handful of results is noise (the first batches after a switch, a busy
    # neighbour): compare latency only with enough results on both sides.
    slow = (
        before.results >= LATENCY_MIN_RESULTS
        and after.results >= LATENCY_MIN_RESULTS
        and before.latency_p95_ms is not None
        and after.latency_p95_ms is not None
        and after.latency_p95_ms > latency_factor * before.latency_p95_ms
    )
    if after.results >= min_results and not lost and not slow:
        return HealthVerdict(True, True, "healthy", figures)
    if not final:
        return HealthVerdict(False, False, "waiting", figures)
    if lost:
        reason = f"camera(s) {', '.join(lost)} up before the switch are not up"
    elif after.results < min_results:
        reason = f"{after.results} results in the health window (need {min_results})"
    else:
        reason = (
            f"p95 latency {after.latency_p95_ms:.1f} ms is over {latency_factor:g}x "
            f"the old {before.latency_p95_ms:.1f} ms"
        )
    return HealthVerdict(False, True, reason, figures)
