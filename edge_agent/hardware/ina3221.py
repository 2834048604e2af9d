"""INA3221 (legacy iio and hwmon) and INA238 (Jetson Thor) power monitors.

Discovery (:mod:`edge_agent.hardware.ina_discovery`) follows jtop; the value files are held
open between passes (:mod:`edge_agent.hardware.ina_files`).

The board total is the input rail (``VDD_IN``, ``POM_5V_IN``, Thor's ``VIN``) where one
exists; it is listed as a rail but never added to a sum. Without one (AGX Orin) the total is
the sum of the connected rails and is named ``"sum of rails"``.

Where the iio driver offers ``ui_input_N`` (``"<mV> <mA>"`` from one conversion), power is
their product: the INA3221 has no power register, so the driver's ``in_powerN_input`` is
the same product computed from a later conversion, and reading it would double the I2C
traffic of a pass.

:meth:`InaMonitor.sample` is the sampler's hot path: one ``pread`` per value file, parsed in
one go, kept raw until someone asks for it (:meth:`InaMonitor.decode`). Anything unusual (a
half-written value, a vanished file, an offline rail) falls back to the full pass of
:meth:`InaMonitor.read`, which attributes the problem to its rail.
"""

from __future__ import annotations

import logging
import operator
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edge_agent.clock import Clock
from edge_agent.errors import HardwareError, SysfsError
from edge_agent.hardware.base import (
    SUM_OF_RAILS,
    PowerReading,
    RailReading,
    RawSample,
    gpu_rail_name,
)
from edge_agent.hardware.ina_discovery import InaChannel, discover, parse_limit_ma
from edge_agent.hardware.ina_files import HeldFiles, close_all
from edge_agent.hardware.root import Root

logger = logging.getLogger(__name__)

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN", "VIN")
"""Input rails that measure the whole board, in order of preference."""


class _Skipped(Exception):
    """A value that was empty or half written: skip this rail for one pass."""


def _number(data: bytes, path: str) -> float:
    try:
        return float(int(data.split()[0]))
    except (ValueError, IndexError) as err:
        raise _Skipped(path) from err


def _pair(data: bytes, path: str) -> tuple[float, float]:
    """``ui_input_N`` (iio): ``"<mV> <mA>"`` from one conversion, one read instead of two."""
    parts = data.split()
    try:
        return float(int(parts[0])), float(int(parts[1]))
    except (ValueError, IndexError) as err:
        raise _Skipped(path) from err


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where one rail's numbers sit in a raw pass: token indexes (``power`` -1: computed)."""

    channel: InaChannel
    voltage: int
    current: int
    power: int


def _plan(channels: Sequence[InaChannel]) -> tuple[list[str], list[_Slot], int]:
    """The files a full pass reads, in order, where each rail's tokens land, how many."""
    paths: list[str] = []
    slots: list[_Slot] = []
    tokens = 0
    for ch in channels:
        if ch.pair_path is not None:
            paths.append(ch.pair_path)
            slots.append(_Slot(ch, tokens, tokens + 1, -1))
            tokens += 2
            continue
        paths += [ch.voltage_path, ch.current_path]
        power = -1
        if ch.power_path is not None:
            paths.append(ch.power_path)
            power = tokens + 2
        slots.append(_Slot(ch, tokens, tokens + 1, power))
        tokens += 3 if power >= 0 else 2
    return paths, slots, tokens


Limits = tuple[tuple[float | None, float | None], ...]
"""Each rail's (warn_ma, crit_ma), in channel order."""


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
        self._limits: Limits = tuple((None, None) for _ in self._channels)
        self._thresholds: list[float] = [float("inf")] * len(self._channels)
        self._limits_due = float("-inf")
        self._offline: set[str] = set()
        self.skipped_reads = 0
        paths, self._slots, self._tokens = _plan(self._channels)
        self._currents = _getter([s.current for s in self._slots])
        self._files = HeldFiles(paths)
        # read() and close() may run on different threads (a shutdown whose sampler join
        # timed out): a descriptor closed under a read could be reused by another file.
        self._fds_lock = threading.Lock()
        # Descriptors are plain ints: close them when a monitor nobody closed is collected.
        self._release = weakref.finalize(self, close_all, self._files.fds)

    def rail_names(self) -> list[str]:
        """The connected rails, in discovery order."""
        return [ch.name for ch in self._channels]

    def close(self) -> None:
        """Close the value files held open between reads (a later read reopens them)."""
        with self._fds_lock:
            self._files.close()

    def limits(self) -> dict[str, tuple[float | None, float | None]]:
        """Each rail's (warn_ma, crit_ma), read now."""
        with self._fds_lock:  # a pass must not pair these limits with older thresholds
            self._refresh_limits(self._clock.monotonic(), force=True)
        return {ch.name: lim for ch, lim in zip(self._channels, self._limits, strict=True)}

    def _refresh_limits(self, now: float, *, force: bool = False) -> None:
        if now < self._limits_due and not force:
            return
        self._limits_due = now + self._limits_refresh_s
        self._limits = tuple(
            (self._read_limit(ch.warn_path), self._read_limit(ch.crit_path))
            for ch in self._channels
        )
        # The lowest limit a rail can cross: below it on every rail, a pass needs no check.
        self._thresholds = [
            min((x for x in pair if x is not None and x > 0), default=float("inf"))
            for pair in self._limits
        ]

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
            raw = self._sample_locked()
            return self.decode(raw) if raw is not None else self._read_locked()

    def sample(self) -> RawSample | None:
        """The sampler's hot path: one pass kept raw, or None when only :meth:`read` will do.

        None means something needs the full pass: a value half written or unparsable, a
        file gone, a rail offline (whose recovery :meth:`read` logs), or no monitor at all.
        """
        if not self.available:
            return None
        with self._fds_lock:
            return self._sample_locked()

    def _sample_locked(self) -> RawSample | None:
        start = self._clock.monotonic()
        if start >= self._limits_due:
            self._refresh_limits(start)
        if self._offline:
            return None
        try:
            values = list(map(int, b" ".join(self._files.read_all()).split()))
        except (OSError, ValueError):
            return None
        if len(values) != self._tokens:
            return None
        near_limit = any(map(operator.ge, self._currents(values), self._thresholds))
        return RawSample(
            (start + self._clock.monotonic()) / 2.0, (values, self._limits), near_limit
        )

    def decode(self, raw: RawSample) -> PowerReading:
        """The reading a :meth:`sample` stands for, stamped with the sample's time."""
        values, limits = raw.data
        rails = [
            self._rail(slot, values, limit) for slot, limit in zip(self._slots, limits, strict=True)
        ]
        return self._reading(raw.t_s, rails, (), offline=())

    @staticmethod
    def _rail(
        slot: _Slot, values: list[int], limit: tuple[float | None, float | None]
    ) -> RailReading:
        power = float(values[slot.power]) if slot.power >= 0 else None
        return _rail_reading(
            slot.channel, float(values[slot.voltage]), float(values[slot.current]), power, limit
        )

    def _read_locked(self) -> PowerReading:
        """The full pass: each rail read on its own, so a failure is attributed to its rail."""
        start = self._clock.monotonic()
        self._refresh_limits(start)
        self._files.refresh()
        rails: list[RailReading] = []
        skipped: list[str] = []
        read = self._files.read
        for ch, limit in zip(self._channels, self._limits, strict=True):
            try:
                power: float | None = None
                if ch.pair_path is not None:
                    voltage_mv, current_ma = _pair(read(ch.pair_path), ch.pair_path)
                else:
                    voltage_mv = _number(read(ch.voltage_path), ch.voltage_path)
                    current_ma = _number(read(ch.current_path), ch.current_path)
                    if ch.power_path is not None:
                        power = _number(read(ch.power_path), ch.power_path)
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
            rails.append(_rail_reading(ch, voltage_mv, current_ma, power, limit))
        stamp = (start + self._clock.monotonic()) / 2.0
        return self._reading(stamp, rails, skipped, offline=tuple(sorted(self._offline)))

    def _reading(
        self,
        t_s: float,
        rails: list[RailReading],
        skipped: Sequence[str],
        *,
        offline: tuple[str, ...],
    ) -> PowerReading:
        return PowerReading(
            t_s=t_s,
            rails=tuple(rails),
            total_name=self.total_rail or SUM_OF_RAILS,
            total_mw=self._total(rails, skipped),
            total_is_sum=self.total_rail is None,
            gpu_rail=self.gpu_rail,
            offline=offline,
        )

    def _total(self, rails: list[RailReading], skipped: Sequence[str]) -> float | None:
        if self.total_rail is not None:
            found = next((r for r in rails if r.name == self.total_rail), None)
            return None if found is None else found.power_mw
        if skipped or not rails:
            # A sum missing a half-written rail would show a false dip; offline rails are
            # excluded instead (logged once when they went away).
            return None
        return sum(r.power_mw for r in rails)


def _rail_reading(
    ch: InaChannel,
    voltage_mv: float,
    current_ma: float,
    power: float | None,
    limit: tuple[float | None, float | None],
) -> RailReading:
    """One rail: ``power`` is the power file's raw value, or None to use mV x mA."""
    power_mw = power * ch.power_to_mw if power is not None else voltage_mv * current_ma / 1000.0
    return RailReading(ch.name, power_mw, voltage_mv, current_ma, *limit)


def _getter(indexes: list[int]) -> Callable[[list[int]], tuple[int, ...]]:
    """``values -> tuple(values[i] for i in indexes)``, at C speed where it can be.

    ``itemgetter`` of a single index returns the bare item, not a 1-tuple.
    """
    if len(indexes) > 1:
        return operator.itemgetter(*indexes)
    return lambda values: tuple(values[i] for i in indexes)
