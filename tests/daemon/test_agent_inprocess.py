"""The agent in-process: reload (the path fleet pushes reuse), the supervisor, start faults."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent.daemon import Agent, Supervisor
from edge_agent.agent.hooks import PipelineHooks
from edge_agent.agent.live_view import print_summary
from edge_agent.config import AgentConfig, validate_config
from edge_agent.errors import ConfigError
from edge_agent.sim import create_board
from tests.fakes.broker import MosquittoBroker, free_port
from tests.integration.agent_helpers import wait_results

pytestmark = pytest.mark.slow

DURATION_3 = ("--duration", "3", "--json")


def _config(tmp_path: Path, broker: MosquittoBroker, **extra: Any) -> AgentConfig:
    root = tmp_path / "board"
    if not root.exists():
        create_board("jetson-orin-nano", root)
    data: dict[str, Any] = {
        "device_id": f"inproc-{tmp_path.name[-12:]}".replace("_", "-"),
        "root": str(root),
        "state_dir": str(tmp_path / "state"),
        "power": {"monitor": "sim"},
        "mqtt": {"host": broker.host, "port": broker.port},
        "telemetry": {"interval_s": 0.5},
        "cameras": [{"name": "demo", "uri": "synthetic://digits", "fps": 50}],
    }
    data.update(extra)
    return validate_config(data, env={})


@pytest.fixture
def agent_factory(tmp_path: Path, mosquitto: MosquittoBroker) -> Iterator[Any]:
    agents: list[Agent] = []

    def make(**extra: Any) -> Agent:
        agent = Agent(_config(tmp_path, mosquitto, **extra), hooks=PipelineHooks())
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.shutdown()


def test_reload_applies_rolls_back_and_rejects(tmp_path: Path, agent_factory: Any) -> None:
    agent: Agent = agent_factory()
    agent.start()
    first = wait_results(agent, 5)

    batched = agent.config.model_copy(
        update={"batching": agent.config.batching.model_copy(update={"max_batch": 4})}
    )
    outcome = agent.apply_config(batched)
    assert outcome.status == "applied"
    assert outcome.changed == ("batching",)
    assert agent.config.batching.max_batch == 4
    after_apply = wait_results(agent, first + 5)

    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"this is not an onnx model")
    broken = batched.model_copy(
        update={"model": batched.model.model_copy(update={"path": corrupt})}
    )
    outcome = agent.apply_config(broken)
    assert outcome.status == "rolled_back"
    assert "corrupt.onnx" in outcome.errors[0]
    assert agent.config.model.path is None, "the running config is kept"
    wait_results(agent, after_apply + 5)  # the old pipeline runs again

    moved = batched.model_copy(update={"mqtt": batched.mqtt.model_copy(update={"port": 1})})
    outcome = agent.apply_config(moved)
    assert outcome.status == "rejected"
    assert outcome.errors == ("mqtt: changes need a restart",)
    assert agent.apply_config(batched).status == "unchanged"


def test_reload_from_file_rejects_invalid(tmp_path: Path, agent_factory: Any) -> None:
    agent: Agent = agent_factory()

    def bad_source() -> AgentConfig:
        raise ConfigError([])

    agent.reload_source = bad_source
    assert agent.reload_from_file().status == "rejected"


def test_supervisor_turns_a_dead_thread_into_a_stop() -> None:
    stop = threading.Event()
    supervisor = Supervisor(stop)
    supervisor.install()
    try:

        def boom() -> None:
            raise ValueError("camera exploded")

        thread = threading.Thread(target=boom, name="capture-x")
        thread.start()
        thread.join(5)
    finally:
        supervisor.uninstall()
    assert stop.is_set()
    assert supervisor.failures == ["capture-x: ValueError: camera exploded"]


def test_initial_profile_failure_keeps_running(tmp_path: Path, agent_factory: Any) -> None:
    agent: Agent = agent_factory(profile={"initial": "turbo"})
    agent.start()
    wait_results(agent, 2)
    assert agent.parts.profile_error is not None
    assert "turbo" in agent.parts.profile_error
    assert agent.parts.current_profile() is not None


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    unit = Path(__file__).resolve().parents[2] / "systemd" / "edge-agent.service"
    text = unit.read_text(encoding="utf-8")
    for needed in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "nvpmodel.service",
        "StateDirectory=edge-agent",
        "LoadCredential=mqtt_password",
    ):
        assert needed in text
    if not Path("/usr/local/bin/edge-agent").exists():
        # Verify checks that ExecStart exists; point it at this install's script.
        script = Path(sys.executable).parent / "edge-agent"
        text = text.replace("/usr/local/bin/edge-agent", str(script))
        unit = tmp_path / "edge-agent.service"
        unit.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "edge-agent.service" not in proc.stderr, proc.stderr


def test_quick_start_command(tmp_path: Path) -> None:
    """The README's first command, shortened: demo config, embedded broker, simulated board."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_agent",
            "run",
            "--sim",
            "jetson-orin-nano",
            "--duration",
            "4",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state")),
    )
    assert proc.returncode == 0, proc.stderr
    assert "mosquitto_sub" in proc.stderr
    # The outbox outlives the throwaway board, so a backlog is replayed by the next run to
    # the same broker: the folder is keyed by the device id and the broker.
    sim_state = tmp_path / "state/edge-agent/sim-jetson-orin-nano"
    assert [p.parent.name.split("@")[1] for p in sim_state.glob("*/outbox.sqlite3")] == [
        "embedded-1883"
    ]
    import json

    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["results"] > 0
    assert summary["perf_per_watt"] > 0
    assert summary["profile"] == "maxq"
    assert summary["accuracy"] > 0.9


def test_agx_orin_quick_start_reaches_maxq_caps_with_a_warning_and_no_error(
    tmp_path: Path,
) -> None:
    """From AGX Orin's default mode every preset needs a reboot: maxq's caps apply live."""
    proc = subprocess.run(
        [sys.executable, "-m", "edge_agent", "run", "--sim", "jetson-agx-orin", *DURATION_3],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env=dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state")),
    )
    assert proc.returncode == 0, proc.stderr
    assert "ERROR" not in proc.stderr
    warning = [line for line in proc.stderr.splitlines() if line.startswith("WARNING")]
    assert any("maxq" in w and "MODE_15W" in w and "MODE_30W" in w for w in warning), warning
    import json

    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["profile"] == "maxq"
    assert summary["results"] > 0


def test_initial_preset_needing_a_reboot_falls_back_to_its_caps(
    tmp_path: Path, agent_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    board = create_board("jetson-agx-orin", tmp_path / "board")
    agent: Agent = agent_factory(profile={"initial": "maxq"})
    with caplog.at_level("WARNING"):
        agent.start()
        wait_results(agent, 2)
    assert agent.parts.profile_error is None
    assert agent.parts.current_profile() == "maxq"
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []
    assert _gpu_max_hz(board.root) == 408000000  # MODE_15W's GPU cap on R35.2+/R36
    assert (board.root / "sys/devices/system/cpu/cpu4/online").read_text().strip() == "0"
    assert board.reboot_count == 0


def test_shutdown_says_what_it_waits_for_when_the_broker_is_unreachable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mosquitto: MosquittoBroker
) -> None:
    create_board("jetson-orin-nano", tmp_path / "board")
    port = free_port()  # nothing listens there
    config = validate_config(
        {
            "device_id": "unreachable",
            "root": str(tmp_path / "board"),
            "state_dir": str(tmp_path / "state"),
            "power": {"monitor": "sim"},
            "mqtt": {"host": "127.0.0.1", "port": port},
            "cameras": [{"name": "demo", "uri": "synthetic://digits", "fps": 50}],
        },
        env={},
    )
    agent = Agent(config, hooks=PipelineHooks())
    agent.start()
    try:
        wait_results(agent, 3)
    finally:
        with caplog.at_level("INFO", logger="edge_agent.agent.backlog"):
            agent.shutdown(flush_timeout_s=0.3)
    lines = [r for r in caplog.records if "flushing" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelname == "WARNING"
    message = lines[0].getMessage()
    assert re.fullmatch(
        rf"flushing (\d+) queued messages to broker 127\.0\.0\.1:{port} \(unreachable\) "
        r"for up to 0\.3 s",
        message,
    ), message
    queued = int(message.split()[1])
    assert queued > 3
    left = [r.getMessage() for r in caplog.records if "stay in the outbox" in r.getMessage()]
    assert left == [f"{queued} messages stay in the outbox for the next run"]
    # The next run on this state dir says, once, that it sends those old rows first.
    caplog.clear()
    mqtt = {"host": mosquitto.host, "port": mosquitto.port}
    again = Agent(config.model_copy(update={"mqtt": config.mqtt.model_copy(update=mqtt)}))
    with caplog.at_level("WARNING", logger="edge_agent.agent.backlog"):
        again.start()
    try:
        told = [r.getMessage() for r in caplog.records if "previous run" in r.getMessage()]
        outbox = tmp_path / "state" / "outbox.sqlite3"
        assert told == [
            f"{queued} undelivered messages from a previous run in {outbox} are sent first, "
            f"to broker {mosquitto.host}:{mosquitto.port}"
        ]
    finally:
        again.shutdown()


def test_banner_subscribe_line_carries_the_user_and_password_file(
    tmp_path: Path, agent_factory: Any, mosquitto: MosquittoBroker
) -> None:
    secret = tmp_path / "mqtt_password"
    secret.write_text("hunter2-not-shown\n", encoding="utf-8")
    mqtt = {"host": mosquitto.host, "port": mosquitto.port, "username": "edge-op"}
    agent: Agent = agent_factory(mqtt={**mqtt, "password_file": str(secret)})
    agent.start()
    line = agent.parts.banner()["subscribe"]
    assert line.startswith(f"mosquitto_sub -h {mosquitto.host} -p {mosquitto.port} ")
    assert f'-u edge-op -P "$(cat {secret})"' in line
    assert "hunter2" not in line


def test_board_without_profiles_or_power_monitor_still_runs(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """A dGPU host or an unknown board: profiles and power are states, not crashes."""
    bare = tmp_path / "bare"
    bare.mkdir()
    config = validate_config(
        {
            "device_id": "bare-board",
            "root": str(bare),
            "state_dir": str(tmp_path / "state"),
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
            "cameras": [{"name": "demo", "uri": "synthetic://digits", "fps": 50}],
        },
        env={},
    )
    agent = Agent(config, hooks=PipelineHooks())
    agent.start()
    try:
        wait_results(agent, 3)
        assert agent.parts.profiles is None
        assert agent.parts.profile_error is not None
        assert "no power profile file matches" in agent.parts.profile_error
        assert agent.parts.current_profile() is None
        telemetry = (
            agent.parts.reporter.step(agent.clock.monotonic()) if agent.parts.reporter else {}
        )
        assert telemetry["power"]["total_w"] is None
        assert telemetry["profile"] is None
    finally:
        agent.shutdown()
    summary = agent.summary()
    assert summary["results"] > 3
    assert summary["avg_w"] is None
    assert summary["perf_per_watt"] is None
    # The summary says n/a where the banner does, never Python's None.
    assert agent.parts.banner()["profile"] == "n/a"
    text = io.StringIO()
    print_summary(summary, as_json=False, file=text)
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in _rows(text)}
    assert rows["profile"] == "n/a"
    assert rows["average power"] == "n/a"
    assert "None" not in text.getvalue()


def _rows(text: io.StringIO) -> list[str]:
    return [line for line in text.getvalue().splitlines() if line.count("│") == 3]


def _gpu_max_hz(root: Path) -> int:
    from edge_agent.hardware.clocks import find_gpu_devfreq, read_gpu
    from edge_agent.hardware.root import Root

    dev = find_gpu_devfreq(Root(root))
    assert dev is not None
    return read_gpu(Root(root), dev).max_hz


def test_restore_on_exit_puts_the_clocks_back(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    # The board boots in 25W (maxp); 15w switches live and lowers the GPU cap.
    config = _config(tmp_path, mosquitto, profile={"initial": "15w", "restore_on_exit": True})
    before = _gpu_max_hz(config.root)
    agent = Agent(config, hooks=PipelineHooks())
    agent.start()
    try:
        wait_results(agent, 2)
        assert agent.parts.current_profile() == "15w"
        during = _gpu_max_hz(config.root)
        assert during != before
    finally:
        agent.shutdown()
    assert _gpu_max_hz(config.root) == before
    outbox = agent.summary()["outbox"]
    assert outbox is not None
    assert outbox["depth"] == 0


def test_live_view_renders_the_running_agent(tmp_path: Path, agent_factory: Any) -> None:
    import io

    from rich.console import Console

    from edge_agent.agent.live_view import LiveView

    agent: Agent = agent_factory(profile={"initial": "maxq", "allow_reboot": True})
    agent.start()
    wait_results(agent, 5)
    assert agent.parts.reporter is not None
    agent.parts.reporter.step(agent.clock.monotonic())
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, force_terminal=False)
    with LiveView(agent, console=console) as view:
        view.refresh()
    text = buffer.getvalue()
    assert "maxq" in text
    assert "fps" in text
    telemetry = agent.parts.reporter.last_telemetry
    assert telemetry is not None
    assert f"{telemetry['power']['total_w']:.2f} W" in text
    assert "top-1 vs truth" in text
    # fps, W and inf/J on screen come from one window: inf/J is fps / W.
    fps, watts = telemetry["fps"], telemetry["power"]["total_w"]
    assert f"{fps:.2f} fps (last" in text
    assert f"{fps / watts:.2f} inf/J" in text
    assert f"{watts / fps * 1000:.2f} mJ/inference" in text
    agent.shutdown()
    # The summary's rates share one window too: first result to last.
    summary = agent.summary()
    assert summary["duration_s"] <= summary["run_s"]
    assert summary["fps"] * summary["duration_s"] == pytest.approx(summary["results"] - 1, 0.01)
    assert summary["perf_per_watt"] == pytest.approx(summary["fps"] / summary["avg_w"], 0.01)
    assert summary["mj_per_inference"] == pytest.approx(
        summary["avg_w"] / summary["fps"] * 1000, 0.01
    )


def test_live_rows_compute_efficiency_from_their_own_fps_and_watts() -> None:
    from edge_agent.agent.live_view import live_rows
    from edge_agent.agent.result_stats import StatsSnapshot

    snap = StatsSnapshot(
        results=300, elapsed_s=12.0, fps=31.0, recent_fps=31.0, latency_p50_ms=5.0,
        latency_p95_ms=6.0, latency_p99_ms=7.0, engine_p50_ms=1.0, accuracy=None, labelled=0,
    )  # fmt: skip
    # The numbers: 30 fps at 3.99 W is 7.52 inf/J, whatever else the message says.
    telemetry = {"fps": 30.0, "window_s": 10.0, "power": {"total_w": 3.99}, "perf_per_watt": 7.73}
    rows = dict(live_rows("maxq", snap, telemetry, "connected"))
    assert rows["throughput"] == "30.00 fps (last 10 s)"
    assert rows["board power"] == "3.99 W"
    assert rows["perf/W"] == "7.52 inf/J"
    assert rows["energy"] == "133.00 mJ/inference"
    before = dict(live_rows(None, snap, {}, None))
    assert before["throughput"] == "31.0 fps (since start)"
    assert (before["board power"], before["perf/W"], before["profile"]) == ("n/a", "n/a", "n/a")
