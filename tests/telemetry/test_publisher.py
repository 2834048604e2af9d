"""Results and telemetry through the outbox to a real mosquitto: nothing lost."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from edge_agent.telemetry.payloads import load_schema, result_payload, telemetry_payload
from tests.fakes.broker import MosquittoBroker
from tests.telemetry.conftest import Agent, AgentFactory
from tests.telemetry.mqtt_helpers import Subscriber, first_arrival_order_ok, persistent_broker

REPO = Path(__file__).resolve().parents[2]


def result(camera: str, frame: int, **extra: Any) -> dict[str, Any]:
    return result_payload(
        ts=1.0,
        camera=camera,
        frame=frame,
        captured_at=0.5,
        latency_ms=3.0,
        engine_ms=1.5,
        model="demo",
        precision="fp16",
        profile="maxq",
        outputs={"top_k": [{"label": "cat", "index": 0, "score": 0.9}]},
        **extra,
    )


def publish_many(agent: Agent, count: int, start: int = 0) -> list[str]:
    return [
        agent.publisher.publish_result(f"cam{i % 3}", result(f"cam{i % 3}", start + i))
        for i in range(count)
    ]


def test_results_arrive_in_order_with_gapless_msg_ids(
    mosquitto: MosquittoBroker, make_agent: AgentFactory, unique_prefix: str
) -> None:
    with Subscriber(mosquitto.host, mosquitto.port, f"{unique_prefix}/#") as sub:
        agent = make_agent(mosquitto.port)
        ids = publish_many(agent, 300)
        assert ids == [f"{agent.boot_id}:{n}" for n in range(1, 301)]
        got = sub.collect_results(set(ids), timeout=20)
        assert agent.publisher.flush(10)
    assert {doc["msg_id"] for _t, doc in got} == set(ids)
    assert first_arrival_order_ok(got)
    topic, doc = got[0]
    assert topic == f"{unique_prefix}/dev1/results/{doc['camera']}"
    jsonschema.validate(doc, load_schema("result"))
    stats = agent.publisher.stats()
    assert (stats.depth, stats.inflight, stats.acked, stats.dropped, stats.errors) == (
        0,
        0,
        300,
        0,
        0,
    )


def test_telemetry_is_published_and_valid(
    mosquitto: MosquittoBroker, make_agent: AgentFactory, unique_prefix: str
) -> None:
    with Subscriber(mosquitto.host, mosquitto.port, f"{unique_prefix}/#") as sub:
        agent = make_agent(mosquitto.port)
        stats = agent.publisher.stats()
        agent.publisher.publish_telemetry(
            telemetry_payload(
                ts=2.0,
                profile="maxq",
                total_w=7.5,
                rails={"VDD_IN": (5.0, 1.5, 7.5)},
                energy_j=75.0,
                perf_per_watt=40.0,
                mj_per_inference=25.0,
                fps=300.0,
                latency_ms=(4.0, 6.0, 9.0),
                outbox_depth=stats.depth,
                outbox_dropped=stats.dropped,
            )
        )
        doc = sub.next_json(f"{unique_prefix}/dev1/telemetry", timeout=10)
    jsonschema.validate(doc, load_schema("telemetry"))
    assert doc["power"]["rails"]["VDD_IN"] == {"v": 5.0, "a": 1.5, "w": 7.5}
    # An old-style caller (no lost/errors counters) still produces a valid payload.
    assert doc["outbox"] == {"depth": 0, "dropped": 0, "lost": 0, "errors": 0}


def test_broker_restart_loses_nothing(
    tmp_path: Path, make_agent: AgentFactory, unique_prefix: str
) -> None:
    broker = persistent_broker(tmp_path)
    broker.start()
    try:
        with Subscriber(
            broker.host,
            broker.port,
            f"{unique_prefix}/#",
            client_id=f"{unique_prefix}-sub",
            clean_session=False,
        ) as sub:
            agent = make_agent(broker.port, window=20)
            down = threading.Event()
            agent.link.add_connection_listener(lambda up: None if up else down.set())
            # Connected first: on a loaded machine the first connect can come after the stop.
            assert agent.link.wait_connected(10)
            ids = publish_many(agent, 500)
            broker.stop()
            assert down.wait(10)
            ids += publish_many(agent, 500, start=500)  # produced while the broker is away
            assert not agent.publisher.flush(1.5)  # nothing can drain while it is down
            assert agent.publisher.stats().depth > 0
            broker.start()
            ids += publish_many(agent, 500, start=1000)
            assert agent.publisher.flush(30)
            got = sub.collect_results(set(ids), timeout=30)
    finally:
        broker.stop()
    assert {doc["msg_id"] for _t, doc in got} == set(ids)
    assert len(ids) == 1500
    assert first_arrival_order_ok(got)
    assert agent.publisher.stats().errors == 0


def test_kill_9_then_restart_delivers_everything_committed(
    mosquitto: MosquittoBroker, tmp_path: Path, unique_prefix: str
) -> None:
    outbox = tmp_path / "state" / "outbox.sqlite"
    status_topic = f"{unique_prefix}/dev9/status"

    def spawn(count: int, mode: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.telemetry.agent_proc",
                str(mosquitto.port),
                unique_prefix,
                "dev9",
                str(outbox),
                str(count),
                mode,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )

    with Subscriber(mosquitto.host, mosquitto.port, f"{unique_prefix}/#") as sub:
        first = spawn(6000, "hang")
        assert first.stdout is not None
        boot1 = first.stdout.readline().split()[1]
        assert first.stdout.readline().strip() == "connected"
        while not (line := first.stdout.readline()).startswith("committed"):
            assert line, "the agent process ended early"
        assert int(line.split()[1]) > 0
        first.send_signal(signal.SIGKILL)  # while the outbox still drains to the broker
        first.wait(10)
        first.stdout.close()
        assert sub.status_states(status_topic, until="offline") == ["online", "offline"]

        with sqlite3.connect(outbox) as db:
            stored = {json.loads(p)["msg_id"] for (p,) in db.execute("SELECT payload FROM outbox")}
        assert stored, "the kill should leave a backlog in the outbox"

        second = spawn(0, "drain")
        out, _ = second.communicate(timeout=60)
        assert second.returncode == 0, out
        assert out.splitlines()[-2:] == ["drained", "stopped"]
        assert sub.status_states(status_topic, until="stopped") == ["online", "stopped"]
        expected = {f"{boot1}:{n}" for n in range(1, 6001)}
        got = sub.collect_results(expected, timeout=30)
    received = {doc["msg_id"] for _t, doc in got}
    assert stored <= expected
    assert received == expected


def test_disk_full_is_counted_and_publishing_continues(
    mosquitto: MosquittoBroker, make_agent: AgentFactory, unique_prefix: str
) -> None:
    with Subscriber(mosquitto.host, mosquitto.port, f"{unique_prefix}/#") as sub:
        agent = make_agent(mosquitto.port, max_mb=0.5)
        # 6 MB in one row exceeds the outbox's hard page cap: SQLite answers SQLITE_FULL,
        # exactly as on a full disk.
        agent.publisher.publish_result("cam0", result("cam0", 0, truth="x" * 6_000_000))
        assert agent.publisher.flush(5)
        stats = agent.publisher.stats()
        assert (stats.lost, stats.errors, stats.outbox_state) == (1, 1, "disk_full")
        ids = publish_many(agent, 20, start=1)
        got = sub.collect_results(set(ids), timeout=10)
        assert agent.publisher.flush(5)
        # The loss reaches subscribers in telemetry, not only the log.
        stats = agent.publisher.stats()
        agent.publisher.publish_telemetry(
            telemetry_payload(
                ts=3.0,
                profile=None,
                total_w=None,
                outbox_depth=stats.depth,
                outbox_dropped=stats.dropped,
                outbox_lost=stats.lost,
                outbox_errors=stats.errors,
            )
        )
        telemetry = sub.next_json(f"{unique_prefix}/dev1/telemetry", timeout=10)
    assert {doc["msg_id"] for _t, doc in got} == set(ids)
    assert agent.publisher.stats().outbox_state == "ok"
    assert ids[0] == f"{agent.boot_id}:2"
    jsonschema.validate(telemetry, load_schema("telemetry"))
    assert telemetry["outbox"] == {"depth": 0, "dropped": 0, "lost": 1, "errors": 1}


@pytest.mark.parametrize("window", [1, 7])
def test_inflight_never_exceeds_window(
    mosquitto: MosquittoBroker, make_agent: AgentFactory, window: int
) -> None:
    agent = make_agent(mosquitto.port, window=window)
    assert agent.link.wait_connected(10)
    publish_many(agent, 200)
    assert agent.publisher.flush(20)
    stats = agent.publisher.stats()
    assert 1 <= stats.peak_inflight <= window
    assert (stats.acked, stats.published) == (200, 200)
