"""``edge-agent`` as a process: output into a pipe whose reader has gone away."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.sim.tree import create_board


def _closed_reader(*args: str) -> tuple[int, str]:
    """Run the CLI with stdout a pipe whose read end is closed before it writes (``| head``)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the interpreter takes far longer to start than this
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.parametrize("command", [("sim", "list"), ("profile", "list", "--state-dir", "STATE")])
def test_a_closed_pipe_ends_quietly(command: tuple[str, ...], tmp_path: Path) -> None:
    board = create_board("jetson-tx2", tmp_path / "tx2")
    args = [str(tmp_path / "state") if arg == "STATE" else arg for arg in command]
    code, err = _closed_reader("--root", str(board.root), *args)
    assert err == ""
    assert code == 1
