"""Pick the power monitor backend: an explicit dict from the config literal to a factory.

``auto`` tries the board's own monitors first (INA3221/INA238 under the root), then a running
jtop service, then NVML (dGPU hosts), and falls back to ``none``; the returned text says which
was chosen and why the others were not. jtop and NVML read the machine this process runs on,
not the root, so ``auto`` only tries them when the root is ``/``: a simulated or captured tree
must not report the host's GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from edge_agent.clock import Clock
from edge_agent.errors import HardwareError
from edge_agent.hardware.base import PowerMonitor, PowerReading
from edge_agent.hardware.ina3221 import InaMonitor
from edge_agent.hardware.jtop_power import JtopMonitor
from edge_agent.hardware.nvml import NvmlMonitor
from edge_agent.hardware.root import Root

logger = logging.getLogger(__name__)


class UnavailableMonitor:
    """The ``none`` backend: no readings, a reason."""

    def __init__(self, reason: str, source: str = "none") -> None:
        self.source = source
        self.available = False
        self.reason = reason

    def rail_names(self) -> list[str]:
        """No rails."""
        return []

    def read(self) -> PowerReading:
        """Always fails.

        Raises:
            HardwareError: there is no monitor.
        """
        raise HardwareError(f"no power monitor: {self.reason}")

    def close(self) -> None:
        """Nothing to release."""


def _ina(root: Root, clock: Clock) -> PowerMonitor:
    return InaMonitor(root, clock)


def _sim(root: Root, clock: Clock) -> PowerMonitor:
    # The simulator writes real INA3221 files, so the reader is the real one; only the label
    # tells operators the numbers come from a model.
    return InaMonitor(root, clock, source="sim")


def _jtop(root: Root, clock: Clock) -> PowerMonitor:
    return JtopMonitor(root, clock)


def _nvml(root: Root, clock: Clock) -> PowerMonitor:
    return NvmlMonitor(clock)


def _none(root: Root, clock: Clock) -> PowerMonitor:
    return UnavailableMonitor("power monitoring is off (monitor: none)")


BACKENDS: dict[str, Callable[[Root, Clock], PowerMonitor]] = {
    "ina3221": _ina,
    "jtop": _jtop,
    "nvml": _nvml,
    "sim": _sim,
    "none": _none,
}
"""Config literal (``power.monitor``) to backend factory."""

AUTO_ORDER = ("ina3221", "jtop", "nvml")
HOST_ONLY = frozenset({"jtop", "nvml"})
"""Backends that read the running machine whatever the root is; ``auto`` skips them off ``/``."""


def open_monitor(kind: str, root: Root, clock: Clock) -> tuple[PowerMonitor, str]:
    """Open the monitor named by ``kind`` (``auto`` picks the best one available).

    An explicit backend that is unavailable is returned as is (``available`` False, with its
    reason) so the caller reports it once; ``auto`` returns an :class:`UnavailableMonitor`
    listing every reason when nothing is found. Off ``/``, ``auto`` tries only the monitors
    under the root (jtop and NVML would read the host); an explicit ``jtop``/``nvml`` is
    opened whatever the root.

    Args:
        kind: ``auto``, ``ina3221``, ``jtop``, ``nvml``, ``sim`` or ``none``.
        root: the filesystem root.
        clock: stamps every reading.

    Returns:
        The monitor and one line that explains the choice.

    Raises:
        HardwareError: ``kind`` is not a known backend.
    """
    if kind != "auto":
        factory = BACKENDS.get(kind)
        if factory is None:
            known = ", ".join(["auto", *BACKENDS])
            raise HardwareError(f"unknown power monitor {kind!r} (known: {known})")
        monitor = factory(root, clock)
        state = "" if monitor.available else " (unavailable)"
        return monitor, f"{monitor.source}{state}: {monitor.reason}"
    reasons: list[str] = []
    on_host = root.path.resolve() == Path("/")
    for name in AUTO_ORDER:
        if name in HOST_ONLY and not on_host:
            reasons.append(f"{name}: skipped, the root {root.path} is not this host's /")
            continue
        monitor = BACKENDS[name](root, clock)
        if monitor.available:
            skipped = f" (skipped: {'; '.join(reasons)})" if reasons else ""
            return monitor, f"auto chose {monitor.source}: {monitor.reason}{skipped}"
        reasons.append(f"{name}: {monitor.reason}")
        monitor.close()
    reason = "; ".join(reasons)
    return UnavailableMonitor(f"no power monitor found ({reason})"), f"auto found none: {reason}"
