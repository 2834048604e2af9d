"""jetson_clocks --show parsing, the sysfs "is it on" rule (its marks), and the runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.errors import CommandError, CommandTimeout, HardwareError
from edge_agent.hardware.jetson_clocks import (
    EMC_RATE_LOCKED,
    JetsonClocks,
    ShowClock,
    ShowCpu,
    is_active,
    parse_show,
)
from edge_agent.hardware.root import Root
from tests.fakes.sysfs import make_cpus, make_executable, make_gpu_devfreq, write
from tests.hardware.captures import CAPTURES, capture

BIN = "usr/bin/jetson_clocks"

# Records its argv and, for --store, writes the file it was given (as the real script does).
RECORDER = """
import sys
from pathlib import Path
Path(__file__).with_name("args").write_text(" ".join(sys.argv[1:]))
if sys.argv[1:2] == ["--store"]:
    Path(sys.argv[2]).write_text("/sys/devices/gpu.0/devfreq/17000000.gp10b/min_freq:114750000\\n")
"""


def test_show_tx2() -> None:
    show = parse_show(capture("jetson_clocks_show_tx2.txt"))
    assert (show.soc_family, show.machine) == ("tegra186", "quill")
    assert show.online_cpus == (0, 3, 4, 5)
    assert show.cpus == (ShowCpu(0, True, "schedutil", 345600, 2035200, 2035200),)
    assert show.gpu == ShowClock(114750000, 1134750000, 114750000)
    assert show.emc == ShowClock(40800000, 1600000000, 1600000000)
    assert show.power_mode == "MAXP_CORE_ARM"
    assert show.active_gpu_tpcs is None
    assert show.extra == ("CPU Cluster Switching: Disabled", "Fan: speed=0")


def test_show_orin_nano_two_space_form() -> None:
    show = parse_show(capture("jetson_clocks_show_orin_nano_r36.txt"))
    assert show.soc_family == "tegra234"
    assert show.machine == "NVIDIA Jetson Orin Nano Developer Kit"
    assert show.online_cpus == (0, 1, 2, 3, 4, 5)
    assert [c.index for c in show.cpus] == [0, 1, 2, 3, 4, 5]
    assert show.cpus[3] == ShowCpu(3, True, "ondemand", 729600, 1510400, 960000)
    assert show.gpu == ShowClock(306000000, 624750000, 306000000)
    assert show.emc == ShowClock(204000000, 2133000000, 665600000)
    assert show.active_gpu_tpcs == 4
    assert show.power_mode is None
    assert "FAN Dynamic Speed Control=kernel hwmon0_pwm1=88" in show.extra


def test_show_offline_cpu_and_odd_values() -> None:
    text = (
        "SOC family:tegra194  Machine:Jetson-AGX\n"
        "cpu4: Online=0 Governor=schedutil MinFreq=- MaxFreq=2265600 CurrentFreq=0\n"
        "NV Power Mode: MODE_15W\n"
    )
    show = parse_show(text)
    assert show.cpus == (ShowCpu(4, False, "schedutil", None, 2265600, 0),)
    assert show.gpu is None
    assert show.power_mode == "MODE_15W"


def test_show_garbage_raises() -> None:
    with pytest.raises(CommandError, match="no CPU, GPU or EMC line") as info:
        parse_show("jetson_clocks: must be run as root\n")
    assert "must be run as root" in str(info.value)


def _pinned_tree(
    tmp_path: Path, *, pinned: bool, idle_disabled: bool | None = None, emc_locked: int | None = 1
) -> Root:
    make_cpus(
        tmp_path,
        {0: (0, 3, 4, 5), 1: (1, 2)},
        online=(0, 3, 4, 5),
        min_khz=2035200 if pinned else 345600,
        max_khz=2035200,
    )
    # The offline Denver policy is not pinned; jtop's rule ignores offline CPUs.
    policy1 = tmp_path / "sys/devices/system/cpu/cpufreq/policy1/scaling_min_freq"
    policy1.write_text("345600\n")
    make_gpu_devfreq(tmp_path, min_hz=1300500000 if pinned else None, max_hz=1300500000)
    if idle_disabled is not None:
        for cpu in range(6):
            for index, name in enumerate(("C1", "c7")):
                state = f"sys/devices/system/cpu/cpu{cpu}/cpuidle/state{index}"
                write(tmp_path, f"{state}/name", f"{name}\n")
                write(tmp_path, f"{state}/disable", f"{int(idle_disabled)}\n")
    if emc_locked is not None:
        write(tmp_path, f"{EMC_RATE_LOCKED}", f"{emc_locked}\n")
    return Root(tmp_path)


def test_is_active(tmp_path: Path) -> None:
    assert is_active(_pinned_tree(tmp_path / "on", pinned=True, idle_disabled=True))
    assert not is_active(_pinned_tree(tmp_path / "off", pinned=False, idle_disabled=True))
    assert not is_active(Root(tmp_path / "nothing"))


def test_is_active_needs_a_mark_jetson_clocks_leaves(tmp_path: Path) -> None:
    # min == max alone is what caps at the table's floor leave too.
    assert not is_active(_pinned_tree(tmp_path / "bare", pinned=True, emc_locked=None))
    assert not is_active(_pinned_tree(tmp_path / "idle", pinned=True, idle_disabled=False))
    assert not is_active(
        _pinned_tree(tmp_path / "emc", pinned=True, idle_disabled=True, emc_locked=0)
    )
    # Either mark alone will do where the other cannot be read (debugfs is root only).
    assert is_active(_pinned_tree(tmp_path / "emc_only", pinned=True, emc_locked=1))
    assert is_active(
        _pinned_tree(tmp_path / "idle_only", pinned=True, idle_disabled=True, emc_locked=None)
    )


def test_is_active_gpu_not_pinned(tmp_path: Path) -> None:
    root = _pinned_tree(tmp_path, pinned=True)
    (tmp_path / "sys/devices/gpu.0/devfreq/17000000.gp10b/min_freq").write_text("114750000\n")
    assert not is_active(root)


def test_runner_show(tmp_path: Path) -> None:
    source = str(CAPTURES / "jetson_clocks_show_tx2.txt")
    body = f"import sys\nsys.stdout.write(open({source!r}).read())\n"
    make_executable(tmp_path, BIN, body)
    jc = JetsonClocks(Root(tmp_path))
    assert jc.available()
    assert jc.show().power_mode == "MAXP_CORE_ARM"


def test_runner_store_restore_pin(tmp_path: Path) -> None:
    make_executable(tmp_path, BIN, RECORDER)
    jc = JetsonClocks(Root(tmp_path))
    args = tmp_path / "usr/bin/args"
    store = tmp_path / "state" / "l4t_dfs.conf"
    store.parent.mkdir()
    jc.store(store)
    assert args.read_text() == f"--store {store}"
    assert store.read_text().startswith("/sys/devices/gpu.0")
    with pytest.raises(HardwareError, match="already exists"):
        jc.store(store)
    jc.store(store, overwrite=True)
    jc.restore(store)
    assert args.read_text() == f"--restore {store}"
    jc.pin()
    assert args.read_text() == ""
    with pytest.raises(HardwareError, match="no jetson_clocks store file"):
        jc.restore(tmp_path / "missing.conf")


def test_runner_failures(tmp_path: Path) -> None:
    jc = JetsonClocks(Root(tmp_path), timeout_s=0.5)
    assert not jc.available()
    with pytest.raises(CommandError, match="not found"):
        jc.pin()
    make_executable(tmp_path, BIN, "import sys\nprint('Error: must be run as root')\nsys.exit(1)\n")
    with pytest.raises(CommandError, match="exited 1") as info:
        jc.pin()
    assert "must be run as root" in str(info.value)
    (tmp_path / BIN).unlink()
    make_executable(tmp_path, BIN, "import signal\nsignal.pause()\n")
    with pytest.raises(CommandTimeout):
        jc.show()
