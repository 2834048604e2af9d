"""GPU board power and the total-energy counter through NVML (``nvidia-ml-py``), for dGPU hosts.

Power is read as NVML's instantaneous field (``NVML_FI_DEV_POWER_INSTANT``) where the driver has
it: on recent drivers ``nvmlDeviceGetPowerUsage`` is a 1 s average, which smears every edge in
a trapezoidal integral. ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load, Volta+)
is the hardware energy counter the ledger prefers for the total.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from edge_agent.clock import Clock
from edge_agent.errors import HardwareError
from edge_agent.hardware.base import SUM_OF_RAILS, PowerReading, RailReading

logger = logging.getLogger(__name__)


def _load_pynvml() -> tuple[Any, str]:
    try:
        return importlib.import_module("pynvml"), ""
    except ImportError as err:
        return None, f"pynvml is not installed ({err}); pip install nvidia-ml-py"


class NvmlMonitor:
    """One rail per NVIDIA GPU (``GPU0``, ``GPU1``...), the total being their sum if several.

    Args:
        clock: stamps every reading.
        instant: prefer the instantaneous power field over the averaged power usage.
    """

    def __init__(self, clock: Clock, *, instant: bool = True) -> None:
        self._clock = clock
        self.source = "nvml"
        self.available = False
        self.reason = ""
        self._nvml, reason = _load_pynvml()
        self._handles: list[Any] = []
        self._names: list[str] = []
        self._instant = instant
        self._has_energy = True
        self._initialised = False
        if self._nvml is None:
            self.reason = reason
            return
        nvml = self._nvml
        try:
            nvml.nvmlInit()
            self._initialised = True
            count = int(nvml.nvmlDeviceGetCount())
            for index in range(count):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                self._handles.append(handle)
                self._names.append(f"GPU{index}")
            models = [str(nvml.nvmlDeviceGetName(h)) for h in self._handles]
        except nvml.NVMLError as err:
            self.reason = f"NVML unavailable: {err}"
            self.close()
            return
        if not self._handles:
            self.reason = "NVML found no GPU"
            self.close()
            return
        self.available = True
        self.reason = f"{len(models)} GPU(s) through NVML: {', '.join(models)}"

    def rail_names(self) -> list[str]:
        """``GPU0``, ``GPU1``, ..."""
        return list(self._names)

    def close(self) -> None:
        """Shut NVML down; safe to call twice."""
        if self._initialised and self._nvml is not None:
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as err:
                logger.debug("nvmlShutdown: %s", err)

    def _power_mw(self, handle: Any) -> float:
        nvml = self._nvml
        if self._instant:
            try:
                value = nvml.nvmlDeviceGetFieldValues(handle, [nvml.NVML_FI_DEV_POWER_INSTANT])[0]
                if int(value.nvmlReturn) == nvml.NVML_SUCCESS:
                    return float(value.value.uiVal)
            except nvml.NVMLError as err:
                logger.debug("instant power unsupported, using power usage: %s", err)
            self._instant = False
        return float(nvml.nvmlDeviceGetPowerUsage(handle))

    def _energy_mj(self) -> float | None:
        if not self._has_energy:
            return None
        nvml = self._nvml
        total = 0.0
        try:
            for handle in self._handles:
                total += float(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        except nvml.NVMLError as err:
            logger.info("NVML energy counter unavailable (%s); integrating power instead", err)
            self._has_energy = False
            return None
        return total

    def read(self) -> PowerReading:
        """Read every GPU's power and the summed energy counter.

        Raises:
            HardwareError: NVML is unavailable or a read failed.
        """
        if not self.available:
            raise HardwareError(self.reason)
        start = self._clock.monotonic()
        try:
            rails = tuple(
                RailReading(name, self._power_mw(handle))
                for name, handle in zip(self._names, self._handles, strict=True)
            )
            energy_mj = self._energy_mj()
        except self._nvml.NVMLError as err:
            raise HardwareError(f"NVML read failed: {err}") from err
        single = len(rails) == 1
        return PowerReading(
            t_s=(start + self._clock.monotonic()) / 2.0,
            rails=rails,
            total_name=rails[0].name if single else SUM_OF_RAILS,
            total_mw=sum(r.power_mw for r in rails),
            total_is_sum=not single,
            gpu_rail=rails[0].name if single else None,
            energy_mj=energy_mj,
        )
