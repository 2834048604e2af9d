"""``edge-agent sim create`` and ``sim list``."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.sim.marker import board_name
from edge_agent.sim.tree import SimBoard


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


def test_list_shows_the_board_release_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [tuple(line.split()[:2]) for line in lines[:-1]] == [
        ("jetson-agx-orin", "r35.4*"),
        ("jetson-agx-orin", "r36.4"),
        ("jetson-agx-xavier", "r32.7*"),
        ("jetson-orin-nano", "r36.3"),
        ("jetson-orin-nano", "r36.4*"),
        ("jetson-orin-nano", "r39.0"),
        ("jetson-tx2", "r32.7*"),
        ("jetson-xavier-nx", "r32.7"),
        ("jetson-xavier-nx", "r35.4*"),
    ]
    assert "NVIDIA Jetson TX2 (nvpmodel_t186.conf)" in lines[6]
    assert lines[-1] == "* = default release"


def test_create_with_a_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "nano"
    assert (
        main(["sim", "create", "--board", "jetson-orin-nano", "--release", "r36.3", str(dest)]) == 0
    )
    out = capsys.readouterr().out
    assert "L4T R36.3.0" in out
    assert "mode 15W (0)" in out  # the stock conf boots in 15W
    assert SimBoard.load(dest).spec.conf_name == "nvpmodel_p3767_0003.conf"
    # A unique prefix is enough.
    assert (
        main(
            [
                "sim",
                "create",
                "--board",
                "jetson-orin-nano",
                "--release",
                "r39",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    assert SimBoard.load(tmp_path / "b").spec.l4t == (39, 0, 0)


def test_unknown_release_exits_2_listing_valid_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "x"
    assert main(["sim", "create", "--board", "jetson-tx2", "--release", "r36.4", str(dest)]) == 2
    assert "valid releases: r32.7" in capsys.readouterr().err
    assert not dest.exists()


def test_sim_without_action_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim"]) == 2
