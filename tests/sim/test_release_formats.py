"""CLI output details that differ by release (issue 14 items 7 and 8)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from edge_agent.hardware.tegrastats import parse_line
from edge_agent.sim import jetson_clocks_cli
from edge_agent.sim.tree import SimBoard, create_board
from tests.sim.conftest import run_tool


def test_bad_mode_id(tx2: SimBoard) -> None:
    assert run_tool(tx2, "nvpmodel", "-m", "9") == (
        1,
        "NVPM ERROR: request for bad power mode 9\n",
    )


def test_reboot_prompt_without_stdin(orin_nano: SimBoard) -> None:
    code, out = run_tool(orin_nano, "nvpmodel", "-m", "3")
    assert code == 1
    assert out.splitlines()[-2:] == [
        "NVPM ERROR: bad input!",
        "NVPM ERROR: optMask is 1, no request for power mode",
    ]


def test_r35_verbose_query_prints_the_devfreq_dev_path(agx_orin: SimBoard) -> None:
    code, out = run_tool(agx_orin, "nvpmodel", "-q", "--verbose")
    assert code == 0
    gpu = [line for line in out.splitlines() if "PARAM GPU: ARG MAX_FREQ" in line]
    assert gpu == [
        "NVPM VERB: PARAM GPU: ARG MAX_FREQ: PATH /sys/devices/17000000.ga10b/devfreq_dev/max_freq:"
        " REAL_VAL: 612000000 CONF_VAL: 612000000"
    ]


def test_r35_show_orders_cpus_by_name_and_lists_accelerators(agx_orin: SimBoard) -> None:
    lines = jetson_clocks_cli.show(agx_orin.root, agx_orin.spec)
    cpus = [line.split(":")[0] for line in lines if line.startswith("cpu")]
    assert cpus[:5] == ["cpu0", "cpu1", "cpu10", "cpu11", "cpu2"]
    assert all(
        line.startswith(f"{cpu}: Online=") for cpu, line in zip(cpus, lines[2:], strict=False)
    )
    assert "DLA0_CORE: Online=1 MinFreq=0 MaxFreq=1369600000 CurrentFreq=1369600000" in lines
    assert not any(line.startswith("Active GPU TPCs") for line in lines)
    assert lines[-2] == "FAN Dynamic Speed Control=kernel hwmon2_pwm1=88"


def test_r36_show_aligns_columns_and_shows_offline_cpus_at_the_minimum(tmp_path: Path) -> None:
    sim = create_board("jetson-agx-orin", tmp_path / "agx", "r36.4")  # MODE_30W: cpu8-11 off
    lines = jetson_clocks_cli.show(sim.root, sim.spec)
    assert lines[2].startswith("cpu0:  Online=1 ")
    cpu10 = next(line for line in lines if line.startswith("cpu10"))
    assert cpu10 == (
        "cpu10: Online=0 Governor=schedutil MinFreq=115200 MaxFreq=115200 CurrentFreq=115200 "
        "IdleStates: WFI=1 c7=1 "
    )
    assert "Active GPU TPCs: 4" in lines


@pytest.mark.parametrize(
    ("board", "cpu", "states"),
    [
        ("jetson-tx2", 0, "C1=1 c7=1 "),
        ("jetson-agx-xavier", 0, "C1=1 c6=1 "),
        ("jetson-xavier-nx", 0, "C1=1 c6=1 "),
    ],
)
def test_idle_state_names(board: str, cpu: int, states: str, tmp_path: Path) -> None:
    sim = create_board(board, tmp_path / "b")
    lines = jetson_clocks_cli.show(sim.root, sim.spec)
    assert next(line for line in lines if line.startswith(f"cpu{cpu}:")).endswith(
        f"IdleStates: {states}"
    )


def test_tx2_denver_idle_states(tx2: SimBoard) -> None:
    names = sorted((tx2.root / "sys/devices/system/cpu/cpu1/cpuidle").glob("state*/name"))
    assert [p.read_text().strip() for p in names] == ["C1", "c6", "c7"]


def test_tegrastats_tool_streams_lines_and_stops(xavier_nx: SimBoard, tmp_path: Path) -> None:
    with subprocess.Popen(
        [str(xavier_nx.tegrastats), "--interval", "20"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            first, second = proc.stdout.readline(), proc.stdout.readline()
        finally:
            stop = subprocess.run(
                [str(xavier_nx.tegrastats), "--stop"], timeout=30, check=False, capture_output=True
            )
            proc.wait(timeout=30)
    assert stop.returncode == 0
    for line in (first, second):
        stats = parse_line(line)
        assert stats.timestamp is not None  # R35: a leading date
        assert list(stats.rails) == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
        assert "mW/" in line


def test_tegrastats_logfile(tx2: SimBoard, tmp_path: Path) -> None:
    log = tmp_path / "stats.log"
    proc = subprocess.Popen(
        [str(tx2.tegrastats), "--interval", "10", "--logfile", str(log)],
        stdin=subprocess.DEVNULL,
    )
    try:
        for _ in range(1500):  # until two lines are in the file (at most 30 s)
            if log.exists() and log.read_text(encoding="utf-8").count("\n") >= 2:
                break
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=0.02)  # it keeps running, writing to the file
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 2
    stats = parse_line(lines[0])
    assert stats.timestamp is None  # L4T 32: no date
    assert stats.rails["VDD_SYS_SOC"][0] > 0
    assert "mW" not in lines[0]


def test_xavier_nx_r32_writes_the_iio_current_limits(tmp_path: Path) -> None:
    sim = create_board("jetson-xavier-nx", tmp_path / "xnx", "r32.7")
    chip = sim.path("/sys/devices/c250000.i2c/i2c-7/7-0040/iio:device0")
    assert (chip / "rail_name_0").read_text().strip() == "VDD_IN"
    assert (chip / "warn_current_limit_0").read_text().split()[0] == "3000"  # MODE_15W_6CORE
    assert run_tool(sim, "nvpmodel", "-m", "8")[0] == 0  # MODE_20W_6CORE
    assert (chip / "warn_current_limit_0").read_text().split()[0] == "4000"
    code, out = run_tool(sim, "nvpmodel", "-q", "--verbose")
    assert code == 0
    assert "_KNEXT" not in sim.spec.conf_text
    assert "PATH /sys/devices/17000000.gv11b/devfreq/17000000.gv11b/max_freq:" in out
