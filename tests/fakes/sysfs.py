"""Builders for small fake Jetson trees: real files and symlinks under a temp root.

Layouts follow shared/reference/jetson_interfaces.md section 4: devfreq class links to the GPU
devfreq directory, ``device/of_node`` points into the device tree, cpuN/cpufreq links to a
shared ``policyN`` directory as the kernel does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

TX2_GPU_HZ = (
    114750000,
    216750000,
    318750000,
    420750000,
    522750000,
    624750000,
    726750000,
    854250000,
    930750000,
    1032750000,
    1122000000,
    1236750000,
    1300500000,
)
TX2_CPU_KHZ = (345600, 499200, 652800, 806400, 960000, 1113600, 1267200, 1420800, 2035200)


def write(root: Path, rel: str, content: str | bytes) -> Path:
    """Write a file at a board path under ``root``, creating its directories."""
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def link(root: Path, rel: str, target_rel: str, *, absolute: bool = False) -> Path:
    """Symlink board path ``rel`` to board path ``target_rel`` (relative link, like sysfs).

    ``absolute`` writes the target as ``/sys/...``, as a captured tree may contain.
    """
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    target = root / target_rel.lstrip("/")
    if absolute:
        path.symlink_to("/" + target_rel.lstrip("/"))
    else:
        path.symlink_to(os.path.relpath(target, path.parent))
    return path


def make_gpu_devfreq(
    root: Path,
    *,
    node_name: str = "gp10b",
    device: str = "sys/devices/gpu.0",
    devfreq_name: str = "17000000.gp10b",
    available_hz: Sequence[int] = TX2_GPU_HZ,
    min_hz: int | None = None,
    max_hz: int | None = None,
    cur_hz: int | None = None,
    load_permille: int | None = 0,
    absolute_links: bool = False,
    with_of_node: bool = True,
) -> str:
    """A GPU devfreq node; returns the devfreq directory's board path."""
    devfreq = f"{device}/devfreq/{devfreq_name}"
    low, high = min(available_hz), max(available_hz)
    write(root, f"{devfreq}/available_frequencies", " ".join(map(str, available_hz)) + "\n")
    write(root, f"{devfreq}/min_freq", f"{min_hz if min_hz is not None else low}\n")
    write(root, f"{devfreq}/max_freq", f"{max_hz if max_hz is not None else high}\n")
    write(root, f"{devfreq}/cur_freq", f"{cur_hz if cur_hz is not None else low}\n")
    write(root, f"{devfreq}/governor", "nvhost_podgov\n")
    if load_permille is not None:
        write(root, f"{device}/load", f"{load_permille}\n")
    write(root, f"{device}/railgate_enable", "1\n")
    if with_of_node:
        dt_node = f"sys/firmware/devicetree/base/{node_name}@{devfreq_name.split('.')[0]}"
        write(root, f"{dt_node}/name", node_name.encode() + b"\x00")
        link(root, f"{device}/of_node", dt_node)
    link(root, f"{devfreq}/device", device)
    link(root, f"sys/class/devfreq/{devfreq_name}", devfreq, absolute=absolute_links)
    return "/" + devfreq


def make_other_devfreq(root: Path, name: str = "15340000.vic", node_name: str = "vic") -> None:
    """A non-GPU devfreq node (the VIC) that discovery must skip."""
    device = f"sys/devices/13e10000.host1x/{name}"
    write(root, f"{device}/devfreq/{name}/max_freq", "1036800000\n")
    write(root, f"sys/firmware/devicetree/base/{node_name}/name", node_name.encode() + b"\x00")
    link(root, f"{device}/of_node", f"sys/firmware/devicetree/base/{node_name}")
    link(root, f"{device}/devfreq/{name}/device", device)
    link(root, f"sys/class/devfreq/{name}", f"{device}/devfreq/{name}")


def make_cpus(
    root: Path,
    clusters: Mapping[int, Sequence[int]],
    *,
    online: Iterable[int] | None = None,
    available_khz: Sequence[int] = TX2_CPU_KHZ,
    governor: str = "schedutil",
    min_khz: int | None = None,
    max_khz: int | None = None,
    cur_khz: int | None = None,
    cpu0_online_file: bool = False,
) -> None:
    """CPUs grouped in cpufreq policies: ``{0: (0, 3, 4, 5), 1: (1, 2)}`` (TX2).

    Each cpuN/cpufreq is a link to ``cpufreq/policy<first>``, so writes through any CPU of a
    policy show on all of them, as on a real kernel.
    """
    base = "sys/devices/system/cpu"
    all_cpus = sorted(c for cpus in clusters.values() for c in cpus)
    online_set = set(all_cpus if online is None else online)
    low, high = min(available_khz), max(available_khz)
    for first, cpus in clusters.items():
        policy = f"{base}/cpufreq/policy{first}"
        related = " ".join(map(str, cpus)) + "\n"
        write(root, f"{policy}/related_cpus", related)
        write(root, f"{policy}/affected_cpus", related)
        write(root, f"{policy}/scaling_available_frequencies", " ".join(map(str, available_khz)))
        write(root, f"{policy}/scaling_min_freq", f"{min_khz if min_khz is not None else low}\n")
        write(root, f"{policy}/scaling_max_freq", f"{max_khz if max_khz is not None else high}\n")
        write(root, f"{policy}/scaling_cur_freq", f"{cur_khz if cur_khz is not None else low}\n")
        write(root, f"{policy}/scaling_governor", governor + "\n")
        for cpu in cpus:
            link(root, f"{base}/cpu{cpu}/cpufreq", policy)
    for cpu in all_cpus:
        if cpu != 0 or cpu0_online_file:
            write(root, f"{base}/cpu{cpu}/online", "1\n" if cpu in online_set else "0\n")
    write(root, f"{base}/online", _cpu_list(sorted(online_set)) + "\n")
    write(root, f"{base}/possible", _cpu_list(all_cpus) + "\n")


def _cpu_list(cpus: Sequence[int]) -> str:
    groups: list[list[int]] = []
    for cpu in cpus:
        if groups and groups[-1][-1] == cpu - 1:
            groups[-1].append(cpu)
        else:
            groups.append([cpu])
    return ",".join(str(g[0]) if len(g) == 1 else f"{g[0]}-{g[-1]}" for g in groups)


def make_thermal(root: Path, zones: Sequence[tuple[str, int | None]]) -> None:
    """Thermal zones in order; a temp of None makes ``temp`` unreadable (a directory)."""
    for index, (name, milli_c) in enumerate(zones):
        zone = f"sys/class/thermal/thermal_zone{index}"
        write(root, f"{zone}/type", name + "\n")
        if milli_c is None:
            (root / zone / "temp").mkdir(parents=True)
        else:
            write(root, f"{zone}/temp", f"{milli_c}\n")


def make_board(
    root: Path,
    model: str | None,
    compatible: Sequence[str] = (),
    release: str | None = None,
) -> None:
    """Device-tree model/compatible (NUL-terminated, as the kernel exposes them) and L4T release."""
    if model is not None:
        write(root, "proc/device-tree/model", model.encode() + b"\x00")
    if compatible:
        write(
            root, "proc/device-tree/compatible", b"".join(c.encode() + b"\x00" for c in compatible)
        )
    if release is not None:
        write(root, "etc/nv_tegra_release", release)


def make_executable(root: Path, rel: str, body: str) -> Path:
    """A Python script at ``rel`` with a shebang for this interpreter, mode 0755."""
    path = write(root, rel, f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return path
