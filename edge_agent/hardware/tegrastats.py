"""Parser for one ``tegrastats`` line (L4T 28 to R39).

Every token is optional: which ones appear depends on the board, the release and whether
tegrastats runs as root. Formats are from ``shared/reference/jetson_interfaces.md`` section 5.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from edge_agent.errors import CommandError

# tegrastats prints -256 C for a sensor that is off (jtop treats it as offline).
OFFLINE_C = -255.0
_TIMESTAMP = re.compile(r"^\s*(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB(?: \(lfb (\d+)x(\d+)MB\))?")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB(?: \(cached (\d+)MB\))?")
_CPU = re.compile(r"\bCPU \[([^\]]*)\](?:@(\d+))?", re.IGNORECASE)
_ENGINE_FREQ = re.compile(r"\b(EMC_FREQ|EMC|GR3D_FREQ|GR3D) (\S+)")
# ``4%@1600``, ``0%@[305,305]``, ``@[305,305]`` (Thor) or ``0%`` alone (GPU idle, no clock).
_FREQ_VALUE = re.compile(r"^(?:(\d+)%)?(?:@(?:\[([\d,]*)\]|(\d+)))?$")
# ``cpu@45.812C``; R39 prints two values, ``cpu@45.812C/45.812C``: the first is the reading.
_TEMP = re.compile(
    r"(?:(?<=\s)|^)([A-Za-z][\w-]*)@(-?\d+(?:\.\d+)?)C(?:/-?\d+(?:\.\d+)?C)*(?=\s|$)"
)
_RAIL = re.compile(
    r"(?:(?<=\s)|^)([A-Za-z][A-Za-z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?((?:/\d+(?:mW)?)*)(?=\s|$)"
)
_ENGINE = re.compile(r"(?:(?<=\s)|^)([A-Z][A-Z0-9_]*) (off|\d+%@\S+|@\S+|\d+)(?=\s|$)")
_NOT_ENGINES = frozenset({"RAM", "SWAP", "CPU", "EMC_FREQ", "EMC", "GR3D_FREQ", "GR3D"})


@dataclass(frozen=True, slots=True)
class CpuLoad:
    """One core in ``CPU [..]``: load and clock (None when the line gives no clock)."""

    load_pct: int
    freq_mhz: int | None


@dataclass(frozen=True, slots=True)
class EngineFreq:
    """``EMC_FREQ 4%@1600`` or ``GR3D_FREQ 0%@[305,305]`` (one clock per GPC on R36).

    ``load_pct`` is None on Thor, which prints only ``@[..]``.
    """

    load_pct: int | None
    freq_mhz: tuple[int, ...]

    @property
    def mhz(self) -> int | None:
        """The first (or only) clock."""
        return self.freq_mhz[0] if self.freq_mhz else None


@dataclass(frozen=True, slots=True)
class TegraStats:
    """One parsed tegrastats line. Absent tokens are None or empty.

    Attributes:
        cpus: one entry per core; None for an ``off`` (offline) core.
        temps_c: sensor -> degrees C; None for -256 C (offline).
        rails: rail -> (current mW, average mW), with or without the ``mW`` unit.
        rail_extra_mw: values after the first two, for releases (R39) that print three.
        engines: other engines as printed (``NVENC`` -> ``off``, ``APE`` -> ``150``).
    """

    timestamp: str | None = None
    ram_used_mb: int | None = None
    ram_total_mb: int | None = None
    lfb_blocks: int | None = None
    lfb_block_mb: int | None = None
    swap_used_mb: int | None = None
    swap_total_mb: int | None = None
    swap_cached_mb: int | None = None
    cpus: tuple[CpuLoad | None, ...] = ()
    emc: EngineFreq | None = None
    gr3d: EngineFreq | None = None
    temps_c: dict[str, float | None] = field(default_factory=dict)
    rails: dict[str, tuple[int, int]] = field(default_factory=dict)
    rail_extra_mw: dict[str, tuple[int, ...]] = field(default_factory=dict)
    engines: dict[str, str] = field(default_factory=dict)


def _opt(text: str | None) -> int | None:
    return int(text) if text else None


def parse_engine_freq(text: str) -> EngineFreq | None:
    """``4%@1600``, ``0%@[305,305]``, ``@[305,305]`` or ``0%`` (no clock); None for ``off``
    or other text."""
    match = _FREQ_VALUE.match(text)
    if match is None or not text:
        return None
    load, table, single = match.groups()
    if table is not None:
        freqs: tuple[int, ...] = tuple(int(v) for v in table.split(",") if v)
    else:
        freqs = (int(single),) if single is not None else ()
    return EngineFreq(_opt(load), freqs)


def _parse_cpus(body: str, shared_mhz: str | None) -> tuple[CpuLoad | None, ...]:
    cores: list[CpuLoad | None] = []
    for item in body.split(","):
        item = item.strip()
        if not item or item == "off":
            cores.append(None)
            continue
        load, _, mhz = item.partition("@")
        try:
            cores.append(CpuLoad(int(load.rstrip("%")), _opt(mhz or shared_mhz)))
        except ValueError:
            cores.append(None)
    return tuple(cores)


def parse_line(line: str) -> TegraStats:
    """Parse one tegrastats line.

    Raises:
        CommandError: the line has none of RAM, CPU or rail tokens, quoting it.
    """
    stamp = _TIMESTAMP.match(line)
    ram = _RAM.search(line)
    swap = _SWAP.search(line)
    cpu = _CPU.search(line)
    emc: EngineFreq | None = None
    gr3d: EngineFreq | None = None
    for name, value in _ENGINE_FREQ.findall(line):
        parsed = parse_engine_freq(value)
        if name.startswith("EMC"):
            emc = parsed
        else:
            gr3d = parsed
    temps: dict[str, float | None] = {}
    for name, value in _TEMP.findall(line):
        celsius = float(value)
        temps[name] = None if celsius <= OFFLINE_C else celsius
    rails: dict[str, tuple[int, int]] = {}
    extra: dict[str, tuple[int, ...]] = {}
    # ``NAME cur/avg`` cannot be confused with ``CPU [..]``: AGX Xavier has a rail named CPU.
    for name, cur, avg, more in _RAIL.findall(line):
        rails[name] = (int(cur), int(avg))
        if more:
            extra[name] = tuple(int(v.removesuffix("mW")) for v in more.strip("/").split("/"))
    engines = {n: v for n, v in _ENGINE.findall(line) if n not in _NOT_ENGINES}
    if ram is None and cpu is None and not rails:
        raise CommandError(["tegrastats"], "unrecognised line", line)
    return TegraStats(
        timestamp=stamp.group(1) if stamp else None,
        ram_used_mb=_opt(ram.group(1)) if ram else None,
        ram_total_mb=_opt(ram.group(2)) if ram else None,
        lfb_blocks=_opt(ram.group(3)) if ram else None,
        lfb_block_mb=_opt(ram.group(4)) if ram else None,
        swap_used_mb=_opt(swap.group(1)) if swap else None,
        swap_total_mb=_opt(swap.group(2)) if swap else None,
        swap_cached_mb=_opt(swap.group(3)) if swap else None,
        cpus=_parse_cpus(cpu.group(1), cpu.group(2)) if cpu else (),
        emc=emc,
        gr3d=gr3d,
        temps_c=temps,
        rails=rails,
        rail_extra_mw=extra,
        engines=engines,
    )
