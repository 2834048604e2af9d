"""``edge-agent status``: every simulated board's files, and the agent's last report."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from edge_agent.cli.main import main
from edge_agent.sim import board_names, create_board, sysfs
from edge_agent.sim.rails import read_rail
from edge_agent.sim.tree import SimBoard
from edge_agent.telemetry.last_report import write_last_report


@pytest.fixture(autouse=True)
def _no_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)


def _status(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    assert main(["--root", str(root), "status", "--json", *extra]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def _fan_pwm(board: SimBoard) -> int:
    spec = board.spec
    if spec.fan_hwmon is None:
        return sysfs.read_int(board.root / "sys/devices/pwm-fan/cur_pwm")
    hwmon = f"sys/devices/platform/pwm-fan/hwmon/hwmon{spec.fan_hwmon}"
    return sysfs.read_int(board.root / hwmon / "pwm1")


@pytest.mark.parametrize("name", board_names())
def test_status_json_matches_the_board_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    board = create_board(name, tmp_path / name)
    root, spec = board.root, board.spec
    status = _status(root, capsys)
    assert status["board"]["slug"] == name

    gpu = status["clocks"]["gpu"]
    assert gpu["cur_hz"] == sysfs.read_int(board.devfreq_dir / "cur_freq")
    assert gpu["max_hz"] == sysfs.read_int(board.devfreq_dir / "max_freq")
    assert status["clocks"]["emc"]["cur_hz"] == sysfs.read_int(sysfs.emc_clk_dir(root) / "rate")
    online = set(sysfs.online_cpus(root, spec))
    clusters = {c["name"]: c for c in status["clocks"]["cpu"]}
    assert len(clusters) == len(spec.clusters)
    for cluster in spec.clusters:
        shown = clusters[f"policy{cluster.policy}"]
        assert shown["cpus"] == list(cluster.cpus)
        assert shown["online"] == [c for c in cluster.cpus if c in online]
        if shown["online"]:
            freq = sysfs.cpu_dir(root, shown["online"][0]) / "cpufreq"
            assert shown["cur_khz"] == sysfs.read_int(freq / "scaling_cur_freq")
            assert shown["max_khz"] == sysfs.read_int(freq / "scaling_max_freq")

    # A zone reading -256 C is offline (Orin's cv*-thermal, and gpu-thermal while the GPU
    # idles): left out, not shown as a value. The board's own files are the reference.
    zones = sorted((root / "sys/class/thermal").glob("thermal_zone*"))
    files = {(z / "type").read_text().strip(): int((z / "temp").read_text()) for z in zones}
    live = {name: mc / 1000 for name, mc in files.items() if mc > -256_000}
    if name == "jetson-agx-orin":
        assert any(mc <= -256_000 for mc in files.values())
    assert status["temperatures"] == live
    assert status["fan"]["pwm"] == _fan_pwm(board)

    rails = status["power"]["rails"]
    assert rails, "every simulated board has rails"
    for rail, shown in rails.items():
        mv, ma = read_rail(root, spec, rail)
        assert shown["v"] == pytest.approx(mv / 1000, abs=1e-3), rail
        assert shown["a"] == pytest.approx(ma / 1000, abs=1e-3), rail
        assert shown["w"] == pytest.approx(mv * ma / 1e6, abs=2e-3), rail

    assert main(["--root", str(root), "profile", "show", "--json"]) == 0
    shown_profile = json.loads(capsys.readouterr().out)
    assert status["profile"] == shown_profile["profile"]
    assert status["nvpmodel_mode"] == shown_profile["nvpmodel_mode"]
    assert status["agent"] is None


def test_status_shows_the_agent_only_while_its_report_is_live(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    board = create_board("jetson-orin-nano", tmp_path / "nano")
    state = tmp_path / "state"
    state.mkdir()
    report = {
        "ts": time.time(),
        "window_s": 10.0,
        "profile": "maxq",
        "fps": 29.5,
        "latency_ms": {"p50": 4.0, "p95": 5.0, "p99": 6.5},
        "perf_per_watt": 4.2,
        "power": {"total_w": 7.0},
        "outbox": {"depth": 3},
        "governor": {
            "policy": "slo",
            "set_by": "mqtt",
            "point": {"label": "gpu 624.75/emc 2133/cpu 1510", "gpu_hz": 624_750_000},
        },
    }
    write_last_report(state, report, pid=os.getpid())
    agent = _status(board.root, capsys, "--state-dir", str(state))["agent"]
    assert agent["running"] is True
    assert (agent["fps"], agent["perf_per_watt"], agent["board_w"]) == (29.5, 4.2, 7.0)
    assert agent["latency_ms"]["p99"] == 6.5
    assert agent["outbox"] == {"depth": 3}
    assert agent["governor"]["policy"] == "slo"
    assert agent["governor"]["point"]["label"] == "gpu 624.75/emc 2133/cpu 1510"

    assert main(["--root", str(board.root), "status", "--state-dir", str(state)]) == 0
    screen = " ".join(capsys.readouterr().out.split())  # rich wraps at the capture's width
    assert "agent: 29.5 fps" in screen
    assert "outbox 3" in screen
    assert "policy slo (set by mqtt) at gpu 624.75/emc 2133/cpu 1510" in screen

    write_last_report(state, report, pid=os.getpid(), state="stopped")
    assert _status(board.root, capsys, "--state-dir", str(state))["agent"]["running"] is False
    write_last_report(state, {**report, "ts": time.time() - 600}, pid=os.getpid())
    assert _status(board.root, capsys, "--state-dir", str(state))["agent"]["running"] is False


def test_watch_prints_count_screens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    board = create_board("jetson-xavier-nx", tmp_path / "nx")
    args = ["--watch", "--interval-ms", "20", "--count", "3"]
    assert main(["--root", str(board.root), "status", "--json", *args]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(lines) == 3
    assert all(doc["board"]["slug"] == "jetson-xavier-nx" for doc in lines)
