"""File helpers that give the simulated tree sysfs-like behaviour.

Real sysfs refuses writes to attributes without a write bit even for root (kernfs returns
EACCES), and the kernel keeps derived state consistent (``min <= max``, the ``cpu/online`` list).
The sim's CLIs and power model use these helpers so the tree behaves the same way.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Iterable
from pathlib import Path

from edge_agent.sim.boards import BoardSpec


def board_path(root: Path, rel: str | Path) -> Path:
    """Map a board path (``/sys/...``) to its place under ``root``."""
    text = str(rel)
    if text.startswith(str(root) + os.sep):
        return Path(text)
    return root / text.lstrip("/")


def write_attr(path: Path, value: str | int) -> None:
    """Write a control file the way sysfs does: in place, refused when it has no write bit.

    Raises:
        PermissionError: the file is read-only (mode without write bits, or ``chattr +i``).
        OSError: any other failure, such as a missing file.
    """
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
    if not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    with path.open("w", encoding="utf-8") as handle:
        handle.write(f"{value}\n")


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace a file's content in one step, so readers never see a half-written value."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def put(path: Path, text: str, mode: int = 0o644) -> None:
    """Create a file (and its parents) with ``text`` and ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def link(path: Path, target: Path) -> None:
    """Create a relative symlink ``path`` -> ``target``, as sysfs links are relative."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(os.path.relpath(target, path.parent))


def read_text(path: Path, default: str = "") -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return default


def read_int(path: Path, default: int = 0) -> int:
    try:
        return int(read_text(path).split()[0])
    except (ValueError, IndexError):
        return default


def read_ints(path: Path) -> list[int]:
    return [int(tok) for tok in read_text(path).split() if tok.lstrip("-").isdigit()]


def cpulist(cpus: Iterable[int]) -> str:
    """Format CPU numbers the kernel way: ``0,3-5``."""
    ranges: list[str] = []
    run: list[int] = []
    for cpu in sorted(set(cpus)):
        if run and cpu != run[-1] + 1:
            ranges.append(_span(run))
            run = []
        run.append(cpu)
    if run:
        ranges.append(_span(run))
    return ",".join(ranges)


def _span(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


def update_if_changed(path: Path, text: str) -> None:
    """Atomically rewrite ``path`` unless it already holds ``text``; keeps the file's mode."""
    if read_text(path) == text.strip():
        return
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o444
    write_atomic(path, text, mode)


def cpu_dir(root: Path, cpu: int) -> Path:
    return root / f"sys/devices/system/cpu/cpu{cpu}"


def policy_dir(root: Path, policy: int) -> Path:
    return root / f"sys/devices/system/cpu/cpufreq/policy{policy}"


def devfreq_dir(root: Path, spec: BoardSpec) -> Path:
    return board_path(root, f"{spec.gpu.device_dir}/devfreq/{spec.gpu.devfreq}")


def emc_clk_dir(root: Path) -> Path:
    return root / "sys/kernel/debug/bpmp/debug/clk/emc"


def online_cpus(root: Path, spec: BoardSpec) -> list[int]:
    """CPUs whose ``online`` file reads 1 (a missing file means online, as jtop assumes)."""
    return [
        cpu
        for cluster in spec.clusters
        for cpu in cluster.cpus
        if read_int(cpu_dir(root, cpu) / "online", 1) == 1
    ]


def floor_freq(table: list[int] | tuple[int, ...], limit: int) -> int:
    """The highest table entry at or below ``limit`` (the lowest entry when none is)."""
    below = [f for f in table if f <= limit]
    return max(below) if below else min(table)


def running_freq(table: list[int] | tuple[int, ...], lo: int, hi: int, want: int) -> int:
    """The table frequency cpufreq runs at for a request ``want`` within ``[lo, hi]``.

    The highest entry not above the request, but never below ``lo``: when no entry lies in
    ``[lo, hi]`` the kernel takes the first one above ``lo``.
    """
    freq = floor_freq(table, min(max(want, lo), hi))
    if freq < lo:
        above = [f for f in table if f >= lo]
        freq = min(above) if above else max(table)
    return freq


def emc_rate_hz(root: Path, spec: BoardSpec) -> int:
    """The EMC clock: pinned when ``mrq_rate_locked``, else the max rate under the cap."""
    clk = emc_clk_dir(root)
    if read_int(clk / "mrq_rate_locked") == 1:
        return read_int(clk / "rate", spec.emc.max_hz)
    cap = read_int(board_path(root, spec.emc.cap_path))
    top = min(spec.emc.max_hz, cap) if cap > 0 else spec.emc.max_hz
    rates = spec.emc.listed_rates()
    return floor_freq(rates, top) if rates else top


def settle(root: Path, spec: BoardSpec) -> None:
    """Re-derive what the kernel keeps consistent after control writes.

    ``min <= max`` for cpufreq and devfreq (the user max wins), current clocks inside the
    limits, the ``cpu/online`` list, and the EMC rate under the nvpmodel cap.
    """
    for cluster in spec.clusters:
        pol = policy_dir(root, cluster.policy)
        lo, hi = read_int(pol / "scaling_min_freq"), read_int(pol / "scaling_max_freq")
        if lo > hi:
            write_attr(pol / "scaling_min_freq", hi)
            lo = hi
        khz = running_freq(cluster.freqs_khz, lo, hi, read_int(pol / "scaling_cur_freq"))
        update_if_changed(pol / "scaling_cur_freq", f"{khz}\n")
        update_if_changed(pol / "cpuinfo_cur_freq", f"{khz}\n")
    dev = devfreq_dir(root, spec)
    lo, hi = read_int(dev / "min_freq"), read_int(dev / "max_freq")
    if lo > hi:
        write_attr(dev / "min_freq", hi)
        lo = hi
    cur = read_int(dev / "cur_freq")
    update_if_changed(dev / "cur_freq", f"{min(max(cur, lo), hi)}\n")
    online = online_cpus(root, spec)
    update_if_changed(root / "sys/devices/system/cpu/online", cpulist(online) + "\n")
    offline = sorted(set(range(spec.cpu_count)) - set(online))
    update_if_changed(root / "sys/devices/system/cpu/offline", cpulist(offline) + "\n")
    update_if_changed(emc_clk_dir(root) / "rate", f"{emc_rate_hz(root, spec)}\n")
