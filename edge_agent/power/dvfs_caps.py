"""Apply a governor's clock caps through sysfs, with read-back (GPU, EMC, CPU).

Each value is snapped to the board's table before it is written, written, and read back; a
read-back that differs from the table entry is a HardwareError naming the path and both values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge_agent.clock import Clock
from edge_agent.errors import HardwareError
from edge_agent.hardware import clocks
from edge_agent.hardware.root import Root


@dataclass(frozen=True, slots=True)
class CapsApplied:
    gpu_hz: int
    emc_hz: int
    cpu_khz: int
    duration_s: float


def apply_caps(
    root: Root,
    clock: Clock,
    gpu: clocks.GpuDevfreq,
    cpus: Sequence[int],
    *,
    gpu_hz: int,
    emc_hz: int,
    cpu_khz: int,
) -> CapsApplied:
    """Write the caps (GPU ``max_freq``, the nvpmodel EMC cap, each online CPU's
    scaling_max_freq; a CPU offline now is skipped).

    Raises:
        HardwareError: a write failed or read back a different value.
    """
    start = clock.monotonic()
    state = clocks.read_gpu(root, gpu)
    if state.min_hz > gpu_hz:
        clocks.set_gpu_min_hz(root, gpu, min(state.available_hz or (gpu_hz,)))
    back = clocks.set_gpu_max_hz(root, gpu, gpu_hz)
    if back != gpu_hz:
        raise HardwareError(f"{gpu.path}/max_freq: wrote {gpu_hz}, reads {back}")
    if clocks.emc_cap_path(root) is not None:
        back = clocks.set_emc_cap_hz(root, emc_hz)
        if back != emc_hz:
            raise HardwareError(f"{clocks.emc_cap_path(root)}: wrote {emc_hz}, reads {back}")
    for cpu in cpus:
        cpu_state = clocks.read_cpu(root, cpu)
        if not cpu_state.online:
            # A preset's mode took it offline (the TX2's Max-Q parks the Denver pair): its
            # cpufreq policy may be gone until a mode brings it back, and it runs nothing.
            continue
        want = max((f for f in cpu_state.available_khz if f <= cpu_khz), default=cpu_khz)
        if cpu_state.min_khz is not None and cpu_state.min_khz > want:
            clocks.set_cpu_min_khz(root, cpu, min(cpu_state.available_khz or (want,)))
        back = clocks.set_cpu_max_khz(root, cpu, want)
        if back != want:
            raise HardwareError(f"cpu{cpu} scaling_max_freq: wrote {want}, reads {back}")
    return CapsApplied(gpu_hz, emc_hz, cpu_khz, clock.monotonic() - start)
