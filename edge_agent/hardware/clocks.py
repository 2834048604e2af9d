"""GPU devfreq, CPU cpufreq/online and the nvpmodel EMC cap, read and written through a Root.

Units: GPU and EMC in Hz, CPU in kHz, as the files hold them. Paths and quirks are from
``shared/reference/jetson_interfaces.md`` section 4.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.errors import HardwareError, SysfsError
from edge_agent.hardware.root import Root

logger = logging.getLogger(__name__)

DEVFREQ_CLASS = "sys/class/devfreq"
CPU_DIR = "sys/devices/system/cpu"
# Device-tree node names of the integrated GPU: TX2, Xavier, Orin (L4T 35), Nano/Orin R36.
GPU_NODE_NAMES = frozenset({"gp10b", "gv11b", "ga10b", "gpu"})
# nvpmodel's EMC cap: L4T 32/35, then R36.
EMC_CAP_PATHS = ("sys/kernel/nvpmodel_emc_cap/emc_iso_cap", "sys/kernel/nvpmodel_clk_cap/emc")
_CPU_NAME = re.compile(r"cpu(\d+)$")
_MAX_LINKS = 40


def realpath_in_root(root: Root, rel: str | Path) -> Path:
    """Resolve symlinks like ``realpath``, keeping absolute link targets inside the root.

    Real boards use relative links (``../../devices/...``); a captured or simulated tree may use
    absolute ones, which must resolve under the root rather than on the host.

    Raises:
        SysfsError: a symlink loop.
    """
    parts = list(Path(str(rel).lstrip("/")).parts)
    current = root.path
    hops = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if current != root.path:
                current = current.parent
            continue
        candidate = current / part
        if candidate.is_symlink():
            hops += 1
            if hops > _MAX_LINKS:
                raise SysfsError(str(root.resolve(rel)), "too many levels of symlinks")
            target = candidate.readlink()
            if target.is_absolute():
                current = root.path
                parts = list(Path(str(target).lstrip("/")).parts) + parts
            else:
                parts = list(target.parts) + parts
            continue
        current = candidate
    return current


def _read_opt_int(root: Root, rel: str) -> int | None:
    """An integer file, or None when it is missing or unreadable (an optional reading)."""
    if not root.exists(rel):
        return None
    try:
        return root.read_int(rel)
    except SysfsError as err:
        logger.debug("optional read failed: %s", err)
        return None


def _read_opt_text(root: Root, rel: str) -> str | None:
    if not root.exists(rel):
        return None
    try:
        return root.read_text(rel)
    except SysfsError as err:
        logger.debug("optional read failed: %s", err)
        return None


def _int_list(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    return tuple(int(tok) for tok in text.split() if tok.lstrip("-").isdigit())


def _write_read_back(root: Root, rel: str, value: int) -> int:
    """Write an integer and return what the file reads back (the kernel may round it)."""
    root.write_text(rel, value, verify=False)
    back = root.read_int(rel)
    if back != value:
        logger.debug("%s: wrote %d, reads back %d", rel, value, back)
    return back


# --- GPU ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GpuDevfreq:
    """The GPU's devfreq node, as board paths.

    Attributes:
        path: the devfreq directory (``cur_freq``, ``min_freq``, ``max_freq``, ...).
        device_path: the GPU device directory (``load``, ``railgate_enable``, ...).
        node_name: the device-tree node name (``gp10b``, ``gv11b``, ``ga10b``, ``gpu``).
    """

    path: str
    device_path: str
    node_name: str


@dataclass(frozen=True, slots=True)
class GpuState:
    """One read of the GPU clocks and load."""

    cur_hz: int
    min_hz: int
    max_hz: int
    available_hz: tuple[int, ...]
    load_permille: int | None


def _node_name(root: Root, entry: Path) -> str | None:
    name_file = entry / "device" / "of_node" / "name"
    if not name_file.exists():
        return None
    try:
        # Device-tree strings end with NUL.
        return root.read_text(name_file).strip("\x00").strip()
    except SysfsError as err:
        logger.debug("devfreq %s: %s", entry.name, err)
        return None


def find_gpu_devfreq(root: Root) -> GpuDevfreq | None:
    """Find the integrated GPU among ``/sys/class/devfreq/*`` (jtop's and jetson_clocks' rule).

    Matches ``device/of_node/name`` against :data:`GPU_NODE_NAMES`; without an ``of_node`` it
    falls back to the devfreq name's suffix (``17000000.gpu``). Returns None when no GPU
    devfreq exists (not a Jetson, or a board such as Thor without ``of_node``).
    """
    entries = root.glob(f"{DEVFREQ_CLASS}/*")
    for by_node in (True, False):
        for entry in entries:
            name = _node_name(root, entry) if by_node else entry.name.rsplit(".", 1)[-1]
            if name not in GPU_NODE_NAMES:
                continue
            rel = root.relative(entry)
            devfreq = realpath_in_root(root, rel)
            device = realpath_in_root(root, f"{rel}/device")
            if not (devfreq / "max_freq").exists():
                continue
            return GpuDevfreq(root.relative(devfreq), root.relative(device), name)
    return None


def read_gpu(root: Root, dev: GpuDevfreq) -> GpuState:
    """Read the GPU's current/min/max clocks, frequency table and load.

    Raises:
        SysfsError: a clock file is missing or unreadable.
    """
    load = _read_opt_int(root, f"{dev.device_path}/load")
    return GpuState(
        cur_hz=root.read_int(f"{dev.path}/cur_freq"),
        min_hz=root.read_int(f"{dev.path}/min_freq"),
        max_hz=root.read_int(f"{dev.path}/max_freq"),
        available_hz=_int_list(_read_opt_text(root, f"{dev.path}/available_frequencies")),
        load_permille=load,
    )


def set_gpu_max_hz(root: Root, dev: GpuDevfreq, hz: int) -> int:
    """Write the GPU's ``max_freq``; returns what reads back (devfreq rounds to the table).

    Older kernels reject a max below ``min_freq`` (after jetson_clocks pinned it); lower the
    minimum first with :func:`set_gpu_min_hz`.
    """
    return _write_read_back(root, f"{dev.path}/max_freq", hz)


def set_gpu_min_hz(root: Root, dev: GpuDevfreq, hz: int) -> int:
    """Write the GPU's ``min_freq``; returns what reads back."""
    return _write_read_back(root, f"{dev.path}/min_freq", hz)


# --- CPU ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CpuState:
    """One CPU's online state and cpufreq values (None when the file is absent or unreadable)."""

    index: int
    online: bool
    cur_khz: int | None
    min_khz: int | None
    max_khz: int | None
    available_khz: tuple[int, ...]
    governor: str | None


@dataclass(frozen=True, slots=True)
class CpuCluster:
    """CPUs that share one cpufreq policy (``policy0`` = TX2's A57 cores 0,3-5)."""

    name: str
    cpus: tuple[int, ...]


def parse_cpu_range(text: str) -> tuple[int, ...]:
    """Parse a kernel CPU list (``0,3-5`` -> (0, 3, 4, 5)); empty text gives ().

    Raises:
        HardwareError: malformed text.
    """
    cpus: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        try:
            low, sep, high = part.partition("-")
            start = int(low)
            end = int(high) if sep else start
        except ValueError as err:
            raise HardwareError(f"bad CPU list {text!r}") from err
        if end < start:
            raise HardwareError(f"bad CPU list {text!r}")
        cpus.update(range(start, end + 1))
    return tuple(sorted(cpus))


def format_cpu_range(cpus: Iterable[int]) -> str:
    """Format CPUs as a kernel CPU list ((0, 3, 4, 5) -> ``0,3-5``)."""
    ordered = sorted(set(cpus))
    runs: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        runs.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(runs)


def read_online_cpus(root: Root) -> tuple[int, ...]:
    """The kernel's ``/sys/devices/system/cpu/online`` list."""
    return parse_cpu_range(root.read_text(f"{CPU_DIR}/online"))


def cpu_indices(root: Root) -> list[int]:
    """Indices of the ``cpuN`` directories, sorted."""
    found = (_CPU_NAME.match(p.name) for p in root.glob(f"{CPU_DIR}/cpu*"))
    return sorted(int(m.group(1)) for m in found if m is not None)


def is_cpu_online(root: Root, cpu: int) -> bool:
    """Whether a CPU is online; a missing ``online`` file (cpu0) means online, as jtop reads it."""
    rel = f"{CPU_DIR}/cpu{cpu}/online"
    if not root.exists(rel):
        return True
    return root.read_text(rel) == "1"


def read_cpu(root: Root, cpu: int) -> CpuState:
    """Read one CPU's state."""
    base = f"{CPU_DIR}/cpu{cpu}/cpufreq"
    cur = _read_opt_int(root, f"{base}/scaling_cur_freq")
    if cur is None:
        cur = _read_opt_int(root, f"{base}/cpuinfo_cur_freq")
    return CpuState(
        index=cpu,
        online=is_cpu_online(root, cpu),
        cur_khz=cur,
        min_khz=_read_opt_int(root, f"{base}/scaling_min_freq"),
        max_khz=_read_opt_int(root, f"{base}/scaling_max_freq"),
        available_khz=_int_list(_read_opt_text(root, f"{base}/scaling_available_frequencies")),
        governor=_read_opt_text(root, f"{base}/scaling_governor"),
    )


def list_cpus(root: Root) -> list[CpuState]:
    """Every ``cpuN`` under ``/sys/devices/system/cpu``, by index."""
    return [read_cpu(root, cpu) for cpu in cpu_indices(root)]


def set_cpu_max_khz(root: Root, cpu: int, khz: int) -> int:
    """Write ``scaling_max_freq`` (applies to the CPU's whole policy); returns the read-back."""
    return _write_read_back(root, f"{CPU_DIR}/cpu{cpu}/cpufreq/scaling_max_freq", khz)


def set_cpu_min_khz(root: Root, cpu: int, khz: int) -> int:
    """Write ``scaling_min_freq``; returns the read-back."""
    return _write_read_back(root, f"{CPU_DIR}/cpu{cpu}/cpufreq/scaling_min_freq", khz)


def set_cpu_online(root: Root, cpu: int, online: bool) -> None:
    """Bring a CPU online or take it offline, and read it back.

    Raises:
        HardwareError: the CPU has no ``online`` file (cpu0 cannot go offline) and ``online``
            is False. SysfsError: the write failed or did not stick.
    """
    rel = f"{CPU_DIR}/cpu{cpu}/online"
    if not root.exists(rel):
        if online:
            return
        raise HardwareError(f"cpu{cpu} cannot be taken offline (no {root.display(rel)})")
    root.write_text(rel, "1" if online else "0")


def cpu_clusters(root: Root) -> list[CpuCluster]:
    """CPU clusters from ``cpufreq/policyN/related_cpus``, else from each CPU's ``related_cpus``.

    Each cluster is named ``policyN`` after its first CPU, the kernel's own name.
    """
    clusters: dict[tuple[int, ...], str] = {}
    for policy in root.glob(f"{CPU_DIR}/cpufreq/policy*"):
        text = _read_opt_text(root, root.relative(policy / "related_cpus"))
        cpus = _int_list(text)
        if cpus:
            clusters.setdefault(tuple(sorted(cpus)), policy.name)
    if not clusters:
        for cpu in cpu_indices(root):
            cpus = _int_list(_read_opt_text(root, f"{CPU_DIR}/cpu{cpu}/cpufreq/related_cpus"))
            if cpus:
                clusters.setdefault(tuple(sorted(cpus)), f"policy{min(cpus)}")
    ordered = sorted(clusters.items(), key=lambda item: item[0][0])
    return [CpuCluster(name, cpus) for cpus, name in ordered]


# --- EMC ------------------------------------------------------------------------------------


def emc_cap_path(root: Root) -> str | None:
    """The nvpmodel EMC cap file present under the root, or None."""
    return next((rel for rel in EMC_CAP_PATHS if root.exists(rel)), None)


def read_emc_cap_hz(root: Root) -> int | None:
    """The nvpmodel EMC cap in Hz (0 = no cap), or None when the board has no cap file."""
    rel = emc_cap_path(root)
    return None if rel is None else root.read_int(rel)


def set_emc_cap_hz(root: Root, hz: int) -> int:
    """Write the nvpmodel EMC cap; returns the read-back.

    Raises:
        HardwareError: the board has no EMC cap file.
    """
    rel = emc_cap_path(root)
    if rel is None:
        raise HardwareError(f"no EMC cap file under {root.path} (tried {', '.join(EMC_CAP_PATHS)})")
    return _write_read_back(root, rel, hz)


EMC_CLK_DIR = "sys/kernel/debug/bpmp/debug/clk/emc"


def read_emc_rates_hz(root: Root) -> tuple[int, ...]:
    """The EMC rates the BPMP lists (debugfs ``possible_rates``), or () where it is not readable.

    The other EMC rates a governor may use are the caps of the board's own nvpmodel.conf.
    """
    rates = _int_list(_read_opt_text(root, f"{EMC_CLK_DIR}/possible_rates"))
    top = _read_opt_int(root, f"{EMC_CLK_DIR}/max_rate")
    return tuple(sorted({r for r in rates if r > 0} | ({top} if top else set())))
