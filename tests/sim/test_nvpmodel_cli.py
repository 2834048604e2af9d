"""The simulated nvpmodel behaves like NVIDIA's on the tree (run as a real process)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edge_agent.errors import RebootRequired
from edge_agent.hardware.nvpmodel import (
    Nvpmodel,
    parse_query,
    parse_query_verbose,
    parse_status,
)
from edge_agent.hardware.root import Root
from edge_agent.sim import nvpmodel_cli
from edge_agent.sim.tree import SimBoard
from tests.sim.conftest import run_tool, snapshot


def _read(board: SimBoard, rel: str) -> str:
    return (board.root / rel).read_text(encoding="utf-8").strip()


TX2_GPU = "sys/devices/17000000.gp10b/devfreq/17000000.gp10b"


def test_tx2_mode_1_is_max_q(tx2: SimBoard) -> None:
    code, out = run_tool(tx2, "nvpmodel", "-m", "1")
    assert (code, out) == (0, "")
    assert _read(tx2, f"{TX2_GPU}/max_freq") == "854250000"
    for cpu in (0, 3, 4, 5):
        assert _read(tx2, f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_max_freq") == "1267200"
    assert _read(tx2, "sys/devices/system/cpu/cpu1/online") == "0"
    assert _read(tx2, "sys/devices/system/cpu/cpu2/online") == "0"
    assert _read(tx2, "sys/kernel/nvpmodel_emc_cap/emc_iso_cap") == "1331200000"
    assert _read(tx2, "var/lib/nvpmodel/status") == "pmode:0001"
    code, out = run_tool(tx2, "nvpmodel", "-q")
    assert code == 0
    assert out.splitlines() == ["NV Power Mode: MAXQ", "1"]


def test_tx2_maxn_brings_denver_back_at_top_clocks(tx2: SimBoard) -> None:
    assert run_tool(tx2, "nvpmodel", "-m", "0")[0] == 0
    assert _read(tx2, "sys/devices/system/cpu/online") == "0-5"
    assert _read(tx2, f"{TX2_GPU}/max_freq") == "1300500000"
    assert _read(tx2, "sys/devices/system/cpu/cpu1/cpufreq/scaling_max_freq") == "2035200"
    assert _read(tx2, "sys/kernel/nvpmodel_emc_cap/emc_iso_cap") == "0"


def test_query_verbose_parses_with_the_hardware_parser(orin_nano: SimBoard) -> None:
    assert run_tool(orin_nano, "nvpmodel", "-m", "1")[0] == 0
    code, out = run_tool(orin_nano, "nvpmodel", "-q", "--verbose")
    assert code == 0
    assert out.startswith("NVPM VERB: Config file: /etc/nvpmodel.conf\n")
    query, rows = parse_query_verbose(out)
    assert (query.name, query.id) == ("25W", 1)
    by_arg = {(r.param, r.arg): r for r in rows}
    gpu = by_arg[("GPU", "MAX_FREQ")]
    assert gpu.path == "/sys/devices/platform/17000000.gpu/devfreq_dev/max_freq"
    assert (gpu.real_value, gpu.conf_value) == ("918000000", "918000000")
    assert by_arg[("TPC_POWER_GATING", "TPC_PG_MASK")].real_value == "240"
    assert by_arg[("EMC", "MAX_FREQ")].path == "/sys/kernel/nvpmodel_clk_cap/emc"


def test_maxn_super_shows_int64_max_on_r36(orin_nano: SimBoard) -> None:
    assert run_tool(orin_nano, "nvpmodel", "-m", "2")[0] == 0
    _, rows = parse_query_verbose(run_tool(orin_nano, "nvpmodel", "-q", "--verbose")[1])
    gpu = next(r for r in rows if (r.param, r.arg) == ("GPU", "MAX_FREQ"))
    assert (gpu.real_value, gpu.conf_value) == ("1020000000", "9223372036854775807")


def test_query_prints_no_fan_line_on_orin(agx_orin: SimBoard) -> None:
    code, out = run_tool(agx_orin, "nvpmodel", "-q")
    assert code == 0
    assert out.splitlines() == ["NV Power Mode: MODE_30W", "2"]


def test_query_prints_the_fan_mode_on_xavier(xavier_nx: SimBoard) -> None:
    code, out = run_tool(xavier_nx, "nvpmodel", "-q")
    assert code == 0
    assert out.splitlines() == ["NV Fan Mode:quiet", "NV Power Mode: MODE_15W_6CORE", "2"]
    query = parse_query(out)
    assert (query.name, query.id, query.warnings) == ("MODE_15W_6CORE", 2, ("NV Fan Mode:quiet",))


def test_parse_verbose_dump(tx2: SimBoard) -> None:
    code, out = run_tool(tx2, "nvpmodel", "-p", "--verbose")
    lines = out.splitlines()
    assert code == 0
    assert "NVPM VERB: PM_CONFIG: DEFAULT=MAXP_CORE_ARM(3)" in lines
    assert "NVPM VERB: PARAM TYPE=CLOCK NAME=GPU" in lines
    assert "NVPM VERB: POWER_MODEL: ID=1 NAME=MAXQ" in lines
    assert "NVPM VERB: GPU MAX_FREQ 2147483647" in lines  # MAXN's -1
    assert "NVPM VERB: GPU MAX_FREQ 850000000" in lines


def test_agx_orin_mask_change_fails_on_eof_and_changes_nothing(agx_orin: SimBoard) -> None:
    before = snapshot(agx_orin.root)
    code, out = run_tool(agx_orin, "nvpmodel", "-m", "1")
    assert code != 0
    assert "NVPM WARN: Reboot required for changing to this power mode: 1" in out
    assert "NVPM WARN: DO YOU WANT TO REBOOT NOW? enter YES/yes to confirm:" in out
    assert "NVPM ERROR: bad input!" in out
    assert snapshot(agx_orin.root) == before
    assert agx_orin.reboot_count == 0


def test_agx_orin_declined_reboot(agx_orin: SimBoard) -> None:
    before = snapshot(agx_orin.root)
    code, out = run_tool(agx_orin, "nvpmodel", "-m", "3", stdin="no\n")
    assert code != 0
    assert "NVPM ERROR: optMask is 1, no request for power mode" in out
    assert snapshot(agx_orin.root) == before


def test_agx_orin_confirmed_reboot_applies_and_counts(agx_orin: SimBoard) -> None:
    code, out = run_tool(agx_orin, "nvpmodel", "-m", "1", stdin="YES\n")
    assert code == 0
    assert "NVPM WARN: rebooting" in out
    assert agx_orin.reboot_count == 1
    assert _read(agx_orin, "sys/devices/gpu.0/tpc_pg_mask") == "248"
    assert _read(agx_orin, "sys/devices/17000000.ga10b/devfreq/17000000.ga10b/max_freq") == (
        "408000000"
    )
    assert _read(agx_orin, "sys/devices/system/cpu/online") == "0-3"
    assert parse_status(_read(agx_orin, "var/lib/nvpmodel/status")) == 1


def test_agx_orin_maxn_and_50w_switch_live(agx_orin: SimBoard) -> None:
    assert run_tool(agx_orin, "nvpmodel", "-m", "3", stdin="yes\n")[0] == 0
    code, out = run_tool(agx_orin, "nvpmodel", "-m", "0")
    assert (code, out) == (0, "")
    assert agx_orin.reboot_count == 1
    assert _read(agx_orin, "sys/devices/system/cpu/online") == "0-11"


def test_hardware_runner_reports_reboot_required(agx_orin: SimBoard) -> None:
    runner = Nvpmodel(Root(agx_orin.root))
    with pytest.raises(RebootRequired):
        runner.set_mode(1)
    assert runner.query().name == "MODE_30W"


def test_xavier_nx_writes_hwmon_current_limits(xavier_nx: SimBoard) -> None:
    chip = "sys/bus/i2c/devices/7-0040/hwmon/hwmon4"
    assert _read(xavier_nx, f"{chip}/curr1_max") == "3000"
    assert run_tool(xavier_nx, "nvpmodel", "-m", "6")[0] == 0
    assert _read(xavier_nx, f"{chip}/curr1_max") == "4000"
    assert _read(xavier_nx, f"{chip}/curr1_crit") == "5000"
    assert _read(xavier_nx, "sys/devices/system/cpu/online") == "0-1"


def test_unknown_mode_is_an_error(tx2: SimBoard) -> None:
    before = snapshot(tx2.root)
    code, out = run_tool(tx2, "nvpmodel", "-m", "9")
    assert code != 0
    assert "NVPM ERROR" in out
    assert snapshot(tx2.root) == before


def test_read_only_file_fails_with_its_path(tx2: SimBoard) -> None:
    target = tx2.root / TX2_GPU / "max_freq"
    target.chmod(0o444)
    code, out = run_tool(tx2, "nvpmodel", "-m", "1")
    assert code != 0
    assert f"/{TX2_GPU}/max_freq" in out
    assert _read(tx2, "var/lib/nvpmodel/status") == "pmode:0003"


@pytest.mark.skipif(shutil.which("chattr") is None, reason="chattr is not installed")
def test_immutable_file_fails_with_its_path(tx2: SimBoard) -> None:
    target = tx2.root / "sys/kernel/nvpmodel_emc_cap/emc_iso_cap"
    made = subprocess.run(
        ["chattr", "+i", str(target)], capture_output=True, check=False, timeout=30
    )
    if made.returncode != 0:
        pytest.skip(f"chattr +i not permitted here: {made.stderr!r}")
    try:
        code, out = run_tool(tx2, "nvpmodel", "-m", "1")
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=True, timeout=30)
    assert code != 0
    assert "/sys/kernel/nvpmodel_emc_cap/emc_iso_cap" in out
    assert _read(tx2, "var/lib/nvpmodel/status") == "pmode:0003"


def test_f_alone_reapplies_the_stored_mode(tx2: SimBoard) -> None:
    assert run_tool(tx2, "nvpmodel", "-m", "1")[0] == 0
    (tx2.root / TX2_GPU / "max_freq").write_text("1300500000\n", encoding="utf-8")
    code, _ = run_tool(tx2, "nvpmodel", "-f", "/etc/nvpmodel.conf")
    assert code == 0
    assert _read(tx2, f"{TX2_GPU}/max_freq") == "854250000"


def test_in_process_main_and_rounding(tx2: SimBoard, capsys: pytest.CaptureFixture[str]) -> None:
    assert nvpmodel_cli.main(["-m", "2"], tx2.root) == 0
    assert _read(tx2, f"{TX2_GPU}/max_freq") == "1122000000"  # 1120000000 rounded
    # 1400000 rounded
    assert _read(tx2, "sys/devices/system/cpu/cpu1/cpufreq/scaling_max_freq") == "1420800"
    assert nvpmodel_cli.main(["-q"], tx2.root) == 0
    assert capsys.readouterr().out == "NV Power Mode: MAXP_CORE_ALL\n2\n"


def test_pinned_min_is_lowered_with_a_lower_max(tx2: SimBoard) -> None:
    (tx2.root / TX2_GPU / "min_freq").write_text("1300500000\n", encoding="utf-8")
    assert nvpmodel_cli.main(["-m", "4"], Path(tx2.root)) == 0  # no GPU MIN_FREQ in mode 4
    assert _read(tx2, f"{TX2_GPU}/max_freq") == "1122000000"
    assert _read(tx2, f"{TX2_GPU}/min_freq") == "1122000000"  # the kernel keeps min <= max


def test_agx_xavier_mode_10w_needs_a_reboot(tmp_path: Path) -> None:
    from edge_agent.sim.tree import create_board

    board = create_board("jetson-agx-xavier", tmp_path / "agx-xavier")
    code, out = run_tool(board, "nvpmodel", "-m", "1")
    assert code != 0
    assert "NVPM ERROR: bad input!" in out
    assert run_tool(board, "nvpmodel", "-m", "3") == (0, "")
    gpu = "sys/devices/17000000.gv11b/devfreq/17000000.gv11b/max_freq"
    assert _read(board, gpu) == "905250000"  # 900000000 rounded to the table
