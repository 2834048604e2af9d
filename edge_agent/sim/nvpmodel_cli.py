"""The simulated ``nvpmodel`` CLI, run as ``<root>/usr/sbin/nvpmodel``.

Output formats follow NVIDIA's tool (``shared/reference/jetson_interfaces.md`` section 2.1):
``-q`` prints ``NV Power Mode: NAME`` and the id (after a fan warning on Xavier/Orin), ``-m N``
prints nothing on success, and a mode whose GPU power-gating mask differs asks the reboot
question on stdin. Writes go through :func:`edge_agent.sim.sysfs.write_attr`, so a read-only
file fails the way a sysfs write does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_agent.errors import HardwareError
from edge_agent.hardware.nvpmodel import POWER_GATING_PARAMS, NvpConf, NvpMode, NvpParam, parse_conf
from edge_agent.sim import sysfs
from edge_agent.sim.boards import BoardSpec
from edge_agent.sim.releases import spec_at

CONF = "/etc/nvpmodel.conf"
STATUS = "/var/lib/nvpmodel/status"
INT_MAX = 2147483647
INT64_MAX = 9223372036854775807
# Clock caps without a FREQ_TABLE (DLA, PVA) clamp to this; EMC clamps to the board's max rate.
ACCEL_MAX_HZ = 1600000000

USAGE = """\
Nvidia Power Model Tool Version 1.1.2 (edge-agent simulated board)
Usage:
    nvpmodel [-h | --help] [--verbose] [-q | --query] [-p | --parse] [-u | --udata <file>]
        [-w | --wait <sec>] [--boot] [-m | --mode <mode>] [-f | --conf <filename>]
        [-o | --os <android,l4t>]
"""


class ApplyError(Exception):
    """A write failed; carries the board path and the errno, as nvpmodel reports them."""

    def __init__(self, board_path: str, errno_value: int) -> None:
        super().__init__(f"Error opening {board_path}: {errno_value}")
        self.board_path = board_path
        self.errno_value = errno_value


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def resolve_arg(root: Path, param: NvpParam, arg: str) -> Path:
    """The file under ``root`` that ``param``/``arg`` names; HWMON args find ``hwmonK``."""
    path = param.args[arg]
    if param.type != "HWMON":
        return sysfs.board_path(root, path)
    directory, _, leaf = path.rpartition("/")
    matches = sorted(sysfs.board_path(root, directory).glob(f"hwmon*/{leaf}"))
    return matches[0] if matches else sysfs.board_path(root, path)


def clock_value(root: Path, spec: BoardSpec, param: NvpParam, arg: str, text: str) -> int:
    """The value nvpmodel writes for a CLOCK setting.

    nvpmodel rounds a cap to the nearest entry of the clock's table, for cpufreq as for devfreq
    (TX2: 2000000 -> 2035200 kHz, 850000000 -> 854250000 Hz; AGX Xavier: 1200000 -> 1190400
    kHz). ``-1`` (no cap) lands on the top entry; an EMC cap of ``-1`` reads back as the board's
    maximum rate (3199000000 on an Orin Nano, R36), while ``0`` stays 0.
    """
    value = int(text)
    table_arg = param.args.get("FREQ_TABLE")
    if table_arg is None:
        if "emc" in param.name.lower():
            if value in (-1, 0):
                return spec.emc.max_hz if value == -1 else 0
            return min(value, spec.emc.max_hz)
        return ACCEL_MAX_HZ if value == -1 else min(value, ACCEL_MAX_HZ)
    value = INT_MAX if value == -1 else value
    table = sorted(sysfs.read_ints(sysfs.board_path(root, table_arg)))
    if not table:
        return value
    return min(table, key=lambda f: (abs(f - value), f))


def apply_mode(root: Path, spec: BoardSpec, conf: NvpConf, mode: NvpMode) -> None:
    """Write every setting of ``mode`` into the tree, in conf order, then settle the clocks.

    Raises:
        ApplyError: a write failed (nothing after it is written, as with the real tool).
    """
    for setting in mode.settings:
        param = conf.params[setting.param]
        path = resolve_arg(root, param, setting.arg)
        value: str | int = setting.value
        if param.type == "CLOCK":
            value = clock_value(root, spec, param, setting.arg, setting.value)
        try:
            sysfs.write_attr(path, value)
        except OSError as err:
            raise ApplyError("/" + str(path.relative_to(root)), err.errno or 0) from err
    try:
        sysfs.settle(root, spec)
    except OSError as err:
        raise ApplyError(str(err.filename or "settle"), err.errno or 0) from err


def status_text(spec: BoardSpec, mode_id: int) -> str:
    """The one line of ``/var/lib/nvpmodel/status``."""
    if spec.fan_mode:
        return f"pmode:{mode_id:04d} fmode:fan_mode_{spec.fan_mode}\n"
    fan = " fmode:fanNull" if spec.fan_warning else ""
    return f"pmode:{mode_id:04d}{fan}\n"


def read_status(path: Path) -> int | None:
    text = sysfs.read_text(path)
    if not text.startswith("pmode:"):
        return None
    digits = text[len("pmode:") :].split()[0] if text[len("pmode:") :].split() else ""
    return int(digits) if digits.isdigit() else None


def needs_reboot(root: Path, conf: NvpConf, mode: NvpMode) -> bool:
    """Whether ``mode`` changes a GPU power-gating mask from what the tree holds now."""
    for name in POWER_GATING_PARAMS:
        param = conf.params.get(name)
        if param is None:
            continue
        for arg in param.args:
            wanted = mode.value(name, arg)
            if wanted is None:
                continue
            current = sysfs.read_text(resolve_arg(root, param, arg))
            if current.split()[:1] != [wanted]:
                return True
    return False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nvpmodel", add_help=False)
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("-q", "--query", action="store_true")
    parser.add_argument("-p", "--parse", action="store_true")
    parser.add_argument("-m", "--mode")
    parser.add_argument("-f", "--conf")
    parser.add_argument("-u", "--udata")
    parser.add_argument("-w", "--wait")
    parser.add_argument("-o", "--os")
    parser.add_argument("-d", "--fan")
    parser.add_argument("--boot", action="store_true")
    parser.add_argument("--force", action="store_true")
    return parser


def main(argv: list[str] | None, root: Path) -> int:
    """Run the simulated nvpmodel on the tree at ``root``; returns the exit status."""
    root = Path(root)
    args, extra = _parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.help or extra:
        if extra:
            _err(f"NVPM ERROR: unknown option {' '.join(extra)}")
        _out(USAGE.rstrip())
        return 0 if args.help and not extra else 1
    spec = spec_at(root)
    conf_board = args.conf or CONF
    status_path = sysfs.board_path(root, args.udata or STATUS)
    try:
        conf = parse_conf(_conf_file(root, conf_board).read_text(encoding="utf-8"))
    except (OSError, HardwareError) as err:
        _err(f"NVPM ERROR: failed to parse {conf_board}: {err}")
        return 1
    verb = args.verbose
    if verb and (args.query or args.parse or args.mode is not None):
        _out(f"NVPM VERB: Config file: {conf_board}")
        _out(f"NVPM VERB: parsing done for {conf_board}")
    if args.parse:
        if verb:
            _print_parsed(conf)
        return 0
    if args.mode is not None:
        return _set_mode(root, spec, conf, args.mode, status_path)
    if args.query:
        return _query(root, spec, conf, status_path, verb)
    if args.conf:  # -f alone: apply the stored mode, or the default (what the boot service runs)
        stored = read_status(status_path)
        mode = conf.mode_by_id(stored) if stored is not None else None
        return _apply(root, spec, conf, mode or conf.default_mode, status_path)
    _out(USAGE.rstrip())
    return 0


def _conf_file(root: Path, board_conf: str) -> Path:
    """Follow ``/etc/nvpmodel.conf`` inside the root: its link target is a board path."""
    path = sysfs.board_path(root, board_conf) if board_conf.startswith("/") else Path(board_conf)
    for _ in range(8):
        if not path.is_symlink():
            break
        target = path.readlink()
        path = sysfs.board_path(root, target) if target.is_absolute() else path.parent / target
    return path


def _current_mode(spec: BoardSpec, conf: NvpConf, status_path: Path) -> NvpMode:
    stored = read_status(status_path)
    mode = conf.mode_by_id(stored) if stored is not None else None
    return mode or conf.default_mode


def _query(root: Path, spec: BoardSpec, conf: NvpConf, status_path: Path, verbose: bool) -> int:
    mode = _current_mode(spec, conf, status_path)
    if not verbose:
        if spec.fan_mode:
            _out(f"NV Fan Mode:{spec.fan_mode}")
        _out(f"NV Power Mode: {mode.name}")
        _out(str(mode.id))
        return 0
    _out(f"NVPM VERB: Current mode: NV Power Mode: {mode.name}")
    _out(str(mode.id))
    big = INT64_MAX if spec.l4t[0] >= 36 else INT_MAX
    for setting in mode.settings:
        param = conf.params[setting.param]
        path = resolve_arg(root, param, setting.arg)
        real = (sysfs.read_text(path, "0").split() or ["0"])[0]
        if spec.l4t[0] == 35 and f"{setting.arg}_KNEXT" in param.args:
            # R35 reports the alternate (devfreq_dev) path; it names the same file.
            path = resolve_arg(root, param, f"{setting.arg}_KNEXT")
        conf_val = str(big) if param.type == "CLOCK" and setting.value == "-1" else setting.value
        _out(
            f"NVPM VERB: PARAM {param.name}: ARG {setting.arg}: PATH /{path.relative_to(root)}: "
            f"REAL_VAL: {real} CONF_VAL: {conf_val}"
        )
    return 0


def _print_parsed(conf: NvpConf) -> None:
    default = conf.default_mode
    _out(f"NVPM VERB: PM_CONFIG: DEFAULT={default.name}({default.id})")
    for param in conf.params.values():
        _out(f"NVPM VERB: PARAM TYPE={param.type} NAME={param.name}")
        for arg, path in param.args.items():
            if param.type == "HWMON":
                directory, _, leaf = path.rpartition("/")
                path = f"{directory} {leaf}"
            _out(f"NVPM VERB: {arg} {path}")
    _out("NVPM VERB: ")
    for mode in conf.modes:
        _out(f"NVPM VERB: POWER_MODEL: ID={mode.id} NAME={mode.name}")
        for s in mode.settings:
            shown = str(INT_MAX) if s.value == "-1" else s.value
            _out(f"NVPM VERB: {s.param} {s.arg} {shown}")
        _out("NVPM VERB: ")


def _set_mode(root: Path, spec: BoardSpec, conf: NvpConf, text: str, status_path: Path) -> int:
    mode = conf.mode_by_id(int(text)) if text.lstrip("-").isdigit() else None
    if mode is None:
        _err(f"NVPM ERROR: request for bad power mode {text}")
        return 1
    if needs_reboot(root, conf, mode):
        _out("NVPM WARN: Golden image context is already created")
        _out(f"NVPM WARN: Reboot required for changing to this power mode: {mode.id}")
        _out("NVPM WARN: DO YOU WANT TO REBOOT NOW? enter YES/yes to confirm:")
        sys.stdout.flush()
        answer = sys.stdin.readline() if sys.stdin is not None else ""
        if not answer:  # no stdin: the tool complains, then declines
            _err("NVPM ERROR: bad input!")
            _err("NVPM ERROR: optMask is 1, no request for power mode")
            return 1
        if answer.strip() not in ("YES", "yes"):
            _err("NVPM ERROR: optMask is 1, no request for power mode")
            return 1
        _out("NVPM WARN: rebooting")
        code = _apply(root, spec, conf, mode, status_path)
        counter = root / "sim/reboot_count"
        sysfs.put(counter, f"{sysfs.read_int(counter) + 1}\n")
        return code
    return _apply(root, spec, conf, mode, status_path)


def _apply(root: Path, spec: BoardSpec, conf: NvpConf, mode: NvpMode, status_path: Path) -> int:
    try:
        apply_mode(root, spec, conf, mode)
    except ApplyError as err:
        _err(f"NVPM ERROR: {err}")
        _err(f"NVPM ERROR: failed to set power mode {mode.id} ({mode.name})!")
        return 1
    try:
        sysfs.put(status_path, status_text(spec, mode.id))
    except OSError as err:
        _err(f"NVPM ERROR: Error opening /{status_path.relative_to(root)}: {err.errno}")
        return 1
    return 0
