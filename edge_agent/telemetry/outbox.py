"""The on-disk outbox: every outgoing result/telemetry message lives here until its PUBACK.

SQLite in WAL mode with ``synchronous=NORMAL``: a committed batch is in the WAL file when
``put_many`` returns, so it survives ``kill -9`` of the agent (the next process on the same file
replays it); an OS crash or power cut may lose the last few hundred milliseconds, the price of
keeping up with thousands of results per second on eMMC.

Rows carry an AUTOINCREMENT id, so replay order is insertion order even after the table empties.

Bounds and losses: rows plus the WAL stay under ``max_mb`` (rule ``size_bound``) and above the
disk's free-space floor (``disk_floor``, outbox_space.py); beyond either, the oldest rows *not
yet sent* are dropped (a row published once may have arrived, so it is never dropped and the
counters stay exact). A batch that cannot be stored at all is ``disk_full``; unpublishable
rows are ``quarantined`` to the ``dead_letter`` table. Every loss is counted by rule and kind
in ``<outbox>.counters`` (outbox_counters.py).

A file SQLite calls corrupt is moved aside with a timestamp and its readable rows salvaged
into a fresh outbox (outbox_salvage.py); ``drain_events`` reports it to telemetry.
"""

from __future__ import annotations

import collections
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NoReturn

from edge_agent.errors import TelemetryError
from edge_agent.hardware.state_files import clear_symlink, open_state_file
from edge_agent.telemetry.outbox_counters import DropCounters, Kind, Rule
from edge_agent.telemetry.outbox_db import (
    ROW_OVERHEAD_BYTES,
    delete_rows,
    drop_oldest,
    is_disk_full,
    leave_emergency,
    legacy_dropped,
    measure,
    open_outbox_db,
    row_kinds,
    topics_of,
    transaction,
)
from edge_agent.telemetry.outbox_salvage import move_to_dead_letter, row_problem
from edge_agent.telemetry.outbox_space import SpaceGuard

logger = logging.getLogger(__name__)

__all__ = ["ROW_OVERHEAD_BYTES", "Outbox", "OutboxError", "OutboxItem", "OutboxRow", "OutboxStats"]

# Row bytes per byte of free disk: B-tree pages are not full, and the WAL repeats pages.
_PAGE_FILL = 0.7
OutboxState = Literal["ok", "disk_full", "error"]
OutboxItem = tuple[str, bytes, int]


class OutboxError(TelemetryError):
    """Rows could not be stored; ``lost`` of them are gone, ``disk_full`` says why."""

    def __init__(self, message: str, lost: int, disk_full: bool) -> None:
        self.lost = lost
        self.disk_full = disk_full
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored message."""

    rowid: int
    topic: str
    payload: bytes
    qos: int


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counters for telemetry and ``stats()``."""

    depth: int
    size_bytes: int
    dropped: int
    lost: int
    state: OutboxState
    drops: dict[str, int] = field(default_factory=dict)
    results_dropped: int = 0
    quarantined: int = 0
    reserve: bool = True
    bound: str = "size_bound"


class Outbox:
    """A bounded, crash-safe FIFO of MQTT messages (thread-safe).

    Args:
        path: the SQLite file (under the state directory); parents are created 0700.
        max_mb: bound on the stored bytes plus the WAL; drop-oldest-unsent beyond it.
    """

    def __init__(self, path: Path, max_mb: float) -> None:
        if max_mb <= 0:
            raise ValueError("max_mb must be positive")
        self.path = path
        self.max_bytes = int(max_mb * 1024 * 1024)
        self._lock = threading.Lock()
        self._state: OutboxState = "ok"
        self._events: collections.deque[str] = collections.deque(maxlen=32)
        self._sent_upto = 0  # rows up to this id were published at least once: never dropped
        self._since_check = 0
        self._bound: Rule = "size_bound"
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.space = SpaceGuard(path)
        except OSError as err:
            raise TelemetryError(f"cannot open outbox {path}: {err}") from err
        self.counters = DropCounters(path.with_name(path.name + ".counters"))
        if self.space.tight():
            self.space.release_reserve("the disk is full at start")
        for suffix in ("", "-wal", "-shm", "-journal"):
            clear_symlink(path.with_name(path.name + suffix))
        try:
            # Created (or narrowed to) 0600 here: SQLite gives its -wal and -shm the same mode.
            os.close(open_state_file(path, os.O_RDWR | os.O_CREAT))
            opened = open_outbox_db(path, self.max_bytes, self.space.plan.wal_pages)
        except (sqlite3.Error, OSError) as err:
            raise TelemetryError(f"cannot open outbox {path}: {err}") from err
        self._db, self._page_size = opened.db, opened.page_size
        self._emergency = opened.emergency
        if opened.emergency:
            message = (
                "outbox opened on a full disk: in-memory journal until there is room "
                "(draining works; a crash now may damage the file, then it is salvaged)"
            )
            logger.warning("%s", message)
            self._events.append(message)
        self._depth, self._bytes = measure(self._db)
        if opened.recovered:
            logger.error("%s", opened.recovered)
            self._events.append(opened.recovered)
            self.counters.add_many("disk_full", opened.unsalvaged)
        if self.counters.fresh:
            self.counters.add("size_bound", "other", legacy_dropped(self._db, path))
        # The WAL counts against max_mb (it lives on the same disk); half the bound at least.
        wal_bytes = self.space.plan.wal_pages * self._page_size
        self._row_limit = max(self.max_bytes // 2, self.max_bytes - wal_bytes)
        self._cap = self._row_limit
        with self._lock:
            self._check_space()
        if self._depth:
            logger.info("outbox %s holds %d messages from a previous run", path, self._depth)

    # -- writing ----------------------------------------------------------------------------

    def put_many(self, items: Sequence[OutboxItem]) -> int:
        """Store messages in one transaction, dropping the oldest unsent beyond the bounds.

        Args:
            items: (topic, payload, qos) in publish order.

        Returns:
            How many old rows were dropped to make room.

        Raises:
            OutboxError: nothing of ``items`` was stored (counted under ``disk_full``).
        """
        if not items:
            return 0
        added = sum(len(t.encode("utf-8")) + len(p) + ROW_OVERHEAD_BYTES for t, p, _ in items)
        with self._lock:
            self._since_check += added
            if self._since_check >= self.space.plan.check_bytes or self._state != "ok":
                self._check_space()
            try:
                dropped = self._insert(items, added)
            except sqlite3.Error as err:
                if not is_disk_full(err):
                    self._failed(err, items)
                self._make_room("a write failed: disk full")
                try:
                    dropped = self._insert(items, added)
                except sqlite3.Error as again:
                    self._failed(again, items)
            if self._state != "ok":
                logger.info("outbox %s writable again", self.path)
                self._state = "ok"
            return dropped

    def _insert(self, items: Sequence[OutboxItem], added: int) -> int:
        with transaction(self._db):
            self._db.executemany("INSERT INTO outbox (topic, payload, qos) VALUES (?, ?, ?)", items)
            kinds, freed = self._trim(self._bytes + added - self._cap)
        count = sum(kinds.values())
        self._depth += len(items) - count
        self._bytes += added - freed
        if count:
            self.counters.add_many(self._bound, kinds)
        return count

    def _trim(self, excess: int) -> tuple[dict[Kind, int], int]:
        """Delete the oldest unsent rows until ``excess`` bytes are freed (in a transaction)."""
        if excess <= 0:
            return {"results": 0, "other": 0}, 0
        return drop_oldest(self._db, self._sent_upto, excess)

    def _check_space(self) -> None:
        """Re-measure the disk (every ``check_bytes`` of new rows, or after a failure)."""
        self._since_check = 0
        try:
            free_pages = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
            room = self.space.room(free_pages * self._page_size)
            if room > self.space.plan.reserve and not self.space.has_reserve():
                self.space.ensure_reserve()
        except (OSError, sqlite3.Error) as err:
            logger.debug("outbox space check: %s", err)
            return
        if self._emergency and self.space.free_bytes() > 2 * self.space.plan.floor:
            self._leave_emergency()
        disk_cap = self._bytes + int(max(0, room) * _PAGE_FILL)
        bound: Rule = "disk_floor" if disk_cap < self._row_limit else "size_bound"
        if bound != self._bound:
            message = (
                f"outbox bound by the disk's free-space floor ({disk_cap / 1048576:.1f} MB of "
                "messages): beyond it new messages displace the oldest unsent"
                if bound == "disk_floor"
                else "outbox bound by outbox_max_mb again (the disk has room)"
            )
            logger.warning("%s (%s)", message, self.path)
            self._events.append(message)
        self._bound = bound
        self._cap = min(self._row_limit, disk_cap)

    def _leave_emergency(self) -> None:
        try:
            leave_emergency(self._db)
        except sqlite3.Error as err:
            logger.debug("outbox still in emergency mode: %s", err)
            return
        self._emergency = False
        logger.info("outbox %s back to WAL mode", self.path)

    def _make_room(self, why: str) -> None:
        """After SQLITE_FULL: release the reserve and checkpoint so deletes can run."""
        if self.space.release_reserve(why):
            self._events.append(f"outbox disk reserve released: {why}")
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as err:
            logger.debug("outbox checkpoint: %s", err)
        self._check_space()

    def _failed(self, err: sqlite3.Error, items: Sequence[OutboxItem]) -> NoReturn:
        disk_full = is_disk_full(err)
        state: OutboxState = "disk_full" if disk_full else "error"
        self.counters.add_many("disk_full", row_kinds(t for t, _p, _q in items))
        if state != self._state:
            logger.error("outbox %s: write failed (%s); messages are being lost", self.path, err)
            self._events.append(f"outbox write failed ({err}): messages are being lost")
            self._state = state
        raise OutboxError(
            f"outbox {self.path}: {err}", lost=len(items), disk_full=disk_full
        ) from err

    # -- reading, acknowledging, quarantining ---------------------------------------------------

    def fetch(self, after_id: int, limit: int) -> list[OutboxRow]:
        """The oldest ``limit`` publishable rows with an id above ``after_id``, in order.

        Rows that cannot be published are moved to the dead-letter table on the way.
        """
        if limit <= 0:
            return []
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT id, topic, payload, qos, typeof(topic), typeof(payload), typeof(qos) "
                    "FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                    (after_id, limit),
                ).fetchall()
            except sqlite3.Error as err:
                raise TelemetryError(f"outbox {self.path}: read failed: {err}") from err
            good: list[OutboxRow] = []
            bad: list[tuple[int, str]] = []
            for rowid, topic, payload, qos, *types in rows:
                problem = row_problem(topic, payload, qos, (types[0], types[1], types[2]))
                if problem is None:
                    good.append(OutboxRow(int(rowid), topic.decode("utf-8"), payload, int(qos)))
                else:
                    bad.append((int(rowid), problem))
            if bad:
                self._quarantine(bad)
        return good

    def quarantine(self, rows: Sequence[tuple[int, str]]) -> None:
        """Move rows (id, reason) that cannot be published to the dead-letter table."""
        with self._lock:
            self._quarantine(rows)

    def _quarantine(self, rows: Sequence[tuple[int, str]]) -> None:
        ids = [rowid for rowid, _reason in rows]
        try:
            with transaction(self._db):
                info = move_to_dead_letter(self._db, rows)
        except sqlite3.Error as err:
            logger.error("outbox %s: cannot quarantine rows %s: %s", self.path, ids[:10], err)
            return
        self._depth -= len(info)
        self._bytes -= sum(int(size or 0) + ROW_OVERHEAD_BYTES for _t, size in info)
        self.counters.add_many("quarantined", row_kinds(t for t, _size in info))
        message = f"outbox quarantined {len(info)} unpublishable row(s): {rows[0][1]}"
        logger.warning("%s (ids %s)", message, ids[:10])
        self._events.append(message)

    def count_refused(self, rowids: Sequence[int]) -> None:
        """Count rows the broker refused for good (rule ``refused``; the caller deletes them)."""
        with self._lock:
            try:
                topics = topics_of(self._db, rowids)
            except sqlite3.Error as err:
                logger.debug("outbox refused rows: %s", err)
                topics = [b""] * len(rowids)
            self.counters.add_many("refused", row_kinds(topics))

    def mark_sent(self, rowid: int) -> None:
        """Note that rows up to ``rowid`` were published once: they are never dropped since a
        subscriber may have them (at-least-once), so the drop counters stay exact."""
        self._sent_upto = max(self._sent_upto, rowid)

    def delete(self, rowids: Iterable[int]) -> int:
        """Delete acknowledged rows (ids already gone are ignored); returns how many went.

        On a full disk the reserve is released and the delete retried once.

        Raises:
            TelemetryError: the delete failed; the rows stay and will be sent again.
        """
        ids = sorted(set(rowids))
        if not ids:
            return 0
        with self._lock:
            try:
                removed, freed = delete_rows(self._db, ids)
            except sqlite3.Error as err:
                if not is_disk_full(err):
                    raise TelemetryError(f"outbox {self.path}: delete failed: {err}") from err
                self._make_room("a delete failed: disk full")
                try:
                    removed, freed = delete_rows(self._db, ids)
                except sqlite3.Error as again:
                    raise TelemetryError(f"outbox {self.path}: delete failed: {again}") from again
            self._depth -= removed
            self._bytes -= freed
            return removed

    # -- observers --------------------------------------------------------------------------

    @property
    def row_limit(self) -> int:
        """Bytes of rows ``max_mb`` leaves after the WAL's share."""
        return self._row_limit

    @property
    def depth(self) -> int:
        """Messages stored (not yet acknowledged)."""
        return self._depth

    @property
    def dropped(self) -> int:
        """Messages dropped by the size bound and the disk floor, over the file's life."""
        return self.counters.total("size_bound") + self.counters.total("disk_floor")

    @property
    def lost(self) -> int:
        """Messages that could not be written at all (rule ``disk_full``), persisted."""
        return self.counters.total("disk_full")

    @property
    def state(self) -> OutboxState:
        """``ok``, ``disk_full`` or ``error`` (the last write failed)."""
        return self._state

    def drain_events(self) -> list[str]:
        """Notable transitions since the last call (for telemetry ``events``)."""
        events = []
        while self._events:
            events.append(self._events.popleft())
        return events

    def stats(self) -> OutboxStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return OutboxStats(
                depth=self._depth,
                size_bytes=self._bytes,
                dropped=self.dropped,
                lost=self.lost,
                state=self._state,
                drops=self.counters.by_rule(),
                results_dropped=sum(self.counters.by_rule("results").values()),
                quarantined=self.counters.total("quarantined"),
                reserve=self.space.has_reserve(),
                bound=self._bound,
            )

    def close(self) -> None:
        """Checkpoint and close the file."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as err:
                logger.debug("outbox checkpoint: %s", err)
            self._db.close()
            self.counters.close()
