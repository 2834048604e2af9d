"""The outbox on a real, small, full filesystem (tmpfs as root, else a loop ext4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.telemetry.outbox import Outbox, OutboxError
from tests.fakes.smallfs import fill, free_bytes, small_filesystem
from tests.telemetry.test_outbox import items


def _drain(box: Outbox) -> list[int]:
    """Fetch and delete everything, as PUBACKs would; the payload numbers, in order."""
    seen: list[int] = []
    while rows := box.fetch(0, 200):
        for row in rows:
            box.mark_sent(row.rowid)
        seen += [int(r.payload.split(b".")[0]) for r in rows]
        assert box.delete(r.rowid for r in rows) == len(rows)
    return seen


@pytest.mark.parametrize("size_mb", [2, 5])
def test_full_disk_drops_are_counted_deletes_work_and_a_restart_drains(
    tmp_path: Path, size_mb: int
) -> None:
    state = tmp_path / "state"
    with small_filesystem(state, size_mb):
        path = state / "outbox.sqlite3"
        box = Outbox(path, max_mb=64)
        assert box.stats().reserve
        offered = 0
        lost = 0
        # Broker down: far more than the disk holds (about 4x), in agent-sized batches.
        for start in range(0, size_mb * 10_000, 50):
            try:
                box.put_many(items(50, size=400, start=start))
            except OutboxError as err:
                lost += err.lost
            offered += 50
        stats = box.stats()
        assert stats.bound == "disk_floor"
        assert stats.drops["disk_floor"] > offered // 2
        assert stats.drops["disk_full"] == lost
        # Every offered row is either stored or counted, by rule.
        assert stats.depth + sum(stats.drops.values()) == offered
        assert free_bytes(state) >= box.space.plan.floor // 2
        # Deletes of acknowledged rows work at the floor, and what is kept is the newest.
        kept = _drain(box)
        assert kept == list(range(offered - len(kept), offered))
        assert box.depth == 0
        # Something else fills the disk to the last byte: rows still go in (displacing
        # nothing: the outbox is empty, the reserve is released) or are counted, never raised
        # past the caller uncounted; deletes still work.
        filler = fill(state)
        assert free_bytes(state) == 0
        before = box.stats()
        failures: list[OutboxError] = []
        for start in range(0, 2000, 50):
            try:
                box.put_many(items(50, size=400, start=offered + start))
            except OutboxError as err:
                failures.append(err)
        assert all(err.disk_full for err in failures)
        after = box.stats()
        accounted = after.depth + sum(after.drops.values()) - sum(before.drops.values())
        assert accounted == 2000
        stored = after.depth
        box.close()

        # Start on the still-full disk (closing truncated the WAL: fill that too): it opens
        # and drains what is stored.
        more = fill(state, "filler2")
        assert free_bytes(state) == 0
        again = Outbox(path, max_mb=64)
        assert again.depth == stored
        assert len(_drain(again)) == stored
        assert again.depth == 0
        again.close()
        counters = json.loads(path.with_name("outbox.sqlite3.counters").read_text())
        assert sum(counters["disk_floor"].values()) == after.drops["disk_floor"]
        assert sum(counters["disk_full"].values()) == after.drops["disk_full"]
        # With room again, the reserve comes back by itself.
        filler.unlink()
        more.unlink()
        third = Outbox(path, max_mb=64)
        third.put_many(items(10))
        assert third.stats().reserve
        assert third.stats().state == "ok"
        third.close()
