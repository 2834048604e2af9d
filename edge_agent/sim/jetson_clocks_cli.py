"""The simulated ``jetson_clocks``, run as ``<root>/usr/bin/jetson_clocks``.

Behaviour of NVIDIA's L4T script (``shared/reference/jetson_interfaces.md`` section 3): with no
option it pins online CPUs, the GPU and the EMC at the current mode's maxima; ``--show`` prints
the clocks; ``--store``/``--restore`` save and write back ``path:value`` lines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_agent.hardware.nvpmodel import parse_conf
from edge_agent.sim import sysfs
from edge_agent.sim.boards import BoardSpec
from edge_agent.sim.nvpmodel_cli import CONF, _conf_file, _current_mode
from edge_agent.sim.releases import spec_at

DEFAULT_STORE = "/root/l4t_dfs.conf"


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def _rel(root: Path, path: Path) -> str:
    """The board path of a file under the root (other files keep their host path)."""
    try:
        return "/" + str(path.relative_to(root))
    except ValueError:
        return str(path)


def _idle_states(root: Path, cpu: int) -> list[Path]:
    return sorted((sysfs.cpu_dir(root, cpu) / "cpuidle").glob("state*"))


def _fan_pwm(root: Path, spec: BoardSpec) -> Path:
    if spec.fan_hwmon is None:
        return root / "sys/devices/pwm-fan/target_pwm"
    return root / f"sys/class/hwmon/hwmon{spec.fan_hwmon}/pwm1"


def _cpu_order(spec: BoardSpec) -> list[int]:
    """R35 lists the CPUs in the order of their sysfs names (cpu0, cpu1, cpu10, cpu11, cpu2)."""
    cpus = list(range(spec.cpu_count))
    return sorted(cpus, key=lambda n: f"cpu{n}") if spec.l4t[0] == 35 else cpus


def _cpu_line(root: Path, spec: BoardSpec, cpu: int, online: bool) -> str:
    """One ``cpuN:`` line. L4T 32 and R35 put one space after the label; R36 aligns the columns
    (``cpu0:  `` and ``cpu10: ``) and shows an offline CPU at its cluster's minimum. The idle
    states each end in a space, so the real line ends in one too."""
    freq = sysfs.cpu_dir(root, cpu) / "cpufreq"
    idle = "".join(
        f"{sysfs.read_text(s / 'name')}={1 - sysfs.read_int(s / 'disable')} "
        for s in _idle_states(root, cpu)
    )
    values = [sysfs.read_int(freq / f"scaling_{leaf}_freq") for leaf in ("min", "max", "cur")]
    label = f"cpu{cpu}:"
    if spec.l4t[0] >= 36:
        label = f"{label:<6}"
        if not online:
            values = [min(spec.cluster_of(cpu).freqs_khz)] * 3
    lo, hi, cur = values
    return (
        f"{label} Online={1 if online else 0} "
        f"Governor={sysfs.read_text(freq / 'scaling_governor')} "
        f"MinFreq={lo} MaxFreq={hi} CurrentFreq={cur} IdleStates: {idle}"
    )


def accelerator_lines(root: Path) -> list[str]:
    """R35's DLA and PVA lines, from the accelerator clock caps the nvpmodel conf names."""
    conf = parse_conf(_conf_file(root, CONF).read_text(encoding="utf-8"))
    lines = []
    for param in conf.params.values():
        if param.type == "CLOCK" and param.name.startswith(("DLA", "PVA")):
            hz = sysfs.read_int(sysfs.board_path(root, param.args["MAX_FREQ"]))
            lines.append(f"{param.name}: Online=1 MinFreq=0 MaxFreq={hz} CurrentFreq={hz}")
    return lines


def show(root: Path, spec: BoardSpec) -> list[str]:
    """The lines of ``jetson_clocks --show`` for the tree as it is now."""
    machine = sysfs.read_text(root / "sys/devices/soc0/machine", spec.model)
    lines = [f"SOC family:{spec.soc_family}  Machine:{machine}"]
    online = sysfs.online_cpus(root, spec)
    lines.append(f"Online CPUs: {sysfs.cpulist(online)}")
    if spec.soc_family == "tegra186":
        lines.append("CPU Cluster Switching: Disabled")
    lines += [_cpu_line(root, spec, cpu, cpu in online) for cpu in _cpu_order(spec)]
    dev = sysfs.devfreq_dir(root, spec)
    lo, hi, cur = (sysfs.read_int(dev / leaf) for leaf in ("min_freq", "max_freq", "cur_freq"))
    lines.append(f"GPU MinFreq={lo} MaxFreq={hi} CurrentFreq={cur}")
    gpu_dir = sysfs.board_path(root, spec.gpu.device_dir)
    if spec.l4t[0] == 35:
        lines += accelerator_lines(root)
    elif spec.soc_family == "tegra234" and spec.gpu.tpcs:
        mask = sysfs.read_int(gpu_dir / "tpc_pg_mask")
        active = sum(1 for bit in range(spec.gpu.tpcs) if not mask >> bit & 1)
        lines.append(f"Active GPU TPCs: {active}")
    clk = sysfs.emc_clk_dir(root)
    cap = sysfs.read_int(sysfs.board_path(root, spec.emc.cap_path))
    max_rate = sysfs.read_int(clk / "max_rate")
    lines.append(
        f"EMC MinFreq={sysfs.read_int(clk / 'min_rate')} "
        f"MaxFreq={min(max_rate, cap) if cap > 0 else max_rate} "
        f"CurrentFreq={sysfs.read_int(clk / 'rate')} "
        f"FreqOverride={sysfs.read_int(clk / 'mrq_rate_locked')}"
    )
    pwm = sysfs.read_int(_fan_pwm(root, spec))
    if spec.fan_hwmon is None:
        lines.append(f"Fan: speed={pwm}")
    else:
        lines.append(f"FAN Dynamic Speed Control=kernel hwmon{spec.fan_hwmon}_pwm1={pwm}")
    conf = parse_conf(_conf_file(root, CONF).read_text(encoding="utf-8"))
    status = sysfs.board_path(root, "/var/lib/nvpmodel/status")
    lines.append(f"NV Power Mode: {_current_mode(spec, conf, status).name}")
    return lines


def stored_paths(root: Path, spec: BoardSpec) -> list[Path]:
    """The files ``--store`` saves, in the order ``--restore`` writes them back."""
    paths = [sysfs.cpu_dir(root, cpu) / "online" for cpu in range(spec.cpu_count)]
    for cpu in range(spec.cpu_count):
        paths.append(sysfs.cpu_dir(root, cpu) / "cpufreq/scaling_min_freq")
        paths += [state / "disable" for state in _idle_states(root, cpu)]
    dev = sysfs.devfreq_dir(root, spec)
    paths += [dev / "min_freq", sysfs.board_path(root, spec.gpu.device_dir) / "railgate_enable"]
    clk = sysfs.emc_clk_dir(root)
    paths += [clk / "mrq_rate_locked", clk / "rate", _fan_pwm(root, spec)]
    return [p for p in paths if p.exists()]


def pin(root: Path, spec: BoardSpec, fan: bool) -> None:
    """Pin online CPUs, the GPU and the EMC at their current maxima."""
    for cpu in sysfs.online_cpus(root, spec):
        freq = sysfs.cpu_dir(root, cpu) / "cpufreq"
        sysfs.write_attr(freq / "scaling_min_freq", sysfs.read_int(freq / "scaling_max_freq"))
        for state in _idle_states(root, cpu):
            sysfs.write_attr(state / "disable", 1)
    gpu_dir = sysfs.board_path(root, spec.gpu.device_dir)
    sysfs.write_attr(gpu_dir / "railgate_enable", 0)
    dev = sysfs.devfreq_dir(root, spec)
    sysfs.write_attr(dev / "min_freq", sysfs.read_int(dev / "max_freq"))
    clk = sysfs.emc_clk_dir(root)
    cap = sysfs.read_int(sysfs.board_path(root, spec.emc.cap_path))
    max_rate = sysfs.read_int(clk / "max_rate")
    sysfs.write_attr(clk / "mrq_rate_locked", 1)
    sysfs.write_attr(clk / "rate", min(max_rate, cap) if cap > 0 else max_rate)
    if fan:
        sysfs.write_attr(_fan_pwm(root, spec), 255)
    sysfs.settle(root, spec)


def _store(root: Path, spec: BoardSpec, target: Path) -> int:
    if target.exists():
        _out(f"File {_rel(root, target)} already exists. Can I overwrite it? Y/N:")
        sys.stdout.flush()
        answer = sys.stdin.readline() if sys.stdin is not None else ""
        if answer.strip() not in ("y", "Y"):
            _err(f"Error: file {_rel(root, target)} already exists!")
            return 1
    lines = [f"{_rel(root, p)}:{sysfs.read_text(p)}" for p in stored_paths(root, spec)]
    sysfs.put(target, "\n".join(lines) + "\n")
    return 0


def _restore(root: Path, spec: BoardSpec, source: Path) -> int:
    if not source.is_file():
        _err(f"Error: {_rel(root, source)} file not found!")
        return 1
    for line in source.read_text(encoding="utf-8").splitlines():
        path_text, sep, value = line.rpartition(":")
        if not sep:
            continue
        path = sysfs.board_path(root, path_text)
        try:
            sysfs.write_attr(path, value)
        except OSError as err:
            _err(f"Error: cannot write {value} to {path_text}: {err.strerror}")
            return 1
    sysfs.settle(root, spec)
    return 0


def main(argv: list[str] | None, root: Path) -> int:
    """Run the simulated jetson_clocks on the tree at ``root``; returns the exit status."""
    root = Path(root)
    parser = argparse.ArgumentParser(prog="jetson_clocks", add_help=True)
    parser.add_argument("--show", action="store_true", help="display current settings")
    parser.add_argument("--fan", action="store_true", help="set the fan to maximum speed")
    parser.add_argument("--store", nargs="?", const=DEFAULT_STORE, metavar="FILE")
    parser.add_argument("--restore", nargs="?", const=DEFAULT_STORE, metavar="FILE")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    spec = spec_at(root)
    if args.show:
        for line in show(root, spec):
            _out(line)
        return 0
    if args.store:
        return _store(root, spec, _file_arg(root, args.store))
    if args.restore:
        return _restore(root, spec, _file_arg(root, args.restore))
    try:
        pin(root, spec, args.fan)
    except OSError as err:
        where = _rel(root, Path(err.filename)) if err.filename else "?"
        _err(f"Error: cannot write {where}: {err.strerror}")
        return 1
    return 0


def _file_arg(root: Path, text: str) -> Path:
    """An absolute file argument is a board path; a relative one is relative to the cwd."""
    return sysfs.board_path(root, text) if text.startswith("/") else Path(text).absolute()
