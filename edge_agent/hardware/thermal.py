"""Thermal zones: ``/sys/class/thermal/thermal_zoneN/{type,temp}`` (temp in millidegrees C).

A zone whose ``temp`` fails to read (Orin Nano's cv* zones return EAGAIN) or reads -256 C
(tegrastats' and jtop's "offline" value) is reported offline, not raised.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from edge_agent.errors import SysfsError
from edge_agent.hardware.root import Root

logger = logging.getLogger(__name__)

THERMAL_CLASS = "sys/class/thermal"
# -256 C (-256000 m°C) is how the BPMP reports a sensor that is off.
OFFLINE_MILLI_C = -255000
# TX2's PMIC-Die zone always reads 100 C; jtop hides it. We keep it and flag it.
FIXED_READING_ZONES = frozenset({"PMIC-Die"})
_ZONE = re.compile(r"thermal_zone(\d+)$")


@dataclass(frozen=True, slots=True)
class ThermalZone:
    """One thermal zone reading.

    Attributes:
        index: N of ``thermal_zoneN``.
        name: the zone's ``type`` (``GPU-therm``, ``cpu-thermal``), or ``thermal_zoneN``.
        temp_c: degrees C, or None when offline.
        online: False when ``temp`` failed to read or read -256 C.
        fixed_reading: the zone is known to report a constant (TX2 ``PMIC-Die``).
    """

    index: int
    name: str
    temp_c: float | None
    online: bool
    fixed_reading: bool = False


def parse_milli_c(text: str) -> float | None:
    """Millidegrees text to degrees C; None for the -256 C offline value or non-numbers."""
    try:
        milli = int(text.strip())
    except ValueError:
        return None
    if milli <= OFFLINE_MILLI_C:
        return None
    return milli / 1000.0


def read_thermal_zone(root: Root, index: int) -> ThermalZone:
    """Read ``thermal_zone<index>``; read failures make it offline, never raise."""
    base = f"{THERMAL_CLASS}/thermal_zone{index}"
    try:
        name = root.read_text(f"{base}/type") or f"thermal_zone{index}"
    except SysfsError as err:
        logger.debug("thermal_zone%d type: %s", index, err)
        name = f"thermal_zone{index}"
    fixed = name in FIXED_READING_ZONES
    try:
        temp_c = parse_milli_c(root.read_text(f"{base}/temp"))
    except SysfsError as err:
        logger.debug("thermal zone %s offline: %s", name, err)
        return ThermalZone(index, name, None, False, fixed)
    return ThermalZone(index, name, temp_c, temp_c is not None, fixed)


def read_thermal_zones(root: Root) -> list[ThermalZone]:
    """Every thermal zone, by index, including offline ones."""
    found = (_ZONE.match(p.name) for p in root.glob(f"{THERMAL_CLASS}/thermal_zone*"))
    indices = sorted(int(m.group(1)) for m in found if m is not None)
    return [read_thermal_zone(root, index) for index in indices]
