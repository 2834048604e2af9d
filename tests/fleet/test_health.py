"""The health gate's verdicts (pure)."""

from __future__ import annotations

from edge_agent.fleet.health import HealthSample, judge

UP = {"a": "up", "b": "up"}
BEFORE = HealthSample(results=100, cameras=UP, latency_p95_ms=10.0)


def _judge(after: HealthSample, final: bool = False) -> tuple[bool, bool, str]:
    verdict = judge(BEFORE, after, min_results=5, latency_factor=3.0, final=final)
    return verdict.ok, verdict.done, verdict.reason


def test_passes_as_soon_as_results_flow_and_cameras_are_up() -> None:
    assert _judge(HealthSample(5, UP, 12.0)) == (True, True, "healthy")


def test_waits_then_fails_naming_what_is_wrong() -> None:
    down = HealthSample(50, {"a": "up", "b": "down"}, 12.0)
    assert _judge(down) == (False, False, "waiting")
    assert _judge(down, final=True) == (
        False,
        True,
        "camera(s) b up before the switch are not up",
    )
    few = HealthSample(2, UP, 12.0)
    assert _judge(few, final=True)[2] == "2 results in the health window (need 5)"
    slow = HealthSample(40, UP, 31.0)
    assert _judge(slow, final=True)[2] == "p95 latency 31.0 ms is over 3x the old 10.0 ms"


def test_a_dead_component_fails_at_once() -> None:
    dead = HealthSample(50, UP, 10.0, failures=1)
    assert _judge(dead) == (False, True, "a component died after the switch")


def test_latency_needs_enough_results_on_both_sides() -> None:
    assert _judge(HealthSample(10, UP, 90.0))[0] is True  # 10 results: too few to judge p95
    quiet = HealthSample(3, UP, 1.0)
    verdict = judge(quiet, HealthSample(40, UP, 90.0), min_results=5, latency_factor=3, final=True)
    assert verdict.ok


def test_a_new_camera_name_is_not_a_lost_one() -> None:
    assert _judge(HealthSample(9, {"a": "up", "c": "starting"}, 10.0))[0] is True
