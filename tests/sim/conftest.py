"""Fixtures for the simulated boards: one fresh tree per test."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from edge_agent.sim.tree import SimBoard, create_board


def run_tool(board: SimBoard, tool: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    """Run a board's executable for real, as a process; returns (exit status, stdout+stderr)."""
    path = board.nvpmodel if tool == "nvpmodel" else board.jetson_clocks
    proc = subprocess.run(
        [str(path), *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def snapshot(root: Path) -> dict[str, str]:
    """Every regular file under the tree's sys/ and var/, by relative path."""
    out: dict[str, str] = {}
    for base in ("sys", "var"):
        for path in sorted((root / base).rglob("*")):
            if path.is_file() and not path.is_symlink():
                out[str(path.relative_to(root))] = path.read_text(encoding="utf-8")
    return out


@pytest.fixture
def tx2(tmp_path: Path) -> SimBoard:
    return create_board("jetson-tx2", tmp_path / "tx2")


@pytest.fixture
def agx_orin(tmp_path: Path) -> SimBoard:
    return create_board("jetson-agx-orin", tmp_path / "agx")


@pytest.fixture
def orin_nano(tmp_path: Path) -> SimBoard:
    return create_board("jetson-orin-nano", tmp_path / "nano")


@pytest.fixture
def xavier_nx(tmp_path: Path) -> SimBoard:
    return create_board("jetson-xavier-nx", tmp_path / "xnx")
