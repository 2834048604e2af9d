"""Delete on PUBACK, at the agent level: a broker frozen with results in flight acknowledges
nothing, so the agent's outbox must keep every row it sent; once the broker is stopped and
back, every msg_id arrives and the outbox drains.

``SIGSTOP`` freezes mosquitto with its connections open: the agent's client stays connected
and keeps publishing (paho accepts the writes), but no PUBACK comes back. An outbox that
deleted rows at publish time, not at PUBACK, would empty here and lose whatever the frozen
broker never read.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.fakes.broker import MosquittoBroker
from tests.integration.agent_helpers import (
    AgentProcess,
    Recorder,
    agent_config,
    count_results,
    new_device_id,
    outbox_result_ids,
    wait_outbox,
    write_config,
)

pytestmark = pytest.mark.slow

TWO_CAMERAS = [
    {"name": "cam_a", "uri": "synthetic://digits", "fps": 15},
    {"name": "cam_b", "uri": "synthetic://digits", "fps": 15},
]


def _ns(ids: set[str]) -> list[int]:
    return sorted(int(m.rsplit(":", 1)[1]) for m in ids)


def test_unacknowledged_results_stay_in_the_outbox_until_puback(
    tmp_path: Path, restartable_broker: MosquittoBroker
) -> None:
    broker = restartable_broker
    device = new_device_id()
    config = write_config(
        tmp_path / "agent.yaml",
        agent_config(tmp_path, broker.port, device, cameras=TWO_CAMERAS),
    )
    outbox = tmp_path / "state" / "outbox.sqlite3"
    results = count_results(device)
    with (
        Recorder(broker, f"edge/{device}/#", persistent=True) as sub,
        AgentProcess(config) as agent,
    ):
        assert sub.wait_for(lambda h: results(h) >= 20, 30), agent.stderr()[-4000:]
        assert broker.proc is not None
        os.kill(broker.proc.pid, signal.SIGSTOP)
        # 60 results (2 s at 30 fps) with no PUBACK: every one of them must still be a row.
        held = wait_outbox(outbox, at_least=60, timeout_s=20)
        assert len(held) >= 60, (
            f"outbox held only {len(held)} unacknowledged results: rows deleted before "
            f"PUBACK\n{agent.stderr()[-4000:]}"
        )
        ns = _ns(held)
        assert ns == list(range(ns[0], ns[-1] + 1)), "the held rows are one unbroken run"
        assert agent.running()
        # Stop the broker with those results in flight (SIGTERM acts once it is thawed).
        broker.proc.terminate()
        os.kill(broker.proc.pid, signal.SIGCONT)
        broker.proc.wait(timeout=10)
        broker.proc = None
        broker.start()
        # The agent reconnects and resends what was never acknowledged.
        resent = sub.wait_ids(device, held, 45)
        assert held <= resent, f"{len(held - resent)} held results never arrived"
        summary = agent.terminate()
        boot = next(iter(held)).rsplit(":", 1)[0]
        everything = {f"{boot}:{n}" for n in range(1, summary["results"] + 1)}
        arrived = sub.wait_ids(device, everything, 45)
    missing = _ns(everything - arrived)
    assert not missing, f"{len(missing)} of {len(everything)} results lost: {missing[:20]}"
    assert arrived == everything, "no msg_id beyond the summary's count"
    assert summary["outbox"]["depth"] == 0
    assert summary["outbox"]["lost"] == 0
    assert outbox_result_ids(outbox) == set()
