"""A first-order thermal model of the simulated board, with the kernel's throttling at a trip.

The GPU zone follows ``dT/dt = (T_ss - T) / tau`` with ``T_ss = T_idle + ambient_rise_c +
C_PER_W * P_gpu``: the zone's idle temperature from the board spec, plus how much warmer the room
is than the spec's idle reading, plus a thermal resistance times the GPU power. When the zone
reaches ``trip_c`` the board throttles as L4T's software throttling does: the GPU clock is held
at or below ``THROTTLE_SHARE`` of its top entry until the zone has cooled ``TRIP_HYSTERESIS_C``
below the trip.

Constants (simulated; none is a published figure for these boards):
- ``C_PER_W = 6.0``: the same 6 C per watt the sim's power model already uses for its steady
  temperatures (:mod:`edge_agent.sim.power_model`), so both agree at steady state.
- ``TAU_S = 20.0``: an assumed time constant for a module with a passive heatsink (tens of
  seconds); it only sets how fast the zone approaches its steady temperature.
- ``TRIP_C = 95.0``, ``TRIP_HYSTERESIS_C = 5.0``, ``THROTTLE_SHARE = 0.6``: an assumed software
  throttling trip below the Jetson's ~100 C thermal shutdown range, its hysteresis, and the
  throttled GPU cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from edge_agent.sim.boards import BoardSpec
from edge_agent.sim.sysfs import floor_freq

C_PER_W = 6.0
TAU_S = 20.0
TRIP_C = 95.0
TRIP_HYSTERESIS_C = 5.0
THROTTLE_SHARE = 0.6


def gpu_zone_idle_c(spec: BoardSpec) -> float:
    """The idle temperature of the zone the GPU heats (the hottest such zone)."""
    temps = [z.temp_mc / 1000.0 for z in spec.thermal if z.heats_with == "gpu"]
    return max(temps) if temps else 40.0


@dataclass
class ThermalModel:
    """The GPU zone's temperature and the board's throttling state."""

    spec: BoardSpec
    ambient_rise_c: float = 0.0
    trip_c: float = TRIP_C
    temp_c: float = field(default=float("nan"))
    throttled: bool = False
    throttle_events: int = 0
    max_temp_c: float = field(default=float("-inf"))

    def __post_init__(self) -> None:
        if math.isnan(self.temp_c):
            self.temp_c = gpu_zone_idle_c(self.spec) + self.ambient_rise_c
        self.max_temp_c = self.temp_c

    def steady_c(self, gpu_w: float) -> float:
        return gpu_zone_idle_c(self.spec) + self.ambient_rise_c + C_PER_W * gpu_w

    def step(self, gpu_w: float, dt_s: float) -> float:
        """Advance ``dt_s`` at mean GPU power ``gpu_w``; returns the new temperature."""
        target = self.steady_c(gpu_w)
        self.temp_c = target + (self.temp_c - target) * math.exp(-dt_s / TAU_S)
        self.max_temp_c = max(self.max_temp_c, self.temp_c)
        if not self.throttled and self.temp_c >= self.trip_c:
            self.throttled = True
            self.throttle_events += 1
        elif self.throttled and self.temp_c < self.trip_c - TRIP_HYSTERESIS_C:
            self.throttled = False
        return self.temp_c

    def gpu_limit_hz(self) -> int | None:
        """The GPU cap the throttling imposes, or None when not throttled."""
        if not self.throttled:
            return None
        table = self.spec.gpu.freqs_hz
        return floor_freq(table, int(max(table) * THROTTLE_SHARE))
