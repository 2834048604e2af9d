"""Capture the board files edge-agent reads into a folder usable as ``--root DIR``.

Support reproduces a customer's board from the capture: every reader in this package gives the
same answer on the capture as on the board. Only the paths the readers use are copied (board
identity, nvpmodel conf/status, INA3221/INA238, GPU devfreq, cpufreq/online, thermal zones,
nvpmodel clock caps); nothing else, and the source root is only ever opened read-only.

Fidelity rules:
- Symlinks met on the way (``sys/class/devfreq/*``, ``cpuN/cpufreq``, ``/proc/device-tree``,
  ``/etc/nvpmodel.conf``) are recreated; an absolute target, or a relative one that climbs above
  the root, is rewritten relative so that it resolves inside the capture.
- A file that exists but cannot be read (EAGAIN thermal zones, root-only files) becomes an empty
  directory: reading it fails again, which every reader treats as it treats the original failure
  (the thermal reader reports the zone offline). The manifest records the original errno.
- A missing file stays missing.

CLI outputs (``nvpmodel -q``, ``nvpmodel -q --verbose``, ``jetson_clocks --show``) go to
``DIR/captured/`` for the parsers' tests, with ``DIR/captured/manifest.json``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import posixpath
import re
import stat
import tarfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from edge_agent import __version__
from edge_agent.clock import Clock, SystemClock
from edge_agent.errors import CommandError, CommandTimeout, HardwareError
from edge_agent.hardware import commands
from edge_agent.hardware.board import COMPATIBLE_PATH, MODEL_PATH, RELEASE_PATH
from edge_agent.hardware.clocks import CPU_DIR, DEVFREQ_CLASS, GPU_NODE_NAMES
from edge_agent.hardware.jetson_clocks import JETSON_CLOCKS_BIN
from edge_agent.hardware.nvpmodel import CONF_PATH, NVPMODEL_BIN, STATUS_PATH
from edge_agent.hardware.root import Root
from edge_agent.hardware.thermal import THERMAL_CLASS

logger = logging.getLogger(__name__)

CAPTURED_DIR = "captured"
MANIFEST_REL = f"{CAPTURED_DIR}/manifest.json"
MAX_FILE_BYTES = 1 << 20
COMMAND_TIMEOUT_S = 15.0
# Files are copied only when their real (link-free) board path starts with one of these, so an
# odd symlink can never pull in home directories or keys.
ALLOWED_PREFIXES = ("sys/", "proc/device-tree/", RELEASE_PATH, "etc/nvpmodel", STATUS_PATH)
# Folders of the source an output folder must never lie in (it would write into the board).
PROTECTED_DIRS = ("sys", "proc", "dev", "etc", "usr", "var/lib/nvpmodel")
BOARD_FILES = (MODEL_PATH, COMPATIBLE_PATH, RELEASE_PATH, CONF_PATH, STATUS_PATH)
CLOCK_CAP_DIRS = ("sys/kernel/nvpmodel_emc_cap", "sys/kernel/nvpmodel_clk_cap")
COMMANDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("nvpmodel_q", NVPMODEL_BIN, ("-q",)),
    ("nvpmodel_q_verbose", NVPMODEL_BIN, ("-q", "--verbose")),
    ("jetson_clocks_show", JETSON_CLOCKS_BIN, ("--show",)),
)
_CPU_NAME = re.compile(r"cpu\d+$")
_ZONE_NAME = re.compile(r"thermal_zone\d+$")
_MAX_LINKS = 40


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A board file that exists but failed to read (``errno`` is ``EAGAIN``, ``EACCES``, ...)."""

    path: str
    errno: str
    message: str


@dataclass(frozen=True, slots=True)
class CommandCapture:
    """One CLI run: ``output_file`` is relative to the capture; ``error`` says why it failed."""

    name: str
    argv: tuple[str, ...]
    returncode: int | None
    output_file: str | None
    duration_s: float
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CaptureReport:
    """What a capture copied, linked, could not read and ran (written as the manifest)."""

    out: str
    source: str
    captured_at: str
    tool_version: str
    copied: tuple[str, ...]
    links: dict[str, str]
    unreadable: tuple[Unreadable, ...]
    missing: tuple[str, ...]
    refused: tuple[str, ...]
    commands: tuple[CommandCapture, ...]

    def to_json(self) -> str:
        """The manifest text."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


@dataclass
class _Copier:
    """Copies board paths from ``source`` to ``out``, recreating the links met on the way."""

    source: Root
    out: Path
    copied: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    unreadable: list[Unreadable] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _done: dict[str, bool] = field(default_factory=dict)

    def physical(self, rel: str) -> str | None:
        """The link-free board path of ``rel`` (``realpath`` inside the root).

        Every symlink on the way is recreated under ``out``. Returns None on a symlink loop.
        """
        parts = list(PurePosixPath(rel.lstrip("/")).parts)
        current: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if current:
                    current.pop()
                continue
            candidate = self.source.resolve("/".join([*current, part]))
            if not candidate.is_symlink():
                current.append(part)
                continue
            hops += 1
            if hops > _MAX_LINKS:
                self._fail(rel.lstrip("/"), errno.ELOOP)
                return None
            target = str(candidate.readlink())
            self._link(current, part, target)
            if target.startswith("/"):
                current = []
            parts = [p for p in PurePosixPath(target).parts if p != "/"] + parts
        return "/".join(current)

    def _link(self, parent: list[str], name: str, target: str) -> None:
        link_rel = "/".join([*parent, name])
        if link_rel in self.links:
            return
        text = target
        lexical = posixpath.normpath(posixpath.join("", *parent, target))
        if target.startswith("/") or lexical == ".." or lexical.startswith("../"):
            # An absolute target, or one climbing above the root, would leave the capture:
            # point it, relative, at the same board path inside the capture.
            board_target = posixpath.normpath("/" + lexical).lstrip("/") or "."
            text = posixpath.relpath(board_target, "/".join(parent) or ".")
        dest = self.dest(link_rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.is_symlink():
            dest.symlink_to(text)
        self.links[link_rel] = text

    def dest(self, rel: str) -> Path:
        """The capture path of a link-free board path; never anything outside ``out``.

        Raises:
            HardwareError: ``rel`` is absolute or climbs out (a bug, not a board quirk).
        """
        parts = PurePosixPath(rel).parts
        if not parts or rel.startswith("/") or ".." in parts:
            raise HardwareError(f"capture path {rel!r} would leave {self.out}")
        return self.out.joinpath(*parts)

    def _fail(self, rel: str, code: int, message: str = "") -> None:
        name = errno.errorcode.get(code, str(code))
        self.unreadable.append(Unreadable("/" + rel, name, message or os.strerror(code)))

    def copy(self, rel: str) -> bool:
        """Copy one board file; returns whether its value was captured.

        The manifest names files by their link-free board path (where they lie in the capture);
        ``links`` maps the paths the readers use onto them.
        """
        real = self.physical(rel)
        if real is None:
            return False
        if real in self._done:
            return self._done[real]
        self._done[real] = False
        if not real.startswith(ALLOWED_PREFIXES):
            logger.warning("not capturing /%s: it leads to /%s", rel.lstrip("/"), real)
            self.refused.append("/" + rel.lstrip("/"))
            return False
        dest = self.dest(real)
        if not _inside(dest.parent, self.out):
            self.refused.append("/" + rel.lstrip("/"))
            return False
        try:
            data = _read_bounded(self.source.resolve(real))
        except FileNotFoundError:
            self.missing.append("/" + real)
            return False
        except OSError as err:
            self._fail(real, err.errno or errno.EIO, err.strerror or "")
            # A directory in its place fails to read again, as the original did.
            dest.mkdir(parents=True, exist_ok=True)
            return False
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        dest.chmod(0o644)
        self.copied.append(real)
        self._done[real] = True
        return True

    def copy_files_in(self, rel_dir: str) -> None:
        """Copy the values (regular files) directly inside a board directory."""
        real = self.physical(rel_dir)
        if real is None:
            return
        if not real.startswith(ALLOWED_PREFIXES):
            self.refused.append("/" + rel_dir.lstrip("/"))
            return
        try:
            with os.scandir(self.source.resolve(real)) as entries:
                names = sorted(e.name for e in entries if _is_value(e))
        except OSError as err:
            if err.errno != errno.ENOENT:
                self._fail(real, err.errno or errno.EIO, err.strerror or "")
            return
        for name in names:
            self.copy(f"{real}/{name}")


def _is_value(entry: os.DirEntry[str]) -> bool:
    """A regular file, or an empty directory: a capture's stand-in for an unreadable file."""
    if entry.is_file(follow_symlinks=False):
        return True
    if not entry.is_dir(follow_symlinks=False):
        return False
    with os.scandir(entry.path) as inner:
        return next(inner, None) is None


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` stays inside ``folder`` once existing links are followed."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _read_bounded(path: Path) -> bytes:
    # Read-only and bounded (sysfs attributes report a size of 4096 whatever they hold);
    # O_NONBLOCK so that a FIFO or device node where a value should be cannot hang the capture.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise OSError(errno.EINVAL, "not a regular file")
        chunks: list[bytes] = []
        total = 0
        while total <= MAX_FILE_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    raise OSError(errno.EFBIG, f"larger than {MAX_FILE_BYTES} bytes")


def _board_rels(source: Root, pattern: str, name: re.Pattern[str] | None = None) -> list[str]:
    return [
        source.relative(p).lstrip("/")
        for p in source.glob(pattern)
        if name is None or name.fullmatch(p.name)
    ]


def _capture_ina(copier: _Copier) -> None:
    for device in _board_rels(copier.source, "sys/bus/i2c/devices/*"):
        try:
            name = _read_bounded(copier.source.resolve(device + "/name")).decode("utf-8", "replace")
        except OSError:
            continue
        if "ina3221" not in name.lower() and "ina238" not in name.lower():
            continue
        copier.copy(f"{device}/name")
        for child in _board_rels(copier.source, f"{device}/hwmon/hwmon*"):
            copier.copy_files_in(child)
        for child in _board_rels(copier.source, f"{device}/iio:device*"):
            copier.copy_files_in(child)


def _capture_devfreq(copier: _Copier) -> None:
    for entry in _board_rels(copier.source, f"{DEVFREQ_CLASS}/*"):
        copier.physical(entry)
        has_node = copier.copy(f"{entry}/device/of_node/name")
        node = ""
        if has_node:
            real = copier.physical(f"{entry}/device/of_node/name") or ""
            node = copier.dest(real).read_text("utf-8", "replace").strip("\x00").strip()
        if node in GPU_NODE_NAMES or entry.rsplit(".", 1)[-1] in GPU_NODE_NAMES:
            copier.copy_files_in(entry)
            copier.copy(f"{entry}/device/load")


def _capture_cpus(copier: _Copier) -> None:
    copier.copy(f"{CPU_DIR}/online")
    for cpu in _board_rels(copier.source, f"{CPU_DIR}/cpu*", _CPU_NAME):
        real = copier.physical(cpu)
        if real is not None and real.startswith(ALLOWED_PREFIXES):
            # The directory alone says the CPU exists (cpu0 may have no online or cpufreq).
            copier.dest(real).mkdir(parents=True, exist_ok=True)
        if copier.source.resolve(f"{cpu}/online").exists():
            copier.copy(f"{cpu}/online")
        copier.copy_files_in(f"{cpu}/cpufreq")
    for policy in _board_rels(copier.source, f"{CPU_DIR}/cpufreq/policy*"):
        copier.copy_files_in(policy)


def _capture_thermal(copier: _Copier) -> None:
    for zone in _board_rels(copier.source, f"{THERMAL_CLASS}/thermal_zone*", _ZONE_NAME):
        copier.copy(f"{zone}/type")
        copier.copy(f"{zone}/temp")


def _run_commands(source: Root, out: Path, timeout_s: float) -> list[CommandCapture]:
    done: list[CommandCapture] = []
    for name, binary, args in COMMANDS:
        path = source.binary(binary)
        if path is None:
            continue
        argv = (str(path), *args)
        output_file = f"{CAPTURED_DIR}/{name}.txt"
        try:
            result = commands.run(argv, timeout_s=timeout_s)
        except CommandTimeout as err:
            (out / output_file).write_text(err.output, encoding="utf-8")
            done.append(CommandCapture(name, argv, None, output_file, timeout_s, str(err)))
            continue
        except CommandError as err:
            done.append(CommandCapture(name, argv, None, None, 0.0, str(err)))
            continue
        # stdout first: the parsers read stdout; stderr is appended for the operator.
        (out / output_file).write_text(result.stdout + result.stderr, encoding="utf-8")
        error = None if result.returncode == 0 else f"exited {result.returncode}"
        done.append(
            CommandCapture(name, argv, result.returncode, output_file, result.duration_s, error)
        )
    return done


def _check_out(source: Root, out: Path) -> None:
    """Refuse an output folder that would write into what is being captured."""
    src = source.path.resolve()
    dest = out.resolve()
    if dest == src or src.is_relative_to(dest):
        raise HardwareError(f"output {out} contains the source root {source.path}")
    for top in PROTECTED_DIRS:
        if dest.is_relative_to(src / top):
            raise HardwareError(f"output {out} lies inside the source's /{top}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise HardwareError(f"output {out} exists and is not an empty folder")


def capture_board(
    source: Root,
    out: Path,
    *,
    clock: Clock | None = None,
    run_cli: bool = True,
    command_timeout_s: float = COMMAND_TIMEOUT_S,
) -> CaptureReport:
    """Copy the files edge-agent reads from ``source`` into ``out`` and write the manifest.

    Args:
        source: the board's root (``Root("/")`` on a Jetson); never written to.
        out: a new or empty folder; it becomes a root for ``--root``.
        clock: stamps ``captured_at`` (wall time).
        run_cli: also run ``nvpmodel -q [--verbose]`` and ``jetson_clocks --show`` when present.
        command_timeout_s: timeout of each CLI run.

    Raises:
        HardwareError: ``out`` is unsafe (inside the source's system folders, or not empty).
    """
    _check_out(source, out)
    out.mkdir(parents=True, exist_ok=True)
    copier = _Copier(source, out)
    for rel in BOARD_FILES:
        copier.copy(rel)
    _capture_ina(copier)
    _capture_devfreq(copier)
    _capture_cpus(copier)
    _capture_thermal(copier)
    for cap_dir in CLOCK_CAP_DIRS:
        copier.copy_files_in(cap_dir)
    (out / CAPTURED_DIR).mkdir(exist_ok=True)
    ran = _run_commands(source, out, command_timeout_s) if run_cli else []
    stamp = datetime.fromtimestamp((clock or SystemClock()).wall(), tz=timezone.utc)
    report = CaptureReport(
        out=str(out),
        source=str(source.path),
        captured_at=stamp.isoformat(timespec="seconds"),
        tool_version=__version__,
        copied=tuple("/" + rel for rel in copier.copied),
        links={"/" + path: target for path, target in copier.links.items()},
        unreadable=tuple(copier.unreadable),
        missing=tuple(copier.missing),
        refused=tuple(copier.refused),
        commands=tuple(ran),
    )
    (out / MANIFEST_REL).write_text(report.to_json(), encoding="utf-8")
    logger.info("captured %d files into %s", len(report.copied), out)
    return report


def load_manifest(out: Path) -> dict[str, object]:
    """Read a capture's manifest."""
    return dict(json.loads((out / MANIFEST_REL).read_text(encoding="utf-8")))


def write_tar(out: Path, tar_path: Path) -> None:
    """Pack a capture into a ``.tar.gz`` with its links kept as links."""
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(out, arcname=out.name or "capture")
