"""The SQLite outbox: order, persistence, size bound, write failures."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_agent.errors import TelemetryError
from edge_agent.telemetry.outbox import ROW_OVERHEAD_BYTES, Outbox, OutboxError


def items(count: int, size: int = 100, start: int = 0) -> list[tuple[str, bytes, int]]:
    return [
        (f"edge/d/results/c{i % 2}", str(start + i).encode().ljust(size, b"."), 1)
        for i in range(count)
    ]


def test_fetch_returns_rows_in_insertion_order_and_delete_removes(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_mb=1)
    box.put_many(items(5))
    rows = box.fetch(0, 3)
    assert [r.payload[:1] for r in rows] == [b"0", b"1", b"2"]
    assert [r.topic for r in rows] == [
        "edge/d/results/c0",
        "edge/d/results/c1",
        "edge/d/results/c0",
    ]
    assert [r.payload[:1] for r in box.fetch(rows[-1].rowid, 10)] == [b"3", b"4"]
    assert box.delete([rows[0].rowid, rows[1].rowid, rows[1].rowid, 10_000]) == 2
    assert box.depth == 3
    assert [r.payload[:1] for r in box.fetch(0, 10)] == [b"2", b"3", b"4"]
    box.close()


def test_rows_survive_reopen_and_ids_keep_growing(tmp_path: Path) -> None:
    path = tmp_path / "state" / "o.sqlite"
    box = Outbox(path, max_mb=1)
    box.put_many(items(3))
    last = box.fetch(0, 10)[-1].rowid
    box.delete(r.rowid for r in box.fetch(0, 10))
    box.close()
    again = Outbox(path, max_mb=1)
    assert again.depth == 0
    again.put_many(items(2, start=7))
    rows = again.fetch(0, 10)
    # AUTOINCREMENT: an emptied table never reuses ids, so a replay cursor stays valid.
    assert all(r.rowid > last for r in rows)
    assert [r.payload[:1] for r in rows] == [b"7", b"8"]
    again.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_size_bound_drops_oldest_and_counts_persistently(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    row_bytes = len("edge/d/results/c0") + 1000 + ROW_OVERHEAD_BYTES
    max_mb = 100 * row_bytes / (1024 * 1024)
    box = Outbox(path, max_mb=max_mb)
    # The WAL is on the same disk and counts against the bound: at most half of it here.
    assert box.max_bytes // 2 <= box.row_limit < box.max_bytes
    fits = box.row_limit // row_bytes
    assert box.put_many(items(fits - 10, size=1000)) == 0
    assert box.put_many(items(30, size=1000, start=fits - 10)) == 20
    assert (box.depth, box.dropped) == (fits, 20)
    assert box.fetch(0, 1)[0].payload.startswith(b"20.")
    assert box.stats().size_bytes <= box.row_limit
    assert box.stats().drops["size_bound"] == 20
    assert box.stats().results_dropped == 20
    box.close()
    again = Outbox(path, max_mb=max_mb)
    assert (again.depth, again.dropped, again.stats().size_bytes) == (fits, 20, fits * row_bytes)
    again.close()


def test_full_database_raises_counts_loss_and_recovers(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_mb=0.25)
    box.put_many(items(3))
    # One batch above the hard page cap (2 x bound + 4 MiB): SQLite reports SQLITE_FULL.
    with pytest.raises(OutboxError) as info:
        box.put_many([("edge/d/results/c0", b"x" * 5_000_000, 1), *items(4)])
    assert (info.value.lost, info.value.disk_full) == (5, True)
    assert isinstance(info.value, TelemetryError)
    stats = box.stats()
    assert (stats.depth, stats.lost, stats.state) == (3, 5, "disk_full")
    box.put_many(items(2, start=3))
    assert (box.depth, box.state) == (5, "ok")
    box.close()


def test_unopenable_path_is_a_telemetry_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    with pytest.raises(TelemetryError, match="cannot open outbox"):
        Outbox(blocker / "o.sqlite", max_mb=1)
