"""Bad outbox rows and files: quarantined, moved aside and salvaged, never fatal.

A row that cannot be published (:func:`row_problem`) moves to the ``dead_letter`` table.

``outbox.sqlite3`` that SQLite calls corrupt (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``, or a
failed ``quick_check``) is renamed ``outbox.sqlite3.corrupt-<UTC time>`` (with its ``-wal``
and ``-shm``), and the rows SQLite can still read from it are copied into a fresh outbox: read
oldest-first until the first damaged page, then newest-first down to it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
RawRow = tuple[Any, Any, Any, Any]  # id, topic, payload, qos as stored (types unchecked)
MAX_SALVAGE_ROWS = 1_000_000
DEAD_LETTER_KEEP = 1000


def is_corrupt(err: sqlite3.Error) -> bool:
    """Whether ``err`` says the file is damaged (as opposed to full, locked or missing)."""
    code = getattr(err, "sqlite_errorcode", None)
    if isinstance(code, int):
        return (code & 0xFF) in _CORRUPT_CODES
    text = str(err).lower()
    return "malformed" in text or "not a database" in text


def move_aside(path: Path, now: dt.datetime | None = None) -> Path:
    """Rename the outbox and its companions to ``<name>.corrupt-<UTC time>``; the new path."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            source.rename(target.with_name(target.name + suffix))
    return target


def salvage_rows(path: Path) -> list[RawRow]:
    """Every outbox row SQLite can still read from the damaged file at ``path``, by id."""
    rows: dict[int, RawRow] = {}
    for options in ("mode=ro", "immutable=1"):
        try:
            db = sqlite3.connect(f"file:{path}?{options}", uri=True)
        except sqlite3.Error:
            continue
        db.text_factory = bytes
        try:
            _read(db, "ASC", rows)
            _read(db, "DESC", rows)
        finally:
            db.close()
        if rows:
            break
    return [rows[key] for key in sorted(rows)]


def _read(db: sqlite3.Connection, order: str, rows: dict[int, RawRow]) -> None:
    query = f"SELECT id, topic, payload, qos FROM outbox ORDER BY id {order}"  # noqa: S608
    try:
        cursor = db.execute(query)
        while len(rows) < MAX_SALVAGE_ROWS:
            batch = cursor.fetchmany(500)
            if not batch:
                return
            for row in batch:
                if isinstance(row[0], int) and row[0] in rows:
                    return  # met the rows read from the other end
                if isinstance(row[0], int):
                    rows[row[0]] = (row[0], row[1], row[2], row[3])
    except sqlite3.Error as err:
        logger.debug("outbox salvage (%s) stopped: %s", order, err)


MAX_TOPIC_BYTES = 65535
MAX_PAYLOAD_BYTES = 268_435_455


def row_problem(topic: Any, payload: Any, qos: Any, types: tuple[Any, Any, Any]) -> str | None:
    """Why a stored row cannot be published (None: it can).

    Args:
        topic, payload, qos: the values as read with ``text_factory=bytes``.
        types: SQLite's ``typeof()`` of the three columns.
    """
    topic_type, payload_type, qos_type = (
        t.decode() if isinstance(t, bytes) else str(t) for t in types
    )
    if topic_type != "text" or not isinstance(topic, bytes):
        return f"topic stored as {topic_type}, not text"
    try:
        text = topic.decode("utf-8")
    except UnicodeDecodeError:
        return "topic is not UTF-8"
    if not text or len(topic) > MAX_TOPIC_BYTES:
        return f"topic length {len(topic)} outside 1..{MAX_TOPIC_BYTES} bytes"
    if "+" in text or "#" in text or "\x00" in text:
        return f"topic {text[:80]!r} has a wildcard or NUL"
    if payload_type != "blob" or not isinstance(payload, bytes):
        return f"payload stored as {payload_type}, not a blob"
    if len(payload) > MAX_PAYLOAD_BYTES:
        return f"payload of {len(payload)} bytes is over MQTT's limit"
    if qos_type != "integer" or qos not in (0, 1, 2):
        return f"qos {qos!r} ({qos_type}) is not 0, 1 or 2"
    return None


def move_to_dead_letter(
    db: sqlite3.Connection, rows: Sequence[tuple[int, str]]
) -> list[tuple[Any, int]]:
    """Move outbox rows (id, reason) to ``dead_letter`` (its newest 1,000 kept), inside the
    caller's transaction; (topic, size) of each row moved."""
    ids = [rowid for rowid, _reason in rows]
    marks = ",".join("?" * len(ids))
    info = db.execute(
        f"SELECT topic, LENGTH(topic) + LENGTH(payload) FROM outbox WHERE id IN ({marks})",  # noqa: S608
        ids,
    ).fetchall()
    db.executemany(
        "INSERT OR REPLACE INTO dead_letter (id, topic, payload, qos, reason) "
        "SELECT id, topic, payload, qos, ? FROM outbox WHERE id = ?",
        [(reason, rowid) for rowid, reason in rows],
    )
    db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", ids)  # noqa: S608
    db.execute(
        "DELETE FROM dead_letter WHERE id NOT IN "
        "(SELECT id FROM dead_letter ORDER BY id DESC LIMIT ?)",
        (DEAD_LETTER_KEEP,),
    )
    return [(topic, int(size or 0)) for topic, size in info]
