"""Write one line in a board's own ``tegrastats`` format (the inverse of :mod:`.tegrastats`).

Release differences (``shared/reference/jetson_interfaces.md`` section 5 and the captures in
``tests/data/captures/``): L4T 32 prints no timestamp and rails as ``NAME cur/avg`` in mW
without a unit; L4T 35+ starts with ``MM-DD-YYYY HH:MM:SS`` and adds the unit
(``NAME 3205mW/3205mW``); R36 prints the GPU clock per GPC (``GR3D_FREQ 0%@[305]``).
Temperatures are ``name@T.TC`` with the zone type cut at its first ``-`` or ``_``
(``BCPU-therm`` -> ``BCPU``, ``Tboard_tegra`` -> ``Tboard``, ``cpu-thermal`` -> ``cpu``);
offline zones are left out, as R36 tegrastats does.

A token whose figures are unknown is left out rather than filled with zeros: per-core CPU load
needs ``/proc/stat`` (two reads), RAM needs ``/proc/meminfo``, EMC load needs the activity
monitor, which this agent does not read.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TegraSample:
    """Everything one line can hold; None or empty where unknown.

    Attributes:
        wall_s: Unix time of the sample (printed from L4T 35 on, in local time).
        ram_mb: (used, total).
        cpus: per core (load %, MHz), None for an offline core; empty when loads are unknown.
        emc_mhz: EMC clock; ``emc_load_pct`` its load, printed only when known.
        gpu_mhz: GPU clock; ``gpu_load_pct`` its load (devfreq ``load``).
        gpcs: GPU processing clusters; R36 prints the clock once per GPC.
        temps_c: thermal zone type -> degrees C.
        rails_mw: rail -> (current mW, average mW since the first line).
    """

    wall_s: float
    ram_mb: tuple[int, int] | None = None
    cpus: Sequence[tuple[int, int] | None] = ()
    emc_mhz: int | None = None
    emc_load_pct: int | None = None
    gpu_mhz: int | None = None
    gpu_load_pct: int | None = None
    gpcs: int = 1
    temps_c: Mapping[str, float] = field(default_factory=dict)
    rails_mw: Mapping[str, tuple[int, int]] = field(default_factory=dict)


def sensor_name(zone_type: str) -> str:
    """``BCPU-therm`` -> ``BCPU``; ``Tboard_tegra`` -> ``Tboard``; ``cpu-thermal`` -> ``cpu``."""
    return zone_type.split("-", 1)[0].split("_", 1)[0] or zone_type


def _temp(value: float) -> str:
    return f"{round(value, 3):g}C"


def _engine(name: str, load: int | None, mhz: int, gpcs: int | None) -> str:
    clock = str(mhz) if gpcs is None else "[" + ",".join([str(mhz)] * gpcs) + "]"
    return f"{name} {'' if load is None else f'{load}%'}@{clock}"


def format_line(sample: TegraSample, l4t_major: int) -> str:
    """The sample as ``tegrastats`` of L4T ``l4t_major`` (32, 35, 36, ...) prints it."""
    tokens: list[str] = []
    if l4t_major >= 35:
        tokens.append(time.strftime("%m-%d-%Y %H:%M:%S", time.localtime(sample.wall_s)))
    if sample.ram_mb is not None:
        tokens.append(f"RAM {sample.ram_mb[0]}/{sample.ram_mb[1]}MB")
    if sample.cpus:
        cores = ",".join("off" if c is None else f"{c[0]}%@{c[1]}" for c in sample.cpus)
        tokens.append(f"CPU [{cores}]")
    if sample.emc_mhz is not None and sample.emc_load_pct is not None:
        tokens.append(_engine("EMC_FREQ", sample.emc_load_pct, sample.emc_mhz, None))
    if sample.gpu_mhz is not None:
        gpcs = sample.gpcs if l4t_major >= 36 else None
        tokens.append(_engine("GR3D_FREQ", sample.gpu_load_pct, sample.gpu_mhz, gpcs))
    seen: set[str] = set()
    for zone, celsius in sample.temps_c.items():
        name = sensor_name(zone)
        if name not in seen:  # two zones that shorten alike: tegrastats shows one
            seen.add(name)
            tokens.append(f"{name}@{_temp(celsius)}")
    unit = "mW" if l4t_major >= 35 else ""
    for rail, (cur, avg) in sample.rails_mw.items():
        tokens.append(f"{rail} {cur}{unit}/{avg}{unit}")
    return " ".join(tokens)
