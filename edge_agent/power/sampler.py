"""The power sampler: a thread that reads the monitor at a fixed interval into a ring buffer.

The logic lives in :meth:`Sampler.step`, tested directly with a FakeClock; the thread is a
shell around it. The buffer is bounded (``deque(maxlen)``: the oldest sample is dropped and
counted). Current limits are checked on every sample and reported as transitions: one
WARNING when a rail crosses its warn/crit limit, one INFO when it recovers, and a
:class:`LimitEvent` queued for telemetry.

At 100 Hz most of a pass's cost is fixed: waking the thread and touching cold code and data.
So with a monitor that has a raw hot path (:class:`RawSampling`, the INA3221 reader) the
thread stores each pass raw and builds its :class:`PowerReading` only when a query asks for
it, once, in a batch (the ledger's windows, ``latest()``). A pass is decoded at once only when
a rail is at or near a current limit, to check it.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import operator
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, cast

from edge_agent.clock import Clock
from edge_agent.errors import HardwareError
from edge_agent.hardware.base import PowerMonitor, PowerReading, RailReading, RawSampling

logger = logging.getLogger(__name__)

LEVELS = ("ok", "warn", "crit")
LATE_SUMMARY_S = 60.0  # falling behind is said once, then summarised at most this often

_Entry = list[Any]
"""A ring slot: ``[t_s, RawSample or None, PowerReading or None]`` (decoded on demand).

A list rather than a class: building one is the cheapest allocation a pass can make."""
_entry_time = operator.itemgetter(0)


@dataclass(frozen=True, slots=True)
class LimitEvent:
    """A rail crossed (or recovered from) its warn/crit current limit."""

    t_s: float
    rail: str
    level: str
    previous: str
    current_ma: float
    limit_ma: float | None
    recovered: bool

    def to_dict(self) -> dict[str, object]:
        """The telemetry form: ``{"type": "rail_limit", "rail", "level", ...}``."""
        return {
            "type": "rail_limit",
            "ts_mono": self.t_s,
            "rail": self.rail,
            "level": self.level,
            "previous": self.previous,
            "current_ma": self.current_ma,
            "limit_ma": self.limit_ma,
            "recovered": self.recovered,
        }


@dataclass(frozen=True, slots=True)
class SamplerStats:
    """Counters for telemetry."""

    samples: int
    buffered: int
    overwritten: int
    late: int
    read_errors: int
    events_dropped: int


class Sampler:
    """Samples a power monitor into a bounded ring buffer on its own thread.

    Args:
        monitor: an available power monitor.
        clock: the injected clock (deadlines and lag detection).
        interval_s: the sampling period (default 20 ms).
        capacity: how many samples the ring keeps; the oldest is dropped when full.
        behind_factor: a gap longer than this many intervals counts as falling behind.
        grace_s: gaps in the first seconds after the first sample are not counted (startup:
            imports, the first nvpmodel query).
        hysteresis: a rail recovers only below ``limit * (1 - hysteresis)``, so a current
            hovering at a limit does not flood the log.
        stop: an external stop event (the daemon's); a private one by default.
    """

    def __init__(
        self,
        monitor: PowerMonitor,
        clock: Clock,
        interval_s: float = 0.02,
        capacity: int = 6000,
        *,
        behind_factor: float = 2.0,
        grace_s: float = 1.0,
        hysteresis: float = 0.02,
        event_capacity: int = 256,
        stop: threading.Event | None = None,
        name: str = "power-sampler",
    ) -> None:
        if interval_s <= 0 or capacity < 2:
            raise ValueError("interval_s must be > 0 and capacity >= 2")
        self.monitor = monitor
        self.interval_s = interval_s
        self._clock = clock
        self._raw = monitor if isinstance(monitor, RawSampling) else None
        self._buffer: deque[_Entry] = deque(maxlen=capacity)
        self._events: deque[LimitEvent] = deque(maxlen=event_capacity)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._waiters = 0
        self._stop = stop if stop is not None else threading.Event()
        self._thread: threading.Thread | None = None
        self._name = name
        self._behind_factor = behind_factor
        self._grace_s = grace_s
        self._first_step: float | None = None
        self._hysteresis = hysteresis
        self._levels: dict[str, str] = {}
        self._all_ok = True
        self._last_step: float | None = None
        self._late_said_at: float | None = None  # when lateness was last logged
        self._late_said = 0  # ``_late`` at that moment
        self._late_worst_s = 0.0  # the longest gap since then
        self._warned_error = False
        self._samples = 0
        self._overwritten = 0
        self._late = 0
        self._read_errors = 0
        self._events_dropped = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the sampling thread."""
        if self._thread is not None:
            raise RuntimeError("sampler already started")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop; :meth:`join` waits for it."""
        self._stop.set()

    def join(self, timeout_s: float = 5.0) -> bool:
        """Wait for the thread to end; True when it has (or never started)."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        """True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        next_t = self._clock.monotonic()
        while not self._stop.wait(max(0.0, next_t - self._clock.monotonic())):
            now = self._clock.monotonic()
            self._take(now)
            next_t += self.interval_s
            if next_t < now:
                # Behind: resynchronise instead of firing a burst of catch-up samples.
                next_t = now + self.interval_s
        if self._late_said_at is not None:
            self._say_late(self._clock.monotonic(), self._late_said_at)

    # -- logic -----------------------------------------------------------------------------

    def step(self, now: float) -> PowerReading | None:
        """Take one sample at ``now``; returns it, or None when the monitor failed."""
        if not self._take(now):
            return None
        with self._lock:
            entry = self._buffer[-1]
        return self._decoded(entry)

    def _take(self, now: float) -> bool:
        """One pass of the thread; True when a sample went into the ring."""
        if self._first_step is None:
            self._first_step = now
        last, self._last_step = self._last_step, now
        if last is not None and now - last > self._behind_factor * self.interval_s:
            self._note_late(now, now - last)
        raw = self._raw.sample() if self._raw is not None else None
        if raw is not None:
            entry: _Entry = [raw.t_s, raw, None]
            if raw.near_limit or not self._all_ok:
                self._check_limits(self._decoded(entry))
        else:
            try:
                reading = self.monitor.read()
            except HardwareError as err:
                self._read_errors += 1
                if not self._warned_error:
                    self._warned_error = True
                    logger.warning("power monitor read failed: %s", err)
                return False
            entry = [reading.t_s, None, reading]
            self._check_limits(reading)
        with self._lock:
            if len(self._buffer) == self._buffer.maxlen:
                self._overwritten += 1
            self._buffer.append(entry)
            self._samples += 1
            if self._waiters:
                self._cond.notify_all()
        return True

    def _note_late(self, now: float, gap: float) -> None:
        """Count a late pass; say so once, then at most every ``LATE_SUMMARY_S`` with a count.

        A loaded machine misses passes all the time: a line per miss would drown the log.
        """
        if self._first_step is None or now - self._first_step <= self._grace_s:
            return
        self._late += 1
        self._late_worst_s = max(self._late_worst_s, gap)
        if self._late_said_at is None:
            logger.warning(
                "power sampler fell behind: %.1f ms between samples (interval %.1f ms); "
                "further misses are counted and summarised at most every %.0f s",
                gap * 1000.0,
                self.interval_s * 1000.0,
                LATE_SUMMARY_S,
            )
            self._late_said_at, self._late_said, self._late_worst_s = now, self._late, 0.0
        elif now - self._late_said_at >= LATE_SUMMARY_S:
            self._say_late(now, self._late_said_at)

    def _say_late(self, now: float, since: float) -> None:
        """Log the misses since the last line (at ``since``), if any."""
        missed = self._late - self._late_said
        if missed:
            logger.warning(
                "power sampler fell behind %d more time(s) in %.0f s (worst gap %.1f ms, "
                "%d in all)",
                missed,
                now - since,
                self._late_worst_s * 1000.0,
                self._late,
            )
        self._late_said_at, self._late_said, self._late_worst_s = now, self._late, 0.0

    def _decoded(self, entry: _Entry) -> PowerReading:
        """The entry's reading, decoded from its raw sample the first time it is asked for.

        Two threads decoding the same entry at once each store an equal reading: harmless.
        """
        # Raw first: a decoder stores the reading and only then drops the raw pass, so a
        # reading still missing after this means the raw pass read here is there.
        raw = entry[1]
        reading: PowerReading | None = entry[2]
        if reading is None:
            # Only the raw path leaves a slot without a reading, so _raw is set.
            monitor = cast(RawSampling, self._raw)
            reading = entry[2] = monitor.decode(raw)
            entry[1] = None  # no longer needed: about a third of the ring's memory
        return reading

    def _level(self, rail: RailReading, previous: str) -> tuple[str, float | None]:
        current = rail.current_ma
        if current is None:
            return "ok", None
        if previous == "ok":
            # The common case on every sample, without the hysteresis bookkeeping (which only
            # applies to a level already held): crossing means reaching the limit itself.
            crit, warn = rail.crit_ma, rail.warn_ma
            if crit is not None and crit > 0 and current >= crit:
                return "crit", crit
            if warn is not None and warn > 0 and current >= warn:
                return "warn", warn
            return "ok", None
        for level, limit in (("crit", rail.crit_ma), ("warn", rail.warn_ma)):
            if limit is None or limit <= 0:
                continue
            held = LEVELS.index(previous) >= LEVELS.index(level)
            threshold = limit * (1.0 - self._hysteresis) if held else limit
            if current >= threshold:
                return level, limit
        return "ok", None

    def _check_limits(self, reading: PowerReading) -> None:
        for rail in reading.rails:
            previous = self._levels.get(rail.name, "ok")
            level, limit = self._level(rail, previous)
            if level == previous:
                continue
            self._levels[rail.name] = level
            self._all_ok = all(lv == "ok" for lv in self._levels.values())
            current = rail.current_ma or 0.0
            recovered = LEVELS.index(level) < LEVELS.index(previous)
            if recovered:
                logger.info(
                    "rail %s recovered from %s limit: %.0f mA (now %s)",
                    rail.name,
                    previous,
                    current,
                    level,
                )
                limit = rail.crit_ma if previous == "crit" else rail.warn_ma
            else:
                logger.warning(
                    "rail %s above its %s current limit: %.0f mA >= %.0f mA",
                    rail.name,
                    level,
                    current,
                    limit or 0.0,
                )
            event = LimitEvent(reading.t_s, rail.name, level, previous, current, limit, recovered)
            with self._lock:
                if len(self._events) == self._events.maxlen:
                    self._events_dropped += 1
                self._events.append(event)

    # -- queries ---------------------------------------------------------------------------

    def latest(self) -> PowerReading | None:
        """The newest sample, or None before the first."""
        with self._lock:
            entry = self._buffer[-1] if self._buffer else None
        return self._decoded(entry) if entry is not None else None

    def samples(self) -> list[PowerReading]:
        """A copy of the whole buffer, oldest first."""
        with self._lock:
            entries = list(self._buffer)
        return [self._decoded(entry) for entry in entries]

    def samples_between(self, t0: float, t1: float) -> list[PowerReading]:
        """Samples with ``t0 <= t_s <= t1``, oldest first."""
        return self._slice(t0, t1, margin=0)

    def samples_around(self, t0: float, t1: float) -> list[PowerReading]:
        """Samples inside ``[t0, t1]`` plus the nearest one on each side, for interpolation."""
        return self._slice(t0, t1, margin=1)

    def _slice(self, t0: float, t1: float, margin: int) -> list[PowerReading]:
        # Bisect the ring in place and copy only the window: the ledger asks once per batch,
        # and copying a whole 6000-sample buffer for that was most of its cost. Decoding runs
        # outside the lock, so the sampling thread never waits for a query.
        with self._lock:
            items = self._buffer
            lo = max(0, bisect.bisect_left(items, t0, key=_entry_time) - margin)
            hi = min(len(items), bisect.bisect_right(items, t1, key=_entry_time) + margin)
            entries = list(itertools.islice(items, lo, hi))
        return [self._decoded(entry) for entry in entries]

    def wait_for(self, count: int, timeout_s: float) -> bool:
        """Block until ``count`` samples have been taken in all; False on timeout."""
        with self._cond:
            self._waiters += 1
            try:
                return self._cond.wait_for(lambda: self._samples >= count, timeout_s)
            finally:
                self._waiters -= 1

    def drain_events(self) -> list[LimitEvent]:
        """Take every queued limit event, oldest first."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
            return events

    def limit_levels(self) -> dict[str, str]:
        """Each rail's current limit state: ``ok``, ``warn`` or ``crit``."""
        return dict(self._levels)

    def stats(self) -> SamplerStats:
        """Counters: samples taken, buffered, overwritten, late, read errors, dropped events."""
        with self._lock:
            return SamplerStats(
                samples=self._samples,
                buffered=len(self._buffer),
                overwritten=self._overwritten,
                late=self._late,
                read_errors=self._read_errors,
                events_dropped=self._events_dropped,
            )
