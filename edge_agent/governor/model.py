"""The online model of latency and power per operating point, learned from measured windows.

Latency: the engine time of one inference is fitted as ``a / gpu + b / emc + c`` (clock-bound
work, memory-bound work, fixed overhead), by non-negative least squares over the distinct points
measured for the current model. Until three points are measured the fit is anchored on a prior
that splits the first measurement 80/20 between GPU- and memory-bound work (the simulated and
published ResNet-50 figures both scale with the GPU clock less than linearly).

Power: the board's mean watts are fitted as ``idle(emc) + u * busy(gpu, emc, cpu)`` with ``u``
the engine's busy share; the features are ``[1, e, u, u*g, u*g^3, u*e, u*c]`` on clocks
normalised to the table's top entry (``g^3`` stands for f*V(f)^2 on the upper voltage ramp).
The fit is a ridge regression pulled towards the mean measured power, so one or two windows
give a flat, cautious model and each probe sharpens it.

The model is immutable: :meth:`OnlineModel.observe` returns a new one, so a decision stays a
pure function of (state, window).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge_agent.governor.points import OperatingPoint

PRIOR_GPU_SHARE = 0.8  # share of the first measured engine time assumed clock-bound
RIDGE = 1e-3  # ridge weight of the power fit (relative to the data's scale)
MAX_OBS = 64  # observations kept per model (oldest dropped first)


@dataclass(frozen=True, slots=True)
class Observation:
    """One settled window's measurements at one point."""

    point: OperatingPoint
    engine_s_per_inference: float
    utilization: float
    board_w: float
    tail_ratio: float  # p99 latency / engine time per batch
    input_fps: float = 0.0


@dataclass(frozen=True, slots=True)
class Scales:
    """The top of each table: clocks are normalised by these."""

    gpu_hz: int
    emc_hz: int
    cpu_khz: int


@dataclass(frozen=True, slots=True)
class OnlineModel:
    """Observations for one served model, and the fits drawn from them."""

    scales: Scales
    observations: tuple[Observation, ...] = ()
    # Learned from another model served earlier: the shape of its latency fit (a, b, c) and its
    # power observations (board power depends on clocks and busy share far more than on the
    # network), so a model change needs no new exploration.
    shape: tuple[float, float, float] | None = None
    inherited_power: tuple[Observation, ...] = ()
    _cache: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    def observe(self, obs: Observation) -> OnlineModel:
        kept = (*self.observations, obs)[-MAX_OBS:]
        return OnlineModel(self.scales, kept, self.shape, self.inherited_power)

    def successor(self) -> OnlineModel:
        """An empty model for the next served network that starts from what this one learned."""
        coef = self._latency_coef() if self.observations else None
        shape = tuple(float(x) for x in coef) if coef is not None and coef.any() else self.shape
        power = (*self.inherited_power, *self.observations)[-MAX_OBS:]
        return OnlineModel(self.scales, (), shape, power)  # type: ignore[arg-type]

    @property
    def informed(self) -> bool:
        """Whether the model starts from an earlier one (no exploration needed)."""
        return self.shape is not None

    def measured(self, point: OperatingPoint) -> list[Observation]:
        return [o for o in self.observations if o.point.key == point.key]

    def measured_energy_j(self, point: OperatingPoint, fps: float) -> float | None:
        """Mean measured energy per inference at ``point``'s caps at this input rate (+-10%).

        Each window's watts are divided by its own frame rate, so a window that happened to
        get one frame more (and one batch more of busy power) does not look costlier.
        """
        joules = [
            o.board_w / max(o.input_fps, 1e-6)
            for o in self.observations
            if o.point.key == point.key and abs(o.input_fps - fps) <= 0.1 * fps
        ]
        return float(np.mean(joules[-4:])) if joules else None

    def only_at_rate(self, fps: float) -> bool:
        """Whether every observation was taken at this input rate (+-10%): the first load."""
        return all(abs(o.input_fps - fps) <= 0.1 * fps for o in self.observations)

    @property
    def distinct_points(self) -> int:
        return len({o.point.key for o in self.observations})

    # --- latency ------------------------------------------------------------------------

    def _latency_coef(self) -> np.ndarray:
        cached = self._cache.get("lat")
        if isinstance(cached, np.ndarray):
            return cached
        obs = self.observations
        if not obs:
            coef = np.zeros(3)
        else:
            first = obs[0]
            if self.shape is not None:
                a, b, c = self.shape
                at_first = a * 1e9 / first.point.gpu_hz + b * 1e9 / first.point.emc_hz + c
                prior = np.array(self.shape) * first.engine_s_per_inference / max(at_first, 1e-12)
            else:
                t = first.engine_s_per_inference
                prior = np.array(
                    [
                        PRIOR_GPU_SHARE * t * first.point.gpu_hz / 1e9,
                        (1 - PRIOR_GPU_SHARE) * t * first.point.emc_hz / 1e9,
                        0.0,
                    ]
                )
            x = np.array([[1e9 / o.point.gpu_hz, 1e9 / o.point.emc_hz, 1.0] for o in obs])
            y = np.array([o.engine_s_per_inference for o in obs])
            # Ridge towards the prior: strong with one point, negligible once three differ.
            weight = 1.0 if self.distinct_points < 3 or self.shape is not None else 1e-4
            scale = float(np.mean(y)) or 1.0
            lam = weight * len(obs)
            a = x.T @ x + lam * np.diag((x**2).mean(axis=0))
            b = x.T @ y + lam * np.diag((x**2).mean(axis=0)) @ prior
            coef = np.clip(np.linalg.solve(a, b), 0.0, None)
            if not np.any(coef > 0):
                coef = np.array([0.0, 0.0, scale])
        self._cache["lat"] = coef
        return coef

    def engine_s(self, point: OperatingPoint) -> float | None:
        """Predicted engine seconds per inference at ``point`` (measured mean where known)."""
        if not self.observations:
            return None
        seen = self.measured(point)
        if seen:
            return float(np.mean([o.engine_s_per_inference for o in seen[-4:]]))
        a, b, c = self._latency_coef()
        return float(a * 1e9 / point.gpu_hz + b * 1e9 / point.emc_hz + c)

    def tail_ratio(self, point: OperatingPoint) -> float:
        """Measured p99 / engine time: at the point itself when seen, else the worst seen."""
        seen = self.measured(point)
        pool = seen[-4:] if seen else self.observations
        return max((o.tail_ratio for o in pool), default=2.0)

    # --- power --------------------------------------------------------------------------

    def _features(self, point: OperatingPoint, util: float) -> np.ndarray:
        s = self.scales
        g, e, c = point.gpu_hz / s.gpu_hz, point.emc_hz / s.emc_hz, point.cpu_khz / s.cpu_khz
        return np.array([1.0, e, util, util * g, util * g**3, util * e, util * c])

    # The features that grow with a clock: e, u*g, u*g^3, u*e, u*c (not the constant or u).
    _CLOCK_TERMS = (1, 3, 4, 5, 6)

    def _power_coef(self) -> np.ndarray:
        cached = self._cache.get("pow")
        if isinstance(cached, np.ndarray):
            return cached
        obs = (*self.inherited_power, *self.observations)
        x = np.array([self._features(o.point, o.utilization) for o in obs])
        y = np.array([o.board_w for o in obs])
        mean = float(np.mean(y))
        prior = np.zeros(x.shape[1])
        prior[0] = mean
        lam = RIDGE * len(obs)
        # Power never falls as a clock rises: a negative clock term (the idle EMC term or a
        # busy one) is dropped and the rest refitted (an active-set pass).
        active = list(range(x.shape[1]))
        coef = np.zeros(x.shape[1])
        for _ in range(x.shape[1]):
            xa = x[:, active]
            a = xa.T @ xa + lam * np.eye(len(active))
            sol = np.linalg.solve(a, xa.T @ y + lam * prior[active])
            coef = np.zeros(x.shape[1])
            coef[active] = sol
            negative = [i for i in active if i in self._CLOCK_TERMS and coef[i] < 0]
            if not negative:
                break
            active.remove(min(negative, key=lambda i: coef[i]))
        self._cache["pow"] = coef
        return coef

    def board_w(self, point: OperatingPoint, util: float) -> float | None:
        """Predicted mean board watts at ``point`` with the engine busy ``util`` of the time."""
        if not self.observations:
            return None
        measured = self.measured(point)
        seen = [o for o in measured if abs(o.utilization - util) < 0.05]
        if seen:
            return float(np.mean([o.board_w for o in seen[-4:]]))
        coef = self._power_coef()
        fit = float(self._features(point, util) @ coef)
        if not measured:
            return fit
        # Measured at another load: the fit moved by what the fit missed there (a preset runs
        # in a mode of its own, with other cores online, which its clocks do not describe).
        residual = np.mean(
            [o.board_w - self._features(o.point, o.utilization) @ coef for o in measured[-4:]]
        )
        return fit + float(residual)
