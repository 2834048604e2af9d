"""nvpmodel: the conf file parser, output parsers for ``-q``/``-q --verbose``, and a runner.

Formats are from NVIDIA's conf headers and captured output (see
``shared/reference/jetson_interfaces.md`` section 2). Parsers are pure functions over text; the
:class:`Nvpmodel` runner is the only part that starts a process.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.errors import CommandError, HardwareError, RebootRequired, SysfsError
from edge_agent.hardware import commands
from edge_agent.hardware.commands import CommandResult
from edge_agent.hardware.root import Root

logger = logging.getLogger(__name__)

NVPMODEL_BIN = "usr/sbin/nvpmodel"
CONF_PATH = "etc/nvpmodel.conf"
STATUS_PATH = "var/lib/nvpmodel/status"
PARAM_TYPES = frozenset({"FILE", "CLOCK", "HWMON"})
# Modes whose GPU power-gating masks differ cannot switch live (NVIDIA's nvpmodel_indicator
# and jtop compare TPC_POWER_GATING; Orin adds FBP_POWER_GATING).
POWER_GATING_PARAMS = ("TPC_POWER_GATING", "FBP_POWER_GATING")
# Output that means nvpmodel wanted to reboot, or asked and got no answer on stdin.
REBOOT_MARKERS = ("Reboot required", "DO YOU WANT TO REBOOT", "bad input!", "optMask")
_HEADER = re.compile(r"^<\s*(.*?)\s*>$")
_MODE_LINE = re.compile(r"NV Power Mode:\s*(\S.*?)\s*$")
_VERBOSE_PARAM = re.compile(
    r"PARAM\s+(\S+?):\s*ARG\s+(\S+?):\s*PATH\s+(\S+?):\s*REAL_VAL:\s*(\S+)\s+CONF_VAL:\s*(\S+)"
)
_STATUS = re.compile(r"pmode:\s*(\w+)")


@dataclass(frozen=True, slots=True)
class NvpParam:
    """One ``< PARAM TYPE=.. NAME=.. >`` section: ARG name -> board path.

    HWMON args (``WARN <hwmon dir> curr1_max``) are joined with ``/`` into one path.
    """

    name: str
    type: str
    args: dict[str, str]


@dataclass(frozen=True, slots=True)
class NvpSetting:
    """One ``PARAM ARG VALUE`` line of a power model; the value is kept as written (``-1``)."""

    param: str
    arg: str
    value: str


@dataclass(frozen=True, slots=True)
class NvpMode:
    """One ``< POWER_MODEL ID=n NAME=s >`` section."""

    id: int
    name: str
    settings: tuple[NvpSetting, ...]

    def value(self, param: str, arg: str) -> str | None:
        """The value this mode sets for ``param``/``arg``, or None when it leaves it alone."""
        for setting in self.settings:
            if setting.param == param and setting.arg == arg:
                return setting.value
        return None

    def int_value(self, param: str, arg: str) -> int | None:
        """Like :meth:`value` as an int (``-1`` stays ``-1``, meaning "no limit")."""
        text = self.value(param, arg)
        if text is None:
            return None
        try:
            return int(text)
        except ValueError as err:
            message = f"mode {self.name}: {param} {arg} is not an integer: {text!r}"
            raise HardwareError(message) from err


@dataclass(frozen=True, slots=True)
class NvpConf:
    """A parsed ``nvpmodel.conf``."""

    params: dict[str, NvpParam]
    modes: tuple[NvpMode, ...]
    default_id: int
    fan_default: str | None = None

    def mode_by_name(self, name: str) -> NvpMode | None:
        """The mode called ``name`` (exact match), or None."""
        return next((m for m in self.modes if m.name == name), None)

    def mode_by_id(self, mode_id: int) -> NvpMode | None:
        """The mode with ``ID=mode_id``, or None."""
        return next((m for m in self.modes if m.id == mode_id), None)

    @property
    def default_mode(self) -> NvpMode:
        """The ``PM_CONFIG DEFAULT`` mode (parse_conf guarantees it exists)."""
        mode = self.mode_by_id(self.default_id)
        assert mode is not None
        return mode


@dataclass
class _Section:
    kind: str
    attrs: dict[str, str]
    line_no: int
    args: dict[str, str] = field(default_factory=dict)
    settings: list[NvpSetting] = field(default_factory=list)


def _bad(line_no: int, message: str, line: str = "") -> HardwareError:
    suffix = f": {line.strip()!r}" if line else ""
    return HardwareError(f"nvpmodel.conf line {line_no}: {message}{suffix}")


def _parse_header(line_no: int, line: str, inner: str) -> _Section:
    tokens = inner.split()
    if not tokens:
        raise _bad(line_no, "empty section header", line)
    attrs: dict[str, str] = {}
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep or not key or not value:
            raise _bad(line_no, f"expected KEY=VALUE in header, got {token!r}", line)
        attrs[key.upper()] = value
    return _Section(tokens[0].upper(), attrs, line_no)


def _require(section: _Section, key: str, line: str) -> str:
    value = section.attrs.get(key)
    if value is None:
        raise _bad(section.line_no, f"{section.kind} header needs {key}=", line)
    return value


def _header_int(section: _Section, key: str, line: str) -> int:
    text = _require(section, key, line)
    try:
        return int(text)
    except ValueError as err:
        raise _bad(section.line_no, f"{key} must be an integer, got {text!r}", line) from err


def parse_conf(text: str) -> NvpConf:
    """Parse an ``nvpmodel.conf`` (PARAM form, L4T 28.2 and later).

    Raises:
        HardwareError: malformed input, naming the line number.
    """
    params: dict[str, NvpParam] = {}
    modes: list[NvpMode] = []
    default_id: int | None = None
    fan_default: str | None = None
    section: _Section | None = None

    def close(sec: _Section | None) -> None:
        if sec is not None and sec.kind == "PARAM":
            params[sec.attrs["NAME"]] = NvpParam(sec.attrs["NAME"], sec.attrs["TYPE"], sec.args)
        elif sec is not None and sec.kind == "POWER_MODEL":
            modes.append(NvpMode(int(sec.attrs["ID"]), sec.attrs["NAME"], tuple(sec.settings)))

    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        header = _HEADER.match(line)
        if header:
            close(section)
            section = _parse_header(line_no, raw, header.group(1))
            if section.kind == "PARAM":
                ptype = section.attrs["TYPE"] = _require(section, "TYPE", raw).upper()
                if ptype not in PARAM_TYPES:
                    raise _bad(line_no, f"unknown PARAM TYPE={ptype}", raw)
                _require(section, "NAME", raw)
            elif section.kind == "POWER_MODEL":
                mode_id = _header_int(section, "ID", raw)
                if any(m.id == mode_id for m in modes):
                    raise _bad(line_no, f"duplicate POWER_MODEL ID={mode_id}", raw)
                _require(section, "NAME", raw)
            elif section.kind == "PM_CONFIG":
                default_id = _header_int(section, "DEFAULT", raw)
            elif section.kind == "FAN_CONFIG":
                fan_default = _require(section, "DEFAULT", raw)
            else:
                # Newer releases may add sections we do not use; their bodies are skipped.
                logger.debug("nvpmodel.conf line %d: skipping section %s", line_no, section.kind)
            continue
        tokens = line.split()
        if section is None:
            raise _bad(line_no, "content before the first < ... > section header", raw)
        if section.kind == "PARAM":
            hwmon = section.attrs["TYPE"] == "HWMON"
            if len(tokens) != (3 if hwmon else 2):
                form = "ARG <hwmon dir> <file>" if hwmon else "ARG /path"
                raise _bad(line_no, f"expected {form}", raw)
            section.args[tokens[0]] = "/".join(tokens[1:])
        elif section.kind == "POWER_MODEL":
            if len(tokens) != 3:
                raise _bad(line_no, "expected PARAM ARG VALUE", raw)
            param = params.get(tokens[0])
            if param is None:
                raise _bad(line_no, f"PARAM {tokens[0]} is not defined above", raw)
            if tokens[1] not in param.args:
                raise _bad(line_no, f"PARAM {tokens[0]} has no ARG {tokens[1]}", raw)
            section.settings.append(NvpSetting(tokens[0], tokens[1], tokens[2]))
        elif section.kind in ("PM_CONFIG", "FAN_CONFIG"):
            raise _bad(line_no, f"unexpected line inside {section.kind}", raw)
    close(section)
    if not modes:
        raise HardwareError("nvpmodel.conf: no POWER_MODEL section")
    if default_id is None:
        raise HardwareError("nvpmodel.conf: missing mandatory < PM_CONFIG DEFAULT=n >")
    if not any(m.id == default_id for m in modes):
        raise HardwareError(f"nvpmodel.conf: PM_CONFIG DEFAULT={default_id} is not a defined mode")
    return NvpConf(params, tuple(modes), default_id, fan_default)


def needs_reboot(conf: NvpConf, from_id: int, to_id: int) -> bool:
    """Whether switching modes changes a GPU power-gating mask, which nvpmodel only does at boot.

    Raises:
        HardwareError: either id is not a mode of ``conf``.
    """
    modes = []
    for mode_id in (from_id, to_id):
        mode = conf.mode_by_id(mode_id)
        if mode is None:
            raise HardwareError(f"nvpmodel.conf has no mode with ID={mode_id}")
        modes.append(mode)
    for name in POWER_GATING_PARAMS:
        param = conf.params.get(name)
        if param is None:
            continue
        for arg in param.args:
            if modes[0].value(name, arg) != modes[1].value(name, arg):
                return True
    return False


@dataclass(frozen=True, slots=True)
class NvpQuery:
    """What ``nvpmodel -q`` reported: the mode and any warning lines printed with it."""

    name: str
    id: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NvpVerboseParam:
    """One ``NVPM VERB: PARAM ..: ARG ..: PATH ..: REAL_VAL: .. CONF_VAL: ..`` line."""

    param: str
    arg: str
    path: str
    real_value: str
    conf_value: str


def parse_query(stdout: str, argv: list[str] | None = None) -> NvpQuery:
    """Parse ``nvpmodel -q`` output (a fan warning line may come first).

    Raises:
        CommandError: no ``NV Power Mode`` line, or no integer id after it, quoting the output.
    """
    argv = argv or ["nvpmodel", "-q"]
    lines = [line.strip() for line in stdout.splitlines()]
    for index, line in enumerate(lines):
        match = _MODE_LINE.search(line)
        if match is None:
            continue
        rest = [ln for ln in lines[index + 1 :] if ln]
        if not rest or not re.fullmatch(r"-?\d+", rest[0]):
            raise CommandError(argv, "no integer mode id after the NV Power Mode line", stdout)
        warnings = tuple(
            ln
            for i, ln in enumerate(lines)
            if ln and i != index and ln != rest[0] and not ln.startswith("NVPM VERB")
        )
        return NvpQuery(match.group(1), int(rest[0]), warnings)
    # jtop crashed here (jetson_stats#567); report it instead.
    raise CommandError(argv, "no 'NV Power Mode' line in the output", stdout)


def parse_query_verbose(stdout: str) -> tuple[NvpQuery, list[NvpVerboseParam]]:
    """Parse ``nvpmodel -q --verbose``: the mode, then one entry per PARAM line.

    Raises:
        CommandError: the mode line or id is missing.
    """
    query = parse_query(stdout, ["nvpmodel", "-q", "--verbose"])
    rows = [
        NvpVerboseParam(*m.groups())
        for m in (_VERBOSE_PARAM.search(line) for line in stdout.splitlines())
        if m is not None
    ]
    return query, rows


def parse_status(text: str) -> int:
    """Parse ``/var/lib/nvpmodel/status`` (``pmode:0002 fmode:fan_mode_quiet`` -> 2).

    Raises:
        HardwareError: no integer ``pmode:`` field.
    """
    match = _STATUS.search(text)
    if match is None or not match.group(1).isdigit():
        raise HardwareError(f"nvpmodel status: no pmode in {text.strip()!r}")
    return int(match.group(1))


class Nvpmodel:
    """Runs ``<root>/usr/sbin/nvpmodel`` and reads its conf and status files."""

    def __init__(self, root: Root, timeout_s: float = 10.0) -> None:
        self.root = root
        self.timeout_s = timeout_s

    def available(self) -> bool:
        """Whether the nvpmodel binary exists under the root."""
        return self.root.binary(NVPMODEL_BIN) is not None

    def _binary(self) -> Path:
        path = self.root.binary(NVPMODEL_BIN)
        if path is None:
            raise CommandError(["nvpmodel"], f"not found at {self.root.display(NVPMODEL_BIN)}")
        return path

    def conf_path(self) -> Path:
        """The conf file, following the ``/etc/nvpmodel.conf`` symlink inside the root.

        An absolute link target (``/etc/nvpmodel/nvpmodel_t186.conf``) is a board path, so it is
        resolved under the root rather than on the host.
        """
        path = self.root.resolve(CONF_PATH)
        for _ in range(8):
            if not path.is_symlink():
                return path
            target = path.readlink()
            path = self.root.resolve(target) if target.is_absolute() else path.parent / target
        raise SysfsError(self.root.display(CONF_PATH), "too many levels of symlinks")

    def load_conf(self) -> NvpConf:
        """Read and parse the conf file.

        Raises:
            SysfsError: it cannot be read. HardwareError: it does not parse.
        """
        path = self.conf_path()
        try:
            return parse_conf(self.root.read_text(path))
        except SysfsError:
            raise
        except HardwareError as err:
            raise HardwareError(f"{path}: {err}") from err

    def read_status(self) -> int | None:
        """The mode id stored in ``/var/lib/nvpmodel/status``, or None when the file is absent."""
        if not self.root.exists(STATUS_PATH):
            return None
        return parse_status(self.root.read_text(STATUS_PATH))

    def _checked(self, *args: str) -> tuple[list[str], str]:
        argv = [str(self._binary()), *args]
        result = commands.run(argv, timeout_s=self.timeout_s)
        if result.returncode != 0:
            raise CommandError(argv, f"exited {result.returncode}", result.output)
        return argv, result.stdout + result.stderr

    def query(self) -> NvpQuery:
        """Run ``nvpmodel -q``."""
        argv, output = self._checked("-q")
        return parse_query(output, argv)

    def query_verbose(self) -> tuple[NvpQuery, list[NvpVerboseParam]]:
        """Run ``nvpmodel -q --verbose``."""
        return parse_query_verbose(self._checked("-q", "--verbose")[1])

    def set_mode(self, mode_id: int, allow_reboot: bool = False) -> CommandResult:
        """Run ``nvpmodel -m <mode_id>``.

        stdin is ``/dev/null``, so a mode that needs a reboot makes nvpmodel fail on its prompt;
        with ``allow_reboot`` it is answered ``YES`` and the board reboots.

        Raises:
            RebootRequired: the mode needs a reboot and ``allow_reboot`` is False.
            CommandError: nvpmodel exited non-zero or ignored the request.
            CommandTimeout: it ran past the timeout.
        """
        argv = [str(self._binary()), "-m", str(mode_id)]
        result = commands.run(
            argv, timeout_s=self.timeout_s, input_text="YES\n" if allow_reboot else None
        )
        output = result.output
        if not allow_reboot and any(marker in output for marker in REBOOT_MARKERS):
            raise RebootRequired(
                f"nvpmodel -m {mode_id}: reboot required to change to this power mode; "
                f"nothing was changed\n--- output ---\n{output}"
            )
        if result.returncode != 0:
            raise CommandError(argv, f"exited {result.returncode}", output)
        if "ignoring request" in output:
            raise CommandError(argv, "nvpmodel ignored the request", output)
        logger.info("nvpmodel mode set to %d", mode_id)
        return result
