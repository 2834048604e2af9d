"""Throwaway folders for the simulated boards of ``run --sim``, swept when their owner is gone.

Each run's board lives in ``<tmp>/edge-agent-sim-<uid>/<board>-<pid>`` and is removed at exit.
A process killed with ``SIGKILL`` cannot clean up, so every new run first removes the folders
whose process no longer exists: leftovers never pile up in ``/tmp``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _private_parent(base: Path) -> Path | None:
    """``base/edge-agent-sim-<uid>``, made 0700; None if someone else owns it (or a link)."""
    parent = base / f"edge-agent-sim-{os.getuid()}"
    try:
        parent.mkdir(mode=0o700, exist_ok=True)
        info = parent.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        logger.warning("not using %s: not a directory owned by this user", parent)
        return None
    return parent


def sweep(parent: Path) -> list[Path]:
    """Remove the board folders in ``parent`` whose process has exited; returns them."""
    removed = []
    for folder in parent.iterdir():
        pid = folder.name.rsplit("-", 1)[-1]
        if folder.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        logger.info("removed %d simulated board(s) left by killed runs", len(removed))
    return removed


@contextlib.contextmanager
def board_folder(board: str, base: Path | None = None) -> Iterator[Path]:
    """A fresh folder for one simulated board, removed on exit.

    Args:
        board: the board name, part of the folder name.
        base: where the per-user parent goes (default: the system temp folder).
    """
    parent = _private_parent(base or Path(tempfile.gettempdir()))
    if parent is None:
        folder = Path(tempfile.mkdtemp(prefix=f"edge-agent-{board}-", dir=base))
    else:
        sweep(parent)
        folder = parent / f"{board}-{os.getpid()}"
        shutil.rmtree(folder, ignore_errors=True)  # an earlier process that had our PID
        folder.mkdir(mode=0o700)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
