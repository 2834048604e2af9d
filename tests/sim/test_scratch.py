"""Throwaway board folders for ``run --sim``: private, removed at exit, swept after a kill."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from edge_agent.sim.scratch import board_folder, sweep


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def test_board_folder_is_private_named_for_its_process_and_removed(tmp_path: Path) -> None:
    parent = tmp_path / f"edge-agent-sim-{os.getuid()}"
    with board_folder("jetson-tx2", base=tmp_path) as folder:
        assert folder == parent / f"jetson-tx2-{os.getpid()}"
        assert folder.is_dir()
        assert parent.stat().st_mode & 0o777 == 0o700
        (folder / "sys").mkdir()
    assert not folder.exists()
    assert parent.is_dir()


def test_folders_of_dead_processes_are_swept_live_ones_kept(tmp_path: Path) -> None:
    parent = tmp_path / f"edge-agent-sim-{os.getuid()}"
    parent.mkdir(mode=0o700)
    dead = parent / f"jetson-tx2-{_dead_pid()}"
    live = parent / f"jetson-orin-nano-{os.getppid()}"
    other = parent / "notes"
    for folder in (dead, live, other):
        (folder / "sys").mkdir(parents=True)
    assert sweep(parent) == [dead]
    with board_folder("agx-orin", base=tmp_path):
        assert sorted(p.name for p in parent.iterdir()) == sorted(
            [live.name, other.name, f"agx-orin-{os.getpid()}"]
        )


def test_a_parent_that_is_a_link_is_not_used(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / f"edge-agent-sim-{os.getuid()}").symlink_to(elsewhere)
    with board_folder("jetson-tx2", base=tmp_path) as folder:
        assert folder.parent == tmp_path
        assert folder.name.startswith("edge-agent-jetson-tx2-")
    assert not folder.exists()
    assert list(elsewhere.iterdir()) == []
