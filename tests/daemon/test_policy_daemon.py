"""Changing the governor policy of a running daemon over MQTT, on a simulated Orin Nano.

Real ORT, real mosquitto, the simulated board's files: the Home Assistant select found through
discovery sends the bare policy name, the agent answers on ``policy/state``, and what the
governor does afterwards is read back from the board's GPU ``max_freq`` file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from edge_agent.agent.daemon import Agent
from edge_agent.telemetry.payloads import load_schema
from tests.daemon.sim_agent import gpu_cap, simulated_agent, wait_for
from tests.fakes.broker import MosquittoBroker
from tests.integration.agent_helpers import Recorder
from tests.telemetry.hostile import POLICY_HOSTILE
from tests.telemetry.mqtt_helpers import Subscriber

pytestmark = pytest.mark.slow

MAXQ_GPU_HZ = 408_000_000  # power_profiles/jetson-orin-nano-super.yaml
MAXP_GPU_HZ = 918_000_000  # the 25W mode the simulated board boots in


@pytest.fixture
def sim_agent(tmp_path: Path, mosquitto: MosquittoBroker) -> Iterator[tuple[Agent, Path]]:
    profile = {
        "policy": "slo",
        "initial": "maxp",
        "governor": {"slo_latency_ms": 50, "dwell_s": 1, "hysteresis": 0.01},
    }
    mqtt = {"ha_discovery": True, "ha_prefix": f"ha-{tmp_path.name[-10:]}".replace("_", "-")}
    with simulated_agent(tmp_path, mosquitto, "pol", profile, mqtt) as pair:
        yield pair


def test_policy_changes_over_mqtt_steer_the_running_governor(
    sim_agent: tuple[Agent, Path], mosquitto: MosquittoBroker
) -> None:
    agent, root = sim_agent
    dev = agent.config.device_id
    ha = agent.config.mqtt.ha_prefix
    state_topic = f"edge/{dev}/policy/state"
    schema = load_schema("policy_state")
    with (
        Recorder(mosquitto, f"edge/{dev}/telemetry") as telemetry,
        Subscriber(mosquitto.host, mosquitto.port, state_topic) as states,
        Subscriber(mosquitto.host, mosquitto.port, f"{ha}/device/{dev}/config") as discovery,
    ):

        def answer() -> dict[str, object]:
            doc = states.next_json(state_topic, timeout=15)
            jsonschema.validate(doc, schema)
            return doc

        agent.start()
        tele_topic = f"edge/{dev}/telemetry"

        def governor_report(set_by: str, policy: str) -> dict[str, object]:
            """The ``governor`` object of the first telemetry since the change."""
            doc = telemetry.wait_json(
                tele_topic,
                lambda d: (
                    (d.get("governor") or {}).items() >= {("set_by", set_by), ("policy", policy)}
                ),
                timeout_s=10,
            )
            gov: dict[str, object] = doc["governor"]
            return gov

        select = json.loads(discovery.get(timeout=10)[1])["cmps"]["policy"]
        assert select["state_topic"] == state_topic
        start = answer()
        assert (start["policy"], start["set_by"], start["persists"]) == ("slo", "config", True)
        assert gpu_cap(root) == MAXP_GPU_HZ  # profile.initial, applied at start
        gov = agent.parts.governor
        assert gov is not None
        # Under slo at a light load the governor leaves the top GPU clock.
        assert wait_for(lambda: gpu_cap(root) < MAXP_GPU_HZ, 30.0)

        # Home Assistant's select sends the bare option; fixed holds the config's preset.
        states.publish(select["command_topic"], b"fixed")
        fixed = answer()
        assert (fixed["policy"], fixed["preset"], fixed["accepted"]) == ("fixed", "maxp", True)
        assert (fixed["set_by"], fixed["persists"]) == ("mqtt", False)
        assert agent.parts.governor is None
        assert gpu_cap(root) == MAXP_GPU_HZ
        # Telemetry follows: fixed holds maxp, no governor point.
        assert governor_report("mqtt", "fixed") == {
            "policy": "fixed",
            "set_by": "mqtt",
            "preset": "maxp",
        }

        states.publish(select["command_topic"], b'{"policy": "fixed", "initial": "maxq"}')
        maxq = answer()
        assert (maxq["policy"], maxq["preset"], maxq["accepted"]) == ("fixed", "maxq", True)
        assert gpu_cap(root) == MAXQ_GPU_HZ
        assert agent.parts.current_profile() == "maxq"

        # Hostile payloads are answered with the field at fault; the policy in force stays.
        for name in ("missing_power_cap", "slo_target_nan", "oversized", "unknown_policy"):
            payload, error = POLICY_HOSTILE[name]
            states.publish(select["command_topic"], payload)
            refused = answer()
            assert (refused["accepted"], refused["policy"]) == (False, "fixed"), name
            assert error in str(refused["error"]), name
        assert gpu_cap(root) == MAXQ_GPU_HZ

        states.publish(
            select["command_topic"],
            b'{"policy": "power_cap", "governor": {"power_cap_w": 20, "slo_latency_ms": 40}}',
        )
        cap = answer()
        assert (cap["policy"], cap["accepted"], cap["error"]) == ("power_cap", True, None)
        worker = agent.parts.governor
        assert worker is not None
        assert (worker.params.policy, worker.params.power_cap_w) == ("power_cap", 20)
        assert worker.params.slo_latency_s == pytest.approx(0.04)
        capped = governor_report("mqtt", "power_cap")
        point = capped["point"]
        assert isinstance(point, dict)
        assert point["label"] in {p.label() for p in worker.points}
        assert "preset" not in capped
        assert agent.config.profile.policy == "slo"  # the file's config is not rewritten
        # A reload of the unchanged file keeps the runtime policy (nothing in it changed).
        assert agent.apply_config(agent.config).status == "unchanged"
        assert agent.parts.governor is worker

        def policy_events() -> list[str]:
            return [
                e
                for m in telemetry.snapshot()
                for e in m.json().get("events", [])
                if e.startswith("governor: policy ")
            ]

        assert wait_for(lambda: len(policy_events()) >= 3, 10.0), policy_events()
    events = policy_events()
    assert events[0].startswith("governor: policy slo -> fixed (maxp) by mqtt; applied in ")
    assert events[1].startswith("governor: policy fixed (maxp) -> fixed (maxq) by mqtt; ")
    assert events[2].startswith("governor: policy fixed (maxq) -> power_cap by mqtt; ")
    assert agent.snapshot().results > 0


def test_a_reload_changes_the_policy_live_and_other_profile_keys_still_need_a_restart(
    sim_agent: tuple[Agent, Path], mosquitto: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge_agent.agent.governor_control")
    agent, _root = sim_agent
    state_topic = f"edge/{agent.config.device_id}/policy/state"
    with Subscriber(mosquitto.host, mosquitto.port, state_topic) as states:
        agent.start()
        assert states.next_json(state_topic, timeout=15)["set_by"] == "config"
        worker = agent.parts.governor
        assert worker is not None
        governor = agent.config.profile.governor.model_copy(update={"power_cap_w": 12.0})
        profile = agent.config.profile.model_copy(
            update={"policy": "power_cap", "governor": governor}
        )
        outcome = agent.apply_config(agent.config.model_copy(update={"profile": profile}))
        assert (outcome.status, outcome.changed) == ("applied", ("profile",))
        assert agent.parts.governor is worker  # retuned, not rebuilt
        assert (worker.params.policy, worker.params.power_cap_w) == ("power_cap", 12.0)
        state = states.next_json(state_topic, timeout=15)
        assert (state["policy"], state["set_by"], state["persists"]) == (
            "power_cap",
            "config reload",
            True,
        )
        backend = profile.model_copy(update={"backend": "sysfs"})
        refused = agent.apply_config(agent.config.model_copy(update={"profile": backend}))
        assert (refused.status, refused.errors) == (
            "rejected",
            ("profile: changes need a restart",),
        )
        assert agent.config.profile == profile
    # The event goes to telemetry and the log alike; the log is read here (the telemetry
    # reporter may already have taken it).
    assert any(
        r.getMessage().startswith("governor: policy slo -> power_cap by config reload; applied")
        for r in caplog.records
    )
