"""INA3221 (legacy iio and hwmon) and INA238 (Jetson Thor) power monitors.

Discovery follows jtop (``jtop/core/power.py``) but goes through a :class:`Root`: every
``sys/bus/i2c/devices/*`` whose ``name`` contains ``ina3221`` or ``ina238``, with either a
``hwmon/hwmonK`` child (K varies between boards and boots) or an ``iio:deviceN`` child.
``NC`` (not connected) channels and hwmon's ``in7`` "sum of shunt voltages" are skipped.

The board total is the input rail (``VDD_IN``, ``POM_5V_IN``, Thor's ``VIN``) where one
exists; it is listed as a rail but never added to a sum. Without one (AGX Orin) the total is
the sum of the connected rails and is named ``"sum of rails"``.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

from edge_agent.clock import Clock
from edge_agent.errors import HardwareError, SysfsError
from edge_agent.hardware.base import SUM_OF_RAILS, PowerReading, RailReading, gpu_rail_name
from edge_agent.hardware.root import Root

logger = logging.getLogger(__name__)

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN", "VIN")
"""Input rails that measure the whole board, in order of preference."""

_SHUNT_SUM_LABEL = "sum of shunt voltages"
_READ_BYTES = 64


@dataclass(frozen=True, slots=True)
class InaChannel:
    """The files of one connected rail (absolute paths under the root)."""

    name: str
    voltage_path: str
    current_path: str
    power_path: str | None
    power_to_mw: float
    warn_path: str | None
    crit_path: str | None
    pair_path: str | None = None


@dataclass(frozen=True, slots=True)
class InaDevice:
    """One monitor chip: ``chip`` ina3221/ina238, ``layout`` iio/hwmon, its board path."""

    chip: str
    layout: str
    path: str
    channels: tuple[InaChannel, ...]


def parse_limit_ma(text: str) -> float | None:
    """A current limit in mA from ``"32760 ma"`` (iio) or ``"7784"`` (hwmon); None if empty."""
    parts = text.split()
    if not parts:
        return None
    try:
        return float(int(parts[0]))
    except ValueError:
        return None


def _is_nc(label: str) -> bool:
    return label.strip().upper() in {"NC", "N/C", "N.C."}


def _read_label(root: Root, path: str | Path) -> str:
    try:
        return root.read_text(path)
    except SysfsError:
        return ""


def _file(root: Root, directory: str, name: str) -> str | None:
    path = root.resolve(f"{directory}/{name}")
    if not path.exists():
        return None
    # Opening the resolved path skips the kernel's walk through the i2c/devices symlink each
    # time a value file is (re)opened; a link that leaves the root is not followed.
    real = os.path.realpath(path)
    base = os.path.realpath(root.path)
    return real if real.startswith(base.rstrip(os.sep) + os.sep) else str(path)


def _hwmon_channels(root: Root, directory: str, chip: str) -> list[InaChannel]:
    channels: list[InaChannel] = []
    if chip == "ina238":
        # Thor carriers: one rail; in1 bus mV, curr1 mA, power1 in microwatts (Linux ina238.c).
        label_path = _file(root, directory, "in1_label")
        label = _read_label(root, label_path) if label_path else "VIN"
        volt = _file(root, directory, "in1_input")
        curr = _file(root, directory, "curr1_input")
        if volt and curr:
            channels.append(
                InaChannel(
                    name=label or "VIN",
                    voltage_path=volt,
                    current_path=curr,
                    power_path=_file(root, directory, "power1_input"),
                    power_to_mw=0.001,
                    warn_path=_file(root, directory, "curr1_max"),
                    crit_path=_file(root, directory, "curr1_crit"),
                )
            )
        return channels
    for label_file in root.glob(f"{directory.lstrip('/')}/in*_label"):
        index = label_file.name[2:].split("_")[0]
        if not index.isdigit() or index == "7":
            continue
        label = _read_label(root, label_file)
        if not label or _is_nc(label) or label.lower() == _SHUNT_SUM_LABEL:
            continue
        volt = _file(root, directory, f"in{index}_input")
        curr = _file(root, directory, f"curr{index}_input")
        if volt is None or curr is None:
            continue
        channels.append(
            InaChannel(
                name=label,
                voltage_path=volt,
                current_path=curr,
                power_path=None,  # hwmon ina3221 has no power file: mV * mA / 1000
                power_to_mw=1.0,
                warn_path=_file(root, directory, f"curr{index}_max"),
                crit_path=_file(root, directory, f"curr{index}_crit"),
            )
        )
    return sorted(channels, key=lambda ch: ch.voltage_path)


def _iio_channels(root: Root, directory: str) -> list[InaChannel]:
    channels: list[InaChannel] = []
    for name_file in root.glob(f"{directory.lstrip('/')}/rail_name_*"):
        index = name_file.name.rsplit("_", 1)[-1]
        if not index.isdigit():
            continue
        label = _read_label(root, name_file)
        if not label or _is_nc(label):
            continue
        volt = _file(root, directory, f"in_voltage{index}_input")
        curr = _file(root, directory, f"in_current{index}_input")
        if volt is None or curr is None:
            continue
        channels.append(
            InaChannel(
                name=label,
                voltage_path=volt,
                current_path=curr,
                power_path=_file(root, directory, f"in_power{index}_input"),
                power_to_mw=1.0,
                warn_path=_file(root, directory, f"warn_current_limit_{index}"),
                crit_path=_file(root, directory, f"crit_current_limit_{index}"),
                pair_path=_file(root, directory, f"ui_input_{index}"),
            )
        )
    return sorted(channels, key=lambda ch: ch.voltage_path)


def discover(root: Root) -> list[InaDevice]:
    """Every INA3221/INA238 under ``sys/bus/i2c/devices`` with its connected channels."""
    devices: list[InaDevice] = []
    for device in root.glob("sys/bus/i2c/devices/*"):
        board_path = root.relative(device)
        try:
            name = root.read_text(device / "name").lower()
        except SysfsError:
            continue
        chip = "ina238" if "ina238" in name else "ina3221" if "ina3221" in name else None
        if chip is None:
            continue
        hwmons = sorted((device / "hwmon").glob("hwmon*")) if (device / "hwmon").is_dir() else []
        iios = sorted(device.glob("iio:device*"))
        if hwmons:
            layout, directory = "hwmon", root.relative(hwmons[0])
            channels = _hwmon_channels(root, directory, chip)
        elif iios:
            layout, directory = "iio", root.relative(iios[0])
            channels = _iio_channels(root, directory)
        else:
            logger.debug("%s: %s has no hwmon or iio:device child", board_path, chip)
            continue
        if channels:
            devices.append(InaDevice(chip, layout, directory, tuple(channels)))
    return devices


class _Skipped(Exception):
    """A value that was empty or half written: skip this rail for one pass."""


def _read_raw(fds: dict[str, int], path: str) -> bytes:
    """Read a value file through a descriptor kept open between passes.

    ``pread`` at offset 0 makes sysfs call the driver's show() again, so a held descriptor
    reads a fresh value; fstat + pread cost ~1.6 us against ~4.3 us for open/read/close,
    which is most of the sampler's cost at 100 Hz. The simulator (and the test fakes) replace
    a file by rename: the held inode then has no link left and the path is opened again. Any
    error drops the descriptor, so a rail that comes back is reopened.

    Raises:
        OSError: the file is missing or unreadable, with ``path`` as its filename.
    """
    fd = fds.get(path)
    try:
        if fd is not None and os.fstat(fd).st_nlink == 0:
            del fds[path]
            os.close(fd)
            fd = None
        if fd is None:
            fd = fds[path] = os.open(path, os.O_RDONLY)
        return os.pread(fd, _READ_BYTES, 0)
    except OSError as err:
        if fd is not None:
            del fds[path]
            os.close(fd)
        if err.filename is not None:
            raise
        raise OSError(err.errno, err.strerror, path) from err


def _read_number(fds: dict[str, int], path: str) -> float:
    data = _read_raw(fds, path)
    try:
        return float(int(data.split()[0]))
    except (ValueError, IndexError) as err:
        raise _Skipped(path) from err


def _read_pair(fds: dict[str, int], path: str) -> tuple[float, float]:
    """``ui_input_N`` (iio): ``"<mV> <mA>"`` from one conversion, one read instead of two."""
    parts = _read_raw(fds, path).split()
    try:
        return float(int(parts[0])), float(int(parts[1]))
    except (ValueError, IndexError) as err:
        raise _Skipped(path) from err


def _close_all(fds: dict[str, int]) -> None:
    for fd in fds.values():
        os.close(fd)
    fds.clear()


class InaMonitor:
    """Reads INA3221/INA238 rails through a :class:`Root`.

    Args:
        root: the filesystem root.
        clock: stamps every reading with its monotonic time.
        source: the label reported (``ina3221``, or ``sim`` for a simulated board).
        limits_refresh_s: how often warn/crit limits are re-read (nvpmodel rewrites them).
    """

    def __init__(
        self, root: Root, clock: Clock, *, source: str = "ina3221", limits_refresh_s: float = 5.0
    ) -> None:
        self.root = root
        self._clock = clock
        self.devices = discover(root)
        self._channels = [ch for dev in self.devices for ch in dev.channels]
        names = [ch.name for ch in self._channels]
        self.total_rail = next((name for name in TOTAL_RAILS if name in names), None)
        self.gpu_rail = gpu_rail_name([n for n in names if n != self.total_rail])
        chips = sorted({dev.chip for dev in self.devices})
        self.source = source if source != "ina3221" or not chips else "/".join(chips)
        self.available = bool(self._channels)
        if self.available:
            where = ", ".join(f"{dev.path} ({dev.layout})" for dev in self.devices)
            total = self.total_rail or SUM_OF_RAILS
            self.reason = f"{len(names)} rails on {where}; total {total}"
        else:
            self.reason = f"no INA3221/INA238 monitor under {root.display('sys/bus/i2c/devices')}"
        self._limits_refresh_s = limits_refresh_s
        self._limits: dict[str, tuple[float | None, float | None]] = {}
        self._limits_at: float | None = None
        self._offline: set[str] = set()
        self.skipped_reads = 0
        self._fds: dict[str, int] = {}
        # read() and close() may run on different threads (a shutdown whose sampler join
        # timed out): a descriptor closed under a read could be reused by another file.
        self._fds_lock = threading.Lock()
        # Descriptors are plain ints: close them when a monitor nobody closed is collected.
        self._release = weakref.finalize(self, _close_all, self._fds)

    def rail_names(self) -> list[str]:
        """The connected rails, in discovery order."""
        return [ch.name for ch in self._channels]

    def close(self) -> None:
        """Close the value files held open between reads (a later read reopens them)."""
        with self._fds_lock:
            _close_all(self._fds)

    def limits(self) -> dict[str, tuple[float | None, float | None]]:
        """Each rail's (warn_ma, crit_ma), as last read."""
        self._refresh_limits(self._clock.monotonic(), force=True)
        return dict(self._limits)

    def _refresh_limits(self, now: float, *, force: bool = False) -> None:
        fresh = self._limits_at is not None and now - self._limits_at < self._limits_refresh_s
        if fresh and not force:
            return
        self._limits_at = now
        for ch in self._channels:
            self._limits[ch.name] = (self._read_limit(ch.warn_path), self._read_limit(ch.crit_path))

    def _read_limit(self, path: str | None) -> float | None:
        if path is None:
            return None
        try:
            return parse_limit_ma(self.root.read_text(path))
        except SysfsError:
            return None

    def read(self) -> PowerReading:
        """Read every rail once; a rail whose files vanish goes offline, the rest carry on.

        Raises:
            HardwareError: no monitor was found under the root.
        """
        if not self.available:
            raise HardwareError(self.reason)
        with self._fds_lock:
            return self._read_locked()

    def _read_locked(self) -> PowerReading:
        start = self._clock.monotonic()
        self._refresh_limits(start)
        rails: list[RailReading] = []
        skipped: list[str] = []
        fds = self._fds
        for ch in self._channels:
            try:
                if ch.pair_path is not None:
                    voltage_mv, current_ma = _read_pair(fds, ch.pair_path)
                else:
                    voltage_mv = _read_number(fds, ch.voltage_path)
                    current_ma = _read_number(fds, ch.current_path)
                if ch.power_path is not None:
                    power_mw = _read_number(fds, ch.power_path) * ch.power_to_mw
                else:
                    power_mw = voltage_mv * current_ma / 1000.0
            except _Skipped:
                self.skipped_reads += 1
                skipped.append(ch.name)
                continue
            except OSError as err:
                if ch.name not in self._offline:
                    self._offline.add(ch.name)
                    logger.warning("rail %s offline: %s (%s)", ch.name, err.strerror, err.filename)
                continue
            if ch.name in self._offline:
                self._offline.discard(ch.name)
                logger.info("rail %s back online", ch.name)
            warn_ma, crit_ma = self._limits.get(ch.name, (None, None))
            rails.append(RailReading(ch.name, power_mw, voltage_mv, current_ma, warn_ma, crit_ma))
        stamp = (start + self._clock.monotonic()) / 2.0
        return PowerReading(
            t_s=stamp,
            rails=tuple(rails),
            total_name=self.total_rail or SUM_OF_RAILS,
            total_mw=self._total(rails, skipped),
            total_is_sum=self.total_rail is None,
            gpu_rail=self.gpu_rail,
            offline=tuple(sorted(self._offline)),
        )

    def _total(self, rails: list[RailReading], skipped: list[str]) -> float | None:
        if self.total_rail is not None:
            found = next((r for r in rails if r.name == self.total_rail), None)
            return None if found is None else found.power_mw
        if skipped or not rails:
            # A sum missing a half-written rail would show a false dip; offline rails are
            # excluded instead (logged once when they went away).
            return None
        return sum(r.power_mw for r in rails)
