"""Power rails from a running jtop service (``jetson-stats``), for boards where jtop runs as root.

Used only when ``jtop`` is importable and its socket exists under the root
(``run/jtop.sock``). jtop removes the input rail from ``power['rail']`` and reports it as
``power['tot']`` with a ``name``; it is put back as a rail here so every backend lists the
same rails. jtop's ``avg`` is an EMA (``(new + old) // 2``) and is ignored: the ledger averages.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from edge_agent.clock import Clock
from edge_agent.errors import HardwareError
from edge_agent.hardware.base import SUM_OF_RAILS, PowerReading, RailReading, gpu_rail_name
from edge_agent.hardware.root import Root

logger = logging.getLogger(__name__)

SOCKET = "run/jtop.sock"


def _rail(name: str, data: dict[str, Any]) -> RailReading | None:
    power = data.get("power")
    if power is None or not data.get("online", True):
        return None
    volt, curr = data.get("volt"), data.get("curr")
    warn, crit = data.get("warn"), data.get("crit")
    return RailReading(
        name=name,
        power_mw=float(power),
        voltage_mv=None if volt is None else float(volt),
        current_ma=None if curr is None else float(curr),
        warn_ma=None if warn is None else float(warn),
        crit_ma=None if crit is None else float(crit),
    )


def reading_from_jtop(power: dict[str, Any], t_s: float) -> PowerReading:
    """Convert jtop's ``jetson.power`` dict into a :class:`PowerReading`."""
    rails: list[RailReading] = []
    offline: list[str] = []
    for name, data in (power.get("rail") or {}).items():
        rail = _rail(str(name), data)
        if rail is None:
            offline.append(str(name))
        else:
            rails.append(rail)
    tot: dict[str, Any] = power.get("tot") or {}
    total_name = tot.get("name")
    if total_name:
        total_rail = _rail(str(total_name), tot)
        if total_rail is not None:
            rails.insert(0, total_rail)
        total_mw = None if tot.get("power") is None else float(tot["power"])
    else:
        total_mw = sum(r.power_mw for r in rails) if rails else None
    names = [r.name for r in rails if r.name != total_name]
    return PowerReading(
        t_s=t_s,
        rails=tuple(rails),
        total_name=str(total_name) if total_name else SUM_OF_RAILS,
        total_mw=total_mw,
        total_is_sum=not total_name,
        gpu_rail=gpu_rail_name(names),
        offline=tuple(offline),
    )


class JtopMonitor:
    """Reads ``jetson.power`` from the jtop service.

    Args:
        root: the filesystem root; the service socket must exist at ``run/jtop.sock``.
        clock: stamps every reading.
        interval_s: the period jtop is asked to refresh at.
    """

    def __init__(self, root: Root, clock: Clock, *, interval_s: float = 0.5) -> None:
        self.source = "jtop"
        self.available = False
        self._clock = clock
        self._jetson: Any = None
        try:
            module = importlib.import_module("jtop")
        except ImportError:
            self.reason = "jtop is not installed (pip install jetson-stats)"
            return
        if not root.exists(SOCKET):
            self.reason = f"no jtop service: {root.display(SOCKET)} does not exist"
            return
        try:
            jetson = module.jtop(interval=interval_s)
            jetson.start()
        except (module.JtopException, OSError) as err:
            self.reason = f"jtop service refused the connection: {err}"
            return
        self._jetson = jetson
        self.available = True
        self.reason = "jtop service"

    def rail_names(self) -> list[str]:
        """The rails jtop reports, the input rail first."""
        if self._jetson is None:
            return []
        return [r.name for r in self.read().rails]

    def close(self) -> None:
        """Disconnect from the service; safe to call twice."""
        if self._jetson is not None:
            jetson, self._jetson = self._jetson, None
            jetson.close()

    def read(self) -> PowerReading:
        """The service's latest power dict, stamped now.

        Raises:
            HardwareError: the service is unavailable or has gone away.
        """
        if self._jetson is None:
            raise HardwareError(self.reason or "jtop closed")
        # jtop is a Thread; ok() would block until the next sample on some versions.
        if not self._jetson.is_alive():
            raise HardwareError("jtop service stopped")
        return reading_from_jtop(dict(self._jetson.power), self._clock.monotonic())
