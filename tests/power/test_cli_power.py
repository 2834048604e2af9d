"""``edge-agent power`` in-process, over fake INA trees."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from edge_agent.cli.main import main
from tests.fakes.ina import AGX_ORIN_RAILS, TX2_RAILS, make_ina3221


def _model(root: Path, text: str) -> None:
    path = root / "proc/device-tree/model"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() + b"\x00")


def _last_json(out: str) -> dict[str, object]:
    line = out.strip().splitlines()[-1]
    data = json.loads(line)
    assert isinstance(data, dict)
    return data


def test_one_shot_json_tx2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0)
    _model(tmp_path, "quill")
    assert main(["power", "--root", str(tmp_path), "--json"]) == 0
    data = _last_json(capsys.readouterr().out)
    assert data["board"] == "quill"
    assert data["source"] == "ina3221"
    assert data["total"] == {"name": "VDD_IN", "w": 4.18, "energy_j": None}
    assert (data["duration_s"], data["samples"]) == (None, 1)
    rails = data["rails"]
    assert isinstance(rails, dict)
    assert list(rails) == [name for name, _, _ in TX2_RAILS]
    assert rails["VDD_SYS_GPU"] == {"v": 19.0, "a": 0.08, "w": 1.52, "energy_j": None}


def test_one_shot_json_agx_orin_sum(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_ina3221(tmp_path, "hwmon", AGX_ORIN_RAILS)
    assert main(["--root", str(tmp_path), "power", "--json"]) == 0
    data = _last_json(capsys.readouterr().out)
    assert data["board"] == "unknown"
    assert data["total"] == {"name": "sum of rails", "w": 11.2, "energy_j": None}
    rails = data["rails"]
    assert isinstance(rails, dict)
    assert "NC" not in rails
    assert len(rails) == 4


def test_no_monitor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["power", "--root", str(tmp_path), "--json", "--monitor", "ina3221"]) == 1
    data = _last_json(capsys.readouterr().out)
    assert data["available"] is False
    assert "no INA3221/INA238 monitor" in str(data["reason"])
    assert main(["power", "--root", str(tmp_path), "--monitor", "ina3221"]) == 1
    assert "no power monitor" in capsys.readouterr().err


def test_human_one_shot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0)
    assert main(["power", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "VDD_IN (total)" in out
    assert "VDD_SYS_DDR" in out
    assert "4.180" in out


def test_duration_json_samples_through_the_ledger_while_files_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0)
    done = threading.Event()

    def rewrite() -> None:
        toggle = False
        while not done.wait(0.002):
            toggle = not toggle
            tree.set("VDD_SYS_GPU", 19000, 100 if toggle else 60)

    writer = threading.Thread(target=rewrite, name="rail-writer")
    writer.start()
    try:
        code = main(
            ["power", "--root", str(tmp_path), "--json", "--interval-ms", "10", "--duration", "0.4"]
        )
    finally:
        done.set()
        writer.join(5)
    assert code == 0
    data = _last_json(capsys.readouterr().out)
    assert set(data) == {"board", "source", "duration_s", "samples", "total", "rails"}
    assert isinstance(data["samples"], int)
    assert data["samples"] >= 5
    total = data["total"]
    assert isinstance(total, dict)
    assert total["name"] == "VDD_IN"
    assert total["w"] == pytest.approx(4.18, abs=0.01)
    duration = data["duration_s"]
    assert isinstance(duration, float)
    assert total["energy_j"] == pytest.approx(4.18 * duration, rel=0.02)
    rails = data["rails"]
    assert isinstance(rails, dict)
    assert 60 * 19 / 1000 <= rails["VDD_SYS_GPU"]["w"] <= 100 * 19 / 1000


def test_watch_runs_for_a_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_ina3221(tmp_path, "hwmon", {"VDD_IN": (5000, 1000), "VDD_SOC": (5000, 200)})
    assert main(["power", "--root", str(tmp_path), "--watch", "--duration", "0.6"]) == 0
    out = capsys.readouterr().out
    assert "| n/a" in out  # no nvpmodel, no profile file
    assert "avg 10 s W" in out
    assert "VDD_SOC" in out
    # Constant rails: the 1 s and 10 s averages equal the instantaneous 5.000 W total.
    total_line = next(line for line in out.splitlines() if "total: VDD_IN" in line)
    numbers = [cell.strip() for cell in total_line.split("│") if cell.strip()]
    assert numbers[-3:] == [numbers[-1]] * 3
    assert float(numbers[-1]) == pytest.approx(5.0)


def test_watch_names_the_current_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_agent.sim import create_board

    create_board("jetson-tx2", tmp_path / "tx2")
    root = str(tmp_path / "tx2")
    assert main(["--root", root, "profile", "maxq"]) == 0
    capsys.readouterr()
    assert main(["power", "--root", root, "--watch", "--duration", "0.3"]) == 0
    assert "profile maxq (mode MAXQ)" in capsys.readouterr().out


def test_json_has_the_same_keys_with_and_without_duration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_ina3221(tmp_path, "iio", TX2_RAILS, bus=0)
    assert main(["power", "--root", str(tmp_path), "--json"]) == 0
    once = _last_json(capsys.readouterr().out)
    args = ["power", "--root", str(tmp_path), "--json", "--interval-ms", "10", "--duration", "0.2"]
    assert main(args) == 0
    sampled = _last_json(capsys.readouterr().out)
    assert set(once) == set(sampled)
    for data in (once, sampled):
        total, rails = data["total"], data["rails"]
        assert isinstance(total, dict)
        assert isinstance(rails, dict)
        assert set(total) == {"name", "w", "energy_j"}
        assert {frozenset(r) for r in rails.values()} == {frozenset({"v", "a", "w", "energy_j"})}
    sampled_total = sampled["total"]
    assert isinstance(sampled_total, dict)
    assert sampled_total["w"] == pytest.approx(4.18, abs=0.01)


def _json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.strip().splitlines()]


def test_watch_json_prints_json_lines_at_the_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_ina3221(tmp_path, "hwmon", {"VDD_IN": (5000, 1000), "VDD_SOC": (5000, 200)})
    args = ["power", "--root", str(tmp_path), "--watch", "--json", "--interval-ms", "200"]
    assert main([*args, "--duration", "0.5"]) == 0
    lines = _json_lines(capsys.readouterr().out)
    assert len(lines) >= 2
    for line in lines:
        assert line["total"] == {"name": "VDD_IN", "w": 5.0, "energy_j": None}
        assert set(line) == {"board", "source", "duration_s", "samples", "total", "rails", "ts"}
    gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(lines)]
    assert min(gaps) >= 0.19


def test_interval_without_duration_streams_readings(tmp_path: Path) -> None:
    make_ina3221(tmp_path, "hwmon", {"VDD_IN": (5000, 1000)})
    argv = ["power", "--root", str(tmp_path), "--json", "--interval-ms", "300"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        lines = [json.loads(proc.stdout.readline()) for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert [line["total"]["w"] for line in lines] == [5.0, 5.0, 5.0]
    gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(lines)]
    assert min(gaps) >= 0.29


def test_rejects_non_positive_interval(tmp_path: Path) -> None:
    assert main(["power", "--root", str(tmp_path), "--interval-ms", "0"]) == 2


def test_duration_on_a_simulated_board_with_its_power_model_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_agent.clock import SystemClock
    from edge_agent.sim import create_board
    from edge_agent.sim.power_model import PowerModel

    board = create_board("jetson-tx2", tmp_path / "tx2")
    model = PowerModel(board.root, SystemClock(), interval_s=0.005, busy=lambda: 0.8)
    model.start()
    try:
        code = main(
            [
                "power",
                "--root",
                str(board.root),
                "--monitor",
                "sim",
                "--json",
                "--interval-ms",
                "10",
                "--duration",
                "0.3",
            ]
        )
    finally:
        model.stop()
        assert model.join(5.0)
    assert code == 0
    data = _last_json(capsys.readouterr().out)
    total = data["total"]
    rails = data["rails"]
    assert isinstance(total, dict)
    assert isinstance(rails, dict)
    assert total["name"] == "VDD_IN"
    assert total["w"] > 0
    assert total["energy_j"] > 0
    assert set(rails) == {
        "VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI", "VDD_IN", "VDD_SYS_CPU", "VDD_SYS_DDR"
    }  # fmt: skip
    assert sum(r["w"] for n, r in rails.items() if n != "VDD_IN") < total["w"]
