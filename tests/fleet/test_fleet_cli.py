"""``edge-agent fleet``: keys, signing, pushes to three agents, a wave rollout that aborts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.fleet.signing import load_trusted_keys
from tests.fakes.broker import MosquittoBroker
from tests.fleet.conftest import AgentFactory
from tests.fleet.fleet_helpers import StateWatcher, unique
from tests.telemetry.mqtt_helpers import Subscriber


def test_keygen_and_sign(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "keygen", "--key-id", "ops-1", "--out", str(tmp_path / "k")]) == 0
    assert main(["fleet", "keygen", "--key-id", "ops-1", "--out", str(tmp_path / "k")]) == 2
    doc = tmp_path / "doc.yaml"
    doc.write_text("version: 4\ntarget: group:lobby\nsections:\n  batching: {max_batch: 2}\n")
    key = str(tmp_path / "k" / "ops-1.key")
    signed = tmp_path / "doc.json"
    assert main(["fleet", "sign", str(doc), "--key", key, "--out", str(signed)]) == 0
    data = json.loads(signed.read_text())
    assert data["key_id"] == "ops-1"
    assert load_trusted_keys(tmp_path / "k").verify(data) == "ops-1"
    doc.write_text("version: 4\ntarget: group:lobby\nsections:\n  mqtt: {host: evil}\n")
    capsys.readouterr()
    assert main(["fleet", "sign", str(doc), "--key", key]) == 2
    assert "sections.mqtt: device-local setting" in capsys.readouterr().err


def _push(broker: MosquittoBroker, prefix: str, doc: Path, *extra: str) -> list[str]:
    return [
        "fleet", "push", str(doc), "--host", broker.host, "--port", str(broker.port),
        "--prefix", prefix, "--json", "--timeout", "30", *extra,
    ]  # fmt: skip


def _retained_documents(broker: MosquittoBroker, prefix: str) -> dict[str, int]:
    """Every retained ``config/set`` document under ``prefix``: topic middle -> version."""
    with Subscriber(broker.host, broker.port, f"{prefix}/#") as sub:
        sub.publish(f"{prefix}/zz-marker", b"end")  # arrives after the retained ones
        while sub.get()[0] != f"{prefix}/zz-marker":
            pass
    found: dict[str, int] = {}
    for topic, payload, retain in sub.history:
        if retain and topic.endswith("/config/set") and payload:
            middle = topic.removeprefix(f"{prefix}/").removesuffix("/config/set")
            found[middle] = json.loads(payload)["version"]
    return found


@pytest.mark.slow
def test_group_push_to_three_agents_and_an_aborted_wave_rollout(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    make_agent: AgentFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix, group = unique("fl"), unique("floor")
    devices = sorted(unique(f"cam{i}") for i in range(3))
    agents = [make_agent(d, prefix, tmp_path / d, group=group) for d in devices]
    watchers = [StateWatcher(mosquitto, prefix, d).__enter__() for d in devices]
    try:
        for agent, watcher in zip(agents, watchers, strict=True):
            agent.start()
            watcher.wait_for(0, ["applied"])
        main(["fleet", "keygen", "--key-id", "ops", "--out", str(tmp_path / "keys")])
        doc = tmp_path / "v1.json"
        doc.write_text(json.dumps({
            "version": 1, "target": f"group:{group}",
            "sections": {"batching": {"max_batch": 2}},
        }))  # fmt: skip
        capsys.readouterr()
        code = main(_push(mosquitto, prefix, doc, "--group", group))
        report = json.loads(capsys.readouterr().out)
        assert code == 0, report
        assert report["counts"] == {"applied": 3}
        assert sorted(report["devices"]) == devices
        assert all(a.config.batching.max_batch == 2 for a in agents)

        # A canary that fails the health gate stops the rollout: the others keep version 1.
        dead = [{"name": "demo", "uri": f"file://{tmp_path}/never.mp4"}]
        doc.write_text(json.dumps({
            "version": 2, "target": f"group:{group}", "sections": {"cameras": dead},
        }))  # fmt: skip
        code = main(_push(mosquitto, prefix, doc, "--group", group, "--waves", "1,100%"))
        assert code == 1
        report = json.loads(capsys.readouterr().out)
        assert report["aborted"] is True
        assert report["devices"][devices[0]]["outcome"] == "rolled_back"
        assert [report["devices"][d]["outcome"] for d in devices[1:]] == ["pending", "pending"]
        for agent in agents:
            assert agent.config.cameras[0].uri == "synthetic://digits"
        assert agents[1].fleet is not None
        assert agents[1].fleet.state.ledger.committed == {f"group:{group}": 1}
        # A rollout in waves that succeeds: v3 ends on the group topic alone.
        doc.write_text(json.dumps({
            "version": 3, "target": f"group:{group}", "sections": {"batching": {"max_batch": 4}},
        }))  # fmt: skip
        code = main(_push(mosquitto, prefix, doc, "--group", group, "--waves", "1,100%"))
        report = json.loads(capsys.readouterr().out)
        assert code == 0, report
        assert report["counts"] == {"applied": 3}
        assert report["waves_done"] == 2
        assert all(a.config.batching.max_batch == 4 for a in agents)
        assert _retained_documents(mosquitto, prefix) == {f"fleet/{group}": 3}
        assert main(["fleet", "status", "--host", mosquitto.host, "--port", str(mosquitto.port),
                     "--prefix", prefix, "--json", "--wait", "1.5"]) == 0  # fmt: skip
        rows = {row["device"]: row for row in json.loads(capsys.readouterr().out)}
        assert sorted(rows) == devices
        assert rows[devices[0]]["config_status"] == "applied"
        assert all(row["running"] == {f"group:{group}": 3} for row in rows.values())
        assert all(row["online"] == "online" for row in rows.values())
    finally:
        for watcher in watchers:
            watcher.close()
