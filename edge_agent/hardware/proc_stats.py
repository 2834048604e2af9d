"""Per-core CPU times (``/proc/stat``) and memory (``/proc/meminfo``) under a root.

Both are optional: a captured or simulated tree may lack them, and the reader returns None.
"""

from __future__ import annotations

import logging

from edge_agent.errors import SysfsError
from edge_agent.hardware.root import Root

logger = logging.getLogger(__name__)

PROC_STAT = "proc/stat"
PROC_MEMINFO = "proc/meminfo"
# /proc/stat columns: user nice system idle iowait irq softirq steal ...
_IDLE_COLUMNS = (3, 4)


def read_cpu_times(root: Root) -> dict[int, tuple[int, int]] | None:
    """cpu index -> (busy jiffies, total jiffies), or None without ``/proc/stat``."""
    if not root.exists(PROC_STAT):
        return None
    try:
        text = root.read_text(PROC_STAT)
    except SysfsError as err:
        logger.debug("%s", err)
        return None
    out: dict[int, tuple[int, int]] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or not name[3:].isdigit():
            continue
        values = [int(v) for v in rest.split()]
        idle = sum(values[i] for i in _IDLE_COLUMNS if i < len(values))
        out[int(name[3:])] = (sum(values) - idle, sum(values))
    return out


def cpu_loads(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]
) -> dict[int, int]:
    """Per-core load % between two reads (cores present in both)."""
    loads = {}
    for cpu, (busy, total) in after.items():
        if cpu in before and total > before[cpu][1]:
            loads[cpu] = round(100 * (busy - before[cpu][0]) / (total - before[cpu][1]))
    return loads


def read_ram_mb(root: Root) -> tuple[int, int] | None:
    """(used, total) MB as tegrastats counts them (total - available), or None."""
    if not root.exists(PROC_MEMINFO):
        return None
    try:
        fields = {
            key: int(value.split()[0])
            for key, _, value in (
                line.partition(":") for line in root.read_text(PROC_MEMINFO).splitlines()
            )
            if value.strip()
        }
    except (SysfsError, ValueError) as err:
        logger.debug("%s", err)
        return None
    if "MemTotal" not in fields or "MemAvailable" not in fields:
        return None
    total_kb, available_kb = fields["MemTotal"], fields["MemAvailable"]
    return (total_kb - available_kb) // 1024, total_kb // 1024
