"""The INA value files a monitor keeps open between passes, and how it reads them cheaply.

At 100 Hz the sampler's cost is mostly fixed per pass: each system call, and the first touch
of code and data after the thread wakes. So the files are opened once and read with ``pread``
at offset 0 (sysfs calls the driver's ``show()`` again on every read, so a held descriptor
reads a fresh value), and :meth:`HeldFiles.read_all` reads every file of a pass in one list
comprehension over a cached list of descriptors.

A held descriptor goes stale when its file is replaced by rename: it still reads the old
inode. sysfs never does that, but the simulator and the test fakes do. Checking every
descriptor (``fstat``, ``st_nlink == 0``) on every pass cost as much as the reads, so the
check runs per directory instead: a rename into a directory changes the directory's mtime.
A directory whose mtime moved since the last pass has all its descriptors checked. So has
one whose last full check came less than ``SETTLE_NS`` after its mtime: mtimes come from a
coarse clock (a jiffy on tmpfs, a whole second on some filesystems, two on FAT), so a second
rename within the same tick leaves the mtime unchanged, and only a check made after the tick
has passed proves nothing more can hide behind it. A wall clock that steps backwards
restarts every check. On a real board the directories never change, and the check costs
one ``fstat`` per monitor chip.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

READ_BYTES = 64
"""More than any INA value file holds (``ui_input_N`` is ``"<mV> <mA>\\n"``)."""

SETTLE_NS = 2_500_000_000
"""How long after a directory's mtime its descriptors are still checked every pass: longer
than the coarsest mtime granularity (FAT's two seconds)."""

_DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY
"""``O_PATH``: enough for ``fstat``, and needs no read permission on the directory."""


class HeldFiles:
    """Descriptors for a fixed set of value files, reopened when their files are replaced.

    Not thread-safe: the monitor that owns it serialises passes and :meth:`close`.

    Args:
        paths: every value file a full pass reads, in the order :meth:`read_all` returns.
    """

    def __init__(self, paths: list[str]) -> None:
        self.fds: dict[str, int] = {}
        self._paths = list(paths)
        self._plan: list[int] | None = None
        by_dir: dict[str, list[str]] = {}
        for path in self._paths:
            by_dir.setdefault(str(Path(path).parent), []).append(path)
        self._by_dir = by_dir
        self._seen: dict[str, int] = {}
        self._checked: dict[str, int] = {}
        self._last_now = 0

    def read(self, path: str) -> bytes:
        """One file's current contents; any error drops its descriptor so it is reopened.

        Raises:
            OSError: the file is missing or unreadable, with ``path`` as its filename.
        """
        try:
            return os.pread(self._held(path), READ_BYTES, 0)
        except OSError as err:
            self._drop(path)
            if err.filename is not None:
                raise
            raise OSError(err.errno, err.strerror, path) from err

    def read_all(self) -> list[bytes]:
        """Every file's current contents, in the order given at construction (the hot path).

        Files replaced since the last pass are reopened and read again (see the module
        docstring).

        Raises:
            OSError: a file is missing or unreadable; :meth:`read` says which.
        """
        pread = os.pread
        for _ in range(2):
            plan = self._plan
            if plan is None:
                plan = [self._held(path) for path in self._paths]
                self._plan = plan
            try:
                data = [pread(fd, READ_BYTES, 0) for fd in plan]
            except OSError:
                self._plan = None
                raise
            if not self.refresh():
                break
        return data

    def refresh(self) -> bool:
        """Drop the descriptors whose files were replaced; True when any was dropped."""
        dropped = False
        now = time.time_ns()
        if now < self._last_now:
            self._checked.clear()  # the wall clock stepped back: mtimes prove nothing now
        self._last_now = now
        for directory, paths in self._by_dir.items():
            mtime = self._mtime(directory)
            if (
                mtime >= 0
                and mtime == self._seen.get(directory)
                and self._checked.get(directory, 0) - mtime > SETTLE_NS
            ):
                continue  # unchanged since a check made well after its last change
            self._seen[directory] = mtime
            self._checked[directory] = now
            for path in paths:
                fd = self.fds.get(path)
                if fd is None:
                    continue
                try:
                    stale = os.fstat(fd).st_nlink == 0
                except OSError:
                    stale = True
                if stale:
                    self._drop(path)
                    dropped = True
        return dropped

    def close(self) -> None:
        """Close every descriptor (a later read reopens what it needs)."""
        close_all(self.fds)
        self._plan = None

    def _open(self, path: str) -> int:
        fd = self.fds[path] = os.open(path, os.O_RDONLY)
        return fd

    def _held(self, path: str) -> int:
        fd = self.fds.get(path)
        return self._open(path) if fd is None else fd

    def _drop(self, path: str) -> None:
        fd = self.fds.pop(path, None)
        if fd is not None:
            os.close(fd)
            self._plan = None

    def _mtime(self, directory: str) -> int:
        """The directory's mtime through a held descriptor (no path walk); -1 if it is gone."""
        for _ in range(2):
            try:
                fd = self.fds.get(directory)
                if fd is None:
                    fd = self.fds[directory] = os.open(directory, _DIR_FLAGS)
                st = os.fstat(fd)
            except OSError:
                self._drop(directory)
                return -1  # the reads report the missing files themselves
            if st.st_nlink:
                return st.st_mtime_ns
            self._drop(directory)  # removed (and perhaps made again): look it up afresh
        return -1


def close_all(fds: dict[str, int]) -> None:
    """Close every descriptor in ``fds`` and empty it (also a ``weakref.finalize`` callback)."""
    for fd in fds.values():
        os.close(fd)
    fds.clear()
