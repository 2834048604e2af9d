"""The filesystem root every hardware access goes through.

Production uses ``Root(Path("/"))``; tests and the simulator pass a tree under a temp
directory. Paths are given relative to the root, in the form a real board uses them
(``"sys/class/devfreq"``); a leading ``/`` is accepted and stripped, so paths copied out of an
``nvpmodel.conf`` resolve under the root too.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from edge_agent.errors import SysfsError


class Root:
    """A filesystem root: ``/`` on a device, a temp tree in tests or the simulator."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Root({str(self.path)!r})"

    def resolve(self, rel: str | Path) -> Path:
        """Map a board path (``/sys/...`` or ``sys/...``) to a path under this root."""
        text = str(rel)
        root_text = str(self.path)
        if root_text != "/" and (text == root_text or text.startswith(root_text + os.sep)):
            return Path(text)
        return self.path / text.lstrip("/")

    def display(self, rel: str | Path) -> str:
        """The path as an operator reads it in a message."""
        return str(self.resolve(rel))

    def exists(self, rel: str | Path) -> bool:
        return self.resolve(rel).exists()

    def glob(self, pattern: str) -> list[Path]:
        """Sorted matches of a glob pattern relative to the root."""
        return sorted(self.path.glob(pattern.lstrip("/")))

    def relative(self, path: Path) -> str:
        """The board path (``/sys/...``) of an absolute path under this root."""
        return "/" + str(path.relative_to(self.path))

    def read_text(self, rel: str | Path) -> str:
        """Read a file, stripped of surrounding whitespace.

        Raises:
            SysfsError: the file is missing, unreadable or busy (EAGAIN), with its path.
        """
        path = self.resolve(rel)
        try:
            return path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError as err:
            reason = errno.errorcode.get(err.errno or 0, "error") if err.errno else "error"
            raise SysfsError(str(path), f"cannot read ({reason}: {err.strerror})") from err

    def read_int(self, rel: str | Path) -> int:
        """Read a file holding one integer."""
        text = self.read_text(rel)
        try:
            return int(text.split()[0])
        except (ValueError, IndexError) as err:
            raise SysfsError(str(self.resolve(rel)), f"expected an integer, read {text!r}") from err

    def write_text(self, rel: str | Path, value: str | int, *, verify: bool = True) -> None:
        """Write a value and read it back.

        Raises:
            SysfsError: the write failed, or the file reads back a different value.
        """
        path = self.resolve(rel)
        text = str(value)
        try:
            with path.open("w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        except OSError as err:
            raise SysfsError(str(path), f"cannot write {text!r} ({err.strerror})") from err
        if verify:
            back = self.read_text(rel)
            if back != text:
                raise SysfsError(str(path), f"wrote {text!r} but read back {back!r}")

    def binary(self, rel: str) -> Path | None:
        """An executable under the root (``usr/sbin/nvpmodel``), or None when absent."""
        path = self.resolve(rel)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        return None
