"""``edge-agent sim create`` and ``sim list``."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.sim.marker import board_name


def test_create_writes_a_board(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "tx2"
    assert main(["sim", "create", "--board", "jetson-tx2", str(dest)]) == 0
    out = capsys.readouterr().out
    assert f"created jetson-tx2 at {dest}" in out
    assert "VDD_IN" in out
    assert "MAXP_CORE_ARM (3)" in out
    assert board_name(dest) == "jetson-tx2"
    assert (dest / "usr/sbin/nvpmodel").is_file()


def test_unknown_board_exits_2_listing_valid_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", "create", "--board", "jetson-nope", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "jetson-nope" in err
    assert (
        "jetson-agx-orin, jetson-agx-xavier, jetson-orin-nano, jetson-tx2, jetson-xavier-nx" in err
    )
    assert not (tmp_path / "x").exists()


def test_existing_tree_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "b"
    assert main(["sim", "create", "--board", "jetson-agx-orin", str(dest)]) == 0
    assert main(["sim", "create", "--board", "jetson-agx-orin", str(dest)]) == 2
    assert "already holds a board tree" in capsys.readouterr().err


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [
        "jetson-agx-orin",
        "jetson-agx-xavier",
        "jetson-orin-nano",
        "jetson-tx2",
        "jetson-xavier-nx",
    ]
    assert "NVIDIA Jetson TX2 (L4T R32.7.1)" in lines[3]


def test_sim_without_action_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim"]) == 2
