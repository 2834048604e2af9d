"""The on-disk outbox: every outgoing result/telemetry message lives here until its PUBACK.

SQLite in WAL mode with ``synchronous=NORMAL``: a committed batch is in the WAL file when
``put_many`` returns, so it survives ``kill -9`` of the agent (the next process on the same file
replays it); an OS crash or power cut may lose the last few hundred milliseconds, the price of
keeping up with thousands of results per second on eMMC.

Rows carry an AUTOINCREMENT id, so replay order is insertion order even after the table empties.

Size policy: the stored bytes (topic + payload + a per-row overhead estimate) are bounded by
``max_mb``; when a batch would exceed it, the oldest rows are dropped and counted in ``dropped``
(persisted in the same file). SQLite reuses freed pages, so the file stays near the bound; a hard
``max_page_count`` (twice the bound plus 4 MiB) guards against runaway growth.

Failure policy: a write that fails (disk full, I/O error, hard cap) raises :class:`OutboxError`
after counting the rows it could not store in ``lost``; the state becomes ``disk_full`` or
``error`` and returns to ``ok`` at the next successful write. Callers count and carry on.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

from edge_agent.errors import TelemetryError

logger = logging.getLogger(__name__)

ROW_OVERHEAD_BYTES = 48
_SQLITE_FULL = 13
_DELETE_CHUNK = 500
OutboxState = Literal["ok", "disk_full", "error"]
OutboxItem = tuple[str, bytes, int]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('dropped', 0);
"""


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


def _is_disk_full(err: sqlite3.Error) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    if isinstance(code, int):
        return (code & 0xFF) == _SQLITE_FULL
    return "full" in str(err).lower()


class Outbox:
    """A bounded, crash-safe FIFO of MQTT messages (thread-safe).

    Args:
        path: the SQLite file (under the state directory); parents are created.
        max_mb: bound on the stored bytes; drop-oldest beyond it.
    """

    def __init__(self, path: Path, max_mb: float) -> None:
        if max_mb <= 0:
            raise ValueError("max_mb must be positive")
        self.path = path
        self.max_bytes = int(max_mb * 1024 * 1024)
        self._lock = threading.Lock()
        self._lost = 0
        self._state: OutboxState = "ok"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
            hard_pages = (2 * self.max_bytes + 4 * 1024 * 1024) // page_size
            self._db.execute(f"PRAGMA max_page_count={int(hard_pages)}")
            self._db.executescript(_SCHEMA)
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(topic) + LENGTH(payload)), 0) FROM outbox"
            ).fetchone()
            self._depth = int(row[0])
            self._bytes = int(row[1]) + self._depth * ROW_OVERHEAD_BYTES
            self._dropped = int(
                self._db.execute("SELECT value FROM meta WHERE key='dropped'").fetchone()[0]
            )
        except (sqlite3.Error, OSError) as err:
            raise TelemetryError(f"cannot open outbox {path}: {err}") from err
        if self._depth:
            logger.info("outbox %s holds %d messages from a previous run", path, self._depth)

    def put_many(self, items: Sequence[OutboxItem]) -> int:
        """Store messages in one transaction, dropping the oldest beyond the bound.

        Args:
            items: (topic, payload, qos) in publish order.

        Returns:
            How many old rows were dropped to make room.

        Raises:
            OutboxError: nothing of ``items`` was stored (counted in ``lost``).
        """
        if not items:
            return 0
        added = sum(len(t.encode("utf-8")) + len(p) + ROW_OVERHEAD_BYTES for t, p, _ in items)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO outbox (topic, payload, qos) VALUES (?, ?, ?)", items
                )
                dropped_rows, freed = self._trim(self._bytes + added - self.max_bytes)
                if dropped_rows:
                    self._db.execute(
                        "UPDATE meta SET value = value + ? WHERE key='dropped'", (dropped_rows,)
                    )
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()
                self._failed(err, len(items))
            self._depth += len(items) - dropped_rows
            self._bytes += added - freed
            if dropped_rows:
                if self._dropped == 0:
                    logger.warning(
                        "outbox %s over %.1f MB: dropping oldest messages",
                        self.path,
                        self.max_bytes / 1048576,
                    )
                self._dropped += dropped_rows
            if self._state != "ok":
                logger.info("outbox %s writable again", self.path)
                self._state = "ok"
            return dropped_rows

    def _trim(self, excess: int) -> tuple[int, int]:
        """Delete the oldest rows until ``excess`` bytes are freed (inside a transaction)."""
        if excess <= 0:
            return 0, 0
        freed = 0
        count = 0
        last_id = 0
        cursor = self._db.execute(
            "SELECT id, LENGTH(topic) + LENGTH(payload) FROM outbox ORDER BY id"
        )
        for rowid, size in cursor:
            freed += int(size) + ROW_OVERHEAD_BYTES
            count += 1
            last_id = int(rowid)
            if freed >= excess:
                break
        cursor.close()
        if count:
            self._db.execute("DELETE FROM outbox WHERE id <= ?", (last_id,))
        return count, freed

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error as err:
            logger.debug("outbox rollback: %s", err)

    def _failed(self, err: sqlite3.Error, count: int) -> NoReturn:
        disk_full = _is_disk_full(err)
        state: OutboxState = "disk_full" if disk_full else "error"
        self._lost += count
        if state != self._state:
            logger.error("outbox %s: write failed (%s); messages are being lost", self.path, err)
            self._state = state
        raise OutboxError(f"outbox {self.path}: {err}", lost=count, disk_full=disk_full) from err

    def fetch(self, after_id: int, limit: int) -> list[OutboxRow]:
        """The oldest ``limit`` rows with an id above ``after_id``, in order."""
        if limit <= 0:
            return []
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT id, topic, payload, qos FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                    (after_id, limit),
                ).fetchall()
            except sqlite3.Error as err:
                raise TelemetryError(f"outbox {self.path}: read failed: {err}") from err
        return [OutboxRow(int(r[0]), str(r[1]), bytes(r[2]), int(r[3])) for r in rows]

    def delete(self, rowids: Iterable[int]) -> int:
        """Delete acknowledged rows (ids already gone are ignored); returns how many went.

        Raises:
            TelemetryError: the delete failed; the rows stay and will be sent again.
        """
        ids = sorted(set(rowids))
        if not ids:
            return 0
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                removed = 0
                freed = 0
                for start in range(0, len(ids), _DELETE_CHUNK):
                    chunk = ids[start : start + _DELETE_CHUNK]
                    marks = ",".join("?" * len(chunk))
                    size_row = self._db.execute(
                        f"SELECT COUNT(*), COALESCE(SUM(LENGTH(topic) + LENGTH(payload)), 0) "  # noqa: S608
                        f"FROM outbox WHERE id IN ({marks})",
                        chunk,
                    ).fetchone()
                    self._db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)  # noqa: S608
                    removed += int(size_row[0])
                    freed += int(size_row[1]) + int(size_row[0]) * ROW_OVERHEAD_BYTES
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()
                raise TelemetryError(f"outbox {self.path}: delete failed: {err}") from err
            self._depth -= removed
            self._bytes -= freed
            return removed

    @property
    def depth(self) -> int:
        """Messages stored (not yet acknowledged)."""
        return self._depth

    @property
    def dropped(self) -> int:
        """Messages dropped by the size bound, over the file's life (persisted)."""
        return self._dropped

    @property
    def lost(self) -> int:
        """Messages that could not be written since this process opened the file."""
        return self._lost

    @property
    def state(self) -> OutboxState:
        """``ok``, ``disk_full`` or ``error`` (the last write failed)."""
        return self._state

    def stats(self) -> OutboxStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return OutboxStats(self._depth, self._bytes, self._dropped, self._lost, self._state)

    def close(self) -> None:
        """Checkpoint and close the file."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as err:
                logger.debug("outbox checkpoint: %s", err)
            self._db.close()
