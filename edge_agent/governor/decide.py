"""The decision: a pure function of (params, points, state, window) -> (decision, new state).

Each settled window is one measurement of the point in force. The online model
(:mod:`edge_agent.governor.model`) predicts the engine time and board power of every point; the
policy picks among the points the limits allow (thermal first, then the power cap), moves at
once when a limit or the SLO is broken, and otherwise only after ``dwell_s`` and only for a
predicted saving above ``hysteresis``. A change of model, camera set or input rate starts a new
regime: the points measured as too slow are forgotten and the probe count restarts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge_agent.governor.explore import next_probe, step_down
from edge_agent.governor.model import Observation, OnlineModel, Scales
from edge_agent.governor.points import OperatingPoint, fastest, preset
from edge_agent.governor.policy import GovernorParams, scheduled_preset
from edge_agent.governor.window import MetricsWindow


def queue_factor(util: float) -> float:
    """How much queueing stretches the latency tail at engine utilization ``util``.

    1 + u / (2 (1 - u)): the M/D/1 mean-wait term, capped near saturation.
    """
    u = min(max(util, 0.0), 0.95)
    return 1.0 + u / (2.0 * (1.0 - u))


@dataclass(frozen=True, slots=True)
class Regime:
    """What the load looks like; a change re-explores."""

    model: str
    cameras: tuple[str, ...]
    input_fps: float
    since_s: float


@dataclass(frozen=True, slots=True)
class GovernorState:
    point: OperatingPoint
    last_change_s: float = float("-inf")
    models: tuple[tuple[str, OnlineModel], ...] = ()
    regime: Regime | None = None
    probes: int = 0
    converged: bool = False
    too_slow: frozenset[tuple[int, int, int, str]] = frozenset()
    # Points whose caps the board refused to take (a failed apply): never chosen again.
    unreachable: frozenset[tuple[int, int, int, str]] = frozenset()
    thermal_ceiling_w: float | None = None

    def model_for(self, name: str, scales: Scales) -> OnlineModel:
        """The model of ``name``; a new one starts from the last model learned, if any."""
        known = dict(self.models)
        if name in known:
            return known[name]
        return self.models[-1][1].successor() if self.models else OnlineModel(scales)


@dataclass(frozen=True, slots=True)
class Decision:
    """The point to run next and why. ``changed`` is False when ``point`` is the current one."""

    point: OperatingPoint
    previous: OperatingPoint
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)
    probe: bool = False

    @property
    def changed(self) -> bool:
        return self.point.key != self.previous.key


@dataclass(frozen=True, slots=True)
class Prediction:
    engine_s: float
    util: float
    latency_s: float
    board_w: float
    energy_j: float


def predict(model: OnlineModel, point: OperatingPoint, fps: float, batch: float) -> Prediction:
    """Engine time, utilization, tail latency, board power and energy/inference at ``point``."""
    engine = model.engine_s(point) or 0.0
    util = fps * engine
    excess = model.tail_ratio(point)
    latency = engine * max(1.0, batch) * excess * queue_factor(util)
    watts = model.board_w(point, min(util, 1.0)) or 0.0
    return Prediction(engine, util, latency, watts, watts / max(fps, 1e-6))


def _slo_latency(window: MetricsWindow, params: GovernorParams) -> float:
    return window.latency_p99_s if params.slo_percentile == "p99" else window.latency_p95_s


def initial_state(points: Sequence[OperatingPoint], params: GovernorParams) -> GovernorState:
    """Start at the fixed/first scheduled preset, else at the fastest point (safe for the SLO)."""
    start = fastest(points)
    name = params.preset if params.policy == "fixed" else None
    if params.policy == "schedule":
        name = scheduled_preset(params.schedule, 0.0)
    if name is not None:
        start = preset(points, name)
    return GovernorState(point=start)


def _observe(
    state: GovernorState, window: MetricsWindow, scales: Scales, params: GovernorParams
) -> GovernorState:
    """Start a new regime when the load changed; learn from the window once it is settled."""
    regime, probes, converged, too_slow = (
        state.regime,
        state.probes,
        state.converged,
        state.too_slow,
    )
    fps = window.input_fps
    if (
        regime is None
        or regime.model != window.model
        or regime.cameras != window.cameras
        or abs(fps - regime.input_fps) > params.rate_change * max(regime.input_fps, 1.0)
    ):
        regime = Regime(window.model, window.cameras, fps, window.end_s)
        probes, converged, too_slow = 0, False, frozenset()
    models = dict(state.models)
    settled = window.start_s >= state.last_change_s and window.point.key == state.point.key
    if settled and window.inferences > 0 and window.engine_s_per_batch > 0:
        tail = _slo_latency(window, params) / window.engine_s_per_batch
        obs = Observation(
            point=window.point,
            engine_s_per_inference=window.engine_s_per_inference,
            utilization=window.utilization,
            board_w=window.board_w,
            tail_ratio=tail / queue_factor(window.utilization),
            input_fps=window.input_fps,
        )
        models.pop(window.model, None)  # re-inserted last: the most recent model
        models[window.model] = state.model_for(window.model, scales).observe(obs)
        if _slo_missed(window, params):
            too_slow = too_slow | {window.point.key}
    return dataclasses.replace(
        state,
        models=tuple(models.items()),
        regime=regime,
        probes=probes,
        converged=converged,
        too_slow=too_slow,
    )


def _slo_missed(window: MetricsWindow, params: GovernorParams) -> bool:
    return _slo_latency(window, params) > params.slo_latency_s or window.drops > 0


def _thermal_ceiling(
    state: GovernorState, window: MetricsWindow, params: GovernorParams
) -> float | None:
    """The board-power ceiling the thermal limit sets: cut on approach, relaxed when cool."""
    hottest, limit = window.hottest_c, params.thermal_limit_c
    ceiling = state.thermal_ceiling_w
    if limit is None or hottest is None:
        return None
    if hottest >= limit:
        return min(ceiling or window.board_w, window.board_w) * 0.8
    if hottest >= limit - params.thermal_band_c:
        return min(ceiling or window.board_w, window.board_w) * 0.95
    if ceiling is not None and hottest < limit - 2 * params.thermal_band_c:
        return ceiling * 1.05
    return ceiling


def decide(
    params: GovernorParams,
    points: Sequence[OperatingPoint],
    state: GovernorState,
    window: MetricsWindow,
) -> tuple[Decision, GovernorState]:
    """Choose the next operating point from one metrics window (pure; no I/O, no clock)."""
    scales = Scales(
        max(p.gpu_hz for p in points), max(p.emc_hz for p in points), max(p.cpu_khz for p in points)
    )
    if params.policy != "fixed" and window.input_fps < 0.1:
        # No frames (a camera reconnecting, the pipeline reloading): nothing to learn or decide.
        return Decision(state.point, state.point, "no load in the window"), state
    state = _observe(state, window, scales, params)
    current = state.point
    now = window.end_s

    def stay(reason: str, **numbers: float) -> tuple[Decision, GovernorState]:
        return Decision(current, current, reason, dict(numbers)), state

    def move(
        to: OperatingPoint,
        reason: str,
        probe: bool = False,
        numbers: dict[str, float] | None = None,
    ) -> tuple[Decision, GovernorState]:
        numbers = numbers or {}
        if to.key == current.key:
            return stay(reason, **numbers)[0], dataclasses.replace(state, converged=True)
        new = dataclasses.replace(
            state, point=to, last_change_s=now, probes=state.probes + 1, converged=False
        )
        return Decision(to, current, reason, dict(numbers), probe), new

    if params.policy == "fixed":
        return move(preset(points, params.preset), f"fixed {params.preset}")
    if (
        params.policy == "schedule"
        and params.power_cap_w is None
        and params.thermal_limit_c is None
    ):
        name = scheduled_preset(params.schedule, window.time_of_day_s)
        return move(preset(points, name), f"schedule: {name} at {window.time_of_day_s:.0f} s")

    ceiling = _thermal_ceiling(state, window, params)
    state = dataclasses.replace(state, thermal_ceiling_w=ceiling)
    model = state.model_for(window.model, scales)
    fps = max(window.input_fps, 1e-3)
    batch = max(1.0, window.mean_batch)
    preds = {p.key: predict(model, p, fps, batch) for p in points}

    # Limits, in precedence order: each narrows the candidates; an empty set keeps the
    # least-power point of the previous stage.
    candidates = [p for p in points if p.key not in state.unreachable] or list(points)
    forced = ""
    hottest = window.hottest_c
    near = False
    if ceiling is not None:
        allowed = [p for p in candidates if preds[p.key].board_w <= ceiling]
        near = (
            params.thermal_limit_c is not None
            and hottest is not None
            and (hottest >= params.thermal_limit_c - params.thermal_band_c)
        )
        if near:  # near the limit the governor never moves to a hungrier point
            allowed = [p for p in allowed if preds[p.key].board_w <= preds[current.key].board_w]
        candidates = allowed or [min(candidates, key=lambda p: preds[p.key].board_w)]
        if current not in candidates:
            forced = f"thermal: {hottest:.1f} C, ceiling {ceiling:.2f} W"
    if params.power_cap_w is not None:
        cap = params.power_cap_w
        allowed = [p for p in candidates if preds[p.key].board_w <= cap * 0.95]
        candidates = allowed or [min(candidates, key=lambda p: preds[p.key].board_w)]
        if not forced and (current not in candidates or window.board_w > cap):
            forced = f"power cap: {window.board_w:.2f} W > {cap:.2f} W"
            candidates = [p for p in candidates if preds[p.key].board_w < window.board_w] or [
                min(candidates, key=lambda p: preds[p.key].board_w)
            ]
            if window.board_w > cap and all(p.key == current.key for p in candidates):
                # The model cannot tell which point draws less (it has seen only this one):
                # step the clocks down, one table entry at a time, until under the cap (near
                # the thermal limit, never to a point it predicts hungrier).
                lower = step_down(points, current)
                hungrier = (
                    lower is not None and preds[lower.key].board_w > preds[current.key].board_w
                )
                if lower is not None and not (near and hungrier):
                    candidates = [lower]

    if params.policy == "schedule":
        name = scheduled_preset(params.schedule, window.time_of_day_s)
        want = preset(points, name)
        target = want if want in candidates else max(candidates, key=lambda p: p.key)
        return move(target, forced or f"schedule: {name}")
    if params.policy in ("power_cap", "thermal"):
        target = min(candidates, key=lambda p: (preds[p.key].engine_s, preds[p.key].board_w))
        if forced or (now - state.last_change_s >= params.dwell_s):
            return move(target, forced or f"{params.policy}: fastest point within the limit")
        return stay("dwell")

    # slo: the least energy per inference among the points predicted to meet the SLO.
    budget = params.slo_latency_s * (1.0 - params.headroom)
    feasible = [
        p
        for p in candidates
        if p.key not in state.too_slow
        and preds[p.key].latency_s <= budget
        and preds[p.key].util <= params.max_utilization
    ]
    feasible_keys = {p.key for p in feasible}
    cur = preds[current.key]
    observed = _slo_latency(window, params)
    numbers = {
        "p99_ms" if params.slo_percentile == "p99" else "p95_ms": round(observed * 1e3, 2),
        "slo_ms": params.slo_latency_s * 1e3,
        "fps": round(fps, 1),
        "board_w": round(window.board_w, 2),
    }
    missed = _slo_missed(window, params) and window.point.key == current.key
    if not feasible:
        if not (forced or missed) and now - state.last_change_s < params.dwell_s:
            return stay("dwell", **numbers)
        target = min(candidates, key=lambda p: (preds[p.key].latency_s, preds[p.key].board_w))
        return move(
            target, forced or "slo: no point predicted to meet the SLO; fastest", False, numbers
        )
    best = min(feasible, key=lambda p: preds[p.key].energy_j)
    best_pred = preds[best.key]
    numbers["predicted_mj"] = round(best_pred.energy_j * 1e3, 1)
    numbers["current_mj"] = round(cur.energy_j * 1e3, 1)
    unseen = not model.measured(best)
    if forced:
        return move(best, forced, unseen, numbers)
    if missed:
        # A miss only ever moves to a faster point: the cheapest faster one predicted to meet
        # the SLO, else the fastest there is; at the top already, it stays.
        why = f"slo: missed ({observed * 1e3:.1f} ms, {window.drops} drops)"
        faster = [p for p in candidates if preds[p.key].engine_s < cur.engine_s]
        if not faster:
            return stay(f"{why}; already the fastest point", **numbers)
        ok = [p for p in faster if p.key in feasible_keys]
        target = (
            min(ok, key=lambda p: preds[p.key].energy_j)
            if ok
            else min(faster, key=lambda p: (preds[p.key].engine_s, preds[p.key].board_w))
        )
        return move(target, why, not model.measured(target), numbers)
    if current.key not in feasible_keys and current.key in state.too_slow:
        return move(best, "slo: current point too slow", unseen, numbers)
    if now - state.last_change_s < params.dwell_s:
        return stay("dwell", **numbers)
    probe = next_probe(model, feasible, current, fps, state.probes)
    if probe is not None:
        return move(probe, f"slo: explore ({model.distinct_points} points measured)", True, numbers)
    if not model.informed and model.only_at_rate(fps):
        # The search is over: end on the cheapest point it measured, however small the gain.
        tried = [p for p in feasible if model.measured_energy_j(p, fps) is not None]
        cheapest = min(tried, key=lambda p: model.measured_energy_j(p, fps) or 0.0, default=None)
        here = model.measured_energy_j(current, fps)
        if cheapest is not None and cheapest.key[:3] != current.key[:3] and here is not None:
            gain = 1.0 - (model.measured_energy_j(cheapest, fps) or here) / here
            if gain > params.hysteresis / 2:
                return move(cheapest, "slo: the cheapest point measured", False, numbers)
    saving = (cur.energy_j - best_pred.energy_j) / max(cur.energy_j, 1e-9)
    if current.key in feasible_keys and saving <= params.hysteresis:
        return stay("slo: settled", **numbers)[0], dataclasses.replace(state, converged=True)
    numbers["saving_pct"] = round(saving * 100, 1)
    return move(
        best,
        "slo: less energy per inference"
        if current.key in feasible_keys
        else "slo: current point predicted to miss",
        unseen,
        numbers,
    )
