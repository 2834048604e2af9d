"""The simulated board's power model: rail readings from clock caps and engine activity.

Dynamic power grows with f * V(f)^2; V(f) is flat at the board's minimum voltage and rises
linearly towards the top of the GPU table, which is what makes Max-Q (lower clocks, lower
voltage) do more inferences per joule than Max-P. The GPU constants of the TX2 are fitted to the
published TX2 figures (see :mod:`edge_agent.sim.perf_model`).

``busy`` is the GPU activity: the fraction of time the engine runs, weighted by how hard the
workload drives the GPU (1.0 = the board's reference load). The simulated engine reports
:func:`edge_agent.sim.perf_model.gpu_activity` while it runs, so the GPU rail reads its model's
watts.

Idle power is calibrated to real idle captures (``tests/data/captures``), because at camera
frame rates the board idles most of the time and idle power decides energy per inference:
- TX2 (L4T 32 tegrastats, A57 x4 at 345 MHz, EMC 4%@1600 MHz): VDD_SYS_GPU 152, VDD_SYS_SOC 687,
  VDD_SYS_CPU 152, VDD_SYS_DDR 883 mW. The sim reads 150, 687, 152 and 884 mW there. Its VDD_IN
  reads 2.64 W against the capture's 3.06 W: the input rail's base is pinned by the published
  2017 full-load figures (Max-Q ResNet-50 5.4 W), which a 3.06 W idle would push to 5.8 W; the
  two sources disagree by 0.4 W and the sim keeps the published one.
- Orin Nano (R39 tegrastats, 6 cores at 729 MHz, EMC 1%@3199 MHz): VDD_IN 3582, VDD_CPU_GPU_CV
  611, VDD_SOC 1208 mW; the sim reads the same.
Both captures show the EMC idling at its cap, so the memory's clocked background power (PHY, DLL,
clock tree, I/O: ``emc_clocked_mw``) is drawn at idle and scales with the EMC clock; only the
traffic part (``emc_mw``) grows with load. On the TX2 the DDR rail's idle reading fixes the sum
and the published full-load figures fix the traffic part (full-load DDR power is unchanged from
the earlier model); the split of the rest, 80% clocked and 20% fixed (self-refresh, leakage),
is an assumption, not a published figure. On the Orin Nano, DDR power is not on a measured rail,
and the SOC rail's EMC share keeps its earlier 30% idle fraction.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.clock import Clock
from edge_agent.sim import sysfs
from edge_agent.sim.rails import write_rail
from edge_agent.sim.releases import spec_at
from edge_agent.sim.spec import BoardSpec, PowerParams

logger = logging.getLogger(__name__)

DROOP_MV_PER_A = 16.0  # series resistance of the supply: voltage sags a little with load


@dataclass(frozen=True, slots=True)
class ClockState:
    """The clock limits the power model reads from the tree."""

    gpu_min_hz: int
    gpu_max_hz: int
    cpu: tuple[tuple[int, int, int], ...]  # per cluster: (online cores, min kHz, max kHz)
    emc_hz: int


def read_state(root: Path, spec: BoardSpec) -> ClockState:
    """Read the GPU, CPU and EMC limits and the online CPUs from the tree."""
    dev = sysfs.devfreq_dir(root, spec)
    online = set(sysfs.online_cpus(root, spec))
    cpu = []
    for cluster in spec.clusters:
        pol = sysfs.policy_dir(root, cluster.policy)
        cpu.append(
            (
                len(online & set(cluster.cpus)),
                sysfs.read_int(pol / "scaling_min_freq", min(cluster.freqs_khz)),
                sysfs.read_int(pol / "scaling_max_freq", max(cluster.freqs_khz)),
            )
        )
    return ClockState(
        gpu_min_hz=sysfs.read_int(dev / "min_freq", min(spec.gpu.freqs_hz)),
        gpu_max_hz=sysfs.read_int(dev / "max_freq", max(spec.gpu.freqs_hz)),
        cpu=tuple(cpu),
        emc_hz=sysfs.emc_rate_hz(root, spec),
    )


def gpu_voltage_mv(params: PowerParams, gpu_hz: float, top_hz: float) -> float:
    """The GPU rail voltage at ``gpu_hz``: flat at vmin, then linear up to vmax at the top."""
    below_top_mhz = max(0.0, (top_hz - gpu_hz) / 1e6)
    return max(params.gpu_vmin_mv, params.gpu_vmax_mv - params.gpu_slope_mv_per_mhz * below_top_mhz)


def gpu_dynamic_scale(spec: BoardSpec, gpu_hz: float) -> float:
    """f * V(f)^2 relative to the reference clock (1.0 at ``gpu_ref_hz``)."""
    p, top = spec.power, max(spec.gpu.freqs_hz)
    v_ref = gpu_voltage_mv(p, p.gpu_ref_hz, top)
    return (gpu_hz / p.gpu_ref_hz) * (gpu_voltage_mv(p, gpu_hz, top) / v_ref) ** 2


def gpu_power_mw(spec: BoardSpec, gpu_hz: float, activity: float) -> float:
    """GPU power: rail-gated floor, plus leakage and dynamic power while active."""
    p = spec.power
    active = p.gpu_static_mw - p.gpu_idle_mw + p.gpu_dyn_ref_mw * gpu_dynamic_scale(spec, gpu_hz)
    return p.gpu_idle_mw + max(0.0, activity) * active


def part_powers_mw(spec: BoardSpec, state: ClockState, busy: float) -> dict[str, float]:
    """Power of each part (gpu, cpu, emc, soc) in mW for the given clocks and activity."""
    p = spec.power
    load = min(max(busy, 0.0), 1.0)
    gpu_hz = state.gpu_max_hz if busy > 0 else state.gpu_min_hz
    # The host thread that feeds the GPU keeps the CPUs partly busy while the engine runs.
    util = 0.05 + 0.25 * load
    cpu_mw = 0.0
    for cluster, (online, lo_khz, hi_khz) in zip(spec.clusters, state.cpu, strict=True):
        top = max(cluster.freqs_khz)
        bottom = min(cluster.freqs_khz)
        khz = sysfs.running_freq(cluster.freqs_khz, lo_khz, hi_khz, hi_khz if busy > 0 else 0)
        volt = 0.8 + 0.3 * (khz - bottom) / max(1, top - bottom)  # relative to 1.1 V at the top
        per_core = p.cpu_core_mw * (khz / top) * (volt / 1.1) ** 2 * util
        cpu_mw += online * (per_core + p.cpu_leak_mw)
    emc_share = state.emc_hz / spec.emc.max_hz
    emc_mw = p.emc_clocked_mw * emc_share + p.emc_mw * emc_share * (0.3 + 0.7 * load)
    return {
        "gpu": gpu_power_mw(spec, gpu_hz, busy),
        "cpu": cpu_mw,
        "emc": emc_mw,
        "soc": p.soc_busy_mw * load,
    }


def rail_powers_mw(spec: BoardSpec, state: ClockState, busy: float) -> dict[str, float]:
    """Power on every modelled rail in mW; the input rail sums the module rails."""
    parts = part_powers_mw(spec, state, busy)
    rails: dict[str, float] = {}
    for rail in spec.rails:
        if "input" not in rail.parts:
            rails[rail.name] = rail.idle_mw + sum(parts[name] for name in rail.parts)
    module = sum(rails.values())
    for rail in spec.rails:
        if "input" in rail.parts:
            rails[rail.name] = spec.power.input_base_mw + module / spec.power.input_efficiency
    return rails


def rail_readings(spec: BoardSpec, powers_mw: dict[str, float]) -> dict[str, tuple[int, int]]:
    """``{rail: (voltage_mv, current_ma)}`` for the given powers, with a small supply droop."""
    out: dict[str, tuple[int, int]] = {}
    for dev in spec.ina:
        for ch, name in enumerate(dev.rails):
            if name == "NC" or name not in powers_mw:
                continue
            nominal = dev.nominal_mv[ch]
            current_ma = powers_mw[name] * 1000.0 / nominal
            voltage_mv = nominal - DROOP_MV_PER_A * current_ma / 1000.0
            out[name] = (round(voltage_mv), round(powers_mw[name] * 1000.0 / voltage_mv))
    return out


class PowerModel:
    """A thread that rewrites a simulated board's rail, load, clock and temperature files."""

    def __init__(
        self,
        root: Path,
        clock: Clock,
        interval_s: float = 0.05,
        busy: Callable[[], float] | None = None,
    ) -> None:
        self.root = Path(root)
        self.spec = _spec_of(self.root)
        self.clock = clock
        self.interval_s = interval_s
        self.busy = busy or (lambda: 0.0)
        self.last_powers_mw: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: set[str] = set()
        self._last_key: tuple[ClockState, float] | None = None

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sim-power-model", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop."""
        self._stop.set()

    def join(self, timeout_s: float = 5.0) -> bool:
        """Wait for the thread; True when it has ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.step(self.clock.monotonic())

    def step(self, now: float) -> dict[str, float]:
        """Read the clocks, compute the rails for the current activity and write them.

        Returns:
            The rail powers in mW that were written.
        """
        # 0.1% resolution: finer changes are below what an INA3221 resolves on these rails.
        busy = round(max(0.0, float(self.busy())), 3)
        state = read_state(self.root, self.spec)
        powers = rail_powers_mw(self.spec, state, busy)
        # Files are rewritten only when the inputs change (or a write failed last time), which
        # keeps a steady simulated board almost free to run at 20 Hz.
        key = (state, busy)
        if key == self._last_key and not self._failing:
            return powers
        parts = part_powers_mw(self.spec, state, busy)
        self._guard("clocks", lambda: self._write_clocks(state, busy))
        for name, (mv, ma) in rail_readings(self.spec, powers).items():
            self._guard(name, functools.partial(write_rail, self.root, self.spec, name, mv, ma))
        self._guard("thermal", lambda: self._write_temps(parts))
        self._last_key = key
        self.last_powers_mw = powers
        logger.debug("sim power at %.3f: busy %.2f, rails %s", now, busy, powers)
        return powers

    def _guard(self, what: str, action: Callable[[], None]) -> None:
        # A test may make a file immutable to simulate a failing sensor; keep running and say
        # so once, when the failure starts and when it ends.
        try:
            action()
        except OSError as err:
            if what not in self._failing:
                logger.warning("sim power model: cannot update %s: %s", what, err)
                self._failing.add(what)
            return
        if what in self._failing:
            self._failing.discard(what)
            logger.info("sim power model: %s updates again", what)

    def _write_clocks(self, state: ClockState, busy: float) -> None:
        spec, root = self.spec, self.root
        dev = sysfs.devfreq_dir(root, spec)
        gpu_hz = state.gpu_max_hz if busy > 0 else state.gpu_min_hz
        sysfs.update_if_changed(dev / "cur_freq", f"{gpu_hz}\n")
        load = sysfs.board_path(root, spec.gpu.device_dir) / "load"
        sysfs.update_if_changed(load, f"{round(min(busy, 1.0) * 1000)}\n")
        for cluster, (_online, lo_khz, hi_khz) in zip(spec.clusters, state.cpu, strict=True):
            khz = sysfs.running_freq(cluster.freqs_khz, lo_khz, hi_khz, hi_khz if busy > 0 else 0)
            pol = sysfs.policy_dir(root, cluster.policy)
            sysfs.update_if_changed(pol / "scaling_cur_freq", f"{khz}\n")
            sysfs.update_if_changed(pol / "cpuinfo_cur_freq", f"{khz}\n")
        sysfs.settle(root, spec)

    def _write_temps(self, parts: dict[str, float]) -> None:
        zones = self.root / "sys/devices/virtual/thermal"
        for index, zone in enumerate(self.spec.thermal):
            if not zone.heats_with or zone.temp_mc <= -256000:
                continue
            # A crude steady state: about 6 C per watt of the part above the idle temperature.
            temp_mc = zone.temp_mc + round(6.0 * parts[zone.heats_with])
            # An idle (rail-gated) GPU leaves its sensor offline: -256 C.
            if zone.offline_idle and parts[zone.heats_with] <= self.spec.power.gpu_idle_mw:
                temp_mc = -256000
            sysfs.update_if_changed(zones / f"thermal_zone{index}/temp", f"{temp_mc}\n")


def _spec_of(root: Path) -> BoardSpec:
    return spec_at(root)
