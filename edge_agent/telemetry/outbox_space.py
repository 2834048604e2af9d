"""Disk space for the outbox: a free-space floor, a reserve file, and WAL limits.

A full filesystem is fatal to SQLite in WAL mode: a checkpoint cannot run, so every later
insert *and every delete of an acknowledged row* fails. Three things keep that from happening:

- **a floor**: the outbox never grows into the last ``floor`` bytes of the filesystem. The
  room left is measured (``statvfs`` plus SQLite's free pages) every ``check_bytes`` of new
  rows, not per insert; when it runs out, new rows displace the oldest unsent ones (rule
  ``disk_floor``), which reuses freed pages instead of growing the file.
- **a reserve file** (``<outbox>.reserve``, ``reserve`` bytes, allocated with
  ``posix_fallocate``): when a write fails anyway (something else filled the disk), the
  reserve is released so a checkpoint and the deletes can run, and re-made once there is room.
  At start on a full disk it is released first, so the outbox opens and drains.
- **a bounded WAL**: ``wal_autocheckpoint`` and ``journal_size_limit`` scale with the
  filesystem, so the WAL is small on a small filesystem and as usual on a large one.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from edge_agent.hardware.state_files import clear_symlink, open_state_file

logger = logging.getLogger(__name__)

MIN_RESERVE = 64 * 1024
MAX_RESERVE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SpacePlan:
    """Sizes derived from the filesystem's size."""

    reserve: int
    floor: int
    check_bytes: int
    wal_pages: int


def plan_for(total_bytes: int, page_size: int) -> SpacePlan:
    """Reserve and floor of 1/16 of the filesystem (64 KiB .. 1 MiB each), a space check every
    half floor of new rows, and a WAL checkpoint every 1/64 of it (16 .. 1000 pages)."""
    reserve = min(MAX_RESERVE, max(MIN_RESERVE, total_bytes // 16))
    wal_pages = min(1000, max(16, total_bytes // 64 // page_size))
    return SpacePlan(reserve, reserve, reserve // 2, wal_pages)


class SpaceGuard:
    """Measures the outbox's filesystem and owns its reserve file.

    Args:
        db_path: the outbox file; the reserve is ``<db_path>.reserve`` next to it.
        page_size: SQLite's page size (for the WAL limit).
    """

    def __init__(self, db_path: Path, page_size: int = 4096) -> None:
        self.folder = db_path.parent
        self.reserve_path = db_path.with_name(db_path.name + ".reserve")
        info = os.statvfs(self.folder)
        self.plan = plan_for(info.f_blocks * info.f_frsize, page_size)
        self.released = 0

    def free_bytes(self) -> int:
        """Bytes an unprivileged writer can still use on the filesystem."""
        info = os.statvfs(self.folder)
        return int(info.f_bavail * info.f_frsize)

    def has_reserve(self) -> bool:
        """Whether the reserve file is in place at full size."""
        try:
            return self.reserve_path.lstat().st_size >= self.plan.reserve
        except FileNotFoundError:
            return False

    def room(self, free_pages_bytes: int) -> int:
        """Bytes the outbox may still grow by: free space above the floor, less what a missing
        reserve needs, plus SQLite's own free pages (negative: over the floor)."""
        missing = 0 if self.has_reserve() else self.plan.reserve
        return self.free_bytes() - self.plan.floor - missing + free_pages_bytes

    def ensure_reserve(self) -> bool:
        """Make the reserve file if it is missing and the disk has room for it and the floor."""
        if self.has_reserve():
            return True
        if self.free_bytes() < self.plan.reserve + self.plan.floor:
            return False
        clear_symlink(self.reserve_path)
        try:
            fd = open_state_file(self.reserve_path, os.O_WRONLY | os.O_CREAT)
            try:
                os.posix_fallocate(fd, 0, self.plan.reserve)
            finally:
                os.close(fd)
        except OSError as err:
            logger.debug("outbox reserve %s: %s", self.reserve_path, err)
            with contextlib.suppress(OSError):
                self.reserve_path.unlink()
            return False
        return True

    def release_reserve(self, why: str) -> bool:
        """Delete the reserve file so SQLite can checkpoint and delete; True if there was one."""
        clear_symlink(self.reserve_path)
        try:
            self.reserve_path.unlink()
        except FileNotFoundError:
            return False
        self.released += 1
        logger.warning(
            "outbox: released the %d KiB disk reserve (%s)", self.plan.reserve // 1024, why
        )
        return True

    def tight(self) -> bool:
        """True when the free space is under the floor (at start: release the reserve first)."""
        return self.free_bytes() < self.plan.floor
