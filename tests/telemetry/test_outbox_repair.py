"""Bad rows are quarantined, a corrupt file is salvaged, damaged counters never crash."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from pathlib import Path

import pytest

from edge_agent.telemetry.outbox import Outbox
from edge_agent.telemetry.outbox_counters import FILE_BYTES
from tests.fakes.broker import MosquittoBroker
from tests.telemetry.conftest import AgentFactory
from tests.telemetry.mqtt_helpers import Subscriber
from tests.telemetry.test_outbox import items
from tests.telemetry.test_publisher import publish_many

BAD_ROWS: list[tuple[object, object, object, str]] = [
    ("edge/dev1/results/+", b"{}", 1, "wildcard"),
    ("edge/dev1/results/#", b"{}", 1, "wildcard"),
    ("edge/dev1/results/c", "a TEXT payload", 1, "payload stored as text"),
    ("edge/dev1/results/c", b"{}", 7, "qos 7"),
    ("edge/dev1/results/c", b"{}", "one", "qos b'one'"),
    ("", b"{}", 1, "topic length 0"),
    (b"edge/\xff/results/c", b"{}", 1, "topic stored as blob"),
    ("edge/dev1/results/c", b"{}", 1.5, "qos 1.5 (real)"),
]


def _plant(path: Path, rows: list[tuple[object, object, object, str]]) -> None:
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO outbox (topic, payload, qos) VALUES (?, ?, ?)",
            [(t, p, q) for t, p, q, _why in rows],
        )


def test_bad_rows_are_quarantined_and_the_rest_flows(
    tmp_path: Path, mosquitto: MosquittoBroker, make_agent: AgentFactory, unique_prefix: str
) -> None:
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path, max_mb=4)
    box.put_many([(f"{unique_prefix}/dev1/results/c0", b'{"msg_id": "old:1"}', 1)])
    box.close()
    _plant(path, BAD_ROWS)
    box = Outbox(path, max_mb=4)
    box.put_many([(f"{unique_prefix}/dev1/results/c0", b'{"msg_id": "old:2"}', 1)])
    box.close()
    with Subscriber(mosquitto.host, mosquitto.port, f"{unique_prefix}/#") as sub:
        agent = make_agent(mosquitto.port, outbox_name="outbox.sqlite")
        ids = set(publish_many(agent, 50)) | {"old:1", "old:2"}
        got = sub.collect_results(ids, timeout=20)
        assert agent.publisher.flush(10)
        stats = agent.publisher.stats()
        events = agent.outbox.drain_events()
    assert {doc["msg_id"] for _t, doc in got} == ids
    assert stats.depth == 0
    assert stats.quarantined == len(BAD_ROWS)
    assert stats.drops["quarantined"] == len(BAD_ROWS)
    assert any("quarantined" in e for e in events)
    agent.stop()
    with sqlite3.connect(path) as db:
        reasons = [r[0] for r in db.execute("SELECT reason FROM dead_letter ORDER BY id")]
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    assert len(reasons) == len(BAD_ROWS)
    for reason, (_t, _p, _q, why) in zip(reasons, BAD_ROWS, strict=True):
        assert why in reason
    counters = json.loads(path.with_name("outbox.sqlite.counters").read_text())
    assert counters["quarantined"] == {"results": 7, "other": 1}


def test_corrupt_file_is_moved_aside_and_a_fresh_outbox_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "outbox.sqlite3"
    path.write_bytes(b"this is not a database at all" * 200)
    with caplog.at_level(logging.ERROR):
        box = Outbox(path, max_mb=4)
    events = box.drain_events()
    assert len(events) == 1
    assert "was corrupt" in events[0]
    assert "0 of its messages salvaged" in events[0]
    aside = [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1
    assert re.fullmatch(r"outbox\.sqlite3\.corrupt-\d{8}T\d{6}Z", aside[0])
    assert "was corrupt" in caplog.text
    box.put_many(items(3))
    assert box.depth == 3
    box.close()


def test_readable_rows_of_a_damaged_file_are_salvaged(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path, max_mb=16)
    box.put_many(items(3000, size=200))
    box.close()
    size = path.stat().st_size
    with path.open("r+b") as file:  # smash pages in the middle of the table
        file.seek(size // 2)
        file.write(b"\xa5" * 8192)
    box = Outbox(path, max_mb=16)
    events = box.drain_events()
    salvaged = box.depth
    assert 1000 < salvaged < 3000, events
    assert f"{salvaged} of its messages salvaged" in events[0]
    rows = box.fetch(0, 5000)
    payloads = [int(r.payload.split(b".")[0]) for r in rows]
    assert payloads == sorted(payloads)  # salvaged in the original order
    assert payloads[0] == 0
    assert payloads[-1] == 2999
    box.close()


def test_bad_meta_dropped_and_damaged_counters_give_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "outbox.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('dropped', 'lots')")
    with caplog.at_level(logging.WARNING):
        box = Outbox(path, max_mb=4)
    assert box.dropped == 0
    assert "meta.dropped is b'lots', not a count; ignored" in caplog.text
    box.close()
    counters = path.with_name("outbox.sqlite3.counters")
    assert counters.stat().st_size == FILE_BYTES
    assert counters.stat().st_mode & 0o777 == 0o600
    for damage in (b"\xff" * 40, b'{"size_bound": {"results": -4}}', b"[" * 5000):
        counters.write_bytes(damage)
        box = Outbox(path, max_mb=4)
        assert box.stats().drops == dict.fromkeys(box.stats().drops, 0)
        box.close()
    assert "loss counters restart at zero" in caplog.text


def test_legacy_meta_dropped_is_folded_into_the_counters_once(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('dropped', 17)")
    for _open in range(2):
        box = Outbox(path, max_mb=4)
        assert box.dropped == 17
        box.close()
