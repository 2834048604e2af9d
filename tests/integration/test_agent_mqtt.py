"""Acceptance tests of the whole agent over MQTT: a subprocess, a real mosquitto, real paho.

Each test runs ``python -m edge_agent run --config CFG [--sim jetson-orin-nano] --json
--no-live`` and asserts on what a subscriber receives (msg_id sets, payload fields), on the
agent's outbox file and on the simulated board's clock files.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from edge_agent.telemetry.payloads import load_schema
from tests.fakes.broker import MosquittoBroker, free_port
from tests.integration.agent_helpers import (
    SIM_BOARD,
    AgentProcess,
    Recorder,
    agent_config,
    count_results,
    first_arrival_violations,
    new_device_id,
    outbox_result_ids,
    run_to_exit,
    wait_outbox,
    write_config,
)

pytestmark = pytest.mark.slow

OUTAGE_S = 10.0
# GPU caps of the simulated Orin Nano, whose nvpmodel conf is JetPack 6.2's "super" one:
# power_profiles/jetson-orin-nano-super.yaml maps maxq to 7W and maxp to 25W.
MAXQ_GPU_HZ = 408_000_000
MAXP_GPU_HZ = 918_000_000
TWO_CAMERAS = [
    {"name": "cam_a", "uri": "synthetic://digits", "fps": 15},
    {"name": "cam_b", "uri": "synthetic://digits", "fps": 15},
]


def _validators() -> dict[str, jsonschema.Draft202012Validator]:
    return {
        kind: jsonschema.Draft202012Validator(load_schema(kind))
        for kind in ("status", "result", "telemetry", "profile_state", "policy_state")
    }


def _kind(topic: str, device: str) -> str:
    rest = topic.removeprefix(f"edge/{device}/")
    if rest.startswith("results/"):
        return "result"
    return {
        "status": "status",
        "telemetry": "telemetry",
        "profile/state": "profile_state",
        "policy/state": "policy_state",
    }[rest]


def _ns(ids: set[str], boot: str) -> set[int]:
    return {int(m.rsplit(":", 1)[1]) for m in ids if m.rsplit(":", 1)[0] == boot}


# -- 1. the minimal config runs the demo -----------------------------------------------------


def test_minimal_config_runs_the_demo_pipeline(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    device = new_device_id()
    config = write_config(
        tmp_path / "agent.yaml",
        {
            "device_id": device,
            "state_dir": str(tmp_path / "state"),
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
        },
    )
    with (
        Recorder(mosquitto, f"edge/{device}/#") as sub,
        AgentProcess(config, "--duration", "4") as agent,
    ):
        code = agent.wait(60)
        assert code == 0, agent.stderr()[-4000:]
        summary = agent.summary()
        assert sub.wait_json(f"edge/{device}/status", lambda d: d["state"] == "stopped", 10)
        messages = sub.snapshot()

    validators = _validators()
    for item in messages:
        kind = _kind(item.topic, device)
        errors = [e.message for e in validators[kind].iter_errors(item.json())]
        assert not errors, f"{item.topic}: {errors}"

    results = [m.json() for m in messages if m.topic == f"edge/{device}/results/demo"]
    assert summary["results"] > 0
    boot = results[0]["msg_id"].split(":")[0]
    expected = {f"{boot}:{n}" for n in range(1, summary["results"] + 1)}
    assert {r["msg_id"] for r in results} == expected
    for doc in results:
        assert doc["camera"] == "demo"
        assert doc["model"] == summary["model"]
        assert doc["truth"] in [str(d) for d in range(10)]
        top_k = doc["outputs"]["top_k"]
        assert 1 <= len(top_k) <= 10
        scores = [entry["score"] for entry in top_k]
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 <= s <= 1.0 for s in scores)
    correct = sum(r["outputs"]["top_k"][0]["label"] == r["truth"] for r in results)
    assert correct / len(results) > 0.8, "the demo model recognises its synthetic digits"

    telemetry = [m.json() for m in messages if m.topic == f"edge/{device}/telemetry"]
    assert telemetry
    measured = [t for t in telemetry if t["perf_per_watt"] is not None]
    assert measured, telemetry
    assert all(t["power"]["total_w"] > 0 for t in measured)
    assert all(t["perf_per_watt"] > 0 for t in measured)
    assert summary["avg_w"] > 0
    assert summary["perf_per_watt"] > 0


# -- 2. a broker outage loses nothing ----------------------------------------------------------


def test_broker_outage_delivers_every_msg_id(
    tmp_path: Path, restartable_broker: MosquittoBroker
) -> None:
    broker = restartable_broker
    device = new_device_id()
    config = write_config(
        tmp_path / "agent.yaml",
        agent_config(tmp_path, broker.port, device, cameras=TWO_CAMERAS),
    )
    results = count_results(device)
    with (
        Recorder(broker, f"edge/{device}/#", persistent=True) as sub,
        AgentProcess(config) as agent,
    ):
        assert sub.wait_for(lambda h: results(h) >= 20, 30), agent.stderr()[-4000:]
        broker.stop()
        before = len(sub.snapshot())
        threading.Event().wait(OUTAGE_S)  # the outage is the test's input, not a sync point
        assert agent.running(), agent.stderr()[-4000:]
        broker.start()
        restarted_at = time.time()
        # Results produced after the restart prove the agent reconnected and went on.
        assert sub.wait_for(
            lambda h: any(
                m.topic.startswith(f"edge/{device}/results/") and m.json()["ts"] > restarted_at
                for m in h[before:]
            ),
            45,
        ), agent.stderr()[-4000:]
        summary = agent.terminate()
        sub.wait_json(f"edge/{device}/status", lambda d: d["state"] == "stopped", 15)
        messages = sub.snapshot()

    got = {doc["msg_id"] for _t, doc in sub.results(device)}
    boots = {m.rsplit(":", 1)[0] for m in got}
    assert len(boots) == 1
    n_results = summary["results"]
    missing = set(range(1, n_results + 1)) - _ns(got, boots.pop())
    assert not missing, f"{len(missing)} of {n_results} results never arrived: {sorted(missing)}"
    assert len(got) == n_results, "no msg_id beyond the summary's count"
    assert first_arrival_violations(messages) == []
    cameras = {doc["camera"] for _t, doc in sub.results(device)}
    assert cameras == {"cam_a", "cam_b"}
    # Telemetry written during the outage was spooled too, and saw the backlog.
    telemetry = [m.json() for m in messages if m.topic == f"edge/{device}/telemetry"]
    assert max(t["outbox"]["depth"] for t in telemetry) > 0
    assert summary["outbox"]["depth"] == 0
    assert summary["outbox"]["lost"] == 0
    assert summary["outbox"]["dropped"] == 0


# -- 3. kill -9 with a backlog, restart on the same state dir ---------------------------------


def test_kill_9_with_broker_down_then_restart_delivers_the_outbox(
    tmp_path: Path, own_mosquitto: MosquittoBroker
) -> None:
    broker = own_mosquitto
    broker.stop()  # the whole first run happens without a broker: everything piles up
    device = new_device_id()
    config = write_config(tmp_path / "agent.yaml", agent_config(tmp_path, broker.port, device))
    outbox = tmp_path / "state" / "outbox.sqlite3"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    boards = scratch / f"edge-agent-sim-{os.getuid()}"
    with AgentProcess(config, name="first", tmpdir=scratch) as first:
        spooled = wait_outbox(outbox, at_least=40, timeout_s=30)
        assert len(spooled) >= 40, first.stderr()[-4000:]
        first.kill()
        # SIGKILL leaves the simulated board behind; the next run sweeps it.
        left = list(boards.iterdir())
        assert [p.name.startswith(f"{SIM_BOARD}-") for p in left] == [True]
    pending = outbox_result_ids(outbox)
    assert len(pending) >= len(spooled)
    boot = next(iter(pending)).rsplit(":", 1)[0]
    ns = _ns(pending, boot)
    assert len(ns) == len(pending), "one boot wrote them all"
    assert ns == set(range(1, max(ns) + 1)), "nothing was acknowledged: the outbox holds 1..k"

    broker.start()
    with (
        Recorder(broker, f"edge/{device}/#") as sub,
        AgentProcess(config, name="second", tmpdir=scratch) as second,
    ):
        arrived = sub.wait_ids(device, pending, 30)
        now = list(boards.iterdir())
        assert len(now) == 1
        assert now[0] != left[0]
        assert now[0].name.startswith(f"{SIM_BOARD}-")
        assert pending <= arrived, (
            f"{len(pending - arrived)} of {len(pending)} spooled results missing\n"
            f"{second.stderr()[-4000:]}"
        )
        online = sub.wait_json(f"edge/{device}/status", lambda d: d["state"] == "online", 10)
        second_boot = online["boot_id"]
        summary = second.terminate()
        sub.wait_json(f"edge/{device}/status", lambda d: d["state"] == "stopped", 15)
    assert second_boot != boot
    got = sub.result_ids(device)
    assert _ns(got, second_boot) == set(range(1, summary["results"] + 1))
    assert outbox_result_ids(outbox) == set()
    assert list(boards.iterdir()) == []  # a clean exit removes its own board


# -- 4. status: online, the Will, stopped -----------------------------------------------------


def test_status_online_will_on_kill_and_stopped_on_sigterm(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    device = new_device_id()
    config = write_config(
        tmp_path / "agent.yaml",
        agent_config(
            tmp_path,
            mosquitto.port,
            device,
            mqtt={"host": mosquitto.host, "port": mosquitto.port, "keepalive_s": 5},
        ),
    )
    status = f"edge/{device}/status"
    with Recorder(mosquitto, status) as sub:
        with AgentProcess(config, name="first") as first:
            online = sub.wait_json(status, lambda d: d["state"] == "online", 30)
            boot = online["boot_id"]
            with Recorder(mosquitto, status) as late:  # joins after the birth: retained copy
                retained = late.wait_json(status, lambda d: True, 5)
                assert retained["state"] == "online"
                assert retained["boot_id"] == boot
                assert late.snapshot()[0].retain
            mark = len(sub.snapshot())
            first.kill()
            offline = sub.wait_json(status, lambda d: True, 15, after=mark)
        assert offline["state"] == "offline", "the Will, right after the unclean drop"
        assert offline["boot_id"] == boot
        with Recorder(mosquitto, status) as late:
            assert late.wait_json(status, lambda d: True, 5)["state"] == "offline"
            assert late.snapshot()[0].retain

        mark = len(sub.snapshot())
        with AgentProcess(config, name="second") as second:
            online = sub.wait_json(status, lambda d: d["state"] == "online", 30, after=mark)
            assert online["boot_id"] != boot
            second.terminate()
            stopped = sub.wait_json(status, lambda d: d["state"] != "online", 10, after=mark)
        states = [m.json()["state"] for m in sub.snapshot()]
    assert stopped["state"] == "stopped"
    assert stopped["boot_id"] == online["boot_id"]
    assert states == ["online", "offline", "online", "stopped"], states


# -- 5. profile commands over MQTT --------------------------------------------------------------


def test_profile_command_sets_clocks_and_bad_commands_get_errors(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    from edge_agent.sim import create_board

    board = create_board("jetson-orin-nano", tmp_path / "board")
    max_freq = board.devfreq_dir / "max_freq"
    device = new_device_id()
    config = write_config(
        tmp_path / "agent.yaml",
        agent_config(
            tmp_path,
            mosquitto.port,
            device,
            root=str(board.root),
            power={"monitor": "sim"},
            # 7W (maxq) and 25W (maxp) differ in TPC mask: the simulated board reboots at once.
            profile={"initial": "maxq", "restore_on_exit": False, "allow_reboot": True},
        ),
    )
    state = f"edge/{device}/profile/state"
    command = f"edge/{device}/profile/set"
    with Recorder(mosquitto, f"edge/{device}/#") as sub, AgentProcess(config, sim=False) as agent:
        start = sub.wait_json(state, lambda d: True, 30)
        assert start["profile"] == "maxq", agent.stderr()[-4000:]
        assert int(max_freq.read_text()) == MAXQ_GPU_HZ

        results = count_results(device)
        assert sub.wait_for(lambda h: results(h) >= 5, 30), agent.stderr()[-4000:]
        mark = len(sub.snapshot())
        sub.publish(command, b"maxp")
        answer = sub.wait_json(state, lambda d: d.get("requested") == "maxp", 30, after=mark)
        assert {k: answer[k] for k in ("profile", "applied", "error")} == {
            "profile": "maxp",
            "applied": True,
            "error": None,
        }
        assert int(max_freq.read_text()) == MAXP_GPU_HZ
        switched_at = answer["ts"]
        with Recorder(mosquitto, state) as late:
            retained = late.wait_json(state, lambda d: True, 5)
            assert late.snapshot()[0].retain
            assert (retained["profile"], retained["applied"]) == ("maxp", True)

        for payload, needle in (
            (b"turbo", "turbo"),
            (b"\xff\xfe\x80maxq", "UTF-8"),
            (b"m" * 70_000, "too large"),
        ):
            mark = len(sub.snapshot())
            sub.publish(command, payload)
            answer = sub.wait_json(state, lambda d: True, 10, after=mark)
            assert answer["applied"] is False
            assert needle in answer["error"]
            assert answer["profile"] == "maxp", "a rejected command leaves the profile alone"
        assert int(max_freq.read_text()) == MAXP_GPU_HZ

        # The pipeline carries on: fresh results after the last rejection.
        mark = len(sub.snapshot())
        assert sub.wait_for(lambda h: results(h[mark:]) >= 10, 15), agent.stderr()[-4000:]
        summary = agent.terminate()
    assert summary["profile"] == "maxp"
    assert summary["results"] > 0
    # Results carry the profile they ran under: maxq before the switch, maxp once applied.
    docs = [doc for _t, doc in sub.results(device)]
    assert all(doc["profile"] == "maxq" for doc in docs[:5])
    after = [doc for doc in docs if doc["ts"] > switched_at]
    assert len(after) >= 10
    assert {doc["profile"] for doc in after} == {"maxp"}


# -- 6. bad start-up input -------------------------------------------------------------------


def _bad_config(tmp_path: Path, **sections: Any) -> Path:
    config = agent_config(tmp_path, free_port(), new_device_id(), **sections)
    return write_config(tmp_path / "agent.yaml", config)


def test_invalid_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    config = _bad_config(tmp_path, telemetry={"interval_s": -1}, batching={"max_batch": "many"})
    code, stderr = run_to_exit(config, timeout_s=30)
    assert code == 2, stderr
    assert "telemetry.interval_s:" in stderr
    assert "batching.max_batch:" in stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "state").exists(), "rejected before touching anything"


def test_missing_model_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "nope.onnx"
    config = _bad_config(tmp_path, model={"path": str(missing)})
    code, stderr = run_to_exit(config, timeout_s=30)
    assert code == 2, stderr
    assert "model.path:" in stderr
    assert str(missing) in stderr
    assert "Traceback" not in stderr


@pytest.fixture
def immutable_dir(tmp_path: Path) -> Iterator[Path]:
    """An existing, empty directory nobody (root included) can create files in."""
    path = tmp_path / "locked-state"
    path.mkdir()
    made = subprocess.run(
        ["chattr", "+i", str(path)], capture_output=True, text=True, timeout=10, check=False
    )
    if made.returncode != 0:
        pytest.skip(f"chattr +i unsupported here: {made.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, timeout=10, check=True)


def test_unwritable_state_dir_fails_naming_the_path(tmp_path: Path, immutable_dir: Path) -> None:
    config = _bad_config(tmp_path, state_dir=str(immutable_dir))
    code, stderr = run_to_exit(config, timeout_s=60)
    assert code != 0
    assert f"state_dir: {immutable_dir} is not writable" in stderr, stderr
    assert "Traceback" not in stderr
    assert list(immutable_dir.iterdir()) == []
