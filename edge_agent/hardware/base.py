"""Protocols every hardware backend satisfies, and the readings they return.

Readings are immutable and carry their unit in every field name. Power monitors return one
:class:`PowerReading` per call: every rail read in that pass, the board total and, where the
hardware keeps one (NVML), a cumulative energy counter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

SUM_OF_RAILS = "sum of rails"
"""The total's name when the board has no input rail and the total is the rail sum."""


@dataclass(frozen=True, slots=True)
class RailReading:
    """One rail in one sampling pass.

    ``voltage_mv``/``current_ma`` are None where the backend only knows power (NVML).
    ``warn_ma``/``crit_ma`` are the monitor's current limits; None when the rail has none.
    """

    name: str
    power_mw: float
    voltage_mv: float | None = None
    current_ma: float | None = None
    warn_ma: float | None = None
    crit_ma: float | None = None


@dataclass(frozen=True, slots=True)
class PowerReading:
    """Every rail read in one pass, stamped with the injected clock's monotonic time.

    Attributes:
        t_s: monotonic seconds (the midpoint of the pass).
        rails: the rails read in this pass, in discovery order. A rail whose value was
            mid-rewrite is left out of this pass; a rail whose file vanished is in ``offline``.
        total_name: ``VDD_IN``/``POM_5V_IN``/``VIN``, or ``"sum of rails"``.
        total_mw: the board total; None when the total rail (or, for a sum, any rail) was
            skipped in this pass, so the ledger bridges the gap instead of seeing a dip.
        total_is_sum: True when the total is the sum of the connected rails.
        gpu_rail: the rail that feeds the GPU, for the per-GPU figures; None if unknown.
        energy_mj: a hardware cumulative energy counter for the total (NVML), else None.
        offline: rails whose files are missing or unreadable right now.
    """

    t_s: float
    rails: tuple[RailReading, ...]
    total_name: str
    total_mw: float | None
    total_is_sum: bool = False
    gpu_rail: str | None = None
    energy_mj: float | None = None
    offline: tuple[str, ...] = ()

    def rail(self, name: str) -> RailReading | None:
        """The rail called ``name`` in this pass, or None."""
        for rail in self.rails:
            if rail.name == name:
                return rail
        return None

    @property
    def total_w(self) -> float | None:
        """The board total in watts."""
        return None if self.total_mw is None else self.total_mw / 1000.0


@runtime_checkable
class PowerMonitor(Protocol):
    """A source of power readings: INA3221/INA238, jtop, NVML, a simulated board, or none.

    Attributes:
        source: the backend label (``ina3221``, ``ina238``, ``jtop``, ``nvml``, ``sim``,
            ``none``).
        available: False when the hardware is absent; ``reason`` then says why.
        reason: a one-line explanation of the state, for operators.
    """

    source: str
    available: bool
    reason: str

    def rail_names(self) -> list[str]:
        """The rails this monitor reports, in order."""
        ...

    def read(self) -> PowerReading:
        """Read every rail once.

        Raises:
            HardwareError: the monitor is unavailable or its backend failed (NVML, jtop).
            Vanished INA files are not an error: those rails are listed in ``offline``.
        """
        ...

    def close(self) -> None:
        """Release handles (NVML, jtop); safe to call twice."""
        ...


class RawSample(NamedTuple):
    """One pass of a monitor kept raw: cheap to take, decoded only when someone asks.

    Attributes:
        t_s: monotonic seconds, as :attr:`PowerReading.t_s`.
        data: the monitor's own form of the values; only that monitor's ``decode`` reads it.
        near_limit: some rail is at or above its lowest warn/crit limit, so the sampler must
            decode this pass now to check it.
    """

    t_s: float
    data: Any
    near_limit: bool


@runtime_checkable
class RawSampling(Protocol):
    """A monitor with a cheap hot path for the sampler (the INA3221 reader has one).

    ``sample()`` returns None when only a full :meth:`PowerMonitor.read` will do (a value
    half written, a rail gone); the sampler then calls ``read()``.
    """

    def sample(self) -> RawSample | None:
        """One pass, kept raw."""
        ...

    def decode(self, raw: RawSample) -> PowerReading:
        """The reading a raw sample stands for."""
        ...


def gpu_rail_name(names: list[str]) -> str | None:
    """The rail that feeds the GPU: a GPU-only rail if there is one, else a shared one.

    TX2 ``VDD_SYS_GPU``, Nano ``POM_5V_GPU``, AGX Xavier ``GPU`` are GPU-only; Orin's
    ``VDD_CPU_GPU_CV`` and ``VDD_GPU_SOC`` are shared with other blocks, the closest there is.
    """
    shared: str | None = None
    for name in names:
        parts = name.upper().replace("-", "_").split("_")
        if "GPU" not in parts:
            continue
        if not {"CPU", "SOC", "CV"} & set(parts):
            return name
        if shared is None:
            shared = name
    return shared
