"""The whole agent against hostile inbound messages: retained and live, on every topic."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes.broker import MosquittoBroker
from tests.integration.agent_helpers import (
    AgentProcess,
    Received,
    Recorder,
    agent_config,
    count_results,
    new_device_id,
    write_config,
)
from tests.telemetry.hostile import HOSTILE_PAYLOADS, NESTED

pytestmark = pytest.mark.slow


def _fresh(
    results: Callable[[list[Received]], int], mark: int, count: int
) -> Callable[[list[Received]], bool]:
    """At least ``count`` results after history index ``mark``."""
    return lambda history: results(history[mark:]) >= count


def test_hostile_inbound_messages_never_stop_the_agent(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    device = new_device_id()
    ha_prefix = f"ha{uuid.uuid4().hex[:8]}"
    config = write_config(
        tmp_path / "agent.yaml",
        agent_config(
            tmp_path,
            mosquitto.port,
            device,
            mqtt={
                "host": "127.0.0.1",
                "port": mosquitto.port,
                "ha_discovery": True,
                "ha_prefix": ha_prefix,
            },
        ),
    )
    state = f"edge/{device}/profile/state"
    command = f"edge/{device}/profile/set"
    ha_status = f"{ha_prefix}/status"
    results = count_results(device)
    with Recorder(mosquitto, f"edge/{device}/#") as sub:
        # The 1 KB message that used to kill every start, waiting retained for the agent.
        sub.publish_retained(command, NESTED)
        sub.publish_retained(ha_status, NESTED)
        try:
            for run in ("first", "second"):
                with AgentProcess(config, name=run) as agent:
                    answer = sub.wait_json(
                        state, lambda d: "nested deeper" in (d["error"] or ""), 30
                    )
                    assert answer["applied"] is False
                    mark = len(sub.snapshot())
                    assert sub.wait_for(_fresh(results, mark, 5), 30), agent.stderr()[-4000:]
                    if run == "second":
                        for payload in HOSTILE_PAYLOADS.values():
                            mark = len(sub.snapshot())
                            sub.publish(ha_status, payload)
                            sub.publish(command, payload)
                            answer = sub.wait_json(state, lambda d: True, 10, after=mark)
                            assert answer["applied"] is False
                            assert answer["error"]
                        mark = len(sub.snapshot())
                        assert sub.wait_for(_fresh(results, mark, 10), 30)
                    assert agent.running(), agent.stderr()[-4000:]
                    summary = agent.terminate()
                    log = agent.stderr()
                assert summary["results"] > 0
                assert "Traceback" not in log
                assert "RecursionError" not in log
        finally:
            sub.publish_retained(command, b"")
            sub.publish_retained(ha_status, b"")
