"""Invariants of the decision on arbitrary window sequences (hypothesis)."""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.governor.decide import (
    Decision,
    GovernorState,
    decide,
    initial_state,
    predict,
)
from edge_agent.governor.model import Scales
from edge_agent.governor.policy import GovernorParams
from edge_agent.governor.window import MetricsWindow
from tests.governor.synthetic import POINTS

KEYS = {p.key for p in POINTS}

window_args = st.tuples(
    st.floats(min_value=1.0, max_value=200.0),  # input fps
    st.floats(min_value=0.0005, max_value=0.2),  # p99 s
    st.integers(min_value=0, max_value=30),  # drops
    st.floats(min_value=1e-4, max_value=0.05),  # engine s per batch
    st.floats(min_value=0.5, max_value=30.0),  # board W
    st.floats(min_value=20.0, max_value=110.0),  # hottest C
    st.sampled_from(["resnet50", "googlenet"]),
)
params_st = st.builds(
    GovernorParams,
    policy=st.sampled_from(["slo", "power_cap", "thermal"]),
    slo_latency_s=st.floats(min_value=0.002, max_value=0.2),
    power_cap_w=st.floats(min_value=2.0, max_value=25.0),
    thermal_limit_c=st.floats(min_value=40.0, max_value=100.0),
    dwell_s=st.floats(min_value=0.0, max_value=10.0),
)


Args = tuple[float, float, int, float, float, float, str]
Step = tuple[GovernorParams, GovernorState, MetricsWindow, Decision, GovernorState]


def _run(params: GovernorParams, seq: list[Args]) -> Iterator[Step]:
    state = initial_state(POINTS, params)
    t = 0.0
    for fps, p99, drops, engine_s, watts, hot, model in seq:
        window = MetricsWindow(
            start_s=t,
            end_s=t + 1.0,
            point=state.point,
            model=model,
            input_fps=fps,
            inferences=max(1, int(fps) - drops),
            drops=drops,
            latency_p50_s=p99 / 2,
            latency_p95_s=p99 * 0.9,
            latency_p99_s=p99,
            engine_s_per_batch=engine_s,
            mean_batch=1.0,
            board_w=watts,
            temps_c={"gpu": hot},
        )
        before = state
        decision, state = decide(params, POINTS, state, window)
        yield params, before, window, decision, state
        t += 1.0


@settings(max_examples=60, deadline=None)
@given(params_st, st.lists(window_args, min_size=1, max_size=12))
def test_the_chosen_point_is_always_one_of_the_table(
    params: GovernorParams, seq: list[Args]
) -> None:
    for _params, _before, _window, decision, state in _run(params, seq):
        assert decision.point.key in KEYS
        assert state.point.key == decision.point.key


@settings(max_examples=60, deadline=None)
@given(params_st, st.lists(window_args, min_size=1, max_size=12))
def test_at_the_thermal_limit_the_governor_never_picks_a_hungrier_point(
    params: GovernorParams, seq: list[Args]
) -> None:
    for p, before, window, decision, state in _run(params, seq):
        limit = p.thermal_limit_c
        if limit is None or window.hottest_c is None or window.hottest_c < limit:
            continue
        # Whatever the SLO or the load says, the predicted power does not rise.
        model = state.model_for(window.model, _scales())
        fps, batch = max(window.input_fps, 1e-3), 1.0
        new_w = predict(model, decision.point, fps, batch).board_w
        old_w = predict(model, before.point, fps, batch).board_w
        assert new_w <= old_w + 1e-9


@settings(max_examples=60, deadline=None)
@given(st.lists(window_args, min_size=2, max_size=12), st.floats(min_value=2.0, max_value=10.0))
def test_dwell_is_respected_unless_the_slo_is_missed(seq: list[Args], dwell: float) -> None:
    params = GovernorParams(policy="slo", slo_latency_s=0.05, dwell_s=dwell)
    for _p, before, window, decision, _state in _run(params, seq):
        missed = window.latency_p99_s > params.slo_latency_s or window.drops > 0
        too_slow = before.point.key in _state.too_slow
        if decision.changed and not missed and not too_slow:
            assert window.end_s - before.last_change_s >= dwell


@settings(max_examples=40, deadline=None)
@given(st.lists(window_args, min_size=1, max_size=8))
def test_fixed_never_moves_off_its_preset(seq: list[Args]) -> None:
    params = GovernorParams(policy="fixed", preset="maxq")
    for _p, _before, _window, decision, _state in _run(params, seq):
        assert decision.point.preset == "maxq"
        assert not decision.changed


def _scales() -> Scales:
    return Scales(
        max(p.gpu_hz for p in POINTS), max(p.emc_hz for p in POINTS), max(p.cpu_khz for p in POINTS)
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(window_args, min_size=1, max_size=12))
def test_an_slo_miss_never_moves_to_a_slower_point(seq: list[Args]) -> None:
    params = GovernorParams(policy="slo", slo_latency_s=0.05)
    for _p, before, window, decision, state in _run(params, seq):
        missed = window.latency_p99_s > params.slo_latency_s or window.drops > 0
        if not (missed and decision.changed and decision.reason.startswith("slo: missed")):
            continue
        model = state.model_for(window.model, _scales())
        fps = max(window.input_fps, 1e-3)
        new_s = predict(model, decision.point, fps, 1.0).engine_s
        old_s = predict(model, before.point, fps, 1.0).engine_s
        assert new_s < old_s
