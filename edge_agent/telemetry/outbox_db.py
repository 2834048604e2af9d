"""Opening the outbox's SQLite file: pragmas, schema, and recovery from a corrupt file."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.hardware.state_files import open_state_file
from edge_agent.telemetry.outbox_counters import Kind, row_kind
from edge_agent.telemetry.outbox_salvage import is_corrupt, move_aside, salvage_rows

logger = logging.getLogger(__name__)

ROW_OVERHEAD_BYTES = 48
_SQLITE_FULL = 13
_SALVAGE_CHUNK = 500
_DELETE_CHUNK = 500

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY, topic, payload, qos, reason TEXT NOT NULL
);
"""


class CorruptFile(sqlite3.DatabaseError):
    """``quick_check`` found damage."""


@dataclass
class Opened:
    """An open outbox file, and what recovery did if the file was corrupt."""

    db: sqlite3.Connection
    page_size: int
    recovered: str | None = None
    unsalvaged: dict[Kind, int] = field(default_factory=dict)
    emergency: bool = False


def _no_room(err: sqlite3.Error) -> bool:
    # SQLITE_FULL, or SQLITE_IOERR / SQLITE_CANTOPEN when the -shm file cannot be created.
    code = getattr(err, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in (10, 13, 14)


def is_disk_full(err: sqlite3.Error) -> bool:
    """Whether ``err`` is SQLITE_FULL (the disk, or ``max_page_count``)."""
    code = getattr(err, "sqlite_errorcode", None)
    if isinstance(code, int):
        return (code & 0xFF) == _SQLITE_FULL
    return "full" in str(err).lower()


def row_kinds(topics: Iterable[Any]) -> dict[Kind, int]:
    """How many of ``topics`` are results and how many other messages."""
    kinds: dict[Kind, int] = {"results": 0, "other": 0}
    for topic in topics:
        kinds[row_kind(topic if isinstance(topic, (str, bytes)) else b"")] += 1
    return kinds


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error as err:
            logger.debug("outbox rollback: %s", err)
        raise


def connect(
    path: Path, max_bytes: int, wal_pages: int, emergency: bool = False
) -> tuple[sqlite3.Connection, int]:
    """Open (or create) the outbox and check it; (connection, page size).

    Args:
        path: the file.
        max_bytes: the size bound (sets a hard ``max_page_count`` above it).
        wal_pages: ``wal_autocheckpoint`` and ``journal_size_limit`` in pages.
        emergency: the disk is too full for the ``-shm``/``-wal`` files: exclusive locking
            (the WAL index in memory) and an in-memory rollback journal, so deletes and inserts
            rewrite pages in place and need no new disk space. A crash in the middle of a
            write can damage the file then (salvaged at the next start).

    Raises:
        sqlite3.Error: cannot open, or damaged (:class:`CorruptFile` after ``quick_check``).
    """
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        db.text_factory = bytes  # a row with a non-UTF-8 topic must not break every fetch
        if emergency:
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("PRAGMA journal_mode=MEMORY")
        else:
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
        db.execute(f"PRAGMA wal_autocheckpoint={int(wal_pages)}")
        db.execute(f"PRAGMA journal_size_limit={int(wal_pages * page_size)}")
        hard_pages = (2 * max_bytes + 4 * 1024 * 1024) // page_size
        db.execute(f"PRAGMA max_page_count={int(hard_pages)}")
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != b"ok":
            raise CorruptFile(f"quick_check: {check[:200]!r}")
        try:
            db.executescript(SCHEMA)
        except sqlite3.OperationalError as err:
            if not emergency:
                raise
            # An old file without the dead-letter table: quarantine waits for disk space.
            logger.warning("outbox %s: schema not updated on the full disk (%s)", path, err)
    except sqlite3.Error:
        db.close()
        raise
    return db, page_size


def leave_emergency(db: sqlite3.Connection) -> None:
    """Back to normal locking and WAL once the disk has room (see ``connect``).

    Raises:
        sqlite3.Error: still no room; the connection stays in emergency mode.
    """
    db.execute("PRAGMA locking_mode=NORMAL")
    db.execute("SELECT COUNT(*) FROM meta").fetchone()  # releases the exclusive lock
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
    except sqlite3.Error:
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("SELECT COUNT(*) FROM meta").fetchone()
        raise


def open_outbox_db(path: Path, max_bytes: int, wal_pages: int) -> Opened:
    """Open the outbox; a corrupt file is moved aside and its readable rows salvaged.

    Raises:
        sqlite3.Error: the file cannot be opened for a reason other than damage.
    """
    try:
        return Opened(*connect(path, max_bytes, wal_pages))
    except sqlite3.DatabaseError as err:
        if _no_room(err):
            logger.warning("outbox %s: cannot open normally (%s); disk full?", path, err)
            return Opened(*connect(path, max_bytes, wal_pages, emergency=True), emergency=True)
        if not is_corrupt(err) and not isinstance(err, CorruptFile):
            raise
        damage = err
    aside = move_aside(path)
    rows = salvage_rows(aside)
    with contextlib.suppress(OSError):  # 0600 like the first one; SQLite creates it otherwise
        os.close(open_state_file(path, os.O_RDWR | os.O_CREAT))
    db, page_size = connect(path, max_bytes, wal_pages)
    items = [(_text(t), p, q) for _id, t, p, q in rows]
    stored = 0
    unsalvaged: dict[Kind, int] = {}
    for start in range(0, len(items), _SALVAGE_CHUNK):
        chunk = items[start : start + _SALVAGE_CHUNK]
        try:
            with transaction(db):
                db.executemany("INSERT INTO outbox (topic, payload, qos) VALUES (?, ?, ?)", chunk)
        except sqlite3.Error as err:
            logger.error("outbox salvage: cannot store rows (%s)", err)
            unsalvaged = row_kinds(t for t, _p, _q in items[start:])
            break
        stored += len(chunk)
    message = (
        f"outbox {path.name} was corrupt ({damage}): moved to {aside.name}, "
        f"{stored} of its messages salvaged into a fresh outbox"
    )
    return Opened(db, page_size, message, unsalvaged)


def measure(db: sqlite3.Connection) -> tuple[int, int]:
    """(rows, estimated bytes) stored in the outbox."""
    row = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(topic) + LENGTH(payload)), 0) FROM outbox"
    ).fetchone()
    depth = int(row[0])
    return depth, int(row[1]) + depth * ROW_OVERHEAD_BYTES


def drop_oldest(db: sqlite3.Connection, after_id: int, excess: int) -> tuple[dict[Kind, int], int]:
    """Delete the oldest rows with an id above ``after_id`` until ``excess`` bytes are freed
    (inside the caller's transaction); (rows by kind, bytes freed)."""
    kinds: dict[Kind, int] = {"results": 0, "other": 0}
    freed = 0
    last_id = 0
    cursor = db.execute(
        "SELECT id, LENGTH(topic) + LENGTH(payload), topic FROM outbox WHERE id > ? ORDER BY id",
        (after_id,),
    )
    for rowid, size, topic in cursor:
        freed += int(size or 0) + ROW_OVERHEAD_BYTES
        kinds[row_kind(topic if isinstance(topic, (str, bytes)) else b"")] += 1
        last_id = int(rowid)
        if freed >= excess:
            break
    cursor.close()
    if last_id:
        db.execute("DELETE FROM outbox WHERE id > ? AND id <= ?", (after_id, last_id))
    return kinds, freed


def delete_rows(db: sqlite3.Connection, ids: list[int]) -> tuple[int, int]:
    """Delete rows by id in one transaction; (rows removed, bytes freed)."""
    removed = 0
    freed = 0
    with transaction(db):
        for start in range(0, len(ids), _DELETE_CHUNK):
            chunk = ids[start : start + _DELETE_CHUNK]
            marks = ",".join("?" * len(chunk))
            size_row = db.execute(
                f"SELECT COUNT(*), COALESCE(SUM(LENGTH(topic) + LENGTH(payload)), 0) "  # noqa: S608
                f"FROM outbox WHERE id IN ({marks})",
                chunk,
            ).fetchone()
            db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)  # noqa: S608
            removed += int(size_row[0])
            freed += int(size_row[1]) + int(size_row[0]) * ROW_OVERHEAD_BYTES
    return removed, freed


def topics_of(db: sqlite3.Connection, ids: Sequence[int]) -> list[Any]:
    """The topics of rows ``ids`` (as stored)."""
    marks = ",".join("?" * len(ids))
    rows = db.execute(f"SELECT topic FROM outbox WHERE id IN ({marks})", list(ids))  # noqa: S608
    return [topic for (topic,) in rows.fetchall()]


def legacy_dropped(db: sqlite3.Connection, path: Path) -> int:
    """``meta.dropped`` from before the counters file (0 when absent or not a count)."""
    try:
        row = db.execute("SELECT value FROM meta WHERE key='dropped'").fetchone()
    except sqlite3.Error as err:
        logger.warning("outbox %s: meta unreadable (%s); ignored", path, err)
        return 0
    if row is None:
        return 0
    value = row[0]
    if not isinstance(value, int) or value < 0:
        logger.warning("outbox %s: meta.dropped is %r, not a count; ignored", path, value)
        return 0
    return value


def _text(value: Any) -> Any:
    """A salvaged topic back to str when it is UTF-8 (else as found, to be quarantined)."""
    if isinstance(value, bytes):
        with contextlib.suppress(UnicodeDecodeError):
            return value.decode("utf-8")
    return value
