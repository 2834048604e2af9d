"""The publisher's error branches, one step at a time (no drain thread), on a real broker.

The outbox's table is renamed away by a second SQLite connection and back again: a real
SQLite failure for every statement the publisher runs, and a real recovery.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.clock import SystemClock
from edge_agent.config import MqttConfig
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.outbox import Outbox
from edge_agent.telemetry.payloads import new_boot_id
from edge_agent.telemetry.publisher import Publisher
from tests.fakes.broker import MosquittoBroker
from tests.telemetry.test_publisher import result

LOGGER = "edge_agent.telemetry.publisher"


@dataclass
class Stepped:
    """A publisher whose drain thread never runs: the test calls ``step``."""

    link: MqttLink
    outbox: Outbox
    publisher: Publisher
    acks: list[int]
    acked: threading.Condition

    def wait_acks(self, count: int) -> bool:
        with self.acked:
            return self.acked.wait_for(lambda: len(self.acks) >= count, 10)


@pytest.fixture
def stepped(tmp_path: Path, mosquitto: MosquittoBroker, unique_prefix: str) -> Iterator[Stepped]:
    config = MqttConfig.model_validate(
        {"host": mosquitto.host, "port": mosquitto.port, "topic_prefix": unique_prefix}
    )
    clock = SystemClock()
    boot_id = new_boot_id()
    link = MqttLink(config, "dev1", boot_id, "9.9.9", clock, reconnect_min_s=1, reconnect_max_s=1)
    outbox = Outbox(tmp_path / "outbox.sqlite", max_mb=16.0)
    publisher = Publisher(link, outbox, link.topics, clock, 20, boot_id, max_buffer=4)
    acks: list[int] = []
    acked = threading.Condition()

    def on_ack(mid: int, _ok: bool) -> None:
        with acked:
            acks.append(mid)
            acked.notify_all()

    link.add_ack_listener(on_ack)
    link.start()
    assert link.wait_connected(10)
    state = Stepped(link, outbox, publisher, acks, acked)
    assert state.wait_acks(1)  # the retained "online" status: not a result
    with acked:
        acks.clear()
    yield state
    link.stop()
    outbox.close()


def _rename(path: Path, old: str, new: str) -> None:
    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        db.execute(f"ALTER TABLE {old} RENAME TO {new}")
    finally:
        db.close()


def test_failed_delete_and_fetch_are_counted_and_retried(
    stepped: Stepped, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publisher, path = stepped.publisher, tmp_path / "outbox.sqlite"
    for frame in range(3):
        publisher.publish_result("cam0", result("cam0", frame))
    publisher.step()  # commit, then publish all three
    assert stepped.wait_acks(3)
    assert publisher.stats().depth == 3
    _rename(path, "outbox", "outbox_away")
    publisher.publish_result("cam0", result("cam0", 3))  # buffered: committed by a step
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        publisher.step()
    stats = publisher.stats()
    # The commit, the delete of the acknowledged rows and the read for more all failed.
    assert (stats.acked, stats.published, stats.errors, stats.lost) == (3, 3, 3, 1)
    messages = [r.getMessage() for r in caplog.records]
    assert any("acknowledged rows will be sent again" in m for m in messages)
    assert any("read failed" in m for m in messages)
    _rename(path, "outbox_away", "outbox")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        publisher.publish_result("cam0", result("cam0", 4))
        publisher.step()  # the held deletes go through; the new row is published
    assert stepped.wait_acks(4)
    publisher.step()
    stats = publisher.stats()
    assert (stats.depth, stats.acked, stats.published, stats.errors) == (0, 4, 4, 3)
    assert stats.outbox_state == "ok"
    assert any("outbox accepts messages again" in r.getMessage() for r in caplog.records)


def test_a_full_buffer_is_committed_by_the_caller(stepped: Stepped) -> None:
    publisher = stepped.publisher
    for frame in range(3):
        publisher.publish_result("cam0", result("cam0", frame))
    assert (publisher.stats().buffered, publisher.stats().depth) == (3, 0)
    publisher.publish_result("cam0", result("cam0", 3))  # the 4th fills max_buffer
    assert (publisher.stats().buffered, publisher.stats().depth) == (0, 4)


def test_inflight_window_must_be_positive(stepped: Stepped) -> None:
    with pytest.raises(ValueError, match="inflight_window must be at least 1"):
        Publisher(stepped.link, stepped.outbox, stepped.link.topics, SystemClock(), 0, "b")
