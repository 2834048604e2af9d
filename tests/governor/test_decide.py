"""The decision on synthetic traces: it finds the cheap point, keeps the SLO, respects limits."""

from __future__ import annotations

import dataclasses

from edge_agent.governor.decide import Decision, GovernorState, decide, initial_state
from edge_agent.governor.points import OperatingPoint, preset
from edge_agent.governor.policy import GovernorParams, scheduled_preset
from tests.governor.synthetic import POINTS, Truth


def closed_loop(
    params: GovernorParams,
    truth: Truth,
    rates: list[tuple[int, float]],
    state: GovernorState | None = None,
    temps: float = 50.0,
) -> tuple[GovernorState, list[Decision], list[OperatingPoint]]:
    """Feed ``(windows, fps)`` steps through decide; returns the end state, every decision and
    the point in force in each window."""
    state = state or initial_state(POINTS, params)
    decisions, visited, t = [], [], 0.0
    for count, fps in rates:
        for _ in range(count):
            window = truth.window(state.point, fps, t, temps_c={"gpu": temps})
            visited.append(state.point)
            decision, state = decide(params, POINTS, state, window)
            decisions.append(decision)
            t += 1.0
    return state, decisions, visited


def optimum(truth: Truth, fps: float, slo_s: float) -> float:
    ok = [p for p in POINTS if p.preset is None and truth.p99_s(p, fps) <= slo_s * 0.85]
    return min(truth.energy_j(p, fps) for p in ok)


SLO = GovernorParams(policy="slo", slo_latency_s=0.030, dwell_s=3.0, hysteresis=0.02)


def test_slo_settles_near_the_least_energy_point_and_keeps_the_slo() -> None:
    truth = Truth()
    state, decisions, visited = closed_loop(SLO, truth, [(45, 20.0)])
    assert state.converged
    assert truth.energy_j(state.point, 20.0) <= optimum(truth, 20.0, SLO.slo_latency_s) * 1.10
    assert truth.energy_j(state.point, 20.0) < truth.energy_j(preset(POINTS, "maxn"), 20.0)
    assert all(truth.p99_s(p, 20.0) <= SLO.slo_latency_s for p in visited)
    changes = [d for d in decisions if d.changed]
    assert 1 <= len(changes) <= 15
    assert all(d.reason.startswith("slo:") for d in changes)


def test_a_load_step_moves_to_a_faster_point_and_back() -> None:
    truth = Truth()
    state, _, _ = closed_loop(SLO, truth, [(30, 20.0)])
    slow = state.point
    state, decisions, _visited = closed_loop(SLO, truth, [(20, 150.0)], state)
    fast = state.point
    assert truth.engine_s(fast) < truth.engine_s(slow)
    assert truth.p99_s(fast, 150.0) <= SLO.slo_latency_s
    assert sum(d.changed for d in decisions) <= 3
    state, decisions, _ = closed_loop(SLO, truth, [(20, 20.0)], state)
    assert truth.engine_s(state.point) > truth.engine_s(fast)
    assert sum(d.changed for d in decisions) <= 2


def test_a_model_change_reuses_what_was_learned() -> None:
    truth = Truth()
    state, _, _ = closed_loop(SLO, truth, [(30, 20.0)])
    heavier = Truth(scale=1.6)
    t = 100.0
    decisions = []
    for _ in range(15):
        window = heavier.window(state.point, 20.0, t, model="googlenet")
        decision, state = decide(SLO, POINTS, state, window)
        decisions.append(decision)
        t += 1.0
    assert sum(d.changed for d in decisions) <= 2
    assert not any(d.reason.startswith("slo: explore") for d in decisions)
    assert heavier.p99_s(state.point, 20.0) <= SLO.slo_latency_s


def test_an_slo_miss_moves_at_once_despite_the_dwell() -> None:
    truth = Truth()
    params = GovernorParams(policy="slo", slo_latency_s=0.030, dwell_s=60.0)
    slow = preset(POINTS, "maxq")
    state = GovernorState(point=slow, last_change_s=0.0)
    window = truth.window(slow, 150.0, 1.0)
    assert window.latency_p99_s > params.slo_latency_s
    decision, state = decide(params, POINTS, state, window)
    assert decision.changed
    assert decision.reason.startswith("slo: missed")
    assert decision.numbers["slo_ms"] == 30.0
    assert slow.key in state.too_slow


def test_fixed_holds_its_preset() -> None:
    params = GovernorParams(policy="fixed", preset="maxq")
    _state, decisions, visited = closed_loop(params, Truth(), [(5, 20.0), (5, 150.0)])
    assert {p.key for p in visited} == {preset(POINTS, "maxq").key}
    assert not any(d.changed for d in decisions)


def test_power_cap_keeps_board_watts_under_the_cap() -> None:
    truth = Truth()
    params = GovernorParams(policy="slo", slo_latency_s=0.030, power_cap_w=9.0)
    maxn = preset(POINTS, "maxn")
    assert truth.board_w(maxn, 100.0 * truth.engine_s(maxn)) > 9.0  # the cap binds
    _, decisions, visited = closed_loop(params, truth, [(40, 100.0)])
    assert decisions[0].changed
    assert decisions[0].reason.startswith("power cap")
    watts = [truth.board_w(p, min(1.0, 100.0 * truth.engine_s(p))) for p in visited[1:]]
    for i in range(len(watts) - 10):  # every 10 s average after the first window
        assert sum(watts[i : i + 10]) / 10 <= 9.0
    # Under the cap the SLO still holds once the model knows the board (a first guess may miss).
    misses = [truth.p99_s(p, 100.0) > 0.030 for p in visited]
    assert sum(misses) <= 2
    assert not any(misses[-20:])


def test_thermal_limit_wins_over_the_slo() -> None:
    truth = Truth()
    params = GovernorParams(policy="slo", slo_latency_s=0.005, thermal_limit_c=80.0)
    state = initial_state(POINTS, params)
    before = state.point
    window = truth.window(before, 150.0, 0.0, temps_c={"gpu": 85.0})
    assert window.latency_p99_s > params.slo_latency_s  # the SLO alone would want faster
    decision, state = decide(params, POINTS, state, window)
    assert decision.changed
    assert decision.reason.startswith("thermal")
    assert truth.board_w(decision.point, 0.5) < truth.board_w(before, 0.5)


def test_schedule_picks_the_preset_of_the_time_of_day() -> None:
    schedule = ((8 * 3600.0, "maxn"), (20 * 3600.0, "maxq"))
    assert scheduled_preset(schedule, 3600.0) == "maxq"  # before 08:00: last night's entry
    assert scheduled_preset(schedule, 9 * 3600.0) == "maxn"
    params = GovernorParams(policy="schedule", schedule=schedule)
    state = initial_state(POINTS, params)
    window = Truth().window(state.point, 20.0, 0.0)
    day = dataclasses.replace(window, time_of_day_s=9 * 3600.0)
    decision, _ = decide(params, POINTS, state, day)
    assert decision.point.preset == "maxn"
