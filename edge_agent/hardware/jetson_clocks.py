"""jetson_clocks: the ``--show`` parser, a runner for ``--store``/``--restore``/pin, and whether
it is pinning the clocks, read from what it leaves in sysfs.

Output formats are from ``shared/reference/jetson_interfaces.md`` section 3 (TX2 one-space and
Orin two-space CPU lines).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from edge_agent.errors import CommandError, HardwareError, SysfsError
from edge_agent.hardware import clocks, commands
from edge_agent.hardware.commands import CommandResult
from edge_agent.hardware.root import Root

logger = logging.getLogger(__name__)

JETSON_CLOCKS_BIN = "usr/bin/jetson_clocks"
CPU_DIR = "sys/devices/system/cpu"
# jetson_clocks writes 1 here on t186/t194/t234 (shared/reference/jetson_interfaces.md s. 3).
EMC_RATE_LOCKED = "sys/kernel/debug/bpmp/debug/clk/emc/mrq_rate_locked"
_SOC = re.compile(r"^SOC family:\s*(\S+)(?:\s+Machine:\s*(.*?))?\s*$")
_CPU = re.compile(r"^cpu(\d+):\s+(.*)$")
_CLOCK = re.compile(r"^(GPU|EMC)\s+(\S+=.*)$")
_KEY_VALUE = re.compile(r"(\w+)=(\S+)")


@dataclass(frozen=True, slots=True)
class ShowCpu:
    """One ``cpuN: Online=1 Governor=.. MinFreq=.. MaxFreq=.. CurrentFreq=..`` line (kHz)."""

    index: int
    online: bool
    governor: str | None
    min_khz: int | None
    max_khz: int | None
    cur_khz: int | None


@dataclass(frozen=True, slots=True)
class ShowClock:
    """A ``GPU``/``EMC`` line (Hz)."""

    min_hz: int | None
    max_hz: int | None
    cur_hz: int | None


@dataclass(frozen=True, slots=True)
class JetsonClocksShow:
    """Parsed ``jetson_clocks --show``; ``extra`` holds lines we do not interpret."""

    soc_family: str | None
    machine: str | None
    online_cpus: tuple[int, ...]
    cpus: tuple[ShowCpu, ...]
    gpu: ShowClock | None
    emc: ShowClock | None
    power_mode: str | None
    active_gpu_tpcs: int | None
    extra: tuple[str, ...]


def _to_int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def parse_show(text: str) -> JetsonClocksShow:
    """Parse ``jetson_clocks --show`` output.

    Raises:
        CommandError: no CPU, GPU or EMC line was found, quoting the output.
    """
    soc: str | None = None
    machine: str | None = None
    online: tuple[int, ...] = ()
    cpus: list[ShowCpu] = []
    gpu: ShowClock | None = None
    emc: ShowClock | None = None
    mode: str | None = None
    tpcs: int | None = None
    extra: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if m := _SOC.match(line):
            soc, machine = m.group(1), m.group(2) or None
        elif line.startswith("Online CPUs:"):
            online = clocks.parse_cpu_range(line.split(":", 1)[1])
        elif m := _CPU.match(line):
            values = dict(_KEY_VALUE.findall(m.group(2)))
            cpus.append(
                ShowCpu(
                    index=int(m.group(1)),
                    online=values.get("Online", "1") == "1",
                    governor=values.get("Governor"),
                    min_khz=_to_int(values.get("MinFreq")),
                    max_khz=_to_int(values.get("MaxFreq")),
                    cur_khz=_to_int(values.get("CurrentFreq")),
                )
            )
        elif m := _CLOCK.match(line):
            values = dict(_KEY_VALUE.findall(m.group(2)))
            clock = ShowClock(
                _to_int(values.get("MinFreq")),
                _to_int(values.get("MaxFreq")),
                _to_int(values.get("CurrentFreq")),
            )
            if m.group(1) == "GPU":
                gpu = clock
            else:
                emc = clock
        elif line.startswith("NV Power Mode:"):
            mode = line.split(":", 1)[1].strip() or None
        elif line.startswith("Active GPU TPCs:"):
            tpcs = _to_int(line.split(":", 1)[1])
        else:
            extra.append(line)
    if not cpus and gpu is None and emc is None:
        raise CommandError(["jetson_clocks", "--show"], "no CPU, GPU or EMC line in output", text)
    return JetsonClocksShow(soc, machine, online, tuple(cpus), gpu, emc, mode, tpcs, tuple(extra))


def _min_equals_max(root: Root) -> bool:
    """jtop's rule: min == max for every online CPU and the GPU (False when nothing was read)."""
    checked = 0
    for cpu in clocks.list_cpus(root):
        if not cpu.online or cpu.min_khz is None or cpu.max_khz is None:
            continue
        if cpu.min_khz != cpu.max_khz:
            return False
        checked += 1
    dev = clocks.find_gpu_devfreq(root)
    if dev is not None:
        gpu = clocks.read_gpu(root, dev)
        if gpu.min_hz != gpu.max_hz:
            return False
        checked += 1
    return checked > 0


def _idle_states_disabled(root: Root) -> bool | None:
    """Whether jetson_clocks' idle-state disables are in place on every online CPU.

    The first state (WFI/C1) is skipped: it saves nothing and some kernels keep it. None when
    no online CPU has a deeper state to look at.
    """
    seen = False
    for cpu in clocks.list_cpus(root):
        if not cpu.online:
            continue
        for state in root.glob(f"{CPU_DIR}/cpu{cpu.index}/cpuidle/state*"):
            if state.name == "state0":
                continue
            try:
                disabled = root.read_int(state / "disable") == 1
            except SysfsError:
                continue
            if not disabled:
                return False
            seen = True
    return True if seen else None


def _emc_override(root: Root) -> bool | None:
    """Whether the EMC rate is locked (debugfs, root only); None when it cannot be read."""
    try:
        return root.read_int(EMC_RATE_LOCKED) == 1
    except SysfsError:
        return None


def is_active(root: Root) -> bool:
    """Whether jetson_clocks is pinning the clocks, judged by what it leaves behind.

    min == max on the online CPUs and the GPU (jtop's rule) is not enough: a profile whose caps
    equal the lowest table entries leaves the same. jetson_clocks also disables the CPU idle
    states and locks the EMC rate (``mrq_rate_locked``); at least one of those marks must be
    readable and every readable one set. False when nothing could be read, so the agent never
    runs jetson_clocks on a guess.
    """
    if not _min_equals_max(root):
        return False
    readable = (_idle_states_disabled(root), _emc_override(root))
    marks = [mark for mark in readable if mark is not None]
    return bool(marks) and all(marks)


class JetsonClocks:
    """Runs ``<root>/usr/bin/jetson_clocks``."""

    def __init__(self, root: Root, timeout_s: float = 10.0) -> None:
        self.root = root
        self.timeout_s = timeout_s

    def available(self) -> bool:
        """Whether the jetson_clocks binary exists under the root."""
        return self.root.binary(JETSON_CLOCKS_BIN) is not None

    def _run(self, *args: str) -> CommandResult:
        path = self.root.binary(JETSON_CLOCKS_BIN)
        if path is None:
            raise CommandError(
                ["jetson_clocks", *args], f"not found at {self.root.display(JETSON_CLOCKS_BIN)}"
            )
        argv = [str(path), *args]
        result = commands.run(argv, timeout_s=self.timeout_s)
        if result.returncode != 0:
            raise CommandError(argv, f"exited {result.returncode}", result.output)
        return result

    def show(self) -> JetsonClocksShow:
        """Run ``jetson_clocks --show``."""
        return parse_show(self._run("--show").stdout)

    def store(self, path: Path | str, overwrite: bool = False) -> CommandResult:
        """Run ``jetson_clocks --store <path>`` to save the current clock state.

        jetson_clocks appends to an existing file after a Y/N prompt; stdin is ``/dev/null``, so
        an existing file is removed first when ``overwrite`` is set, and refused otherwise.

        Raises:
            HardwareError: the file exists and ``overwrite`` is False.
        """
        target = Path(path)
        if target.exists():
            if not overwrite:
                raise HardwareError(f"{target}: jetson_clocks store file already exists")
            target.unlink()
        result = self._run("--store", str(target))
        logger.info("jetson_clocks state stored in %s", target)
        return result

    def restore(self, path: Path | str) -> CommandResult:
        """Run ``jetson_clocks --restore <path>``.

        Raises:
            HardwareError: the file does not exist.
        """
        target = Path(path)
        if not target.is_file():
            raise HardwareError(f"{target}: no jetson_clocks store file to restore")
        result = self._run("--restore", str(target))
        logger.info("jetson_clocks state restored from %s", target)
        return result

    def pin(self) -> CommandResult:
        """Run ``jetson_clocks`` with no arguments: pin clocks to the current mode's maxima."""
        result = self._run()
        logger.info("jetson_clocks pinned clocks to maximum")
        return result
