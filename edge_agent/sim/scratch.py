"""Throwaway folders for the simulated boards of ``run --sim``, swept when their owner is gone.

Each run's board lives in its own folder under ``<tmp>/edge-agent-sim-<uid>/`` and is removed
at exit. A process killed with ``SIGKILL`` cannot clean up, so every new run first removes the
folders nobody owns any more. Ownership is an exclusive ``flock`` on ``<folder>/.owner``, held
for the whole run: the kernel releases it when the owner dies, however it dies, and it means
the same thing across PID namespaces that share ``/tmp`` (where a PID would not). A folder
without a lock file is removed only once it is older than ``_GRACE_S``, so a run that is
still creating its folder is never swept.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

_OWNER = ".owner"
_GRACE_S = 60.0


def _private_parent(base: Path) -> Path | None:
    """``base/edge-agent-sim-<uid>``, mode 0700; None if it is a link or someone else's."""
    parent = base / f"edge-agent-sim-{os.getuid()}"
    try:
        parent.mkdir(mode=0o700, exist_ok=True)
        info = parent.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            logger.warning("not using %s: not a directory owned by this user", parent)
            return None
        if info.st_mode & 0o077:
            parent.chmod(0o700)
    except OSError as err:
        logger.warning("not using %s: %s", parent, err.strerror)
        return None
    return parent


def _abandoned(folder: Path, now: float) -> bool:
    """True when no live process holds the folder's owner lock."""
    try:
        fd = os.open(folder / _OWNER, os.O_RDONLY)
    except FileNotFoundError:
        try:
            return now - folder.lstat().st_mtime > _GRACE_S
        except OSError:
            return False
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # its run is alive
    except OSError:
        return False
    finally:
        os.close(fd)  # also releases the lock just taken
    return True


def sweep(parent: Path) -> list[Path]:
    """Remove the board folders in ``parent`` that no live run owns; returns them."""
    removed = []
    now = time.time()
    for folder in sorted(parent.iterdir()):
        try:
            if not stat.S_ISDIR(folder.lstat().st_mode):
                continue  # not ours to touch (a link, a stray file)
        except OSError:
            continue
        if _abandoned(folder, now):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        logger.info("removed %d simulated board(s) left by killed runs", len(removed))
    return removed


@contextlib.contextmanager
def board_folder(board: str, base: Path | None = None) -> Iterator[Path]:
    """A fresh folder for one simulated board, owned (locked) while in use, removed on exit.

    Args:
        board: the board name, the start of the folder's name.
        base: where the per-user parent goes (default: the system temp folder).
    """
    parent = _private_parent(base or Path(tempfile.gettempdir()))
    if parent is not None:
        sweep(parent)
        folder = Path(tempfile.mkdtemp(prefix=f"{board}-", dir=parent))
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"edge-agent-{board}-", dir=base))
    owner = None
    try:
        # Locked before it is visible under its name: a sweeper never finds it unlocked.
        owner = os.open(folder / f"{_OWNER}.new", os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(owner, fcntl.LOCK_EX)
        (folder / f"{_OWNER}.new").rename(folder / _OWNER)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # still locked: no sweeper races the removal
        if owner is not None:
            os.close(owner)
