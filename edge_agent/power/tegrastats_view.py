"""Lines in the board's own ``tegrastats`` format, for ``power --watch`` and ``status --watch``.

Existing log parsers and dashboards that read tegrastats keep working on the agent's output.
Each line reads the clocks, GPU load, thermal zones and (when the root has them)
``/proc/stat`` and ``/proc/meminfo``; the rails come from the caller's power reading, with
the average since the first line as tegrastats prints it.
"""

from __future__ import annotations

import re

from edge_agent.errors import HardwareError
from edge_agent.hardware.base import PowerReading
from edge_agent.hardware.board import detect_board
from edge_agent.hardware.clocks import GpuDevfreq, find_gpu_devfreq, list_cpus, read_gpu
from edge_agent.hardware.fan import read_emc_rate_hz
from edge_agent.hardware.proc_stats import cpu_loads, read_cpu_times, read_ram_mb
from edge_agent.hardware.root import Root
from edge_agent.hardware.tegrastats_format import TegraSample, format_line
from edge_agent.hardware.thermal import read_thermal_zones

NEWEST_FORMAT = 36
_RELEASE = re.compile(r"^R(\d+)")


def l4t_major(release: str | None) -> int:
    """``R32.7.1`` -> 32; the newest format for a board without a release file."""
    match = _RELEASE.match(release or "")
    return int(match.group(1)) if match else NEWEST_FORMAT


class TegrastatsView:
    """Builds successive lines; keeps the rail averages and the previous CPU times."""

    def __init__(self, root: Root) -> None:
        self._root = root
        self.l4t_major = l4t_major(detect_board(root).l4t_release)
        self._gpu: GpuDevfreq | None = find_gpu_devfreq(root)
        self._rail_sums: dict[str, tuple[float, int]] = {}
        self._cpu_times = read_cpu_times(root)

    def sample(self, reading: PowerReading | None, wall_s: float) -> TegraSample:
        """Read the board now; ``reading`` supplies the rails (None: no rails)."""
        root = self._root
        gpu_mhz = gpu_load = None
        if self._gpu is not None:
            try:
                gpu = read_gpu(root, self._gpu)
                gpu_mhz = round(gpu.cur_hz / 1e6)
                gpu_load = None if gpu.load_permille is None else round(gpu.load_permille / 10)
            except HardwareError:
                pass
        emc_hz = read_emc_rate_hz(root)
        return TegraSample(
            wall_s=wall_s,
            ram_mb=read_ram_mb(root),
            cpus=self._cpus(),
            emc_mhz=None if emc_hz is None else round(emc_hz / 1e6),
            gpu_mhz=gpu_mhz,
            gpu_load_pct=gpu_load,
            temps_c={
                z.name: z.temp_c
                for z in read_thermal_zones(root)
                if z.online and z.temp_c is not None
            },
            rails_mw=self._rails(reading),
        )

    def line(self, reading: PowerReading | None, wall_s: float) -> str:
        """One line in this board's tegrastats format."""
        return format_line(self.sample(reading, wall_s), self.l4t_major)

    def _rails(self, reading: PowerReading | None) -> dict[str, tuple[int, int]]:
        if reading is None:
            return {}
        out = {}
        for rail in reading.rails:
            if rail.name in reading.offline:
                continue
            total, count = self._rail_sums.get(rail.name, (0.0, 0))
            total, count = total + rail.power_mw, count + 1
            self._rail_sums[rail.name] = (total, count)
            out[rail.name] = (round(rail.power_mw), round(total / count))
        return out

    def _cpus(self) -> list[tuple[int, int] | None]:
        now = read_cpu_times(self._root)
        before, self._cpu_times = self._cpu_times, now
        if before is None or now is None:
            return []  # loads need two reads of /proc/stat
        loads = cpu_loads(before, now)
        cores: list[tuple[int, int] | None] = []
        for cpu in list_cpus(self._root):
            if not cpu.online or cpu.cur_khz is None or cpu.index not in loads:
                cores.append(None)
            else:
                cores.append((loads[cpu.index], round(cpu.cur_khz / 1000)))
        return cores
