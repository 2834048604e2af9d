"""Losses reach telemetry even when the outbox cannot store the telemetry itself."""

from __future__ import annotations

import json

from edge_agent.telemetry.payloads import telemetry_payload
from tests.fakes.broker import MosquittoBroker
from tests.telemetry.conftest import AgentFactory
from tests.telemetry.mqtt_helpers import Subscriber
from tests.telemetry.test_publisher import publish_many


def test_telemetry_the_outbox_cannot_store_is_sent_from_memory(
    mosquitto: MosquittoBroker, make_agent: AgentFactory, unique_prefix: str
) -> None:
    # A 5 MB message is over the outbox's hard page cap (2 x 0.25 MB + 4 MiB): SQLite
    # answers SQLITE_FULL for it, exactly as on a full disk.
    agent = make_agent(mosquitto.port, max_mb=0.25)
    topic = f"{unique_prefix}/dev1/telemetry"
    with Subscriber(mosquitto.host, mosquitto.port, topic) as sub:
        doc = telemetry_payload(ts=1.0, profile="maxq", total_w=None, events=["x" * 5_000_000])
        agent.publisher.publish_telemetry(doc)
        _topic, payload, _retain = sub.get(timeout=10)
        assert len(payload) > 5_000_000
        assert json.loads(payload)["profile"] == "maxq"
        stats = agent.publisher.stats()
        assert stats.lost == 1
        assert stats.drops["disk_full"] == 1  # counted, though it was delivered from memory
        assert stats.results_dropped == 0
        # Results keep flowing through the outbox.
        ids = publish_many(agent, 20)
        assert agent.publisher.flush(10)
        assert agent.publisher.stats().acked >= len(ids)
