"""Data types describing a simulated Jetson board (see :mod:`edge_agent.sim.boards`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InaDevice:
    """One INA3221 chip: three channels on an I2C address."""

    bus_addr: str  # "0-0040"
    device_dir: str  # the real /sys/devices/... directory of the I2C client
    driver: str  # "ina3221x" (legacy iio) or "ina3221" (hwmon)
    index: int  # N of iio:deviceN, or K of hwmon/hwmonK
    rails: tuple[str, str, str]
    nominal_mv: tuple[int, int, int]
    crit_ma: tuple[int, int, int] = (32760, 32760, 32760)
    warn_ma: tuple[int, int, int] = (32760, 32760, 32760)
    shunt_uohm: int = 5000

    @property
    def iio(self) -> bool:
        return self.driver == "ina3221x"


@dataclass(frozen=True, slots=True)
class CpuCluster:
    """A cpufreq policy: the CPUs that share one clock."""

    name: str
    cpus: tuple[int, ...]
    freqs_khz: tuple[int, ...]
    idle_states: tuple[str, ...] = ("C1", "c7")
    governor: str = "schedutil"

    @property
    def policy(self) -> int:
        return self.cpus[0]


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """The integrated GPU: its device directory, devfreq node and aliases."""

    device_dir: str  # real directory, e.g. /sys/devices/17000000.gp10b
    devfreq: str  # devfreq node name, e.g. 17000000.gp10b
    of_node: str  # device-tree node directory under /sys/firmware/devicetree/base
    of_name: str  # the node's ``name``: gp10b, gv11b, ga10b or gpu
    freqs_hz: tuple[int, ...]
    aliases: tuple[str, ...] = ()  # symlinks to device_dir (/sys/devices/gpu.0, ...)
    devfreq_dev: bool = False  # L4T 35+: <device>/devfreq_dev -> devfreq/<node>
    tpcs: int = 0  # TPC count; 0 = no tpc_pg_mask file
    fbp: bool = False  # has fbp_pg_mask (Orin)
    gpcs: int = 1  # GPCs: tegrastats R36 prints one clock per GPC (GR3D_FREQ 0%@[305,305])


@dataclass(frozen=True, slots=True)
class EmcSpec:
    """External memory clock: the nvpmodel cap file and the debugfs clock."""

    cap_path: str
    min_hz: int
    max_hz: int
    # The rates the BPMP lists (debugfs ``clk/emc/possible_rates``); () where the sim does not
    # know the board's table, and the file is then absent, as without debugfs.
    rates_hz: tuple[int, ...] = ()

    def listed_rates(self) -> tuple[int, ...]:
        """The listed rates up to this board's top rate."""
        return tuple(sorted(r for r in self.rates_hz if self.min_hz <= r <= self.max_hz))


@dataclass(frozen=True, slots=True)
class ThermalZone:
    type: str
    temp_mc: int
    heats_with: str = ""  # "gpu" or "cpu": the power model warms it with that part
    # Reads -256 C (an offline sensor) while its part idles (AGX Orin's gpu-thermal).
    offline_idle: bool = False


@dataclass(frozen=True, slots=True)
class RailModel:
    """How the power model fills one rail: a floor plus the parts it supplies."""

    name: str
    idle_mw: float
    parts: tuple[str, ...] = ()  # any of "gpu", "cpu", "emc", "soc"; "input" = the board input


@dataclass(frozen=True, slots=True)
class PowerParams:
    """Constants of the sim's power model (mW, mV, Hz)."""

    gpu_idle_mw: float  # rail-gated
    gpu_static_mw: float  # powered, leakage
    gpu_dyn_ref_mw: float  # dynamic power at gpu_ref_hz and activity 1
    gpu_ref_hz: int
    gpu_vmin_mv: float  # V(f) = max(vmin, vmax - slope * (fmax - f)), f in MHz
    gpu_vmax_mv: float
    gpu_slope_mv_per_mhz: float
    cpu_core_mw: float  # one core at its max clock and 100% load
    cpu_leak_mw: float  # per online core
    emc_mw: float  # at max EMC clock and full traffic
    soc_busy_mw: float
    input_efficiency: float
    input_base_mw: float
    perf_scale: float = 1.0  # simulated-engine speed per GPU clock relative to the TX2
    # The memory's clocked background power at the top EMC clock (PHY, DLL, clock tree, I/O),
    # drawn whether or not the engine runs and proportional to the EMC clock: real boards idle
    # with the EMC at its cap (see power_model.py for the calibration).
    emc_clocked_mw: float = 0.0


@dataclass(frozen=True, slots=True)
class BoardSpec:
    """Everything needed to write and animate one simulated board."""

    name: str
    model: str
    compatible: tuple[str, ...]
    soc_family: str  # tegra186, tegra194, tegra234
    l4t: tuple[int, int, int]  # (R, revision major, minor): (32, 7, 1)
    nv_tegra_release: str
    ina: tuple[InaDevice, ...]
    clusters: tuple[CpuCluster, ...]
    gpu: GpuSpec
    emc: EmcSpec
    thermal: tuple[ThermalZone, ...]
    conf_name: str
    conf_text: str
    rails: tuple[RailModel, ...]
    power: PowerParams
    fan_warning: bool  # the nvpmodel status file says "fmode:fanNull" (no fan mode set)
    fan_hwmon: int | None = None  # pwm-fan hwmon index (L4T 35+); None = /sys/devices/pwm-fan
    # nvpmodel's fan mode (Xavier: "quiet"): -q prints "NV Fan Mode:<mode>" first. Orin and TX2
    # print no fan line.
    fan_mode: str = ""
    # tegrastats: thermal zone types in the order it prints them (empty: zone order), and the
    # engine tokens it prints before APE (``NVENC off NVDEC off ...``).
    tegrastats_temps: tuple[str, ...] = ()
    tegrastats_engines: str = ""
    tegrastats_rails: tuple[str, ...] = ()  # the rails it prints (empty: every rail)
    machine: str = ""  # /sys/devices/soc0/machine (jetson_clocks' "Machine:"); empty: the model

    @property
    def cpu_count(self) -> int:
        return sum(len(c.cpus) for c in self.clusters)

    def cluster_of(self, cpu: int) -> CpuCluster:
        return next(c for c in self.clusters if cpu in c.cpus)

    def ina_of(self, rail: str) -> tuple[InaDevice, int]:
        """The chip and channel (0-2) that carry ``rail``."""
        for dev in self.ina:
            if rail in dev.rails and rail != "NC":
                return dev, dev.rails.index(rail)
        raise KeyError(rail)

    @property
    def rail_names(self) -> tuple[str, ...]:
        return tuple(r for dev in self.ina for r in dev.rails if r != "NC")


def freq_steps(first: int, step: int, last: int, extra: tuple[int, ...] = ()) -> tuple[int, ...]:
    """A frequency table: ``first`` to ``last`` in ``step`` increments, plus ``extra`` entries."""
    return tuple(sorted({*range(first, last + 1, step), last, *extra}))
