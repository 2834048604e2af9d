"""The fan's PWM and the EMC (memory) clock, for the status view.

Paths (as jtop reads them, https://github.com/rbonghi/jetson_stats ``jtop/core/fan.py`` and
``jtop/core/memory.py``):

- L4T 32 (TX2, Xavier): ``/sys/devices/pwm-fan/target_pwm`` and ``cur_pwm``, 0-255.
- L4T 35+ (Orin): a hwmon named ``pwmfan`` with ``pwm1``, 0-255.
- EMC: the BPMP debugfs clock ``/sys/kernel/debug/bpmp/debug/clk/emc/rate`` in Hz (debugfs
  is readable by root only; without it the EMC rate is unknown, not an error).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from edge_agent.errors import SysfsError
from edge_agent.hardware.root import Root

logger = logging.getLogger(__name__)

LEGACY_FAN_DIR = "sys/devices/pwm-fan"
HWMON_CLASS = "sys/class/hwmon"
FAN_HWMON_NAMES = frozenset({"pwmfan", "pwm-fan"})
EMC_RATE = "sys/kernel/debug/bpmp/debug/clk/emc/rate"
PWM_MAX = 255


@dataclass(frozen=True, slots=True)
class FanState:
    """The fan's PWM duty (0-255) and where it was read."""

    pwm: int
    path: str

    @property
    def percent(self) -> float:
        return round(100.0 * self.pwm / PWM_MAX, 1)


def _read_int(root: Root, rel: str) -> int | None:
    try:
        return root.read_int(rel)
    except SysfsError as err:
        logger.debug("%s: %s", rel, err)
        return None


def read_fan(root: Root) -> FanState | None:
    """The fan's current PWM, or None on a board without a PWM fan."""
    for name in ("cur_pwm", "target_pwm"):
        rel = f"{LEGACY_FAN_DIR}/{name}"
        if root.exists(rel):
            value = _read_int(root, rel)
            if value is not None:
                return FanState(value, rel)
    for hwmon in sorted(root.glob(f"{HWMON_CLASS}/hwmon*")):
        base = root.relative(hwmon)
        try:
            name = root.read_text(f"{base}/name")
        except SysfsError:
            continue
        if name in FAN_HWMON_NAMES:
            value = _read_int(root, f"{base}/pwm1")
            if value is not None:
                return FanState(value, f"{base}/pwm1")
    return None


def read_emc_rate_hz(root: Root) -> int | None:
    """The EMC clock in Hz, or None where debugfs is absent or unreadable."""
    return _read_int(root, EMC_RATE) if root.exists(EMC_RATE) else None
