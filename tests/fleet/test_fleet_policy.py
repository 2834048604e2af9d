"""A signed fleet push sets ``profile.policy`` on a running agent (simulated Orin Nano, real
mosquitto): the governor starts, retunes or stops without a restart, and says who asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from edge_agent.telemetry.payloads import load_schema
from tests.daemon.sim_agent import gpu_cap
from tests.fakes.broker import MosquittoBroker
from tests.fleet.conftest import AgentFactory
from tests.fleet.fleet_helpers import Signer, StateWatcher, encode, unique
from tests.integration.agent_helpers import Recorder
from tests.telemetry.mqtt_helpers import Subscriber

pytestmark = pytest.mark.slow


def test_a_signed_push_sets_the_governor_policy(
    tmp_path: Path, mosquitto: MosquittoBroker, make_agent: AgentFactory
) -> None:
    prefix, device = unique("fl"), unique("box")
    signer = Signer(tmp_path / "keys", "ops-1")
    agent = make_agent(device, prefix, trusted_keys=str(tmp_path / "keys"))
    topic = f"{prefix}/{device}/config/set"
    policy_topic = f"{prefix}/{device}/policy/state"

    def push(version: int, profile: dict[str, Any]) -> None:
        doc = {"version": version, "target": f"device:{device}", "sections": {"profile": profile}}
        states.publish(topic, encode(signer.sign(doc)))

    def policy_state() -> dict[str, Any]:
        doc = policies.next_json(policy_topic, timeout=15)
        jsonschema.validate(doc, load_schema("policy_state"))
        return doc

    with (
        StateWatcher(mosquitto, prefix, device) as states,
        Subscriber(mosquitto.host, mosquitto.port, policy_topic) as policies,
        Recorder(mosquitto, f"{prefix}/{device}/telemetry") as telemetry,
    ):
        agent.start()
        states.wait_for(0, ["applied"])
        assert (policy_state()["policy"], agent.parts.governor) == ("fixed", None)

        push(1, {"policy": "slo", "governor": {"slo_latency_ms": 40, "dwell_s": 1}})
        assert states.wait_for(1, ["applied"])["running"] == {f"device:{device}": 1}
        state = policy_state()
        assert (state["policy"], state["set_by"], state["persists"]) == ("slo", "fleet", True)
        worker = agent.parts.governor
        assert worker is not None
        assert (worker.params.policy, worker.params.slo_latency_s) == ("slo", 0.04)
        assert agent.config.profile.policy == "slo"

        # The document is checked by the config's rules: power_cap without its cap is refused.
        push(2, {"policy": "power_cap"})
        report = states.wait_for(2, ["rejected"])
        assert report["errors"] == ["sections.profile: policy power_cap needs governor.power_cap_w"]
        assert agent.parts.governor is worker

        push(3, {"policy": "fixed", "initial": "maxq"})
        states.wait_for(3, ["applied"])
        state = policy_state()
        assert (state["policy"], state["preset"], state["set_by"]) == ("fixed", "maxq", "fleet")
        assert agent.parts.governor is None
        assert gpu_cap(Path(agent.config.root)) == 408_000_000  # Max-Q's GPU cap

        def events() -> list[str]:
            return [
                e
                for m in telemetry.snapshot()
                for e in m.json().get("events", [])
                if e.startswith("governor: policy ")
            ]

        for _ in range(100):  # the next telemetry reports carry them
            if len(events()) >= 2:
                break
            agent.stop.wait(0.1)
    assert events()[0].startswith("governor: policy fixed -> slo by fleet; applied in ")
    assert events()[1].startswith("governor: policy slo -> fixed (maxq) by fleet; applied in ")
    assert not agent.supervisor.failures
