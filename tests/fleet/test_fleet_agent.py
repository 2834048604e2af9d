"""Fleet pushes to a real in-process agent on a simulated board, over a real mosquitto."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from edge_agent.agent.daemon import Agent
from edge_agent.fleet.store import FleetState, FleetStore
from edge_agent.pipeline.models import bundled_demo_model
from edge_agent.telemetry.payloads import load_schema
from tests.fakes.broker import MosquittoBroker
from tests.fleet.conftest import AgentFactory
from tests.fleet.fleet_helpers import Signer, StateWatcher, encode, unique
from tests.integration.agent_helpers import wait_results
from tests.telemetry.mqtt_helpers import Subscriber

pytestmark = pytest.mark.slow


def _results_after(agent: Agent, count: int, timeout_s: float = 20.0) -> None:
    wait_results(agent, agent.snapshot().results + count - 1, timeout_s)


def _next_telemetry(agent: Agent) -> dict[str, Any]:
    assert agent.parts.reporter is not None
    previous = agent.parts.reporter.last_telemetry
    for _ in range(200):
        last = agent.parts.reporter.last_telemetry
        if last is not None and last is not previous:
            return last
        agent.stop.wait(0.05)
    raise AssertionError("no telemetry within 10 s")


def test_signed_push_is_applied_and_bad_ones_are_refused(
    tmp_path: Path, mosquitto: MosquittoBroker, make_agent: AgentFactory
) -> None:
    prefix, device, group = unique("fl"), unique("box"), unique("lobby")
    signer = Signer(tmp_path / "keys", "ops-1")
    rogue = Signer(tmp_path / "rogue", "rogue")
    agent = make_agent(device, prefix, group=group, trusted_keys=str(tmp_path / "keys"))
    group_topic = f"{prefix}/fleet/{group}/config/set"
    device_topic = f"{prefix}/{device}/config/set"
    with StateWatcher(mosquitto, prefix, device) as states:
        agent.start()
        assert states.wait_for(0, ["applied"])["signed"] is True
        good = {
            "version": 2,
            "target": f"group:{group}",
            "sections": {"batching": {"max_batch": 4}},
        }
        states.publish(group_topic, encode(signer.sign(good)), retain=True)
        applied = states.wait_for(2, ["applied"])
        assert applied["key_id"] == "ops-1"
        assert applied["health"]["results"] >= 5
        assert applied["running"] == {f"group:{group}": 2}
        assert agent.config.batching.max_batch == 4
        saved = FleetStore(tmp_path / "state").load()
        assert saved.last_good[f"group:{group}"]["version"] == 2
        telemetry = _next_telemetry(agent)
        assert telemetry["config_version"] == {f"group:{group}": 2}
        jsonschema.validate(telemetry, load_schema("telemetry"))
        with Subscriber(mosquitto.host, mosquitto.port, f"{prefix}/{device}/status") as status:
            online = status.next_json(f"{prefix}/{device}/status")  # the retained one
        assert online["config_version"] == {f"group:{group}": 2}
        jsonschema.validate(online, load_schema("status"))

        def refused(doc: dict[str, Any], version: int | None, status: str) -> dict[str, Any]:
            states.publish(device_topic, encode(doc))
            return states.wait_for(version, [status])

        doc3 = {**good, "version": 3}
        assert "unsigned" in refused(doc3, 3, "rejected")["reason"]
        assert "unknown signing key 'rogue'" in refused(rogue.sign(doc3), 3, "rejected")["reason"]
        other = signer.sign({**doc3, "target": "group:elsewhere"})
        assert "not this device" in refused(other, 3, "rejected")["reason"]
        replayed = {**other, "target": f"group:{group}"}  # re-targeted: signature breaks
        assert "bad signature" in refused(replayed, 3, "rejected")["reason"]
        touches_mqtt = signer.sign({**doc3, "sections": {"mqtt": {"host": "evil"}}})
        report = refused(touches_mqtt, 3, "rejected")
        assert report["errors"] == ["sections.mqtt: device-local setting, cannot be pushed"]
        expired = signer.sign({**doc3, "expires": 1000.0})
        assert "expired" in refused(expired, 3, "rejected")["reason"]
        schema = signer.sign({**doc3, "sections": {"batching": {"max_batch": 0}}})
        assert refused(schema, 3, "rejected")["errors"] == [
            "sections.batching.max_batch: Input should be greater than or equal to 1"
        ]
        stale = signer.sign({**good, "version": 1})
        assert refused(stale, 1, "stale")["reason"] == "version 1 <= applied version 2"
        assert agent.config.batching.max_batch == 4, "the applied config keeps running"
        _results_after(agent, 5)
    assert not agent.supervisor.failures


def test_a_model_push_switches_live_and_bad_models_are_refused(
    tmp_path: Path, mosquitto: MosquittoBroker, make_agent: AgentFactory
) -> None:
    prefix, device = unique("fl"), unique("box")
    agent = make_agent(device, prefix)
    model = bundled_demo_model()
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    topic = f"{prefix}/{device}/config/set"
    target = f"device:{device}"
    with (
        StateWatcher(mosquitto, prefix, device) as states,
        Subscriber(mosquitto.host, mosquitto.port, f"{prefix}/{device}/results/+") as results,
    ):
        agent.start()
        assert states.wait_for(0, ["applied"])["signed"] is False
        _results_after(agent, 10)
        wrong = {"path": str(model), "sha256": "0" * 64, "name": "pushed"}
        states.publish(
            topic, encode({"version": 1, "target": target, "sections": {"model": wrong}})
        )
        report = states.wait_for(1, ["rejected"])
        assert report["errors"] == ["sections.model.sha256: does not match the model file"]
        corrupt = tmp_path / "corrupt.onnx"
        corrupt.write_bytes(b"not an onnx model")
        digest = hashlib.sha256(corrupt.read_bytes()).hexdigest()
        broken = {"path": str(corrupt), "sha256": digest}
        states.publish(
            topic, encode({"version": 2, "target": target, "sections": {"model": broken}})
        )
        assert "corrupt.onnx" in states.wait_for(2, ["rolled_back"])["reason"]
        assert agent.config.model.path is None, "the old model keeps running"
        right = {"path": str(model), "sha256": sha, "name": "pushed-digits"}
        states.publish(
            topic, encode({"version": 3, "target": target, "sections": {"model": right}})
        )
        applied = states.wait_for(3, ["applied"])
        assert agent.parts.pipeline is not None
        assert agent.parts.pipeline.engine_info()["model"] == "pushed-digits"
        _results_after(agent, 5)
    stamps = [json.loads(p)["ts"] for t, p, _r in results.history]
    models = [json.loads(p)["model"] for t, p, _r in results.history]
    assert "pushed-digits" in models, "results come from the new model"
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    print(f"longest pause in results across the model switch: {max(gaps) * 1000:.0f} ms")
    assert max(gaps) < 1.0, f"results paused {max(gaps):.2f} s during the switch"
    assert applied["timings"]["switch_s"] < 5


def test_a_push_that_breaks_health_rolls_back(
    tmp_path: Path, mosquitto: MosquittoBroker, make_agent: AgentFactory
) -> None:
    prefix, device = unique("fl"), unique("box")
    agent = make_agent(device, prefix)
    dead = [{"name": "demo", "uri": f"file://{tmp_path}/never.mp4"}]
    doc = {"version": 5, "target": f"device:{device}", "sections": {"cameras": dead}}
    with StateWatcher(mosquitto, prefix, device) as states:
        agent.start()
        states.wait_for(0, ["applied"])
        states.publish(f"{prefix}/{device}/config/set", encode(doc), retain=True)
        report = states.wait_for(5, ["rolled_back"])
        assert "demo" in report["reason"]
        # The daemon's probation catches a camera that never comes up before the fleet's
        # own gate would: the report names that gate and the camera.
        assert report["health"]["gate"] == "probation"
        assert "camera demo is down" in report["health"]["failure"]
        assert agent.config.cameras[0].uri == "synthetic://digits"
        _results_after(agent, 5)
        # The failed version is not retried; a higher one applies.
        fixed = {**doc, "version": 6, "sections": {"batching": {"max_batch": 2}}}
        states.publish(f"{prefix}/{device}/config/set", encode(fixed), retain=True)
        assert states.wait_for(6, ["applied"])["running"] == {f"device:{device}": 6}
        states.publish(f"{prefix}/{device}/config/set", b"", retain=True)


def test_a_retained_push_reaches_an_agent_started_later_and_a_crash_mid_apply_is_not_retried(
    tmp_path: Path, mosquitto: MosquittoBroker, make_agent: AgentFactory
) -> None:
    prefix, device, group = unique("fl"), unique("box"), unique("yard")
    with StateWatcher(mosquitto, prefix, device) as states:
        doc = {
            "version": 7,
            "target": f"group:{group}",
            "sections": {"telemetry": {"interval_s": 2}},
        }
        states.publish(f"{prefix}/fleet/{group}/config/set", encode(doc), retain=True)
        # The last run died mid-apply of version 8 (kill -9): the state file says so.
        store = FleetStore(tmp_path / "state")
        store.save(FleetState(attempt={"source": f"device:{device}", "version": 8, "key_id": None}))
        agent = make_agent(device, prefix, groups=[group])
        agent.start()
        crashed = states.wait_for(8, ["rolled_back"])
        assert "restarted during the apply" in crashed["reason"]
        states.wait_for(7, ["applied"])
        assert agent.config.telemetry.interval_s == 2
        redelivered = {"version": 8, "target": f"device:{device}", "sections": {}}
        states.publish(f"{prefix}/{device}/config/set", encode(redelivered))
        assert store.load().ledger.failed == {f"device:{device}": 8}
        states.publish(f"{prefix}/fleet/{group}/config/set", b"", retain=True)
