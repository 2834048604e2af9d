"""A real, small filesystem for disk-full tests: tmpfs where we may mount, else a loop ext4.

Both are real filesystems: SQLite sees real ``ENOSPC``. As root (CI) a ``tmpfs`` of the
requested size is mounted; where tmpfs cannot be mounted a loop-mounted ext4 image is tried;
where neither works the test is skipped with the reason (never faked).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


@contextlib.contextmanager
def small_filesystem(folder: Path, size_mb: int) -> Iterator[str]:
    """Mount a ``size_mb`` filesystem on ``folder``; yields what was used (``tmpfs``/``ext4``)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root (CI runs as root)")
    made = _run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(folder)])
    kind = "tmpfs"
    image = folder.with_name(folder.name + ".img")
    if made.returncode != 0:
        kind = "ext4"
        if shutil.which("mkfs.ext4") is None:
            pytest.skip(f"cannot mount tmpfs ({made.stderr.strip()}) and no mkfs.ext4")
        with image.open("wb") as out:
            out.truncate(size_mb * 1024 * 1024)
        fs = _run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)])
        loop = _run(["mount", "-o", "loop", str(image), str(folder)])
        if fs.returncode != 0 or loop.returncode != 0:
            pytest.skip(f"cannot mount tmpfs or a loop ext4: {made.stderr} {loop.stderr}")
        folder.chmod(0o700)
    try:
        yield kind
    finally:
        _run(["umount", "-l", str(folder)])
        image.unlink(missing_ok=True)


def fill(folder: Path, name: str = "filler") -> Path:
    """Fill the filesystem under ``folder`` to the last byte with one file; its path."""
    path = folder / name
    chunk = b"\0" * (64 * 1024)
    with path.open("ab", buffering=0) as out:
        for size in (len(chunk), 4096, 512, 1):
            try:
                while True:
                    out.write(chunk[:size])
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
    return path


def free_bytes(folder: Path) -> int:
    info = os.statvfs(folder)
    return int(info.f_bavail * info.f_frsize)
