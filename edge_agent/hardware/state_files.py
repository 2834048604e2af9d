"""Files in the agent's state directory, opened so a planted symlink is never followed.

The agent often runs as root, and its state directory holds files with predictable names
(``profile.json``, ``profile.json.tmp``, ``profile.lock``, the outbox and its companions). So:

- :func:`prepare_state_dir` refuses a directory that another user can write to (naming its
  mode and owner), creates it 0700, and gives the process a private ``TMPDIR`` under it for
  third-party libraries (onnxruntime writes ``$TMPDIR/.ses``);
- every state file is opened with ``O_NOFOLLOW`` and created 0600 (:func:`open_state_file`);
- temporaries are created with ``O_EXCL`` after removing whatever sits at the name
  (:func:`write_atomic`), and ``rename`` replaces a symlink at the target without following it;
- names that SQLite opens itself are cleared of symlinks first (:func:`clear_symlink`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700
PRIVATE_TMP = "tmp"


class StateDirError(OSError):
    """The state directory is unsafe or unusable; the message names the path and why."""


def prepare_state_dir(path: Path, set_tmpdir: bool = True) -> Path:
    """Create (0700) and vet the state directory; point ``TMPDIR`` at ``<path>/tmp``.

    Args:
        path: the state directory (a symlink to a directory is allowed; its target is vetted).
        set_tmpdir: also set ``os.environ["TMPDIR"]`` and Python's ``tempfile`` to the
            private folder (the daemon does; CLI helpers need not).

    Returns:
        The private temporary folder. On a full disk it may not exist yet: that is logged
        and ``TMPDIR`` is left alone, so the agent can still start and drain its outbox.

    Raises:
        StateDirError: not a directory, writable by another user, or not writable by us.
    """
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        info = path.stat()
    except OSError as err:
        raise StateDirError(err.errno, f"{path} cannot be created ({err.strerror})") from err
    if not stat.S_ISDIR(info.st_mode):
        raise StateDirError(errno.ENOTDIR, f"{path} is not a directory")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        raise StateDirError(
            errno.EPERM,
            f"{path} is writable by other users (mode {mode:04o}); "
            f"run chmod go-w {path} (0700 is recommended)",
        )
    if info.st_uid not in (os.geteuid(), 0):
        raise StateDirError(errno.EPERM, f"{path} is owned by uid {info.st_uid}, not by this user")
    if not os.access(path, os.W_OK | os.X_OK):
        raise StateDirError(errno.EACCES, f"{path} is not writable")
    private = path / PRIVATE_TMP
    clear_symlink(private)
    try:
        private.mkdir(mode=DIR_MODE, exist_ok=True)
        fd = os.open(private, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fchmod(fd, DIR_MODE)
        finally:
            os.close(fd)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise StateDirError(err.errno, f"{private} cannot be created ({err.strerror})") from err
        logger.warning("%s: cannot create the private TMPDIR (%s)", private, err.strerror)
        return private
    if set_tmpdir:
        os.environ["TMPDIR"] = str(private)
        tempfile.tempdir = None  # tempfile caches the first answer; make it look again
    return private


def clear_symlink(path: Path) -> bool:
    """Remove a symlink at ``path`` (never following it); True when one was removed."""
    try:
        if not stat.S_ISLNK(path.lstat().st_mode):
            return False
        path.unlink()
    except FileNotFoundError:
        return False
    logger.warning("%s was a symlink; removed it rather than follow it", path)
    return True


def open_state_file(path: Path, flags: int, mode: int = FILE_MODE) -> int:
    """``os.open`` with ``O_NOFOLLOW | O_CLOEXEC``; a file created here is ``mode`` (0600).

    Raises:
        OSError: as ``os.open``; ``ELOOP`` when ``path`` is a symlink.
    """
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    if flags & os.O_CREAT:
        try:
            os.fchmod(fd, mode)  # the umask may have narrowed it; never widen beyond mode
        except OSError:
            os.close(fd)
            raise
    return fd


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` through ``<name>.tmp`` (``O_EXCL``, 0600) and a rename.

    Whatever sits at the temporary name (a stale file, a planted symlink) is removed first;
    the rename replaces a symlink at ``path`` itself rather than writing through it.

    Raises:
        OSError: the write failed (the temporary is removed).
    """
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = open_state_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
