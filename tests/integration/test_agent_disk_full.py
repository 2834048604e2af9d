"""The whole agent on a real 2 MB / 5 MB state filesystem, with the broker away and back.

The broker stays down until the outbox has dropped a good share of results at the disk's
floor (read from the counters file, not a fixed 40 s: the substance is the same, the test is
shorter), then comes back. Then the disk is filled to the last byte and the agent restarted
on it. Every result the subscriber never got must be counted, by rule, in the persisted
counters, and nothing else.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.broker import MosquittoBroker
from tests.fakes.smallfs import fill, free_bytes, small_filesystem
from tests.integration.agent_helpers import (
    AgentProcess,
    Recorder,
    agent_config,
    new_device_id,
    write_config,
)

pytestmark = pytest.mark.slow

FAST_CAMERAS = [
    {"name": "cam_a", "uri": "synthetic://digits", "fps": 250},
    {"name": "cam_b", "uri": "synthetic://digits", "fps": 250},
]


def _counters(state: Path) -> dict[str, dict[str, int]]:
    path = state / "outbox.sqlite3.counters"
    try:
        doc: dict[str, dict[str, int]] = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return doc


def _results_dropped(state: Path) -> int:
    return sum(rule.get("results", 0) for rule in _counters(state).values())


def _wait(predicate: Any, timeout_s: float) -> bool:
    tick = threading.Event()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        tick.wait(0.2)
    return bool(predicate())


def _stored_ids(outbox: Path) -> set[str]:
    # immutable=1: a read-only look that needs no -shm file on the full disk.
    db = sqlite3.connect(f"file:{outbox}?immutable=1", uri=True)
    try:
        rows = db.execute("SELECT payload FROM outbox WHERE topic LIKE '%/results/%'").fetchall()
    finally:
        db.close()
    return {json.loads(bytes(r[0]))["msg_id"] for r in rows}


def _expected(summary: dict[str, Any], boot: str) -> set[str]:
    return {f"{boot}:{n}" for n in range(1, int(summary["results"]) + 1)}


@pytest.mark.parametrize("size_mb", [2, 5])
def test_full_state_disk_counts_every_loss_and_recovers(
    tmp_path: Path, restartable_broker: MosquittoBroker, size_mb: int
) -> None:
    broker = restartable_broker
    state = tmp_path / "state"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    device = new_device_id()
    config = write_config(
        tmp_path / "agent.yaml",
        agent_config(
            tmp_path,
            broker.port,
            device,
            cameras=FAST_CAMERAS,
            mqtt={"host": "127.0.0.1", "port": broker.port, "reconnect_max_s": 1},
        ),
    )
    outbox = state / "outbox.sqlite3"
    telemetry_topic = f"edge/{device}/telemetry"
    with small_filesystem(state, size_mb), Recorder(broker, f"edge/{device}/#", True) as sub:
        with AgentProcess(config, name="first", tmpdir=scratch) as first:
            online = sub.wait_json(f"edge/{device}/status", lambda d: d["state"] == "online", 30)
            boot1 = online["boot_id"]
            broker.stop()
            # Down until the disk floor has dropped a good share of results.
            assert _wait(lambda: _counters(state).get("disk_floor", {}).get("results", 0) > 500, 90)
            assert first.running(), first.stderr()[-4000:]
            broker.start()
            restarted_at = time.time()
            # Delivery recovers, and telemetry reports the drops.
            report = sub.wait_json(
                telemetry_topic,
                lambda d: d["ts"] > restarted_at and d["outbox"]["drops"]["disk_floor"] > 500,
                60,
            )
            assert (
                report["outbox"]["results_dropped"] >= report["outbox"]["drops"]["disk_floor"] // 2
            )
            assert sub.wait_for(
                lambda h: any(
                    m.topic.startswith(f"edge/{device}/results/") and m.json()["ts"] > restarted_at
                    for m in h
                ),
                30,
            ), first.stderr()[-4000:]
            # Now something fills the disk to the last byte while the agent runs, and the
            # broker goes away again, so the agent stops with a backlog on the full disk.
            fill(state)
            broker.stop()
            threading.Event().wait(3.0)  # input: inference keeps going on the full disk
            assert first.running(), first.stderr()[-4000:]
            summary1 = first.terminate()
        assert summary1["results"] > 1000
        assert summary1["outbox"]["depth"] > 100
        stored = _stored_ids(outbox)
        assert len(stored) > 100

        # Start on the still-full disk: it starts and drains what is stored.
        fill(state, "filler2")
        assert free_bytes(state) == 0
        broker.start()
        with AgentProcess(config, name="second", tmpdir=scratch) as second:
            arrived = sub.wait_ids(device, stored, 60)
            assert stored <= arrived, second.stderr()[-4000:]
            online2 = sub.wait_json(
                f"edge/{device}/status",
                lambda d: d["state"] == "online" and d["boot_id"] != boot1,
                30,
            )
            summary2 = second.terminate()
            log2 = second.stderr()
        sub.wait_json(f"edge/{device}/status", lambda d: d["state"] == "stopped", 15)
        still_stored = _stored_ids(outbox)
        counters = _counters(state)

    got = sub.result_ids(device)
    expected = _expected(summary1, boot1) | _expected(summary2, online2["boot_id"])
    missed = expected - got - still_stored
    assert got <= expected
    dropped = sum(rule["results"] for rule in counters.values())
    assert dropped == len(missed), (counters, len(missed))
    assert counters["disk_floor"]["results"] > 500
    assert summary2["outbox"]["results_dropped"] == dropped
    # On the full disk the outbox either opens in its emergency mode or, when the first run
    # left a reserve file behind, releases that reserve and opens normally: both say so.
    assert "outbox opened on a full disk" in log2 or "KiB disk reserve" in log2, log2[-4000:]
    assert "Traceback" not in log2
