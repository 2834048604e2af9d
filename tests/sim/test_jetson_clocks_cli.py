"""The simulated jetson_clocks pins, shows, stores and restores clocks on the tree."""

from __future__ import annotations

from edge_agent.sim import jetson_clocks_cli
from edge_agent.sim.tree import SimBoard
from tests.sim.conftest import run_tool, snapshot

TX2_GPU = "sys/devices/17000000.gp10b/devfreq/17000000.gp10b"


def _read(board: SimBoard, rel: str) -> str:
    return (board.root / rel).read_text(encoding="utf-8").strip()


def _jtop_says_on(board: SimBoard) -> bool:
    """jtop's rule: min == max for online CPUs and the GPU, EMC rate at its max."""
    root, spec = board.root, board.spec
    online = [
        c
        for c in range(spec.cpu_count)
        if _read(board, f"sys/devices/system/cpu/cpu{c}/online") == "1"
    ]
    cpus = all(
        _read(board, f"sys/devices/system/cpu/cpu{c}/cpufreq/scaling_min_freq")
        == _read(board, f"sys/devices/system/cpu/cpu{c}/cpufreq/scaling_max_freq")
        for c in online
    )
    dev = board.devfreq_dir
    gpu = (dev / "min_freq").read_text() == (dev / "max_freq").read_text()
    emc = root / "sys/kernel/debug/bpmp/debug/clk/emc"
    return cpus and gpu and _read(board, str((emc / "mrq_rate_locked").relative_to(root))) == "1"


def test_store_pin_restore_round_trip(tx2: SimBoard) -> None:
    before = snapshot(tx2.root)
    assert run_tool(tx2, "jetson_clocks", "--store", "/root/dfs.conf") == (0, "")
    stored = _read(tx2, "root/dfs.conf").splitlines()
    assert f"/{TX2_GPU}/min_freq:114750000" in stored
    assert "/sys/devices/system/cpu/cpu1/online:0" in stored

    assert run_tool(tx2, "jetson_clocks") == (0, "")
    assert _jtop_says_on(tx2)
    assert _read(tx2, f"{TX2_GPU}/min_freq") == "1122000000"
    assert _read(tx2, "sys/devices/system/cpu/cpu0/cpufreq/scaling_min_freq") == "2035200"
    assert _read(tx2, "sys/devices/17000000.gp10b/railgate_enable") == "0"
    assert _read(tx2, "sys/devices/system/cpu/cpu0/cpuidle/state1/disable") == "1"
    assert _read(tx2, "sys/kernel/debug/bpmp/debug/clk/emc/rate") == "1600000000"

    assert run_tool(tx2, "jetson_clocks", "--restore", "/root/dfs.conf") == (0, "")
    assert not _jtop_says_on(tx2)

    # Only the running clocks differ: they stay where the pin left them until the load changes.
    def limits(files: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in files.items() if not k.endswith("cur_freq")}

    assert limits(snapshot(tx2.root)) == limits(before)


def test_store_refuses_to_overwrite_without_yes(tx2: SimBoard) -> None:
    assert run_tool(tx2, "jetson_clocks", "--store")[0] == 0
    assert (tx2.root / "root/l4t_dfs.conf").exists()
    code, out = run_tool(tx2, "jetson_clocks", "--store")
    assert code != 0
    assert "already exists" in out
    assert run_tool(tx2, "jetson_clocks", "--store", stdin="Y\n")[0] == 0


def test_restore_missing_file_fails(tx2: SimBoard) -> None:
    code, out = run_tool(tx2, "jetson_clocks", "--restore", "/root/none.conf")
    assert code != 0
    assert "/root/none.conf" in out


def test_show_tx2_format(tx2: SimBoard) -> None:
    assert run_tool(tx2, "nvpmodel", "-m", "1")[0] == 0
    code, out = run_tool(tx2, "jetson_clocks", "--show")
    lines = out.splitlines()
    assert code == 0
    assert lines[:3] == [
        "SOC family:tegra186  Machine:quill",
        "Online CPUs: 0,3-5",
        "CPU Cluster Switching: Disabled",
    ]
    # MAXQ's 1200000 kHz, rounded to the table.
    assert lines[3].startswith("cpu0: Online=1 Governor=schedutil MinFreq=345600 MaxFreq=1267200 ")
    assert lines[3].endswith("IdleStates: C1=1 c7=1 ")  # real lines end in a space
    assert "GPU MinFreq=114750000 MaxFreq=854250000 CurrentFreq=114750000" in lines
    assert "EMC MinFreq=40800000 MaxFreq=1331200000 CurrentFreq=1331200000 FreqOverride=0" in lines
    assert lines[-2:] == ["Fan: speed=0", "NV Power Mode: MAXQ"]


def test_show_orin_nano_format_after_pinning(orin_nano: SimBoard) -> None:
    assert jetson_clocks_cli.main([], orin_nano.root) == 0
    # The default mode is 25W (CPU cap 1344000 kHz, a table entry).
    lines = jetson_clocks_cli.show(orin_nano.root, orin_nano.spec)
    assert lines[1] == "Online CPUs: 0-5"
    assert lines[2] == (
        "cpu0:  Online=1 Governor=schedutil MinFreq=1344000 MaxFreq=1344000 "
        "CurrentFreq=1344000 IdleStates: WFI=0 c7=0 "
    )
    assert "GPU MinFreq=918000000 MaxFreq=918000000 CurrentFreq=918000000" in lines
    assert "Active GPU TPCs: 4" in lines
    assert "EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=1" in lines
    assert lines[-2:] == ["FAN Dynamic Speed Control=kernel hwmon0_pwm1=88", "NV Power Mode: 25W"]
