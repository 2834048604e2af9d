"""The simulated ``tegrastats``, run as ``<root>/usr/bin/tegrastats``.

One line per interval from the tree as it is now (clocks, GPU load, thermal zones, INA3221 rails),
in the format of the board's release (``shared/reference/jetson_interfaces.md`` section 5, issue
14 item 8):

- L4T 32: rails ``cur/avg`` in mW with no unit, ``GR3D_FREQ x%@f``, zone names such as ``GPU``;
- R35: a leading ``MM-DD-YYYY HH:MM:SS`` date, rails with ``mW``, upper-case Orin zone names,
  offline sensors as ``@-256C``;
- R36: ``GR3D_FREQ x%@[f,f]`` (one clock per GPC) and lower-case ``cpu@T`` (offline sensors left
  out);
- R39: three values per rail (``VDD_IN 3582mW/3582mW/3582mW``) and two per temperature
  (``cpu@45.812C/45.812C``).

Options: ``--interval <ms>``, ``--logfile <file>`` (lines go there instead of stdout) and
``--stop`` (ends the instance this tree started).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.sim import rails, sysfs
from edge_agent.sim.releases import spec_at
from edge_agent.sim.spec import BoardSpec

PID_FILE = "sim/tegrastats.pid"
# RAM used/total MB, lfb blocks, SWAP used/total MB, cached MB: fixed per board (the TX2 and
# AGX Orin figures are from the netdata captures).
_MEMORY = {
    "jetson-tx2": (2344, 7852, 1154, 0, 3926, 0),
    "jetson-agx-xavier": (3412, 31920, 7180, 0, 15960, 0),
    "jetson-xavier-nx": (2612, 7765, 612, 0, 3882, 0),
    "jetson-orin-nano": (2130, 7620, 2, 0, 3810, 0),
    "jetson-agx-orin": (29114, 30697, 3, 4915, 15348, 1),
}
_ZONE_NAMES = {"tj": "tj", "tboard": "Tboard", "tdiode": "Tdiode"}


@dataclass
class RailAverages:
    """Running mean and peak of each rail over the lines printed so far."""

    count: int = 0
    total_mw: dict[str, int] = field(default_factory=dict)
    peak_mw: dict[str, int] = field(default_factory=dict)

    def add(self, powers: dict[str, int]) -> None:
        self.count += 1
        for name, mw in powers.items():
            self.total_mw[name] = self.total_mw.get(name, 0) + mw
            self.peak_mw[name] = max(self.peak_mw.get(name, mw), mw)

    def avg(self, name: str) -> int:
        return round(self.total_mw[name] / max(1, self.count))


def _celsius(milli: int) -> str:
    return f"{milli / 1000:.3f}".rstrip("0").rstrip(".") + "C"


def _zone_name(spec: BoardSpec, zone_type: str) -> str:
    base = zone_type.split("-")[0].split("_")[0]
    release = spec.l4t[0]
    if spec.soc_family != "tegra234":
        return base
    if release >= 36:
        return base.lower()
    return _ZONE_NAMES.get(base.lower(), base.upper())


def _temps(root: Path, spec: BoardSpec) -> list[str]:
    out = []
    release = spec.l4t[0]
    types = [zone.type for zone in spec.thermal]
    for zone_type in spec.tegrastats_temps or types:
        index = types.index(zone_type)
        milli = sysfs.read_int(root / f"sys/class/thermal/thermal_zone{index}/temp", -256000)
        if milli <= -256000 and release >= 36:
            continue
        value = _celsius(milli)
        if release >= 39:
            value = f"{value}/{value}"
        out.append(f"{_zone_name(spec, zone_type)}@{value}")
    return out


def _rails(root: Path, spec: BoardSpec, history: RailAverages) -> list[str]:
    powers = {}
    for name in spec.tegrastats_rails or spec.rail_names:
        mv, ma = rails.read_rail(root, spec, name)
        powers[name] = mv * ma // 1000
    history.add(powers)
    unit = "mW" if spec.l4t[0] >= 35 else ""
    out = []
    for name, mw in powers.items():
        values = [mw, history.avg(name)]
        if spec.l4t[0] >= 39:
            values.append(history.peak_mw[name])
        out.append(f"{name} " + "/".join(f"{v}{unit}" for v in values))
    return out


def format_line(root: Path, spec: BoardSpec, now: dt.datetime, history: RailAverages) -> str:
    """One tegrastats line for the tree at ``root`` as it is now."""
    release = spec.l4t[0]
    used, total, lfb, swap_used, swap_total, cached = _MEMORY[spec.name]
    gpu_pct = sysfs.read_int(sysfs.board_path(root, spec.gpu.device_dir) / "load") // 10
    online = set(sysfs.online_cpus(root, spec))
    cpus = []
    for cpu in range(spec.cpu_count):
        khz = sysfs.read_int(sysfs.cpu_dir(root, cpu) / "cpufreq/scaling_cur_freq")
        cpus.append(f"{1 + gpu_pct // 4}%@{khz // 1000}" if cpu in online else "off")
    emc_mhz = sysfs.read_int(sysfs.emc_clk_dir(root) / "rate") // 1_000_000
    gpu_mhz = sysfs.read_int(sysfs.devfreq_dir(root, spec) / "cur_freq") // 1_000_000
    gr3d = f"[{','.join([str(gpu_mhz)] * spec.gpu.gpcs)}]" if release >= 36 else str(gpu_mhz)
    tokens = [] if release != 35 else [now.strftime("%m-%d-%Y %H:%M:%S")]
    tokens += [
        f"RAM {used}/{total}MB (lfb {lfb}x4MB)",
        f"SWAP {swap_used}/{swap_total}MB (cached {cached}MB)",
        f"CPU [{','.join(cpus)}]",
        f"EMC_FREQ {1 + gpu_pct // 2}%@{emc_mhz}",
        f"GR3D_FREQ {gpu_pct}%@{gr3d}",
        *([spec.tegrastats_engines] if spec.tegrastats_engines and release >= 36 else []),
        f"APE {150 if release < 35 else 174}",
        *_temps(root, spec),
        *_rails(root, spec, history),
    ]
    return " ".join(tokens)


def _stop(root: Path) -> int:
    pid = sysfs.read_int(root / PID_FILE, 0)
    if pid <= 0:
        return 0
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    (root / PID_FILE).unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None, root: Path) -> int:
    """Run the simulated tegrastats on the tree at ``root`` until killed (or ``--stop``)."""
    root = Path(root)
    parser = argparse.ArgumentParser(prog="tegrastats")
    parser.add_argument("--interval", type=int, default=1000, metavar="MS")
    parser.add_argument("--logfile", type=Path, metavar="FILE")
    parser.add_argument("--stop", action="store_true")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.stop:
        return _stop(root)
    if args.interval <= 0:
        parser.error("--interval must be positive")
    spec = spec_at(root)
    sysfs.put(root / PID_FILE, f"{os.getpid()}\n")
    history = RailAverages()
    out = args.logfile.open("a", encoding="utf-8") if args.logfile else sys.stdout
    try:
        while True:
            out.write(format_line(root, spec, dt.datetime.now(), history) + "\n")
            out.flush()
            time.sleep(args.interval / 1000)
    except (KeyboardInterrupt, BrokenPipeError):
        return 0
    finally:
        if out is not sys.stdout:
            out.close()
