"""nvpmodel.conf texts for the simulated boards.

The TX2 file is NVIDIA's ``nvpmodel_t186.conf`` (L4T 28.1 PARAM form) as quoted in
``shared/reference/jetson_interfaces.md`` section 2.6. The others are built from the real files'
PARAM headers (jetson_stats ``tests/nvpmodel`` dumps, the Xavier NX JetPack 5 conf, the Orin Nano
R36.4.3 ``-q --verbose`` capture) with the mode caps from the reference section 2.3; accelerator
clocks (DLA, PVA, codecs) are left out except the AGX Orin DLA cores.
"""

from __future__ import annotations

from collections.abc import Sequence

TX2_T186 = """\
< PARAM TYPE=FILE NAME=CPU_ONLINE >
CORE_0 /sys/devices/system/cpu/cpu0/online
CORE_1 /sys/devices/system/cpu/cpu1/online
CORE_2 /sys/devices/system/cpu/cpu2/online
CORE_3 /sys/devices/system/cpu/cpu3/online
CORE_4 /sys/devices/system/cpu/cpu4/online
CORE_5 /sys/devices/system/cpu/cpu5/online

< PARAM TYPE=CLOCK NAME=CPU_A57 >
FREQ_TABLE /sys/devices/system/cpu/cpu0/cpufreq/scaling_available_frequencies
MAX_FREQ /sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq
MIN_FREQ /sys/devices/system/cpu/cpu0/cpufreq/scaling_min_freq

< PARAM TYPE=CLOCK NAME=CPU_DENVER >
FREQ_TABLE /sys/devices/system/cpu/cpu1/cpufreq/scaling_available_frequencies
MAX_FREQ /sys/devices/system/cpu/cpu1/cpufreq/scaling_max_freq
MIN_FREQ /sys/devices/system/cpu/cpu1/cpufreq/scaling_min_freq

< PARAM TYPE=CLOCK NAME=GPU >
FREQ_TABLE /sys/devices/17000000.gp10b/devfreq/17000000.gp10b/available_frequencies
MAX_FREQ /sys/devices/17000000.gp10b/devfreq/17000000.gp10b/max_freq
MIN_FREQ /sys/devices/17000000.gp10b/devfreq/17000000.gp10b/min_freq

< PARAM TYPE=CLOCK NAME=EMC >
MAX_FREQ /sys/kernel/nvpmodel_emc_cap/emc_iso_cap

< POWER_MODEL ID=0 NAME=MAXN >
CPU_ONLINE CORE_1 1
CPU_ONLINE CORE_2 1
CPU_ONLINE CORE_3 1
CPU_ONLINE CORE_4 1
CPU_ONLINE CORE_5 1
CPU_A57 MIN_FREQ 0
CPU_A57 MAX_FREQ -1
CPU_DENVER MIN_FREQ 0
CPU_DENVER MAX_FREQ -1
GPU MIN_FREQ 0
GPU MAX_FREQ -1
EMC MAX_FREQ 0

< POWER_MODEL ID=1 NAME=MAXQ >
CPU_ONLINE CORE_1 0
CPU_ONLINE CORE_2 0
CPU_ONLINE CORE_3 1
CPU_ONLINE CORE_4 1
CPU_ONLINE CORE_5 1
CPU_A57 MIN_FREQ 0
CPU_A57 MAX_FREQ 1200000
GPU MIN_FREQ 0
GPU MAX_FREQ 850000000
EMC MAX_FREQ 1331200000

< POWER_MODEL ID=2 NAME=MAXP_CORE_ALL >
CPU_ONLINE CORE_1 1
CPU_ONLINE CORE_2 1
CPU_ONLINE CORE_3 1
CPU_ONLINE CORE_4 1
CPU_ONLINE CORE_5 1
CPU_A57 MIN_FREQ 0
CPU_A57 MAX_FREQ 1400000
CPU_DENVER MIN_FREQ 0
CPU_DENVER MAX_FREQ 1400000
GPU MIN_FREQ 0
GPU MAX_FREQ 1120000000
EMC MAX_FREQ 1600000000

< POWER_MODEL ID=3 NAME=MAXP_CORE_ARM >
CPU_ONLINE CORE_1 0
CPU_ONLINE CORE_2 0
CPU_ONLINE CORE_3 1
CPU_ONLINE CORE_4 1
CPU_ONLINE CORE_5 1
CPU_A57 MIN_FREQ 0
CPU_A57 MAX_FREQ 2000000
GPU MIN_FREQ 0
GPU MAX_FREQ 1120000000
EMC MAX_FREQ 1600000000

< POWER_MODEL ID=4 NAME=MAXP_CORE_DENVER >
CPU_ONLINE CORE_1 1
CPU_ONLINE CORE_2 0
CPU_ONLINE CORE_3 0
CPU_ONLINE CORE_4 0
CPU_ONLINE CORE_5 0
CPU_A57 MIN_FREQ 0
CPU_A57 MAX_FREQ 345600
CPU_DENVER MIN_FREQ 0
CPU_DENVER MAX_FREQ 2035200
GPU MAX_FREQ 1120000000
EMC MAX_FREQ 1600000000

# mandatory section to configure the default mode
< PM_CONFIG DEFAULT=3 >
"""

_HEADER = """\
#
# Copyright (c) 2019-2024, NVIDIA CORPORATION.  All rights reserved.
# (simulated board: edge-agent sim; layout follows the shipped file)
#
# < PARAM TYPE=PARAM_TYPE NAME=PARAM_NAME >  then  ARG_NAME ARG_PATH_VAL lines
# < POWER_MODEL ID=id_num NAME=mode_name >    then  PARAM_NAME ARG_NAME ARG_VAL lines
# ARG_VAL is an integer for CLOCK (-1 is INT_MAX) and a string for FILE.
# < PM_CONFIG DEFAULT=default_mode > is mandatory.

"""


def _online(count: int) -> str:
    lines = [f"CORE_{n} /sys/devices/system/cpu/cpu{n}/online" for n in range(count)]
    return "< PARAM TYPE=FILE NAME=CPU_ONLINE >\n" + "\n".join(lines) + "\n\n"


def _file(name: str, arg: str, path: str) -> str:
    return f"< PARAM TYPE=FILE NAME={name} >\n{arg} {path}\n\n"


def _clock(name: str, base: str, knext: str | None, table: bool = True) -> str:
    """A CLOCK param; ``base`` is the directory (or the file when ``table`` is False)."""
    if not table:
        text = f"< PARAM TYPE=CLOCK NAME={name} >\nMAX_FREQ {base}\n"
        return text + (f"MAX_FREQ_KNEXT {knext}\n\n" if knext else "\n")
    cpu = "/cpufreq" in base
    files = (
        ("FREQ_TABLE", "scaling_available_frequencies" if cpu else "available_frequencies"),
        ("MAX_FREQ", "scaling_max_freq" if cpu else "max_freq"),
        ("MIN_FREQ", "scaling_min_freq" if cpu else "min_freq"),
    )
    lines = [f"< PARAM TYPE=CLOCK NAME={name} >"]
    lines += [f"{arg} {base}/{leaf}" for arg, leaf in files]
    if knext:
        lines += [f"{arg}_KNEXT {knext}/{leaf}" for arg, leaf in files]
    return "\n".join(lines) + "\n\n"


def _cpu_clock(name: str, cpu: int) -> str:
    path = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq"
    return _clock(name, path, path)


def _mode(mode_id: int, name: str, lines: Sequence[str]) -> str:
    return f"< POWER_MODEL ID={mode_id} NAME={name} >\n" + "\n".join(lines) + "\n\n"


def _cores(total: int, online: int) -> list[str]:
    return [f"CPU_ONLINE CORE_{n} {1 if n < online else 0}" for n in range(total)]


def _cpu_caps(names: Sequence[str], min_khz: int, max_khz: int) -> list[str]:
    out: list[str] = []
    for name in names:
        out += [f"{name} MIN_FREQ {min_khz}", f"{name} MAX_FREQ {max_khz}"]
    return out


def xavier_nx_t194_p3668() -> str:
    """Xavier NX on L4T 35: stock modes 0-8, HWMON VDD_IN limits."""
    gpu = "/sys/devices/17000000.gv11b"
    params = (
        _online(6)
        + _file("TPC_POWER_GATING", "TPC_PG_MASK", "/sys/devices/gpu.0/tpc_pg_mask")
        + _file("GPU_POWER_CONTROL_ENABLE", "GPU_PWR_CNTL_EN", "/sys/devices/gpu.0/power/control")
        + _file("GPU_POWER_CONTROL_DISABLE", "GPU_PWR_CNTL_DIS", "/sys/devices/gpu.0/power/control")
        + _cpu_clock("CPU_DENVER_0", 0)
        + _cpu_clock("CPU_DENVER_1", 2)
        + _cpu_clock("CPU_DENVER_2", 4)
        + _clock("GPU", f"{gpu}/devfreq/17000000.gv11b", f"{gpu}/devfreq_dev")
        + _clock(
            "EMC",
            "/sys/kernel/nvpmodel_emc_cap/emc_iso_cap",
            "/sys/kernel/nvpmodel_emc_cap/emc_iso_cap",
            table=False,
        )
        + "< PARAM TYPE=HWMON NAME=VDDIN_OC_LIMIT >\n"
        "WARN /sys/devices/platform/c250000.i2c/i2c-7/7-0040/hwmon curr1_max\n"
        "CRIT /sys/devices/platform/c250000.i2c/i2c-7/7-0040/hwmon curr1_crit\n\n"
    )
    clusters = ("CPU_DENVER_0", "CPU_DENVER_1", "CPU_DENVER_2")
    table = (  # id, name, online cores, cpu max kHz, gpu max Hz, emc cap Hz, warn mA
        (0, "MODE_15W_2CORE", 2, 1907200, 1109250000, 1600000000, 3000),
        (1, "MODE_15W_4CORE", 4, 1420800, 1109250000, 1600000000, 3000),
        (2, "MODE_15W_6CORE", 6, 1420800, 1109250000, 1600000000, 3000),
        (3, "MODE_10W_2CORE", 2, 1497600, 803250000, 1600000000, 3000),
        (4, "MODE_10W_4CORE", 4, 1190400, 803250000, 1600000000, 3000),
        (5, "MODE_10W_DESKTOP", 4, 1907200, 510000000, 1600000000, 3000),
        (6, "MODE_20W_2CORE", 2, 1907200, 1109250000, 1866000000, 4000),
        (7, "MODE_20W_4CORE", 4, 1420800, 1109250000, 1866000000, 4000),
        (8, "MODE_20W_6CORE", 6, 1420800, 1109250000, 1866000000, 4000),
    )
    modes = ""
    for mode_id, name, online, cpu_khz, gpu_hz, emc_hz, warn_ma in table:
        lines = [
            *_cores(6, online),
            "TPC_POWER_GATING TPC_PG_MASK 1",
            "GPU_POWER_CONTROL_ENABLE GPU_PWR_CNTL_EN on",
        ]
        lines += _cpu_caps(clusters[: online // 2], 1190400, cpu_khz)
        lines += [
            "GPU MIN_FREQ 0",
            f"GPU MAX_FREQ {gpu_hz}",
            "GPU_POWER_CONTROL_DISABLE GPU_PWR_CNTL_DIS auto",
            f"EMC MAX_FREQ {emc_hz}",
            f"VDDIN_OC_LIMIT WARN {warn_ma}",
            "VDDIN_OC_LIMIT CRIT 5000",
        ]
        modes += _mode(mode_id, name, lines)
    return _HEADER + params + modes + "< PM_CONFIG DEFAULT=2 >\n"


def _orin_nano_params(cpu_params: int) -> str:
    """The PARAM sections of an Orin Nano conf (R36): one CPU clock per core from JetPack 6.2."""
    gpu = "/sys/devices/platform/17000000.gpu/devfreq_dev"
    params = (
        _online(6)
        + _file("FBP_POWER_GATING", "FBP_PG_MASK", "/sys/devices/platform/gpu.0/fbp_pg_mask")
        + _file("TPC_POWER_GATING", "TPC_PG_MASK", "/sys/devices/platform/gpu.0/tpc_pg_mask")
        + _file(
            "GPU_POWER_CONTROL_ENABLE",
            "GPU_PWR_CNTL_EN",
            "/sys/devices/platform/gpu.0/power/control",
        )
        + _file(
            "GPU_POWER_CONTROL_DISABLE",
            "GPU_PWR_CNTL_DIS",
            "/sys/devices/platform/gpu.0/power/control",
        )
    )
    if cpu_params == 6:
        params += "".join(_cpu_clock(f"CPU_A78_{n}", n) for n in range(6))
    else:
        params += _cpu_clock("CPU_A78_0", 0) + _cpu_clock("CPU_A78_1", 4)
    emc = "/sys/kernel/nvpmodel_clk_cap/emc"
    return params + _clock("GPU", gpu, gpu) + _clock("EMC", emc, emc, False)


# id, name, online cores, TPC mask, cpu max kHz, gpu max Hz, emc cap Hz
_NanoMode = tuple[int, str, int, int, int, int, int]
# JetPack 6.2 super conf (nvpmodel_p3767_0003_super.conf): 7W gates two more TPCs (252 vs 240),
# so switching to or from it needs a reboot; MAXN_SUPER leaves every clock uncapped (-1).
ORIN_NANO_SUPER_MODES: tuple[_NanoMode, ...] = (
    (0, "15W", 6, 240, 1497600, 612000000, 2133000000),
    (1, "25W", 6, 240, 1344000, 918000000, 3199000000),
    (2, "MAXN_SUPER", 6, 240, -1, -1, -1),
    (3, "7W", 4, 252, 960000, 408000000, 2133000000),
)
# The stock conf (JetPack 5 / 6.0-6.1): 15W is uncapped in the file.
ORIN_NANO_STOCK_MODES: tuple[_NanoMode, ...] = (
    (0, "15W", 6, 240, -1, -1, 0),
    (1, "7W", 4, 252, 960000, 408000000, 2133000000),
)


def orin_nano(modes: Sequence[_NanoMode], default: int, cpu_params: int = 6) -> str:
    """An Orin Nano 8GB conf with ``modes`` (see ``ORIN_NANO_*_MODES``) and ``default``.

    ``cpu_params`` 6 is one CPU clock per core (``CPU_A78_0`` .. ``CPU_A78_5``, R36.4+); 2 is one
    per cluster (the stock R35 file).
    """
    names = [f"CPU_A78_{n}" for n in range(6)] if cpu_params == 6 else ["CPU_A78_0", "CPU_A78_1"]
    owners = list(range(6)) if cpu_params == 6 else [0, 4]
    body = ""
    for mode_id, name, online, mask, cpu_khz, gpu_hz, emc_hz in modes:
        lines = [
            *_cores(6, online),
            "FBP_POWER_GATING FBP_PG_MASK 2",
            f"TPC_POWER_GATING TPC_PG_MASK {mask}",
            "GPU_POWER_CONTROL_ENABLE GPU_PWR_CNTL_EN on",
        ]
        online_params = [p for p, cpu in zip(names, owners, strict=True) if cpu < online]
        lines += _cpu_caps(online_params, 729600, cpu_khz)
        lines += [
            "GPU MIN_FREQ 0",
            f"GPU MAX_FREQ {gpu_hz}",
            "GPU_POWER_CONTROL_DISABLE GPU_PWR_CNTL_DIS auto",
            f"EMC MAX_FREQ {emc_hz}",
        ]
        body += _mode(mode_id, name, lines)
    return _HEADER + _orin_nano_params(cpu_params) + body + f"< PM_CONFIG DEFAULT={default} >\n"


def agx_orin_p3701_0000() -> str:
    """AGX Orin on L4T 35 (JetPack 5): MAXN, MODE_15W, MODE_30W (default), MODE_50W."""
    gpu = "/sys/devices/17000000.ga10b"
    host1x = "/sys/devices/platform/13e40000.host1x"
    dla0 = f"{host1x}/15880000.nvdla0/acm/clk_cap/dla0_core"
    dla1 = f"{host1x}/158c0000.nvdla1/acm/clk_cap/dla1_core"
    params = (
        _online(12)
        + _file("TPC_POWER_GATING", "TPC_PG_MASK", "/sys/devices/gpu.0/tpc_pg_mask")
        + _file("GPU_POWER_CONTROL_ENABLE", "GPU_PWR_CNTL_EN", "/sys/devices/gpu.0/power/control")
        + _file("GPU_POWER_CONTROL_DISABLE", "GPU_PWR_CNTL_DIS", "/sys/devices/gpu.0/power/control")
        + _cpu_clock("CPU_A78_0", 0)
        + _cpu_clock("CPU_A78_1", 4)
        + _cpu_clock("CPU_A78_2", 8)
        + _clock("GPU", f"{gpu}/devfreq/17000000.ga10b", f"{gpu}/devfreq_dev")
        + _clock(
            "EMC",
            "/sys/kernel/nvpmodel_emc_cap/emc_iso_cap",
            "/sys/kernel/nvpmodel_emc_cap/emc_iso_cap",
            table=False,
        )
        + _clock("DLA0_CORE", dla0, dla0, table=False)
        + _clock("DLA1_CORE", dla1, dla1, table=False)
    )
    clusters = ("CPU_A78_0", "CPU_A78_1", "CPU_A78_2")
    table = (  # id, name, online, tpc mask, cpu max kHz, gpu max Hz, emc cap Hz, dla Hz
        (0, "MAXN", 12, 0, -1, -1, 0, -1),
        (1, "MODE_15W", 4, 248, 1113600, 408000000, 2133000000, 614400000),
        (2, "MODE_30W", 8, 240, 1728000, 612000000, 0, 1369600000),
        (3, "MODE_50W", 12, 0, 1497600, 816000000, 0, 1369600000),
    )
    modes = ""
    for mode_id, name, online, mask, cpu_khz, gpu_hz, emc_hz, dla_hz in table:
        lines = [
            *_cores(12, online),
            f"TPC_POWER_GATING TPC_PG_MASK {mask}",
            "GPU_POWER_CONTROL_ENABLE GPU_PWR_CNTL_EN on",
        ]
        lines += _cpu_caps(clusters[: online // 4], 729600, cpu_khz)
        lines += [
            "GPU MIN_FREQ 0",
            f"GPU MAX_FREQ {gpu_hz}",
            "GPU_POWER_CONTROL_DISABLE GPU_PWR_CNTL_DIS auto",
            f"EMC MAX_FREQ {emc_hz}",
            f"DLA0_CORE MAX_FREQ {dla_hz}",
            f"DLA1_CORE MAX_FREQ {dla_hz}",
        ]
        modes += _mode(mode_id, name, lines)
    return _HEADER + params + modes + "< PM_CONFIG DEFAULT=2 >\n"


def agx_xavier_t194() -> str:
    """AGX Xavier on L4T 32 (jetson_stats dump): MAXN, MODE_10W (TPC mask 5), MODE_15W (default),
    MODE_30W_ALL/6CORE/4CORE/2CORE."""
    gpu = "/sys/devices/17000000.gv11b/devfreq/17000000.gv11b"
    params = (
        _online(8)
        + _file("TPC_POWER_GATING", "TPC_PG_MASK", "/sys/devices/gpu.0/tpc_pg_mask")
        + _file("GPU_POWER_CONTROL_ENABLE", "GPU_PWR_CNTL_EN", "/sys/devices/gpu.0/power/control")
        + _file("GPU_POWER_CONTROL_DISABLE", "GPU_PWR_CNTL_DIS", "/sys/devices/gpu.0/power/control")
        + "".join(
            _clock(f"CPU_DENVER_{n}", f"/sys/devices/system/cpu/cpu{2 * n}/cpufreq", None)
            for n in range(4)
        )
        + _clock("GPU", gpu, None)
        + _clock("EMC", "/sys/kernel/nvpmodel_emc_cap/emc_iso_cap", None, table=False)
    )
    clusters = tuple(f"CPU_DENVER_{n}" for n in range(4))
    table = (  # id, name, online cores, tpc mask, cpu max kHz, gpu max Hz, emc cap Hz
        (0, "MAXN", 8, 0, -1, -1, 0),
        (1, "MODE_10W", 2, 5, 1200000, 520000000, 1065600000),
        (2, "MODE_15W", 4, 0, 1200000, 670000000, 1331200000),
        (3, "MODE_30W_ALL", 8, 0, 1200000, 900000000, 1600000000),
        (4, "MODE_30W_6CORE", 6, 0, 1450000, 900000000, 1600000000),
        (5, "MODE_30W_4CORE", 4, 0, 1780000, 900000000, 1600000000),
        (6, "MODE_30W_2CORE", 2, 0, 2100000, 900000000, 1600000000),
    )
    modes = ""
    for mode_id, name, online, mask, cpu_khz, gpu_hz, emc_hz in table:
        lines = [
            *_cores(8, online),
            f"TPC_POWER_GATING TPC_PG_MASK {mask}",
            "GPU_POWER_CONTROL_ENABLE GPU_PWR_CNTL_EN on",
        ]
        lines += _cpu_caps(clusters[: online // 2], 1200000, cpu_khz)
        lines += [
            "GPU MIN_FREQ 318750000",
            f"GPU MAX_FREQ {gpu_hz}",
            "GPU_POWER_CONTROL_DISABLE GPU_PWR_CNTL_DIS auto",
            f"EMC MAX_FREQ {emc_hz}",
        ]
        modes += _mode(mode_id, name, lines)
    return _HEADER + params + modes + "< PM_CONFIG DEFAULT=2 >\n"
