"""Throwaway board folders for ``run --sim``: private, owned while in use, swept after a kill."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from edge_agent.sim.scratch import board_folder, sweep

HOLD = (
    "import sys, pathlib\n"
    "from edge_agent.sim.scratch import board_folder\n"
    "with board_folder('jetson-tx2', base=pathlib.Path(sys.argv[1])) as f:\n"
    "    print(f, flush=True)\n"
    "    sys.stdin.read()\n"
)


def _parent(tmp_path: Path) -> Path:
    return tmp_path / f"edge-agent-sim-{os.getuid()}"


def test_board_folder_is_private_owned_and_removed(tmp_path: Path) -> None:
    with board_folder("jetson-tx2", base=tmp_path) as folder:
        assert folder.parent == _parent(tmp_path)
        assert folder.name.startswith("jetson-tx2-")
        assert _parent(tmp_path).stat().st_mode & 0o777 == 0o700
        assert (folder / ".owner").is_file()
        assert sweep(_parent(tmp_path)) == []  # owned by this run: kept
    assert not folder.exists()


def test_a_killed_runs_folder_is_swept_a_live_runs_kept(tmp_path: Path) -> None:
    def holder() -> tuple[subprocess.Popen[str], Path]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        return proc, Path(proc.stdout.readline().strip())

    live, live_folder = holder()
    killed, killed_folder = holder()
    killed.kill()  # SIGKILL: no cleanup
    killed.communicate(timeout=30)
    try:
        assert killed_folder.is_dir()
        assert sweep(_parent(tmp_path)) == [killed_folder]
        assert live_folder.is_dir()
    finally:
        live.communicate("", timeout=30)
    assert not live_folder.exists()  # a clean exit removes its own folder


def test_folders_without_an_owner_wait_out_their_grace(tmp_path: Path) -> None:
    parent = _parent(tmp_path)
    parent.mkdir(mode=0o700)
    young, old = parent / "jetson-tx2-young", parent / "jetson-tx2-old"
    young.mkdir()
    old.mkdir()
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    (parent / "link").symlink_to(tmp_path)
    assert sweep(parent) == [old]
    assert sorted(p.name for p in parent.iterdir()) == ["jetson-tx2-young", "link"]


def test_a_parent_that_is_a_link_is_not_used(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _parent(tmp_path).symlink_to(elsewhere)
    with board_folder("jetson-tx2", base=tmp_path) as folder:
        assert folder.parent == tmp_path
        assert folder.name.startswith("edge-agent-jetson-tx2-")
    assert not folder.exists()
    assert list(elsewhere.iterdir()) == []
