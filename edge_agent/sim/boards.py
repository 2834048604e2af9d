"""Specifications of the simulated Jetson boards.

Every path, name and number here mirrors a real board as documented in
``shared/reference/jetson_interfaces.md`` (INA3221 layouts section 1, nvpmodel section 2, sysfs
section 4). The power parameters are the sim's own model (see :mod:`edge_agent.sim.power_model`);
the TX2 ones are calibrated against the published TX2 figures.
"""

from __future__ import annotations

from edge_agent.sim import confs
from edge_agent.sim.boards_orin import AGX_ORIN, ORIN_NANO
from edge_agent.sim.spec import (
    BoardSpec,
    CpuCluster,
    EmcSpec,
    GpuSpec,
    InaDevice,
    PowerParams,
    RailModel,
    ThermalZone,
    freq_steps,
)

__all__ = ["BOARDS", "BoardSpec", "board_names", "get_board"]


_T186_CPU = freq_steps(345600, 153600, 2035200)
_CARMEL = freq_steps(115200, 76800, 1881600, (1907200,))
_CARMEL_AGX = freq_steps(115200, 76800, 2265600)
# cpuidle state names: A57 "C1 c7" (the default), Denver "C1 c6 c7", Carmel "C1 c6".
_CARMEL_IDLE = ("C1", "c6")
# GPU devfreq tables (Hz) as the boards list them in available_frequencies.
# fmt: off
_GP10B = (
    114750000, 216750000, 318750000, 420750000, 522750000, 624750000, 726750000,
    854250000, 930750000, 1032750000, 1122000000, 1236750000, 1300500000,
)
_GV11B = (
    114750000, 204000000, 306000000, 408000000, 510000000, 599250000, 701250000, 752250000,
    803250000, 854250000, 905250000, 956250000, 1007250000, 1058250000, 1109250000,
)
_GV11B_AGX = (
    114750000, 216750000, 318750000, 420750000, 522750000, 624750000, 675750000,
    828750000, 905250000, 1032750000, 1198500000, 1236750000, 1338750000, 1377000000,
)
# fmt: on

TX2 = BoardSpec(
    name="jetson-tx2",
    model="NVIDIA Jetson TX2",
    compatible=("nvidia,p2771-0000", "nvidia,tegra186"),
    soc_family="tegra186",
    l4t=(32, 7, 1),
    nv_tegra_release="# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t186ref, "
    "EABI: aarch64, DATE: Sat Feb 19 17:05:08 UTC 2022\n",
    ina=(
        InaDevice(
            "0-0040",
            "/sys/devices/3160000.i2c/i2c-0/0-0040",
            "ina3221x",
            0,
            ("VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI"),
            (19104, 19096, 4984),
        ),
        InaDevice(
            "0-0041",
            "/sys/devices/3160000.i2c/i2c-0/0-0041",
            "ina3221x",
            1,
            ("VDD_IN", "VDD_SYS_CPU", "VDD_SYS_DDR"),
            (19120, 19104, 5008),
        ),
    ),
    clusters=(
        CpuCluster("A57", (0, 3, 4, 5), _T186_CPU),
        CpuCluster("Denver", (1, 2), _T186_CPU, ("C1", "c6", "c7")),
    ),
    gpu=GpuSpec(
        device_dir="/sys/devices/17000000.gp10b",
        devfreq="17000000.gp10b",
        of_node="gp10b",
        of_name="gp10b",
        freqs_hz=_GP10B,
        aliases=("/sys/devices/gpu.0",),
    ),
    emc=EmcSpec("/sys/kernel/nvpmodel_emc_cap/emc_iso_cap", 40800000, 1866000000),
    thermal=(
        ThermalZone("BCPU-therm", 37500, "cpu"),
        ThermalZone("MCPU-therm", 37500, "cpu"),
        ThermalZone("GPU-therm", 35000, "gpu"),
        ThermalZone("PLL-therm", 37500),
        ThermalZone("AO-therm", 36000),
        ThermalZone("Tboard_tegra", 32000),
        ThermalZone("Tdiode_tegra", 34250),
        ThermalZone("PMIC-Die", 100000),
        ThermalZone("thermal-fan-est", 36500),
    ),
    conf_name="nvpmodel_t186.conf",
    conf_text=confs.TX2_T186,
    rails=(
        RailModel("VDD_SYS_GPU", 0.0, ("gpu",)),
        RailModel("VDD_SYS_SOC", 687.0, ("soc",)),
        RailModel("VDD_4V0_WIFI", 0.0),
        RailModel("VDD_IN", 0.0, ("input",)),
        RailModel("VDD_SYS_CPU", 58.0, ("cpu",)),
        RailModel("VDD_SYS_DDR", 177.0, ("emc",)),
    ),
    # GPU constants fitted to the published TX2 Max-Q/Max-P GPU-rail watts (perf_model.py).
    power=PowerParams(
        gpu_idle_mw=150.0,
        gpu_static_mw=300.0,
        gpu_dyn_ref_mw=4000.0,
        gpu_ref_hz=1122000000,
        gpu_vmin_mv=800.0,
        gpu_vmax_mv=1100.0,
        gpu_slope_mv_per_mhz=1.06,
        cpu_core_mw=800.0,
        cpu_leak_mw=20.0,
        emc_mw=278.0,
        soc_busy_mw=100.0,
        input_efficiency=0.92,
        input_base_mw=600.0,
        emc_clocked_mw=741.0,
    ),
    fan_warning=False,
    machine="quill",  # the devkit's soc0/machine, as jetson_clocks --show prints it
    # The order of the netdata TX2 capture; AO-therm is not printed.
    tegrastats_temps=(
        "PLL-therm",
        "MCPU-therm",
        "PMIC-Die",
        "Tboard_tegra",
        "GPU-therm",
        "BCPU-therm",
        "thermal-fan-est",
        "Tdiode_tegra",
    ),
)

XAVIER_NX = BoardSpec(
    name="jetson-xavier-nx",
    model="NVIDIA Jetson Xavier NX Developer Kit",
    compatible=("nvidia,p3509-0000+p3668-0001", "nvidia,jetson-xavier-nx", "nvidia,tegra194"),
    soc_family="tegra194",
    l4t=(35, 4, 1),
    nv_tegra_release="# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, "
    "EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023\n"
    "TARGET_USERSPACE_LIB_DIR=nvidia\n"
    "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n",
    ina=(
        InaDevice(
            "7-0040",
            "/sys/devices/platform/c250000.i2c/i2c-7/7-0040",
            "ina3221",
            4,
            ("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"),
            (5056, 5048, 5048),
            crit_ma=(5000, 32760, 32760),
            warn_ma=(3000, 32760, 32760),
        ),
    ),
    clusters=(
        CpuCluster("Carmel0", (0, 1), _CARMEL, _CARMEL_IDLE),
        CpuCluster("Carmel1", (2, 3), _CARMEL, _CARMEL_IDLE),
        CpuCluster("Carmel2", (4, 5), _CARMEL, _CARMEL_IDLE),
    ),
    gpu=GpuSpec(
        device_dir="/sys/devices/17000000.gv11b",
        devfreq="17000000.gv11b",
        of_node="gv11b",
        of_name="gv11b",
        freqs_hz=_GV11B,
        aliases=("/sys/devices/gpu.0", "/sys/devices/platform/gpu.0"),
        devfreq_dev=True,
        tpcs=6,
    ),
    emc=EmcSpec("/sys/kernel/nvpmodel_emc_cap/emc_iso_cap", 204000000, 1866000000),
    thermal=(
        ThermalZone("CPU-therm", 41500, "cpu"),
        ThermalZone("GPU-therm", 40000, "gpu"),
        ThermalZone("AUX-therm", 40500),
        ThermalZone("AO-therm", 39500),
        ThermalZone("PMIC-Die", 100000),
        ThermalZone("thermal-fan-est", 40600),
    ),
    conf_name="nvpmodel_t194_p3668.conf",
    conf_text=confs.xavier_nx_t194_p3668(),
    rails=(
        RailModel("VDD_IN", 0.0, ("input",)),
        RailModel("VDD_CPU_GPU_CV", 300.0, ("gpu", "cpu")),
        RailModel("VDD_SOC", 1100.0, ("soc", "emc")),
    ),
    power=PowerParams(
        gpu_idle_mw=100.0,
        gpu_static_mw=400.0,
        gpu_dyn_ref_mw=5000.0,
        gpu_ref_hz=1109250000,
        gpu_vmin_mv=750.0,
        gpu_vmax_mv=1050.0,
        gpu_slope_mv_per_mhz=0.8,
        cpu_core_mw=700.0,
        cpu_leak_mw=25.0,
        emc_mw=800.0,
        soc_busy_mw=300.0,
        input_efficiency=0.9,
        input_base_mw=1300.0,
        perf_scale=2.5,
    ),
    fan_warning=True,
    fan_hwmon=5,
    fan_mode="quiet",
)

AGX_XAVIER = BoardSpec(
    name="jetson-agx-xavier",
    model="Jetson-AGX",
    compatible=("nvidia,p2972-0000", "nvidia,galen", "nvidia,tegra194"),
    soc_family="tegra194",
    l4t=(32, 7, 1),
    nv_tegra_release=TX2.nv_tegra_release,
    ina=(
        InaDevice(
            "1-0040",
            "/sys/devices/c240000.i2c/i2c-1/1-0040",
            "ina3221x",
            0,
            ("GPU", "CPU", "SOC"),
            (19104, 19096, 19096),
        ),
        InaDevice(
            "1-0041",
            "/sys/devices/c240000.i2c/i2c-1/1-0041",
            "ina3221x",
            1,
            ("CV", "VDDRQ", "SYS5V"),
            (19096, 19104, 4984),
        ),
    ),
    clusters=tuple(
        CpuCluster(f"Carmel{n}", (2 * n, 2 * n + 1), _CARMEL_AGX, _CARMEL_IDLE) for n in range(4)
    ),
    gpu=GpuSpec(
        device_dir="/sys/devices/17000000.gv11b",
        devfreq="17000000.gv11b",
        of_node="gv11b",
        of_name="gv11b",
        freqs_hz=_GV11B_AGX,
        aliases=("/sys/devices/gpu.0",),
        tpcs=4,
    ),
    emc=EmcSpec("/sys/kernel/nvpmodel_emc_cap/emc_iso_cap", 204000000, 2133000000),
    thermal=(
        ThermalZone("AO-therm", 38000),
        ThermalZone("CPU-therm", 40500, "cpu"),
        ThermalZone("GPU-therm", 39000, "gpu"),
        ThermalZone("PLL-therm", 38500),
        ThermalZone("AUX-therm", 39500),
        ThermalZone("Tboard_tegra", 34000),
        ThermalZone("Tdiode_tegra", 37250),
        ThermalZone("PMIC-Die", 100000),
        ThermalZone("thermal-fan-est", 39400),
    ),
    conf_name="nvpmodel_t194.conf",
    conf_text=confs.agx_xavier_t194(),
    rails=(
        RailModel("GPU", 0.0, ("gpu",)),
        RailModel("CPU", 150.0, ("cpu",)),
        RailModel("SOC", 1300.0, ("soc",)),
        RailModel("CV", 0.0),
        RailModel("VDDRQ", 300.0, ("emc",)),
        RailModel("SYS5V", 1500.0),
    ),
    power=PowerParams(
        gpu_idle_mw=150.0,
        gpu_static_mw=700.0,
        gpu_dyn_ref_mw=12000.0,
        gpu_ref_hz=1377000000,
        gpu_vmin_mv=750.0,
        gpu_vmax_mv=1100.0,
        gpu_slope_mv_per_mhz=0.5,
        cpu_core_mw=900.0,
        cpu_leak_mw=30.0,
        emc_mw=1200.0,
        soc_busy_mw=600.0,
        input_efficiency=1.0,
        input_base_mw=0.0,
        perf_scale=4.0,
    ),
    fan_warning=True,
    fan_mode="quiet",
)


BOARDS: dict[str, BoardSpec] = {
    b.name: b for b in (TX2, XAVIER_NX, AGX_XAVIER, ORIN_NANO, AGX_ORIN)
}


def board_names() -> list[str]:
    """The simulated board names, sorted."""
    return sorted(BOARDS)


def get_board(name: str) -> BoardSpec:
    """The spec called ``name``.

    Raises:
        KeyError: no such board; the message lists the valid names.
    """
    try:
        return BOARDS[name]
    except KeyError:
        raise KeyError(
            f"unknown board {name!r}; valid boards: {', '.join(board_names())}"
        ) from None
