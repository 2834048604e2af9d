"""The embedded amqtt broker: a real round trip, clean stop, clear errors."""

from __future__ import annotations

import logging
import socket
import threading
import warnings
from pathlib import Path

import pytest

from edge_agent.clock import FakeClock
from edge_agent.config import MqttConfig
from edge_agent.errors import TelemetryError
from edge_agent.telemetry.broker import EmbeddedBroker
from edge_agent.telemetry.mqtt_link import MqttLink
from edge_agent.telemetry.outbox import Outbox
from edge_agent.telemetry.payloads import result_payload
from edge_agent.telemetry.publisher import Publisher
from tests.fakes.broker import free_port
from tests.telemetry.mqtt_helpers import Subscriber


def test_embedded_broker_round_trip_through_the_outbox(tmp_path: Path) -> None:
    port = free_port()
    broker = EmbeddedBroker(port=port)
    broker.start()
    try:
        config = MqttConfig(host="embedded", port=port, topic_prefix="demo")
        link = MqttLink(config, "dev1", "b1", "1.0", FakeClock())
        outbox = Outbox(tmp_path / "o.sqlite", max_mb=1)
        publisher = Publisher(link, outbox, link.topics, FakeClock(), 10, "b1")
        with Subscriber("127.0.0.1", port, "demo/#") as sub:
            link.start()
            publisher.start()
            msg_id = publisher.publish_result(
                "cam0",
                result_payload(
                    ts=1.0,
                    camera="cam0",
                    frame=7,
                    captured_at=0.9,
                    latency_ms=2.0,
                    engine_ms=1.0,
                    model="demo",
                    precision="fp32",
                    profile=None,
                    outputs={"detections": []},
                ),
            )
            doc = sub.next_json("demo/dev1/results/cam0", timeout=10)
            assert publisher.flush(10)
            publisher.stop()
            publisher.join()
            link.stop()
            outbox.close()
    finally:
        broker.stop()
    assert (doc["msg_id"], doc["frame"]) == (msg_id, 7) == ("b1:1", 7)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 1):
        pass  # stopped means no longer listening


def test_port_in_use_is_a_telemetry_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        broker = EmbeddedBroker(port=port)
        with pytest.raises(TelemetryError, match=f"127.0.0.1:{port}: port {port} is in use"):
            broker.start()
    broker.stop()  # nothing running: a no-op
    # Failed fast: amqtt never ran, so it logged nothing (no ERROR, no traceback).
    assert [r.name for r in caplog.records if r.name.startswith("amqtt")] == []


def test_port_taken_after_the_probe_fails_quietly(caplog: pytest.LogCaptureFixture) -> None:
    # The race start() cannot probe away: the port is taken between its check and amqtt's
    # bind. Running the broker thread's body directly skips the probe.
    caplog.set_level(logging.DEBUG)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        broker = EmbeddedBroker(port=holder.getsockname()[1])
        thread = threading.Thread(target=broker._run)
        thread.start()
        thread.join(10)
    assert "address already in use" in str(broker._error)
    assert not broker._listening
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    # The filter was removed: later amqtt errors are logged again.
    assert logging.getLogger("amqtt.broker").filters == []


def test_port_zero_picks_a_free_port() -> None:
    filters = list(warnings.filters)
    broker = EmbeddedBroker(port=0)
    broker.start()
    try:
        assert broker.port > 0
        # The broker thread leaves the process-wide warning filters alone.
        assert warnings.filters == filters
        # A real client (a bare TCP probe that never sends CONNECT leaves amqtt a transport it
        # does not close on shutdown, which the garbage collector reports later).
        with Subscriber("127.0.0.1", broker.port, "probe/#"):
            pass
    finally:
        broker.stop()
