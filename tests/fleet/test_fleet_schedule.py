"""Documents for a maintenance window: a future ``not_before`` is kept as ``scheduled`` and
applied at that time, over a real mosquitto to an in-process agent on a simulated board."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent.daemon import Agent
from edge_agent.cli.main import main
from edge_agent.fleet.rollout import AbortRule
from edge_agent.fleet.store import FleetState, FleetStore
from tests.fakes.broker import MosquittoBroker
from tests.fleet.conftest import AgentFactory
from tests.fleet.fleet_helpers import Signer, StateWatcher, WallShiftClock, encode, unique

pytestmark = pytest.mark.slow

HOUR = 3600.0


def _batching(version: int, target: str, max_batch: int, **window: float) -> dict[str, Any]:
    sections = {"batching": {"max_batch": max_batch}}
    return {"version": version, "target": target, "sections": sections, **window}


def _fleet(agent: Agent) -> Any:
    assert agent.fleet is not None
    return agent.fleet


def test_a_scheduled_document_is_replaced_bounded_and_applied_at_its_time(
    tmp_path: Path, mosquitto: MosquittoBroker, make_agent: AgentFactory
) -> None:
    prefix, device = unique("fl"), unique("box")
    target, topic = f"device:{device}", f"{prefix}/{device}/config/set"
    signer = Signer(tmp_path / "keys", "ops-1")
    clock = WallShiftClock()
    agent = make_agent(device, prefix, clock=clock, trusted_keys=str(tmp_path / "keys"))
    with StateWatcher(mosquitto, prefix, device) as states:
        agent.start()
        states.wait_for(0, ["applied"])
        tonight = clock.wall() + 2 * HOUR
        states.publish(topic, encode(signer.sign(_batching(2, target, 3, not_before=tonight))))
        first = states.wait_for(2, ["scheduled"])
        assert first["scheduled"] == {target: {"version": 2, "not_before": tonight}}
        assert first["running"] == {}
        assert first["key_id"] == "ops-1"
        assert first["reason"].startswith(f"not valid before {tonight:.0f}")
        assert agent.config.batching.max_batch == 1

        # A newer scheduled version replaces it; an older one is stale; the same one is quiet.
        later = tonight + HOUR
        newer = signer.sign(_batching(3, target, 5, not_before=later, expires=later + HOUR))
        states.publish(topic, encode(newer), retain=True)
        replaced = states.wait_for(3, ["scheduled"])
        assert replaced["scheduled"] == {target: {"version": 3, "not_before": later}}
        assert replaced["reason"].endswith("replaces scheduled version 2")
        states.publish(topic, encode(signer.sign(_batching(2, target, 3, not_before=tonight))))
        stale = states.wait_for(2, ["stale"])
        assert stale["reason"] == "version 2 <= version 3 already scheduled"
        assert stale["scheduled"] == {target: {"version": 3, "not_before": later}}

        # More than 30 days ahead is refused, naming it.
        far = clock.wall() + 31 * 24 * HOUR
        states.publish(topic, encode(signer.sign(_batching(9, target, 7, not_before=far))))
        refused = states.wait_for(9, ["rejected"])
        assert refused["reason"].startswith(f"not_before {far:.0f} is 31.0 days ahead")
        assert "at most 30" in refused["reason"]
        saved = FleetStore(tmp_path / "state").load()
        assert saved.scheduled == {target: newer}, "the scheduled document is on disk, signed"

        # Nothing happens before its time; at not_before it goes through the health gate.
        clock.advance(2.5 * HOUR)
        _fleet(agent).wake()
        assert agent.config.batching.max_batch == 1
        clock.advance(0.5 * HOUR)
        _fleet(agent).wake()
        applied = states.wait_for(3, ["applied"])
        assert applied["running"] == {target: 3}
        assert applied["scheduled"] == {}
        assert applied["health"]["results"] >= 5
        assert agent.config.batching.max_batch == 5
        assert FleetStore(tmp_path / "state").load().scheduled == {}
        states.publish(topic, b"", retain=True)


def test_expiry_staleness_and_a_restart_keep_the_rules(
    tmp_path: Path, mosquitto: MosquittoBroker, make_agent: AgentFactory
) -> None:
    prefix, device = unique("fl"), unique("box")
    target, topic = f"device:{device}", f"{prefix}/{device}/config/set"
    clock = WallShiftClock()
    now = clock.wall()
    # The last run scheduled version 4 (the state file says so) and the broker no longer
    # holds it: the restart alone must bring it back.
    saved = _batching(4, target, 6, not_before=now + HOUR, expires=now + 2 * HOUR)
    FleetStore(tmp_path / "state").save(FleetState(scheduled={target: saved}))
    agent = make_agent(device, prefix, clock=clock)
    with StateWatcher(mosquitto, prefix, device) as states:
        agent.start()
        assert _fleet(agent).schedule.summary() == {
            target: {"version": 4, "not_before": now + HOUR}
        }
        # A group-independent immediate version 5 makes the scheduled 4 stale.
        states.publish(topic, encode(_batching(5, target, 2)))
        dropped = states.wait_for(4, ["stale"])
        assert dropped["reason"] == "version 5 arrived to apply now; scheduled version dropped"
        assert dropped["scheduled"] == {}
        assert states.wait_for(5, ["applied"])["running"] == {target: 5}
        assert agent.config.batching.max_batch == 2

        # A scheduled version that expired before the device looked again is rejected.
        start = clock.wall()
        window = {"not_before": start + HOUR, "expires": start + 2 * HOUR}
        states.publish(topic, encode(_batching(6, target, 8, **window)))
        states.wait_for(6, ["scheduled"])
        clock.advance(3 * HOUR)
        _fleet(agent).wake()
        expired = states.wait_for(6, ["rejected"])
        assert expired["reason"].startswith(f"expired at {start + 2 * HOUR:.0f}")
        assert expired["running"] == {target: 5}
        assert agent.config.batching.max_batch == 2


def test_restart_applies_a_saved_schedule_and_the_operator_counts_scheduled_as_accepted(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    make_agent: AgentFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix, device = unique("fl"), unique("box")
    target = f"device:{device}"
    clock = WallShiftClock()
    now = clock.wall()
    saved = _batching(4, target, 6, not_before=now + HOUR)
    FleetStore(tmp_path / "state").save(FleetState(scheduled={target: saved}))
    agent = make_agent(device, prefix, clock=clock)
    with StateWatcher(mosquitto, prefix, device) as states:
        agent.start()
        states.wait_for(0, ["applied"])
        clock.advance(HOUR)
        _fleet(agent).wake()
        assert states.wait_for(4, ["applied"])["running"] == {target: 4}
        assert agent.config.batching.max_batch == 6
        # The operator pushes a document for tonight: the device accepts it as scheduled.
        tonight = clock.wall() + 4 * HOUR
        doc = tmp_path / "v7.json"
        doc.write_text(json.dumps(_batching(7, target, 3, not_before=tonight)))
        capsys.readouterr()
        code = main([
            "fleet", "push", str(doc), "--host", mosquitto.host, "--port", str(mosquitto.port),
            "--prefix", prefix, "--json", "--timeout", "30", "--device", device,
            "--max-failures", "0%",
        ])  # fmt: skip
        out, err = capsys.readouterr()
        report = json.loads(out)
        assert code == 0, report
        assert report["counts"] == {"scheduled": 1}
        assert "scheduled and apply it then" in err
        assert not AbortRule(0.0).should_abort({device: "scheduled"})
        assert main(["fleet", "status", "--host", mosquitto.host, "--port", str(mosquitto.port),
                     "--prefix", prefix, "--json", "--wait", "1.5"]) == 0  # fmt: skip
        (row,) = json.loads(capsys.readouterr().out)
        assert row["config_status"] == "scheduled"
        assert row["scheduled"] == {target: {"version": 7, "not_before": tonight}}
        assert row["running"] == {target: 4}

        clock.advance(4 * HOUR)
        _fleet(agent).wake()
        applied = states.wait_for(7, ["applied"])
        assert applied["running"] == {target: 7}
        assert agent.config.batching.max_batch == 3
        states.publish(f"{prefix}/{device}/config/set", b"", retain=True)
