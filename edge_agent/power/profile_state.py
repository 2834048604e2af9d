"""Profile state: one read of the clocks, the single verification step, the lock, persistence.

:func:`verify` is shared by every backend: it reads back the nvpmodel mode, GPU ``max_freq``,
cpufreq ``scaling_max_freq``/``online`` and the EMC cap and compares them with a profile.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge_agent.errors import HardwareError, ProfileError
from edge_agent.hardware import clocks
from edge_agent.hardware.clocks import CpuState, GpuDevfreq
from edge_agent.hardware.nvpmodel import POWER_GATING_PARAMS, Nvpmodel
from edge_agent.hardware.root import Root
from edge_agent.hardware.state_files import clear_symlink, open_state_file, write_atomic
from edge_agent.power.profiles import ClockCaps, Profile

logger = logging.getLogger(__name__)

LOCK_FILE = "profile.lock"
STATE_FILE = "profile.json"


@dataclass(frozen=True, slots=True)
class ClockState:
    """One read of everything a profile sets: mode, GPU/CPU/EMC caps, online CPUs."""

    mode_name: str | None
    mode_id: int | None
    gpu_max_hz: int | None
    gpu_min_hz: int | None
    gpu_available_hz: tuple[int, ...]
    gpu_path: str | None
    cpus: tuple[CpuState, ...]
    emc_max_hz: int | None
    jetson_clocks_active: bool

    def online_cpus(self) -> tuple[int, ...]:
        """Indices of the online CPUs."""
        return tuple(c.index for c in self.cpus if c.online)

    def cpu(self, index: int) -> CpuState | None:
        """One CPU's state, or None when the board has no such CPU."""
        return next((c for c in self.cpus if c.index == index), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (kHz for CPUs, Hz for GPU and EMC)."""
        return {
            "nvpmodel_mode": self.mode_name,
            "nvpmodel_id": self.mode_id,
            "gpu_max_hz": self.gpu_max_hz,
            "gpu_min_hz": self.gpu_min_hz,
            "cpus_online": list(self.online_cpus()),
            "cpu_max_khz": {f"cpu{c.index}": c.max_khz for c in self.cpus if c.online},
            "emc_max_hz": self.emc_max_hz,
            "jetson_clocks_active": self.jetson_clocks_active,
        }


def _mode_from_status(nvp: Nvpmodel) -> tuple[str, int] | None:
    """The stored mode (``/var/lib/nvpmodel/status``, what ``-q`` reports), without a process."""
    try:
        mode_id = nvp.read_status()
        mode = nvp.load_conf().mode_by_id(mode_id) if mode_id is not None else None
    except HardwareError as err:
        logger.debug("nvpmodel status unreadable, asking nvpmodel -q: %s", err)
        return None
    return (mode.name, mode.id) if mode is not None else None


def read_state(
    root: Root,
    nvp: Nvpmodel | None,
    gpu: GpuDevfreq | None,
    jetson_clocks_active: bool,
    *,
    mode_from_status: bool = False,
) -> ClockState:
    """Read the current state; ``nvp`` None skips the mode.

    The mode comes from ``nvpmodel -q``; with ``mode_from_status`` from the status file that
    ``-q`` reports, saving a process where a snapshot is taken (``-q`` when it is missing).

    Raises:
        CommandError: ``nvpmodel -q`` failed or printed garbage (quoted). SysfsError: a clock
            file is unreadable.
    """
    mode: tuple[str, int] | None = None
    if nvp is not None:
        mode = _mode_from_status(nvp) if mode_from_status else None
        if mode is None:
            query = nvp.query()
            mode = (query.name, query.id)
    gpu_state = clocks.read_gpu(root, gpu) if gpu is not None else None
    return ClockState(
        mode_name=mode[0] if mode else None,
        mode_id=mode[1] if mode else None,
        gpu_max_hz=gpu_state.max_hz if gpu_state else None,
        gpu_min_hz=gpu_state.min_hz if gpu_state else None,
        gpu_available_hz=gpu_state.available_hz if gpu_state else (),
        gpu_path=gpu.path if gpu else None,
        cpus=tuple(clocks.list_cpus(root)),
        emc_max_hz=clocks.read_emc_cap_hz(root),
        jetson_clocks_active=jetson_clocks_active,
    )


def gating_live(nvp: Nvpmodel | None, mode_id: int | None) -> bool:
    """Whether the GPU power-gating masks the board runs are those of mode ``mode_id``.

    After a reboot-path ``nvpmodel -m`` this tells a board that came back in the new mode (or
    a simulator that models the reboot) from one still waiting to reboot: nvpmodel writes the
    masks only at boot. An unreadable mask file counts as not live, and so does no nvpmodel.
    """
    if nvp is None or mode_id is None:
        return False
    conf = nvp.load_conf()
    mode = conf.mode_by_id(mode_id)
    if mode is None:
        return False
    for name in POWER_GATING_PARAMS:
        param = conf.params.get(name)
        if param is None:
            continue
        for arg, path in param.args.items():
            wanted = mode.value(name, arg)
            if wanted is None:
                continue
            try:
                live = nvp.root.read_text(path).split()
            except HardwareError as err:
                logger.debug("power-gating mask %s unreadable: %s", path, err)
                return False
            if live[:1] != [wanted]:
                return False
    return True


class VerificationFailed(HardwareError):
    """The switch ran but the read-back differs; the previous state was restored."""

    def __init__(self, message: str, mismatches: Sequence[Mismatch], rollback_errors: list[str]):
        self.mismatches = list(mismatches)
        self.rollback_errors = rollback_errors
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ApplyReport:
    """What one switch did.

    Attributes:
        verified: the read-back matched the profile. False only when ``reboot_pending``.
        changes: human lines (``GPU max_freq: 1300500000 -> 854250000 Hz``).
        fallback_for: the preset's nvpmodel mode, when that mode needed a reboot and its
            caps were applied inside the current mode (``mode``) instead.
    """

    profile: str
    previous: str
    backend: str
    changes: list[str]
    duration_s: float
    verified: bool
    mode: str | None = None
    reboot_pending: bool = False
    state: dict[str, Any] = field(default_factory=dict)
    fallback_for: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "profile": self.profile,
            "previous": self.previous,
            "backend": self.backend,
            "nvpmodel_mode": self.mode,
            "changes": list(self.changes),
            "duration_ms": round(self.duration_s * 1000.0, 1),
            "verified": self.verified,
            "reboot_pending": self.reboot_pending,
            "live_fallback_for": self.fallback_for,
            "state": self.state,
        }


@dataclass(frozen=True, slots=True)
class CurrentProfile:
    """The board's current state and the profile it matches (``custom`` when none)."""

    name: str
    board: str
    state: ClockState

    @property
    def nvpmodel_mode(self) -> str | None:
        return self.state.mode_name

    @property
    def nvpmodel_id(self) -> int | None:
        return self.state.mode_id

    @property
    def jetson_clocks_active(self) -> bool:
        return self.state.jetson_clocks_active

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: profile, board, mode, clocks, jetson_clocks state."""
        return {"profile": self.name, "board": self.board, **self.state.to_dict()}


# --- verification ---------------------------------------------------------------------------


def nearest(value: int, available: Sequence[int]) -> int:
    """The available frequency closest to ``value`` (ties go to the lower one)."""
    return min(available, key=lambda f: (abs(f - value), f))


def cap_matches(
    expected: int | Literal["max"], actual: int | None, available: Sequence[int]
) -> bool:
    """Whether a read-back cap satisfies an expectation.

    nvpmodel and devfreq round a cap to the table, cpufreq may keep it as written: both the
    written value and the nearest available frequency are accepted. ``max`` (nvpmodel ``-1``)
    is the top of the table.
    """
    if actual is None:
        return False
    if expected == "max":
        return not available or actual >= max(available)
    return actual == expected or (bool(available) and actual == nearest(expected, available))


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One read-back value that differs from the expectation."""

    what: str
    path: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.what} ({self.path}): expected {self.expected}, read {self.actual}"


def _cpu_path(cpu: int, name: str) -> str:
    return f"/{clocks.CPU_DIR}/cpu{cpu}/{name}"


def verify(
    root: Root, profile: Profile, caps: ClockCaps, mode_name: str | None, state: ClockState
) -> list[Mismatch]:
    """Compare a state with a profile's expectations; an empty list means verified."""
    found: list[Mismatch] = []
    if mode_name is not None and state.mode_name != mode_name:
        found.append(Mismatch("nvpmodel mode", "nvpmodel -q", mode_name, str(state.mode_name)))
    if caps.gpu_max_hz is not None:
        path = f"{state.gpu_path}/max_freq" if state.gpu_path else "GPU devfreq"
        if not cap_matches(caps.gpu_max_hz, state.gpu_max_hz, state.gpu_available_hz):
            want = caps.gpu_max_hz
            if want != "max" and state.gpu_available_hz:
                want_text = f"{nearest(want, state.gpu_available_hz)} Hz (cap {want})"
            else:
                want_text = f"{want} Hz"
            found.append(Mismatch("GPU max_freq", path, want_text, f"{state.gpu_max_hz} Hz"))
    online = set(state.online_cpus())
    if caps.cpus_online is not None and online != set(caps.cpus_online):
        found.append(
            Mismatch(
                "online CPUs",
                f"/{clocks.CPU_DIR}/cpuN/online",
                clocks.format_cpu_range(caps.cpus_online),
                clocks.format_cpu_range(online),
            )
        )
    for cluster, khz in caps.cpu_max_khz.items():
        for index in profile.cpus_of(cluster):
            cpu = state.cpu(index)
            if cpu is None or not cpu.online:
                continue
            if not cap_matches(khz, cpu.max_khz, cpu.available_khz):
                found.append(
                    Mismatch(
                        f"{cluster} cpu{index} scaling_max_freq",
                        _cpu_path(index, "cpufreq/scaling_max_freq"),
                        f"{khz} kHz",
                        f"{cpu.max_khz} kHz",
                    )
                )
    if caps.emc_max_hz is not None and state.emc_max_hz != caps.emc_max_hz:
        path = clocks.emc_cap_path(root) or "EMC cap"
        found.append(Mismatch("EMC cap", path, f"{caps.emc_max_hz} Hz", f"{state.emc_max_hz} Hz"))
    return found


def describe_changes(before: ClockState, after: ClockState) -> list[str]:
    """Human lines for what differs between two states."""
    lines: list[str] = []
    if (before.mode_name, before.mode_id) != (after.mode_name, after.mode_id):
        lines.append(
            f"nvpmodel: {before.mode_name} ({before.mode_id}) -> "
            f"{after.mode_name} ({after.mode_id})"
        )
    if before.gpu_max_hz != after.gpu_max_hz:
        lines.append(f"GPU max_freq: {before.gpu_max_hz} -> {after.gpu_max_hz} Hz")
    if before.online_cpus() != after.online_cpus():
        lines.append(
            f"online CPUs: {clocks.format_cpu_range(before.online_cpus())} -> "
            f"{clocks.format_cpu_range(after.online_cpus())}"
        )
    changed: dict[tuple[int | None, int | None], list[int]] = {}
    for cpu in after.cpus:
        old = before.cpu(cpu.index)
        if cpu.online and old is not None and old.max_khz != cpu.max_khz:
            changed.setdefault((old.max_khz, cpu.max_khz), []).append(cpu.index)
    for (old_khz, new_khz), cpus in changed.items():
        lines.append(
            f"cpu{clocks.format_cpu_range(cpus)} scaling_max_freq: {old_khz} -> {new_khz} kHz"
        )
    if before.emc_max_hz != after.emc_max_hz:
        lines.append(f"EMC cap: {before.emc_max_hz} -> {after.emc_max_hz} Hz")
    return lines


# --- lock and persistence -------------------------------------------------------------------


@contextmanager
def profile_lock(state_dir: Path) -> Iterator[None]:
    """Hold ``<state_dir>/profile.lock`` (flock) so CLI and daemon switches never interleave.

    Raises:
        ProfileError: the state directory or lock file cannot be created.
    """
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        clear_symlink(state_dir / LOCK_FILE)  # a planted link is replaced, never followed
        fd = open_state_file(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    except OSError as err:
        raise ProfileError(f"{state_dir / LOCK_FILE}: cannot open lock ({err.strerror})") from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def load_saved(state_dir: Path) -> dict[str, Any] | None:
    """The last applied profile record (``profile.json``), or None when absent or unreadable."""
    path = state_dir / STATE_FILE
    try:
        fd = open_state_file(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as file:
            data = json.loads(file.read(1024 * 1024).decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as err:
        logger.warning("%s unreadable, ignored: %s", path, err)
        return None
    return data if isinstance(data, dict) else None


def save_record(state_dir: Path, record: dict[str, Any]) -> None:
    """Write ``profile.json`` atomically (``O_EXCL`` temp file, 0600, + rename).

    Raises:
        ProfileError: the file cannot be written.
    """
    path = state_dir / STATE_FILE
    data = json.dumps(record, indent=2, sort_keys=True) + "\n"
    try:
        write_atomic(path, data.encode("utf-8"))
    except OSError as err:
        raise ProfileError(f"{path}: cannot write ({err.strerror})") from err
