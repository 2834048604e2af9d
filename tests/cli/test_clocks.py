"""``edge-agent clocks pin | unpin | show`` on simulated boards, through the real fake CLIs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.hardware.jetson_clocks import is_active
from edge_agent.hardware.root import Root
from edge_agent.sim.tree import SimBoard, create_board


@pytest.fixture(autouse=True)
def _no_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)


@pytest.fixture
def tx2(tmp_path: Path) -> SimBoard:
    return create_board("jetson-tx2", tmp_path / "tx2")


def cli(sim: SimBoard, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(sim.root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def clock_files(sim: SimBoard) -> dict[str, str]:
    """The files jetson_clocks writes, by board path."""
    root = sim.root
    patterns = (
        "sys/devices/system/cpu/cpu*/cpufreq/scaling_min_freq",
        "sys/devices/system/cpu/cpu*/cpuidle/state*/disable",
        "sys/kernel/debug/bpmp/debug/clk/emc/mrq_rate_locked",
    )
    files = [p for pattern in patterns for p in root.glob(pattern)]
    files.append(sim.devfreq_dir / "min_freq")
    return {str(p.relative_to(root)): p.read_text(encoding="utf-8") for p in sorted(files)}


def read_int(path: Path) -> int:
    return int(path.read_text(encoding="utf-8").split()[0])


def test_pin_show_unpin_round_trip(tx2: SimBoard, capsys: pytest.CaptureFixture[str]) -> None:
    before = clock_files(tx2)
    store = tx2.root / "var/lib/edge-agent/clocks_pin.conf"
    code, out, err = cli(tx2, capsys, "clocks", "pin")
    assert code == 0, err
    assert out.strip() == f"clocks pinned (state stored in {store})"
    assert store.is_file()
    assert is_active(Root(tx2.root))
    assert read_int(tx2.devfreq_dir / "min_freq") == read_int(tx2.devfreq_dir / "max_freq")
    code, out, _ = cli(tx2, capsys, "clocks", "show", "--json")
    shown = json.loads(out)
    assert code == 0
    assert (shown["pinned"], shown["stored"], shown["source"]) == (
        True,
        str(store),
        "jetson_clocks --show",
    )
    assert shown["gpu"]["min_hz"] == shown["gpu"]["max_hz"] == 1122000000
    assert shown["power_mode"] == "MAXP_CORE_ARM"
    # Pinning again changes nothing and keeps the state stored the first time.
    stored = store.read_text(encoding="utf-8")
    assert cli(tx2, capsys, "clocks", "pin")[1].strip() == "clocks already pinned"
    assert store.read_text(encoding="utf-8") == stored
    code, out, err = cli(tx2, capsys, "clocks", "unpin")
    assert code == 0, err
    assert out.strip() == f"clocks restored from {store}"
    assert not store.exists()
    assert clock_files(tx2) == before
    assert not is_active(Root(tx2.root))
    assert cli(tx2, capsys, "clocks", "unpin")[:2] == (0, "clocks not pinned\n")


def test_a_profile_switch_between_pin_and_unpin_does_not_lose_the_state(
    tx2: SimBoard, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(tx2, capsys, "clocks", "pin")[0] == 0
    assert cli(tx2, capsys, "profile", "maxq")[0] == 0
    assert is_active(Root(tx2.root))  # the switch re-pinned at maxq's maxima
    assert read_int(tx2.devfreq_dir / "min_freq") == 854250000
    code, _, err = cli(tx2, capsys, "clocks", "unpin")
    assert code == 0, err
    assert not is_active(Root(tx2.root))
    assert read_int(tx2.devfreq_dir / "max_freq") == 854250000
    assert read_int(tx2.devfreq_dir / "min_freq") == 114750000


def test_unpin_refuses_clocks_pinned_by_someone_else(
    tx2: SimBoard, capsys: pytest.CaptureFixture[str]
) -> None:
    subprocess.run([str(tx2.jetson_clocks)], check=True, capture_output=True, timeout=30)
    before = clock_files(tx2)
    code, out, err = cli(tx2, capsys, "clocks", "unpin")
    assert code == 1
    assert out == ""
    assert "holds no stored state" in err
    assert "jetson_clocks --restore FILE" in err
    assert clock_files(tx2) == before
    code, out, _ = cli(tx2, capsys, "clocks", "pin")
    assert code == 0
    assert "not by edge-agent" in out


def test_without_jetson_clocks(tx2: SimBoard, capsys: pytest.CaptureFixture[str]) -> None:
    tx2.jetson_clocks.unlink()
    code, _, err = cli(tx2, capsys, "clocks", "pin")
    assert code == 1
    assert f"not found at {tx2.jetson_clocks}" in err
    code, out, _ = cli(tx2, capsys, "clocks", "show", "--json")
    shown = json.loads(out)
    assert code == 0
    assert (shown["source"], shown["pinned"], shown["emc"]) == ("sysfs", False, None)
    assert shown["gpu"]["max_hz"] == read_int(tx2.devfreq_dir / "max_freq")
    assert [c["cpu"] for c in shown["cpus"]] == list(range(6))


def test_human_show_and_usage(tx2: SimBoard, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(tx2, capsys, "clocks", "show")
    assert code == 0
    assert out.splitlines()[0] == "pinned:     no (read from jetson_clocks --show)"
    assert "cpu1        offline" in out
    assert cli(tx2, capsys, "clocks", "spin")[0] == 2
