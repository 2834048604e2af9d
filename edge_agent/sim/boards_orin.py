"""Simulated Orin boards (tegra234): Orin Nano with the JetPack 6.2 super conf, AGX Orin (JP5).

See :mod:`edge_agent.sim.boards` for the registry and the sources of the values.
"""

from __future__ import annotations

from edge_agent.sim import confs
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

_A78AE = freq_steps(115200, 76800, 2188800, (2201600,))
# Orin Nano: the stock table tops out at 1510400 kHz; the JetPack 6.2 super one at 1728000.
ORIN_NANO_CPU_STOCK = freq_steps(115200, 76800, 1497600, (1510400,))
_ORIN_NANO_CPU_SUPER = freq_steps(115200, 76800, 1728000)
# GPU devfreq tables (Hz) as the boards list them in available_frequencies. Orin (R35.2+, R36)
# steps by 102 MHz from 306 MHz.
_ORIN_NANO_GPU_SUPER = freq_steps(306000000, 102000000, 1020000000)
ORIN_NANO_GPU_STOCK = freq_steps(306000000, 102000000, 612000000, (624750000,))
_GA10B = freq_steps(306000000, 102000000, 1224000000, (1300500000,))

ORIN_NANO = BoardSpec(
    name="jetson-orin-nano",
    model="NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
    compatible=("nvidia,p3768-0000+p3767-0005-super", "nvidia,p3767-0005", "nvidia,tegra234"),
    soc_family="tegra234",
    l4t=(36, 4, 3),
    nv_tegra_release="# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, "
    "EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n"
    "# KERNEL_VARIANT: oot\n"
    "TARGET_USERSPACE_LIB_DIR=nvidia\n"
    "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n",
    ina=(
        InaDevice(
            "1-0040",
            "/sys/devices/platform/bus@0/c240000.i2c/i2c-1/1-0040",
            "ina3221",
            1,
            ("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"),
            (5064, 5056, 5056),
            crit_ma=(7784, 32760, 32760),
            warn_ma=(7784, 32760, 32760),
        ),
    ),
    clusters=(
        CpuCluster("A78AE0", (0, 1, 2, 3), _ORIN_NANO_CPU_SUPER, ("WFI", "c7")),
        CpuCluster("A78AE1", (4, 5), _ORIN_NANO_CPU_SUPER, ("WFI", "c7")),
    ),
    gpu=GpuSpec(
        device_dir="/sys/devices/platform/bus@0/17000000.gpu",
        devfreq="17000000.gpu",
        of_node="bus@0/gpu@17000000",
        of_name="gpu",
        freqs_hz=_ORIN_NANO_GPU_SUPER,
        aliases=("/sys/devices/platform/17000000.gpu", "/sys/devices/platform/gpu.0"),
        devfreq_dev=True,
        tpcs=8,
        fbp=True,
    ),
    emc=EmcSpec(
        "/sys/kernel/nvpmodel_clk_cap/emc",
        204000000,
        3199000000,
        # 204 and 665.6 MHz: the real R36 Orin Nano's jetson_clocks --show (EMC MinFreq and an
        # idle CurrentFreq, tests/data/captures); 2133 and 3199 MHz: its nvpmodel caps.
        rates_hz=(204000000, 665600000, 2133000000, 3199000000),
    ),
    thermal=(
        ThermalZone("cpu-thermal", 45500, "cpu"),
        ThermalZone("gpu-thermal", 44000, "gpu"),
        ThermalZone("cv0-thermal", -256000),
        ThermalZone("cv1-thermal", -256000),
        ThermalZone("cv2-thermal", -256000),
        ThermalZone("soc0-thermal", 44500),
        ThermalZone("soc1-thermal", 44200),
        ThermalZone("soc2-thermal", 43900),
        ThermalZone("tj-thermal", 45500, "gpu"),
        ThermalZone("tboard-thermal", 38000),
        ThermalZone("tdiode-thermal", 40250),
    ),
    conf_name="nvpmodel_p3767_0003_super.conf",
    conf_text=confs.orin_nano(confs.ORIN_NANO_SUPER_MODES, default=1),
    rails=(
        RailModel("VDD_IN", 0.0, ("input",)),
        RailModel("VDD_CPU_GPU_CV", 338.0, ("gpu", "cpu")),
        RailModel("VDD_SOC", 848.0, ("soc", "emc")),
    ),
    power=PowerParams(
        gpu_idle_mw=100.0,
        gpu_static_mw=500.0,
        gpu_dyn_ref_mw=7000.0,
        gpu_ref_hz=1020000000,
        gpu_vmin_mv=700.0,
        gpu_vmax_mv=1000.0,
        gpu_slope_mv_per_mhz=0.7,
        cpu_core_mw=600.0,
        cpu_leak_mw=20.0,
        emc_mw=1200.0,
        soc_busy_mw=400.0,
        input_efficiency=0.9,
        input_base_mw=1561.0,
        perf_scale=5.0,
    ),
    fan_warning=True,
    fan_hwmon=0,
    # As on AGX Orin (R36 capture): no tboard/tdiode; offline CV sensors are left out on R36.
    tegrastats_temps=(
        "cpu-thermal",
        "gpu-thermal",
        "soc0-thermal",
        "soc1-thermal",
        "soc2-thermal",
        "tj-thermal",
        "cv0-thermal",
        "cv1-thermal",
        "cv2-thermal",
    ),
)


AGX_ORIN = BoardSpec(
    name="jetson-agx-orin",
    model="Jetson AGX Orin Developer Kit",
    compatible=("nvidia,p3737-0000+p3701-0000", "nvidia,p3701-0000", "nvidia,tegra234"),
    soc_family="tegra234",
    l4t=(35, 4, 1),
    nv_tegra_release="# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, "
    "EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023\n"
    "TARGET_USERSPACE_LIB_DIR=nvidia\n"
    "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n",
    ina=(
        InaDevice(
            "1-0040",
            "/sys/devices/platform/c240000.i2c/i2c-1/1-0040",
            "ina3221",
            3,
            ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"),
            (5016, 5016, 5008),
        ),
        InaDevice(
            "1-0041",
            "/sys/devices/platform/c240000.i2c/i2c-1/1-0041",
            "ina3221",
            4,
            ("NC", "VDDQ_VDD2_1V8AO", "NC"),
            (0, 5008, 0),
        ),
    ),
    clusters=(
        CpuCluster("A78AE0", (0, 1, 2, 3), _A78AE, ("WFI", "c7")),
        CpuCluster("A78AE1", (4, 5, 6, 7), _A78AE, ("WFI", "c7")),
        CpuCluster("A78AE2", (8, 9, 10, 11), _A78AE, ("WFI", "c7")),
    ),
    gpu=GpuSpec(
        device_dir="/sys/devices/17000000.ga10b",
        devfreq="17000000.ga10b",
        of_node="ga10b",
        of_name="ga10b",
        freqs_hz=_GA10B,
        aliases=("/sys/devices/gpu.0", "/sys/devices/platform/gpu.0"),
        devfreq_dev=True,
        tpcs=8,
        gpcs=2,
    ),
    emc=EmcSpec("/sys/kernel/nvpmodel_emc_cap/emc_iso_cap", 204000000, 3199000000),
    thermal=(
        ThermalZone("cpu-thermal", 47500, "cpu"),
        # Idle, the CV and GPU sensors are offline and read -256 C.
        ThermalZone("gpu-thermal", 45800, "gpu", offline_idle=True),
        ThermalZone("cv0-thermal", -256000),
        ThermalZone("cv1-thermal", -256000),
        ThermalZone("cv2-thermal", -256000),
        ThermalZone("soc0-thermal", 46800),
        ThermalZone("soc1-thermal", 46900),
        ThermalZone("soc2-thermal", 46200),
        ThermalZone("tj-thermal", 47500, "gpu"),
        ThermalZone("tboard-thermal", 36000),
        ThermalZone("tdiode-thermal", 39750),
    ),
    conf_name="nvpmodel_p3701_0000.conf",
    conf_text=confs.agx_orin_p3701_0000(),
    rails=(
        RailModel("VDD_GPU_SOC", 1800.0, ("gpu", "soc")),
        RailModel("VDD_CPU_CV", 500.0, ("cpu",)),
        RailModel("VIN_SYS_5V0", 3500.0),
        RailModel("VDDQ_VDD2_1V8AO", 600.0, ("emc",)),
    ),
    power=PowerParams(
        gpu_idle_mw=200.0,
        gpu_static_mw=900.0,
        gpu_dyn_ref_mw=22000.0,
        gpu_ref_hz=1300500000,
        gpu_vmin_mv=700.0,
        gpu_vmax_mv=1050.0,
        gpu_slope_mv_per_mhz=0.45,
        cpu_core_mw=650.0,
        cpu_leak_mw=25.0,
        emc_mw=1800.0,
        soc_busy_mw=800.0,
        input_efficiency=1.0,
        input_base_mw=0.0,
        perf_scale=12.0,
    ),
    fan_warning=True,
    fan_hwmon=2,
    # The order of the netdata R36 capture, then the CV sensors (offline, left out on R36).
    tegrastats_temps=(
        "cpu-thermal",
        "soc2-thermal",
        "soc0-thermal",
        "gpu-thermal",
        "tj-thermal",
        "soc1-thermal",
        "cv0-thermal",
        "cv1-thermal",
        "cv2-thermal",
    ),
    tegrastats_rails=("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"),  # the R36 capture's
    tegrastats_engines=(
        "NVENC off NVDEC off NVJPG off NVJPG1 off VIC off OFA off NVDLA0 off NVDLA1 off "
        "PVA0_FREQ off"
    ),
)
