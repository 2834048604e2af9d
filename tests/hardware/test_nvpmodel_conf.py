"""nvpmodel.conf parsing against the real TX2 file and malformed variants."""

from __future__ import annotations

import pytest

from edge_agent.errors import HardwareError
from edge_agent.hardware.nvpmodel import NvpConf, needs_reboot, parse_conf
from tests.hardware.captures import capture


@pytest.fixture
def tx2() -> NvpConf:
    return parse_conf(capture("nvpmodel_t186_l4t28.conf"))


def test_tx2_modes_and_default(tx2: NvpConf) -> None:
    assert [(m.id, m.name) for m in tx2.modes] == [
        (0, "MAXN"),
        (1, "MAXQ"),
        (2, "MAXP_CORE_ALL"),
        (3, "MAXP_CORE_ARM"),
        (4, "MAXP_CORE_DENVER"),
    ]
    assert tx2.default_id == 3
    assert tx2.default_mode.name == "MAXP_CORE_ARM"
    assert tx2.fan_default is None


def test_tx2_params(tx2: NvpConf) -> None:
    assert list(tx2.params) == ["CPU_ONLINE", "CPU_A57", "CPU_DENVER", "GPU", "EMC"]
    assert tx2.params["CPU_ONLINE"].type == "FILE"
    assert tx2.params["CPU_ONLINE"].args["CORE_5"] == "/sys/devices/system/cpu/cpu5/online"
    gpu = tx2.params["GPU"]
    assert gpu.type == "CLOCK"
    assert gpu.args == {
        "FREQ_TABLE": "/sys/devices/17000000.gp10b/devfreq/17000000.gp10b/available_frequencies",
        "MAX_FREQ": "/sys/devices/17000000.gp10b/devfreq/17000000.gp10b/max_freq",
        "MIN_FREQ": "/sys/devices/17000000.gp10b/devfreq/17000000.gp10b/min_freq",
    }
    assert tx2.params["EMC"].args == {"MAX_FREQ": "/sys/kernel/nvpmodel_emc_cap/emc_iso_cap"}


@pytest.mark.parametrize(
    ("name", "a57", "denver", "gpu", "emc", "online"),
    [
        ("MAXN", "-1", "-1", "-1", "0", "11111"),
        ("MAXQ", "1200000", None, "850000000", "1331200000", "00111"),
        ("MAXP_CORE_ALL", "1400000", "1400000", "1120000000", "1600000000", "11111"),
        ("MAXP_CORE_ARM", "2000000", None, "1120000000", "1600000000", "00111"),
        ("MAXP_CORE_DENVER", "345600", "2035200", "1120000000", "1600000000", "10000"),
    ],
)
def test_tx2_mode_table(
    tx2: NvpConf,
    name: str,
    a57: str,
    denver: str | None,
    gpu: str,
    emc: str,
    online: str,
) -> None:
    mode = tx2.mode_by_name(name)
    assert mode is not None
    assert mode.value("CPU_A57", "MAX_FREQ") == a57
    assert mode.value("CPU_DENVER", "MAX_FREQ") == denver
    assert mode.value("GPU", "MAX_FREQ") == gpu
    assert mode.value("EMC", "MAX_FREQ") == emc
    cores = "".join(mode.value("CPU_ONLINE", f"CORE_{i}") or "?" for i in range(1, 6))
    assert cores == online


def test_lookup_misses_and_int_value(tx2: NvpConf) -> None:
    assert tx2.mode_by_name("maxn") is None
    assert tx2.mode_by_id(7) is None
    maxn = tx2.mode_by_id(0)
    assert maxn is not None
    assert maxn.int_value("GPU", "MAX_FREQ") == -1
    assert maxn.int_value("CPU_ONLINE", "CORE_0") is None
    # MAXP_CORE_DENVER leaves GPU MIN_FREQ alone.
    denver = tx2.mode_by_id(4)
    assert denver is not None
    assert denver.value("GPU", "MIN_FREQ") is None


def test_tx2_switches_live(tx2: NvpConf) -> None:
    assert all(not needs_reboot(tx2, a.id, b.id) for a in tx2.modes for b in tx2.modes)


HWMON_CONF = """\
# header comment
< PARAM TYPE=FILE NAME=TPC_POWER_GATING >
TPC_PG_MASK /sys/devices/gpu.0/tpc_pg_mask   # trailing comment

<   PARAM   TYPE=CLOCK   NAME=CPU_A57   >
MAX_FREQ /sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq
MIN_FREQ /sys/devices/system/cpu/cpu0/cpufreq/scaling_min_freq

< PARAM TYPE=HWMON NAME=VDDIN_OC_LIMIT >
WARN /sys/devices/platform/c250000.i2c/i2c-7/7-0040/hwmon curr1_max
CRIT /sys/devices/platform/c250000.i2c/i2c-7/7-0040/hwmon curr1_crit

< POWER_MODEL ID=0 NAME=MAXN >
TPC_POWER_GATING TPC_PG_MASK 0
CPU_A57 MIN_FREQ  0
CPU_A57\tMAX_FREQ\t-1
VDDIN_OC_LIMIT WARN 4000

< POWER_MODEL ID=1 NAME=MODE_15W >
TPC_POWER_GATING TPC_PG_MASK 248
CPU_A57 MAX_FREQ 1113600

< POWER_MODEL ID=3 NAME=MODE_50W >
TPC_POWER_GATING TPC_PG_MASK 0
CPU_A57 MAX_FREQ 1497600

< PM_CONFIG DEFAULT=1 >
< FAN_CONFIG DEFAULT=quiet >
"""


def test_spaces_tabs_comments_hwmon_and_fan() -> None:
    conf = parse_conf(HWMON_CONF)
    assert conf.default_id == 1
    assert conf.fan_default == "quiet"
    assert conf.params["TPC_POWER_GATING"].args == {"TPC_PG_MASK": "/sys/devices/gpu.0/tpc_pg_mask"}
    assert conf.params["VDDIN_OC_LIMIT"].type == "HWMON"
    assert conf.params["VDDIN_OC_LIMIT"].args["WARN"] == (
        "/sys/devices/platform/c250000.i2c/i2c-7/7-0040/hwmon/curr1_max"
    )
    maxn = conf.mode_by_id(0)
    assert maxn is not None
    assert maxn.value("CPU_A57", "MIN_FREQ") == "0"
    assert maxn.value("CPU_A57", "MAX_FREQ") == "-1"
    assert maxn.value("VDDIN_OC_LIMIT", "WARN") == "4000"


def test_power_gating_mask_needs_reboot() -> None:
    conf = parse_conf(HWMON_CONF)
    assert needs_reboot(conf, 0, 1)
    assert needs_reboot(conf, 1, 3)
    assert not needs_reboot(conf, 0, 3)
    assert not needs_reboot(conf, 1, 1)
    with pytest.raises(HardwareError, match="ID=9"):
        needs_reboot(conf, 0, 9)


def test_fbp_mask_also_counts() -> None:
    text = """\
< PARAM TYPE=FILE NAME=FBP_POWER_GATING >
FBP_PG_MASK /sys/devices/platform/gpu.0/fbp_pg_mask
< POWER_MODEL ID=0 NAME=15W >
FBP_POWER_GATING FBP_PG_MASK 2
< POWER_MODEL ID=1 NAME=25W >
FBP_POWER_GATING FBP_PG_MASK 0
< POWER_MODEL ID=2 NAME=7W >
FBP_POWER_GATING FBP_PG_MASK 2
< PM_CONFIG DEFAULT=0 >
"""
    conf = parse_conf(text)
    assert needs_reboot(conf, 0, 1)
    assert not needs_reboot(conf, 0, 2)


_PARAM = "< PARAM TYPE=CLOCK NAME=GPU >\nMAX_FREQ /sys/gpu/max_freq\n"
_MODE = "< POWER_MODEL ID=0 NAME=MAXN >\nGPU MAX_FREQ -1\n"
_DEFAULT = "< PM_CONFIG DEFAULT=0 >\n"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (_PARAM + _MODE, "missing mandatory < PM_CONFIG"),
        (_PARAM + _DEFAULT, "no POWER_MODEL"),
        (_PARAM + _MODE + "< PM_CONFIG DEFAULT=5 >\n", "DEFAULT=5 is not a defined mode"),
        ("GPU MAX_FREQ 1\n" + _PARAM + _MODE + _DEFAULT, "line 1: content before"),
        (_PARAM + _MODE + "GPU MAX_FREQ\n" + _DEFAULT, "line 5: expected PARAM ARG VALUE"),
        (_PARAM + _MODE + "CPU MAX_FREQ 1\n" + _DEFAULT, "line 5: PARAM CPU is not defined"),
        (_PARAM + _MODE + "GPU MIN_FREQ 1\n" + _DEFAULT, "line 5: PARAM GPU has no ARG MIN_FREQ"),
        ("< PARAM TYPE=BOGUS NAME=X >\n" + _MODE + _DEFAULT, "line 1: unknown PARAM TYPE"),
        ("< PARAM TYPE=CLOCK >\n" + _MODE + _DEFAULT, "line 1: PARAM header needs NAME="),
        (_PARAM + "MIN_FREQ /a /b\n" + _MODE + _DEFAULT, "line 3: expected ARG /path"),
        (
            _PARAM + "< POWER_MODEL ID=x NAME=A >\n" + _DEFAULT,
            "line 3: ID must be an integer",
        ),
        (_PARAM + _MODE + _MODE.replace("MAXN", "B") + _DEFAULT, "duplicate POWER_MODEL ID=0"),
        (_PARAM + "< POWER_MODEL ID 0 >\n" + _DEFAULT, "line 3: expected KEY=VALUE"),
        (_PARAM + _MODE + "< PM_CONFIG DEFAULT=0 >\nGPU MAX_FREQ 1\n", "line 6: unexpected"),
        (
            "< PARAM TYPE=HWMON NAME=OC >\nWARN /sys/hwmon\n" + _MODE + _DEFAULT,
            "line 2: expected ARG <hwmon dir> <file>",
        ),
    ],
)
def test_malformed_conf_names_the_line(text: str, needle: str) -> None:
    with pytest.raises(HardwareError, match=r"nvpmodel\.conf") as info:
        parse_conf(text)
    assert needle in str(info.value)


def test_unknown_section_is_skipped() -> None:
    conf = parse_conf(_PARAM + "< FUTURE_THING X=1 >\nanything goes here\n" + _MODE + _DEFAULT)
    assert [m.name for m in conf.modes] == ["MAXN"]
